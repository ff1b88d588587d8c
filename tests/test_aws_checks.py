"""aws_checks=strict against a real moto server over HTTP (and tiny real servers for the
failures moto cannot produce), through boto3 and through the aws CLI."""

import base64
import contextlib
import http.server
import os
import shutil
import socket
import threading
import time
from urllib.parse import parse_qs

import pytest
from helpers import (
    MOTO_ACCOUNT_ID,
    SLOW_MACHINE_MARGIN_S,
    VENV_BIN,
    environment_without_aws,
    free_port,
    hide_modules,
    resolved_answers,
)

from sm_template import pre_prompt
from sm_template.aws_checks import (
    CLI_START_S,
    TIME_BUDGET_S,
    Boto3Client,
    CliClient,
    Deadline,
    caller_account,
    check_against_aws,
    create_repository,
    repository_exists,
)

REPOSITORY = "team/model-a"
STRICT = {"aws_checks": "strict", "aws_account_id": MOTO_ACCOUNT_ID, "ecr_repository": REPOSITORY}


# hooks/pre_prompt.py asks who the caller is (for the defaults) before anything else;
# then the pre-generation checks ask again, and look for the repository.
PRE_PROMPT = ["GetCallerIdentity"]
CHECKS = ["GetCallerIdentity", "DescribeRepositories"]


def operations(requests: list[dict]) -> list[str]:
    """The AWS operation of each recorded request (JSON protocols name it in X-Amz-Target,
    query protocols such as STS in the Action field of the body)."""
    names = []
    for request in requests:
        target = request["headers"].get("X-Amz-Target")
        if target:
            names.append(target.rsplit(".", 1)[1])
        else:
            body = request["body"]
            if request["body_encoded"]:
                body = base64.b64decode(body).decode()
            names.append(parse_qs(body)["Action"][0])
    return names


def repository_settings(moto) -> dict:
    [repository] = moto.client("ecr").describe_repositories()["repositories"]
    return repository


@pytest.fixture
def hidden_boto3(tmp_path):
    """A PYTHONPATH entry under which `import boto3` fails, as in a cookiecutter without it."""
    return hide_modules(tmp_path / "no_boto3", "boto3")


def test_the_right_account_and_an_existing_repository_pass_and_the_project_is_generated(bake, moto):
    moto.client("ecr").create_repository(repositoryName=REPOSITORY)
    moto.start_recording()  # record only what the bake asks

    result = bake(STRICT, env=moto.env())

    assert result.returncode == 0, result.output
    assert result.leftovers == ["mnist_on_sagemaker"]
    assert operations(moto.recorded_requests()) == [*PRE_PROMPT, *CHECKS]


def test_credentials_of_another_account_fail_naming_aws_account_id_and_both_accounts(bake, moto):
    result = bake({**STRICT, "aws_account_id": "111122223333"}, env=moto.env())

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith("ERROR: aws_account_id: you answered 111122223333 but your AWS ")
    assert MOTO_ACCOUNT_ID in error
    assert result.leftovers == []


def test_a_missing_repository_is_a_note_naming_make_bootstrap_and_the_project_is_made(bake, moto):
    result = bake(STRICT, env=moto.env())

    assert result.returncode == 0, result.output
    assert result.errors == [] and result.warnings == []
    assert (
        f"sm-template: ECR repository {REPOSITORY} does not exist in us-east-1 of account "
        f"{MOTO_ACCOUNT_ID} yet; in the project, make bootstrap creates it"
    ) in result.stdout
    assert moto.client("ecr").describe_repositories()["repositories"] == []  # nothing made
    assert result.leftovers == ["mnist_on_sagemaker"]


def test_create_ecr_repository_yes_creates_it_scanned_on_push_with_immutable_tags(bake, moto):
    result = bake({**STRICT, "create_ecr_repository": "yes"}, env=moto.env())

    assert result.returncode == 0, result.output
    assert f"created ECR repository {REPOSITORY} in us-east-1" in result.stdout
    repository = repository_settings(moto)
    assert repository["repositoryName"] == REPOSITORY
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert result.leftovers == ["mnist_on_sagemaker"]


def test_aws_checks_skip_makes_no_aws_call_beyond_the_pre_prompt_defaults(bake, moto):
    result = bake({**STRICT, "aws_checks": "skip"}, env=moto.env())

    assert result.returncode == 0, result.output
    assert operations(moto.recorded_requests()) == PRE_PROMPT


def test_no_credentials_fail_with_a_message_saying_how_to_set_them_up(bake, moto, tmp_path):
    env = environment_without_aws(tmp_path / "empty-aws", AWS_ENDPOINT_URL=moto.url)

    result = bake(STRICT, env=env)

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith("ERROR: aws_checks: no usable AWS credentials")
    assert "aws configure" in error and "aws_checks=skip" in error
    assert result.leftovers == []


# A bake asks AWS within two budgets: the pre-prompt hook's, then the checks'.
BAKE_LIMIT_S = pre_prompt.TIME_BUDGET_S + TIME_BUDGET_S + SLOW_MACHINE_MARGIN_S


@contextlib.contextmanager
def silent_endpoint(hang_up_after: float):
    """An endpoint URL whose connections are taken and never answered. After hang_up_after
    seconds it hangs up on them, so a call without a timeout fails the test, not hangs it."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hang_up = threading.Timer(hang_up_after, silent.close)
        hang_up.start()
        try:
            yield f"http://127.0.0.1:{silent.getsockname()[1]}"
        finally:
            hang_up.cancel()


def test_an_unreachable_endpoint_fails_clearly_within_the_configured_budgets(bake, tmp_path):
    env = environment_without_aws(
        tmp_path / "aws",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )

    result = bake(STRICT, env=env, timeout=BAKE_LIMIT_S)

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith("ERROR: aws_checks: could not reach AWS for sts:GetCallerIdentity")
    assert "AWS_ENDPOINT_URL" in error and "aws_checks=skip" in error


def test_an_endpoint_that_never_answers_times_out_within_the_configured_budgets(bake, tmp_path):
    with silent_endpoint(hang_up_after=BAKE_LIMIT_S) as url:
        env = environment_without_aws(
            tmp_path / "aws",
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        result = bake(STRICT, env=env, timeout=BAKE_LIMIT_S)

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith(
        "ERROR: aws_checks: could not reach AWS for sts:GetCallerIdentity in us-east-1 "
        "(Read timeout on endpoint URL"
    )


STS_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"""


@pytest.fixture
def failing_sts():
    """Start a real HTTP server on 127.0.0.1 that answers every POST with an STS error, as AWS
    does for expired or invalid credentials (moto never does). Returns a function taking the
    error code and message, giving the server's URL."""
    servers = []

    def start(code: str, message: str) -> str:
        body = STS_ERROR.format(code=code, message=message).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(403 if code == "AccessDenied" else 400)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_expired_credentials_fail_with_a_message_saying_to_refresh_them(
    bake, failing_sts, tmp_path
):
    url = failing_sts("ExpiredToken", "The security token included in the request is expired")
    env = environment_without_aws(
        tmp_path / "aws",
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="ASIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_SESSION_TOKEN="token",
    )

    result = bake(STRICT, env=env)

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith("ERROR: aws_checks: your AWS credentials have expired (ExpiredToken: ")
    assert "aws sso login" in error and "aws_checks=skip" in error
    assert result.leftovers == []


# In-process checks of both clients; the environment is the test process's own.


@pytest.fixture(params=["boto3", "aws-cli"])
def make_client(request):
    """Build the client under test (boto3, or the aws CLI of this venv) with a fresh budget."""
    if request.param == "boto3":
        import boto3

        return lambda seconds=TIME_BUDGET_S: Boto3Client(boto3, Deadline(seconds))
    return lambda seconds=TIME_BUDGET_S: CliClient(str(VENV_BIN / "aws"), Deadline(seconds))


@pytest.fixture
def use_env(monkeypatch):
    """Replace the test process's environment by the given one (the CLI inherits it)."""

    def use(env: dict[str, str]) -> None:
        for key in list(os.environ):
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    return use


def test_each_client_reads_the_account_and_finds_creates_and_then_finds_the_repository(
    make_client, moto, use_env
):
    use_env(moto.env())
    client = make_client()

    assert caller_account(client, "eu-west-1") == MOTO_ACCOUNT_ID
    assert not repository_exists(client, REPOSITORY, "eu-west-1")
    create_repository(client, REPOSITORY, "eu-west-1")
    assert repository_exists(client, REPOSITORY, "eu-west-1")

    [repository] = moto.client("ecr", "eu-west-1").describe_repositories()["repositories"]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert moto.client("ecr", "us-east-1").describe_repositories()["repositories"] == []


def test_each_client_checks_the_answered_region_even_when_aws_region_says_otherwise(
    make_client, moto, use_env
):
    use_env(moto.env(AWS_REGION="ap-southeast-2", AWS_DEFAULT_REGION="ap-southeast-2"))
    moto.client("ecr", "eu-west-1").create_repository(repositoryName=REPOSITORY)

    answers = resolved_answers(**STRICT, aws_region="eu-west-1")
    assert check_against_aws(answers, make_client()) == []


EXPIRED = "aws_checks: your AWS credentials have expired ({code}: "
INVALID = "aws_checks: AWS does not accept your credentials for sts:GetCallerIdentity"
DENIED = "aws_checks: access denied to sts:GetCallerIdentity in us-east-1"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("ExpiredToken", EXPIRED, id="ExpiredToken"),
        pytest.param("RequestExpired", EXPIRED, id="RequestExpired"),
        pytest.param("InvalidClientTokenId", INVALID, id="InvalidClientTokenId"),
        pytest.param("SignatureDoesNotMatch", INVALID, id="SignatureDoesNotMatch"),
        pytest.param("AccessDenied", DENIED, id="AccessDenied"),
    ],
)
def test_each_client_explains_an_aws_error_by_what_the_user_can_do(
    make_client, failing_sts, use_env, tmp_path, code, expected
):
    url = failing_sts(code, "some text from AWS")
    use_env(
        environment_without_aws(
            tmp_path / "aws",
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
            AWS_SECRET_ACCESS_KEY="secret",
        )
    )

    [error] = check_against_aws(resolved_answers(**STRICT), make_client())

    assert error.startswith(expected.format(code=code))
    assert error.endswith("or answer aws_checks=skip to generate without AWS checks")


def test_each_client_uses_the_profile_named_by_aws_profile(make_client, moto, use_env, tmp_path):
    env = environment_without_aws(tmp_path / "aws", AWS_ENDPOINT_URL=moto.url, AWS_PROFILE="dev")
    (tmp_path / "aws" / "credentials").write_text(
        "[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = devsecret\n"
    )
    use_env(env)

    assert caller_account(make_client(), "us-east-1") == MOTO_ACCOUNT_ID
    [request] = moto.recorded_requests()
    assert "Credential=DEVKEY/" in request["headers"]["Authorization"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "aws_checks: no usable AWS credentials for sts:GetCallerIdentity in us-east-1"),
        (
            {"AWS_PROFILE": "no-such-profile"},
            "aws_checks: no usable AWS credentials for sts:GetCallerIdentity in us-east-1 "
            "(The config profile (no-such-profile) could not be found)",
        ),
    ],
    ids=["nothing-set", "unknown-profile"],
)
def test_each_client_explains_missing_credentials(
    make_client, moto, use_env, tmp_path, extra, expected
):
    use_env(environment_without_aws(tmp_path / "aws", AWS_ENDPOINT_URL=moto.url, **extra))

    [error] = check_against_aws(resolved_answers(**STRICT), make_client())

    assert error.startswith(expected)
    assert moto.recorded_requests() == []


def test_each_client_explains_an_unreachable_endpoint(make_client, use_env, tmp_path):
    use_env(
        environment_without_aws(
            tmp_path / "aws",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
            AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
            AWS_SECRET_ACCESS_KEY="secret",
        )
    )

    [error] = check_against_aws(resolved_answers(**STRICT), make_client())

    assert error.startswith(
        "aws_checks: could not reach AWS for sts:GetCallerIdentity in us-east-1"
    )


# Without boto3 in cookiecutter's Python: a real bake, with boto3 made unimportable.


def test_without_boto3_the_hook_uses_the_aws_cli_and_creates_the_repository(
    bake, moto, hidden_boto3
):
    env = moto.env(PYTHONPATH=hidden_boto3, PATH=f"{VENV_BIN}:/usr/bin:/bin")

    result = bake({**STRICT, "create_ecr_repository": "yes"}, env=env)

    assert result.returncode == 0, result.output
    requests = moto.recorded_requests()
    assert operations(requests) == [*PRE_PROMPT, *CHECKS, "CreateRepository"]
    assert all(r["headers"]["User-Agent"].startswith("aws-cli/") for r in requests)
    assert repository_settings(moto)["imageTagMutability"] == "IMMUTABLE"


def test_without_boto3_or_the_aws_cli_the_error_says_how_to_install_one(
    bake, moto, hidden_boto3, tmp_path
):
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    assert shutil.which("aws", path=str(empty_bin)) is None

    result = bake(STRICT, env=moto.env(PYTHONPATH=hidden_boto3, PATH=str(empty_bin)))

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith("ERROR: aws_checks: neither boto3 nor the aws CLI is available")
    assert "pipx inject cookiecutter boto3" in error and "uvx --with boto3 cookiecutter" in error
    assert "aws_checks=skip" in error
    assert moto.recorded_requests() == []
    assert result.leftovers == []


def test_each_client_gives_up_on_a_silent_endpoint_within_its_time_budget(
    make_client, use_env, tmp_path
):
    budget = 3  # the CLI also gets its start-up time on top of the network timeouts
    limit = budget + CLI_START_S + SLOW_MACHINE_MARGIN_S
    with silent_endpoint(hang_up_after=limit) as url:
        use_env(
            environment_without_aws(
                tmp_path / "aws",
                AWS_ENDPOINT_URL=url,
                AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
                AWS_SECRET_ACCESS_KEY="secret",
            )
        )
        started = time.monotonic()
        [error] = check_against_aws(resolved_answers(**STRICT), make_client(seconds=budget))
        seconds = time.monotonic() - started

    assert seconds < limit, f"{seconds:.0f} s on a silent endpoint with a {budget} s budget"
    assert error.startswith(
        "aws_checks: could not reach AWS for sts:GetCallerIdentity in us-east-1 "
        "(Read timeout on endpoint URL"
    )
