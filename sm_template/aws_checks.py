"""Checks of the answers against AWS itself (aws_checks=strict).

The credentials must belong to the answered account. A missing ECR repository is created
with create_ecr_repository=yes; else the project's `make bootstrap` makes it (a note says
so, not an error). The hook runs with the Python that runs cookiecutter, which may lack
boto3, so the aws CLI is the fallback.
Both honour AWS_PROFILE and AWS_ENDPOINT_URL by themselves; the region is always passed
explicitly because the answered aws_region, not AWS_REGION, is the one to check.

Every call has short timeouts and all calls share one time budget, so an unreachable
endpoint fails in seconds instead of hanging the generator.
"""

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

from sm_template.messages import note

TIME_BUDGET_S = 10.0
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
# The aws CLI needs about a second to start, on top of the network timeouts of each call.
CLI_START_S = 1.5

SKIP_HINT = "or answer aws_checks=skip to generate without AWS checks"
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
INVALID_CODES = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
DENIED_CODES = {"AccessDenied", "AccessDeniedException"}
REPOSITORY_NOT_FOUND = "RepositoryNotFoundException"

# What the aws CLI prints when botocore fails before AWS answers (no error code to read).
CLI_MESSAGE_KINDS = (
    ("Unable to locate credentials", "no_credentials"),
    ("Partial credentials found", "no_credentials"),
    ("could not be found", "no_credentials"),  # The config profile (NAME) could not be found
    ("Error when retrieving token", "expired"),
    ("Could not connect to the endpoint URL", "unreachable"),
    ("Connect timeout on endpoint URL", "unreachable"),
    ("Read timeout on endpoint URL", "unreachable"),
    ("Connection was closed", "unreachable"),
    ("no answer within", "unreachable"),  # our own, when the CLI outlives its timeout
)


class AwsCallFailed(Exception):
    """An AWS call failed. `kind` is what the user can act on: no_credentials, expired,
    invalid, denied, unreachable or other; `code` is AWS's error code when there is one."""

    def __init__(self, operation: str, kind: str, detail: str, code: str = "") -> None:
        super().__init__(detail)
        self.operation, self.kind, self.detail, self.code = operation, kind, detail, code


def _kind_of_error_code(code: str) -> str:
    if code in EXPIRED_CODES:
        return "expired"
    if code in INVALID_CODES:
        return "invalid"
    if code in DENIED_CODES:
        return "denied"
    return "other"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Deadline:
    """The time left for all AWS calls of one check, shared out as per-call timeouts."""

    def __init__(self, seconds: float = TIME_BUDGET_S) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def timeouts(self, operation: str) -> tuple[float, float]:
        """(connect, read) timeouts for the next call, together within the time left;
        fails once the budget is spent."""
        left = self._end - time.monotonic()
        if left < 1:
            raise AwsCallFailed(operation, "unreachable", f"no answer within {self.seconds:g} s")
        connect = min(CONNECT_TIMEOUT_S, left / 2)
        return connect, min(READ_TIMEOUT_S, left - connect)


def _words(operation: str, separator: str) -> str:
    """GetCallerIdentity -> get_caller_identity (boto3) or get-caller-identity (CLI)."""
    return re.sub(r"(?<!^)(?=[A-Z])", separator, operation).lower()


class Boto3Client:
    """AWS calls through boto3, mapping its exceptions to AwsCallFailed."""

    def __init__(self, boto3, deadline: Deadline) -> None:
        self._boto3 = boto3
        self._deadline = deadline
        self._session = None

    def call(self, service: str, operation: str, region: str, **params) -> dict:
        from botocore import exceptions as boto_errors
        from botocore.config import Config

        name = f"{service}:{operation}"
        connect, read = self._deadline.timeouts(name)
        config = Config(
            connect_timeout=connect, read_timeout=read, retries={"total_max_attempts": 1}
        )
        try:
            # Inside the try: a missing AWS_PROFILE surfaces when the session is first used.
            self._session = self._session or self._boto3.Session()
            client = self._session.client(service, region_name=region, config=config)
            method = getattr(client, _words(operation, "_"))
            return method(**params)
        except boto_errors.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            detail = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
            raise AwsCallFailed(name, _kind_of_error_code(code), detail, code) from None
        except (
            boto_errors.NoCredentialsError,
            boto_errors.PartialCredentialsError,
            boto_errors.ProfileNotFound,
        ) as error:
            raise AwsCallFailed(name, "no_credentials", str(error)) from None
        except (boto_errors.SSOError, boto_errors.TokenRetrievalError) as error:
            raise AwsCallFailed(name, "expired", str(error)) from None
        except (boto_errors.ConnectionError, boto_errors.HTTPClientError) as error:
            raise AwsCallFailed(name, "unreachable", str(error)) from None
        except boto_errors.BotoCoreError as error:
            raise AwsCallFailed(name, "other", str(error)) from None


@dataclass
class CliResult:
    """What one aws CLI run gave; returncode is None when it did not run or timed out."""

    returncode: int | None
    stdout: str
    stderr: str


def run_aws_cli(command: list[str], timeout: float) -> CliResult:
    """Run an aws CLI command and never raise: failures come back in the result."""
    # No pager (CLI v2 would open one) and no retries beyond the one call the budget allows.
    env = {**os.environ, "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1"}
    try:
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return CliResult(None, "", f"the aws CLI gave no answer within {timeout:g} s")
    except OSError as error:
        return CliResult(None, "", f"could not run {command[0]}: {error}")
    return CliResult(done.returncode, done.stdout, done.stderr)


class CliClient:
    """AWS calls through the aws CLI, reading its JSON output and its error messages."""

    def __init__(self, aws: str, deadline: Deadline) -> None:
        self._aws = aws
        self._deadline = deadline

    def call(self, service: str, operation: str, region: str, **params) -> dict:
        name = f"{service}:{operation}"
        connect, read = self._deadline.timeouts(name)
        # --cli-input-json takes the same parameters as boto3, so both clients share callers.
        command = [
            self._aws, service, _words(operation, "-"),
            "--cli-input-json", json.dumps(params),
            "--region", region, "--output", "json",
            "--cli-connect-timeout", str(max(1, round(connect))),
            "--cli-read-timeout", str(max(1, round(read))),
        ]  # fmt: skip
        result = run_aws_cli(command, timeout=connect + read + CLI_START_S)
        if result.returncode == 0:
            try:
                return json.loads(result.stdout or "{}")
            except ValueError:
                raise AwsCallFailed(name, "other", "the aws CLI printed no JSON") from None
        raise self._failure(name, _one_line(result.stderr) or f"exit status {result.returncode}")

    @staticmethod
    def _failure(operation: str, message: str) -> AwsCallFailed:
        # "An error occurred (CODE) when calling the OPERATION operation: MESSAGE"
        coded = re.search(r"An error occurred \((?P<code>[^)]+)\)[^:]*: (?P<text>.*)", message)
        if coded:
            code = coded["code"]
            detail = f"{code}: {coded['text']}"
            return AwsCallFailed(operation, _kind_of_error_code(code), detail, code)
        kind = next((kind for text, kind in CLI_MESSAGE_KINDS if text in message), "other")
        return AwsCallFailed(operation, kind, message)


def find_client(deadline: Deadline) -> Boto3Client | CliClient | None:
    """boto3 if this Python has it, else the aws CLI if it is on PATH, else None."""
    try:
        import boto3
    except ImportError:
        aws = shutil.which("aws")
        return CliClient(aws, deadline) if aws else None
    return Boto3Client(boto3, deadline)


def caller_account(client: Boto3Client | CliClient, region: str) -> str:
    return client.call("sts", "GetCallerIdentity", region)["Account"]


def repository_exists(client: Boto3Client | CliClient, name: str, region: str) -> bool:
    try:
        client.call("ecr", "DescribeRepositories", region, repositoryNames=[name])
    except AwsCallFailed as failure:
        if failure.code == REPOSITORY_NOT_FOUND:
            return False
        raise
    return True


def create_repository(client: Boto3Client | CliClient, name: str, region: str) -> None:
    """Create the repository with scan on push and immutable tags, as make bootstrap does."""
    client.call(
        "ecr",
        "CreateRepository",
        region,
        repositoryName=name,
        imageScanningConfiguration={"scanOnPush": True},
        imageTagMutability="IMMUTABLE",
    )


# For each kind of failure: what went wrong and how to fix it ({what}: operation and region).
ADVICE = {
    "no_credentials": "no usable AWS credentials for {what} ({detail}); set them up with "
    "'aws configure' or 'aws sso login', or set AWS_PROFILE",
    "expired": "your AWS credentials have expired ({detail}); refresh them ('aws sso login' or "
    "new temporary keys) and run cookiecutter again",
    "invalid": "AWS does not accept your credentials for {what} ({detail}); check "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the AWS_PROFILE you use, and that "
    "{region} is enabled for the account",
    "denied": "access denied to {what} ({detail}); ask for that IAM permission or use "
    "credentials that have it",
    "unreachable": "could not reach AWS for {what} ({detail}); check the network, proxy "
    "settings and AWS_ENDPOINT_URL",
    "other": "{what} failed ({detail}); fix what AWS reports",
}


def explain(failure: AwsCallFailed, region: str) -> str:
    """One line that says what went wrong with AWS and how to fix it."""
    advice = ADVICE[failure.kind].format(
        what=f"{failure.operation} in {region}", detail=_one_line(failure.detail), region=region
    )
    return f"aws_checks: {advice}, {SKIP_HINT}"


NO_CLIENT = (
    "aws_checks: neither boto3 nor the aws CLI is available to check AWS; install boto3 beside "
    "cookiecutter ('pipx inject cookiecutter boto3', or run 'uvx --with boto3 cookiecutter ...') "
    "or install the AWS CLI (https://aws.amazon.com/cli/), " + SKIP_HINT
)


def check_against_aws(answers: dict, client: Boto3Client | CliClient | None = None) -> list[str]:
    """Check the account and the ECR repository; return one-line errors (empty if all is well).
    The client defaults to the one find_client picks."""
    account, region = answers["aws_account_id"], answers["aws_region"]
    repository = answers["ecr_repository"]
    client = client or find_client(Deadline())
    if client is None:
        return [NO_CLIENT]
    try:
        actual = caller_account(client, region)
        if actual != account:
            return [
                f"aws_account_id: you answered {account} but your AWS credentials are for "
                f"account {actual}; answer {actual}, or switch to credentials for {account} "
                f"(e.g. AWS_PROFILE), {SKIP_HINT}"
            ]
        if repository_exists(client, repository, region):
            return []
        if answers["create_ecr_repository"] != "yes":  # a hint: the project makes it later
            note(
                f"ECR repository {repository} does not exist in {region} of account {account} "
                "yet; in the project, make bootstrap creates it (with the role and the bucket)"
            )
            return []
        create_repository(client, repository, region)
        note(f"created ECR repository {repository} in {region} (scan on push, immutable tags)")
        return []
    except AwsCallFailed as failure:
        return [explain(failure, region)]
