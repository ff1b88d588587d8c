"""The project's folder (the one holding settings.env), and the user's files the tools load by
path (code/ is the image's folder, not a package): job_contract.py, sagemaker_runtime.py and
run_estimator.py; and the one runner of external commands."""

import importlib.util
import subprocess
import sys
from functools import cache
from pathlib import Path

from smt.errors import Failure
from smt.settings import SETTINGS_FILE


@cache
def root() -> Path:
    """The nearest folder, from the working directory up, that holds settings.env."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise Failure(f"no {SETTINGS_FILE} in {here} or above: run this in a project made from "
                  "sm-template (cookiecutter gh:org/sm-template)")  # fmt: skip


def load_file(name: str, path: Path):
    """The module in `path` as sys.modules[name] (once)."""
    if name not in sys.modules:
        if not path.is_file():
            raise Failure(f"{path} is missing: the project's tools need it")
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(sys.modules[name])
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def runtime():
    """code/sagemaker_runtime.py: coerce_hyperparameter, metric_definitions, NUMBER ..."""
    code = root() / "code"
    load_file("job_contract", code / "job_contract.py")  # sagemaker_runtime imports it
    return load_file("sagemaker_runtime", code / "sagemaker_runtime.py")


def contract():
    """code/job_contract.py: HYPERPARAMETERS, METRIC_NAMES, SEARCH_SPACE, OBJECTIVE."""
    runtime()
    return sys.modules["job_contract"]


def job_definition():
    """run_estimator.py, whose trainer_arguments(job) is the one user function the tools call."""
    return load_file("run_estimator", root() / "run_estimator.py")


def run(*command: str, timeout: float = 20, late: str = "", capture=True, stdin=None):
    """`command`'s CompletedProcess; when it cannot run or is not done within `timeout` s,
    returncode 1 and "no answer", or, given `late` (what was running), a Failure."""
    try:
        return subprocess.run(
            command, timeout=timeout, text=True, input=stdin, capture_output=capture
        )
    except subprocess.TimeoutExpired:
        if late:
            raise Failure(f"{late} did not finish within {timeout:g} s") from None
    except OSError:
        pass
    return subprocess.CompletedProcess(command, 1, "", "no answer")


def wait_until_ready(url: str, gone, seconds: float) -> str | None:
    """None once `url` answers 200; else why not: the server's own refusal (its JSON "error"),
    gone()'s reason when what serves it has ended, or the time out. Our own loop: there is no
    waiter for an HTTP server (serve-local's container, make ui's mlflow server)."""
    import json  # here: urllib.request alone doubles the import time of every command
    import time
    import urllib.error
    import urllib.request

    deadline, path = time.monotonic() + seconds, "/" + url.split("/", 3)[-1]
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return None
        except urllib.error.HTTPError as refused:  # up, and saying why it cannot serve
            try:
                said = json.loads(refused.read() or b"{}").get("error")
            except ValueError:  # not JSON: an HTML page
                said = None
            return said or f"{path} {refused.code}"
        except OSError:  # not listening yet
            if reason := gone():
                return reason
            time.sleep(0.5)
    return f"{path} did not answer within {seconds:g} s"


def git_state() -> dict[str, str]:
    """The commit ("none" outside git) and whether the work tree has changes, for labels."""
    git = ("git", "-C", str(root()))
    head = run(*git, "rev-parse", "--short=12", "HEAD")
    commit = head.stdout.strip() if head.returncode == 0 else ""
    changes = commit and run(*git, "status", "--porcelain").stdout.strip()
    return {"commit": commit or "none", "dirty": str(bool(changes))}
