"""The newcomer's path of the generated README, in one chain on one moto account: bootstrap,
build-remote, train-remote, deploy, status, teardown, each step checked for what its user
looks at next. It prints the requests each step made and its seconds (pytest -s).

What moto cannot do, the overlay does, as tests/tools/test_build_remote.py does it:
- moto's CloudFormation cannot make the stack's CodeBuild project: the test makes it, with the
  stack's name and compute type, after bootstrap;
- moto's CodeBuild runs no buildspec (each build SUCCEEDED at once): the overlay's answer to
  BatchGetBuilds pushes the build's IMAGE_URI tag into moto's ECR, as the buildspec would;
- moto's SageMaker writes no model: the test puts the job's model.tar.gz where SageMaker would;
- moto ignores ListTrainingJobs' WarmPoolStatusEquals: the overlay filters its answer by it;
- moto has no Price List API: the overlay answers GetProducts (conftest's `priced`).
The CodeBuild project the test made is left after teardown: AWS deletes it with the stack."""

import io
import json
import time

from helpers import actions, bodies, put_image_tag
from smt import settings as settings_table

STACK = "mnist-on-sagemaker"  # BASE_JOB_NAME of the baked project
BUILD_PROJECT = f"{STACK}-image"  # infra/stack.yaml's name of it
BOOTSTRAPPED = ("ROLE_ARN", "S3_OUTPUT_PATH", "ECR_REPOSITORY")


class Steps:
    """Each step's requests (moto's recording, plus the Price List requests the overlay
    answered) and seconds."""

    def __init__(self, moto, overlay, smt):
        self.moto, self.overlay, self.smt, self.figures = moto, overlay, smt, []

    def run(self, *argv: str):
        self.moto.start_recording()
        priced_before, started = len(self.overlay.answered), time.monotonic()
        done = self.smt(*argv)
        seconds = time.monotonic() - started
        assert done.code == 0, f"make {argv[0]}: {done.err}"
        requests = len(actions(self.moto)) + len(self.overlay.answered) - priced_before
        self.figures.append((argv[0], requests, seconds))
        return done


def pushed_by_the_build(moto, repository: str):
    """BatchGetBuilds' answer: moto's (SUCCEEDED) once the started build's IMAGE_URI is in ECR."""

    def answer(request, moto_answer):
        [start] = [json.loads(b) for b in bodies(moto, "CodeBuild_20161006.StartBuild")]
        variables = {v["name"]: v["value"] for v in start["environmentVariablesOverride"]}
        put_image_tag(moto, repository, variables["IMAGE_URI"].rsplit(":", 1)[1])

    return answer


def as_filtered(request, moto_answer):
    """ListTrainingJobs' answer as AWS gives it: only the jobs of the status asked."""
    wanted = {
        "StatusEquals": lambda job: job["TrainingJobStatus"],
        "WarmPoolStatusEquals": lambda job: job.get("WarmPoolStatus", {}).get("Status"),
    }
    jobs = [
        job
        for job in moto_answer["TrainingJobSummaries"]
        if all(of(job) == request[key] for key, of in wanted.items() if key in request)
    ]
    return {**moto_answer, "TrainingJobSummaries": jobs}


def test_the_newcomers_path_from_an_empty_account_to_nothing_left_billing(
    smt, aws, priced, project_dir, monkeypatch, capsys
):
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.05)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # teardown prompts only with FORCE=1
    steps = Steps(aws, priced, smt)
    priced.json_answers["SageMaker.ListTrainingJobs"] = as_filtered

    # make bootstrap: the role, bucket and repository, into settings.env
    done = steps.run("bootstrap")
    written = dict(line.split(" = ", 1) for line in (project_dir / "settings.env").read_text()
                   .splitlines() if line.startswith(BOOTSTRAPPED))  # fmt: skip
    assert set(written) == set(BOOTSTRAPPED), written
    values = settings_table.derive(settings_table.load("train-remote", project_dir, environ={}))
    iam, s3, ecr = aws.client("iam"), aws.client("s3"), aws.client("ecr")
    role = iam.get_role(RoleName=values.role_arn.rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == values.role_arn
    bucket, _, prefix = values.s3_output_path.removeprefix("s3://").partition("/")
    s3.head_bucket(Bucket=bucket)
    aws.client("codebuild").create_project(
        name=BUILD_PROJECT, source={"type": "S3", "location": f"{bucket}/{prefix}/build/"},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole=values.role_arn,
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_MEDIUM", "privilegedMode": True},
    )  # fmt: skip
    priced.json_answers["CodeBuild_20161006.BatchGetBuilds"] = pushed_by_the_build(
        aws, values.ecr_repository
    )

    # make build-remote: the image's content tag in ECR, and its price first
    done = steps.run("build-remote", "--codebuild-project", BUILD_PROJECT)
    assert "price: build on BUILD_GENERAL1_MEDIUM x 60 min (BUILD_TIMEOUT) x $0.01/min" in done.out
    tags = [i.get("imageTag") for i in ecr.list_images(repositoryName=values.ecr_repository)[
        "imageIds"]]  # fmt: skip
    assert tags == [values.image_tag]

    # make train-remote: data/ uploaded, a job of that image and the bootstrap role
    done = steps.run("train-remote", "--wait", "0")
    assert "price: ml.m5.large x 1 x 24 h (MAX_RUN)" in done.out
    [submitted] = [json.loads(b) for b in bodies(aws, "SageMaker.CreateTrainingJob")]
    assert submitted["AlgorithmSpecification"]["TrainingImage"] == values.remote_image
    assert submitted["RoleArn"] == values.role_arn
    job = submitted["TrainingJobName"]
    model = f"{prefix}/{job}/output/model.tar.gz"  # what SageMaker writes at the job's end
    s3.put_object(Bucket=bucket, Key=model, Body=b"model")

    # make deploy: an endpoint of that job's model, in service
    done = steps.run("deploy")
    assert "$0.25/h" in done.out
    [endpoint] = aws.client("sagemaker").list_endpoints()["Endpoints"]
    assert endpoint["EndpointStatus"] == "InService"
    [model_request] = [json.loads(b) for b in bodies(aws, "SageMaker.CreateModel")]
    assert model_request["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/{model}"

    # make status: the endpoint listed, priced
    done = steps.run("status")
    assert endpoint["EndpointName"] in done.out and "$0.250/h" in done.out

    # make teardown: nothing of the project's left; the data and the image kept
    done = steps.run("teardown")
    assert aws.client("sagemaker").list_endpoints()["Endpoints"] == []
    assert aws.client("sagemaker").list_models()["Models"] == []
    live = aws.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])
    assert live["StackSummaries"] == []
    kept = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert model in kept and any("/training/" in key for key in kept), kept
    assert ecr.list_images(repositoryName=values.ecr_repository)["imageIds"]
    assert done.out.splitlines()[-1] == (
        "Nothing of MNIST on SageMaker is left billing in us-east-1."
    )
    with capsys.disabled():
        print("\nthe newcomer's path on moto:")
        for step, requests, seconds in steps.figures:
            print(f"  make {step:<13} {requests:>4} requests {seconds:6.2f} s")
        total = sum(seconds for _, _, seconds in steps.figures)
        print(f"  {'all':<18} {sum(r for _, r, _ in steps.figures):>4} requests {total:6.2f} s")
