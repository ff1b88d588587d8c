"""Follow or stop a SageMaker training job.

  remote_job.py logs --job NAME   print the job's log (every host's), following it while the
                                  job runs; exit 0 when it Completed or was Stopped, 1 if Failed
  remote_job.py stop --job NAME   stop the job unless it has already ended

The log is read from CloudWatch by hand rather than with the SageMaker SDK: v3 keeps only
a private _logs_for_job, importing it takes seconds (all of sagemaker.core), it checks the
job's status every 30 s whatever the poll, prints dots while waiting and tells hosts apart
only by colour on a terminal.
"""

import argparse
import heapq
import os
import re
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from aws_clients import aws_error, clients  # noqa: E402

from run_estimator import explain  # noqa: E402  (the launcher's one-line AWS errors)

# SageMaker writes each host's output to a stream <job>/algo-<n>-<epoch seconds> here.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
RUNNING = ("InProgress", "Stopping")
ENDED = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 5
# A follow lasts hours: in that time AWS may throttle a call or not answer it for longer than
# botocore's own retries last (aws_clients). Such a poll is retried at the next one rather
# than ending the follow; only this many failed polls in a row end it.
GIVE_UP_AFTER = 5
THROTTLED = {  # the Error.Code of AWS's "too many requests" and "briefly down" answers
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",  # CloudWatch Logs' own
    "InternalFailure",
}
UNANSWERED = {  # botocore's network errors, by class name as explain() tells them apart
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
}


def describe(sagemaker, job: str) -> dict:
    return sagemaker.describe_training_job(TrainingJobName=job)


def host_count(described: dict) -> int:
    resources = described["ResourceConfig"]
    groups = resources.get("InstanceGroups", [])  # a heterogeneous cluster
    return resources.get("InstanceCount", 0) + sum(g["InstanceCount"] for g in groups)


def new_events(logs, job: str, tokens: dict[str, str]) -> list[tuple[int, str, str]]:
    """(timestamp, host, message) of the events not read yet, every host's merged by time.

    tokens holds, per stream, the forward token where the last read ended: reading on from
    it returns only later events, so none is printed twice. They are updated only once every
    stream has been read: after an error the next poll reads the same events again, none lost.
    A stream appears when its host starts writing; a host restarted after a spot
    interruption gets a new one.
    """
    streams = []
    try:
        for page in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/"
        ):
            streams += [stream["logStreamName"] for stream in page["logStreams"]]
    except logs.exceptions.ResourceNotFoundException:
        return []  # the group appears with the account's first job log
    per_stream, read = [], {}
    for stream in streams:
        host = re.sub(r"-\d+$", "", stream.split("/", 1)[1])  # algo-1-1700000000 -> algo-1
        token = tokens.get(stream)
        events = []
        while True:  # the end of a stream answers with the token it was given
            page = logs.get_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=stream,
                startFromHead=True,
                **({"nextToken": token} if token else {}),
            )
            events += [(e["timestamp"], host, e["message"].rstrip("\n")) for e in page["events"]]
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        read[stream] = token
        per_stream.append(events)
    tokens.update(read)
    return list(heapq.merge(*per_stream, key=lambda event: event[0]))


def status_line(job: str, described: dict) -> str:
    status, secondary = described["TrainingJobStatus"], described.get("SecondaryStatus")
    detail = f" ({secondary})" if secondary and secondary != status else ""
    return f"Training job {job}: {status}{detail}"


def transient(error: Exception) -> str:
    """The error's code or name if a later poll may well succeed (throttled, AWS briefly down,
    the network), else ""."""
    code, name = aws_error(error)[0], type(error).__name__
    return code if code in THROTTLED else name if name in UNANSWERED else ""


def follow(sagemaker, logs, job: str, poll_seconds: float) -> int:
    described = describe(sagemaker, job)  # not retried: an unknown job, no access... end here
    prefix = host_count(described) > 1
    tokens: dict[str, str] = {}
    shown = ""
    failed = 0  # polls in a row that AWS did not answer
    while True:
        try:
            for _, host, message in new_events(logs, job, tokens):
                print(f"[{host}] {message}" if prefix else message)
            if described["TrainingJobStatus"] not in RUNNING:
                break
            if status_line(job, described) != shown:  # e.g. Starting -> Downloading -> Training
                shown = status_line(job, described)
                print(shown)
            sys.stdout.flush()
            time.sleep(poll_seconds)
            described = describe(sagemaker, job)
            failed = 0
            if described["TrainingJobStatus"] not in RUNNING:
                # CloudWatch receives a job's last lines a few seconds after its status changes.
                time.sleep(poll_seconds)
        except Exception as error:
            failed += 1
            reason = transient(error)
            if not reason or failed == GIVE_UP_AFTER:
                raise  # main() prints its one line
            # The tokens are as the last whole read left them: the next poll misses no line.
            print(
                f"warning: AWS did not answer ({reason}); retrying in {poll_seconds:g} s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(poll_seconds)
    print(status_line(job, described))
    if described["TrainingJobStatus"] == "Failed":
        print(f"FAILED: {described.get('FailureReason') or 'no reason given'}")
        return 1
    return 0


def stop(sagemaker, job: str) -> int:
    status = describe(sagemaker, job)["TrainingJobStatus"]
    if status in ENDED:
        print(f"Training job {job} has already ended ({status}); nothing to stop")
    elif status == "Stopping":  # a second StopTrainingJob would change nothing
        print(f"Training job {job} is already stopping; follow it: make logs JOB={job}")
    else:
        sagemaker.stop_training_job(TrainingJobName=job)
        print(f"Training job {job} is stopping; follow it to the end: make logs JOB={job}")
    return 0


def error_line(error: Exception, job: str, region: str, doing: str) -> str:
    code, message = aws_error(error)
    # DescribeTrainingJob's answer for a name it does not know (moto: "Could not find ...")
    if code == "ValidationException" and re.search(r"not found|could not find", message, re.I):
        return (
            f"error: there is no training job {job} in {region}; check the name and "
            f"AWS_REGION: aws sagemaker list-training-jobs --region {region}"
        )
    text = " ".join(explain(error).split())  # an HTML error page would span many lines
    return f"error: could not {doing} job {job}: {text[:300]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("logs", "print the job's log, following it while the job runs"),
        ("stop", "stop the job unless it has already ended"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--job", required=True, help="the training job's name")
        command.add_argument("--region", default=None, help="default: your AWS config's")
        if name == "logs":
            command.add_argument(
                "--poll", type=float, default=POLL_SECONDS, help="seconds between checks"
            )
    args = parser.parse_args(argv)
    region = args.region or "your default region"
    try:
        sagemaker, logs = clients(args.region, "sagemaker", "logs")
        region = sagemaker.meta.region_name
        if args.command == "stop":
            return stop(sagemaker, args.job)
        return follow(sagemaker, logs, args.job, args.poll)
    except KeyboardInterrupt:
        if args.command == "logs":  # only the reading stops: say so, and how to stop the job
            print(
                f"\nstopped following; job {args.job} keeps running (and billing): "
                f"make stop JOB={args.job} stops it",
                file=sys.stderr,
            )
        else:
            print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # make logs | head: the reader has gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if os.environ.get("DEBUG"):
            raise
        doing = "stop" if args.command == "stop" else "read the log of"
        print(error_line(error, args.job, region, doing), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
