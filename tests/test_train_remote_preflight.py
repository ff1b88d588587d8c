"""`make train-remote` checks the credentials and the pushed image before it uploads or
submits anything, against a moto server whose recorder shows every request that was made."""

import base64
import re

import numpy as np
import pytest
from cookiecutter.main import cookiecutter
from helpers import MOTO_ACCOUNT_ID, TEMPLATE_DIR, make_with_test_venv, put_image_tag

REPOSITORY = "mnist_on_sagemaker"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("bake")
    answers = {"aws_checks": "skip", "aws_account_id": MOTO_ACCOUNT_ID}
    cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir),
                 extra_context=answers)  # fmt: skip
    for channel in ("training", "test"):
        folder = output_dir / REPOSITORY / "data" / channel
        folder.mkdir(parents=True)
        np.savez(folder / "data.npz", x=np.zeros((4, 8, 8), "uint8"), y=np.zeros(4, "uint8"))
    return output_dir / REPOSITORY


def train_remote(project, env, **settings):
    return make_with_test_venv(project, "train-remote", ".installed-tools", env, **settings)


def actions(moto) -> list[str]:
    """The AWS requests the moto server recorded: X-Amz-Target, or the Action of a query
    request (STS), or method and URL (S3)."""
    named = []
    for request in moto.recorded_requests():
        body = request.get("body") or ""
        if request.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        action = re.search(r"Action=(\w+)", body)
        target = request["headers"].get("X-Amz-Target")
        named.append(target or (action and action[1]) or f"{request['method']} {request['url']}")
    return named


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
