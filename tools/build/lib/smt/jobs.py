"""Plumbing: make logs JOB=<name> follows a SageMaker job's log to its end; make stop stops it."""

import re
import sys
import time
from contextlib import suppress

from smt import aws
from smt.settings import SettingsParser

# boto3 clients, not the SDK's TrainingJob: it imports in over 1 s, wait(logs=True) misses lines
LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # a stream <job>/algo-<n>-<epoch seconds> per host
RUNNING = ("InProgress", "Stopping")


def hint(job_name: str) -> str:
    return f"Follow it: make logs JOB={job_name}; stop it: make stop JOB={job_name}"


def new_events(logs, job_name: str, tokens: dict[str, str]) -> list[tuple[int, str, str]]:
    """(time, host, line) not read yet; streams listed anew (a restarted host gets one)."""
    paginate, events, read, pages = logs.get_paginator("describe_log_streams").paginate, [], {}, []
    with suppress(logs.exceptions.ResourceNotFoundException):  # no group before a first job
        pages = list(paginate(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/"))
    for stream in (stream["logStreamName"] for page in pages for stream in page["logStreams"]):
        host, token, last = re.sub(r"-\d+$", "", stream.split("/", 1)[1]), tokens.get(stream), ""
        while token != last:  # the end of a stream answers with the token it was given
            more = {"startFromHead": True} | ({"nextToken": token} if token else {})
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, **more)
            events += [(e["timestamp"], host, e["message"].rstrip("\n")) for e in page["events"]]
            last, token = token, page["nextForwardToken"]
        read[stream] = token
    tokens.update(read)
    return sorted(events, key=lambda event: event[0])  # stable: a stream keeps its order


def patiently(wait: float, call, *args, **kwargs):
    for _ in range(4):  # a fifth failure in a row is raised
        try:
            return call(*args, **kwargs)
        except Exception as error:
            why = f"({aws.error_code(error)}); retrying in {wait:g} s"
            print(f"warning: AWS did not answer {why}", file=sys.stderr)
            time.sleep(wait)
    return call(*args, **kwargs)


def follow(job_name: str, boto_session, poll_seconds: float = 5) -> int:
    """Print the log until the job ends, then how (and the model of a Completed job):
    0 Completed/Stopped, 1 Failed, 130 Ctrl-C."""
    sagemaker, logs, tokens = boto_session.client("sagemaker"), boto_session.client("logs"), {}
    try:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)  # not retried
        config = job["ResourceConfig"]  # InstanceGroups: a heterogeneous cluster's
        several = sum(g["InstanceCount"] for g in config.get("InstanceGroups") or [config]) > 1
        while True:
            for _, host, message in patiently(poll_seconds, new_events, logs, job_name, tokens):
                print(f"[{host}] {message}" if several else message, flush=True)
            if job["TrainingJobStatus"] not in RUNNING:
                break
            job = patiently(poll_seconds, sagemaker.describe_training_job, TrainingJobName=job_name)
            time.sleep(poll_seconds)  # the end's too: CloudWatch gets the last lines after it
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


def error_line(error: Exception, job_name: str, region: str, doing: str,
               kind: str = "training job") -> str:  # fmt: skip
    unknown = re.search(r"not found|could not find", str(error), re.I)  # AWS's words, moto's
    if aws.error_code(error) not in ("ValidationException", "ResourceNotFound") or not unknown:
        return f"error: could not {doing} job {job_name}: {aws.explain(error)}"
    listing = {"training job": "training-jobs", "tuning job": "hyper-parameter-tuning-jobs"}[kind]
    check = f"check the name and AWS_REGION: aws sagemaker list-{listing} --region {region}"
    return f"error: there is no {kind} {job_name} in {region}; {check}"


def main(argv=None) -> int:
    parser = SettingsParser(__doc__)
    parser.add_argument("command", choices=["logs", "stop"])
    parser.setting("--job", "the training job's name")
    parser.setting("--aws-region", "the job's region")
    parser.add_argument("--poll", type=float, default=5, help="seconds between polls")
    args = parser.parse_args(argv)
    if not (job := args.job):
        parser.error("--job (or JOB) is required: the training job's name")
    try:  # a wrong AWS_PROFILE fails in aws.session
        if args.command == "logs":
            return follow(job, aws.session(args.aws_region), args.poll)
        sagemaker = aws.session(args.aws_region).client("sagemaker")
        status = sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
        if status not in RUNNING:
            print(f"Training job {job} has already ended ({status}); nothing to stop")
        elif status == "Stopping":  # a second StopTrainingJob would change nothing
            print(f"Training job {job} is already stopping; follow it: make logs JOB={job}")
        else:
            sagemaker.stop_training_job(TrainingJobName=job)
            print(f"Training job {job} is stopping; follow it to the end: make logs JOB={job}")
        return 0
    except Exception as error:  # one line, not a traceback
        doing = "stop" if args.command == "stop" else "read the log of"
        sys.exit(error_line(error, job, args.aws_region, doing))


if __name__ == "__main__":
    sys.exit(main())
