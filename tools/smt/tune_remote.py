"""make tune, tune-status and tune-stop: the SDK's HyperparameterTuner over train-remote's
trainer and channels and SEARCH_SPACE, all checked before anything is paid for."""

import functools
import sys
import time
from types import SimpleNamespace

from smt import aws, endpoints, prices, project, remote_runs, search_space, tracking, train
from smt.errors import BadSetting, Failure

NAME_LENGTH = 32  # SageMaker's limit on a tuning job's name; its trials add -NNN-<8 hex>
EPOCHS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")  # Hyperband's keys


def sdk_range(r):
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

    if r.scale is None:
        return CategoricalParameter(list(r.values))
    kind = IntegerParameter if isinstance(r.low, int) else ContinuousParameter
    return kind(r.low, r.high, scaling_type="Logarithmic" if r.scale == "log" else "Linear")


def hyperband(j):
    """Hyperband's most epochs: SageMaker reads only the static hyperparameters, not defaults."""
    from sagemaker.core import shapes

    declared = project.contract().HYPERPARAMETERS
    name = next((n for n in EPOCHS if n in declared), None)
    if name is None:
        raise BadSetting("STRATEGY: Hyperband needs a hyperparameter of epochs (one of"
                         f" {', '.join(EPOCHS)}); use STRATEGY=Bayesian")  # fmt: skip
    most = j.hyperparameters.get(name, declared[name][1])
    config = shapes.HyperbandStrategyConfig(max_resource=most)
    return shapes.HyperParameterTuningJobStrategyConfig(hyperband_strategy_config=config)


def tune(settings) -> int:
    from sagemaker.core import shapes
    from sagemaker.train.tuner import HyperparameterTuner

    ranges, (metric, direction) = search_space.checked(settings)
    if settings.strategy == "Hyperband" and settings.early_stopping != "Off":
        raise BadSetting("EARLY_STOPPING: Hyperband stops trials early itself; use"
                         " EARLY_STOPPING=Off")  # fmt: skip
    log = settings.project_dir / "outputs" / "latest" / "train.log"  # a completed local run's
    if log.is_file() and not (log.parent / "failure").exists():
        if search_space.final_value(log, metric) is None:  # each trial would end without one
            run = log.resolve().parent.relative_to(settings.project_dir)
            raise BadSetting(f"OBJECTIVE {metric!r}: its regex {search_space.regex_of(metric)}"
                             f" matches no line of {run}/train.log, the newest local run: every"
                             " trial would end without an objective; make train.py print it"
                             " (and make train-local) first")  # fmt: skip
    # The tuner has no warm pools: KEEP_ALIVE is no setting of make tune.
    j = train.job(SimpleNamespace(**{"keep_alive": None, **vars(settings)}), remote=True)
    strategy = hyperband(j) if settings.strategy == "Hyperband" else None
    prices.line(settings, "tune")  # COST_LIMIT: before anything is uploaded or made
    session = aws.session(settings.aws_region)
    digest = aws.require_image(session, j.image)  # before any upload or submit
    trainer = train.trainer(j, session)  # the SDK checks ROLE_ARN here, before the upload
    # The trials share CHECKPOINT_S3: each backs up under its own job name (sagemaker_runtime)
    trainer.environment = {**(trainer.environment or {}), "CHECKPOINT_PER_JOB": "1"}
    channels = [  # as Channels: the tuner would make an InputData's source a FullyReplicated URI
        shapes.Channel(channel_name=c.channel_name,
                       data_source=shapes.DataSource(s3_data_source=c.data_source))
        for c in train.s3_channels(session, j)
    ]  # fmt: skip
    tuner = HyperparameterTuner(
        trainer, objective_metric_name=metric, objective_type=direction.capitalize(),
        hyperparameter_ranges={r.name: sdk_range(r) for r in ranges},
        metric_definitions=project.runtime().metric_definitions(),  # it ignores the trainer's
        strategy=settings.strategy, early_stopping_type=settings.early_stopping,
        strategy_config=strategy,
        max_jobs=settings.max_jobs, max_parallel_jobs=settings.max_parallel,
    )  # fmt: skip
    name = aws.unique_name(settings.base_job_name, max_length=NAME_LENGTH)
    tuner.tune(inputs=channels, job_name=name, wait=False)
    print(f"Tuning job {name} submitted: up to {settings.max_jobs} trainings,"
          f" {settings.max_parallel} at once ({settings.strategy}); checkpoints:"
          f" {j.checkpoint_s3 or 'none'}")  # fmt: skip
    record = remote_runs.job_record(settings, j, name, session, digest, kind="tune")
    record["params"] |= tracking.search_parameters(settings, ranges, (metric, direction))
    watch = lambda: follow(tuner.latest_tuning_job, settings.tune_poll)  # noqa: E731
    hint = f"Follow it: make tune-status TUNE_JOB={name}"  # its trials: recorded when listed
    return remote_runs.track_submitted(settings, record, session, watch, hint)


def progress(job) -> str:
    counters, config = job.training_job_status_counters, job.hyper_parameter_tuning_job_config
    failed = (counters.retryable_error or 0) + (counters.non_retryable_error or 0)
    best = objective_of(job.best_training_job)
    best = "none yet" if best is None else f"{best:.4g}"
    return (f"Tuning job {job.hyper_parameter_tuning_job_name}:"
            f" {job.hyper_parameter_tuning_job_status}: {counters.completed or 0} completed,"
            f" {counters.in_progress or 0} running, {failed} failed of"
            f" {config.resource_limits.max_number_of_training_jobs};"
            f" best {config.hyper_parameter_tuning_job_objective.metric_name}: {best}")  # fmt: skip


def follow(job, poll: float) -> int:
    """A loop of our own: boto3 has no waiter for tuning jobs, and the SDK's wait() draws a
    panel of its own with the status alone (no trials, no best yet) and raises on Failed."""
    line = aws.Progress()
    try:
        while True:
            line.show(progress(job.refresh()))
            if job.hyper_parameter_tuning_job_status not in aws.RUNNING:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        line.end()
        name = job.hyper_parameter_tuning_job_name
        running = f"{name} keeps running (and billing): make tune-stop TUNE_JOB={name} stops it"
        print(f"stopped following; tuning job {running}", file=sys.stderr)
        return 130
    line.end()
    return report(job)


def objective_of(summary) -> float | None:
    """A trial's final objective; None while it has none (an Unassigned field of the SDK's)."""
    metric = getattr(summary, "final_hyper_parameter_tuning_job_objective_metric", None)
    return getattr(metric, "value", None)


def trial(summary) -> search_space.Trial:
    objective, status = objective_of(summary), summary.training_job_status
    if status == "Completed" and objective is None:
        status = "no objective"  # as tune-local marks it: the regex found nothing
    start, end = summary.training_start_time, summary.training_end_time
    seconds = (end - start).total_seconds() if start and end else None
    tuned = {n: remote_runs.typed(n, v) for n, v in (summary.tuned_hyper_parameters or {}).items()}
    return search_space.Trial(summary.training_job_name, tuned, objective, seconds, status)


def report(job) -> int:
    """The trials in tune-local's table, the failures' reasons and SageMaker's best."""
    name, status = job.hyper_parameter_tuning_job_name, job.hyper_parameter_tuning_job_status
    goal = job.hyper_parameter_tuning_job_config.hyper_parameter_tuning_job_objective
    summaries = list(job.get_all_training_jobs(sort_by="CreationTime", sort_order="Ascending"))
    # The describe's BestTrainingJob, as the tuner's best_training_job() reads it (which
    # raises a bare Exception while there is none)
    best = trial(job.best_training_job) if job.best_training_job else None
    print(f"Tuning job {name}: {status}")
    print(search_space.table([trial(s) for s in summaries], goal.metric_name, goal.type.lower(),
                             best and best.name))  # fmt: skip
    if status == "Failed":
        print(f"FAILED: {job.failure_reason or 'no reason given'}")
    failed = [s for s in summaries if s.failure_reason]
    for reason in dict.fromkeys(s.failure_reason for s in failed):  # once, with its trials
        names = ", ".join(s.training_job_name for s in failed if s.failure_reason == reason)
        print(f"trial {names} failed: {reason}")
    if best and best.objective is not None:
        hparams = " ".join(f"{k}={v}" for k, v in sorted(best.hyperparameters.items()))
        print(f"best: {best.name}, {goal.metric_name}={best.objective:.6g} with {hparams}")
        print(f"  its model: {model_of(job, best.name)}")
        print(f'  train with it: make train-remote HPARAMS="{hparams}"')
    if status in aws.RUNNING:
        again = f"TUNE_JOB={name}"
        print(f"see it again: make tune-status {again}; stop it: make tune-stop {again}")
    return int(status == "Failed")


def tuning_job(settings):
    """TUNE_JOB, else this project's newest tuning job."""
    from sagemaker.core.resources import HyperParameterTuningJob as Job

    session, region = aws.session(settings.aws_region), settings.aws_region
    get = functools.partial(Job.get, session=session, region=region)
    if not settings.tune_job:
        prefix = endpoints.name_prefix(settings, NAME_LENGTH, stamp=True)
        sagemaker, listing = session.client("sagemaker"), "list_hyper_parameter_tuning_jobs"
        kind = "HyperParameterTuningJob"
        newest = endpoints.newest_first(sagemaker, settings, kind, listing, NameContains=prefix)
        if found := next(newest, None):
            return get(found["HyperParameterTuningJobName"])
        raise Failure(f"no tuning job named {prefix}-* in {region}: start one with make tune,"
                      " or name one: TUNE_JOB=<name>")  # fmt: skip
    if job := endpoints.existing(get, hyper_parameter_tuning_job_name=settings.tune_job):
        return job
    raise Failure(f"TUNE_JOB: there is no tuning job {settings.tune_job} in {region}; check"
                  " the name and AWS_REGION: aws sagemaker list-hyper-parameter-tuning-jobs"
                  f" --region {region}")  # fmt: skip


def model_of(job, trial: str) -> str:
    output = job.training_job_definition.output_data_config.s3_output_path.rstrip("/")
    return f"{output}/{trial}/output/model.tar.gz"


def best_model(settings) -> tuple[str, str]:
    """For make deploy: (the best trial of tuning_job(), its model.tar.gz)."""
    job = tuning_job(settings)
    if not job.best_training_job:
        name = job.hyper_parameter_tuning_job_name
        raise Failure(f"tuning job {name} has no best trial yet: make tune-status TUNE_JOB={name}")
    trial = job.best_training_job.training_job_name
    return trial, model_of(job, trial)


def status(settings) -> int:
    return report(tuning_job(settings))


def stop(settings) -> int:
    job = tuning_job(settings)
    name, state = job.hyper_parameter_tuning_job_name, job.hyper_parameter_tuning_job_status
    if state not in aws.RUNNING:
        print(f"Tuning job {name} has already ended ({state}); nothing to stop")
    elif state == "Stopping":
        print(f"Tuning job {name} is already stopping; make tune-status TUNE_JOB={name}")
    else:
        job.stop()
        print(f"Tuning job {name} is stopping, and its running trials with it;"
              f" make tune-status TUNE_JOB={name} shows them")  # fmt: skip
    return 0
