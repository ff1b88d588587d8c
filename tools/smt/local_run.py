"""A local-mode run in outputs/.running-<job>/ ends as outputs/<job>/ (model.tar.gz, train.log,
any failure reason; outputs/latest points at it): the SDK (3.27) keeps neither log nor reason,
and leaves the exited containers and what its root containers wrote."""

import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

from smt import aws, image
from smt.errors import Failure


class Tee:  # the SDK streams the containers' output to sys.stdout: copy it to train.log
    def __init__(self, stream, path: Path):
        self.stream, self.file = stream, path.open("a", encoding="utf-8")

    def write(self, text):
        self.file.write(text)
        return self.stream.write(text)

    def __getattr__(self, name):  # flush, isatty ...: the terminal's
        return getattr(self.stream, name)


class LocalRun:
    """`with LocalRun(outputs, job) as run: trainer.train(...)`, then run.report(). Only the
    same image, hyperparameters, hosts and data share run.checkpoints, and resume."""

    def __init__(self, outputs: Path, job):
        name = f"{job.name}-{time.strftime('%Y%m%d%H%M%S')}"  # as SageMaker's
        from smt.tracking import ms  # here: tracking imports this module

        self.started = ms()  # MLflow's start_time
        self.outputs, self.name, self.job, self.error = outputs.resolve(), name, job, None
        self.root, self.folder = self.outputs / f".running-{name}", self.outputs / name
        files = job.data_dir.rglob("*.npz")
        data = sorted((str(p.relative_to(job.data_dir)), p.stat().st_size) for p in files)
        identity = [job.image, job.hyperparameters, job.instance_count, data]
        digest = hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()[:12]
        self.checkpoints = (job.checkpoint_dir / digest).resolve()

    def __enter__(self):
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        print(f"checkpoints: {self.checkpoints} (an interrupted run resumes from here)")
        self.root.mkdir(parents=True)
        self.stdout, sys.stdout = sys.stdout, Tee(sys.stdout, self.root / "train.log")
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        """The SDK's RuntimeError ("exited with code N") and Ctrl-C are reported by report();
        any other error goes on, to be said in one line (or, a bug, with its traceback)."""
        tee, sys.stdout = sys.stdout, self.stdout
        tee.file.close()
        self.error = error
        project = re.sub(r"[^-_a-z0-9]", "", self.root.name.lower())  # compose's project name
        label = f"label=com.docker.compose.project={project}"
        if containers := housekeeping("ps", "-aq", "--filter", label).split():
            housekeeping("rm", "-f", *containers)  # docker rm: a second faster than compose down
        uid, gid = os.geteuid(), os.getegid()  # the containers ran as root: chown back what
        for folder in (self.root, self.checkpoints):  # they wrote, with the image (no sudo)
            if uid != 0 and any(p.stat().st_uid != uid for p in folder.rglob("*")):
                chown = ["--entrypoint", "chown", "-v", f"{folder}:/run-dir", self.job.image]
                housekeeping("run", "--rm", *chown, "-R", f"{uid}:{gid}", "/run-dir")
        reasons = [p.read_text().strip() for p in sorted(self.root.glob("algo-*/output/failure"))]
        self.root.rename(self.folder)
        for packed in (self.folder / "compressed_artifacts").glob("*.tar.gz"):  # model, output
            packed.replace(self.folder / packed.name)
        for leftover in filter(Path.is_dir, self.folder.iterdir()):
            shutil.rmtree(leftover, ignore_errors=True)
        unfinished = error and f"the run did not finish: {aws.explain(error)}".rstrip(": ")
        if reason := next(filter(None, reasons), unfinished):
            (self.folder / "failure").write_text(reason + "\n")
        point_latest(self.outputs, self.name)
        return isinstance(error, (RuntimeError, KeyboardInterrupt))

    def report(self) -> int:
        log, failure = self.folder / "train.log", self.folder / "failure"
        if not failure.is_file():
            model = self.folder / "model.tar.gz"
            print(f"\nTraining job {self.name} completed.\nmodel: {model}\nlog:   {log}")
            return 0
        reason = failure.read_text().strip()
        print(f"\nTraining job {self.name} FAILED: {reason}\nlog: {log}")
        if stopped(reason) or isinstance(self.error, KeyboardInterrupt):
            print("The same command resumes it from its checkpoint.")
        return 1


def stopped(reason: str) -> bool:
    """A run's failure reason says it was stopped (SIGTERM: spot, make stop; or Ctrl-C), not
    that it failed: the same command resumes it."""
    return "SIGTERM" in reason or "KeyboardInterrupt" in reason


def point_latest(outputs: Path, name: str) -> None:
    """outputs/latest -> outputs/NAME, atomically: 'latest' is never missing."""
    latest = outputs / f".latest-{secrets.token_hex(4)}"
    latest.symlink_to(name)
    latest.replace(outputs / "latest")


def housekeeping(*args: str) -> str:
    """A docker command after the run: a failure is a warning, so the clean-up goes on."""
    try:
        return image.docker(*args, timeout=120, doing=f"docker {args[0]}", capture=True)
    except Failure as error:
        print(f"warning: {error}", file=sys.stderr)
        return ""
