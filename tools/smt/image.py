"""The training image: its tag, a hash of what goes into it, so the same inputs give the
same tag on any machine and at any commit (a README edit makes no new image)."""

import hashlib
from pathlib import Path

# What `docker build` reads (the .dockerignore lets only these through), and the settings
# passed to it as build arguments.
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "requirements.txt", "requirements-gpu.txt",
                "requirements-uv.txt", "code", "container")  # fmt: skip


def build_files(project_dir: Path) -> list[Path]:
    files = []
    for name in BUILD_INPUTS:
        path = project_dir / name
        found = sorted(path.rglob("*")) if path.is_dir() else [path] * path.is_file()
        files += [p for p in found if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc"]  # fmt: skip
    return files


def content_tag(settings) -> str:
    """12 hex digits of the build inputs' hash, with -gpu and a platform other than
    linux/amd64 as suffixes: each of those is another image."""
    digest = hashlib.sha256()
    for path in build_files(settings.project_dir):
        digest.update(f"{path.relative_to(settings.project_dir).as_posix()}\0".encode())
        digest.update(path.read_bytes() + b"\0")
    digest.update(f"{settings.base_image}\0{settings.accelerator}\0{settings.platform}".encode())
    tag = digest.hexdigest()[:12]
    if settings.accelerator == "gpu":
        tag += "-gpu"
    if settings.platform != "linux/amd64":
        tag += "-" + settings.platform.replace("/", "-")
    return tag
