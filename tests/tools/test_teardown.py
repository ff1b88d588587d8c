"""make teardown on a moto account where the project bills (conftest's `billing`): it stops
the job, ends the warm pools, deletes the endpoint and the stack, keeps the bucket's data and
the repository's images unless FORCE=1 (after a prompt), refuses while a job stopped before
it still runs, and never touches another project's."""

import io
import json
import time

import pytest
from helpers import OTHERS, actions, bodies, every_request_valid
from test_status import SERVICES, naming

CHANGES = ("Stop", "Update", "Delete", "BatchDelete", "DELETE", "POST")


def changes(moto) -> list[str]:
    return [a for a in actions(moto) if a.split(".")[-1].startswith(CHANGES)]


def one_line(done) -> str:
    assert "Traceback" not in done.err, done.err
    [line] = done.err.strip().splitlines()
    return line


def test_teardown_ends_all_of_the_project_keeps_its_data_and_leaves_another_projects_alone(
    smt, aws, billing, monkeypatch
):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no prompt without FORCE
    started = time.monotonic()
    done = smt("teardown")
    seconds = time.monotonic() - started

    assert done.code == 0, done.err
    [stop] = bodies(aws, "SageMaker.StopTrainingJob")
    assert json.loads(stop) == {"TrainingJobName": billing.job}
    updates = [json.loads(b) for b in bodies(aws, "SageMaker.UpdateTrainingJob")]
    assert updates == [{"TrainingJobName": name, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
                       for name in (billing.job, billing.warm)]  # fmt: skip
    sagemaker = aws.client("sagemaker")
    assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == [f"{OTHERS}-ep"]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [f"{OTHERS}-ep"]
    assert aws.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])[
        "StackSummaries"] == []  # fmt: skip
    assert set(naming(aws, OTHERS)) == {"SageMaker.ListTags"}
    kept = aws.client("s3").list_objects_v2(Bucket=billing.bucket)["KeyCount"]
    images = aws.client("ecr").list_images(repositoryName=billing.repository)["imageIds"]
    assert (kept, len(images)) == (1, 1)
    assert f"Kept the bucket {billing.bucket} and its data: make teardown FORCE=1" in done.out
    assert f"Kept the repository {billing.repository} and its data" in done.out
    assert (
        done.out.splitlines()[-1] == "Nothing of MNIST on SageMaker is left billing in us-east-1."
    )
    checked = every_request_valid(aws, SERVICES)
    print(f"teardown on moto: {len(actions(aws))} requests ({checked} checked), {seconds:.1f} s")


def test_force_1_deletes_the_bucket_and_the_repository_once_yes_is_typed_to_the_prompt(
    smt, aws, billing, monkeypatch
):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    done = smt("teardown", "--force", "1")

    assert done.code == 0, done.err
    assert (f"FORCE=1 deletes for good: the bucket {billing.bucket} with its 1 objects; the "
            f"repository {billing.repository} with its 1 images") in done.out  # fmt: skip
    buckets = [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
    assert billing.bucket not in buckets
    assert aws.client("ecr").describe_repositories()["repositories"] == []


@pytest.mark.parametrize(("typed", "why"), [("", "no answer"), ("y\n", "the answer was 'y'")])
def test_force_1_without_a_yes_refuses_in_one_line_before_anything_changes(
    smt, aws, billing, monkeypatch, typed, why
):
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    done = smt("teardown", "--force", "1")
    assert done.code == 1
    assert one_line(done).startswith(f"error: FORCE: nothing deleted, {why}")
    assert changes(aws) == []


def test_teardown_refuses_to_start_while_a_job_stopped_before_it_still_runs(smt, aws, billing):
    """A job the user stopped (make stop) is Stopping for minutes; deleting the role under it
    would lose its model: not teardown's job to wait, nor to stop it again."""
    billing.listed[("StatusEquals", "Stopping")] = [billing.job]
    billing.listed[("StatusEquals", "InProgress")] = []

    done = smt("teardown")

    assert done.code == 1
    assert one_line(done) == (
        f"error: training job {billing.job} still Stopping, stopped before this teardown; wait "
        "until it has ended (make status shows it), then make teardown again"
    )
    assert changes(aws) == []


@pytest.fixture
def builds(aws, billing, priced) -> dict[str, str]:
    """A build running in this project's CodeBuild project and one in another project's (moto's
    builds end at once: the overlay says IN_PROGRESS). {project: its build's id}."""
    codebuild, started = aws.client("codebuild"), {}
    for name, project in [("mnist-image", "MNIST on SageMaker"), (f"{OTHERS}-image", "Other")]:
        codebuild.create_project(
            name=name, source={"type": "S3", "location": "bucket/build/context.zip"},
            artifacts={"type": "NO_ARTIFACTS"}, serviceRole=f"arn:aws:iam::{aws.account_id}:role/b",
            environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                         "computeType": "BUILD_GENERAL1_MEDIUM"},
            tags=[{"key": "ProjectName", "value": project}],
        )  # fmt: skip
        started[name] = codebuild.start_build(projectName=name)["build"]["id"]

    def running(request, moto_answer):
        return {"builds": [{**b, "buildStatus": "IN_PROGRESS", "currentPhase": "BUILD"}
                           for b in moto_answer["builds"]]}  # fmt: skip

    priced.json_answers["CodeBuild_20161006.BatchGetBuilds"] = running
    aws.start_recording()
    return started


def test_a_running_build_of_the_projects_codebuild_is_listed_priced_and_stopped_by_teardown(
    smt, aws, builds, monkeypatch
):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    ours = builds["mnist-image"]
    listed = smt("status", "--codebuild-project", "mnist-image")
    assert listed.code == 0, listed.err
    [row] = [line for line in listed.out.splitlines() if ours in line]
    assert row.split()[:3] == ["build", ours, "BUILD"] and "/h" in row

    done = smt("teardown", "--codebuild-project", "mnist-image")
    assert done.code == 0, done.err
    assert [json.loads(b) for b in bodies(aws, "CodeBuild_20161006.StopBuild")] == [{"id": ours}]
    assert f"Build {ours} stopped" in done.out
    assert every_request_valid(aws, ("codebuild",)) >= 3  # the listing, the builds, the stop


def test_a_codebuild_project_of_another_project_is_never_listed_nor_stopped(
    smt, aws, builds, monkeypatch
):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    listed = smt("status", "--codebuild-project", f"{OTHERS}-image")
    done = smt("teardown", "--codebuild-project", f"{OTHERS}-image")
    assert (listed.code, done.code) == (0, 0), (listed.err, done.err)
    assert builds[f"{OTHERS}-image"] not in listed.out
    assert bodies(aws, "CodeBuild_20161006.StopBuild") == []
