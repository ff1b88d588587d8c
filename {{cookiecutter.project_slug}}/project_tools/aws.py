"""Plumbing: one AWS session and one error policy for every command of this project. Its
clients connect within 5 s, wait 60 s at most for an answer and make 3 attempts (botocore's
standard mode); explain() says in one line what went wrong and what to do."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS = 5, 60, 3
CLI_TIMEOUTS = [f"--cli-connect-timeout={CONNECT_TIMEOUT_SECONDS}", "--cli-read-timeout=60"]
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


class Refused(Exception):
    """A check of ours failed before AWS was asked to do anything; the message says why."""


def session(region: str | None = None):
    import boto3  # here: commands that need no AWS start faster
    import botocore.config
    import botocore.session

    # Else sagemaker-core gives its clients 10 retries of its own (24 s, not 0.4 s, to report
    # a refused endpoint); with the mode set outside code, the client config below wins.
    os.environ.setdefault("AWS_RETRY_MODE", "standard")
    core = botocore.session.get_session()
    retries = {"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}
    timeouts = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": READ_TIMEOUT_SECONDS}
    core.set_default_client_config(botocore.config.Config(retries=retries, **timeouts))
    return boto3.Session(botocore_session=core, region_name=region)


def error_code(error: Exception) -> str:
    """AWS's error code, or the error's class name when AWS did not answer."""
    answer = (getattr(error, "response", None) or {}).get("Error", {})
    return answer.get("Code") or type(error).__name__


def explain(error: Exception) -> str:
    """One line: what went wrong with AWS, and what to do about it."""
    if isinstance(error, Refused):
        return str(error)
    why = str(error).split("\n\n")[0]  # not the SDK's remedies in Python after a blank line
    code, message = error_code(error), " ".join(why.split())  # HTML pages too
    if len(message) > 300:  # cut between words
        message = message[:300].rsplit(" ", 1)[0] + " ..."
    advice = next((text for codes, text in ADVICE if code in codes), "{code}: {message}")
    return advice.format(code=code, message=message)


def create_repository_command(repository: str, region: str) -> str:
    """As the template's hook creates it: scan on push, immutable tags (a tag is a commit)."""
    scan, immutable = "--image-scanning-configuration", "--image-tag-mutability"
    command = ["aws", "ecr", "create-repository", "--repository-name", repository]
    return shlex.join(
        [*command, "--region", region, scan, "scanOnPush=true", immutable, "IMMUTABLE"]
    )


def require_image(boto_session, image: str) -> None:
    """Raise unless the credentials work and the tag is in ECR: before any upload or submit."""
    boto_session.client("sts").get_caller_identity()
    repository, _, tag = image.split("/", 1)[-1].rpartition(":")  # <registry>/<repository>:<tag>
    ecr = boto_session.client("ecr")
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        raise Refused(f"the image {image} is not in ECR; push it first: make push") from None


def s3_channels(boto_session, names, args) -> list:
    """The channels on S3: DATA_DIR synced to S3_OUTPUT_PATH/data (stale files deleted: a job
    would read them too), or DATA_S3's; a channel with no objects is left out."""
    from sagemaker.core.training.configs import InputData, S3DataSource

    data_s3, aws_cli = args.data_s3 or f"{args.s3_output_path}/data", shutil.which("aws")
    sync = [aws_cli or str(Path(sys.executable).parent / "aws"), "s3", "sync", "--delete"]
    for name in [] if args.data_s3 else names:
        folder, uri = args.data_dir / name, f"{data_s3}/{name}/"
        command = [*sync, "--region", args.aws_region, *CLI_TIMEOUTS, str(folder), uri]
        if folder.is_dir() and subprocess.run(command).returncode != 0:
            raise Refused(f"uploading {folder} to {uri} failed (the aws CLI said why above)")
    s3, channels = boto_session.client("s3"), []
    for name in names:
        bucket, _, prefix = f"{data_s3}/{name}/".removeprefix("s3://").partition("/")
        if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            source = S3DataSource(s3_data_type="S3Prefix", s3_uri=f"s3://{bucket}/{prefix}",
                                  s3_data_distribution_type=args.data_distribution)  # fmt: skip
            channels.append(InputData(channel_name=name, data_source=source))
    return channels


def api_maximum(shape: str, service: str = "sagemaker") -> int:
    """A limit as botocore's API model states it, so checks follow the service, not a copy."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return model.shape_for(shape).metadata["max"]
