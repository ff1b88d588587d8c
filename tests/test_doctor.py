"""make doctor, AWS side: each check against a moto server, in setups that pass and that fail.

Docker is pointed at a socket nobody serves, so these tests do not depend on an engine (the
checks with a real engine are in e2e/test_doctor_with_docker.py). Every FAIL line carries a command;
where the aws CLI can run it, the tests run it and check that it fixes what it says.
"""

import contextlib
import json
import os
import shlex
import socket
import subprocess

import pytest
from helpers import (
    IMAGE_MANIFEST,
    SAGEMAKER_TRUST,
    SLOW_MACHINE_MARGIN_S,
    VENV_BIN,
    doctor_report,
    make_setting,
    project_module,
    run_doctor,
    seed_ready_account,
)

from sm_template.aws_checks import create_repository_command

AWS_CHECKS = ["credentials", "ecr-repository", "ecr-image", "role", "s3-output"]
NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def project(bake, moto):
    """A project baked for the moto server's account, in us-east-1."""
    baked = bake({"aws_checks": "skip", "aws_account_id": moto.account_id})
    assert baked.returncode == 0, baked.stderr
    return next(baked.output_dir.iterdir())


def doctor(project, env, **settings):
    done = run_doctor(project, env, **settings)
    assert "Traceback" not in done.stdout + done.stderr
    return done, doctor_report(done.stdout)


def fix_of(line: str) -> str:
    assert " -> fix: " in line, line
    return line.split(" -> fix: ", 1)[1]


def run_fix(command: str, env: dict[str, str]) -> None:
    """Run a FAIL line's fix as a user would paste it into a shell."""
    done = subprocess.run(
        ["bash", "-c", command],
        env={**env, "PATH": f"{VENV_BIN}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"


def test_a_ready_account_passes_every_aws_check(project, moto):
    seed_ready_account(moto, project)
    _, report = doctor(project, moto.env(**NO_DOCKER))
    for name in AWS_CHECKS:
        assert report[name].startswith("OK "), report[name]
    assert moto.account_id in report["credentials"]


def test_an_empty_account_fails_each_check_with_a_command_that_fixes_it(project, moto):
    env = moto.env(**NO_DOCKER)
    done, report = doctor(project, env)
    assert done.returncode != 0
    assert report["credentials"].startswith("OK ")
    for name in ["ecr-repository", "ecr-image", "role", "s3-output"]:
        assert report[name].startswith("FAIL "), report[name]
    assert fix_of(report["ecr-image"]) == "make push"
    for name in ["ecr-repository", "role", "s3-output"]:
        run_fix(fix_of(report[name]), env)

    _, report = doctor(project, env)
    for name in ["ecr-repository", "role", "s3-output"]:
        assert report[name].startswith("OK "), report[name]
    assert report["ecr-image"].startswith("FAIL ")  # only make push puts the image there


def test_the_fix_for_a_missing_repository_is_the_command_the_template_runs_to_create_it(
    project, moto
):
    _, report = doctor(project, moto.env(**NO_DOCKER))
    repository = make_setting(project, "ECR_REPOSITORY")
    command = create_repository_command(repository, moto.region)  # immutable tags, scan on push
    assert fix_of(report["ecr-repository"]) == shlex.join(command)


def test_a_role_sagemaker_cannot_assume_fails_and_its_fix_makes_it_pass(project, moto):
    seed_ready_account(moto, project)
    role = make_setting(project, "ROLE_ARN").rsplit("/", 1)[-1]
    trust_ec2 = json.dumps(SAGEMAKER_TRUST).replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")
    moto.client("iam").update_assume_role_policy(RoleName=role, PolicyDocument=trust_ec2)
    env = moto.env(**NO_DOCKER)
    _, report = doctor(project, env)
    assert report["role"].startswith(f"FAIL {role} does not trust sagemaker.amazonaws.com")
    run_fix(fix_of(report["role"]), env)
    _, report = doctor(project, env)
    assert report["role"].startswith("OK ")
    trusted = moto.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    services = [statement["Principal"]["Service"] for statement in trusted["Statement"]]
    assert services == ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]  # nothing lost


def test_credentials_of_another_account_fail_and_the_checks_that_need_them_are_skipped(
    project, moto
):
    seed_ready_account(moto, project)
    done, report = doctor(project, moto.env(**NO_DOCKER), AWS_ACCOUNT_ID="111122223333")
    assert done.returncode != 0
    assert report["credentials"].startswith(
        f"FAIL the credentials are for account {moto.account_id}, the project's is 111122223333"
    )
    assert "AWS_PROFILE" in fix_of(report["credentials"])
    for name in ["ecr-repository", "ecr-image", "role", "s3-output"]:
        assert report[name] == "WARN not checked: no usable credentials"


def test_no_credentials_fail_with_how_to_set_them_up(project, tmp_path):
    from helpers import environment_without_aws

    done, report = doctor(project, environment_without_aws(tmp_path / "aws", **NO_DOCKER))
    assert done.returncode != 0
    assert report["credentials"].startswith("FAIL no AWS credentials found")
    assert fix_of(report["credentials"]).startswith("aws configure")


def test_a_bucket_in_another_region_fails_because_sagemaker_needs_the_jobs_region(project, moto):
    bucket = make_setting(project, "S3_OUTPUT_PATH").removeprefix("s3://").split("/")[0]
    moto.client("s3", region="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    _, report = doctor(project, moto.env(**NO_DOCKER))
    assert report["s3-output"].startswith(
        f"FAIL bucket {bucket} is in eu-west-1; SageMaker needs one in us-east-1"
    )


def test_an_image_pushed_as_a_multi_platform_index_fails_with_the_rebuild(project, moto):
    """What BuildKit's provenance attestations make of a push: SageMaker refuses it."""
    seed_ready_account(moto, project)
    repository, tag = make_setting(project, "ECR_REPOSITORY"), make_setting(project, "IMAGE_TAG")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{**IMAGE_MANIFEST["config"], "platform": {"os": "linux"}}],
    }
    ecr = moto.client("ecr")
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    ecr.put_image(
        repositoryName=repository,
        imageManifest=json.dumps(index),
        imageManifestMediaType=index["mediaType"],
        imageTag=tag,
    )
    _, report = doctor(project, moto.env(**NO_DOCKER))
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
    project, moto
):
    aws = project_module(project, "project_tools/aws.py")  # one call's connect attempts
    limit = aws.CONNECT_TIMEOUT_SECONDS * aws.MAX_ATTEMPTS + SLOW_MACHINE_MARGIN_S
    with black_holed_endpoint() as url:
        env = moto.env(AWS_ENDPOINT_URL=url, **NO_DOCKER)
        done, report = doctor(project, env, timeout=limit)  # past it: TimeoutExpired
    assert done.returncode != 0
    assert report["credentials"].startswith(
        "FAIL AWS does not answer (Connect timeout on endpoint URL"
    )
    for name in ["ecr-repository", "ecr-image", "role", "s3-output"]:
        assert report[name] == "WARN not checked: AWS does not answer"


def test_a_docker_daemon_that_does_not_answer_fails_with_how_to_start_it(project, moto):
    seed_ready_account(moto, project)
    done, report = doctor(project, moto.env(**NO_DOCKER))
    assert done.returncode != 0
    assert report["docker"].startswith("FAIL the Docker daemon does not answer")
    assert "systemctl start docker" in fix_of(report["docker"])
    for name in ["compose", "architecture", "disk"]:
        assert report[name] == "WARN not checked: no Docker"
    assert done.stdout.rstrip().splitlines()[-1] == "doctor: 1 FAIL, 3 WARN, 5 OK"


def test_a_role_under_a_path_is_created_by_its_fix_under_that_path(project, moto):
    role_arn = f"arn:aws:iam::{moto.account_id}:role/service-role/SageMakerJobs"
    env = moto.env(**NO_DOCKER)
    _, report = doctor(project, env, ROLE_ARN=role_arn)
    assert report["role"].startswith("FAIL SageMakerJobs does not exist")
    assert "--path /service-role/ " in fix_of(report["role"])
    run_fix(fix_of(report["role"]), env)
    _, report = doctor(project, env, ROLE_ARN=role_arn)
    assert report["role"] == "OK SageMakerJobs exists and trusts sagemaker.amazonaws.com"


def test_a_role_arn_whose_path_is_not_the_roles_fails_naming_the_real_arn(project, moto):
    seed_ready_account(moto, project)
    real = make_setting(project, "ROLE_ARN")
    wrong = real.replace(":role/", ":role/service-role/")
    _, report = doctor(project, moto.env(**NO_DOCKER), ROLE_ARN=wrong)
    assert report["role"] == (
        f"FAIL ROLE_ARN is {wrong}, but the role is {real} "
        f"-> fix: set ROLE_ARN in the Makefile to {real}"
    )


def test_an_aws_profile_that_does_not_exist_is_one_fail_line_not_a_traceback(project, moto):
    done, report = doctor(project, moto.env(AWS_PROFILE="no-such-profile", **NO_DOCKER))
    assert done.returncode != 0
    assert report["credentials"] == (
        "FAIL The config profile (no-such-profile) could not be found "
        "-> fix: aws configure --profile NAME, or unset AWS_PROFILE"
    )


def test_what_the_credentials_may_not_do_is_a_warning_naming_the_permission(project, moto):
    """AccessDenied is no FAIL: a job runs with the role's permissions, not the user's."""
    seed_ready_account(moto, project)
    iam = moto.client("iam")
    iam.create_user(UserName="data-scientist")
    allowed = {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "s3:*"], "Resource": "*"}
    iam.put_user_policy(
        UserName="data-scientist",
        PolicyName="no-ecr-no-iam",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allowed]}),
    )
    key = iam.create_access_key(UserName="data-scientist")["AccessKey"]
    env = moto.env(
        AWS_ACCESS_KEY_ID=key["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
        **NO_DOCKER,
    )
    with moto.iam_enforced():
        _, report = doctor(project, env)
    user = f"arn:aws:iam::{moto.account_id}:user/data-scientist"
    assert report["credentials"] == f"OK {user} in account {moto.account_id}"
    lacks = "WARN not checked: your credentials lack"
    assert report["ecr-repository"] == f"{lacks} ecr:DescribeRepositories"
    assert report["ecr-image"] == f"{lacks} ecr:DescribeImages"
    assert report["role"] == f"{lacks} iam:GetRole"
    assert report["s3-output"].startswith("OK ")


def test_a_bucket_of_another_account_fails_naming_the_bucket(project, moto_accounts):
    """AWS keeps accounts apart (moto_accounts): another team's bucket answers 403. doctor
    asks S3 for a bucket owned by the project's account, so one that lets you in fails too."""
    moto_accounts.reset()
    moto_accounts.client("s3", account="444455556666").create_bucket(Bucket="team-b-models")
    settings = {
        "AWS_ACCOUNT_ID": moto_accounts.account_id,
        "S3_OUTPUT_PATH": "s3://team-b-models/x",
    }
    _, report = doctor(project, moto_accounts.env(**NO_DOCKER), **settings)
    assert report["s3-output"] == (
        "FAIL bucket team-b-models is not reachable (403): another account's, or your "
        "credentials lack s3:ListBucket (the launcher uploads the data with them) "
        "-> fix: set S3_OUTPUT_PATH in the Makefile to s3://<a bucket of yours>/<prefix>"
    )
    [head] = [r for r in moto_accounts.recorded_requests() if r["method"] == "HEAD"]
    assert head["headers"].get("X-Amz-Expected-Bucket-Owner") == moto_accounts.account_id
