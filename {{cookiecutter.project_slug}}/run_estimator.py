#!/usr/bin/env python3
"""Run the training image as a SageMaker training job, locally or on SageMaker.

  local   SageMaker local mode: the image runs in Docker on this machine, with the
          channels mounted from --data-dir. No AWS account, credentials or network needed.
  remote  a real SageMaker training job: the image must be in ECR (make push), the
          channels come from S3 (local data is uploaded under the output path unless
          --data-s3 names where it already is).

Both modes print the container's log as it runs and exit non-zero with the job's
failure reason when it fails. Several hosts (--instance-count) train one model together;
--spot runs a remote job on spot capacity, resuming from its checkpoints after an
interruption. Local runs get the project's checkpoint folder as a channel, so an
interrupted local run resumes too. The Makefile passes every option; run with --help to see
them. The SageMaker SDK (v3, ModelTrainer) is imported only once the arguments are good.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT_DIR / "code"))
from job_contract import coerce_hyperparameter, metric_definitions  # noqa: E402

CHANNELS = ("training", "test")  # "training" is required, "test" is used when present
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
INPUT_MODES = ("File", "FastFile", "Pipe")
# Where train.py keeps its checkpoints: SageMaker's own folder remotely (synced with S3),
# a channel mounted read-write from the project's checkpoint folder locally.
REMOTE_CHECKPOINT_DIR = "/opt/ml/checkpoints"
LOCAL_CHECKPOINT_CHANNEL = "checkpoints"
DOCKER_TIMEOUT_SECONDS = 120
AWS_CONNECT_TIMEOUT_SECONDS = 10
AWS_READ_TIMEOUT_SECONDS = 60
JOB_NAME_BASE_LIMIT = 47  # the SDK appends -YYYYmmddHHMMSS; SageMaker allows 63 characters

log = logging.getLogger("run_estimator")


class LaunchError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


# ---------------------------------------------------------------- arguments


def parse_hparams(text: str) -> dict:
    """'epochs=2 learning-rate=0.001' -> {'epochs': 2, 'learning-rate': 0.001}, checked
    against what train.py accepts (code/job_contract.py)."""
    hyperparameters = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise argparse.ArgumentTypeError(f"{item!r} is not name=value (e.g. epochs=3)")
        try:
            hyperparameters[name] = coerce_hyperparameter(name, value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return hyperparameters


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def s3_uri(text: str) -> str:
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an s3://bucket/prefix URI")
    return text.rstrip("/")


def saved_answers() -> dict:
    """The answers the project was generated with (.cookiecutter.json), as data."""
    try:
        return json.loads((PROJECT_DIR / ".cookiecutter.json").read_text())
    except (OSError, ValueError):
        return {}


def build_parser() -> argparse.ArgumentParser:
    answers = saved_answers()
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("mode", choices=["local", "remote"], help="where the job runs")
    parser.add_argument("--image", required=True, help="training image (local tag or ECR URI)")
    # --hparams is checked in check_arguments, once --skip-checks is known
    parser.add_argument(
        "--hparams",
        default="",
        metavar='"NAME=VALUE ..."',
        help='hyperparameters, e.g. "epochs=2 learning-rate=0.001"',
    )
    parser.add_argument("--instance-count", type=positive_int, default=1)
    parser.add_argument(
        "--instance-type",
        default=answers.get("instance_type", "ml.m5.large"),
        help="remote: the ml.* instance type (local mode runs on this machine)",
    )
    parser.add_argument(
        "--role",
        default=answers.get("role_arn"),
        help="remote: IAM role ARN that SageMaker assumes",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or answers.get("aws_region"),
        help="remote: AWS region",
    )
    parser.add_argument(
        "--s3-output-path",
        type=s3_uri,
        default=answers.get("s3_output_path"),
        help="remote: where SageMaker writes model.tar.gz",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=PROJECT_DIR / "data",
        help="folder with one sub-folder per channel (training, test)",
    )
    parser.add_argument(
        "--data-s3",
        type=s3_uri,
        default=None,
        help="remote: S3 prefix holding the channels as sub-prefixes; "
        "default: upload --data-dir to <s3-output-path>/data",
    )
    parser.add_argument(
        "--max-run",
        type=positive_int,
        default=24 * 3600,
        metavar="SECONDS",
        help="remote: stop the job after this many seconds (default one day)",
    )
    parser.add_argument(
        "--outputs-dir",
        type=Path,
        default=PROJECT_DIR / "outputs",
        help="local: one folder per run, and 'latest' pointing at the newest",
    )
    parser.add_argument(
        "--project-name",
        default=answers.get("project_name", PROJECT_DIR.name),
        help="value of the ProjectName tag on the job",
    )
    parser.add_argument(
        "--base-job-name", default=answers.get("project_slug", PROJECT_DIR.name).replace("_", "-")
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="remote: submit and return without streaming the logs",
    )
    parser.add_argument(
        "--data-distribution",
        choices=DISTRIBUTIONS,
        default=DISTRIBUTIONS[0],
        help="remote, several hosts: every host gets all the data "
        "(FullyReplicated) or a share of the files (ShardedByS3Key)",
    )
    parser.add_argument(
        "--spot",
        action="store_true",
        help="remote: managed spot training, resuming from checkpoints",
    )
    parser.add_argument(
        "--max-wait",
        type=positive_int,
        default=None,
        metavar="SECONDS",
        help="remote, spot: give up after this long, waiting included "
        "(default twice --max-run; at least --max-run)",
    )
    parser.add_argument(
        "--checkpoint-s3",
        type=s3_uri,
        default=None,
        help="remote: S3 prefix for checkpoints (default, with --spot: "
        "<s3-output-path>/checkpoints/<job>/)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=PROJECT_DIR / "checkpoints",
        help="local: the project's checkpoint folder, mounted into the container",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="local: give the containers this machine's GPUs (local_gpu)",
    )
    parser.add_argument(
        "--code-mount",
        action="store_true",
        help="local: mount code/ over the image's /opt/ml/code, so edits run without a rebuild",
    )
    parser.add_argument(
        "--keep-alive",
        type=positive_int,
        default=None,
        metavar="SECONDS",
        help="remote: keep the instances warm this long after the job (a warm "
        "pool), so the next job starts in seconds",
    )
    parser.add_argument(
        "--input-mode",
        choices=INPUT_MODES,
        default=INPUT_MODES[0],
        help="remote: File (download first), FastFile (stream on read) or "
        "Pipe (a FIFO; train.py reads files, so not for it as is)",
    )
    parser.add_argument(
        "--skip-checks",
        action="store_true",
        help="send the job as given, without this launcher's checks of the "
        "hyperparameters and data (to see how train.py reports them)",
    )
    return parser


def raw_hparams(text: str) -> dict:
    """'a=1 b=x' -> {'a': '1', 'b': 'x'}, unchecked (for --skip-checks)."""
    return dict(item.partition("=")[::2] for item in text.split())


def check_arguments(args) -> None:
    """What argparse cannot see: combinations, and what each mode needs. Replaces the
    hyperparameter text with typed values."""
    if args.skip_checks:
        args.hparams = raw_hparams(args.hparams)
    else:
        try:
            args.hparams = parse_hparams(args.hparams)
        except argparse.ArgumentTypeError as error:
            raise LaunchError(f"--hparams: {error}") from None
    if args.spot and args.mode == "remote":
        max_wait = args.max_wait or 2 * args.max_run
        if max_wait < args.max_run:
            raise LaunchError(
                f"--max-wait {max_wait}s is shorter than --max-run {args.max_run}s; SageMaker "
                f"counts the run inside the wait: use MAX_WAIT >= {args.max_run}"
            )
        args.max_wait = max_wait
    elif args.max_wait:
        raise LaunchError("--max-wait only applies to spot jobs: add SPOT=1 (or --spot)")
    if args.mode == "local" and (args.keep_alive or args.input_mode != INPUT_MODES[0]):
        raise LaunchError(
            "KEEP_ALIVE and INPUT_MODE are settings of remote jobs; local runs "
            "start at once and read files"
        )
    if args.mode == "local" and args.data_distribution != DISTRIBUTIONS[0]:
        raise LaunchError(
            "local mode gives every host all the data; ShardedByS3Key is for "
            "remote jobs (SageMaker local mode supports FullyReplicated only)"
        )
    shards = len(list((args.data_dir / "training").glob("*.npz")))
    if (
        args.mode == "remote"
        and not args.data_s3
        and args.data_distribution == DISTRIBUTIONS[1]
        and shards % args.instance_count
    ):
        raise LaunchError(
            f"ShardedByS3Key gives each of the {args.instance_count} hosts whole files, so "
            f"the {shards} file(s) in {args.data_dir / 'training'} must divide evenly among "
            f"them: write them with make data SHARDS={args.instance_count}"
        )
    if args.mode == "remote":
        for option, value in (
            ("--role", args.role),
            ("--region", args.region),
            ("--s3-output-path", args.s3_output_path),
        ):
            if not value:
                raise LaunchError(f"{option} is required for remote jobs")
        if not args.instance_type.startswith("ml."):
            raise LaunchError(f"--instance-type {args.instance_type!r}: use an ml.* type")
    if (args.mode == "local" or not args.data_s3) and not args.skip_checks:
        if not (args.data_dir / "training").is_dir():
            raise LaunchError(f"no training data in {args.data_dir / 'training'}; run: make data")


def unique_job_base(base_job_name: str) -> str:
    """The SDK names jobs <base>-<seconds timestamp>: two jobs started in the same second
    would collide, so the base gets a random part."""
    cleaned = "".join(c if c.isalnum() else "-" for c in base_job_name).strip("-") or "job"
    return f"{cleaned[: JOB_NAME_BASE_LIMIT - 7]}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------- local mode


def remove_containers(run_root: Path) -> None:
    """Remove the run's exited containers. Compose names the project after the run's
    folder (lowercase, only [-_a-z0-9]); `docker rm` is a second faster than compose down,
    and the shared sagemaker-local network is left for the next run."""
    project = re.sub(r"[^-_a-z0-9]", "", run_root.name.lower())
    try:
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("warning: could not list the run's containers: %s", error)
        return
    if listed.stdout.split():
        run_quietly(["docker", "rm", "-f", *listed.stdout.split()], "removing the run's containers")


def run_quietly(command: list[str], what: str) -> None:
    """Run a housekeeping command; report a failure as a warning, never raise."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=DOCKER_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            log.warning("warning: %s failed: %s", what, done.stderr.strip()[-300:])
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("warning: %s failed: %s", what, error)


def reclaim_ownership(folder: Path, image: str) -> None:
    """Containers run as root, so on Linux what they wrote under the project is root's.
    Give it back to the user, with the training image itself (no sudo needed)."""
    if os.geteuid() == 0 or all(p.stat().st_uid == os.geteuid() for p in folder.rglob("*")):
        return
    run_quietly(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "chown",
            "-v",
            f"{folder}:/run-dir",
            image,
            "-R",
            f"{os.geteuid()}:{os.getegid()}",
            "/run-dir",
        ],
        f"giving {folder} back to you (sudo chown -R $USER {folder} does it too)",
    )


def job_name_of(run_root: Path) -> str | None:
    """The job name the SDK chose, from the compose file it wrote for the run."""
    import yaml  # a dependency of the SDK

    try:
        compose = yaml.safe_load((run_root / "docker-compose.yaml").read_text())
        for entry in compose["services"]["algo-1"]["environment"]:
            if entry.startswith("TRAINING_JOB_NAME="):
                return entry.split("=", 1)[1]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        pass
    return None


def failure_reason(run_root: Path) -> str | None:
    """What train.py (or the toolkit) wrote to /opt/ml/output/failure, on any host."""
    for path in sorted(run_root.glob("algo-*/output/failure")) + [
        run_root / "artifacts" / "output" / "failure"
    ]:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
    return None


def tidy_run_folder(run_root: Path) -> None:
    """Keep model.tar.gz, output.tar.gz, train.log and the compose file; drop the copies."""
    compressed = run_root / "compressed_artifacts"
    for name in ("model.tar.gz", "output.tar.gz"):
        if (compressed / name).is_file():
            (compressed / name).replace(run_root / name)
    for leftover in [
        "compressed_artifacts",
        "artifacts",
        "model",
        "output",
        "input",
        "shared",
        *(p.name for p in run_root.glob("algo-*")),
    ]:
        shutil.rmtree(run_root / leftover, ignore_errors=True)


def point_latest(outputs: Path, run_folder: Path) -> None:
    link = outputs / "latest"
    temporary = outputs / f".latest-{secrets.token_hex(4)}"
    temporary.symlink_to(run_folder.name)
    temporary.replace(link)  # atomic: 'latest' is never missing


class Tee:
    """Send what the SDK streams from the containers to the terminal and to a log file."""

    def __init__(self, stream, path: Path):
        self.stream, self.file = stream, path.open("a", encoding="utf-8")

    def write(self, text):
        self.file.write(text)
        return self.stream.write(text)

    def flush(self):
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run_identity(args) -> str:
    """A short hash of what makes two local runs the same run: the image, the
    hyperparameters, the host count and the data. Only the same run resumes from a
    checkpoint; a run with other settings starts afresh in a folder of its own."""
    data = sorted(
        (str(p.relative_to(args.data_dir)), p.stat().st_size) for p in args.data_dir.rglob("*.npz")
    )
    identity = json.dumps([args.image, args.hparams, args.instance_count, data], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def run_local(args) -> int:
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    outputs = args.outputs_dir.resolve()
    base = unique_job_base(args.base_job_name)
    run_root = outputs / f".running-{base}"
    run_root.mkdir(parents=True)
    checkpoints = (args.checkpoint_dir / run_identity(args)).resolve()
    checkpoints.mkdir(parents=True, exist_ok=True)
    hyperparameters = dict(args.hparams)
    if args.code_mount:
        # SageMaker local mode mounts a file:// submit directory at /opt/ml/code, and the
        # toolkit runs sagemaker_program from there: the code of this checkout, not the image's.
        hyperparameters.update(
            sagemaker_submit_directory=(PROJECT_DIR / "code").as_uri(), sagemaker_program="train.py"
        )
        print(
            f"code mount ON: {PROJECT_DIR / 'code'} is mounted over /opt/ml/code; edits run "
            f"without make build (the image {args.image} supplies only the packages)"
        )
    trainer = ModelTrainer(
        training_mode=Mode.LOCAL_CONTAINER,
        local_container_root=str(run_root),
        training_image=args.image,
        base_job_name=base,
        compute=Compute(
            instance_type="local_gpu" if args.gpu else "local", instance_count=args.instance_count
        ),
        hyperparameters=hyperparameters,
        environment={"CHECKPOINT_DIR": f"/opt/ml/input/data/{LOCAL_CHECKPOINT_CHANNEL}"},
    )
    channels = [
        InputData(channel_name=name, data_source=str((args.data_dir / name).resolve()))
        for name in CHANNELS
        if (args.data_dir / name).is_dir()
    ] + [InputData(channel_name=LOCAL_CHECKPOINT_CHANNEL, data_source=str(checkpoints))]
    print(
        f"checkpoints: {checkpoints} (an interrupted run resumes from here; make clean removes it)"
    )
    error = None
    real_stdout = sys.stdout
    sys.stdout = Tee(real_stdout, run_root / "train.log")
    try:
        trainer.train(input_data_config=channels, wait=True, logs=True)
    except (RuntimeError, KeyboardInterrupt) as caught:  # RuntimeError: "exited with code N"
        error = caught
    finally:
        sys.stdout.flush()
        sys.stdout = real_stdout
        remove_containers(run_root)
        reclaim_ownership(run_root, args.image)
        reclaim_ownership(checkpoints, args.image)
    job_name = job_name_of(run_root) or base
    reason = failure_reason(run_root)
    run_folder = outputs / job_name
    run_root.rename(run_folder)
    tidy_run_folder(run_folder)
    point_latest(outputs, run_folder)
    if reason or error:
        reason = reason or f"the run ended without a reason ({error!r})"
        (run_folder / "failure").write_text(reason + "\n")
        print(f"\nTraining job {job_name} FAILED: {reason}\nlog: {run_folder / 'train.log'}")
        if "SIGTERM" in reason or isinstance(error, KeyboardInterrupt):
            print("The same command resumes it from its checkpoint.")
        return 1
    print(
        f"\nTraining job {job_name} completed.\nmodel: {run_folder / 'model.tar.gz'}\n"
        f"log:   {run_folder / 'train.log'}  (outputs/latest points here)"
    )
    return 0


# ---------------------------------------------------------------- remote mode


def aws_session(region: str):
    """A boto3 session whose every client has timeouts and few retries."""
    import boto3
    import botocore.config
    import botocore.session

    core = botocore.session.get_session()
    core.set_default_client_config(
        botocore.config.Config(
            connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
            read_timeout=AWS_READ_TIMEOUT_SECONDS,
            retries={"max_attempts": 3, "mode": "standard"},
        )
    )
    return boto3.Session(botocore_session=core, region_name=region)


def upload_channels(session, data_dir: Path, destination: str) -> str:
    """Make <destination>/<channel>/ hold exactly data_dir/<channel>/ (files left there by
    an earlier upload are removed: a job would read them too); return destination."""
    s3 = session.client("s3")
    bucket, _, prefix = destination[len("s3://") :].partition("/")
    for channel in CHANNELS:
        channel_prefix = "/".join(filter(None, [prefix, channel])) + "/"
        uploaded = set()
        for path in sorted((data_dir / channel).rglob("*")):
            if path.is_file():
                key = channel_prefix + path.relative_to(data_dir / channel).as_posix()
                print(f"uploading {path} to s3://{bucket}/{key}")
                s3.upload_file(str(path), bucket, key)
                uploaded.add(key)
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=channel_prefix
        ):
            for stale in [o["Key"] for o in page.get("Contents", []) if o["Key"] not in uploaded]:
                print(f"removing s3://{bucket}/{stale} (not in {data_dir / channel})")
                s3.delete_object(Bucket=bucket, Key=stale)
    return destination


def s3_prefix_has_objects(session, uri: str) -> bool:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    listing = session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return listing.get("KeyCount", 0) > 0


def run_remote(args) -> int:
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        MetricDefinition,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
        Tag,
    )
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    session = aws_session(args.region)
    data_s3 = args.data_s3 or upload_channels(session, args.data_dir, f"{args.s3_output_path}/data")
    names = (
        [n for n in CHANNELS if (args.data_dir / n).is_dir()]
        if not args.data_s3
        else [
            n
            for n in CHANNELS
            if n == "training" or s3_prefix_has_objects(session, f"{data_s3}/{n}/")
        ]
    )
    channels = [
        InputData(
            channel_name=name,
            data_source=S3DataSource(
                s3_data_type="S3Prefix",
                s3_uri=f"{data_s3}/{name}/",
                s3_data_distribution_type=args.data_distribution,
            ),
        )
        for name in names
    ]
    base = unique_job_base(args.base_job_name)
    checkpoint_s3 = args.checkpoint_s3 or (
        f"{args.s3_output_path}/checkpoints/{base}" if args.spot else None
    )
    trainer = ModelTrainer(
        training_mode=Mode.SAGEMAKER_TRAINING_JOB,
        sagemaker_session=Session(boto_session=session),
        role=args.role,
        training_image=args.image,
        base_job_name=base,
        compute=Compute(
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            enable_managed_spot_training=args.spot or None,
            keep_alive_period_in_seconds=args.keep_alive,
        ),
        training_input_mode=args.input_mode,
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=args.max_run, max_wait_time_in_seconds=args.max_wait
        ),
        checkpoint_config=checkpoint_s3
        and CheckpointConfig(s3_uri=f"{checkpoint_s3}/", local_path=REMOTE_CHECKPOINT_DIR),
        output_data_config=OutputDataConfig(s3_output_path=args.s3_output_path),
        hyperparameters=args.hparams,
        tags=[Tag(key="ProjectName", value=args.project_name)],
    ).with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in metric_definitions()]
    )
    try:
        trainer.train(input_data_config=channels, wait=not args.no_wait, logs=not args.no_wait)
    except KeyboardInterrupt:
        job = getattr(trainer, "_latest_training_job", None)
        if job is None:
            raise
        print(
            f"\nstopped waiting; job {job.training_job_name} goes on (and is billed). "
            f"{follow_or_stop(job.training_job_name)}"
        )
        return 130
    except Exception as error:  # the SDK raises its own types on a failed job; describe says why
        if getattr(trainer, "_latest_training_job", None) is None:
            raise
        log.debug("wait ended with %r", error)
    job = trainer._latest_training_job
    job.refresh()
    status = job.training_job_status
    print(f"\nTraining job {job.training_job_name}: {status} ({job.secondary_status})")
    if args.no_wait:
        print(follow_or_stop(job.training_job_name))
        return 0
    if status != "Completed":  # Failed, Stopped (MaxRuntime, spot MaxWait), or still running
        print(f"FAILED: {job.failure_reason or 'the job ended as ' + status}")
        return 1
    print(f"model: {getattr(job.model_artifacts, 's3_model_artifacts', '(none)')}")
    return 0


def follow_or_stop(job_name: str) -> str:
    return f"Follow it: make logs JOB={job_name}; stop it: make stop JOB={job_name}"


# ---------------------------------------------------------------- main


def explain(error: Exception) -> str:
    """One line for the failures of AWS and Docker that users hit."""
    name = type(error).__name__
    if name == "NoCredentialsError":
        return "no AWS credentials found; run 'aws configure' (or aws sso login) and retry"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return f"could not reach AWS ({error}); check your network and region"
    if name == "ClientError":
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return "your AWS credentials have expired; refresh them (aws sso login) and retry"
        if code == "NoSuchBucket":
            return (
                f"the S3 bucket does not exist ({message}); create it with: aws s3 mb s3://BUCKET"
            )
        return f"AWS refused the request: {code}: {message}"
    return f"{name}: {error}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Opt out of the SDK's telemetry unless the user chose a config of their own.
    os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(PROJECT_DIR / "sagemaker.yaml"))
    try:
        check_arguments(args)
        return run_local(args) if args.mode == "local" else run_remote(args)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("DEBUG"):
            raise
        print(f"error: {explain(error)} (DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
