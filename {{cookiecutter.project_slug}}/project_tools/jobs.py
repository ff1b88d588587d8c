"""make logs JOB=<name>: every host's log while the job runs, then how it ended (exit 0
Completed or Stopped, 1 Failed, 130 Ctrl-C). make stop JOB=<name>: stop it, unless it ended.
Not the SDK's TrainingJob.wait(logs=True): it shows nothing unless logging is set up, waits
for every host's stream, misses later ones (a restarted spot host) and the last lines."""

import os
import re
import sys
import time

from project_tools import aws
from project_tools.settings import SettingsParser

LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # a stream <job>/algo-<n>-<epoch seconds> per host
RUNNING = ("InProgress", "Stopping")


def hint(job_name: str) -> str:
    return f"Follow it: make logs JOB={job_name}; stop it: make stop JOB={job_name}"


def new_events(logs, job_name: str, tokens: dict[str, str]) -> list[tuple[int, str, str]]:
    """(time, host, line) of the events not read yet, every host's stream listed anew (a
    restarted host gets a new one); tokens move only once all are read, so none is lost."""
    try:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/"
        )
        streams = [stream["logStreamName"] for page in pages for stream in page["logStreams"]]
    except logs.exceptions.ResourceNotFoundException:
        return []  # the group appears with the account's first job log
    events, read = [], {}
    for stream in streams:
        host, token = re.sub(r"-\d+$", "", stream.split("/", 1)[1]), tokens.get(stream)
        while True:  # the end of a stream answers with the token it was given
            more = {"startFromHead": True} | ({"nextToken": token} if token else {})
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, **more)
            events += [(e["timestamp"], host, e["message"].rstrip("\n")) for e in page["events"]]
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        read[stream] = token
    tokens.update(read)
    return sorted(events, key=lambda event: event[0])  # stable: a stream keeps its order


def status_line(job: dict) -> str:
    status, secondary = job["TrainingJobStatus"], job.get("SecondaryStatus")
    detail = f" ({secondary})" if secondary and secondary != status else ""
    return f"Training job {job['TrainingJobName']}: {status}{detail}"


def follow(job_name: str, boto_session, poll_seconds: float = 5) -> int:
    """Print the job's log until it ends, then how it ended; AWS errors are raised."""
    sagemaker, logs = boto_session.client("sagemaker"), boto_session.client("logs")
    try:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)  # not retried
        config, tokens, shown, failed = job["ResourceConfig"], {}, "", 0
        groups = sum(group["InstanceCount"] for group in config.get("InstanceGroups", []))
        several = config.get("InstanceCount", 0) + groups > 1  # groups: a heterogeneous cluster
        while True:
            try:
                for _, host, message in new_events(logs, job_name, tokens):
                    print(f"[{host}] {message}" if several else message, flush=True)
                if job["TrainingJobStatus"] not in RUNNING:
                    break
                if status_line(job) != shown:  # e.g. Starting -> Downloading -> Training
                    print(shown := status_line(job), flush=True)
                time.sleep(poll_seconds)
                job, failed = sagemaker.describe_training_job(TrainingJobName=job_name), 0
                if job["TrainingJobStatus"] not in RUNNING:
                    time.sleep(poll_seconds)  # CloudWatch gets the last lines after the status
            except Exception as error:  # tried again at the next poll, which loses no line
                failed += 1
                if failed == 5 or isinstance(error, BrokenPipeError):
                    raise
                retry = f"({aws.error_code(error)}); retrying in {poll_seconds:g} s"
                print(f"warning: AWS did not answer {retry}", file=sys.stderr)
                time.sleep(poll_seconds)
    except KeyboardInterrupt:  # only the reading stops: say so, and how to stop the job
        running = f"job {job_name} keeps running (and billing): make stop JOB={job_name} stops it"
        print(f"\nstopped following; {running}", file=sys.stderr)
        return 130
    print(status_line(job))
    if job["TrainingJobStatus"] == "Failed":
        print(f"FAILED: {job.get('FailureReason') or 'no reason given'}")
    return int(job["TrainingJobStatus"] == "Failed")


def error_line(error: Exception, job_name: str, region: str, doing: str) -> str:
    """One line; an unknown job (AWS: "...not found", moto: "Could not find...") says so."""
    unknown = re.search(r"not found|could not find", str(error), re.I)
    if aws.error_code(error) != "ValidationException" or not unknown:
        return f"error: could not {doing} job {job_name}: {aws.explain(error)}"
    return (
        f"error: there is no training job {job_name} in {region}; check the name and "
        f"AWS_REGION: aws sagemaker list-training-jobs --region {region}"
    )


def main(argv=None) -> int:
    parser = SettingsParser(__doc__)
    parser.add_argument("command", choices=["logs", "stop"])
    parser.setting("--job", "the training job's name")
    parser.setting("--aws-region", "the job's region")
    parser.add_argument("--poll", type=float, default=5, help="seconds between polls")
    args = parser.parse_args(argv)
    if not (job := args.job):
        parser.error("--job (or JOB) is required: the training job's name")
    try:
        boto_session = aws.session(args.aws_region)  # a wrong AWS_PROFILE fails here
    except Exception as error:
        parser.exit(1, f"error: {aws.explain(error)}\n")
    try:
        if args.command == "logs":
            return follow(job, boto_session, args.poll)
        sagemaker = boto_session.client("sagemaker")
        status = sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
        if status not in RUNNING:
            print(f"Training job {job} has already ended ({status}); nothing to stop")
        elif status == "Stopping":  # a second StopTrainingJob would change nothing
            print(f"Training job {job} is already stopping; follow it: make logs JOB={job}")
        else:
            sagemaker.stop_training_job(TrainingJobName=job)
            print(f"Training job {job} is stopping; follow it to the end: make logs JOB={job}")
        return 0
    except BrokenPipeError:  # make logs | head: the reader has gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        doing = "stop" if args.command == "stop" else "read the log of"
        print(error_line(error, job, boto_session.region_name, doing), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
