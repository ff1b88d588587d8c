"""make doctor: one OK / WARN / FAIL line per check of what would make a job fail, each FAIL
with the command that fixes it; exit 1 on any FAIL. Docker is checked without AWS."""

import json
import os
import re
import shlex
import shutil

from botocore.exceptions import BotoCoreError, ClientError

from smt import aws, image, project

SAGEMAKER_PLATFORM = "linux/amd64"  # the training instances': an arm64 image does not start
SAGEMAKER = "sagemaker.amazonaws.com"
INDEX_MEDIA_TYPES = ("docker.distribution.manifest.list.v2+json", "oci.image.index.v1+json")
SKIPPED = "not checked: "
# a project without its role, bucket or repository yet: a hint, not a failure
BOOTSTRAP = "make bootstrap (one stack: the role, the bucket and the ECR repository)"
ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role(/(?:[^/]+/)*)([^/]+)")


def docker(settings) -> tuple[tuple, dict]:  # the check, and details for the other Docker checks
    if shutil.which("docker") is None:
        return ("FAIL", "docker is not installed", image.INSTALL_DOCKER), {}
    info = project.run("docker", "info", "--format", "{{json .}}")
    if info.returncode != 0:
        why = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return ("FAIL", *(image.unreachable(why) or (f"docker info failed ({why})", "retry"))), {}
    details = json.loads(info.stdout)
    where = details.get("OperatingSystem", "?")
    return ("OK", f"daemon {details.get('ServerVersion', '?')} answers ({where})"), details


def compose(settings, details: dict) -> tuple:
    """As the SDK's local mode chooses: `docker compose` v2 or later, else `docker-compose`."""
    said = project.run("docker", "compose", "version").stdout
    plugin = re.search(r"version\s+v?(\d+)(\S*)", said)
    if plugin and int(plugin[1]) >= 2:
        return "OK", f"docker compose v{plugin[1]}{plugin[2]} (plugin)"
    if shutil.which("docker-compose"):
        version = project.run("docker-compose", "version", "--short").stdout.strip() or "?"
        return "OK", f"docker-compose {version} (standalone)"
    fix = "install the compose plugin (Debian/Ubuntu: sudo apt-get install docker-compose-plugin)"
    return "FAIL", "no Docker Compose: local mode runs its containers with it", fix


def architecture(settings, details: dict) -> tuple:
    machine, platform = details.get("Architecture", "?"), settings.platform
    if platform != SAGEMAKER_PLATFORM:
        detail = f"PLATFORM={platform}, but SageMaker training instances run {SAGEMAKER_PLATFORM}"
        return "FAIL", detail, f"make build PLATFORM={SAGEMAKER_PLATFORM}"
    if machine in ("x86_64", "amd64"):
        return "OK", f"{machine}: images are built for {platform} natively"
    return "WARN", f"{machine}: make build emulates {platform} (slower builds and local runs)"


def disk(settings, details: dict) -> tuple:
    """Where Docker keeps images, or this folder's disk when that is root's or in a VM."""
    folder = details.get("DockerRootDir") or "?"
    visible = os.path.isdir(folder)
    free_gb = shutil.disk_usage(folder if visible else ".").free / 1e9
    where = folder if visible else "this folder (Docker's own folder is not visible from here)"
    needs = f"a build needs about {settings.min_free_gb:g} GB"
    if free_gb >= settings.min_free_gb:
        return "OK", f"{free_gb:.1f} GB free in {where} ({needs})"
    prune = "docker system prune (removes stopped containers, unused images and build cache)"
    return "FAIL", f"{free_gb:.1f} GB free in {where}; {needs}", prune


def builds(settings, details: dict) -> tuple:
    """Which of make build (a Docker engine here) and make build-remote (CodeBuild) work."""
    remote = (
        settings.codebuild_project
        and f"build-remote (CodeBuild project {settings.codebuild_project})"
    )
    if details and remote:
        return "OK", f"build and {remote} both work here"
    if details:
        return "OK", "build works here; build-remote needs its CodeBuild project: make bootstrap"
    if remote:
        return "OK", f"{remote} works here; build needs a Docker engine"
    neither = "neither build (no Docker engine answers) nor build-remote (no CODEBUILD_PROJECT)"
    return "WARN", neither, "make bootstrap, then make build-remote (or start Docker: make build)"


def credentials(settings) -> tuple[tuple, object]:  # the check, and a session or why to skip
    account = settings.aws_account_id
    try:
        session = aws.session(settings.aws_region)  # in the try: a wrong AWS_PROFILE fails here
        caller = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:  # explain: "what went wrong[; what fixes it]"
        detail, fix = [*aws.explain(error).rsplit("; ", 1), "retry, or ask the aws CLI"][:2]
        unanswered = aws.error_code(error) in aws.UNREACHABLE
        skip = "AWS does not answer" if unanswered else "no usable credentials"
        return ("FAIL", detail, fix.removeprefix("run ")), skip
    if caller["Account"] == account:
        return ("OK", f"{caller['Arn']} in account {account}"), session
    other = f"the credentials are for account {caller['Account']}, the project's is {account}"
    fix = f"export AWS_PROFILE=<your profile for account {account}>"
    return ("FAIL", other, fix), "no usable credentials"


def ecr_repository(settings, ecr) -> tuple:
    repository, region = settings.ecr_repository, settings.aws_region
    if not aws.repository_exists(ecr, repository):
        return "WARN", f"{repository} does not exist in {region} yet", BOOTSTRAP
    return "OK", f"{repository} exists in {region}"


def ecr_image(settings, ecr) -> tuple:
    name = settings.image
    if not (details := aws.image_details(ecr, settings.ecr_repository, settings.image_tag)):
        return "FAIL", f"{name} is not in ECR (train-remote runs it)", "make push"
    media_type = details.get("imageManifestMediaType", "")
    if not media_type.endswith(INDEX_MEDIA_TYPES):  # an index: BuildKit's, with attestations
        return "OK", f"{name} is in ECR"
    index = f"{name} is a multi-platform index ({media_type}); SageMaker needs a single image"
    return "FAIL", index, "make build push (builds with --provenance=false on BuildKit)"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def trusts_sagemaker(statement: dict) -> bool:
    principal = statement.get("Principal", {})  # "*" is anyone, SageMaker included
    services = principal.get("Service", []) if isinstance(principal, dict) else principal
    actions = {"sts:AssumeRole", "sts:*", "*"} & set(as_list(statement.get("Action", [])))
    allowed = statement.get("Effect") == "Allow" and actions
    return bool(allowed and {SAGEMAKER, "*"} & set(as_list(services)))


def role(settings, iam) -> tuple:
    role_arn, account = settings.role_arn, settings.aws_account_id
    if not (parsed := ROLE_ARN.fullmatch(role_arn)):
        fix = "set ROLE_ARN in settings.env to arn:aws:iam::<account>:role/<name>"
        return "FAIL", f"ROLE_ARN {role_arn} is not an IAM role ARN", fix
    _, role_account, _, name = parsed.groups()
    if role_account != account:
        return "WARN", f"{role_arn} is in account {role_account}: not checked from {account}"
    try:
        found = iam.get_role(RoleName=name)["Role"]  # botocore decodes its trust policy
    except iam.exceptions.NoSuchEntityException:
        return "WARN", f"{name} does not exist in account {account} yet", BOOTSTRAP
    if found["Arn"] != role_arn:  # same name, another path: the job would name no role
        wrong = f"ROLE_ARN is {role_arn}, but the role is {found['Arn']}"
        return "FAIL", wrong, f"set ROLE_ARN in settings.env to {found['Arn']}"
    statements = as_list(found["AssumeRolePolicyDocument"].get("Statement", []))
    if any(map(trusts_sagemaker, statements)):
        return "OK", f"{name} exists and trusts {SAGEMAKER}"
    allow = {"Effect": "Allow", "Principal": {"Service": SAGEMAKER}, "Action": "sts:AssumeRole"}
    policy = {"Version": "2012-10-17", "Statement": [*statements, allow]}  # others stay trusted
    trust = shlex.quote(json.dumps(policy, separators=(",", ":")))
    fix = f"aws iam update-assume-role-policy --role-name {name} --policy-document {trust}"
    return "FAIL", f"{name} does not trust {SAGEMAKER}, so jobs cannot assume it", fix


def s3_output(settings, s3) -> tuple:
    bucket = aws.split_s3(settings.s3_output_path)[0]
    region, owner = settings.aws_region, settings.aws_account_id
    try:  # ExpectedBucketOwner: a bucket of another account that lets you list it fails too
        answer = s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as error:  # head_bucket's answer has no body: 404 or 403 only
        code = aws.error_code(error)
        if code in ("404", "NoSuchBucket"):
            return "WARN", f"bucket {bucket} does not exist yet", BOOTSTRAP
        lacks = "credentials lack s3:ListBucket (the launcher uploads the data with them)"
        why = f"bucket {bucket} is not reachable ({code}): another account's, or your {lacks}"
        fix = "set S3_OUTPUT_PATH in settings.env to s3://<a bucket of yours>/<prefix>"
        return "FAIL", why, fix
    if (bucket_region := answer.get("BucketRegion", region)) == region:
        return "OK", f"bucket {bucket} is reachable in {region}"
    fix = f"aws s3 mb s3://{bucket}-{region} --region {region} and use it in S3_OUTPUT_PATH"
    return "FAIL", f"bucket {bucket} is in {bucket_region}; SageMaker needs one in {region}", fix


def checks(settings):
    """(name, (status, detail[, fix])) of each check, as it is made."""
    daemon, details = docker(settings)
    if not details and settings.codebuild_project:  # the remote path needs no Docker here
        daemon = ("WARN", f"{daemon[1]}: local runs need it, make build-remote does not")
    yield "docker", daemon
    for check in (compose, architecture, disk):
        skipped = ("WARN", SKIPPED + "no Docker")
        yield check.__name__, check(settings, details) if details else skipped
    yield "builds", builds(settings, details)
    identity, session = credentials(settings)  # the session, or why the checks that need it skip
    yield "credentials", identity
    aws_checks = ((ecr_repository, "ecr"), (ecr_image, "ecr"), (role, "iam"), (s3_output, "s3"))
    for check, service in aws_checks:
        name = check.__name__.replace("_", "-")
        try:
            if isinstance(session, str):
                yield name, ("WARN", SKIPPED + session)
            else:
                yield name, check(settings, session.client(service))
        except (BotoCoreError, ClientError) as error:  # one line; a bug keeps its traceback
            if aws.error_code(error) not in aws.DENIED:
                yield name, ("FAIL", aws.explain(error), "retry, or ask the aws CLI")
            else:  # the job runs with the role's permissions, not yours: it may still work
                denied = f"your credentials lack {service}:{error.operation_name}"
                yield name, ("WARN", SKIPPED + denied)


def main(settings) -> int:
    counts = dict.fromkeys(("FAIL", "WARN", "OK"), 0)
    for name, (status, detail, *fix) in checks(settings):
        print(f"{status:<5} {name:<15} {detail}", *(f"-> fix: {c}" for c in fix), flush=True)
        counts[status] += 1
    print("doctor: {FAIL} FAIL, {WARN} WARN, {OK} OK".format(**counts))
    return 1 if counts["FAIL"] else 0
