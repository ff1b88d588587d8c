"""make data, train-local and train-remote: one job, checked before anything is uploaded or
paid for, run by ModelTrainer with run_estimator.trainer_arguments(), here or on SageMaker."""

import subprocess
import sys
from types import SimpleNamespace

from smt import aws, image, jobs, prices, project, remote_runs, tracking
from smt.errors import BadSetting, Failure
from smt.local_run import LocalRun

CHANNELS = ("training", "validation", "test")  # training is required; the others when present
CONTAINER_CHECKPOINTS = "/opt/ml/input/data/checkpoints"  # local mode: a channel, read-write


def data(settings) -> int:
    script = settings.project_dir / "scripts" / "prepare_data.py"
    command = [sys.executable, str(script), "--dataset", settings.dataset,
               "--data-dir", str(settings.data_dir), "--shards", str(settings.shards)]  # fmt: skip
    return subprocess.run(command, cwd=settings.project_dir).returncode


def typed_hyperparameters(text: str) -> dict:
    """'epochs=2 batch-size=32' -> {'epochs': 2, 'batch-size': 32}, checked as train.py would."""
    runtime, typed = project.runtime(), {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not (name and sep and value):
            raise BadSetting(f"HPARAMS: {item!r} is not name=value (e.g. epochs=3)")
        try:
            typed[name] = runtime.coerce_hyperparameter(name, value)
        except runtime.JobError as error:
            raise BadSetting(f"HPARAMS: {error}") from None
    return typed


def job(settings, remote: bool) -> SimpleNamespace:
    """One job's settings, checked and completed: what trainer_arguments(job) gets."""
    j = SimpleNamespace(**vars(settings), remote=remote)
    # The SDK adds -<seconds> (15 characters): the rest of SageMaker's 63 keeps a slug whole
    j.name = aws.unique_name(settings.base_job_name, max_length=63 - 15, stamp=False)
    j.data_dir = settings.project_dir / settings.data_dir  # relative: to the project
    j.hyperparameters = typed_hyperparameters(settings.hparams)
    sharded = settings.data_distribution == "ShardedByS3Key"
    if remote:
        j.image = settings.remote_image
        if settings.max_wait and not settings.spot:
            raise BadSetting("MAX_WAIT: it applies to spot jobs only: add SPOT=1")
        if settings.spot:
            j.max_wait = settings.max_wait or 2 * settings.max_run
            default = f"{settings.s3_output_path}/checkpoints/{j.name}"
            j.checkpoint_s3 = settings.checkpoint_s3 or default
        if j.max_wait and j.max_wait < settings.max_run:
            raise BadSetting(f"MAX_WAIT: {j.max_wait} < MAX_RUN {settings.max_run}, which the"
                             f" wait includes: use MAX_WAIT >= {settings.max_run}")  # fmt: skip
        limit = aws.api_maximum("KeepAlivePeriodInSeconds") if settings.keep_alive else 0
        if limit and settings.keep_alive > limit:
            raise BadSetting(f"KEEP_ALIVE: {settings.keep_alive} is above SageMaker's maximum,"
                             f" {limit} s")  # fmt: skip
    else:
        j.checkpoint_dir = settings.project_dir / settings.checkpoint_dir
        j.image = image.newest(settings) if settings.code_mount else settings.image
        j.instance_type = "local_gpu" if settings.accelerator == "gpu" else "local"
        remote_only = [name for name, on in [
            ("KEEP_ALIVE", settings.keep_alive is not None), ("SPOT", settings.spot),
            ("INPUT_MODE", settings.input_mode != "File"), ("MAX_WAIT", settings.max_wait),
            ("DATA_DISTRIBUTION", sharded)] if on]  # fmt: skip
        if remote_only:
            raise BadSetting(f"{remote_only[0]}: a setting of remote jobs (make train-remote)")
    training, shown = j.data_dir / "training", settings.data_dir / "training"  # as given
    files = len(list(training.glob("*.npz")))
    if not (remote and settings.data_s3) and not training.is_dir():
        raise BadSetting(f"DATA_DIR: no training data in {shown}; run: make data")
    hosts = settings.instance_count
    if remote and sharded and not settings.data_s3 and files % hosts:
        raise BadSetting(f"DATA_DISTRIBUTION: ShardedByS3Key: {files} file(s) in {shown} do"
                         f" not divide among {hosts} hosts: make data SHARDS={hosts}")  # fmt: skip
    if not (remote and settings.data_s3) and 1 < hosts > files:  # each reads files of its own
        raise BadSetting(f"INSTANCE_COUNT: {hosts} hosts read files of their own, and {shown}"
                         f" has {files}: make data SHARDS={hosts}")  # fmt: skip
    if settings.input_mode == "Pipe":
        raise BadSetting("INPUT_MODE: Pipe sends a channel as one stream, which train.py does"
                         " not read: use File or FastFile (train.py streams both)")  # fmt: skip
    return j


def trainer(j, session=None, local_root=None):
    """ModelTrainer with run_estimator's arguments as they are, plus where the job runs:
    the mode, the session (remote) or the folder (local), the tags, the metric definitions."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import MetricDefinition, Tag
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    arguments = project.job_definition().trainer_arguments(j)
    if j.remote:
        ours = [Tag(key=t["Key"], value=t["Value"]) for t in aws.tags(j, ImageTag=j.image_tag)]
        arguments.update(training_mode=Mode.SAGEMAKER_TRAINING_JOB,
                         sagemaker_session=Session(boto_session=session),
                         tags=[*(arguments.get("tags") or []), *ours])  # fmt: skip
    else:
        environment = arguments.get("environment") or {}
        environment = {"CHECKPOINT_DIR": CONTAINER_CHECKPOINTS, **environment}
        arguments.update(training_mode=Mode.LOCAL_CONTAINER, local_container_root=str(local_root),
                         environment=environment)  # fmt: skip
    try:
        built = ModelTrainer(**arguments)
    except ValueError as error:  # pydantic's ValidationError too: the arguments, not a bug here
        first = error.errors()[0] if hasattr(error, "errors") else {"loc": (), "msg": str(error)}
        why = ": ".join([".".join(map(str, first["loc"])), first["msg"]]).lstrip(": ")
        refuses = "run_estimator.py: ModelTrainer refuses trainer_arguments(job)"
        raise Failure(f"{refuses}: {why}") from error
    rows = project.runtime().metric_definitions()  # code/job_contract.py's METRIC_NAMES
    metrics = [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in rows]
    return built.with_metric_definitions(metrics)


def train_local(settings) -> int:
    j = job(settings, remote=False)  # checked before a build, and before the SDK's 2 s import
    if not settings.code_mount:
        image.build(settings)
    from sagemaker.core.training.configs import InputData

    with LocalRun(settings.project_dir / "outputs", j) as run:
        local = trainer(j, local_root=run.root)
        if settings.code_mount:  # local mode mounts a file:// submit directory at /opt/ml/code
            code = settings.project_dir / "code"  # and the toolkit runs train.py from there
            mounted = f"{code} is mounted over /opt/ml/code; edits run without make build"
            print(f"code mount ON: {mounted}")
            mount = {"sagemaker_submit_directory": code.as_uri(), "sagemaker_program": "train.py"}
            local.hyperparameters = {**(local.hyperparameters or {}), **mount}
        folders = [(c, j.data_dir.resolve() / c) for c in CHANNELS]
        folders.append(("checkpoints", run.checkpoints))
        channels = [InputData(channel_name=n, data_source=str(f)) for n, f in folders if f.is_dir()]
        try:
            local.train(input_data_config=channels, wait=True, logs=True)
        except (ImportError, OSError) as error:  # no Docker Compose, or no docker to run
            raise Failure(f"local mode could not run Docker: {aws.explain(error)}") from error
    tracking.track_local(settings, j, run)  # first: the run's own end stays the last lines
    return run.report()


def s3_channels(session, j) -> list:
    """The channels on S3: DATA_DIR synced to S3_OUTPUT_PATH/data (stale files deleted: a job
    would read them too), or DATA_S3's; a channel with no objects is left out."""
    from sagemaker.core.training.configs import InputData, S3DataSource

    data_s3 = j.data_s3 or f"{j.s3_output_path}/data"
    if not j.data_s3:  # one sync for all channels: the aws CLI takes a second to start
        only = [word for name in CHANNELS for word in ("--include", f"{name}/*")]
        aws.cli("s3", "sync", "--delete", "--exclude", "*", *only, str(j.data_dir), f"{data_s3}/",
                region=j.aws_region, doing=f"uploading {j.data_dir} to {data_s3}/")  # fmt: skip
    s3, channels = session.client("s3"), []
    for name in CHANNELS:
        bucket, prefix = aws.split_s3(f"{data_s3}/{name}/")
        if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            source = S3DataSource(s3_data_type="S3Prefix", s3_uri=f"s3://{bucket}/{prefix}",
                                  s3_data_distribution_type=j.data_distribution)  # fmt: skip
            channels.append(InputData(channel_name=name, data_source=source))
    return channels


def train_remote(settings) -> int:
    j = job(settings, remote=True)
    prices.line(settings, "train-remote")  # COST_LIMIT: before anything is uploaded or made
    session = aws.session(settings.aws_region)
    digest = aws.require_image(session, j.image)  # before any upload or submit
    remote = trainer(j, session)  # the SDK checks ROLE_ARN here, before the upload
    remote.train(input_data_config=s3_channels(session, j), wait=False, logs=False)
    # train() returns nothing in SDK 3.27 and keeps the job only in a private field; its
    # public output_data is <S3_OUTPUT_PATH>/<job name>/output/output.tar.gz: no listing.
    name = remote.output_data.rsplit("/", 3)[-3]
    print(f"Training job {name} submitted.")
    record = remote_runs.job_record(settings, j, name, session, digest)
    follow = lambda: jobs.follow(name, session)  # noqa: E731
    return remote_runs.track_submitted(settings, record, session, follow, jobs.hint(name))
