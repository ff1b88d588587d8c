"""`make train-remote` checks the credentials and the pushed image before it uploads or
submits anything, against a moto server whose recorder shows every request that was made."""

import pytest
from helpers import MOTO_ACCOUNT_ID, actions, bake_with_data, put_image_tag, train_remote

REPOSITORY = "mnist_on_sagemaker"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake_with_data(tmp_path_factory.mktemp("bake"))


def test_without_credentials_train_remote_fails_in_one_line_before_any_upload(project, moto):
    env = moto.env(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    env = {k: v for k, v in env.items() if not k.startswith("AWS_") or k.endswith(("URL", "FILE"))}
    done = train_remote(project, env, IMAGE_TAG="v1")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: no AWS credentials found; run aws configure (or aws sso login) and retry"
        " (DEBUG=1 shows the traceback)"
    ]
    assert "Traceback" not in done.stderr
    assert actions(moto) == []  # nothing uploaded, nothing submitted


def test_an_image_tag_that_is_not_in_ecr_stops_train_remote_before_any_upload(project, moto):
    put_image_tag(moto, REPOSITORY, "another-tag")
    moto.start_recording()
    done = train_remote(project, moto.env(), IMAGE_TAG="v1")
    assert done.returncode != 0
    image = f"{MOTO_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1"
    assert f"error: the image {image} is not in ECR; push it first: make push" in done.stderr
    assert actions(moto) == [
        "GetCallerIdentity",
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
    ]
