"""Plumbing: one AWS session and one error policy for every command of this project.

Every client from session() connects within 5 s, waits at most 60 s for an answer and makes
3 attempts with backoff (botocore's standard mode also retries throttling), so a dead
network or a wrong region fails in seconds; explain() says what to do, in one line.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS = 5, 60, 3
CLI_TIMEOUTS = [f"--cli-connect-timeout={CONNECT_TIMEOUT_SECONDS}", "--cli-read-timeout=60"]
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "SSOError",
           "TokenRetrievalError", "UnauthorizedSSOTokenError"}  # fmt: skip
INVALID = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
DENIED = {"AccessDenied", "AccessDeniedException", "403"}
UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
               "ConnectionClosedError"}  # fmt: skip
ECR_IMAGE = re.compile(r"(?:[^/]+/)?(?P<repository>[^:@]+):(?P<tag>[^:/@]+)")  # host/repo:tag


class Refused(Exception):
    """A check of ours failed before AWS was asked to do anything; the message says why."""


def session(region: str | None = None):
    """A boto3 session whose clients all have the timeouts and retries above."""
    import boto3  # here: commands that need no AWS start faster
    import botocore.config
    import botocore.session

    # sagemaker-core gives the clients it makes from this session 10 retries of its own
    # unless the retry mode is set outside code (measured: 24 s instead of 0.4 s to report
    # a refused endpoint); set so, the client config below wins.
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
    code, message = error_code(error), " ".join(str(error).split())[:300]  # HTML pages too
    if isinstance(error, Refused):
        return str(error)
    if code in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials found; run aws configure (or aws sso login) and retry"
    if code == "ProfileNotFound":
        return f"{message}; run aws configure --profile NAME, or unset AWS_PROFILE"
    if code in EXPIRED:
        return "your AWS credentials have expired; refresh them (aws sso login) and retry"
    if code in INVALID:
        return f"AWS does not accept your credentials ({code}); run aws configure with valid keys"
    if code in UNREACHABLE:
        return f"AWS does not answer ({message}); check the network, the proxy and AWS_REGION"
    if code in DENIED:
        return f"your credentials may not do this ({message}); ask for the permission"
    if code == "NoSuchBucket":
        return f"the S3 bucket does not exist ({message}); create it: aws s3 mb s3://BUCKET"
    return f"{code}: {message}"


def create_repository_command(repository: str, region: str) -> str:
    """As the template's hook creates it: scan on push, and immutable tags (a tag is a
    commit: it must never change)."""
    scan, immutable = "--image-scanning-configuration", "--image-tag-mutability"
    command = ["aws", "ecr", "create-repository", "--repository-name", repository]
    return shlex.join(
        [*command, "--region", region, scan, "scanOnPush=true", immutable, "IMMUTABLE"]
    )


def require_image(boto_session, image: str) -> None:
    """Raise unless the credentials work and the image's tag is in ECR: asked before any
    upload or submit, so a job that cannot start costs nothing."""
    boto_session.client("sts").get_caller_identity()
    parsed, ecr = ECR_IMAGE.fullmatch(image), boto_session.client("ecr")
    if parsed is None:
        raise Refused(f"the image {image} is not <registry>/<repository>:<tag>")
    try:
        ids = [{"imageTag": parsed["tag"]}]
        ecr.describe_images(repositoryName=parsed["repository"], imageIds=ids)
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        raise Refused(f"the image {image} is not in ECR; push it first: make push") from None


def s3_channels(boto_session, names, args) -> list:
    """The job's channels on S3: the folders of DATA_DIR synced to S3_OUTPUT_PATH/data/
    (aws s3 sync uploads what changed and deletes what is gone: a job would read a stale
    file too), or the prefixes under DATA_S3; a channel with no objects is left out."""
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
    """A limit as the API model botocore ships states it (the longest warm pool: 21600 s
    in botocore 1.44), so the check follows the service instead of a copy of it."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return model.shape_for(shape).metadata["max"]
