"""Check, before a job, what would make it fail: one line per check, OK / WARN / FAIL.

Every FAIL names the command that fixes it; the exit status is 1 when anything FAILs.
Docker and the AWS side are checked independently, so a laptop without credentials still
learns whether train-local will work. Every Docker and AWS call has a short timeout.
"""

import argparse
import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from aws_clients import (
    aws_error,
    clients,
)  # the scripts' folder: boto3 with timeouts, imported lazily

DOCKER_TIMEOUT_SECONDS = 20
# Per AWS call (connect, then read), with one retry: a dead network fails in seconds.
AWS_TIMEOUT_SECONDS = 4
# A cold build holds the builder stage (TensorFlow wheels, compilers), the runtime stage
# and pip's downloads at once: about 7 GB for the CPU image, more for the GPU one.
DEFAULT_MIN_FREE_GB = 8
# SageMaker training instances are x86_64: an arm64 image fails with "exec format error".
SAGEMAKER_PLATFORM = "linux/amd64"
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
# What SageMaker cannot run: a manifest list or OCI index (what BuildKit makes when it adds
# provenance attestations) instead of a single image manifest.
INDEX_MEDIA_TYPES = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
}


@dataclass
class Check:
    status: str  # OK, WARN or FAIL
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{self.status:<5} {self.name:<15} {self.detail}{fix}"


def ok(name: str, detail: str) -> Check:
    return Check("OK", name, detail)


def warn(name: str, detail: str) -> Check:
    return Check("WARN", name, detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check("FAIL", name, detail, fix)


def not_checked(names: list[str], reason: str) -> list[Check]:
    return [warn(name, f"not checked: {reason}") for name in names]


# ---------------------------------------------------------------- Docker and this machine


def run(command: list[str]) -> subprocess.CompletedProcess | None:
    """The command's result, or None when it is not installed or does not finish in time."""
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=DOCKER_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def docker_daemon() -> tuple[Check, dict | None]:
    if shutil.which("docker") is None:
        return fail(
            "docker", "the docker CLI is not installed", "https://docs.docker.com/get-docker/"
        ), None
    info = run(["docker", "info", "--format", "{{json .}}"])
    if info is None or info.returncode != 0:
        why = (
            "did not answer in time"
            if info is None
            else (info.stderr.strip().splitlines() or ["?"])[-1]
        )
        return fail(
            "docker",
            f"the Docker daemon does not answer ({why})",
            "start Docker Desktop, or: sudo systemctl start docker",
        ), None
    details = json.loads(info.stdout)
    version = details.get("ServerVersion", "?")
    return ok(
        "docker", f"daemon {version} answers ({details.get('OperatingSystem', '?')})"
    ), details


def docker_compose() -> Check:
    """The same choice the SDK's local mode makes (sagemaker.train.local.local_container):
    `docker compose` when its major version is 2 or more, else a `docker-compose` on PATH."""
    plugin = run(["docker", "compose", "version"])
    if plugin is not None and plugin.returncode == 0:
        match = re.search(r"version\s+v?(\d+)(\S*)", plugin.stdout.strip())
        if match and int(match.group(1)) >= 2:
            return ok("compose", f"docker compose v{match.group(1)}{match.group(2)} (plugin)")
    if shutil.which("docker-compose"):
        standalone = run(["docker-compose", "version", "--short"])
        version = standalone.stdout.strip() if standalone and standalone.returncode == 0 else "?"
        return ok("compose", f"docker-compose {version} (standalone)")
    return fail(
        "compose",
        "no Docker Compose: local mode runs its containers with it",
        "install the compose plugin (Debian/Ubuntu: sudo apt-get install docker-compose-plugin)",
    )


def builder() -> Check:
    """BuildKit through buildx, or the classic builder: `make build` asks `docker build` the
    same question (whether it knows --provenance)."""
    help_text = run(["docker", "build", "--help"])
    if help_text is not None and "--provenance" in help_text.stdout:
        return ok("builder", "BuildKit (buildx): make build adds --provenance=false for SageMaker")
    return ok(
        "builder", "classic builder (no buildx): single-platform manifests, as SageMaker needs"
    )


def architecture(details: dict, platform: str) -> Check:
    if platform != SAGEMAKER_PLATFORM:
        return fail(
            "architecture",
            f"PLATFORM={platform}, but SageMaker training instances run {SAGEMAKER_PLATFORM}",
            f"make build PLATFORM={SAGEMAKER_PLATFORM}",
        )
    machine = details.get("Architecture", "?")
    if machine in ("x86_64", "amd64"):
        return ok("architecture", f"{machine}: images are built for {platform} natively")
    return warn(
        "architecture",
        f"{machine}: make build targets {platform} under emulation (slower builds and local runs)",
    )


def free_disk(details: dict, min_free_gb: float) -> Check:
    """Free space where Docker keeps images. That folder may be root's only, or inside
    Docker Desktop's VM (not on this machine's disk at all): then this folder's disk."""
    try:
        free_gb = shutil.disk_usage(details.get("DockerRootDir") or "").free / 1e9
        where = details["DockerRootDir"]
    except (OSError, KeyError):
        free_gb = shutil.disk_usage(".").free / 1e9
        where = "this folder (Docker's own folder is not visible from here)"
    if free_gb < min_free_gb:
        return fail(
            "disk",
            f"{free_gb:.1f} GB free in {where}; a build needs about {min_free_gb:g} GB",
            "docker system prune (removes stopped containers, unused images and build cache)",
        )
    return ok("disk", f"{free_gb:.1f} GB free in {where} (a build needs about {min_free_gb:g} GB)")


def docker_checks(platform: str, min_free_gb: float) -> Iterator[Check]:
    daemon, details = docker_daemon()
    yield daemon
    if details is None:
        yield from not_checked(["compose", "builder", "architecture", "disk"], "no Docker")
        return
    yield docker_compose()
    yield builder()
    yield architecture(details, platform)
    yield free_disk(details, min_free_gb)


# ---------------------------------------------------------------- AWS


def error_code(error: Exception) -> str:
    """AWS's error code, or the error's class name when AWS did not answer."""
    return aws_error(error)[0] or type(error).__name__


def signed_in(region: str, account: str) -> tuple[Check, list | None]:
    """The credentials check, and the clients for the other checks when it passes."""
    from botocore import exceptions as aws

    try:
        # Inside the try: a wrong AWS_PROFILE fails when the session is made.
        sts, *others = clients(region, "sts", "ecr", "iam", "s3", timeout=AWS_TIMEOUT_SECONDS)
        caller = sts.get_caller_identity()
    except (aws.NoCredentialsError, aws.PartialCredentialsError):
        return fail(
            "credentials",
            "no AWS credentials found",
            "aws configure (or aws sso login --profile NAME and export AWS_PROFILE=NAME)",
        ), None
    except aws.ProfileNotFound as error:
        return fail(
            "credentials", str(error), "aws configure --profile NAME, or unset AWS_PROFILE"
        ), None
    except (aws.SSOError, aws.TokenRetrievalError) as error:
        return fail("credentials", f"the SSO session has expired ({error})", "aws sso login"), None
    except aws.ClientError as error:
        return fail(
            "credentials",
            f"AWS refused the credentials ({error_code(error)})",
            "aws sso login (expired session), or aws configure (new keys)",
        ), None
    except aws.BotoCoreError as error:  # the endpoint does not answer: said once, here
        return fail(
            "credentials",
            f"AWS does not answer in {region}: {error}",
            "check the network, the proxy settings or AWS_REGION",
        ), None
    if caller["Account"] != account:
        return fail(
            "credentials",
            f"the credentials are for account {caller['Account']}, the project's is {account}",
            f"export AWS_PROFILE=<your profile for account {account}>",
        ), None
    return ok("credentials", f"{caller['Arn']} in account {account}"), others


ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "403"}


def check_failed(name: str, error: Exception, permission: str) -> Check:
    """A check that raised: a WARN when the caller may not look (the job runs with the
    role's permissions, so it may still work), else a FAIL in one line."""
    if error_code(error) in ACCESS_DENIED:
        return warn(name, f"not checked: your credentials lack {permission}")
    return fail(name, f"{type(error).__name__}: {error}", "retry, or ask the aws CLI")


def ecr_repository(ecr, repository: str, region: str) -> Check:
    try:
        ecr.describe_repositories(repositoryNames=[repository])
    except ecr.exceptions.RepositoryNotFoundException:
        return fail(
            "ecr-repository",
            f"{repository} does not exist in {region}",
            f"aws ecr create-repository --repository-name {repository} --region {region}",
        )
    return ok("ecr-repository", f"{repository} exists in {region}")


def ecr_image(ecr, repository: str, tag: str) -> Check:
    try:
        images = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        return fail(
            "ecr-image", f"{repository}:{tag} is not in ECR (train-remote runs it)", "make push"
        )
    media_type = images["imageDetails"][0].get("imageManifestMediaType", "")
    if media_type in INDEX_MEDIA_TYPES:
        return fail(
            "ecr-image",
            f"{repository}:{tag} is a multi-platform index ({media_type}); "
            "SageMaker needs a single image",
            "make build push (builds with --provenance=false on BuildKit)",
        )
    return ok("ecr-image", f"{repository}:{tag} is in ECR")


ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role(?P<path>/(?:[^/]+/)*)(?P<name>[^/]+)"
)


def role_trust(iam, role_arn: str, account: str) -> Check:
    parsed = ROLE_ARN.fullmatch(role_arn)
    if parsed is None:
        return fail(
            "role",
            f"ROLE_ARN {role_arn} is not an IAM role ARN",
            "set ROLE_ARN in the Makefile to arn:aws:iam::<account>:role/<name>",
        )
    name, path, partition = parsed["name"], parsed["path"], parsed["partition"]
    if parsed["account"] != account:
        return warn(
            "role", f"{role_arn} is in account {parsed['account']}: not checked from {account}"
        )
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return fail(
            "role",
            f"{name} does not exist in account {account}",
            f"aws iam create-role --role-name {name} --path {path} "
            f"--assume-role-policy-document {shlex.quote(compact(trust_policy([])))} "
            f"&& aws iam attach-role-policy --role-name {name} "
            f"--policy-arn arn:{partition}:iam::aws:policy/AmazonSageMakerFullAccess",
        )
    if role["Arn"] != role_arn:  # same name, another path: the job would name no role
        return fail(
            "role",
            f"ROLE_ARN is {role_arn}, but the role is {role['Arn']}",
            f"set ROLE_ARN in the Makefile to {role['Arn']}",
        )
    document = role["AssumeRolePolicyDocument"]
    if isinstance(document, str):  # botocore decodes it; a raw string is still JSON text
        document = json.loads(urllib.parse.unquote(document))
    statements = as_list(document.get("Statement", []))
    if not any(trusts_sagemaker(statement) for statement in statements):
        # The fix keeps the role's other trusted principals: the whole policy is replaced.
        return fail(
            "role",
            f"{name} does not trust {SAGEMAKER_PRINCIPAL}, so jobs cannot assume it",
            f"aws iam update-assume-role-policy --role-name {name} "
            f"--policy-document {shlex.quote(compact(trust_policy(statements)))}",
        )
    return ok("role", f"{name} exists and trusts {SAGEMAKER_PRINCIPAL}")


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def compact(document: dict) -> str:
    """JSON on one line, for a command to paste."""
    return json.dumps(document, separators=(",", ":"))


def trust_policy(statements: list[dict]) -> dict:
    """statements plus the one that lets SageMaker assume the role."""
    sagemaker = {
        "Effect": "Allow",
        "Principal": {"Service": SAGEMAKER_PRINCIPAL},
        "Action": "sts:AssumeRole",
    }
    return {"Version": "2012-10-17", "Statement": [*statements, sagemaker]}


def trusts_sagemaker(statement: dict) -> bool:
    principal = statement.get("Principal", {})
    if principal == "*":  # anyone, SageMaker included
        services = [SAGEMAKER_PRINCIPAL]
    else:
        services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    actions = as_list(statement.get("Action", []))
    return (
        statement.get("Effect") == "Allow"
        and SAGEMAKER_PRINCIPAL in services
        and any(action in ("sts:AssumeRole", "sts:*", "*") for action in actions)
    )


def s3_bucket(s3, s3_output_path: str, region: str, account: str) -> Check:
    bucket = s3_output_path.removeprefix("s3://").split("/", 1)[0]
    try:
        # ExpectedBucketOwner: a bucket of another account that lets you list it fails too.
        answer = s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except Exception as error:
        code = error_code(error)
        if code in ("404", "NoSuchBucket"):
            return fail(
                "s3-output",
                f"bucket {bucket} does not exist",
                f"aws s3 mb s3://{bucket} --region {region}",
            )
        return fail(
            "s3-output",
            f"bucket {bucket} is not reachable ({code}): another account's, or your "
            "credentials lack s3:ListBucket (the launcher uploads the data with them)",
            "set S3_OUTPUT_PATH in the Makefile to s3://<a bucket of yours>/<prefix>",
        )
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    bucket_region = answer.get("BucketRegion") or headers.get("x-amz-bucket-region", region)
    if bucket_region != region:
        return fail(
            "s3-output",
            f"bucket {bucket} is in {bucket_region}; SageMaker needs one in {region}",
            f"aws s3 mb s3://{bucket}-{region} --region {region} and use it in S3_OUTPUT_PATH",
        )
    return ok("s3-output", f"bucket {bucket} is reachable in {region}")


AWS_CHECKS = ["ecr-repository", "ecr-image", "role", "s3-output"]


def aws_checks(args) -> Iterator[Check]:
    try:
        import boto3  # noqa: F401
    except ImportError:
        yield fail("credentials", "boto3 is not installed", "make venv")
        yield from not_checked(AWS_CHECKS, "no boto3")
        return
    identity, others = signed_in(args.region, args.account)
    yield identity
    if others is None:
        does_not_answer = identity.detail.startswith("AWS does not answer")
        reason = "AWS does not answer" if does_not_answer else "no usable credentials"
        yield from not_checked(AWS_CHECKS, reason)
        return
    ecr, iam, s3 = others
    for name, permission, check in [
        (
            "ecr-repository",
            "ecr:DescribeRepositories",
            lambda: ecr_repository(ecr, args.repository, args.region),
        ),
        (
            "ecr-image",
            "ecr:DescribeImages",
            lambda: ecr_image(ecr, args.repository, args.image_tag),
        ),
        ("role", "iam:GetRole", lambda: role_trust(iam, args.role, args.account)),
        (
            "s3-output",
            "s3:ListBucket",
            lambda: s3_bucket(s3, args.s3_output_path, args.region, args.account),
        ),
    ]:
        try:
            yield check()
        except Exception as error:  # one line, never a traceback
            yield check_failed(name, error, permission)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--role", required=True, help="the SageMaker execution role's ARN")
    parser.add_argument("--repository", required=True, help="the ECR repository")
    parser.add_argument("--image-tag", required=True, help="the tag train-remote would run")
    parser.add_argument("--s3-output-path", required=True)
    parser.add_argument("--platform", default=SAGEMAKER_PLATFORM, help="what make build targets")
    parser.add_argument("--min-free-gb", type=float, default=DEFAULT_MIN_FREE_GB)
    args = parser.parse_args(argv)

    checks = []
    for check in itertools.chain(docker_checks(args.platform, args.min_free_gb), aws_checks(args)):
        print(check.line(), flush=True)  # as it comes: the AWS checks may take seconds
        checks.append(check)
    counts = {status: sum(c.status == status for c in checks) for status in ("OK", "WARN", "FAIL")}
    print(f"doctor: {counts['FAIL']} FAIL, {counts['WARN']} WARN, {counts['OK']} OK")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
