"""make logs JOB=<name> follows a SageMaker job's log to its end, make stop stops it; make
metrics [JOB=<name>]: the final values of the newest local run, of outputs/NAME, else of the
job NAME, and a chart of a local run's (SageMaker's console charts a job)."""

import re
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from smt import aws, project
from smt.errors import BadSetting, Failure

# boto3 clients, not the SDK's TrainingJob: it imports in over 1 s, wait(logs=True) misses lines
LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # a stream <job>/algo-<n>-<epoch seconds> per host


def hint(job_name: str) -> str:
    return f"Follow it: make logs JOB={job_name}; stop it: make stop JOB={job_name}"


@contextmanager
def about(job_name: str, region: str, doing: str):
    """AWS's errors within, in one line naming the job; an unknown job with how to list them."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        if aws.is_missing(error):
            listing = f"aws sagemaker list-training-jobs --region {region}"
            raise Failure(f"there is no training job {job_name} in {region}; check the name and "
                          f"AWS_REGION: {listing}") from None  # fmt: skip
        raise Failure(f"could not {doing} job {job_name}: {aws.explain(error)}") from None


def new_events(logs, job_name: str, tokens: dict[str, str]) -> list[tuple[int, str, str]]:
    """(time, host, line) not read yet; streams listed anew (a restarted host gets one)."""
    paginate, events, pages = logs.get_paginator("describe_log_streams").paginate, [], []
    with suppress(logs.exceptions.ResourceNotFoundException):  # no group before a first job
        pages = list(paginate(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/"))
    for stream in (stream["logStreamName"] for page in pages for stream in page["logStreams"]):
        host, token, last = re.sub(r"-\d+$", "", stream.split("/", 1)[1]), tokens.get(stream), ""
        while token != last:  # the end of a stream answers with the token it was given
            more = {"startFromHead": True} | ({"nextToken": token} if token else {})
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, **more)
            events += [(e["timestamp"], host, e["message"].rstrip("\n")) for e in page["events"]]
            last, token = token, page["nextForwardToken"]
        tokens[stream] = token
    return sorted(events, key=lambda event: event[0])  # stable: a stream keeps its order


def follow(job_name: str, boto_session) -> int:
    """Print the log until the job ends, then how (and the model of a Completed job):
    0 Completed/Stopped, 1 Failed, 130 Ctrl-C. Our own loop, not the job_completed_or_stopped
    waiter: the log is read between two looks at the status, and once more after the end
    (CloudWatch gets the last lines after the status changed)."""
    sagemaker, logs, tokens = boto_session.client("sagemaker"), boto_session.client("logs"), {}
    try:
        with about(job_name, boto_session.region_name, "read the log of"):
            job = sagemaker.describe_training_job(TrainingJobName=job_name)
            config = job["ResourceConfig"]  # InstanceGroups: a heterogeneous cluster's
            several = sum(g["InstanceCount"] for g in config.get("InstanceGroups") or [config]) > 1
            while True:
                for _, host, message in new_events(logs, job_name, tokens):
                    print(f"[{host}] {message}" if several else message, flush=True)
                if job["TrainingJobStatus"] not in aws.RUNNING:
                    break
                job = sagemaker.describe_training_job(TrainingJobName=job_name)
                time.sleep(aws.POLL_SECONDS)  # after the end's describe too: its last lines
    except KeyboardInterrupt:  # only the reading stops: say so, and how to stop the job
        running = f"job {job_name} keeps running (and billing): make stop JOB={job_name} stops it"
        print(f"\nstopped following; {running}", file=sys.stderr)
        return 130
    status, why = job["TrainingJobStatus"], job.get("SecondaryStatus", "")  # MaxRuntimeExceeded
    print(f"Training job {job_name}: {status}" + (f" ({why})" if why not in ("", status) else ""))
    if status == "Failed":
        print(f"FAILED: {job.get('FailureReason') or 'no reason given'}")
    elif status == "Completed":  # as train-local ends: where the model is
        print(f"model: {job['ModelArtifacts']['S3ModelArtifacts']}")
    return int(status == "Failed")


def logs(settings) -> int:
    return follow(settings.job, aws.session(settings.aws_region))


def stop(settings) -> int:
    job, region = settings.job, settings.aws_region
    with about(job, region, "stop"):
        sagemaker = aws.session(region).client("sagemaker")
        status = sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
        if status not in aws.RUNNING:
            print(f"Training job {job} has already ended ({status}); nothing to stop")
        elif status == "Stopping":  # a second StopTrainingJob would change nothing
            print(f"Training job {job} is already stopping; follow it: make logs JOB={job}")
        else:
            sagemaker.stop_training_job(TrainingJobName=job)
            print(f"Training job {job} is stopping; follow it to the end: make logs JOB={job}")
    return 0


def local_series(log: Path) -> dict[str, list[tuple[int, float]]]:
    series, epoch = {}, 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if parsed := project.runtime().parse_metric_line(line):
            name, value, epoch = *parsed[:2], parsed[2] or epoch  # no epoch (test:*): the last
            series.setdefault(name, []).append((epoch, value))
    return series


def chart(series: dict, title: str, path: Path):
    """A panel per quantity (loss, accuracy): a line per metric by epoch, test's value a point."""
    from matplotlib.figure import Figure  # not pyplot: no display, no backend to choose

    quantity = {name: name.partition(":")[2] or name for name in series}  # train:loss -> loss
    panels = list(dict.fromkeys(quantity.values()))
    figure = Figure(figsize=(5.5 * len(panels), 4), layout="tight")
    for axis, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for name in (name for name in series if quantity[name] == panel):
            fmt, size = ("*", 14) if len(series[name]) == 1 else ("o-", 4)  # once: a point
            axis.plot(*zip(*series[name], strict=True), fmt, ms=size, label=name.partition(":")[0])
        axis.set(title=panel, xlabel="epoch")
        axis.grid(alpha=0.3)
        axis.legend()
        axis.xaxis.get_major_locator().set_params(integer=True)  # whole epochs
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return figure


def metrics(settings) -> int:
    outputs = settings.project_dir / "outputs"
    job, log = settings.job, outputs / (settings.job or "latest") / "train.log"
    if log.is_file():
        job, series = log.resolve().parent.name, local_series(log)
    elif not job:
        raise BadSetting("JOB: no local run yet; run make train-local, or name a job: JOB=<name>")
    else:
        with about(job, settings.aws_region, "read the metrics of"):
            sagemaker = aws.session(settings.aws_region).client("sagemaker")
            answer = sagemaker.describe_training_job(TrainingJobName=job)
        series = {m["MetricName"]: [(0, m["Value"])] for m in answer.get("FinalMetricDataList", [])}
    if not series:
        raise Failure(f"job {job} has no metrics (yet)")
    print(f"{'metric':<22} {'final value':>12}")
    for name, points in series.items():
        print(f"{name:<22} {points[-1][1]:>12.6g}")
    if log.is_file():
        chart(series, job, png := outputs / job / "metrics.png")
        print(f"chart: {png}")
    return 0
