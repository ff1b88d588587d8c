"""How `make train-remote` ends, as its user sees it: the job Failed, Stopped or Completed
after running a while, Ctrl-C while it waits, and the SDK's check of ROLE_ARN, which is on
here as it is for users (SAGEMAKER_VALIDATE_ROLE unset).

moto 5.2.5 completes every job at once and does not implement IAM's SimulatePrincipalPolicy
(it answers 500), so the launcher talks to moto through the overlay fixture
(status_overlay.StatusOverlay): it scripts the status DescribeTrainingJob answers, and a stub
in this file, `iam_simulation`, answers SimulatePrincipalPolicy after moto has recorded it. The
stub allows every action it is asked about unless a test denies one: which permissions a role
needs is IAM's to judge, not the launcher's. The role's trust policy, which the SDK checks too,
is moto's own answer to GetRole.
"""

import json
import os
import re
import signal
import subprocess
import threading
import urllib.parse
from xml.sax.saxutils import escape

import pytest
from helpers import (
    SAGEMAKER_TRUST,
    actions,
    bake_with_data,
    bodies,
    make_command,
    make_setting,
    seed_ready_account,
    train_remote,
)
from status_overlay import ANY_JOB

RUNNING = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
# ModelTrainer.train and TrainingJob.get_all each describe the new job once; the launcher's
# own describes come after those two, then every 5 s.
SDK_DESCRIBES = 2
MAKE_FAILED = re.compile(r"make: \*\*\* \[Makefile:\d+: train-remote\] Error (\d+)")


def iam_simulation(denied: tuple[str, ...] = ()):
    """A stub of IAM's SimulatePrincipalPolicy: each action in ActionNames.member.N is
    allowed, but those in `denied` (implicitDeny: no policy of the role grants them)."""

    def answer(form: dict[str, str]) -> bytes:
        asked = [value for key, value in form.items() if key.startswith("ActionNames.member.")]
        results = "".join(
            f"<member><EvalActionName>{escape(action)}</EvalActionName>"
            "<EvalResourceName>*</EvalResourceName><EvalDecision>"
            f"{'implicitDeny' if action in denied else 'allowed'}</EvalDecision></member>"
            for action in asked
        )
        return (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        ).encode()

    return answer


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake_with_data(tmp_path_factory.mktemp("bake"))


@pytest.fixture
def env(project, moto, overlay) -> dict[str, str]:
    """An account make doctor passes (tests/test_doctor.py seeds it so) behind the overlay,
    with the stub for SimulatePrincipalPolicy: the environment train-remote runs in."""
    seed_ready_account(moto, project)
    overlay.query_answers["SimulatePrincipalPolicy"] = iam_simulation()
    moto.start_recording()
    return moto.env(AWS_ENDPOINT_URL=overlay.url)


def the_job_goes(overlay, *statuses: dict) -> None:
    """The submitted job answers InProgress to the SDK's describes and to the launcher's
    first, then each of `statuses` in turn to the launcher's next polls."""
    overlay.statuses[ANY_JOB] = [RUNNING] * (SDK_DESCRIBES + 1) + list(statuses)


def submitted_job(stdout: str) -> str:
    [job] = re.findall(r"^Training job (\S+) submitted\.$", stdout, re.MULTILINE)
    return job


def what_it_said_after_submitting(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return lines[lines.index(f"Training job {submitted_job(stdout)} submitted.") :]


def test_a_job_that_fails_while_train_remote_waits_prints_its_reason_and_exits_1(
    project, env, overlay
):
    reason = "AlgorithmError: learning-rate must be > 0 (train.py, /opt/ml/output/failure)"
    the_job_goes(overlay, {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed",
                           "FailureReason": reason})  # fmt: skip

    done = train_remote(project, env)

    job = submitted_job(done.stdout)
    assert what_it_said_after_submitting(done.stdout) == [
        f"Training job {job} submitted.",
        f"Training job {job}: Failed",
        f"FAILED: {reason}",
    ]
    assert done.returncode == 2  # make's own, for a failed recipe
    [make_says] = done.stderr.splitlines()  # no traceback, no other line
    assert MAKE_FAILED.fullmatch(make_says)[1] == "1"  # the launcher's exit status
    assert overlay.describes == SDK_DESCRIBES + 2  # the launcher saw InProgress, then Failed


@pytest.mark.parametrize(
    ("stopped_by", "secondary_status", "says"),
    [("make stop", "Stopped", "Stopped"),
     ("MAX_RUN", "MaxRuntimeExceeded", "Stopped (MaxRuntimeExceeded)")],
)  # fmt: skip
def test_a_job_stopped_while_train_remote_waits_ends_it_with_exit_0_saying_how_it_stopped(
    project, env, overlay, stopped_by, secondary_status, says
):
    """Exit 0, as the launcher's jobs.follow intends and the project's README says: a
    stopped job is not a failed one (a job stopped on time still uploads its model)."""
    the_job_goes(overlay, {"TrainingJobStatus": "Stopped", "SecondaryStatus": secondary_status})

    done = train_remote(project, env)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    job = submitted_job(done.stdout)
    assert what_it_said_after_submitting(done.stdout) == [
        f"Training job {job} submitted.",
        f"Training job {job}: {says}",
    ]
    assert overlay.describes == SDK_DESCRIBES + 2


def test_a_job_that_completes_after_running_ends_train_remote_with_where_its_model_is(
    project, env, overlay
):
    the_job_goes(overlay, {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"})

    done = train_remote(project, env)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    job = submitted_job(done.stdout)
    model = f"{make_setting(project, 'S3_OUTPUT_PATH')}/{job}/output/model.tar.gz"
    assert what_it_said_after_submitting(done.stdout) == [
        f"Training job {job} submitted.",
        f"Training job {job}: Completed",
        f"model: {model}",
    ]
    assert overlay.describes == SDK_DESCRIBES + 2  # InProgress first: a real transition


def test_ctrl_c_while_train_remote_waits_exits_130_saying_the_job_runs_on_and_how_to_stop_it(
    project, env, moto, overlay
):
    overlay.statuses[ANY_JOB] = [RUNNING]
    waiting = threading.Event()  # the launcher's second describe: it sleeps 5 s after it
    overlay.on_describe = lambda n: n >= SDK_DESCRIBES + 2 and waiting.set()
    make = subprocess.Popen(
        make_command("train-remote", ".installed-tools"),
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert waiting.wait(timeout=120), "the launcher never polled the job"
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C does: make and the launcher get it
        stdout, stderr = make.communicate(timeout=60)
    finally:
        make.kill()

    job = submitted_job(stdout)
    running = f"job {job} keeps running (and billing): make stop JOB={job} stops it"
    *said, make_says = stderr.strip().splitlines()
    assert said == [f"stopped following; {running}"]
    assert MAKE_FAILED.fullmatch(make_says)[1] == "130"  # the launcher's exit status
    assert make.returncode == -signal.SIGINT  # make re-raises it: the shell's $? is 130
    assert "SageMaker.StopTrainingJob" not in actions(moto)


def test_with_role_validation_on_train_remote_asks_iam_about_role_arn_then_submits_the_job(
    project, env, moto
):
    done = train_remote(project, env, WAIT=0)

    assert done.returncode == 0, done.stderr
    role_arn = make_setting(project, "ROLE_ARN")
    [simulate] = map(urllib.parse.parse_qs, bodies(moto, "SimulatePrincipalPolicy"))
    assert simulate["PolicySourceArn"] == [role_arn]
    [get_role] = map(urllib.parse.parse_qs, bodies(moto, "GetRole"))
    assert get_role["RoleName"] == [role_arn.rsplit("/", 1)[1]]  # its trust policy, from moto
    [create] = map(json.loads, bodies(moto, "SageMaker.CreateTrainingJob"))
    assert create["RoleArn"] == role_arn
    names = actions(moto)
    assert names.index("SimulatePrincipalPolicy") < names.index("SageMaker.CreateTrainingJob")
    assert f"Training job {create['TrainingJobName']} submitted." in done.stdout.splitlines()


@pytest.mark.parametrize(
    ("refused_for", "why", "iam_calls"),
    [
        (
            "its trust",  # moto's GetRole answers the trust policy
            "Its trust policy does not allow 'sagemaker.amazonaws.com' to assume it, so "
            "SageMaker cannot use it (the API would fail with 'Could not assume role'). "
            "Required permissions: ...",  # the SDK's list of all of them, cut between words
            ["SimulatePrincipalPolicy", "GetRole"],
        ),
        (
            "a permission",  # the stub denies it
            "Missing permissions: ecr:GetAuthorizationToken",
            ["SimulatePrincipalPolicy"],
        ),
    ],
)
def test_a_role_the_sdk_refuses_stops_train_remote_in_one_line_before_any_upload(
    project, env, moto, overlay, refused_for, why, iam_calls
):
    role_arn = make_setting(project, "ROLE_ARN")
    if refused_for == "its trust":
        trust = json.dumps(SAGEMAKER_TRUST).replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")
        iam = moto.client("iam")
        iam.update_assume_role_policy(RoleName=role_arn.rsplit("/", 1)[1], PolicyDocument=trust)
        moto.start_recording()
    else:
        denied = ("ecr:GetAuthorizationToken",)
        overlay.query_answers["SimulatePrincipalPolicy"] = iam_simulation(denied)

    done = train_remote(project, env)

    assert done.returncode == 2
    [error, make_says] = done.stderr.splitlines()
    sdk_says = f"IAM role '{role_arn}' cannot be used for 'training' workloads. {why}"
    fix = "fix the role (make doctor checks its trust) or set ROLE_ARN"
    assert error == f"error: ROLE_ARN: {sdk_says}; {fix} (DEBUG=1 shows the traceback)"
    assert MAKE_FAILED.fullmatch(make_says)[1] == "1"
    assert actions(moto) == [  # nothing uploaded, nothing submitted
        "GetCallerIdentity",
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
        *iam_calls,
    ]
