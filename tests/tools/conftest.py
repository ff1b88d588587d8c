"""Fixtures of the tools' unit tests: they import smt and call it in-process, in a copy of one
project baked once per session (no bake per test), against the session's moto server."""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import bake_with_data
from smt import cli, project

SLUG = "mnist_on_sagemaker"
USER_MODULES = ("job_contract", "sagemaker_runtime", "run_estimator")


@pytest.fixture(scope="session")
def baked(tmp_path_factory) -> Path:
    """A project baked with the defaults (AWS checks skipped) for moto's account, with tiny
    training, validation and test channels in data/."""
    return bake_with_data(tmp_path_factory.mktemp("baked"), SLUG)


@pytest.fixture
def project_dir(baked, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the baked project, as the working directory; smt finds it anew."""
    copy = tmp_path / SLUG
    shutil.copytree(baked, copy, symlinks=True)
    monkeypatch.chdir(copy)
    project.root.cache_clear()
    for name in USER_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    yield copy
    project.root.cache_clear()
    for name in USER_MODULES:
        sys.modules.pop(name, None)


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def smt(project_dir, capsys):
    """smt("train-remote", "--wait", "0"): the CLI in-process, in project_dir: its exit code
    and what it printed."""

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as done:  # argparse's own errors
            code = done.code
        printed = capsys.readouterr()
        return Ran(code, printed.out, printed.err)

    return run


@pytest.fixture
def aws(moto, monkeypatch):
    """This process's environment pointed at the test's (emptied) moto server."""
    for key, value in moto.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return moto
