"""Plumbing: one SageMaker local-mode run, in outputs/.running-<job>/ (the SDK's
local_container_root), ends as outputs/<job>/ with model.tar.gz, output.tar.gz, train.log and
any failure reason; outputs/latest points at it. The SDK (3.27) removes the per-host folders
after a success, but does not keep the log, remove the exited containers, give back the
files its root containers wrote, or keep the reason: this does."""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path


class Tee:  # the SDK streams the containers' output to sys.stdout: copy it to train.log
    def __init__(self, stream, path: Path):
        self.stream, self.file = stream, path.open("a", encoding="utf-8")

    def write(self, text):
        self.file.write(text)
        return self.stream.write(text)

    def __getattr__(self, name):  # flush, isatty ...: the terminal's
        return getattr(self.stream, name)


class LocalRun:
    """`with LocalRun(outputs, args) as run: trainer.train(...)`, then run.report(). Only the
    same image, hyperparameters, hosts and data share run.checkpoints, and resume."""

    def __init__(self, outputs: Path, args):
        name = f"{args.base_job_name}-{time.strftime('%Y%m%d%H%M%S')}"  # as SageMaker's
        self.outputs, self.name, self.args, self.error = outputs.resolve(), name, args, None
        self.root, self.folder = self.outputs / f".running-{name}", self.outputs / name
        files = args.data_dir.rglob("*.npz")
        data = sorted((str(p.relative_to(args.data_dir)), p.stat().st_size) for p in files)
        identity = [args.image, args.hparams, args.instance_count, data]
        digest = hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()[:12]
        self.checkpoints = (args.checkpoint_dir / digest).resolve()
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        print(f"checkpoints: {self.checkpoints} (an interrupted run resumes from here)")
        self.root.mkdir(parents=True)

    def hyperparameters(self, code: Path) -> dict:
        """With CODE_MOUNT=1, local mode mounts a file:// submit directory at /opt/ml/code
        and the toolkit runs train.py from there: the code here, not the image's."""
        if not self.args.code_mount:
            return dict(self.args.hparams)
        print(f"code mount ON: {code} is mounted over /opt/ml/code; edits run without make build")
        mount = {"sagemaker_submit_directory": code.as_uri(), "sagemaker_program": "train.py"}
        return {**self.args.hparams, **mount}

    def __enter__(self):
        self.stdout, sys.stdout = sys.stdout, Tee(sys.stdout, self.root / "train.log")
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        tee, sys.stdout = sys.stdout, self.stdout
        tee.file.close()
        # RuntimeError: the SDK's "exited with code N"; Ctrl-C: the same clean-up, then say so
        handled = isinstance(error, (RuntimeError, KeyboardInterrupt))
        self.error = error if handled else None
        project = re.sub(r"[^-_a-z0-9]", "", self.root.name.lower())  # compose's project name
        containers = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")
        if containers.split():  # docker rm: a second faster than compose down
            docker("rm", "-f", *containers.split())
        for folder in (self.root, self.checkpoints):
            self.reclaim_ownership(folder)
        reasons = [p.read_text().strip() for p in sorted(self.root.glob("algo-*/output/failure"))]
        self.root.rename(self.folder)
        for name in ("model.tar.gz", "output.tar.gz"):
            if (self.folder / "compressed_artifacts" / name).is_file():
                (self.folder / "compressed_artifacts" / name).replace(self.folder / name)
        for leftover in filter(Path.is_dir, self.folder.iterdir()):
            shutil.rmtree(leftover, ignore_errors=True)
        reason = next(filter(None, reasons), None)
        if reason or self.error:
            reason = reason or f"the run ended without a reason ({self.error!r})"
            (self.folder / "failure").write_text(reason + "\n")
        point_latest(self.outputs, self.name)
        return handled

    def report(self) -> int:
        log, failure = self.folder / "train.log", self.folder / "failure"
        if not failure.is_file():
            model = self.folder / "model.tar.gz"
            print(f"\nTraining job {self.name} completed.\nmodel: {model}\nlog:   {log}")
            return 0
        reason = failure.read_text().strip()
        print(f"\nTraining job {self.name} FAILED: {reason}\nlog: {log}")
        if "SIGTERM" in reason or isinstance(self.error, KeyboardInterrupt):
            print("The same command resumes it from its checkpoint.")
        return 1

    def reclaim_ownership(self, folder: Path) -> None:
        """Containers run as root: chown what they wrote back, with the image (no sudo)."""
        uid, gid = os.geteuid(), os.getegid()
        if uid != 0 and any(p.stat().st_uid != uid for p in folder.rglob("*")):
            mount = ["-v", f"{folder}:/run-dir", self.args.image]
            docker("run", "--rm", "--entrypoint", "chown", *mount, "-R", f"{uid}:{gid}", "/run-dir")


def point_latest(outputs: Path, name: str) -> None:
    """outputs/latest -> outputs/NAME, atomically: 'latest' is never missing."""
    latest = outputs / f".latest-{secrets.token_hex(4)}"
    latest.symlink_to(name)
    latest.replace(outputs / "latest")


def docker(*args: str) -> str:
    """A housekeeping docker command: a failure is a warning, never an exception."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"warning: docker {args[0]} failed: {error}", file=sys.stderr)
        return ""
    if done.returncode != 0:
        print(f"warning: docker {args[0]} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return done.stdout
