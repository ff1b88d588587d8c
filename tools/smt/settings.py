"""The one table of settings: each has a name, a type, one default, a help text, and the
commands that read it. The CLI's options, `make help`, the reference's settings table and
the checks all come from TABLE; nothing else declares a setting or its default.

A command's value of a setting is, first to last: its option (`smt train-remote
--instance-count 2`), the environment (make passes `make train-remote INSTANCE_COUNT=2` so),
the project's settings.env, the table's default."""

import os
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from smt.errors import BadSetting
from smt.setting_types import (
    CODEBUILD,
    INSTANCE,
    MODEL_TAR,
    NATURAL,
    PATH,
    S3_URI,
    SECONDS,
    STACK,
    SWITCH,
    TEXT,
    WHOLE,
    Setting,
    build_timeout,
    one_of,
    serverless_memory,
)

SETTINGS_FILE = "settings.env"
# make's own settings, read before the tools exist (the Makefile's ?= lines): allowed on make's
# command line, read by no command here.
MAKE_ONLY = {"VENV", "PYTHON", "INSTALLER", "TEMPLATE"}


# Groups of commands that read the same settings.
AWS_ONLY = (
    "train-remote tune tune-status tune-stop logs stop deploy undeploy bootstrap"
    " status teardown build-remote"
)
AWS = f"{AWS_ONLY} metrics"  # metrics: of a local run too
# Those that tag this project's resources, or find them by the tag (PROJECT_NAME) and by the
# names they begin with (BASE_JOB_NAME): logs, stop and metrics take a job's name as given.
OWNED = "train-remote tune tune-status tune-stop deploy undeploy bootstrap status teardown"
NAMED = "train-remote tune tune-status tune-stop deploy bootstrap teardown"
ECR = "train-remote tune deploy build-remote"  # and login, push, doctor: they need the account
IMAGE = "build build-remote push train-local tune-local serve-local train-remote tune deploy doctor"
LOCAL, REMOTE = "train-local tune-local", "train-remote tune"
TRACKED = "train-local tune-local train-remote tune deploy serve-local runs ui"  # MLflow's


def needed(commands: str) -> str:
    """Each of `commands` needs the setting: an empty one is refused in one line."""
    return " ".join(f"{command}!" for command in commands.split())


def S(name: str, type, default: str | None, commands: str, help: str) -> Setting:
    return Setting(name, type, default, tuple(dict.fromkeys(commands.split())), help)


TABLE = [
    # ---- AWS: your answers to the template, in settings.env
    S("AWS_ACCOUNT_ID", TEXT, None, needed(f"{ECR} login push doctor"),
      "the AWS account that runs the jobs"),
    S("AWS_REGION", TEXT, None, needed(f"{AWS_ONLY} login push doctor")
      + " metrics predict serve-local runs",
      "the region of ECR, S3 and SageMaker"),
    S("ROLE_ARN", TEXT, None, "train-remote! tune! deploy! doctor!",
      "the IAM role SageMaker assumes"),
    S("ECR_REPOSITORY", TEXT, None, needed(f"{IMAGE} bootstrap"),
      "the ECR repository of the image"),
    S("REGISTRY", TEXT, None, f"{ECR} login push",
      "the ECR registry host (default: from account and region)"),
    S("S3_OUTPUT_PATH", S3_URI, None, needed(f"{REMOTE} doctor build-remote") + " deploy",
      "where SageMaker writes models; data/ is uploaded to S3_OUTPUT_PATH/data"),
    S("PROJECT_NAME", TEXT, None, needed(f"{OWNED} {LOCAL} {TRACKED}"),
      "the ProjectName tag of everything created"),
    S("BASE_JOB_NAME", TEXT, None, needed(f"{NAMED} {LOCAL} serve-local"),
      "names of jobs and endpoints start with this"),
    # ---- the image
    S("BASE_IMAGE", TEXT, None, needed(IMAGE), "the base image of the training image"),
    S("ACCELERATOR", one_of("cpu", "gpu"), "cpu", IMAGE,
      "gpu: TensorFlow's CUDA libraries in the image, and local runs get the GPUs"),
    S("PLATFORM", TEXT, "linux/amd64", IMAGE,
      "the image's platform: SageMaker runs linux/amd64, so build for it on any host"),
    S("IMAGE_TAG", TEXT, None, IMAGE,
      "the image tag (default: a hash of the build inputs)"),
    # ---- training
    S("HPARAMS", TEXT, "", f"{LOCAL} {REMOTE}",
      'hyperparameters, e.g. HPARAMS="epochs=2 learning-rate=0.001" (code/job_contract.py)'),
    S("INSTANCE_TYPE", INSTANCE, "ml.m5.large", "train-remote! tune!",
      "the training instance type"),
    S("INSTANCE_COUNT", WHOLE, "1", f"{LOCAL} {REMOTE}",
      "hosts that train one model together (local mode runs them as containers here)"),
    S("DATASET", one_of("mnist", "digits"), "mnist", "data",
      "mnist (downloads) or digits (offline)"),
    S("SHARDS", WHOLE, "1", "data", "equal files a channel: >= INSTANCE_COUNT, more if big"),
    S("DATA_DIR", PATH, "data", f"data {LOCAL} {REMOTE} predict",
      "the channels, a folder each (training, validation, test)"),
    S("DATA_S3", S3_URI, None, REMOTE, "an S3 prefix that already holds the channels"),
    S("DATA_DISTRIBUTION", one_of("FullyReplicated", "ShardedByS3Key"), "FullyReplicated",
      f"{REMOTE} {LOCAL}", "several hosts: each reads every n-th file, or only those it got"),
    S("INPUT_MODE", one_of("File", "FastFile", "Pipe"), "File", f"{REMOTE} {LOCAL}",
      "File (copied first) or FastFile (read from S3): train.py streams both; Pipe refused"),
    S("WAIT", SWITCH, "1", f"{REMOTE} deploy",
      "0 submits the job (creates the endpoint) and returns at once"),
    S("MAX_RUN", WHOLE, "86400", REMOTE, "a remote job stops after this many seconds"),
    S("SPOT", SWITCH, "0", f"{REMOTE} {LOCAL}", "1: spot capacity, resuming from checkpoints"),
    S("MAX_WAIT", WHOLE, None, f"{REMOTE} {LOCAL}",
      "spot: give up after this many seconds, waiting included (default: 2 x MAX_RUN)"),
    S("CHECKPOINT_S3", S3_URI, None, REMOTE,
      "the checkpoints' S3 prefix (default with SPOT=1: S3_OUTPUT_PATH/checkpoints/<job>)"),
    S("KEEP_ALIVE", NATURAL, None, f"train-remote {LOCAL}",
      "keep the instances warm this many seconds after a job (a warm pool)"),
    S("CHECKPOINT_DIR", PATH, "checkpoints", LOCAL, "checkpoints of local runs, to resume"),
    S("CODE_MOUNT", SWITCH, "0", LOCAL, "1: code/ mounted into the newest image: no build"),
    S("JOB", TEXT, None, "metrics logs! stop!",
      "a run (local, else SageMaker) for metrics; a SageMaker job for logs and stop"),
    # ---- tuning, here and on SageMaker: SEARCH_SPACE and OBJECTIVE in code/job_contract.py
    S("MAX_JOBS", WHOLE, "4", "tune tune-local",
      "trainings in all, each at a point of SEARCH_SPACE"),
    S("MAX_PARALLEL", WHOLE, "1", "tune tune-local",
      "trainings at once (at most MAX_JOBS; tune-local: mind this machine's cores)"),
    S("TUNE_SEED", NATURAL, "0", "tune-local", "the random search's seed: the same tries the same"),
    S("STRATEGY", one_of("Bayesian", "Random", "Hyperband"), "Bayesian", "tune",
      "how SageMaker picks the next trial"),
    S("EARLY_STOPPING", one_of("Off", "Auto"), "Off", "tune",
      "Auto: SageMaker stops trials unlikely to beat the best"),
    S("TUNE_JOB", TEXT, None, "tune-status tune-stop deploy",
      "a tuning job (default: the newest of this project); deploy serves its best trial instead"),
    S("TUNE_POLL", SECONDS, "30", "tune", "seconds between two looks at a tuning job"),
    # ---- trying the model
    S("MODEL", TEXT, None, "serve-local",
      "a model.tar.gz, a folder holding 1/, or a local run (default: outputs/latest)"),
    S("SERVE_PORT", WHOLE, "8080", "serve-local predict", "the local server's port"),
    S("N", WHOLE, "100", "predict", "how many examples of DATA_DIR/test to send"),
    # ---- endpoints
    S("MODEL_S3", MODEL_TAR, None, "deploy",
      "the model.tar.gz to serve (default: the newest train-remote job's, or TUNE_JOB's best)"),
    S("SERVING_IMAGE", one_of("ours", "tensorflow"), "ours", "deploy",
      "ours (the pushed image's serve) or tensorflow (AWS's TensorFlow Serving image)"),
    S("SERVE_INSTANCE_TYPE", INSTANCE, "ml.m5.large", "deploy", "the endpoint's instance type"),
    S("SERVE_INSTANCE_COUNT", WHOLE, "1", "deploy", "instances behind the endpoint"),
    S("SERVERLESS_MEMORY", serverless_memory, None, "deploy",
      "a serverless endpoint of this much memory (MB) instead of instances"),
    S("DEPLOY_TIMEOUT", WHOLE, "1800", "deploy undeploy teardown",
      "seconds to wait for an endpoint"),
    S("ENDPOINT", TEXT, None, "undeploy! predict runs",
      "an endpoint's name (make status lists them); runs: the run it serves"),
    # ---- every run tracked in MLflow (make runs, make ui)
    S("MLFLOW_TRACKING_URI", TEXT, None, TRACKED,
      "where runs are recorded: an MLflow server's URL, or a SageMaker MLflow tracking"
      " server's ARN (default: outputs/mlflow/mlflow.db, a SQLite file)"),
    S("RUN", TEXT, None, "runs deploy serve-local",
      "an MLflow run, by id or name: runs shows it, deploy and serve-local serve its model"),
    S("SORT", one_of("newest", "objective"), "newest", "runs",
      "make runs' order: newest first, or best OBJECTIVE first"),
    S("UI_PORT", WHOLE, "5000", "ui", "make ui's port on localhost"),
    # ---- make bootstrap: the role, the bucket and the repository, one CloudFormation stack
    S("STACK_NAME", STACK, None, "bootstrap teardown",
      "the project's CloudFormation stack (default: BASE_JOB_NAME)"),
    S("STACK_TIMEOUT", WHOLE, "1800", "bootstrap teardown",
      "seconds to wait for the stack to be created, updated or deleted"),
    # ---- make status, teardown: nothing left billing; a price before each paid action
    S("FORCE", SWITCH, "0", "teardown",
      "1: teardown deletes the bucket's data and the images too (after a prompt)"),
    S("COST_LIMIT", SECONDS, None, "train-remote tune deploy build-remote",
      "dollars: refuse a job (MAX_RUN) or build (BUILD_TIMEOUT) whose worst case, or an"
      " endpoint whose day, costs more"),
    # ---- make build-remote: CodeBuild builds and pushes the image (no Docker needed here)
    S("CODEBUILD_PROJECT", CODEBUILD, None, "build-remote! doctor status teardown",
      "the CodeBuild project of make build-remote (make bootstrap makes it)"),
    S("BUILD_TIMEOUT", build_timeout, "3600", "build-remote",
      "seconds a CodeBuild build may take, then it stops (300 or more)"),
    # ---- this machine
    S("MIN_FREE_GB", SECONDS, "8", "doctor", "doctor fails with less free disk for Docker (GB)"),
]  # fmt: skip
BY_NAME = {setting.name: setting for setting in TABLE}
DERIVED = ("IMAGE", "REMOTE_IMAGE")  # derive() makes them: `make print-IMAGE` shows them too


def for_command(command: str | None) -> list[Setting]:
    """The settings `command` reads; None: all of them (make print-NAME)."""
    if command is None:
        return TABLE
    return [s for s in TABLE if command in s.commands or f"{command}!" in s.commands]


def read_file(path: Path) -> dict[str, str]:
    """settings.env: `NAME = value` lines (a value may be quoted), # comments."""
    values = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = (part.strip() for part in line.partition("="))
        where = f"{path.name} line {number}"
        if not equals or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise BadSetting(f"{where}: {line.strip()!r} is not NAME = value")
        if name not in BY_NAME:
            raise BadSetting(f"{where}: {name} is not a setting; make help lists them")
        values[name] = shlex.split(value)[0] if value[:1] in "'\"" and value else value
    return values


def make_overrides(makeflags: str) -> list[str]:
    """The variables given on make's command line (`make train-local SEED=5`): make passes
    them in MAKEFLAGS after ` -- `, spaces in values escaped."""
    definitions = f" {makeflags}".partition(" -- ")[2]
    words = re.split(r"(?<!\\) ", definitions)
    return [w.partition("=")[0] for w in words if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", w)]


def check_overrides(commands: list[str], names: list[str], hyperparameters=()) -> None:
    """A setting given on make's command line that none of its targets (`commands`: `make
    data build DATASET=digits` gives it to both) reads would do nothing: say so, and what
    was meant."""
    known = {s.name for command in commands for s in for_command(command)} | MAKE_ONLY
    for name in names:
        if name in known:
            continue
        if name.lower().replace("_", "-") in hyperparameters:
            hint = f'a hyperparameter goes in HPARAMS: HPARAMS="{name.lower()}=..."'
        elif name in BY_NAME:
            readers = sorted({c.rstrip("!") for c in BY_NAME[name].commands})
            hint = f"it is read by {', '.join(readers)}"
        else:
            hint = "make help lists the settings"
        targets = " ".join(commands)
        raise BadSetting(f"{name}: make {targets} does not read this setting; {hint}")


def load(
    command: str | None, project_dir: Path, given: dict | None = None, environ=None
) -> SimpleNamespace:
    """The settings `command` reads, typed and checked; BadSetting names the one that is wrong."""
    environ = os.environ if environ is None else environ
    given, file = given or {}, read_file(project_dir / SETTINGS_FILE)
    values = {}
    for setting in for_command(command):
        raw = given.get(setting.name) or environ.get(setting.name) or file.get(setting.name)
        raw = raw if raw not in (None, "") else setting.default
        if raw in (None, "") and setting.required_by(command):
            raise BadSetting(
                f"{setting.name}: make {command} needs it ({setting.help}); "
                f"set it in {SETTINGS_FILE}, or: make {command} {setting.name}=..."
            )
        try:
            value = None if raw is None else setting.type(str(raw))
        except ValueError as error:
            raise BadSetting(f"{setting.name}: {error}; {setting.help}") from None
        values[setting.name.lower()] = value
    return SimpleNamespace(command=command, project_dir=project_dir, **values)


def help_lines(markdown: bool = False) -> list[str]:
    """Every setting with its help, its default and its commands: `make help`, the reference."""
    if markdown:
        lines = ["| setting | default | read by | what it is |", "| --- | --- | --- | --- |"]
        for s in TABLE:
            commands = ", ".join(c.rstrip("!") for c in s.commands)
            lines.append(f"| `{s.name}` | {s.default or ''} | {commands} | {s.help} |")
        return lines
    return [f"  {s.name:<21} {s.help}" + (f" [{s.default}]" if s.default else "") for s in TABLE]


def derive(values: SimpleNamespace) -> SimpleNamespace:
    """The defaults made from other settings, in one place: the registry from the account
    and region; the image tag from the build inputs; the image's local and ECR names; the
    runs' store in the project."""
    region = getattr(values, "aws_region", None)
    if getattr(values, "registry", "") is None and values.aws_account_id and region:
        suffix = ".cn" if region.startswith("cn-") else ""  # China's regions
        values.registry = f"{values.aws_account_id}.dkr.ecr.{region}.amazonaws.com{suffix}"
    if getattr(values, "stack_name", "") is None:  # a stack name has no underscores
        values.stack_name = re.sub(r"[^A-Za-z0-9-]", "-", values.base_job_name)
    if hasattr(values, "mlflow_tracking_uri"):  # the runs' store: a SQLite file of the project's
        from smt.tracking import store

        database = store(values) / "mlflow.db"
        values.mlflow_tracking_uri = values.mlflow_tracking_uri or f"sqlite:///{database}"
    if hasattr(values, "image_tag"):
        from smt.image import content_tag

        values.image_tag = values.image_tag or content_tag(values)
        values.image = f"{values.ecr_repository}:{values.image_tag}"
        registry = getattr(values, "registry", None)
        values.remote_image = f"{registry}/{values.image}" if registry else None
    return values
