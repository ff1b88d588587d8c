"""make deploy, make undeploy and make endpoints (project_tools/endpoints.py) against the moto
server, whose recorder shows the requests that reached AWS.

moto 5.2.5 makes every endpoint InService at once; the tests of an endpoint that is still
Creating, then Failed, go through the `overlay` fixture (status_overlay.StatusOverlay), which
scripts the status DescribeEndpoint answers.
"""

import json
import os
import pty
import re
import subprocess

import pytest
from helpers import (
    actions,
    bake_with_data,
    bodies,
    create_training_job,
    make_command,
    make_setting,
    make_with_test_venv,
    put_image_tag,
)
from status_overlay import ANY_JOB

PROJECT_NAME = "MNIST on SageMaker"  # the template's default, the ProjectName tag
TAGS = [{"Key": "ProjectName", "Value": PROJECT_NAME}]
MAKE_FAILED = re.compile(r"make: \*\*\* \[Makefile:\d+: ([\w-]+)\] Error (\d+)")
CREATES = ["SageMaker.CreateModel", "SageMaker.CreateEndpointConfig", "SageMaker.CreateEndpoint"]
# AWS's public registries of its TensorFlow Serving images (the SDK's image_uris config)
TF_REGISTRIES = {
    "eu-west-1": "763104351884.dkr.ecr.eu-west-1.amazonaws.com",
    "cn-north-1": "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake_with_data(tmp_path_factory.mktemp("bake"))


@pytest.fixture(scope="module")
def output_path(project) -> str:
    return make_setting(project, "S3_OUTPUT_PATH")


def model_of(output_path: str, job: str) -> str:
    return f"{output_path}/{job}/output/model.tar.gz"


@pytest.fixture
def newest_job(project, moto, output_path) -> str:
    """An account after two train-remote runs of this project and one of another project
    (newer): the image pushed, both models in S3. The newest job of this project's."""
    put_image_tag(moto, make_setting(project, "ECR_REPOSITORY"), make_setting(project, "IMAGE_TAG"))
    bucket = output_path.removeprefix("s3://").split("/")[0]
    moto.client("s3").create_bucket(Bucket=bucket)
    jobs = {"mnist-on-sagemaker-a1b2c3-20261201100000": PROJECT_NAME,
            "mnist-on-sagemaker-d4e5f6-20261201110000": PROJECT_NAME,
            "mnist-on-sagemaker-0a0b0c-20261201120000": "MNIST v2"}  # fmt: skip
    for job, project_name in jobs.items():
        create_training_job(moto, job, output=output_path, tags={"ProjectName": project_name})
        key = model_of(output_path, job).removeprefix(f"s3://{bucket}/")
        moto.client("s3").put_object(Bucket=bucket, Key=key, Body=b"model")
    moto.start_recording()
    return list(jobs)[1]


@pytest.fixture
def env(moto, overlay) -> dict[str, str]:
    return moto.env(AWS_ENDPOINT_URL=overlay.url)


def make(project, target: str, env, **settings):
    return make_with_test_venv(project, target, ".installed-tools", env, **settings)


def request(moto, action: str) -> dict:
    [body] = map(json.loads, bodies(moto, action))
    return body


def deployed(stdout: str) -> str:
    [name] = re.findall(r"^Endpoint (\S+) created ", stdout, re.MULTILINE)
    return name


@pytest.mark.parametrize(
    ("settings", "variant"),
    [
        ({}, {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}),
        ({"SERVE_INSTANCE_TYPE": "ml.c5.xlarge", "SERVE_INSTANCE_COUNT": "2"},
         {"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2}),
        ({"SERVERLESS_MEMORY": "2048"},
         {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}),
    ],
)  # fmt: skip
def test_deploy_serves_the_newest_remote_jobs_model_with_the_pushed_image_the_role_and_the_tag(
    project, moto, env, newest_job, output_path, settings, variant
):
    done = make(project, "deploy", env, **settings)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    name = deployed(done.stdout)
    assert re.fullmatch(r"mnist-on-sagemaker-[0-9a-f]{6}-\d{14}", name)
    assert actions(moto)[-4:] == [*CREATES, "SageMaker.DescribeEndpoint"]  # InService at once
    model = request(moto, "SageMaker.CreateModel")
    assert model == {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": make_setting(project, "REMOTE_IMAGE"),
            "ModelDataUrl": model_of(output_path, newest_job),
        },
        "ExecutionRoleArn": make_setting(project, "ROLE_ARN"),
        "Tags": TAGS,
    }
    assert request(moto, "SageMaker.CreateEndpointConfig") == {
        "EndpointConfigName": name,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name, **variant}],
        "Tags": TAGS,
    }
    assert request(moto, "SageMaker.CreateEndpoint") == {
        "EndpointName": name, "EndpointConfigName": name, "Tags": TAGS}  # fmt: skip
    assert done.stdout.splitlines()[-3:] == [
        f"Endpoint {name}: InService",
        f"Try it: make predict ENDPOINT={name}",
        f"It bills until you delete it: make undeploy ENDPOINT={name}",
    ]


def test_deploy_with_MODEL_S3_serves_that_model_and_with_WAIT_0_returns_without_waiting(
    project, moto, env, newest_job, output_path
):
    other = model_of(output_path, "mnist-on-sagemaker-a1b2c3-20261201100000")

    done = make(project, "deploy", env, MODEL_S3=other, WAIT=0)

    assert done.returncode == 0, done.stderr
    assert request(moto, "SageMaker.CreateModel")["PrimaryContainer"]["ModelDataUrl"] == other
    assert "SageMaker.DescribeEndpoint" not in actions(moto)
    assert "SageMaker.ListTrainingJobs" not in actions(moto)
    assert done.stdout.splitlines()[-1] == (
        f"Watch it: make endpoints; delete it: make undeploy ENDPOINT={deployed(done.stdout)}"
    )


@pytest.mark.parametrize("region", sorted(TF_REGISTRIES))
def test_SERVING_IMAGE_tensorflow_deploys_the_model_with_AWSs_tensorflow_serving_image_there(
    project, moto, env, newest_job, output_path, region
):
    model = model_of(output_path, newest_job)

    done = make(project, "deploy", env, SERVING_IMAGE="tensorflow", AWS_REGION=region,
                MODEL_S3=model)  # fmt: skip

    assert done.returncode == 0, done.stderr
    image = request(moto, "SageMaker.CreateModel")["PrimaryContainer"]
    repository = f"{re.escape(TF_REGISTRIES[region])}/tensorflow-inference"
    version = re.fullmatch(rf"{repository}:(2\.\d+\.\d+)-cpu(-py\d+)?", image["Image"])[1]
    pinned = re.search(r"^tensorflow==2\.(\d+)", (project / "requirements.txt").read_text(), re.M)
    assert int(version.split(".")[1]) <= int(pinned[1])  # the pinned one, or the nearest below
    assert image["ModelDataUrl"] == model
    assert f"image:   {image['Image']}, AWS's TensorFlow Serving {version}" in done.stdout
    assert "AmazonEC2ContainerRegistry_V20150921.DescribeImages" not in actions(moto)


def test_an_endpoint_that_fails_prints_its_failure_reason_once_it_fails_and_deploy_exits_1(
    project, moto, env, overlay, newest_job
):
    reason = ("The primary container for production variant AllTraffic did not pass the ping "
              "health check.")  # fmt: skip
    overlay.endpoint_statuses[ANY_JOB] = [
        {"EndpointStatus": "Creating"},
        {"EndpointStatus": "Creating"},  # a line per status, not per poll
        {"EndpointStatus": "Failed", "FailureReason": reason},
    ]

    done = make(project, "deploy", env)

    name = deployed(done.stdout)
    lines = done.stdout.splitlines()
    created = f"Endpoint {name} created (its model and endpoint config have the same name)."
    assert lines[lines.index(created) + 1 :] == [
        f"Endpoint {name}: Creating",
        f"Endpoint {name}: Failed",
        f"FAILED: {reason}",
        f"Remove what is left of it: make undeploy ENDPOINT={name}",
    ]
    [make_says] = done.stderr.splitlines()
    assert MAKE_FAILED.fullmatch(make_says).groups() == ("deploy", "1")
    assert actions(moto).count("SageMaker.DescribeEndpoint") == 3


def in_a_terminal(project, target: str, env) -> str:
    """What `make TARGET` writes to a terminal (a pseudo-terminal here), as it wrote it."""
    controller, terminal = pty.openpty()
    command = make_command(target, ".installed-tools")
    streams = {"stdin": subprocess.DEVNULL, "stdout": terminal, "stderr": terminal}
    with subprocess.Popen(command, cwd=project, env=env, **streams) as make:
        os.close(terminal)
        written = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's last writer has gone
                break
            if not chunk:
                break
            written += chunk
        make.wait(timeout=120)
    os.close(controller)
    return written.decode()


def test_in_a_terminal_deploy_redraws_one_line_while_it_waits(project, env, overlay, newest_job):
    overlay.endpoint_statuses[ANY_JOB] = [{"EndpointStatus": "Creating"}] * 2 + [
        {"EndpointStatus": "InService"}
    ]

    written = in_a_terminal(project, "deploy", env)

    name = deployed(written.replace("\r\n", "\n"))
    [waiting] = [line for line in written.split("\r\n") if f"Endpoint {name}: " in line]
    assert re.fullmatch(  # each poll: back to the line's start, the status, the rest cleared
        rf"(\rEndpoint {name}: Creating \(\d+ s\)\x1b\[K){{2}}"
        rf"\rEndpoint {name}: InService \(\d+ s\)\x1b\[K",
        waiting,
    )


def test_deploy_gives_up_after_DEPLOY_TIMEOUT_saying_the_endpoint_may_still_bill_and_how_to_end_it(
    project, moto, env, overlay, newest_job
):
    overlay.endpoint_statuses[ANY_JOB] = [{"EndpointStatus": "Creating"}]

    done = make(project, "deploy", env, DEPLOY_TIMEOUT=1)

    name = deployed(done.stdout)
    assert done.stdout.splitlines()[-1] == f"Endpoint {name}: Creating"
    [error, make_says] = done.stderr.splitlines()
    assert re.fullmatch(
        rf"error: endpoint {name} is not InService after \d+ s \(DEPLOY_TIMEOUT\); it may still "
        rf"come up, and bill: make endpoints shows it, make undeploy ENDPOINT={name} deletes it",
        error,
    )
    assert MAKE_FAILED.fullmatch(make_says).groups() == ("deploy", "1")
    assert actions(moto).count("SageMaker.DescribeEndpoint") == 2  # one poll after the timeout


def test_undeploy_deletes_the_endpoint_its_config_and_its_model_and_leaves_nothing(
    project, moto, env, newest_job
):
    name = deployed(make(project, "deploy", env).stdout)
    moto.start_recording()

    done = make(project, "undeploy", env, ENDPOINT=name)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"Deleted endpoint {name}, endpoint config {name}, model {name}.",
        f"Nothing of {name} is left billing.",
    ]
    sagemaker = moto.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    deletes = [a for a in actions(moto) if a.startswith("SageMaker.Delete")]
    assert deletes == ["SageMaker.DeleteEndpoint", "SageMaker.DeleteEndpointConfig",
                       "SageMaker.DeleteModel"]  # fmt: skip


def another_projects_endpoint(moto, name: str, tags: list[dict]) -> None:
    sagemaker = moto.client("sagemaker")
    container = {"Image": "x:1", "ModelDataUrl": "s3://bucket/model.tar.gz"}
    sagemaker.create_model(ModelName=name, PrimaryContainer=container,
                           ExecutionRoleArn="arn:aws:iam::210987654321:role/R")  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
               "InitialInstanceCount": 1}  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)


def test_make_endpoints_lists_only_this_projects_endpoints_with_status_serving_and_age(
    project, moto, env, newest_job
):
    another_projects_endpoint(moto, "their-endpoint", [{"Key": "ProjectName", "Value": "Theirs"}])
    another_projects_endpoint(moto, "untagged-endpoint", [])
    ours = [deployed(make(project, "deploy", env, **settings).stdout)
            for settings in ({}, {"SERVERLESS_MEMORY": "3072"})]  # fmt: skip

    done = make(project, "endpoints", env)

    assert done.returncode == 0, done.stderr
    header, *rows, footer = done.stdout.splitlines()
    assert header.split() == ["endpoint", "status", "serving", "age"]
    listed = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert [row[:3] for row in listed] == [
        [ours[0], "InService", "ml.m5.large x 1"],
        [ours[1], "InService", "serverless 3072 MB"],
    ]
    assert all(re.fullmatch(r"\d+ s", row[3]) for row in listed)  # created seconds ago
    assert footer == "Each bills until deleted: make undeploy ENDPOINT=<name>"


def test_make_endpoints_says_plainly_when_none_of_this_project_is_running(project, moto, env):
    another_projects_endpoint(moto, "their-endpoint", [{"Key": "ProjectName", "Value": "Theirs"}])

    done = make(project, "endpoints", env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"No endpoint of {PROJECT_NAME} in us-east-1: none is running or billing."
    ]


@pytest.mark.parametrize(
    ("target", "settings", "says"),
    [
        ("deploy", {"SERVERLESS_MEMORY": "1000"},
         "SERVERLESS_MEMORY: '1000' is not one of 1024, 2048, ... 6144 (MB)"),
        ("deploy", {"SERVERLESS_MEMORY": "8192"},
         "SERVERLESS_MEMORY: '8192' is not one of 1024, 2048, ... 6144 (MB)"),
        ("deploy", {"SERVE_INSTANCE_COUNT": "0"},
         "SERVE_INSTANCE_COUNT: '0' is not a whole number >= 1"),
        ("deploy", {"SERVE_INSTANCE_TYPE": "m5.large"},
         "SERVE_INSTANCE_TYPE: 'm5.large' is not a SageMaker instance type (ml.*)"),
        ("deploy", {"SERVING_IMAGE": "tfs"},
         "SERVING_IMAGE: 'tfs' is not one of ours, tensorflow"),
        ("deploy", {"MODEL_S3": "outputs/latest/model.tar.gz"},
         "MODEL_S3: 'outputs/latest/model.tar.gz' is not the S3 URI of a model.tar.gz "
         "(s3://bucket/.../model.tar.gz)"),
        ("deploy", {"BASE_JOB_NAME": "never-trained"},
         f"MODEL_S3: no completed training job of {PROJECT_NAME} (never-trained-*) in this "
         "region; train one (make train-remote) or set MODEL_S3=s3://.../model.tar.gz"),
        ("deploy", {"MODEL_S3": "s3://sagemaker-us-east-1-210987654321/nothing/model.tar.gz"},
         "MODEL_S3: s3://sagemaker-us-east-1-210987654321/nothing/model.tar.gz does not exist; "
         "check the URI"),
        ("deploy", {"IMAGE_TAG": "never-pushed"},
         "the image 210987654321.dkr.ecr.us-east-1.amazonaws.com/mnist_on_sagemaker:never-pushed "
         "is not in ECR; push it first: make push"),
        ("undeploy", {},
         "ENDPOINT: which endpoint? name it: make undeploy ENDPOINT=<name> "
         "(make endpoints lists them)"),
        ("undeploy", {"ENDPOINT": "no-such-endpoint"},
         "ENDPOINT: there is no endpoint no-such-endpoint in us-east-1; "
         "this project's: make endpoints"),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_deploy_or_undeploy_in_one_line_naming_it_before_anything_is_created(
    project, moto, env, newest_job, target, settings, says
):
    done = make(project, target, env, **settings)

    assert done.returncode == 2
    [error, make_says] = done.stderr.splitlines()
    assert error == f"error: {says}"
    assert MAKE_FAILED.fullmatch(make_says)[1] in (target, f"need-endpoint-{target}")
    assert not {*CREATES, "SageMaker.DeleteEndpoint"} & set(actions(moto))


def test_undeploy_refuses_an_endpoint_of_another_project(project, moto, env):
    another_projects_endpoint(moto, "their-endpoint", [{"Key": "ProjectName", "Value": "Theirs"}])

    done = make(project, "undeploy", env, ENDPOINT="their-endpoint")

    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "error: ENDPOINT: their-endpoint is not this project's (ProjectName=Theirs); "
        "delete it in the SageMaker console"
    )
    assert [e["EndpointName"] for e in moto.client("sagemaker").list_endpoints()["Endpoints"]] == [
        "their-endpoint"
    ]
