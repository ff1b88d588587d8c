"""Every bad answer stops cookiecutter with one line naming the field; nothing is generated."""

import pytest
from helpers import resolved_answers

from sm_template.regions import PARTITION_OF_REGION
from sm_template.validation import validate

# (answers given on the command line, the field the error must name)
INVALID_ANSWERS = [
    pytest.param({"project_name": "", "project_slug": "demo"}, "project_name", id="name-empty"),
    pytest.param({"project_name": "   ", "project_slug": "demo"}, "project_name", id="name-blank"),
    pytest.param({"project_name": 'Alice\'s "model"'}, "project_name", id="name-quotes"),
    pytest.param({"project_name": "two\nlines"}, "project_name", id="name-newline"),
    pytest.param({"project_slug": "My-Project"}, "project_slug", id="slug-capitals-hyphen"),
    pytest.param({"project_slug": "1st_model"}, "project_slug", id="slug-digit-first"),
    pytest.param({"project_slug": "class"}, "project_slug", id="slug-keyword"),
    pytest.param({"project_slug": "has space"}, "project_slug", id="slug-space"),
    pytest.param({"project_slug": "modèle"}, "project_slug", id="slug-non-ascii"),
    pytest.param({"aws_account_id": "12345"}, "aws_account_id", id="account-5-digits"),
    pytest.param({"aws_account_id": "1234-5678-9012"}, "aws_account_id", id="account-dashes"),
    pytest.param({"aws_account_id": "12345678901a"}, "aws_account_id", id="account-letter"),
    pytest.param({"aws_region": "us-east1"}, "aws_region", id="region-typo"),
    pytest.param({"aws_region": "us-east-1a"}, "aws_region", id="region-availability-zone"),
    pytest.param({"aws_region": "mars-north-1"}, "aws_region", id="region-unknown"),
    pytest.param({"role_arn": "SageMakerExecutionRole"}, "role_arn", id="role-bare-name"),
    pytest.param({"role_arn": "arn:aws:iam::123456789012:user/alice"}, "role_arn", id="role-user"),
    pytest.param({"role_arn": "arn:aws:iam::12345:role/R"}, "role_arn", id="role-short-account"),
    pytest.param(
        {"role_arn": "arn:aws:iam::123456789012:role/" + "r" * 65}, "role_arn", id="role-name-65"
    ),
    pytest.param(
        {"role_arn": "arn:aws-cn:iam::123456789012:role/R"}, "role_arn", id="role-china-in-us"
    ),
    pytest.param(
        {"aws_region": "us-gov-west-1", "role_arn": "arn:aws:iam::123456789012:role/R"},
        "role_arn",
        id="role-commercial-in-govcloud",
    ),
    pytest.param({"ecr_repository": "MyRepo"}, "ecr_repository", id="ecr-capitals"),
    pytest.param({"ecr_repository": "a"}, "ecr_repository", id="ecr-one-char"),
    pytest.param({"ecr_repository": "-repo"}, "ecr_repository", id="ecr-hyphen-first"),
    pytest.param({"ecr_repository": "team//model"}, "ecr_repository", id="ecr-empty-namespace"),
    pytest.param({"ecr_repository": "r" * 257}, "ecr_repository", id="ecr-257-chars"),
    pytest.param({"s3_output_path": "my-bucket/models"}, "s3_output_path", id="s3-no-scheme"),
    pytest.param({"s3_output_path": "s3://My_Bucket/x"}, "s3_output_path", id="s3-capitals"),
    pytest.param({"s3_output_path": "s3://ab"}, "s3_output_path", id="s3-bucket-2-chars"),
    pytest.param({"s3_output_path": "s3://192.168.1.1/x"}, "s3_output_path", id="s3-ip"),
    pytest.param({"s3_output_path": "s3://my..bucket"}, "s3_output_path", id="s3-double-dot"),
    pytest.param({"s3_output_path": "s3://xn--bucket"}, "s3_output_path", id="s3-xn-prefix"),
    pytest.param({"s3_output_path": "s3://b-s3alias/x"}, "s3_output_path", id="s3-alias-suffix"),
    pytest.param({"s3_output_path": "s3://bucket/a b"}, "s3_output_path", id="s3-prefix-space"),
    pytest.param({"instance_type": "m5.large"}, "instance_type", id="instance-no-ml"),
    pytest.param({"instance_type": "ml.m5"}, "instance_type", id="instance-no-size"),
    pytest.param({"instance_type": "local"}, "instance_type", id="instance-local"),
    pytest.param({"instance_count": "0"}, "instance_count", id="count-zero"),
    pytest.param({"instance_count": "two"}, "instance_count", id="count-word"),
    pytest.param({"instance_count": "1.5"}, "instance_count", id="count-fraction"),
    pytest.param({"instance_count": "02"}, "instance_count", id="count-leading-zero"),
    pytest.param({"python_version": "3.9.18"}, "python_version", id="python-too-old"),
    pytest.param({"python_version": "3.14.0"}, "python_version", id="python-too-new"),
    pytest.param({"python_version": "3.12"}, "python_version", id="python-no-patch"),
    pytest.param({"base_image": "Python:3.12"}, "base_image", id="image-capitals"),
    pytest.param({"base_image": "python:3.12 slim"}, "base_image", id="image-space"),
    pytest.param({"tensorflow_version": "2.15.1"}, "tensorflow_version", id="tf-too-old"),
    pytest.param({"tensorflow_version": "2.21"}, "tensorflow_version", id="tf-no-patch"),
    pytest.param(
        {"create_ecr_repository": "yes"}, "create_ecr_repository", id="create-repo-without-checks"
    ),
]


# Further bad answers, checked without a bake: each breaks a rule a baked case above covers.
MORE_INVALID_ANSWERS = [
    pytest.param({"project_slug": "_private"}, "project_slug", id="slug-underscore-first"),
    pytest.param({"aws_account_id": "1234567890123"}, "aws_account_id", id="account-13-digits"),
    pytest.param({"aws_region": "US-EAST-1"}, "aws_region", id="region-capitals"),
    pytest.param(
        {"role_arn": "arn:aws:iam::123456789012:role/bad name"}, "role_arn", id="role-name-space"
    ),
    pytest.param(
        {"s3_output_path": "https://b.s3.amazonaws.com/x"}, "s3_output_path", id="s3-https-url"
    ),
    pytest.param({"instance_type": "ML.M5.LARGE"}, "instance_type", id="instance-capitals"),
    pytest.param({"instance_count": "-1"}, "instance_count", id="count-negative"),
    pytest.param({"python_version": "python3.12"}, "python_version", id="python-prefixed"),
    pytest.param({"base_image": ""}, "base_image", id="image-empty"),
    pytest.param({"tensorflow_version": "latest"}, "tensorflow_version", id="tf-latest"),
]


@pytest.mark.parametrize(("answers", "field"), INVALID_ANSWERS)
def test_an_invalid_answer_stops_the_bake_with_an_error_line_naming_its_field_and_leaves_nothing(
    bake, answers, field
):
    result = bake({"aws_checks": "skip", **answers})

    assert result.returncode != 0
    assert any(line.startswith(f"ERROR: {field}: ") for line in result.errors), result.output
    assert result.leftovers == []
    assert "nothing was generated" in result.stderr
    assert result.output.count("Traceback") <= 1, "only cookiecutter's own traceback may appear"


@pytest.mark.parametrize(("answers", "field"), INVALID_ANSWERS + MORE_INVALID_ANSWERS)
def test_each_error_names_its_field_says_what_is_wrong_and_how_to_fix_it_on_one_line(
    answers, field
):
    errors, _ = validate(resolved_answers(aws_checks="skip", **answers))

    mine = [error for error in errors if error.startswith(f"{field}: ")]
    assert mine
    for error in mine:
        assert "\n" not in error
        what_is_wrong, _, how_to_fix = error.partition("; ")
        assert what_is_wrong and how_to_fix, error


def test_several_bad_answers_are_all_reported_in_one_run(bake):
    result = bake(
        {
            "aws_checks": "skip",
            "aws_account_id": "12345",
            "aws_region": "us-east1",
            "role_arn": "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
            "s3_output_path": "s3://my-bucket/models",
            "instance_type": "m5.large",
            "instance_count": "0",
            "tensorflow_version": "2.15.0",
        }
    )

    fields = {line.split(":")[1].strip() for line in result.errors}
    assert fields == {
        "aws_account_id",
        "aws_region",
        "instance_type",
        "instance_count",
        "tensorflow_version",
    }
    assert "sm-template: 5 problems in your answers; nothing was generated." in result.stderr
    assert result.leftovers == []


def test_our_message_comes_before_cookiecutters_traceback_and_stands_alone(bake):
    result = bake({"aws_checks": "skip", "aws_account_id": "12345"}, merge_streams=True)

    lines = result.stdout.splitlines()
    assert lines[0].startswith('ERROR: aws_account_id: "12345" is not 12 digits')
    ours = next(i for i, line in enumerate(lines) if "nothing was generated" in line)
    assert ours < next(i for i, line in enumerate(lines) if "Traceback" in line)


def test_unusual_but_valid_answers_generate_the_project(bake):
    result = bake(
        {
            "aws_checks": "skip",
            "project_name": "Modèle Ünïcode Demo",
            "aws_region": "us-gov-west-1",
            "role_arn": "arn:aws-us-gov:iam::123456789012:role/service-role/teams/Exec.Role@1",
            "ecr_repository": "team/model-a",
        }
    )

    assert result.returncode == 0, result.output
    assert result.leftovers == ["modele_unicode_demo"]
    assert result.warnings == []


def test_a_role_in_another_account_is_only_a_warning_and_the_project_is_generated(bake):
    result = bake({"aws_checks": "skip", "role_arn": "arn:aws:iam::999999999999:role/Shared"})

    assert result.returncode == 0, result.output
    assert result.leftovers == ["mnist_on_sagemaker"]
    [warning] = result.warnings
    assert warning.startswith("WARNING: role_arn: ")
    assert "999999999999" in warning and "123456789012" in warning


def test_an_invalid_choice_is_refused_by_cookiecutter_itself_before_anything_is_generated(bake):
    result = bake({"aws_checks": "maybe"})

    assert result.returncode != 0
    assert "maybe provided for choice variable aws_checks" in result.output
    assert result.leftovers == []


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"ecr_repository": "team/model-a"}, id="namespaced-ecr"),
        pytest.param({"ecr_repository": "a.b_c-d/e-f"}, id="ecr-separators"),
        pytest.param(
            {"aws_region": "us-gov-east-1", "role_arn": "arn:aws-us-gov:iam::123456789012:role/R"},
            id="govcloud",
        ),
        pytest.param({"aws_region": "cn-northwest-1"}, id="china-default-role"),
        pytest.param({"role_arn": "arn:aws:iam::123456789012:role/a/b/c/R+=,.@_-"}, id="role-path"),
        pytest.param({"project_name": "Modèle Ünïcode Demo"}, id="unicode-name"),
        pytest.param({"project_name": "日本語 モデル 2"}, id="cjk-name"),
        pytest.param({"project_slug": "match"}, id="soft-keyword-slug"),
        pytest.param({"accelerator": "gpu", "instance_type": "ml.p4d.24xlarge"}, id="p4d"),
        pytest.param({"instance_type": "ml.trn1.32xlarge"}, id="trn1"),
        pytest.param({"accelerator": "gpu"}, id="gpu-default-instance"),
        pytest.param({"accelerator": "gpu", "instance_type": "ml.p6-b200.48xlarge"}, id="p6"),
        pytest.param({"s3_output_path": "s3://my.bucket-1"}, id="s3-bucket-only"),
        pytest.param({"s3_output_path": "s3://b12/a/date=2026-01-01/"}, id="s3-partition-prefix"),
        pytest.param({"python_version": "3.10.19"}, id="python-3.10"),
        pytest.param({"python_version": "3.13.9"}, id="python-3.13"),
        pytest.param({"tensorflow_version": "2.16.0"}, id="tf-2.16"),
        pytest.param({"tensorflow_version": "3.0.0"}, id="tf-3"),
        pytest.param({"instance_count": "100"}, id="count-100"),
        pytest.param(
            {"base_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/base/py:3.12.12-1"},
            id="ecr-base-image",
        ),
        pytest.param({"base_image": "localhost:5000/python:3.12.12-slim"}, id="registry-port"),
        pytest.param({"base_image": "python@sha256:" + "a" * 64}, id="image-digest"),
        pytest.param({"create_ecr_repository": "yes"}, id="create-with-strict"),
    ],
)
def test_unusual_but_valid_answers_give_no_error_and_no_warning(answers):
    assert validate(resolved_answers(**answers)) == ([], [])


@pytest.mark.parametrize(
    "accelerator, instance_type, says",
    [("gpu", "ml.c5.xlarge", "has no GPUs"), ("cpu", "ml.g5.xlarge", "has GPUs that a cpu")],
)
def test_an_accelerator_that_does_not_fit_the_instance_is_a_warning(
    accelerator, instance_type, says
):
    errors, warnings = validate(
        resolved_answers(accelerator=accelerator, instance_type=instance_type)
    )
    assert errors == [] and len(warnings) == 1
    assert warnings[0].startswith(f"instance_type: {instance_type} {says}")


def test_an_empty_project_slug_is_rejected():
    errors, _ = validate(resolved_answers(project_slug=""))

    assert (
        "project_slug: is empty; answer a lowercase ASCII letter followed by lowercase letters, "
        'digits or underscores, e.g. "mnist_on_sagemaker"'
    ) in errors


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "aws_checks",
            "sometimes",
            'aws_checks: "sometimes" is not a choice; answer strict or skip',
        ),
        (
            "create_ecr_repository",
            "maybe",
            'create_ecr_repository: "maybe" is not a choice; answer no or yes',
        ),
    ],
)
def test_a_choice_outside_the_list_is_rejected(field, value, expected):
    # cookiecutter refuses these itself (see above); validate() does not rely on it.
    errors, _ = validate({**resolved_answers(), field: value})

    assert errors == [expected]


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("us-east1", "us-east-1"), ("eu-west-1a", "eu-west-1"), ("EU-CENTRAL-1", "eu-central-1")],
)
def test_a_mistyped_region_gets_the_closest_real_name_suggested(typed, suggested):
    errors, _ = validate(resolved_answers(aws_region=typed))

    assert (
        f'aws_region: "{typed}" is not an AWS region name; did you mean "{suggested}"?'
        in (errors[0])
    )


@pytest.mark.parametrize(
    ("field", "typed", "suggested"),
    [
        ("ecr_repository", "Team/Model", "team/model"),
        ("instance_type", "m5.large", "ml.m5.large"),
        ("instance_type", "ML.G5.XLARGE", "ml.g5.xlarge"),
        ("project_slug", "My-Project", "my_project"),
    ],
)
def test_an_answer_with_an_obvious_fix_gets_that_fix_suggested(field, typed, suggested):
    errors, _ = validate(resolved_answers(**{field: typed}))

    assert f'"{suggested}"' in next(e for e in errors if e.startswith(field))


def test_a_role_in_the_wrong_partition_is_told_the_right_arn_prefix():
    errors, _ = validate(
        resolved_answers(aws_region="cn-north-1", role_arn="arn:aws:iam::123456789012:role/R")
    )

    assert errors == [
        'role_arn: partition "aws" does not match aws_region "cn-north-1", which is in aws-cn; '
        "the ARN must start with arn:aws-cn:iam::"
    ]


def test_a_bucket_name_breaking_several_rules_gets_every_reason():
    errors, _ = validate(resolved_answers(s3_output_path="s3://X..y-s3alias/models"))

    [error] = errors
    assert "lowercase letters" in error
    assert "two dots in a row" in error
    assert "-s3alias" in error


@pytest.mark.parametrize("image", ["python", "python:latest", "docker.io/library/python"])
def test_an_unpinned_base_image_is_a_warning_not_an_error(image):
    errors, warnings = validate(resolved_answers(base_image=image))

    assert errors == []
    assert warnings == [
        f'base_image: "{image}" is not pinned, so rebuilds can change under you; add a version '
        "tag, e.g. python:3.12.12-slim-bookworm"
    ]


def test_a_python_base_image_of_another_version_than_python_version_is_a_warning():
    errors, warnings = validate(
        resolved_answers(python_version="3.12.12", base_image="python:3.11-slim")
    )

    assert errors == []
    assert warnings == [
        'base_image: "python:3.11-slim" has Python 3.11 but python_version is 3.12.12; '
        "make them agree"
    ]


def test_more_than_a_hundred_instances_is_a_warning_about_quotas():
    errors, warnings = validate(resolved_answers(instance_count="500"))

    assert errors == []
    assert len(warnings) == 1 and "quota" in warnings[0]


def test_a_value_with_a_line_break_is_shown_escaped_so_each_message_stays_one_line():
    errors, _ = validate(resolved_answers(aws_region="us-east-1\nrm -rf /"))

    assert errors[0].startswith('aws_region: "us-east-1\\nrm -rf /" is not an AWS region name')


def test_a_very_long_value_is_shortened_in_the_message():
    errors, _ = validate(resolved_answers(ecr_repository="r" * 300))

    assert len(errors[0]) < 300
    assert '"' + "r" * 77 + '..."' in errors[0]


def test_the_region_list_matches_the_partitions_botocore_knows():
    import botocore.loaders

    partitions = botocore.loaders.create_loader().load_data("partitions")["partitions"]
    botocore_regions = {
        region: partition["id"]
        for partition in partitions
        if partition["id"] in ("aws", "aws-cn", "aws-us-gov")
        for region in partition["regions"]
        if not region.endswith("-global")
    }
    assert PARTITION_OF_REGION == botocore_regions, "update sm_template/regions.py"
