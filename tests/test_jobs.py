"""make logs JOB=<name> and make stop JOB=<name> (project_tools/jobs.py) against a moto server
seeded with training jobs and their CloudWatch log streams.

moto 5.2.5 makes every training job Completed at once and has no StopTrainingJob, so the
tests of a running, stopping or failed job go through the `overlay` fixture
(status_overlay.StatusOverlay), which changes only the status fields of DescribeTrainingJob's
answers; every request still reaches moto and its recorder, except those it is told to
throttle.
"""

import base64
import dataclasses
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from helpers import (
    TEMPLATE_DIR,
    VENV_BIN,
    create_training_job,
    environment_without_aws,
    free_port,
    make_with_test_venv,
    project_module,
)

JOB = "digits-remote-20261126093342"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
T0 = int(time.time() * 1000) - 600_000  # CloudWatch takes events of the last 14 days
RUNNING = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
GET_LOG_EVENTS = "Logs_20140328.GetLogEvents"
DESCRIBE = "SageMaker.DescribeTrainingJob"
# How the log of a Completed job ends: its status, then where its model is (S3OutputPath
# s3://b/out, as helpers.create_training_job submits it).
COMPLETED = [f"Training job {JOB}: Completed", f"model: s3://b/out/{JOB}/output/model.tar.gz"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """One baked project for the module (baked in-process: the commands only read it)."""
    output_dir = tmp_path_factory.mktemp("bake")
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={"aws_checks": "skip"},
        )
    )


@pytest.fixture(scope="module")
def attempts(project) -> int:
    """How many throttled answers fail one call: botocore's attempts, as the project's one
    AWS session (project_tools/aws.py) sets them."""
    logs = project_module(project, "project_tools/aws.py").session("us-east-1").client("logs")
    return logs.meta.config.retries["total_max_attempts"]


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
        logEvents=[{"timestamp": T0 + ms, "message": message} for ms, message in events],
    )


def jobs(project, env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "project_tools.jobs", *args, "--aws-region", "us-east-1"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def through_overlay(project, moto, overlay, command: str, *args: str):
    """project_tools.jobs COMMAND --job JOB ARGS, talking to moto through the overlay."""
    return jobs(project, moto.env(AWS_ENDPOINT_URL=overlay.url), command, "--job", JOB, *args)


def stop_requests(moto) -> list[dict]:
    """The bodies of the StopTrainingJob requests moto received."""
    return [
        json.loads(
            base64.b64decode(request["body"]) if request["body_encoded"] else request["body"]
        )
        for request in moto.recorded_requests()
        if request["headers"].get("X-Amz-Target") == "SageMaker.StopTrainingJob"
    ]


def test_a_finished_jobs_log_prints_every_event_once_in_time_order_with_its_host(project, moto):
    create_training_job(moto, JOB, instance_count=2)
    put_log(moto, "algo-1", [(0, "epoch 1 on host 1"), (20, "epoch 2 on host 1"), (40, "done")])
    put_log(moto, "algo-2", [(10, "epoch 1 on host 2"), (30, "epoch 2 on host 2")])

    done = jobs(project, moto.env(), "logs", "--job", JOB)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[algo-1] epoch 1 on host 1",
        "[algo-2] epoch 1 on host 2",
        "[algo-1] epoch 2 on host 1",
        "[algo-2] epoch 2 on host 2",
        "[algo-1] done",
        *COMPLETED,
    ]


def test_a_running_job_is_followed_to_its_end_and_no_event_is_printed_twice(project, moto, overlay):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "line 0")])
    overlay.statuses[JOB] = [
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
        RUNNING,
        RUNNING,
        {"TrainingJobStatus": "Completed"},
    ]
    arrivals = {2: ["line 1", "line 2"], 3: ["line 3"], 4: ["line 4, after the status changed"]}
    overlay.on_describe = lambda n: (
        n in arrivals
        and put_log(moto, "algo-1", [(n * 100 + i, line) for i, line in enumerate(arrivals[n])])
    )

    done = through_overlay(project, moto, overlay, "logs", "--poll", "0.2")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "line 0",
        "line 1",
        "line 2",
        "line 3",
        "line 4, after the status changed",
        *COMPLETED,
    ]


def test_a_log_read_throttled_for_two_polls_warns_and_prints_every_event_once_to_the_end(
    project, moto, overlay, attempts
):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "line 0")])
    overlay.statuses[JOB] = [
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
        RUNNING,
        {"TrainingJobStatus": "Completed"},
    ]

    def on_describe(n: int) -> None:  # n = 1 is the describe before following
        if n > 1:
            put_log(moto, "algo-1", [(n * 100, f"line {n - 1}")])
        if n == 2:  # the next two polls' reads fail, each after botocore's own retries
            overlay.fail_next[GET_LOG_EVENTS] = 2 * attempts

    overlay.on_describe = on_describe

    done = through_overlay(project, moto, overlay, "logs", "--poll", "0.2")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "line 0",
        "line 1",
        "line 2",
        *COMPLETED,
    ]
    warning = "warning: AWS did not answer (ThrottlingException); retrying in 0.2 s"
    assert done.stderr.splitlines() == [warning, warning]
    assert overlay.fail_next == {GET_LOG_EVENTS: 0}


def test_a_status_poll_throttled_twice_warns_and_the_follow_goes_on_to_the_end(
    project, moto, overlay, attempts
):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "line 0")])
    overlay.statuses[JOB] = [RUNNING, RUNNING, {"TrainingJobStatus": "Completed"}]

    def on_describe(n: int) -> None:  # a throttled describe does not reach moto: no n for it
        put_log(moto, "algo-1", [(n * 100, f"line {n}")])
        if n == 2:  # the next two polls' describes fail, each after botocore's own retries
            overlay.fail_next[DESCRIBE] = 2 * attempts

    overlay.on_describe = on_describe

    done = through_overlay(project, moto, overlay, "logs", "--poll", "0.2")

    assert done.returncode == 0, done.stderr
    lines = ["line 0", "line 1", "line 2", "line 3"]
    assert done.stdout.splitlines() == [*lines, *COMPLETED]
    warning = "warning: AWS did not answer (ThrottlingException); retrying in 0.2 s"
    assert done.stderr.splitlines() == [warning, warning]
    assert overlay.fail_next == {DESCRIBE: 0}


def test_five_throttled_polls_in_a_row_end_the_follow_with_one_error_line_and_exit_1(
    project, moto, overlay, attempts
):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "line 0")])
    overlay.statuses[JOB] = [RUNNING]
    overlay.fail_next[GET_LOG_EVENTS] = 5 * attempts  # a sixth poll would read the log

    done = through_overlay(project, moto, overlay, "logs", "--poll", "0.2")

    assert done.returncode == 1
    assert done.stdout == ""
    warning = "warning: AWS did not answer (ThrottlingException); retrying in 0.2 s"
    *warnings, error = done.stderr.splitlines()
    assert warnings == [warning] * 4
    assert error.startswith(f"error: could not read the log of job {JOB}: ThrottlingException")
    assert error.endswith("Rate exceeded")
    assert overlay.fail_next == {GET_LOG_EVENTS: 0}


def test_a_failed_jobs_log_ends_with_its_failure_reason_and_a_non_zero_exit(project, moto, overlay):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "ValueError: learning-rate must be > 0")])
    reason = "AlgorithmError: learning-rate must be > 0"
    overlay.statuses[JOB] = [
        {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": reason}
    ]

    done = through_overlay(project, moto, overlay, "logs")

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "ValueError: learning-rate must be > 0",
        f"Training job {JOB}: Failed",
        f"FAILED: {reason}",
    ]


def test_make_logs_exits_0_for_a_stopped_job_and_ends_with_why_it_stopped(project, moto, overlay):
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "SIGTERM: saving a checkpoint")])
    overlay.statuses[JOB] = [
        {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"}
    ]

    env = moto.env(AWS_ENDPOINT_URL=overlay.url)
    done = make_with_test_venv(project, "logs", ".installed-tools", env, JOB=JOB)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "SIGTERM: saving a checkpoint",
        f"Training job {JOB}: Stopped (MaxRuntimeExceeded)",
    ]


def test_a_host_that_logs_late_or_never_hides_no_line_of_the_others(project, moto, overlay):
    """What the SDK's TrainingJob.wait(logs=True) gets wrong: it prints nothing until every
    host has a stream, and never reads a stream that appears after that."""
    create_training_job(moto, JOB, instance_count=3)  # algo-3 never writes a line
    put_log(moto, "algo-1", [(0, "host 1 starts")])
    overlay.statuses[JOB] = [RUNNING, RUNNING, {"TrainingJobStatus": "Completed"}]
    overlay.on_describe = lambda n: (
        n == 2 and put_log(moto, "algo-2", [(500, "host 2 starts late")])
    )

    done = through_overlay(project, moto, overlay, "logs", "--poll", "0.2")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[algo-1] host 1 starts",
        "[algo-2] host 2 starts late",
        *COMPLETED,
    ]


def test_lines_that_reach_cloudwatch_after_the_job_ended_are_still_printed(project, moto, overlay):
    """CloudWatch gets a job's last lines after its status changed (the SDK's wait() returns
    at once and loses them)."""
    create_training_job(moto, JOB)
    put_log(moto, "algo-1", [(0, "training")])
    overlay.statuses[JOB] = [RUNNING, {"TrainingJobStatus": "Completed"}]
    late = threading.Timer(0.3, put_log, (moto, "algo-1", [(900, "model saved")]))
    overlay.on_describe = lambda n: n == 2 and late.start()  # 0.3 s after it said Completed

    done = through_overlay(project, moto, overlay, "logs", "--poll", "1")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "training",
        "model saved",
        *COMPLETED,
    ]


def test_ctrl_c_while_following_exits_130_saying_the_job_runs_on_and_how_to_stop_it(
    project, moto, overlay
):
    create_training_job(moto, JOB)
    overlay.statuses[JOB] = [RUNNING]
    polling = threading.Event()
    overlay.on_describe = lambda n: n >= 2 and polling.set()
    process = subprocess.Popen(
        [
            str(VENV_BIN / "python"),
            "-m",
            "project_tools.jobs",
            "logs",
            "--job",
            JOB,
            "--poll",
            "0.2",
        ],
        cwd=project,
        env=moto.env(AWS_ENDPOINT_URL=overlay.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert polling.wait(timeout=60), "the script never polled the job"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()

    assert process.returncode == 130
    assert stderr.strip().splitlines() == [
        f"stopped following; job {JOB} keeps running (and billing): make stop JOB={JOB} stops it"
    ]
    assert stop_requests(moto) == []


def test_stopping_a_finished_job_says_so_and_sends_no_stop_request(project, moto):
    create_training_job(moto, JOB)

    done = jobs(project, moto.env(), "stop", "--job", JOB)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Training job {JOB} has already ended (Completed); nothing to stop\n"
    assert stop_requests(moto) == []


def test_stopping_a_running_job_sends_stop_training_job_and_reports_motos_500_in_one_line(
    project, moto, overlay
):
    create_training_job(moto, JOB)
    overlay.statuses[JOB] = [RUNNING]

    done = through_overlay(project, moto, overlay, "stop")

    requests = stop_requests(moto)
    assert requests and all(request == {"TrainingJobName": JOB} for request in requests)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: could not stop job {JOB}: 500: An error occurred (500) ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("status", "says", "stop_sent"),
    [
        ("InProgress", "is stopping; follow it to the end: make logs JOB=", True),
        ("Stopping", "is already stopping; follow it: make logs JOB=", False),
    ],
)
def test_stopping_a_job_that_runs_says_how_to_follow_it(
    project, moto, overlay, status, says, stop_sent
):
    create_training_job(moto, JOB)
    overlay.statuses[JOB] = [{"TrainingJobStatus": status}]
    overlay.answer_stop = True  # as AWS answers: {}

    done = through_overlay(project, moto, overlay, "stop")

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Training job {JOB} {says}{JOB}\n"
    assert stop_requests(moto) == ([{"TrainingJobName": JOB}] if stop_sent else [])


@pytest.mark.parametrize("command", ["logs", "stop"])
def test_an_unknown_job_is_one_line_without_a_traceback(project, moto, command):
    done = jobs(project, moto.env(), command, "--job", "no-such-job")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: there is no training job no-such-job in us-east-1; check the name and "
        "AWS_REGION: aws sagemaker list-training-jobs --region us-east-1"
    ]


@pytest.mark.parametrize(
    ("setup", "fix"),
    [
        (
            "no credentials",
            "no AWS credentials found; run aws configure (or aws sso login) and retry",
        ),
        ("unreachable endpoint", "check the network, the proxy and AWS_REGION"),
    ],
)
def test_no_credentials_or_an_unreachable_endpoint_is_one_line_naming_the_job_and_the_fix(
    project, moto, tmp_path, setup, fix
):
    if setup == "no credentials":
        env = environment_without_aws(tmp_path / "no-aws", AWS_ENDPOINT_URL=moto.url)
    else:
        env = moto.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")

    done = jobs(project, env, "stop", "--job", JOB)

    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: could not stop job {JOB}: ") and line.endswith(fix)


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("logs", ["a line in eu-west-1", *COMPLETED]),
        ("stop", [f"Training job {JOB} has already ended (Completed); nothing to stop"]),
    ],
)
def test_make_passes_the_job_and_the_region_and_without_job_says_how_to_name_it(
    project, moto, tmp_path, target, says
):
    """The job is in eu-west-1, the environment's default region us-east-1: only a command
    that takes JOB and AWS_REGION from make finds it (the SDK's own log reader would not)."""
    west = dataclasses.replace(moto, region="eu-west-1")
    create_training_job(west, JOB)
    put_log(west, "algo-1", [(0, "a line in eu-west-1")])

    done = make_with_test_venv(
        project, target, ".installed-tools", moto.env(), JOB=JOB, AWS_REGION="eu-west-1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == says

    done = subprocess.run(
        ["make", target],
        cwd=project,
        env=environment_without_aws(tmp_path / "aws"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        f"error: which SageMaker job? name it: make {target} JOB=<job-name>"
    )
    assert not (project / ".venv").exists()  # said before installing anything
