"""smt build, login and push, and the image tag: a hash of what goes into the image, so only
a change to the image's inputs makes a new tag. Docker here is a stand-in on PATH that
records what it is asked (the real engine is in e2e/test_image_build.py)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from helpers import make_command

BUILDKIT_HELP = "      --provenance string   Shorthand for --attest=type=provenance"
CLASSIC_HELP = "  -t, --tag list   Name and optionally a tag"


def image_tag(smt) -> str:
    shown = smt("print", "IMAGE_TAG")
    assert shown.code == 0, shown.err
    return shown.out.strip()


def git(project: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    done = subprocess.run(["git", *identity, *args], cwd=project, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()


class FakeDocker:
    """A `docker` first on PATH: `build --help` answers `build_help`, `image inspect` knows
    the images in `images`, and every call is recorded as its arguments."""

    def __init__(self, folder: Path, monkeypatch, build_help: str = CLASSIC_HELP):
        self.log, self.images = folder / "calls", folder / "images"
        self.images.write_text("")
        (folder / "docker").write_text(
            "#!/bin/sh\n"
            'printf "%s\\n" "$*" >>"$FAKE_DOCKER_LOG"\n'
            'case "$1 $2" in\n'
            '"build --help") printf "%s\\n" "$FAKE_BUILD_HELP" ;;\n'
            '"image inspect") grep -qxF "$3" "$FAKE_DOCKER_IMAGES" || '
            '{ echo "Error: No such image: $3" >&2; exit 1; } ;;\n'
            "esac\n"
        )
        (folder / "docker").chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_DOCKER_LOG", str(self.log))
        monkeypatch.setenv("FAKE_DOCKER_IMAGES", str(self.images))
        monkeypatch.setenv("FAKE_BUILD_HELP", build_help)

    def calls(self, command: str) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line.split() for line in lines if line.split()[:1] == [command]]

    def build(self) -> list[str]:
        [build] = [call for call in self.calls("build") if call != ["build", "--help"]]
        return build


@pytest.fixture
def docker(tmp_path, monkeypatch):
    folder = tmp_path / "fake-docker"
    folder.mkdir()
    return FakeDocker(folder, monkeypatch)


def test_the_image_tag_is_a_hash_of_the_build_inputs_and_never_latest(smt):
    assert re.fullmatch(r"[0-9a-f]{12}", image_tag(smt))


def test_a_readme_edit_or_a_commit_leaves_the_image_tag_unchanged(smt, project_dir):
    first = image_tag(smt)
    (project_dir / "README.md").write_text("not a build input\n")
    (project_dir / "settings.env").write_text(
        (project_dir / "settings.env").read_text() + "DATASET = digits\n"
    )
    assert image_tag(smt) == first
    git(project_dir, "init", "-q")
    git(project_dir, "add", "-A")
    git(project_dir, "commit", "-qm", "one")
    assert image_tag(smt) == first
    (project_dir / "README.md").write_text("another edit\n")
    git(project_dir, "commit", "-qam", "two")
    assert image_tag(smt) == first


@pytest.mark.parametrize(
    "path", ["code/train.py", "container/serving.py", "Dockerfile", "requirements.txt"]
)
def test_an_edit_to_a_build_input_makes_a_new_image_tag(smt, project_dir, path):
    first = image_tag(smt)
    with (project_dir / path).open("a") as file:
        file.write("\n# an edit\n")
    assert image_tag(smt) != first


def test_a_gpu_image_and_an_arm64_image_each_get_a_tag_of_their_own(smt, monkeypatch):
    cpu = image_tag(smt)
    monkeypatch.setenv("ACCELERATOR", "gpu")
    gpu = image_tag(smt)
    monkeypatch.setenv("PLATFORM", "linux/arm64")
    gpu_arm = image_tag(smt)
    monkeypatch.setenv("ACCELERATOR", "cpu")
    arm = image_tag(smt)
    assert gpu.endswith("-gpu") and arm.endswith("-linux-arm64")
    assert gpu_arm.endswith("-gpu-linux-arm64")
    assert len({cpu, gpu, gpu_arm, arm}) == 4
    assert len({tag[:12] for tag in (cpu, gpu, gpu_arm, arm)}) == 4  # the hash itself differs


@pytest.mark.parametrize(
    "setting, value", [("BASE_IMAGE", "python:3.11-slim"), ("INSTALLER", "pip")]
)
def test_each_build_argument_is_part_of_the_image_tag(smt, monkeypatch, setting, value):
    first = image_tag(smt)
    monkeypatch.setenv(setting, value)
    assert image_tag(smt) != first


@pytest.mark.parametrize(
    "build_help, provenance",
    [(BUILDKIT_HELP, True), (CLASSIC_HELP, False)],
    ids=["buildkit", "classic"],
)
def test_build_turns_provenance_off_only_where_docker_build_offers_the_option(
    smt, docker, monkeypatch, build_help, provenance
):
    """BuildKit's provenance attestation makes the image an index SageMaker refuses; the
    classic builder has no such option and would refuse it."""
    monkeypatch.setenv("FAKE_BUILD_HELP", build_help)
    assert smt("build").code == 0
    build = docker.build()
    assert ("--provenance=false" in build) == provenance
    assert build[build.index("--platform") + 1] == "linux/amd64"


def test_build_labels_the_image_with_the_git_commit_and_whether_the_tree_was_dirty(
    smt, docker, project_dir
):
    git(project_dir, "init", "-q")
    git(project_dir, "add", "-A")
    git(project_dir, "commit", "-qm", "one")
    commit = git(project_dir, "rev-parse", "--short=12", "HEAD")
    assert smt("build").code == 0
    labels = [arg for arg in docker.build() if arg.startswith("--label=")]
    assert labels == [
        f"--label=org.opencontainers.image.revision={commit}",
        "--label=sm-template.git-dirty=False",
    ]
    (project_dir / "code" / "train.py").write_text("# uncommitted\n")
    docker.log.unlink()
    assert smt("build").code == 0
    assert "--label=sm-template.git-dirty=True" in docker.build()


def test_build_passes_the_build_arguments_and_tags_the_image_with_its_content_tag(
    smt, docker, monkeypatch
):
    monkeypatch.setenv("ACCELERATOR", "gpu")
    tag = image_tag(smt)
    done = smt("build")
    assert done.code == 0
    build = docker.build()
    arguments = [arg.split("=", 1)[1] for arg in build if arg.startswith("--build-arg=")]
    assert arguments == [
        "BASE_IMAGE=python:3.12.12-slim-bookworm",
        "REQUIREMENTS=requirements-gpu.txt",
        "INSTALLER=uv",
    ]
    assert build[build.index("-t") + 1] == f"mnist_on_sagemaker:{tag}"
    assert f"building mnist_on_sagemaker:{tag} from python:3.12.12-slim-bookworm" in done.out


def test_build_of_a_tag_that_exists_builds_nothing(smt, docker):
    docker.images.write_text(f"mnist_on_sagemaker:{image_tag(smt)}\n")
    done = smt("build")
    assert done.code == 0 and "is up to date (build inputs unchanged)" in done.out
    assert docker.calls("build") == []


def test_build_without_a_docker_daemon_fails_in_one_line_saying_how_to_start_it(smt, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    done = smt("build")
    assert done.code == 1
    [line] = done.err.splitlines()
    assert line.startswith("error: the Docker daemon does not answer (")
    assert line.endswith("); start Docker (or: sudo systemctl start docker)")


def test_build_without_docker_installed_fails_in_one_line_saying_where_to_get_it(
    smt, monkeypatch, tmp_path
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker there
    done = smt("build")
    assert (done.code, done.err) == (
        1,
        "error: docker not found; install Docker: https://docs.docker.com/get-docker/\n",
    )


def test_push_tags_the_image_for_the_registry_and_pushes_that_name(smt, docker):
    tag = image_tag(smt)
    docker.images.write_text(f"mnist_on_sagemaker:{tag}\n")
    assert smt("push", "--registry", "127.0.0.1:5000").code == 0
    remote = f"127.0.0.1:5000/mnist_on_sagemaker:{tag}"
    assert docker.calls("tag") == [["tag", f"mnist_on_sagemaker:{tag}", remote]]
    assert docker.calls("push") == [["push", remote]]


@pytest.mark.parametrize("region, domain", [("us-east-1", "amazonaws.com"),
                                            ("cn-north-1", "amazonaws.com.cn")])  # fmt: skip
def test_push_goes_to_the_accounts_registry_in_the_region_under_amazonaws_com_cn_in_china(
    smt, docker, region, domain
):
    docker.images.write_text(f"mnist_on_sagemaker:{image_tag(smt)}\n")
    assert smt("push", "--aws-account-id", "111122223333", "--aws-region", region).code == 0
    [[_, name]] = docker.calls("push")
    assert name.startswith(f"111122223333.dkr.ecr.{region}.{domain}/mnist_on_sagemaker:")


@pytest.mark.parametrize("command", ["login", "push"])
def test_login_and_push_without_the_account_name_the_setting_to_set(smt, project_dir, command):
    settings = project_dir / "settings.env"
    kept = [line for line in settings.read_text().splitlines() if "AWS_ACCOUNT_ID" not in line]
    settings.write_text("\n".join(kept) + "\n")
    done = smt(command)
    assert done.code == 2
    assert done.err.startswith(f"error: AWS_ACCOUNT_ID: make {command} needs it")


def test_make_help_shows_no_unexpanded_make_variable_and_lists_build_login_and_push(
    project_dir,
):
    done = subprocess.run(make_command("help", ".installed-tools"), cwd=project_dir,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "$(" not in done.stdout and "{{" not in done.stdout
    listed = re.findall(r"^  ([a-z-]+) +\S", done.stdout, re.MULTILINE)
    assert {"build", "login", "push"} <= set(listed)
