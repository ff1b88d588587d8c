"""smt logs and smt stop (make logs JOB=<name>, make stop JOB=<name>), in-process against the
moto server seeded with training jobs and their CloudWatch log streams.

moto 5.2.5 makes every training job Completed at once and has no StopTrainingJob, so the
tests of a running, stopping or failed job go through the overlay fixture
(status_overlay.StatusOverlay), which changes only the status fields of DescribeTrainingJob's
answers; every request still reaches moto and its recorder, but those it is told to throttle.
"""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from helpers import actions, bodies, create_training_job, free_port, make_command
from smt import aws, jobs

JOB = "digits-remote-20261126093342"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
T0 = int(time.time() * 1000) - 600_000  # CloudWatch takes events of the last 14 days
RUNNING = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
GET_LOG_EVENTS = "Logs_20140328.GetLogEvents"
DESCRIBE = "SageMaker.DescribeTrainingJob"
STOP = "SageMaker.StopTrainingJob"
ATTEMPTS = aws.MAX_ATTEMPTS  # botocore's, for each call: its only retries
# How the log of a Completed job ends: its status, then where its model is (S3OutputPath
# s3://b/out, as helpers.create_training_job submits it).
COMPLETED = [f"Training job {JOB}: Completed", f"model: s3://b/out/{JOB}/output/model.tar.gz"]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.1)


@pytest.fixture
def job(aws):
    create_training_job(aws, JOB)
    return aws


@pytest.fixture
def through_overlay(job, overlay, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    return overlay


def put_log(moto, host: str, events: list[tuple[int, str]], job: str = JOB) -> None:
    """Events in the host's stream, named as SageMaker names it: <job>/<host>-<epoch>."""
    logs = moto.client("logs")
    stream = f"{job}/{host}-1700000000"
    for create, kwargs in [
        (logs.create_log_group, {}),
        (logs.create_log_stream, {"logStreamName": stream}),
    ]:
        try:
            create(logGroupName=LOG_GROUP, **kwargs)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": T0 + ms, "message": m} for ms, m in events],
    )


def stops(moto) -> list[dict]:
    return [json.loads(body) for body in bodies(moto, STOP)]


def test_a_finished_jobs_log_prints_every_event_once_in_time_order_with_its_host(smt, aws):
    create_training_job(aws, JOB, instance_count=2)
    put_log(aws, "algo-1", [(0, "epoch 1 on host 1"), (20, "epoch 2 on host 1"), (40, "done")])
    put_log(aws, "algo-2", [(10, "epoch 1 on host 2"), (30, "epoch 2 on host 2")])

    done = smt("logs", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "[algo-1] epoch 1 on host 1",
        "[algo-2] epoch 1 on host 2",
        "[algo-1] epoch 2 on host 1",
        "[algo-2] epoch 2 on host 2",
        "[algo-1] done",
        *COMPLETED,
    ]


def test_a_running_job_is_followed_to_its_end_and_no_event_is_printed_twice(
    smt, job, through_overlay
):
    put_log(job, "algo-1", [(0, "line 0")])
    through_overlay.statuses[JOB] = [
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
        RUNNING,
        RUNNING,
        {"TrainingJobStatus": "Completed"},
    ]
    arrivals = {2: ["line 1", "line 2"], 3: ["line 3"], 4: ["line 4, after the status changed"]}
    through_overlay.on_describe = lambda n: (
        n in arrivals
        and put_log(job, "algo-1", [(n * 100 + i, line) for i, line in enumerate(arrivals[n])])
    )

    done = smt("logs", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "line 0",
        "line 1",
        "line 2",
        "line 3",
        "line 4, after the status changed",
        *COMPLETED,
    ]


@pytest.mark.parametrize("throttled", [GET_LOG_EVENTS, DESCRIBE])
def test_a_call_throttled_fewer_times_than_botocores_attempts_is_retried_unseen(
    smt, job, through_overlay, throttled
):
    put_log(job, "algo-1", [(0, "line 0")])
    through_overlay.statuses[JOB] = [RUNNING, RUNNING, {"TrainingJobStatus": "Completed"}]

    def on_describe(n: int) -> None:  # a throttled describe does not reach moto: no n for it
        put_log(job, "algo-1", [(n * 100, f"line {n}")])
        if n == 1:
            through_overlay.fail_next[throttled] = ATTEMPTS - 1

    through_overlay.on_describe = on_describe

    done = smt("logs", "--job", JOB)

    assert (done.code, done.err) == (0, "")
    assert done.out.splitlines() == ["line 0", "line 1", "line 2", "line 3", *COMPLETED]
    assert through_overlay.fail_next == {throttled: 0}


def test_a_call_throttled_past_botocores_attempts_ends_the_follow_in_one_line_and_exit_1(
    smt, job, through_overlay
):
    """No retry loop of our own: botocore's attempts are the only retries."""
    put_log(job, "algo-1", [(0, "line 0")])
    through_overlay.statuses[JOB] = [RUNNING, RUNNING, {"TrainingJobStatus": "Completed"}]
    through_overlay.on_describe = lambda n: (
        n == 2 and through_overlay.fail_next.update({GET_LOG_EVENTS: ATTEMPTS})
    )

    done = smt("logs", "--job", JOB)

    assert done.code == 1
    assert done.out == "line 0\n"
    [line] = done.err.splitlines()
    assert line.startswith(f"error: could not read the log of job {JOB}: ThrottlingException: ")
    assert line.endswith("(reached max retries: 2): Rate exceeded")
    assert through_overlay.fail_next == {GET_LOG_EVENTS: 0}


def test_a_failed_jobs_log_ends_with_its_failure_reason_and_exit_1(smt, job, through_overlay):
    put_log(job, "algo-1", [(0, "ValueError: learning-rate must be > 0")])
    reason = "AlgorithmError: learning-rate must be > 0"
    through_overlay.statuses[JOB] = [
        {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": reason}
    ]

    done = smt("logs", "--job", JOB)

    assert done.code == 1
    assert done.out.splitlines() == [
        "ValueError: learning-rate must be > 0",
        f"Training job {JOB}: Failed",
        f"FAILED: {reason}",
    ]


def test_a_stopped_jobs_log_ends_with_why_it_stopped_and_exit_0(smt, job, through_overlay):
    put_log(job, "algo-1", [(0, "SIGTERM: saving a checkpoint")])
    through_overlay.statuses[JOB] = [
        {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"}
    ]

    done = smt("logs", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "SIGTERM: saving a checkpoint",
        f"Training job {JOB}: Stopped (MaxRuntimeExceeded)",
    ]


def test_a_host_that_logs_late_or_never_hides_no_line_of_the_others(smt, aws, overlay, monkeypatch):
    """What the SDK's TrainingJob.wait(logs=True) gets wrong: it prints nothing until every
    host has a stream, and never reads a stream that appears after that."""
    create_training_job(aws, JOB, instance_count=3)  # algo-3 never writes a line
    put_log(aws, "algo-1", [(0, "host 1 starts")])
    overlay.statuses[JOB] = [RUNNING, RUNNING, {"TrainingJobStatus": "Completed"}]
    overlay.on_describe = lambda n: n == 2 and put_log(aws, "algo-2", [(500, "host 2 starts late")])
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)

    done = smt("logs", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "[algo-1] host 1 starts",
        "[algo-2] host 2 starts late",
        *COMPLETED,
    ]


def test_lines_that_reach_cloudwatch_after_the_job_ended_are_still_printed(
    smt, job, through_overlay, monkeypatch
):
    """CloudWatch gets a job's last lines after its status changed (the SDK's wait() returns
    at once and loses them)."""
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 1)
    put_log(job, "algo-1", [(0, "training")])
    through_overlay.statuses[JOB] = [RUNNING, {"TrainingJobStatus": "Completed"}]
    late = threading.Timer(0.3, put_log, (job, "algo-1", [(900, "model saved")]))
    through_overlay.on_describe = lambda n: n == 2 and late.start()  # 0.3 s after Completed

    done = smt("logs", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out.splitlines() == ["training", "model saved", *COMPLETED]


def test_ctrl_c_while_following_exits_130_saying_the_job_runs_on_and_how_to_stop_it(
    smt, job, through_overlay, monkeypatch
):
    through_overlay.statuses[JOB] = [RUNNING]

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "time", SimpleNamespace(sleep=interrupted))  # jobs' own only

    done = smt("logs", "--job", JOB)

    running = f"job {JOB} keeps running (and billing): make stop JOB={JOB} stops it"
    assert (done.code, done.err) == (130, f"\nstopped following; {running}\n")
    assert stops(job) == []


def test_stopping_a_finished_job_says_so_and_sends_no_stop_request(smt, job):
    done = smt("stop", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out == f"Training job {JOB} has already ended (Completed); nothing to stop\n"
    assert stops(job) == []


@pytest.mark.parametrize(
    ("status", "says", "stop_sent"),
    [
        ("InProgress", "is stopping; follow it to the end: make logs JOB=", True),
        ("Stopping", "is already stopping; follow it: make logs JOB=", False),
    ],
)
def test_stopping_a_job_that_runs_says_how_to_follow_it(
    smt, job, through_overlay, status, says, stop_sent
):
    through_overlay.statuses[JOB] = [{"TrainingJobStatus": status}]
    through_overlay.answer_stop = True  # as AWS answers: {}

    done = smt("stop", "--job", JOB)

    assert done.code == 0, done.err
    assert done.out == f"Training job {JOB} {says}{JOB}\n"
    assert stops(job) == ([{"TrainingJobName": JOB}] if stop_sent else [])


def test_a_stop_aws_refuses_is_one_line_naming_the_job(smt, job, through_overlay):
    through_overlay.statuses[JOB] = [RUNNING]  # and moto answers StopTrainingJob with a 500

    done = smt("stop", "--job", JOB)

    assert done.code == 1
    assert stops(job) and all(request == {"TrainingJobName": JOB} for request in stops(job))
    [line] = done.err.splitlines()
    assert line.startswith(f"error: could not stop job {JOB}: 500: An error occurred (500) ")


@pytest.mark.parametrize("command", ["logs", "stop", "metrics"])
def test_an_unknown_job_is_one_line_saying_how_to_list_the_jobs(smt, aws, command):
    done = smt(command, "--job", "no-such-job")

    assert (done.code, done.out) == (1, "")
    assert done.err == (
        "error: there is no training job no-such-job in us-east-1; check the name "
        "and AWS_REGION: aws sagemaker list-training-jobs --region us-east-1\n"
    )


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (
            "no credentials",
            "no AWS credentials found; run aws configure (or aws sso login) and retry",
        ),
        ("unreachable endpoint", "check the network, the proxy and AWS_REGION"),
    ],
)
def test_no_credentials_or_an_unreachable_endpoint_is_one_line_naming_the_job_and_the_fix(
    smt, aws, monkeypatch, setup, says
):
    if setup == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    done = smt("stop", "--job", JOB)

    assert done.code == 1
    [line] = done.err.splitlines()
    assert line.startswith(f"error: could not stop job {JOB}: ") and line.endswith(says)


@pytest.mark.parametrize("command", ["logs", "stop"])
def test_without_job_it_says_how_to_name_one(smt, command):
    done = smt(command)

    assert done.code == 2
    assert done.err.startswith(f"error: JOB: make {command} needs it (")
    assert done.err.endswith(f"or: make {command} JOB=...\n")


def test_make_logs_passes_the_job_and_the_region_to_smt(aws, project_dir):
    """The job is in eu-west-1, the environment's and settings.env's region us-east-1: only
    a command that takes JOB and AWS_REGION from make's command line finds it."""
    west = dataclasses.replace(aws, region="eu-west-1")
    create_training_job(west, JOB)
    put_log(west, "algo-1", [(0, "a line in eu-west-1")])

    done = subprocess.run(
        make_command("logs", ".installed-tools", JOB=JOB, AWS_REGION="eu-west-1"),
        cwd=project_dir,
        env={**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["a line in eu-west-1", *COMPLETED]
    assert "SageMaker.DescribeTrainingJob" in actions(aws)
