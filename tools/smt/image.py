"""The training image: its tag, a hash of what goes into it, so the same inputs give the
same tag on any machine and at any commit (a README edit makes no new image)."""

import hashlib
import os
import shutil

from smt import aws, project
from smt.errors import Failure

# What `docker build` reads (the .dockerignore lets only these through)
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "requirements.txt", "requirements-gpu.txt",
                "requirements-uv.txt", "code", "container")  # fmt: skip


def content_tag(settings) -> str:
    """12 hex digits of the build inputs' hash, with -gpu and a platform other than
    linux/amd64 as suffixes: each of those is another image."""
    digest = hashlib.sha256()
    for path in (settings.project_dir / name for name in BUILD_INPUTS):
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(f"{file.relative_to(settings.project_dir).as_posix()}\0".encode())
                digest.update(file.read_bytes() + b"\0")
    arguments = (settings.base_image, settings.accelerator, settings.platform, installer())
    digest.update("\0".join(arguments).encode())
    gpu, platform = "-gpu" * (settings.accelerator == "gpu"), settings.platform.replace("/", "-")
    return digest.hexdigest()[:12] + gpu + ("" if platform == "linux-amd64" else f"-{platform}")


def installer() -> str:
    """uv or pip, the Makefile's INSTALLER (make's own setting, as for the virtualenv)."""
    return os.environ.get("INSTALLER") or "uv"


INSTALL_DOCKER = "install Docker: https://docs.docker.com/get-docker/"
# What the client says when it cannot reach the daemon, and what to do about it.
UNREACHABLE = [
    ("permission denied", "let yourself use Docker: sudo usermod -aG docker $USER, log in again"),
    ("connect to the docker daemon", "start Docker (or: sudo systemctl start docker)"),
]


def unreachable(said: str) -> tuple[str, str] | None:
    """(what is wrong, the fix) when `said` is the client's word that no daemon answers."""
    why = " ".join(said.split())[-300:]
    fix = next((fix for words, fix in UNREACHABLE if words in why.lower()), None)
    return fix and (f"the Docker daemon does not answer ({why})", fix)


def docker(*args: str, timeout: float, doing: str, capture: bool = False, stdin=None) -> str:
    """A docker command that must work: a Failure names what it was doing and why not."""
    if not shutil.which("docker"):
        raise Failure(f"docker not found; {INSTALL_DOCKER}")
    late = f"{doing}: docker"
    done = project.run("docker", *args, timeout=timeout, late=late, capture=capture, stdin=stdin)
    if done.returncode != 0 and capture and (daemon := unreachable(done.stderr)):
        raise Failure("; ".join(daemon))
    return aws.done_or_failure(done, doing, "docker", capture)


def build(settings) -> int:
    """The image, unless this tag exists: the same build inputs make the same image."""
    image = settings.image
    try:
        docker("image", "inspect", image, timeout=60, doing="docker image inspect", capture=True)
        print(f"image {image} is up to date (build inputs unchanged)")
        return 0
    except Failure as error:
        if "no such image" not in str(error).lower():
            raise
    print(f"building {image} from {settings.base_image} for {settings.platform}")
    # BuildKit (buildx) attaches provenance attestations by default: a manifest list, which
    # SageMaker rejects. The classic builder has no such flag, and needs none.
    help_text = docker("build", "--help", timeout=30, doing="docker build --help", capture=True)
    provenance = ["--provenance=false"] * ("--provenance" in help_text)
    state = project.git_state()
    labels = [f"--label=org.opencontainers.image.revision={state['commit']}",
              f"--label=sm-template.git-dirty={state['dirty']}"]  # fmt: skip
    docker("build", "--platform", settings.platform, *provenance, *labels,
           *(f"--build-arg={name}={value}" for name, value in build_arguments(settings).items()),
           "-t", image, str(settings.project_dir),
           timeout=3600, doing="docker build")  # fmt: skip
    return 0


def build_arguments(settings) -> dict[str, str]:
    """The Dockerfile's ARGs, for make build and make build-remote alike."""
    requirements = "requirements-gpu.txt" if settings.accelerator == "gpu" else "requirements.txt"
    return {"BASE_IMAGE": settings.base_image, "REQUIREMENTS": requirements,
            "INSTALLER": installer()}  # fmt: skip


def newest(settings) -> str:
    """CODE_MOUNT=1: the newest image of this project will do (its code is not used)."""
    listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}", settings.ecr_repository,
                    timeout=60, doing="docker images", capture=True).split()  # fmt: skip
    found = [name for name in listed if not name.endswith(":<none>")]
    if not found:
        raise Failure(f"CODE_MOUNT=1 needs an image of {settings.ecr_repository}: make build once")
    return found[0]


def login(settings) -> int:
    """docker login to ECR with `aws ecr get-login-password` (CLI v1 and v2 alike)."""
    password = aws.cli("ecr", "get-login-password", region=settings.aws_region,
                       doing="aws ecr get-login-password", capture=True)  # fmt: skip
    docker("login", "--username", "AWS", "--password-stdin", settings.registry, stdin=password,
           timeout=60, doing=f"docker login {settings.registry}")  # fmt: skip
    return 0


def push(settings) -> int:
    build(settings)
    name = settings.remote_image
    docker("tag", settings.image, name, timeout=60, doing="docker tag")
    docker("push", name, timeout=3600, doing=f"docker push {name}")
    return 0
