"""AWS region names and the partition each belongs to.

Kept as an explicit list (not taken from botocore) because the hook must work offline and
without boto3. Add new regions here when AWS opens them; a test compares this list with the
installed botocore's.
"""

import difflib

REGIONS_BY_PARTITION: dict[str, tuple[str, ...]] = {
    "aws": (
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "me-west-1",
        "mx-central-1",
        "sa-east-1",
        "sa-west-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ),
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
    "aws-us-gov": ("us-gov-east-1", "us-gov-west-1"),
}

PARTITION_OF_REGION: dict[str, str] = {
    region: partition for partition, regions in REGIONS_BY_PARTITION.items() for region in regions
}


def closest_region(name: str) -> str | None:
    """The known region most like `name` (a typo, an availability zone, wrong case)."""
    matches = difflib.get_close_matches(name.strip().lower(), PARTITION_OF_REGION, n=1)
    return matches[0] if matches else None
