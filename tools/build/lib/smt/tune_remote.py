"""Plumbing: make tune, make tune-status, make tune-stop: a SageMaker hyperparameter tuning job
over the pushed image, with train-remote's ModelTrainer and channels (run_estimator.py), the
SEARCH_SPACE and OBJECTIVE of code/job_contract.py, all checked before anything is paid for."""

import argparse
import os
import sys
import time
from pathlib import Path

from smt import aws, jobs, search_space, tuning_report
from smt.project import runtime
from smt.settings import SettingsParser, one_of, switch, whole_number

PROJECT_DIR = Path(__file__).resolve().parents[1]
STRATEGIES, EARLY_STOPPING = ("Bayesian", "Random", "Hyperband"), ("Off", "Auto")
NAME_LENGTH = 32  # SageMaker's limit on a tuning job's name; its trials add -NNN-<8 hex>
STAMP = "%y%m%d-%H%M%S"
SCALING = {"linear": "Linear", "log": "Logarithmic"}
RUNNING = ("InProgress", "Stopping")


def settings(argv=None):
    p = SettingsParser(__doc__)
    p.add_argument("command", choices=["tune", "status", "stop"])
    p.setting("--max-jobs", "trainings in all (each one is paid)", default="8")
    p.setting("--max-parallel", "trainings at once", default="2")
    p.setting("--strategy", "how SageMaker picks the next trial", default="Bayesian")
    p.setting("--early-stopping", "Auto stops trials unlikely to beat the best", default="Off")
    p.setting("--wait", "tune: 0 submits and returns at once", switch, "1")
    p.setting("--tune-job", "tune-status, tune-stop: a tuning job (default: the newest)")
    p.setting("--base-job-name", "tuning job names start with this", default=PROJECT_DIR.name)
    p.setting("--aws-region", "the AWS region")
    p.add_argument("--image", help="tune: the training image's ECR URI")
    p.setting("--tune-poll", "tune: seconds between looks at its progress", float, "30")
    return p.parse_args(argv)


def problem(tune) -> str | None:
    """The first thing wrong with the tuning settings (completing them), or None."""
    for name, convert in [("max_jobs", whole_number), ("max_parallel", whole_number),
                          ("strategy", one_of(*STRATEGIES)),
                          ("early_stopping", one_of(*EARLY_STOPPING))]:  # fmt: skip
        try:
            setattr(tune, name, convert(getattr(tune, name)))
        except argparse.ArgumentTypeError as error:
            return f"{name.upper()}: {error}"
    if tune.max_parallel > tune.max_jobs:
        return (f"MAX_PARALLEL {tune.max_parallel} is above MAX_JOBS {tune.max_jobs}: no more than"
                f" MAX_JOBS trainings ever run; use MAX_PARALLEL <= {tune.max_jobs}")  # fmt: skip
    if tune.strategy == "Hyperband" and tune.early_stopping != "Off":
        return "EARLY_STOPPING: Hyperband stops trials early itself; use EARLY_STOPPING=Off"
    return None


def objective_printed(name: str, outputs: Path) -> str | None:
    """Why the objective's regex would find nothing, judged on the newest local run's log (a
    completed one); None when it matches a line, or there is no such run."""
    import re

    log, regex = outputs / "latest" / "train.log", runtime().metric_definitions()
    if not log.is_file() or (log.parent / "failure").exists():
        return None
    [pattern] = [d["Regex"] for d in regex if d["Name"] == name]
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    if any(re.search(pattern, line) for line in lines):
        return None
    run = log.resolve().parent.relative_to(PROJECT_DIR)
    return (f"OBJECTIVE {name!r}: its regex {pattern} matches no line of {run}/train.log, the"
            " newest local run: every trial would end without an objective; make train.py"
            " print it (and make train-local) first")  # fmt: skip


def preflight(tune, args) -> tuple[list, tuple[str, str]]:
    """The ranges and the objective, or aws.Refused naming the setting to fix."""
    try:
        ranges, objective = search_space.ranges(), search_space.objective()
    except ValueError as error:
        raise aws.Refused(str(error)) from None
    if why := objective_printed(objective[0], PROJECT_DIR / "outputs"):
        raise aws.Refused(why)
    if fixed := [r.name for r in ranges if r.name in args.hparams]:
        tuned = f"HPARAMS sets {', '.join(fixed)}, which SEARCH_SPACE tunes"
        raise aws.Refused(f"{tuned}: drop it from HPARAMS, or from SEARCH_SPACE (job_contract.py)")
    return ranges, objective


def sdk_ranges(ranges) -> dict:
    from sagemaker.core import parameter

    def sdk(r):
        if r.scale is None:
            return parameter.CategoricalParameter(list(r.values))
        kind = parameter.IntegerParameter if r.kind is int else parameter.ContinuousParameter
        return kind(r.low, r.high, scaling_type=SCALING[r.scale])

    return {r.name: sdk(r) for r in ranges}


def name_prefix(base: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in base).strip("-") or "tune"
    return cleaned[: NAME_LENGTH - len(time.strftime(STAMP)) - 1] + "-"


def submit(tune, args, ranges, objective) -> str:
    """The tuning job, submitted with train-remote's trainer and channels; its name."""
    from sagemaker.core import shapes
    from sagemaker.train.tuner import HyperparameterTuner

    import run_estimator

    session = aws.session(args.aws_region)
    aws.require_image(session, args.image)  # before any upload or submit
    # Trials share CHECKPOINT_S3; each backs up under its own job name (sagemaker_runtime)
    trainer = run_estimator.remote_trainer(args, session, {"CHECKPOINT_PER_JOB": "1"})
    channels = [  # as Channels: the tuner would make an InputData's source a FullyReplicated URI
        shapes.Channel(channel_name=c.channel_name,
                       data_source=shapes.DataSource(s3_data_source=c.data_source))
        for c in aws.s3_channels(session, run_estimator.CHANNELS, args)
    ]  # fmt: skip
    hyperband = None
    if tune.strategy == "Hyperband":  # its most epochs, which it infers only from HPARAMS
        epochs = args.hparams.get("epochs", runtime().HYPERPARAMETERS["epochs"][1])
        config = shapes.HyperbandStrategyConfig(max_resource=epochs)
        hyperband = shapes.HyperParameterTuningJobStrategyConfig(hyperband_strategy_config=config)
    tuner = HyperparameterTuner(
        trainer,
        objective_metric_name=objective[0],
        objective_type=objective[1].capitalize(),  # Maximize, Minimize
        hyperparameter_ranges=sdk_ranges(ranges),
        metric_definitions=runtime().metric_definitions(),  # it ignores the trainer's
        strategy=tune.strategy,
        strategy_config=hyperband,
        early_stopping_type=tune.early_stopping,
        max_jobs=tune.max_jobs,
        max_parallel_jobs=tune.max_parallel,
    )
    name = name_prefix(tune.base_job_name) + time.strftime(STAMP)
    tuner.tune(inputs=channels, job_name=name, wait=False)
    print(f"Tuning job {name} submitted: up to {tune.max_jobs} trainings, {tune.max_parallel} at"
          f" once ({tune.strategy}); checkpoints: {args.checkpoint_s3 or 'none'}")  # fmt: skip
    return name


def progress(job: dict) -> str:
    counters, name = job["TrainingJobStatusCounters"], job["HyperParameterTuningJobName"]
    config = job["HyperParameterTuningJobConfig"]
    failed = counters.get("RetryableError", 0) + counters.get("NonRetryableError", 0)
    metric = (job.get("BestTrainingJob") or {}).get("FinalHyperParameterTuningJobObjectiveMetric")
    best = f"{metric['Value']:.4g}" if metric else "none yet"
    objective = config["HyperParameterTuningJobObjective"]["MetricName"]
    return (f"Tuning job {name}: {job['HyperParameterTuningJobStatus']}:"
            f" {counters.get('Completed', 0)} completed, {counters.get('InProgress', 0)} running,"
            f" {failed} failed of {config['ResourceLimits']['MaxNumberOfTrainingJobs']};"
            f" best {objective}: {best}")  # fmt: skip


def follow(sagemaker, name: str, poll: float) -> int:
    """Progress on one line until the job ends (in place on a terminal, else a line per
    change), then the trials, the best and any failure."""
    shown, tty = "", sys.stdout.isatty()
    try:
        while True:
            job = jobs.patiently(poll, sagemaker.describe_hyper_parameter_tuning_job,
                                 HyperParameterTuningJobName=name)  # fmt: skip
            if (line := progress(job)) != shown:
                print(f"\r{line}\x1b[K" if tty else line, end="" if tty else "\n", flush=True)
            shown = line
            if job["HyperParameterTuningJobStatus"] not in RUNNING:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        running = f"{name} keeps running (and billing): make tune-stop TUNE_JOB={name} stops it"
        print(f"\nstopped following; tuning job {running}", file=sys.stderr)
        return 130
    print("\n" if tty else "", end="")
    return report(sagemaker, job)


def trial(summary: dict) -> tuning_report.Trial:
    def typed(name, value):  # SageMaker's strings, as train.py reads them
        try:
            return runtime().coerce_hyperparameter(name, value)
        except ValueError:
            return value

    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    start, end = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
    status = summary["TrainingJobStatus"]
    if status == "Completed" and metric.get("Value") is None:
        status = "no objective"  # as tune-local marks it: the regex found nothing
    return tuning_report.Trial(
        summary["TrainingJobName"],
        {n: typed(n, v) for n, v in summary.get("TunedHyperParameters", {}).items()},
        metric.get("Value"),
        (end - start).total_seconds() if start and end else None,
        status,
    )


def report(sagemaker, job: dict) -> int:
    """The table of trials (as tune-local's), the failures' reasons and the best: 1 if Failed."""
    name, status = job["HyperParameterTuningJobName"], job["HyperParameterTuningJobStatus"]
    objective = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, SortBy="CreationTime", SortOrder="Ascending"
    )
    summaries = [s for page in pages for s in page["TrainingJobSummaries"]]
    trials, direction = [trial(s) for s in summaries], objective["Type"].lower()
    print(f"Tuning job {name}: {status}")
    print(tuning_report.table(trials, objective["MetricName"], direction))
    if status == "Failed":
        print(f"FAILED: {job.get('FailureReason') or 'no reason given'}")
    reasons = {}  # a reason, once, with the trials it failed
    for s in summaries:
        if s.get("FailureReason"):
            reasons.setdefault(s["FailureReason"], []).append(s["TrainingJobName"])
    for reason, names in reasons.items():
        print(f"trial {', '.join(names)} failed: {reason}")
    if best := tuning_report.best(trials, direction):
        output = job["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        hparams = " ".join(f"{k}={v}" for k, v in sorted(best.hyperparameters.items()))
        print(f"best: {best.name}, {objective['MetricName']}={best.objective:.6g} with {hparams}")
        print(f"  its model: {output}/{best.name}/output/model.tar.gz")
        print(f'  train with it: make train-remote HPARAMS="{hparams}"')
    if status in RUNNING:
        again = f"TUNE_JOB={name}"
        print(f"see it again: make tune-status {again}; stop it: make tune-stop {again}")
    return int(status == "Failed")


def newest(sagemaker, base: str, region: str) -> str:
    prefix = name_prefix(base)
    found = sagemaker.list_hyper_parameter_tuning_jobs(
        NameContains=prefix, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    )["HyperParameterTuningJobSummaries"]
    if not found:
        raise aws.Refused(f"no tuning job named {prefix}* in {region}: start one with make tune,"
                          " or name one: TUNE_JOB=<name>")  # fmt: skip
    return found[0]["HyperParameterTuningJobName"]


def stop(sagemaker, name: str) -> int:
    status = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobStatus"
    ]
    if status not in RUNNING:
        print(f"Tuning job {name} has already ended ({status}); nothing to stop")
    elif status == "Stopping":
        print(f"Tuning job {name} is already stopping; make tune-status TUNE_JOB={name}")
    else:
        sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        print(f"Tuning job {name} is stopping, and its running trials with it;"
              f" make tune-status TUNE_JOB={name} shows them")  # fmt: skip
    return 0


def main(argv=None) -> int:
    tune = settings(argv)
    os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(PROJECT_DIR / "sagemaker.yaml"))
    name, doing = tune.tune_job, {"tune": "submit", "status": "describe", "stop": "stop"}
    try:
        if tune.command == "tune":
            import run_estimator

            if why := problem(tune):
                raise aws.Refused(why)
            args = run_estimator.settings(["remote", "--image", tune.image])  # train-remote's
            ranges, objective = preflight(tune, args)
            name = submit(tune, args, ranges, objective)
            sagemaker = aws.session(args.aws_region).client("sagemaker")
            if not tune.wait:
                print(f"Follow it: make tune-status TUNE_JOB={name}")
                return 0
            return follow(sagemaker, name, tune.tune_poll)
        sagemaker = aws.session(tune.aws_region).client("sagemaker")
        name = name or newest(sagemaker, tune.base_job_name, tune.aws_region)
        if tune.command == "stop":
            return stop(sagemaker, name)
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return report(sagemaker, job)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line, not a traceback
        if os.environ.get("DEBUG"):
            raise
        if isinstance(error, aws.Refused) or not name:
            sys.exit(f"error: {aws.explain(error)}")
        sys.exit(jobs.error_line(error, name, tune.aws_region, doing[tune.command], "tuning job"))


if __name__ == "__main__":
    sys.exit(main())
