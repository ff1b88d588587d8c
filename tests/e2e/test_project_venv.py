"""The project's own virtualenv, made by its Makefile from nothing, as a user's first
`make` makes it. It needs PyPI; one test does it, the others lend the project this test
run's virtualenv (VENV=)."""

import os
from pathlib import Path

from engines import Stopwatch, bake, make, run
from helpers import environment_without_aws


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder`: its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def test_make_venv_makes_a_working_virtualenv_from_nothing_and_a_second_run_does_nothing(
    tmp_path,
):
    bake_env = environment_without_aws(tmp_path / "aws", HOME=str(tmp_path / "home"))
    bake(tmp_path, bake_env, aws_checks="skip")
    project = tmp_path / "mnist_on_sagemaker"
    assert not (project / ".venv").exists()
    # The user's own HOME: pip's (or uv's) download cache, as on their machine.
    env = environment_without_aws(tmp_path / "aws", HOME=os.environ["HOME"])
    with Stopwatch("make venv from nothing (PyPI)"):
        make(project, "venv", env=env, timeout=2400)

    venv = project / ".venv"
    code = "import sys, sagemaker, tensorflow, pytest; print(sys.prefix)"
    prefix = run([str(venv / "bin" / "python"), "-c", code], env=env).stdout.split()[-1]
    assert Path(prefix) == venv.absolute()  # its own packages, not another environment's
    assert run([str(venv / "bin" / "aws"), "--version"], env=env).stdout.startswith("aws-cli/")

    before = snapshot(venv)
    again = make(project, "venv", env=env, timeout=600)
    assert again.stdout.strip() == "make: Nothing to be done for 'venv'."
    assert snapshot(venv) == before  # nothing installed, removed or rewritten
