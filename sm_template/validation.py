"""Offline checks of every cookiecutter answer.

`validate` looks at all answers and returns every problem at once, so a user fixes them in
one round. Each message is one line: the field, what is wrong, and how to fix it. Patterns
use explicit ASCII classes ([0-9], not \\d) because \\d also matches digits of other scripts.
"""

import json
import keyword
import re
import unicodedata
from collections.abc import Callable

from sm_template.regions import PARTITION_OF_REGION, REGIONS_BY_PARTITION, closest_region
from sm_template.template import choices

ACCOUNT_ID = re.compile(r"[0-9]{12}")
ROLE_ARN_SHAPE = re.compile(r"arn:(?P<partition>[^:]*):iam::(?P<account>[^:]*):role/(?P<rest>.+)")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
# An IAM path segment: printable ASCII other than "/".
ROLE_PATH_SEGMENT = re.compile(r"[\x21-\x2e\x30-\x7e]+")
ECR_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
PROJECT_SLUG = re.compile(r"[a-z][a-z0-9_]*")
# ml.<family><generation><attributes>[-<variant>].<size>: ml.m5.large, ml.p4d.24xlarge,
# ml.trn1n.32xlarge, ml.p6-b200.48xlarge, ml.t3.medium.
INSTANCE_TYPE = re.compile(
    r"ml\.[a-z]+[0-9]+[a-z]*(?:-[a-z0-9]+)?\.(?:[0-9]*xlarge|large|medium|small)"
)
BUCKET_CHARACTERS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
# S3 accepts any key, but the prefix is written into generated code, Makefile and shell
# commands, so keep to AWS's "safe" key characters that need no quoting anywhere.
S3_PREFIX = re.compile(r"[A-Za-z0-9._/=-]*")
IP_ADDRESS = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
VERSION = re.compile(r"(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.(?P<patch>[0-9]+))?")
SUPPORTED_PYTHON_MINORS = (10, 11, 12, 13)
OLDEST_TENSORFLOW = (2, 16)
INSTANCE_COUNT_TO_QUESTION = 100
# SageMaker tag values allow letters, digits and separators of any script, plus these.
TAG_VALUE_PUNCTUATION = set("_.:/=+-@")
TAG_VALUE_MAX_LENGTH = 256

# Docker image reference grammar (github.com/distribution/reference, regexp.go).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)

# S3 general purpose bucket names: rules beyond the character set, each with its reason.
BUCKET_NAME_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda b: not 3 <= len(b) <= 63, "must be 3 to 63 characters long"),
    (
        lambda b: not BUCKET_CHARACTERS.fullmatch(b),
        "may hold only lowercase letters, digits, dots and hyphens, "
        "and must start and end with a letter or digit",
    ),
    (lambda b: ".." in b, "must not contain two dots in a row"),
    (lambda b: IP_ADDRESS.fullmatch(b) is not None, "must not look like an IP address"),
    (
        lambda b: b.startswith(("xn--", "sthree-", "amzn-s3-demo-")),
        "must not start with xn--, sthree- or amzn-s3-demo-",
    ),
    (
        lambda b: b.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")),
        "must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3",
    ),
)


# ml.g4dn, ml.g5, ml.g6, ml.p3, ml.p4d, ml.p5 ...: the families with NVIDIA GPUs
GPU_FAMILY_PREFIXES = ("g", "p")


def show(value: str) -> str:
    """A value quoted on one line (newlines escaped), cut short if it is long."""
    if len(value) > 80:
        value = value[:77] + "..."
    return json.dumps(value, ensure_ascii=False)


class _Findings:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, field: str, text: str) -> None:
        self.errors.append(f"{field}: {text}")

    def warn(self, field: str, text: str) -> None:
        self.warnings.append(f"{field}: {text}")


def _allowed_in_tag_value(character: str) -> bool:
    """SageMaker's tag value pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$, one character."""
    return unicodedata.category(character)[0] in "LNZ" or character in TAG_VALUE_PUNCTUATION


def _project_name(answers: dict[str, str], found: _Findings) -> None:
    name = answers["project_name"]
    if not name.strip():
        found.error("project_name", 'is empty; answer any name, e.g. "MNIST on SageMaker"')
        return
    # The name becomes the ProjectName tag on training jobs; SageMaker rejects other characters.
    bad = sorted({c for c in name if not _allowed_in_tag_value(c)})
    if bad:
        found.error(
            "project_name",
            f"{show(name)} has characters a SageMaker tag value (ProjectName) cannot hold: "
            f"{' '.join(c if c.isprintable() else show(c) for c in bad)}; use letters, digits, "
            "spaces and _ . : / = + - @",
        )
    elif len(name) > TAG_VALUE_MAX_LENGTH:
        found.error(
            "project_name",
            f"is {len(name)} characters long; a SageMaker tag value (ProjectName) holds at most "
            f"{TAG_VALUE_MAX_LENGTH}, so shorten it",
        )


def _slug_suggestion(value: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "project_" + slug
    return slug


def _project_slug(answers: dict[str, str], found: _Findings) -> None:
    slug = answers["project_slug"]
    if PROJECT_SLUG.fullmatch(slug) and not keyword.iskeyword(slug):
        return
    if not slug:
        problem = "is empty"
    elif keyword.iskeyword(slug):
        problem = f"{show(slug)} is a Python keyword"
    else:
        problem = f"{show(slug)} is not a Python package name"
    suggestion = _slug_suggestion(slug) or _slug_suggestion(answers["project_name"])
    hint = f", e.g. {show(suggestion)}" if PROJECT_SLUG.fullmatch(suggestion) else ""
    if keyword.iskeyword(suggestion):
        hint = f', e.g. "{suggestion}_project"'
    found.error(
        "project_slug",
        f"{problem}; answer a lowercase ASCII letter followed by lowercase letters, digits "
        f"or underscores{hint}",
    )


def _aws_account_id(answers: dict[str, str], found: _Findings) -> None:
    account = answers["aws_account_id"]
    if not ACCOUNT_ID.fullmatch(account):
        found.error(
            "aws_account_id",
            f"{show(account)} is not 12 digits; answer the 12-digit ID shown by "
            "'aws sts get-caller-identity' (keep leading zeros, no dashes or spaces)",
        )


def _aws_region(answers: dict[str, str], found: _Findings) -> None:
    region = answers["aws_region"]
    if region in PARTITION_OF_REGION:
        return
    suggestion = closest_region(region)
    hint = f"did you mean {show(suggestion)}?" if suggestion else "answer a name like us-east-1"
    found.error(
        "aws_region",
        f"{show(region)} is not an AWS region name; {hint} "
        "(list them with 'aws ec2 describe-regions --all-regions')",
    )


def _role_arn(answers: dict[str, str], found: _Findings) -> None:
    arn = answers["role_arn"]
    region_partition = PARTITION_OF_REGION.get(answers["aws_region"], "aws")
    example = f"arn:{region_partition}:iam::<12-digit account>:role/<name>"
    shape = ROLE_ARN_SHAPE.fullmatch(arn)
    if not shape:
        found.error(
            "role_arn",
            f"{show(arn)} is not an IAM role ARN; answer {example} "
            "(shown by 'aws iam get-role --role-name NAME')",
        )
        return
    *path, name = shape["rest"].split("/")
    if shape["partition"] not in REGIONS_BY_PARTITION:
        found.error(
            "role_arn",
            f"partition {show(shape['partition'])} is not aws, aws-cn or aws-us-gov; "
            f"answer {example}",
        )
    elif answers["aws_region"] in PARTITION_OF_REGION and shape["partition"] != region_partition:
        found.error(
            "role_arn",
            f"partition {show(shape['partition'])} does not match aws_region "
            f"{show(answers['aws_region'])}, which is in {region_partition}; "
            f"the ARN must start with arn:{region_partition}:iam::",
        )
    if not ACCOUNT_ID.fullmatch(shape["account"]):
        found.error(
            "role_arn",
            f"account {show(shape['account'])} in the ARN is not 12 digits; answer {example}",
        )
    elif ACCOUNT_ID.fullmatch(answers["aws_account_id"]) and (
        shape["account"] != answers["aws_account_id"]
    ):
        found.warn(
            "role_arn",
            f"the role is in account {shape['account']} but aws_account_id is "
            f"{answers['aws_account_id']}; fine for a cross-account role, otherwise fix the ARN",
        )
    if not ROLE_NAME.fullmatch(name):
        found.error(
            "role_arn",
            f"role name {show(name)} must be 1 to 64 letters, digits or + = , . @ _ -; "
            "copy the ARN from 'aws iam get-role --role-name NAME'",
        )
    if not all(ROLE_PATH_SEGMENT.fullmatch(segment) for segment in path):
        found.error(
            "role_arn",
            f"role path {show('/'.join(path))} has an empty part or a character IAM does not "
            "allow; copy the ARN from 'aws iam get-role --role-name NAME'",
        )


def _ecr_repository(answers: dict[str, str], found: _Findings) -> None:
    name = answers["ecr_repository"]
    if 2 <= len(name) <= 256 and ECR_REPOSITORY.fullmatch(name):
        return
    lowered = name.lower()
    hint = (
        f", e.g. {show(lowered)}" if ECR_REPOSITORY.fullmatch(lowered) and lowered != name else ""
    )
    found.error(
        "ecr_repository",
        f"{show(name)} is not a valid ECR repository name; use 2 to 256 lowercase letters, "
        f"digits and . _ - /, with a letter or digit at both ends and around each of those{hint}",
    )


def _s3_output_path(answers: dict[str, str], found: _Findings) -> None:
    path = answers["s3_output_path"]
    example = "s3://my-bucket/projects/my_project"
    if not path.startswith("s3://"):
        found.error(
            "s3_output_path",
            f"{show(path)} does not start with s3://; answer s3://bucket[/prefix], e.g. {example}",
        )
        return
    bucket, _, prefix = path.removeprefix("s3://").partition("/")
    broken = [reason for is_broken, reason in BUCKET_NAME_RULES if is_broken(bucket)]
    if broken:
        found.error(
            "s3_output_path",
            f"bucket name {show(bucket)} {'; it '.join(broken)}; "
            f"answer s3://bucket[/prefix], e.g. {example}",
        )
    if not S3_PREFIX.fullmatch(prefix):
        found.error(
            "s3_output_path",
            f"prefix {show(prefix)} has characters that need quoting in code and shell; "
            "use letters, digits and . _ - / =",
        )


def _instance_type(answers: dict[str, str], found: _Findings) -> None:
    instance = answers["instance_type"]
    if INSTANCE_TYPE.fullmatch(instance):
        return
    candidates = (instance.lower(), "ml." + instance.lower())
    suggestion = next((c for c in candidates if INSTANCE_TYPE.fullmatch(c)), None)
    hint = f"did you mean {show(suggestion)}?" if suggestion else "e.g. ml.m5.large or ml.g5.xlarge"
    found.error(
        "instance_type",
        f"{show(instance)} is not a SageMaker training instance type (ml.<family>.<size>); {hint}",
    )


def _accelerator_fits_instance(answers: dict[str, str], found: _Findings) -> None:
    """A GPU image on a CPU instance (or the reverse) trains, but not as meant: warn."""
    match = INSTANCE_TYPE.fullmatch(answers["instance_type"])
    if not match:
        return  # _instance_type reports it
    has_gpus = answers["instance_type"].split(".")[1].startswith(GPU_FAMILY_PREFIXES)
    if answers["accelerator"] == "gpu" and not has_gpus:
        found.warn(
            "instance_type",
            f"{answers['instance_type']} has no GPUs but accelerator is "
            "gpu; pick an ml.g* or ml.p* type, or accelerator=cpu",
        )
    elif answers["accelerator"] == "cpu" and has_gpus:
        found.warn(
            "instance_type",
            f"{answers['instance_type']} has GPUs that a cpu image will "
            "not use; answer accelerator=gpu to use them",
        )


def _instance_count(answers: dict[str, str], found: _Findings) -> None:
    count = answers["instance_count"]
    if not re.fullmatch(r"[0-9]+", count):
        found.error("instance_count", f"{show(count)} is not a whole number; answer 1 or more")
    elif int(count) < 1:
        found.error("instance_count", f"{show(count)} is less than 1; answer 1 or more")
    elif count != str(int(count)):
        found.error("instance_count", f"{show(count)} has leading zeros; answer {int(count)}")
    elif int(count) > INSTANCE_COUNT_TO_QUESTION:
        found.warn(
            "instance_count",
            f"{count} instances is more than {INSTANCE_COUNT_TO_QUESTION}; check your SageMaker "
            "training quota in Service Quotas before the first job",
        )


def _python_version(answers: dict[str, str], found: _Findings) -> None:
    version = answers["python_version"]
    match = VERSION.fullmatch(version)
    minors = SUPPORTED_PYTHON_MINORS
    supported = f"3.{minors[0]} to 3.{minors[-1]}"
    if not match or match["major"] != "3" or int(match["minor"]) not in minors:
        found.error(
            "python_version",
            f"{show(version)} is not a Python version from {supported}; answer one with its "
            "patch, e.g. 3.12.12",
        )
    elif match["patch"] is None:
        found.error(
            "python_version",
            f"{show(version)} has no patch number; answer a full version, e.g. {version}.0 "
            "(see python.org/downloads)",
        )


def _base_image(answers: dict[str, str], found: _Findings) -> None:
    image = answers["base_image"]
    reference = IMAGE_REFERENCE.fullmatch(image)
    if not reference:
        found.error(
            "base_image",
            f"{show(image)} is not an image reference; answer [registry/]name:tag in lowercase, "
            "e.g. python:3.12.12-slim-bookworm",
        )
        return
    tag = reference["tag"]
    if reference["digest"] is None and tag in (None, "latest"):
        found.warn(
            "base_image",
            f"{show(image)} is not pinned, so rebuilds can change under you; add a version tag, "
            "e.g. python:3.12.12-slim-bookworm",
        )
        return
    # For the official python image, a tag that names another version contradicts python_version.
    tag_version = re.match(r"[0-9]+(?:\.[0-9]+)*", tag or "")
    python = answers["python_version"]
    if (
        reference["path"].rsplit("/", 1)[-1] == "python"
        and tag_version
        and not (python == tag_version[0] or python.startswith(tag_version[0] + "."))
    ):
        found.warn(
            "base_image",
            f"{show(image)} has Python {tag_version[0]} but python_version is {python}; "
            "make them agree",
        )


def _tensorflow_version(answers: dict[str, str], found: _Findings) -> None:
    version = answers["tensorflow_version"]
    match = VERSION.fullmatch(version)
    oldest = ".".join(map(str, OLDEST_TENSORFLOW))
    if not match or match["patch"] is None:
        found.error(
            "tensorflow_version",
            f"{show(version)} is not a version X.Y.Z; answer a TensorFlow release, e.g. 2.21.0",
        )
    elif (int(match["major"]), int(match["minor"])) < OLDEST_TENSORFLOW:
        found.error(
            "tensorflow_version",
            f"{version} is older than {oldest}, the oldest this template supports; "
            "answer a newer release, e.g. 2.21.0",
        )


def _choices(answers: dict[str, str], found: _Findings) -> None:
    # The choices are cookiecutter.json's lists, so the two never disagree.
    for field, allowed in choices().items():
        if answers[field] not in allowed:
            found.error(
                field, f"{show(answers[field])} is not a choice; answer {' or '.join(allowed)}"
            )
    if answers["create_ecr_repository"] == "yes" and answers["aws_checks"] == "skip":
        found.error(
            "create_ecr_repository",
            "yes needs aws_checks=strict (the repository is created by the AWS check); "
            "answer aws_checks=strict, or create_ecr_repository=no",
        )


CHECKS = (
    _project_name,
    _project_slug,
    _aws_account_id,
    _aws_region,
    _role_arn,
    _ecr_repository,
    _s3_output_path,
    _instance_type,
    _accelerator_fits_instance,
    _instance_count,
    _python_version,
    _base_image,
    _tensorflow_version,
    _choices,
)
FIELDS = (
    "project_name",
    "project_slug",
    "aws_account_id",
    "aws_region",
    "role_arn",
    "ecr_repository",
    "s3_output_path",
    "accelerator",
    "instance_type",
    "instance_count",
    "python_version",
    "base_image",
    "tensorflow_version",
    "aws_checks",
    "create_ecr_repository",
)


def validate(answers: dict) -> tuple[list[str], list[str]]:
    """Check every answer offline; return (errors, warnings), each a list of one-line messages
    of the form "<field>: <what is wrong>; <how to fix it>"."""
    # A missing answer (e.g. a field removed from cookiecutter.json) counts as empty.
    text = {field: str(answers.get(field, "")) for field in (*FIELDS, *choices())}
    found = _Findings()
    for check in CHECKS:
        check(text, found)
    return found.errors, found.warnings
