"""The tools as a project made from a git template gets them: its requirements-smt.txt pins
git+<url>@<commit>#subdirectory=tools, and that installs into a fresh virtualenv."""

import os
import subprocess
import tarfile
from pathlib import Path

from helpers import TEMPLATE_DIR, VENV_BIN
from smt import __version__  # this checkout's tools/smt/__init__.py


def run(*command, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout.strip()


def repository_of_head(folder: Path) -> Path:
    """A git repository whose one commit holds this checkout's HEAD: a template on a server."""
    archive = folder / "head.tar"
    run("git", "-C", TEMPLATE_DIR, "archive", "--format=tar", "-o", archive, "HEAD")
    repository = folder / "sm-template"
    with tarfile.open(archive) as tar:
        tar.extractall(repository, filter="data")
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for git in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "HEAD"]):
        run("git", *git, cwd=repository)
    return repository


def test_a_project_made_from_a_git_template_installs_its_pinned_tools_from_that_commit(
    bake, tmp_path
):
    repository = repository_of_head(tmp_path)
    commit = run("git", "rev-parse", "HEAD", cwd=repository)
    baked = bake({"aws_checks": "skip"}, template=f"git+{repository.as_uri()}")
    assert baked.returncode == 0, baked.output
    project = next(baked.output_dir.iterdir())
    pin = (project / "requirements-smt.txt").read_text().splitlines()[-1]
    url = f"git+{repository.as_uri()}@{commit}#subdirectory=tools"
    assert pin == f"sm-template-tools @ {url}"

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    venv = tmp_path / "venv"
    run(VENV_BIN / "uv", "venv", "--quiet", "--python", VENV_BIN / "python", venv, env=env)
    run(VENV_BIN / "uv", "pip", "install", "--quiet", "--no-deps", "--python", venv / "bin/python",
        "-r", project / "requirements-smt.txt", env=env)  # fmt: skip
    assert run(venv / "bin/smt", "--version", env=env) == f"smt {__version__}"
    where = run(venv / "bin/python", "-c", "import smt; print(smt.__file__)", env=env)
    assert Path(where).is_relative_to(venv)  # the installed copy, not a checkout's
