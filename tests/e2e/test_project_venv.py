"""The project's own virtualenv, made by its Makefile from nothing, as a user's first
`make` makes it. It needs PyPI; one test does it, the others lend the project this test
run's virtualenv (VENV=). The tools come from the project's pin (requirements-smt.txt: a
file:// path to this checkout), and no PYTHONPATH points elsewhere: the installed ones run."""

import os
import sys
from pathlib import Path

from engines import Stopwatch, bake, make, run
from helpers import TEMPLATE_DIR, environment_without_aws
from smt import __version__  # this checkout's tools/smt/__init__.py


def users_environment(tmp_path: Path) -> dict[str, str]:
    """The user's own HOME (pip's or uv's download cache, as on their machine), no AWS, and
    no PYTHONPATH to this checkout's tools."""
    env = environment_without_aws(tmp_path / "aws", HOME=os.environ["HOME"])
    env.pop("PYTHONPATH", None)
    return env


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
    pin = (project / "requirements-smt.txt").read_text().splitlines()[-1]
    assert pin == f"sm-template-tools @ {(TEMPLATE_DIR / 'tools').as_uri()}"
    env = users_environment(tmp_path)
    with Stopwatch("make venv from nothing (PyPI)"):
        make(project, "venv", env=env, timeout=2400)

    venv = project / ".venv"
    code = "import sys, sagemaker, tensorflow, pytest; print(sys.prefix)"
    prefix = run([str(venv / "bin" / "python"), "-c", code], env=env).stdout.split()[-1]
    assert Path(prefix) == venv.absolute()  # its own packages, not another environment's
    assert run([str(venv / "bin" / "aws"), "--version"], env=env).stdout.startswith("aws-cli/")
    # exactly the pinned version of the tools, installed (not this checkout's files in place)
    assert (
        run([str(venv / "bin" / "smt"), "--version"], env=env).stdout.strip()
        == f"smt {__version__}"
    )
    where = run([str(venv / "bin" / "python"), "-c", "import smt; print(smt.__file__)"], env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv.absolute())
    # uv made it, with uv brought by this machine's pip: no pip of its own (ensurepip's 4 s)
    assert not (venv / "bin" / "pip").exists()

    before = snapshot(venv)
    again = make(project, "venv", env=env, timeout=600)
    assert again.stdout.strip() == "make: Nothing to be done for 'venv'."
    assert snapshot(venv) == before  # nothing installed, removed or rewritten


def test_make_venv_brings_uv_by_the_venvs_own_pip_when_the_python_that_makes_it_has_none(
    tmp_path,
):
    bake_env = environment_without_aws(tmp_path / "aws", HOME=str(tmp_path / "home"))
    bake(tmp_path, bake_env, aws_checks="skip")
    project = tmp_path / "mnist_on_sagemaker"
    python = tmp_path / "python-without-pip"  # as Debian's python3 without python3-pip
    run([sys.executable, "-m", "venv", "--without-pip", str(python)])
    env = users_environment(tmp_path)
    env["PATH"] = os.pathsep.join(  # no uv of ours: the project brings its own
        d for d in env["PATH"].split(os.pathsep) if not Path(d, "uv").exists()
    )
    make(project, "venv", env=env, timeout=2400, PYTHON=python / "bin" / "python")
    venv = project / ".venv"
    assert run([str(venv / "bin" / "uv"), "--version"], env=env).stdout.startswith("uv 0.13.9")
    assert run([str(venv / "bin" / "python"), "-m", "pip", "--version"], env=env).returncode == 0
    assert run([str(venv / "bin" / "python"), "-c", "import sagemaker"], env=env).returncode == 0
