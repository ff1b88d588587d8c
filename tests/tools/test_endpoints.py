"""smt deploy, undeploy and endpoints (smt/endpoints.py), in-process against the moto server,
whose recorder shows the requests that reached AWS. moto makes every endpoint InService at
once and knows no tuning trial: the `overlay` fixture (status_overlay.StatusOverlay) scripts
the statuses DescribeEndpoint answers, DescribeTrainingJob's TuningJobArn of a trial, and a
tuning job's best trial."""

import functools
import io
import json
import re
import subprocess
import sys
import time

import pytest
from helpers import actions, bodies, create_training_job, put_image_tag
from smt import aws as aws_policy
from smt import cli, settings
from status_overlay import ANY_JOB

PROJECT_NAME = "MNIST on SageMaker"  # the template's default, the ProjectName tag
CREATES = ["SageMaker.CreateModel", "SageMaker.CreateEndpointConfig", "SageMaker.CreateEndpoint"]
OLDER = "mnist-on-sagemaker-a1b2c3-20261201100000"
NEWER = "mnist-on-sagemaker-d4e5f6-20261201110000"
TUNING_JOB = "mnist-on-sagemaker-261201120000"
# AWS's public registries of its TensorFlow Serving images (the SDK's image_uris config)
TF_REGISTRIES = {"eu-west-1": "763104351884.dkr.ecr.eu-west-1.amazonaws.com",
                 "cn-north-1": "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn"}  # fmt: skip


@pytest.fixture(autouse=True)
def quick_looks(monkeypatch):
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.05)


@pytest.fixture
def account(project_dir, aws, monkeypatch):
    """The project's image pushed and its bucket made: its deploy settings."""
    monkeypatch.setattr(aws, "client", functools.cache(aws.client))  # one client per service
    values = settings.derive(settings.load(None, project_dir))  # every setting: the bucket too
    put_image_tag(aws, values.ecr_repository, values.image_tag)
    aws.client("s3").create_bucket(Bucket=bucket_of(values.s3_output_path))
    return values


@pytest.fixture
def scripted(aws, overlay, monkeypatch):
    """AWS behind the overlay, which answers as its scripts say."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    return overlay


def bucket_of(uri: str) -> str:
    return uri.removeprefix("s3://").split("/")[0]


def model_of(account, job: str) -> str:
    return f"{account.s3_output_path}/{job}/output/model.tar.gz"


def trained(moto, account, job: str, project: str = PROJECT_NAME, model: bool = True) -> str:
    """A Completed training job (moto makes them so) and, unless model=False, its model in S3."""
    create_training_job(moto, job, output=account.s3_output_path, tags={"ProjectName": project})
    if model:
        key = model_of(account, job).removeprefix(f"s3://{bucket_of(account.s3_output_path)}/")
        moto.client("s3").put_object(Bucket=bucket_of(account.s3_output_path), Key=key, Body=b"m")
    return job


def trials(moto, overlay, account, count: int) -> list[str]:
    """The trials of a tuning job as make tune leaves them: this project's tags and name
    prefix (the tuner copies them), and DescribeTrainingJob names their tuning job."""
    arn = f"arn:aws:sagemaker:us-east-1:{moto.account_id}:hyper-parameter-tuning-job/{TUNING_JOB}"
    names = [trained(moto, account, f"{TUNING_JOB}-{i:03}-{i:08x}", model=i == 2)
             for i in range(1, count + 1)]  # fmt: skip
    overlay.statuses.update({name: [{"TuningJobArn": arn}] for name in names})
    return names


@pytest.fixture
def jobs(aws, account) -> str:
    """An account after two train-remote runs of this project and one of another project
    (newer): the newest of this project's."""
    trained(aws, account, OLDER)
    trained(aws, account, NEWER)
    trained(aws, account, "mnist-on-sagemaker-0a0b0c-20261201120000", project="MNIST v2")
    aws.start_recording()
    return NEWER


def request(moto, action: str) -> dict:
    [body] = map(json.loads, bodies(moto, action))
    return body


def deployed(stdout: str) -> str:
    [name] = re.findall(r"^Endpoint (\S+) created ", stdout, re.MULTILINE)
    return name


def committed(project_dir) -> list[dict]:
    """The project put in git: the tags of what it creates."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "made"]):
        subprocess.run([*git, *command], cwd=project_dir, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_dir,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return [{"Key": "ProjectName", "Value": PROJECT_NAME}, {"Key": "GitCommit", "Value": commit},
            {"Key": "GitDirty", "Value": "False"}]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "variant"),
    [
        ((), {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}),
        (("--serve-instance-type", "ml.c5.xlarge", "--serve-instance-count", "2"),
         {"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2}),
        (("--serverless-memory", "2048"),
         {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}),
    ],
)  # fmt: skip
def test_deploy_serves_the_newest_remote_jobs_model_with_the_pushed_image_the_role_and_the_tags(
    smt, aws, account, jobs, project_dir, options, variant
):
    tags = committed(project_dir)

    done = smt("deploy", *options)

    assert done.code == 0, done.err
    assert done.err == ""
    name = deployed(done.out)
    assert re.fullmatch(r"mnist-on-sagemaker-[0-9a-f]{6}-\d{12}", name)
    assert actions(aws)[-4:] == [*CREATES, "SageMaker.DescribeEndpoint"]  # InService at once
    assert request(aws, "SageMaker.CreateModel") == {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": account.remote_image,
            "ModelDataUrl": model_of(account, jobs),
        },
        "ExecutionRoleArn": account.role_arn,
        "Tags": tags,
    }
    assert request(aws, "SageMaker.CreateEndpointConfig") == {
        "EndpointConfigName": name,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name, **variant}],
        "Tags": tags,
    }
    assert request(aws, "SageMaker.CreateEndpoint") == {
        "EndpointName": name, "EndpointConfigName": name, "Tags": tags}  # fmt: skip
    assert done.out.splitlines()[1] == (
        f"model:   {model_of(account, jobs)} (the newest train-remote job, {jobs})"
    )
    assert done.out.splitlines()[-3:] == [
        f"Endpoint {name}: InService",
        f"Try it: make predict ENDPOINT={name}",
        f"It bills until you delete it: make undeploy ENDPOINT={name}",
    ]


def test_after_make_tune_deploy_still_serves_the_newest_train_remote_job_not_a_trial(
    smt, aws, scripted, account, jobs
):
    trials(aws, scripted, account, 3)  # newer than every train-remote job, tagged alike

    done = smt("deploy", "--wait", "0")

    assert done.code == 0, done.err
    served = request(aws, "SageMaker.CreateModel")["PrimaryContainer"]["ModelDataUrl"]
    assert served == model_of(account, NEWER)
    assert f"(the newest train-remote job, {NEWER})" in done.out.splitlines()[1]


def test_deploy_finds_the_newest_train_remote_job_beyond_the_first_page_of_the_listing(
    smt, aws, scripted, account
):
    """moto lists jobs oldest first: the newest is on the second page of 100."""
    trained(aws, account, OLDER)
    trials(aws, scripted, account, 99)
    newest = trained(aws, account, NEWER)

    done = smt("deploy", "--wait", "0")

    assert done.code == 0, done.err
    assert request(aws, "SageMaker.CreateModel")["PrimaryContainer"]["ModelDataUrl"] == (
        model_of(account, newest))  # fmt: skip
    assert actions(aws).count("SageMaker.ListTrainingJobs") == 2


def test_with_TUNE_JOB_deploy_serves_its_best_trial_and_says_so(smt, aws, scripted, account, jobs):
    best = trials(aws, scripted, account, 3)[1]
    aws.client("sagemaker").create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=TUNING_JOB,
        HyperParameterTuningJobConfig={"Strategy": "Bayesian", "ResourceLimits": {
            "MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1}},
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": "x:1", "TrainingInputMode": "File"},
            "RoleArn": account.role_arn,
            "OutputDataConfig": {"S3OutputPath": account.s3_output_path},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                               "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}})  # fmt: skip
    arn = f"arn:aws:sagemaker:::training-job/{best}"
    best_job = {"TrainingJobName": best, "TrainingJobArn": arn,
                "CreationTime": 1796500000, "TrainingJobStatus": "Completed",
                "TunedHyperParameters": {"learning-rate": "0.003"},
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": "validation:accuracy", "Value": 0.975}}  # fmt: skip
    scripted.tuning_statuses[TUNING_JOB] = [{"BestTrainingJob": best_job}]

    done = smt("deploy", "--tune-job", TUNING_JOB, "--wait", "0")

    assert done.code == 0, done.err
    assert request(aws, "SageMaker.CreateModel")["PrimaryContainer"]["ModelDataUrl"] == (
        model_of(account, best))  # fmt: skip
    source = f"the best trial of {TUNING_JOB}, {best}"
    assert done.out.splitlines()[1] == f"model:   {model_of(account, best)} ({source})"
    assert "SageMaker.ListTrainingJobs" not in actions(aws)


def test_deploy_with_MODEL_S3_serves_that_model_and_with_WAIT_0_returns_without_waiting(
    smt, aws, account, jobs
):
    other = model_of(account, OLDER)

    done = smt("deploy", "--model-s3", other, "--wait", "0")

    assert done.code == 0, done.err
    assert request(aws, "SageMaker.CreateModel")["PrimaryContainer"]["ModelDataUrl"] == other
    assert "SageMaker.DescribeEndpoint" not in actions(aws)
    assert "SageMaker.ListTrainingJobs" not in actions(aws)
    assert done.out.splitlines()[1] == f"model:   {other} (MODEL_S3)"
    assert done.out.splitlines()[-1] == (
        f"Watch it: make status; delete it: make undeploy ENDPOINT={deployed(done.out)}"
    )


@pytest.mark.parametrize("region", sorted(TF_REGISTRIES))
def test_SERVING_IMAGE_tensorflow_deploys_the_model_with_AWSs_tensorflow_serving_image_there(
    smt, aws, account, jobs, project_dir, region
):
    model = model_of(account, jobs)

    done = smt("deploy", "--serving-image", "tensorflow", "--aws-region", region,
               "--model-s3", model, "--wait", "0")  # fmt: skip

    assert done.code == 0, done.err
    image = request(aws, "SageMaker.CreateModel")["PrimaryContainer"]
    repository = f"{re.escape(TF_REGISTRIES[region])}/tensorflow-inference"
    version = re.fullmatch(rf"{repository}:(2\.\d+\.\d+)-cpu(-py\d+)?", image["Image"])[1]
    text = (project_dir / "requirements.txt").read_text()
    pinned = re.search(r"^tensorflow(?:-cpu)?==2\.(\d+)", text, re.M)
    assert int(version.split(".")[1]) <= int(pinned[1])  # the pinned one, or the nearest below
    assert image["ModelDataUrl"] == model
    assert f"image:   {image['Image']}, AWS's TensorFlow Serving {version}" in done.out
    assert "AmazonEC2ContainerRegistry_V20150921.DescribeImages" not in actions(aws)


def test_an_endpoint_that_fails_prints_its_failure_reason_once_it_fails_and_deploy_exits_1(
    smt, aws, scripted, jobs
):
    reason = ("The primary container for production variant AllTraffic did not pass the ping "
              "health check.")  # fmt: skip
    scripted.endpoint_statuses[ANY_JOB] = [
        {"EndpointStatus": "Creating"},
        {"EndpointStatus": "Creating"},  # a line per status, not per look
        {"EndpointStatus": "Failed", "FailureReason": reason},
    ]

    done = smt("deploy")

    assert done.code == 1
    name = deployed(done.out)
    lines = done.out.splitlines()
    created = f"Endpoint {name} created (its model and endpoint config have the same name)."
    assert lines[lines.index(created) + 1 :] == [
        f"Endpoint {name}: Creating",
        f"Endpoint {name}: Failed",
        f"FAILED: {reason}",
        f"Remove what is left of it: make undeploy ENDPOINT={name}",
    ]
    assert actions(aws).count("SageMaker.DescribeEndpoint") == 3


def test_an_aws_error_while_waiting_for_the_endpoint_is_said_as_aws_said_it_in_one_line(
    smt, aws, scripted, jobs
):
    # every attempt of the waiter's first look throttled: botocore retries, the waiter gives up
    scripted.fail_next["SageMaker.DescribeEndpoint"] = aws_policy.MAX_ATTEMPTS

    done = smt("deploy")

    assert done.code == 1
    [line] = done.err.strip().splitlines()  # no traceback
    assert line.startswith("error: ThrottlingException: ") and line.endswith(": Rate exceeded")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_terminal_deploy_redraws_one_line_while_it_waits(scripted, jobs, monkeypatch):
    scripted.endpoint_statuses[ANY_JOB] = [{"EndpointStatus": "Creating"}] * 2 + [
        {"EndpointStatus": "InService"}
    ]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)

    assert cli.main(["deploy"]) == 0

    written = terminal.getvalue()
    name = deployed(written)
    [waiting] = [line for line in written.split("\n") if f"\rEndpoint {name}: " in line]
    assert re.fullmatch(  # each change: back to the line's start, the status, the rest cleared
        rf"(\rEndpoint {name}: Creating \(\d+ s\)\x1b\[K)+"
        rf"\rEndpoint {name}: InService \(\d+ s\)\x1b\[K",
        waiting,
    )


def test_deploy_gives_up_after_DEPLOY_TIMEOUT_saying_the_endpoint_may_still_bill_and_how_to_end_it(
    smt, aws, scripted, jobs
):
    scripted.endpoint_statuses[ANY_JOB] = [{"EndpointStatus": "Creating"}]

    started = time.monotonic()
    done = smt("deploy", "--deploy-timeout", "1")

    assert 1 <= time.monotonic() - started < 20
    assert done.code == 1
    name = deployed(done.out)
    assert done.out.splitlines()[-1] == f"Endpoint {name}: Creating"
    assert done.err.splitlines() == [
        f"error: endpoint {name} is not InService after 1 s (DEPLOY_TIMEOUT); it may still "
        f"come up, and bill: make status shows it, make undeploy ENDPOINT={name} deletes it"
    ]


def test_undeploy_deletes_the_endpoint_its_config_and_its_model_and_leaves_nothing(smt, aws, jobs):
    name = deployed(smt("deploy").out)
    aws.start_recording()

    done = smt("undeploy", "--endpoint", name)

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        f"Deleted endpoint {name}, endpoint config {name}, model {name}.",
        f"Nothing of {name} is left billing.",
    ]
    sagemaker = aws.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    deletes = [a for a in actions(aws) if a.startswith("SageMaker.Delete")]
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


def test_make_status_lists_only_this_projects_endpoints_with_their_instances_or_memory(
    smt, aws, account
):
    another_projects_endpoint(aws, "their-endpoint", [{"Key": "ProjectName", "Value": "Theirs"}])
    another_projects_endpoint(aws, "untagged-endpoint", [])
    model = f"{account.s3_output_path}/m/model.tar.gz"
    key = model.removeprefix(f"s3://{bucket_of(model)}/")
    aws.client("s3").put_object(Bucket=bucket_of(model), Key=key, Body=b"m")
    ours = [deployed(smt("deploy", "--model-s3", model, *options).out)
            for options in ((), ("--serverless-memory", "3072"))]  # fmt: skip

    done = smt("status")

    assert done.code == 0, done.err
    header, *rows, footer = done.out.splitlines()
    assert header.split() == ["what", "name", "state", "instances", "price"]
    listed = [re.split(r"\s{2,}", row.strip()) for row in rows]
    endpoints = [row[1:4] for row in listed if row[0] == "endpoint"]
    assert endpoints == [
        [ours[0], "InService", "ml.m5.large x 1"],
        [ours[1], "InService", "serverless 3072 MB"],
    ]
    assert "their-endpoint" not in done.out and "untagged-endpoint" not in done.out
    assert footer.startswith("Billing now:")


BUCKET = "s3://sagemaker-us-east-1-210987654321"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--serverless-memory", "1000"),
         "SERVERLESS_MEMORY: '1000' is not one of 1024, 2048, ... 6144 (MB)"),
        (("--serverless-memory", "8192"),
         "SERVERLESS_MEMORY: '8192' is not one of 1024, 2048, ... 6144 (MB)"),
        (("--serve-instance-count", "0"), "SERVE_INSTANCE_COUNT: '0' is not a whole number >= 1"),
        (("--serve-instance-type", "m5.large"),
         "SERVE_INSTANCE_TYPE: 'm5.large' is not an instance type (ml.*)"),
        (("--serving-image", "tfs"), "SERVING_IMAGE: 'tfs' is not one of ours, tensorflow"),
        (("--model-s3", "outputs/latest/model.tar.gz"),
         "MODEL_S3: 'outputs/latest/model.tar.gz' is not the S3 URI of a model.tar.gz "
         "(s3://bucket/.../model.tar.gz)"),
    ],
)  # fmt: skip
def test_a_bad_value_stops_deploy_in_one_line_naming_the_setting_before_any_request(
    smt, aws, options, says
):
    done = smt("deploy", *options)

    assert done.code == 2
    [error] = done.err.splitlines()
    assert error.startswith(f"error: {says}"), error
    assert actions(aws) == []


@pytest.mark.parametrize(
    ("command", "options", "code", "says"),
    [
        ("deploy", ("--base-job-name", "never-trained"), 2,
         f"MODEL_S3: no completed train-remote job of {PROJECT_NAME} (never-trained-*) in "
         "us-east-1; train one (make train-remote), or name a model: "
         "MODEL_S3=s3://.../model.tar.gz or TUNE_JOB=<tuning job>"),
        ("deploy", ("--model-s3", f"{BUCKET}/nothing/model.tar.gz"), 2,
         f"MODEL_S3: {BUCKET}/nothing/model.tar.gz does not exist; check the URI"),
        ("deploy", ("--model-s3", f"{BUCKET}/m/model.tar.gz", "--tune-job", "t"), 2,
         "MODEL_S3, TUNE_JOB: name one model to serve, not both"),
        ("deploy", ("--tune-job", "no-such-tuning"), 1,
         "TUNE_JOB: there is no tuning job no-such-tuning in us-east-1"),
        ("deploy", ("--image-tag", "never-pushed"), 1,
         "the image 210987654321.dkr.ecr.us-east-1.amazonaws.com/mnist_on_sagemaker:never-pushed "
         "is not in ECR; push it first: make push"),
        ("undeploy", (), 2, "ENDPOINT: make undeploy needs it"),
        ("undeploy", ("--endpoint", "no-such-endpoint"), 2,
         "ENDPOINT: there is no endpoint no-such-endpoint in us-east-1; "
         "this project's: make status"),
    ],
)  # fmt: skip
def test_what_deploy_or_undeploy_cannot_find_stops_it_in_one_line_before_anything_is_created(
    smt, aws, jobs, command, options, code, says
):
    done = smt(command, *options)

    assert done.code == code
    [error] = done.err.splitlines()
    assert error.startswith(f"error: {says}"), error
    assert not {*CREATES, "SageMaker.DeleteEndpoint"} & set(actions(aws))


def test_a_newest_job_whose_model_is_gone_is_named_with_the_job(smt, aws, account, jobs):
    newer = trained(aws, account, "mnist-on-sagemaker-f0f0f0-20261201130000", model=False)

    done = smt("deploy")

    assert done.code == 2
    assert done.err.splitlines() == [
        f"error: MODEL_S3: {model_of(account, newer)}, the model of the newest train-remote "
        f"job, {newer}, does not exist; check the URI"
    ]
    assert not set(CREATES) & set(actions(aws))


def test_undeploy_refuses_an_endpoint_of_another_project(smt, aws, account):
    another_projects_endpoint(aws, "their-endpoint", [{"Key": "ProjectName", "Value": "Theirs"}])

    done = smt("undeploy", "--endpoint", "their-endpoint")

    assert done.code == 2
    assert done.err.splitlines() == [
        "error: ENDPOINT: their-endpoint is not this project's (ProjectName=Theirs); "
        "delete it in the SageMaker console"
    ]
    listed = aws.client("sagemaker").list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["their-endpoint"]
