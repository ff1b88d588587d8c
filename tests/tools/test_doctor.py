"""smt doctor, AWS side: each check against the moto server, in setups that pass and that fail.

Docker is pointed at a socket nobody serves, so these tests need no engine (the checks with a
real engine are in e2e/test_doctor_with_docker.py). Every FAIL line carries a command; where
the aws CLI can run it, the tests run it and check that it fixes what it says."""

import contextlib
import json
import os
import socket
import subprocess
import time

import pytest
from helpers import (
    IMAGE_MANIFEST,
    SAGEMAKER_TRUST,
    SLOW_MACHINE_MARGIN_S,
    VENV_BIN,
    doctor_report,
    make_setting,
    seed_ready_account,
)
from smt import aws as aws_layer
from smt import doctor

AWS_CHECKS = ["credentials", "ecr-repository", "ecr-image", "role", "s3-output"]


@pytest.fixture(autouse=True)
def no_docker(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


@pytest.fixture
def run_doctor(smt):
    def run(*options: str) -> tuple:
        done = smt("doctor", *options)
        assert "Traceback" not in done.out + done.err
        return done, doctor_report(done.out)

    return run


def fix_of(line: str) -> str:
    assert " -> fix: " in line, line
    return line.split(" -> fix: ", 1)[1]


def run_fix(command: str) -> None:
    """Run a FAIL line's fix as a user would paste it into a shell."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, f"{command}: {done.stderr}"


def test_a_ready_account_passes_every_aws_check(run_doctor, aws, project_dir):
    seed_ready_account(aws, project_dir)
    _, report = run_doctor()
    for name in AWS_CHECKS:
        assert report[name].startswith("OK "), report[name]
    assert aws.account_id in report["credentials"]


def test_an_empty_account_names_make_bootstrap_for_what_it_lacks_and_passes_after_it(
    run_doctor, smt, aws
):
    """A project before make bootstrap: its role, bucket and repository are hints, no FAIL."""
    done, report = run_doctor()
    assert done.code == 1  # the image: only make push puts it there
    assert report["credentials"].startswith("OK ")
    for name in ["ecr-repository", "role", "s3-output"]:
        assert report[name].startswith("WARN "), report[name]
        assert report[name].endswith(f"yet -> fix: {doctor.BOOTSTRAP}"), report[name]
    assert fix_of(report["ecr-image"]) == "make push"

    assert smt("bootstrap").code == 0

    _, report = run_doctor()
    for name in ["ecr-repository", "role", "s3-output"]:
        assert report[name].startswith("OK "), report[name]
    assert report["ecr-image"].startswith("FAIL ")


def test_a_role_sagemaker_cannot_assume_fails_and_its_fix_makes_it_pass(
    run_doctor, aws, project_dir
):
    seed_ready_account(aws, project_dir)
    role = make_setting(project_dir, "ROLE_ARN").rsplit("/", 1)[-1]
    trust_ec2 = json.dumps(SAGEMAKER_TRUST).replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")
    aws.client("iam").update_assume_role_policy(RoleName=role, PolicyDocument=trust_ec2)
    _, report = run_doctor()
    assert report["role"].startswith(f"FAIL {role} does not trust sagemaker.amazonaws.com")
    run_fix(fix_of(report["role"]))
    _, report = run_doctor()
    assert report["role"].startswith("OK ")
    trusted = aws.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    services = [statement["Principal"]["Service"] for statement in trusted["Statement"]]
    assert services == ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]  # nothing lost


def test_credentials_of_another_account_fail_and_the_checks_that_need_them_are_skipped(
    run_doctor, aws, project_dir
):
    seed_ready_account(aws, project_dir)
    done, report = run_doctor("--aws-account-id", "111122223333")
    assert done.code == 1
    assert report["credentials"].startswith(
        f"FAIL the credentials are for account {aws.account_id}, the project's is 111122223333"
    )
    assert "AWS_PROFILE" in fix_of(report["credentials"])
    for name in ["ecr-repository", "ecr-image", "role", "s3-output"]:
        assert report[name] == "WARN not checked: no usable credentials"


def test_no_credentials_fail_with_how_to_set_them_up(run_doctor):
    done, report = run_doctor()  # no `aws` fixture: no keys, empty AWS config files
    assert done.code == 1
    assert report["credentials"].startswith("FAIL no AWS credentials found")
    assert fix_of(report["credentials"]).startswith("aws configure")


def test_a_bucket_in_another_region_fails_because_sagemaker_needs_the_jobs_region(
    run_doctor, aws, project_dir
):
    bucket = make_setting(project_dir, "S3_OUTPUT_PATH").removeprefix("s3://").split("/")[0]
    aws.client("s3", region="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    _, report = run_doctor()
    assert report["s3-output"].startswith(
        f"FAIL bucket {bucket} is in eu-west-1; SageMaker needs one in us-east-1"
    )


def test_an_image_pushed_as_a_multi_platform_index_fails_with_the_rebuild(
    run_doctor, aws, project_dir
):
    """What BuildKit's provenance attestations make of a push: SageMaker refuses it."""
    seed_ready_account(aws, project_dir)
    repository = make_setting(project_dir, "ECR_REPOSITORY")
    tag = make_setting(project_dir, "IMAGE_TAG")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{**IMAGE_MANIFEST["config"], "platform": {"os": "linux"}}],
    }
    ecr = aws.client("ecr")
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(index),
                  imageManifestMediaType=index["mediaType"], imageTag=tag)  # fmt: skip
    _, report = run_doctor()
    assert report["ecr-image"].startswith(f"FAIL {repository}:{tag} is a multi-platform index")
    assert "--provenance=false" in fix_of(report["ecr-image"])


@contextlib.contextmanager
def black_holed_endpoint():
    """An endpoint URL whose connections never complete, as behind a firewall that drops
    packets: a listening socket whose one-place queue is full, so the kernel drops the
    handshakes that follow. (Connecting then times out after aws.py's connect timeout; a
    server that accepts and never answers would be waited for its read timeout instead.)"""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        queued = []
        while True:  # fill the queue until a connection does not complete
            client = socket.socket()
            client.settimeout(0.5)
            try:
                client.connect(server.getsockname())
            except OSError:
                client.close()
                break
            queued.append(client)
        try:
            yield f"http://127.0.0.1:{server.getsockname()[1]}"
        finally:
            for client in queued:
                client.close()


def test_an_aws_endpoint_that_never_answers_fails_once_within_the_configured_timeouts(
    run_doctor, aws, monkeypatch
):
    monkeypatch.setattr(aws_layer, "CONNECT_TIMEOUT_SECONDS", 1)  # 1 s, not 5: a faster test
    limit = aws_layer.CONNECT_TIMEOUT_SECONDS * aws_layer.MAX_ATTEMPTS + SLOW_MACHINE_MARGIN_S
    with black_holed_endpoint() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        started = time.monotonic()
        done, report = run_doctor()
        assert time.monotonic() - started < limit
    assert done.code == 1
    assert report["credentials"].startswith(
        "FAIL AWS does not answer (Connect timeout on endpoint URL"
    )
    for name in ["ecr-repository", "ecr-image", "role", "s3-output"]:
        assert report[name] == "WARN not checked: AWS does not answer"


def test_a_docker_daemon_that_does_not_answer_fails_with_how_to_start_it(
    run_doctor, aws, project_dir
):
    seed_ready_account(aws, project_dir)
    done, report = run_doctor()
    assert done.code == 1
    assert report["docker"].startswith("FAIL the Docker daemon does not answer")
    assert "systemctl start docker" in fix_of(report["docker"])
    for name in ["compose", "architecture", "disk"]:
        assert report[name] == "WARN not checked: no Docker"
    assert report["builds"].startswith("WARN neither build (no Docker engine answers)")
    assert done.out.rstrip().splitlines()[-1] == "doctor: 1 FAIL, 4 WARN, 5 OK"


def test_a_role_arn_whose_path_is_not_the_roles_fails_naming_the_real_arn(
    run_doctor, aws, project_dir
):
    seed_ready_account(aws, project_dir)
    real = make_setting(project_dir, "ROLE_ARN")
    wrong = real.replace(":role/", ":role/service-role/")
    _, report = run_doctor("--role-arn", wrong)
    assert report["role"] == (
        f"FAIL ROLE_ARN is {wrong}, but the role is {real} "
        f"-> fix: set ROLE_ARN in settings.env to {real}"
    )


def test_an_aws_profile_that_does_not_exist_is_one_fail_line_not_a_traceback(
    run_doctor, aws, monkeypatch
):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    done, report = run_doctor()
    assert done.code == 1
    assert report["credentials"] == (
        "FAIL The config profile (no-such-profile) could not be found "
        "-> fix: aws configure --profile NAME, or unset AWS_PROFILE"
    )


def test_what_the_credentials_may_not_do_is_a_warning_naming_the_permission(
    run_doctor, aws, project_dir, monkeypatch
):
    """AccessDenied is no FAIL: a job runs with the role's permissions, not the user's."""
    seed_ready_account(aws, project_dir)
    iam = aws.client("iam")
    iam.create_user(UserName="data-scientist")
    allowed = {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "s3:*"], "Resource": "*"}
    iam.put_user_policy(UserName="data-scientist", PolicyName="no-ecr-no-iam",
                        PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                   "Statement": [allowed]}))  # fmt: skip
    key = iam.create_access_key(UserName="data-scientist")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with aws.iam_enforced():
        _, report = run_doctor()
    user = f"arn:aws:iam::{aws.account_id}:user/data-scientist"
    assert report["credentials"] == f"OK {user} in account {aws.account_id}"
    lacks = "WARN not checked: your credentials lack"
    assert report["ecr-repository"] == f"{lacks} ecr:DescribeRepositories"
    assert report["ecr-image"] == f"{lacks} ecr:DescribeImages"
    assert report["role"] == f"{lacks} iam:GetRole"
    assert report["s3-output"].startswith("OK ")


def test_a_bucket_of_another_account_fails_naming_the_bucket(
    run_doctor, moto_accounts, monkeypatch
):
    """AWS keeps accounts apart (moto_accounts): another team's bucket answers 403. doctor
    asks S3 for a bucket owned by the project's account, so one that lets you in fails too."""
    moto_accounts.reset()
    moto_accounts.client("s3", account="444455556666").create_bucket(Bucket="team-b-models")
    for key, value in moto_accounts.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    _, report = run_doctor("--aws-account-id", moto_accounts.account_id,
                           "--s3-output-path", "s3://team-b-models/x")  # fmt: skip
    assert report["s3-output"] == (
        "FAIL bucket team-b-models is not reachable (403): another account's, or your "
        "credentials lack s3:ListBucket (the launcher uploads the data with them) "
        "-> fix: set S3_OUTPUT_PATH in settings.env to s3://<a bucket of yours>/<prefix>"
    )
    [head] = [r for r in moto_accounts.recorded_requests() if r["method"] == "HEAD"]
    assert head["headers"].get("X-Amz-Expected-Bucket-Owner") == moto_accounts.account_id


@pytest.mark.parametrize("setting", ["ROLE_ARN", "S3_OUTPUT_PATH", "AWS_ACCOUNT_ID"])
def test_a_setting_doctor_needs_that_is_not_set_is_one_line_naming_it(smt, project_dir, setting):
    settings = project_dir / "settings.env"
    kept = [line for line in settings.read_text().splitlines() if not line.startswith(setting)]
    settings.write_text("\n".join(kept) + "\n")
    done = smt("doctor")
    assert done.code == 2
    assert done.err.startswith(f"error: {setting}: make doctor needs it (")
    assert len(done.err.splitlines()) == 1


def test_a_bug_in_a_check_keeps_its_traceback_instead_of_becoming_a_fail_line(
    smt, aws, monkeypatch
):
    """Only AWS's answers (and botocore's word that there was none) become FAIL lines."""

    def broken(settings, s3):
        return settings.no_such_setting

    monkeypatch.setattr(doctor, "s3_output", broken)
    with pytest.raises(AttributeError, match="no_such_setting"):
        smt("doctor")
