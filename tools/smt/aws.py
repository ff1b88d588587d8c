"""One AWS session and one error policy for every command: its clients connect within 5 s,
wait 60 s at most for an answer and make 3 attempts (botocore's standard mode: the only
retries); explain() says in one line what went wrong and what to do. Also the one progress
line, the one name generator and the one tagging policy of everything the tools create."""

import functools
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from smt.errors import Failure

CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS = 5, 60, 3
RUNNING = ("InProgress", "Stopping")  # a job or a tuning job that still runs, and bills
POLL_SECONDS = 5  # between two looks at a job or an endpoint
CLI_TIMEOUTS = [
    f"--cli-connect-timeout={CONNECT_TIMEOUT_SECONDS}",
    f"--cli-read-timeout={READ_TIMEOUT_SECONDS}",
]
DENIED = {"AccessDenied", "AccessDeniedException", "403"}
UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
               "ConnectionClosedError"}  # fmt: skip
ADVICE = [  # (AWS's error codes, or botocore's class names; what to say)
    ({"NoCredentialsError", "PartialCredentialsError"},
     "no AWS credentials found; run aws configure (or aws sso login) and retry"),
    ({"ProfileNotFound"}, "{message}; run aws configure --profile NAME, or unset AWS_PROFILE"),
    ({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "SSOError",
      "TokenRetrievalError", "UnauthorizedSSOTokenError"},
     "your AWS credentials have expired; refresh them (aws sso login) and retry"),
    ({"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"},
     "AWS does not accept your credentials ({code}); run aws configure with valid keys"),
    (UNREACHABLE, "AWS does not answer ({message}); check the network, the proxy and AWS_REGION"),
    (DENIED, "your credentials may not do this ({message}); ask for the permission"),
    ({"NoSuchBucket"}, "the S3 bucket does not exist ({message}); create it: aws s3 mb s3://BUCKET"),
    ({"RoleValidationError"},  # the SDK's check of the role, unless SAGEMAKER_VALIDATE_ROLE=false
     "ROLE_ARN: {message}; fix the role (make doctor checks its trust) or set ROLE_ARN"),
]  # fmt: skip


def session(region: str | None = None):
    import boto3  # here: commands that need no AWS start faster
    import botocore.config
    import botocore.session

    # Else sagemaker-core gives its clients 10 retries of its own (24 s, not 0.4 s, to report
    # a refused endpoint); with the mode set outside code, the client config below wins.
    os.environ.setdefault("AWS_RETRY_MODE", "standard")
    core = botocore.session.get_session()
    # One loader for every session: it keeps the API models it read (SageMaker's: 0.3 s)
    core.register_component("data_loader", _loader())
    retries = {"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}
    timeouts = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": READ_TIMEOUT_SECONDS}
    core.set_default_client_config(botocore.config.Config(retries=retries, **timeouts))
    return boto3.Session(botocore_session=core, region_name=region)


@functools.cache
def _loader():
    import botocore.session

    return botocore.session.get_session().get_component("data_loader")


def error_code(error: Exception) -> str:
    """AWS's error code, or the error's class name when AWS did not answer."""
    answer = (getattr(error, "response", None) or {}).get("Error", {})
    return answer.get("Code") or type(error).__name__


def is_missing(error: Exception) -> bool:
    """AWS's word that the job, tuning job or endpoint named does not exist (SageMaker says it
    in a ValidationException, moto in ResourceNotFound)."""
    words = re.search(r"could not find|does not exist|not found", str(error), re.I)
    return error_code(error) in ("ValidationException", "ResourceNotFound") and bool(words)


def is_aws_error(error: Exception) -> bool:
    """An answer of AWS's, or botocore's word that there was none: explain() says it."""
    from botocore.exceptions import BotoCoreError, ClientError

    known = {code for codes, _ in ADVICE for code in codes}
    return isinstance(error, (BotoCoreError, ClientError)) or type(error).__name__ in known


def explain(error: Exception) -> str:
    """One line: what went wrong with AWS, and what to do about it."""
    if isinstance(error, Failure):
        return str(error)
    why = str(error).split("\n\n")[0]  # not the SDK's remedies in Python after a blank line
    code, message = error_code(error), " ".join(why.split())  # HTML pages too
    if len(message) > 300:  # cut between words
        message = message[:300].rsplit(" ", 1)[0] + " ..."
    advice = next((text for codes, text in ADVICE if code in codes), "{code}: {message}")
    return advice.format(code=code, message=message)


def require_image(boto_session, image: str) -> str:
    """The image's digest; a Failure unless the credentials work and the tag is in ECR:
    before any upload or submit."""
    boto_session.client("sts").get_caller_identity()
    repository, _, tag = image.split("/", 1)[-1].rpartition(":")  # <registry>/<repository>:<tag>
    if not (details := image_details(boto_session.client("ecr"), repository, tag)):
        raise Failure(f"the image {image} is not in ECR; push it first: make push")
    return details["imageDigest"]


def image_details(ecr, repository: str, tag: str) -> dict | None:
    """ECR's details of repository:tag (its digest, its manifest's media type); None when the
    repository or the tag is not there."""
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        return None
    return found["imageDetails"][0]


def repository_exists(ecr, name: str) -> bool:
    try:
        ecr.describe_repositories(repositoryNames=[name])
    except ecr.exceptions.RepositoryNotFoundException:
        return False
    return True


def split_s3(uri: str) -> tuple[str, str]:
    """s3://bucket/key/... -> (bucket, "key/...")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def cli(*args: str, region: str, doing: str, capture: bool = False) -> str:
    """The aws CLI (yours, else the virtualenv's) with this module's timeouts; a failure is a
    Failure naming what it was doing, and why (the CLI's last words)."""
    aws = shutil.which("aws") or str(Path(sys.executable).parent / "aws")
    done = subprocess.run([aws, *args, "--region", region, *CLI_TIMEOUTS], text=True,
                          capture_output=capture)  # fmt: skip
    return done_or_failure(done, doing, "the aws CLI", capture)


def done_or_failure(done, doing: str, tool: str, capture: bool) -> str:
    """A finished command's output; when it failed, a Failure naming what it was doing and
    why: its last words, or, when they went to the terminal, where to read them."""
    if done.returncode != 0:
        why = " ".join(done.stderr.split())[-300:] if capture else f"{tool} said why above"
        raise Failure(f"{doing} failed ({why})")
    return done.stdout or ""


def wait(client, waiter: str, timeout: float, show=None, **params) -> None:
    """boto3's waiter, a look every POLL_SECONDS for `timeout` s in all (its own delay is 30 s),
    show(answer) after each look. AWS's error in its last answer is raised as that error, to
    be said as any other; a WaiterError is a status it never reached."""
    import botocore.exceptions

    waiting = client.get_waiter(waiter)
    operation = waiting.config.operation  # DescribeEndpoint, DescribeStacks ...
    if show:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"after-call.{service}.{operation}",
                                    lambda parsed, **_: show(parsed))  # fmt: skip
    config = {"Delay": POLL_SECONDS, "MaxAttempts": math.ceil(timeout / POLL_SECONDS) + 1}
    try:
        waiting.wait(WaiterConfig=config, **params)
    except botocore.exceptions.WaiterError as error:
        if "Error" in error.last_response:
            raise botocore.exceptions.ClientError(error.last_response, operation) from None
        raise


def api_maximum(shape: str, service: str = "sagemaker") -> int:
    """A limit as botocore's API model states it, so checks follow the service, not a copy."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return model.shape_for(shape).metadata["max"]


class Progress:
    """One line, redrawn in place on a terminal; elsewhere a line each time it changes."""

    def __init__(self, stream=None):
        self.stream, self.shown = stream or sys.stdout, None
        self.tty = self.stream.isatty()

    def show(self, line: str) -> None:
        if line != self.shown:
            end = "" if self.tty else "\n"
            print(f"\r{line}\x1b[K" if self.tty else line, end=end, file=self.stream, flush=True)
            self.shown = line

    def end(self) -> None:
        if self.tty and self.shown is not None:
            print(file=self.stream, flush=True)


def unique_name(base: str, max_length: int = 63, stamp: bool = True) -> str:
    """A name SageMaker accepts (letters, digits, hyphens) that no other job or endpoint of
    this project has: base-<6 random hex>-<timestamp>, the base cut to fit. stamp=False for
    the SDK's base_job_name, to which the SDK adds its own timestamp (to seconds only)."""
    suffix = f"-{secrets.token_hex(3)}" + (f"-{time.strftime('%y%m%d%H%M%S')}" * stamp)
    cleaned = "".join(c if c.isalnum() else "-" for c in base).strip("-") or "job"
    return cleaned[: max_length - len(suffix)].rstrip("-") + suffix


def tags(settings, **extra: str) -> list[dict]:
    """The tags of everything the tools create: ProjectName (how make status and deploy
    find this project's resources), the git commit and dirty flag, and `extra`."""
    from smt.project import git_state

    state = git_state()
    values = {"ProjectName": settings.project_name, "GitCommit": state["commit"],
              "GitDirty": state["dirty"], **extra}  # fmt: skip
    return [{"Key": key, "Value": str(value)} for key, value in values.items()]
