"""Before the prompts: the caller's AWS account and configured region become the defaults
(hooks/pre_prompt.py), read from a moto server; without credentials nothing changes."""

import subprocess
import sys

import pytest
from helpers import (
    MOTO_ACCOUNT_ID,
    TEMPLATE_DIR,
    VENV_BIN,
    environment_without_aws,
    hide_modules,
    make_setting,
)

TEMPLATE_ACCOUNT = "123456789012"  # cookiecutter.json's own default


def baked(result):
    assert result.returncode == 0, result.stderr
    return next(result.output_dir.iterdir())


def account_and_region(project) -> tuple[str, str]:
    return make_setting(project, "AWS_ACCOUNT_ID"), make_setting(project, "AWS_REGION")


@pytest.fixture
def moto_env(moto):
    """The moto server's credentials, with the shell's region set to eu-west-1."""
    return moto.env(AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")


def test_the_callers_account_and_region_become_the_defaults(bake, moto_env):
    result = bake({"aws_checks": "skip"}, env=moto_env)
    project = baked(result)
    assert account_and_region(project) == (MOTO_ACCOUNT_ID, "eu-west-1")
    # the answers built from them follow
    assert make_setting(project, "ROLE_ARN").startswith(f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/")
    assert make_setting(project, "S3_OUTPUT_PATH").startswith(
        f"s3://sagemaker-eu-west-1-{MOTO_ACCOUNT_ID}/"
    )
    assert (
        f"defaults from your AWS setup: aws_region eu-west-1, aws_account_id {MOTO_ACCOUNT_ID}"
        in result.stdout
    )


def test_a_user_pressing_enter_at_each_prompt_gets_the_callers_account(bake, moto_env):
    result = bake({"aws_checks": "skip"}, env=moto_env, typed="\n" * 40)
    assert account_and_region(baked(result)) == (MOTO_ACCOUNT_ID, "eu-west-1")
    assert f"({MOTO_ACCOUNT_ID})" in result.stdout or f"[{MOTO_ACCOUNT_ID}]" in result.stdout


def test_answers_given_on_the_command_line_win_over_the_callers_defaults(bake, moto_env):
    answers = {"aws_checks": "skip", "aws_account_id": "111122223333", "aws_region": "us-west-2"}
    project = baked(bake(answers, env=moto_env))
    assert account_and_region(project) == ("111122223333", "us-west-2")


def test_the_region_of_the_aws_profile_is_offered(bake, moto, tmp_path):
    env = moto.env()
    del env["AWS_REGION"], env["AWS_DEFAULT_REGION"]
    with open(env["AWS_CONFIG_FILE"], "w") as config:
        config.write("[default]\nregion = ap-southeast-2\n")
    project = baked(bake({"aws_checks": "skip"}, env=env))
    assert account_and_region(project) == (MOTO_ACCOUNT_ID, "ap-southeast-2")


def test_without_credentials_the_templates_defaults_stay_and_nothing_waits(bake, tmp_path):
    result = bake({"aws_checks": "skip"}, env=environment_without_aws(tmp_path / "aws"))
    assert account_and_region(baked(result)) == (TEMPLATE_ACCOUNT, "us-east-1")
    assert "defaults from your AWS setup" not in result.stdout
    assert result.seconds < 20


def test_sm_template_aws_checks_skip_makes_no_aws_call_before_the_prompts(bake, moto, moto_env):
    moto.reset()
    result = bake({"aws_checks": "skip"}, env={**moto_env, "SM_TEMPLATE_AWS_CHECKS": "skip"})
    assert account_and_region(baked(result)) == (TEMPLATE_ACCOUNT, "us-east-1")
    assert moto.recorded_requests() == []


def test_without_boto3_the_aws_cli_gives_the_account_and_the_profiles_region(bake, moto, tmp_path):
    """A plain `pipx install cookiecutter`: neither boto3 nor botocore, the aws CLI on PATH."""
    shim = tmp_path / "bin"
    shim.mkdir()
    aws = shim / "aws"  # the real CLI, run with its own Python's modules
    aws.write_text(f'#!/bin/sh\nunset PYTHONPATH\nexec "{VENV_BIN}/aws" "$@"\n')
    aws.chmod(0o755)
    hidden = hide_modules(tmp_path / "hidden", "boto3", "botocore")
    env = moto.env(PYTHONPATH=hidden, PATH=f"{shim}:/usr/bin:/bin")
    del env["AWS_REGION"], env["AWS_DEFAULT_REGION"]
    with open(env["AWS_CONFIG_FILE"], "w") as config:
        config.write("[default]\nregion = ap-southeast-2\n")
    project = baked(bake({"aws_checks": "skip"}, env=env))
    assert account_and_region(project) == (MOTO_ACCOUNT_ID, "ap-southeast-2")


def test_the_template_tests_bakes_never_reach_the_aws_of_the_shell_that_runs_them(moto, tmp_path):
    """A developer's shell with keys, a profile and an endpoint (the moto server, which records
    what reaches it) runs a test of the template that bakes in-process: the pre-prompt hook of
    that bake, a child process like every bake's, asks AWS nothing."""
    aws = tmp_path / "developer-aws"
    aws.mkdir()
    (aws / "config").write_text("[profile developer]\nregion = eu-west-1\n")
    (aws / "credentials").write_text(
        "[developer]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    shell = moto.env(
        AWS_PROFILE="developer",
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
    )
    in_process_bake = "tests/test_bake.py::test_the_defaults_generate_exactly_the_expected_files"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", in_process_bake]
        + [f"--basetemp={tmp_path / 'inner'}"],  # not the outer run's numbered folders
        cwd=TEMPLATE_DIR,
        env=shell,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    assert moto.recorded_requests() == []
