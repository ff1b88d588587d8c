"""make logs JOB=<name> and make stop JOB=<name> (scripts/remote_job.py) against a moto server
seeded with training jobs and their CloudWatch log streams.

moto 5.2.5 makes every training job Completed at once, has no state manager for training
jobs and no StopTrainingJob (it answers 500). The tests of a running, stopping or failed job
therefore go through StatusOverlay, a proxy in front of moto that changes only the status
fields of DescribeTrainingJob's answers; every request still reaches moto and its recorder,
except those it is told to throttle.
"""

import base64
import http.client
import importlib.util
import json
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from helpers import (
    TEMPLATE_DIR,
    VENV_BIN,
    create_training_job,
    environment_without_aws,
    free_port,
)

JOB = "digits-remote-20261126093342"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
T0 = int(time.time() * 1000) - 600_000  # CloudWatch takes events of the last 14 days
RUNNING = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
GET_LOG_EVENTS = "Logs_20140328.GetLogEvents"
THROTTLED = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'


class StatusOverlay(ThreadingHTTPServer):
    """Forwards every request to moto; answers DescribeTrainingJob with the next status of
    `statuses[job]` (the last one repeats) merged into moto's answer, and calls
    `on_describe(n)` on the n-th describe first. With `answer_stop`, StopTrainingJob, once
    moto has seen it, gets AWS's empty success answer instead of moto's 500. The next
    `fail_next[target]` requests of an X-Amz-Target get AWS's throttling error, unforwarded."""

    def __init__(self, moto):
        super().__init__(("127.0.0.1", 0), ForwardToMoto)
        self.moto = urllib.parse.urlsplit(moto.url)
        self.statuses: dict[str, list[dict]] = {}
        self.on_describe: Callable[[int], None] = lambda n: None
        self.answer_stop = False
        self.describes = 0
        self.fail_next: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_status(self, job: str) -> dict:
        self.describes += 1
        self.on_describe(self.describes)
        script = self.statuses.get(job, [{}])
        return script.pop(0) if len(script) > 1 else script[0]


class ForwardToMoto(BaseHTTPRequestHandler):
    server: StatusOverlay

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        if self.server.fail_next.get(target):
            self.server.fail_next[target] -= 1
            return self.answer(400, THROTTLED, "application/x-amz-json-1.1")
        moto = http.client.HTTPConnection(self.server.moto.hostname, self.server.moto.port, 10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        moto.request(self.command, self.path, body, headers)
        answer = moto.getresponse()
        status, payload = answer.status, answer.read()
        content_type = answer.getheader("Content-Type") or "application/x-amz-json-1.1"
        moto.close()
        if target == "SageMaker.DescribeTrainingJob" and status == 200:
            described = json.loads(payload)
            described.update(self.server.next_status(described["TrainingJobName"]))
            payload = json.dumps(described).encode()
        elif target == "SageMaker.StopTrainingJob" and self.server.answer_stop:
            status, payload = 200, b"{}"
        self.answer(status, payload, content_type)

    def answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:  # keep pytest's output to the test's own
        pass


@pytest.fixture
def overlay(moto):
    server = StatusOverlay(moto)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """One baked project for the module (baked in-process: the scripts only read it)."""
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
    """How many throttled answers fail one call: botocore's attempts, as aws_clients sets them."""
    spec = importlib.util.spec_from_file_location("aws_clients", project / "scripts/aws_clients.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    [logs] = module.clients("us-east-1", "logs")
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


def remote_job(project, env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "scripts/remote_job.py", *args, "--region", "us-east-1"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def through_overlay(project, moto, overlay, command: str, *args: str):
    """remote_job.py COMMAND --job JOB ARGS, talking to moto through the overlay."""
    return remote_job(project, moto.env(AWS_ENDPOINT_URL=overlay.url), command, "--job", JOB, *args)


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

    done = remote_job(project, moto.env(), "logs", "--job", JOB)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[algo-1] epoch 1 on host 1",
        "[algo-2] epoch 1 on host 2",
        "[algo-1] epoch 2 on host 1",
        "[algo-2] epoch 2 on host 2",
        "[algo-1] done",
        f"Training job {JOB}: Completed",
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
        f"Training job {JOB}: InProgress (Starting)",
        "line 1",
        "line 2",
        f"Training job {JOB}: InProgress (Training)",
        "line 3",
        "line 4, after the status changed",
        f"Training job {JOB}: Completed",
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
        f"Training job {JOB}: InProgress (Starting)",
        "line 1",
        f"Training job {JOB}: InProgress (Training)",
        "line 2",
        f"Training job {JOB}: Completed",
    ]
    warning = "warning: AWS did not answer (ThrottlingException); retrying in 0.2 s"
    assert done.stderr.splitlines() == [warning, warning]
    assert overlay.fail_next == {GET_LOG_EVENTS: 0}


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


def test_ctrl_c_while_following_exits_130_saying_the_job_runs_on_and_how_to_stop_it(
    project, moto, overlay
):
    create_training_job(moto, JOB)
    overlay.statuses[JOB] = [RUNNING]
    polling = threading.Event()
    overlay.on_describe = lambda n: n >= 2 and polling.set()
    process = subprocess.Popen(
        [str(VENV_BIN / "python"), "scripts/remote_job.py", "logs", "--job", JOB, "--poll", "0.2"],
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

    done = remote_job(project, moto.env(), "stop", "--job", JOB)

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
    assert line.startswith(f"error: could not stop job {JOB}: AWS refused the request: 500: ")
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
    done = remote_job(project, moto.env(), command, "--job", "no-such-job")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: there is no training job no-such-job in us-east-1; check the name and "
        "AWS_REGION: aws sagemaker list-training-jobs --region us-east-1"
    ]


@pytest.mark.parametrize(
    ("setup", "fix"),
    [
        ("no credentials", "run 'aws configure' (or aws sso login) and retry"),
        ("unreachable endpoint", "check your network and region"),
    ],
)
def test_no_credentials_or_an_unreachable_endpoint_is_one_line_naming_the_job_and_the_fix(
    project, moto, tmp_path, setup, fix
):
    if setup == "no credentials":
        env = environment_without_aws(tmp_path / "no-aws", AWS_ENDPOINT_URL=moto.url)
    else:
        env = moto.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")

    done = remote_job(project, env, "stop", "--job", JOB)

    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: could not stop job {JOB}: ") and line.endswith(fix)


@pytest.mark.parametrize("target", ["logs", "stop"])
def test_make_passes_the_job_and_the_region_and_without_job_says_how_to_name_it(
    project, tmp_path, target
):
    planned = subprocess.run(
        ["make", "-n", target, f"JOB={JOB}", "AWS_REGION=eu-west-1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"scripts/remote_job.py {target} --job {JOB} --region eu-west-1" in planned.stdout

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
