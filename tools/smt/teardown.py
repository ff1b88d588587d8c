"""make teardown: nothing of this project left billing. It stops its jobs, tuning jobs and
builds, ends its warm pools, deletes its endpoints (make undeploy's way) and then its bootstrap
stack. The stack's bucket and repository outlive it (Retain) with their data, unless FORCE=1,
after a prompt. Only what has this project's ProjectName tag is touched."""

import sys
from types import SimpleNamespace

from smt import aws, bootstrap, endpoints, jobs, status, tune_remote
from smt.errors import Failure

KINDS = {"AWS::S3::Bucket": "bucket", "AWS::ECR::Repository": "repository"}


def teardown(settings) -> int:
    session = aws.session(settings.aws_region)
    items = status.billing(settings, session)
    # Before anything changes: a job stopped before this teardown (by make stop, the console,
    # another teardown) still runs; the stack's role must outlive it, and it is not ours to
    # wait for: refuse, and say what to wait for.
    busy = [i for i in items if i.kind.endswith("job") and i.state == "Stopping"]
    if busy:
        names = ", ".join(f"{i.kind} {i.name}" for i in busy)
        raise Failure(f"{names} still Stopping, stopped before this teardown; wait until it "
                      "has ended (make status shows it), then make teardown again")  # fmt: skip
    cloudformation, name = session.client("cloudformation"), settings.stack_name
    stack = bootstrap.described(cloudformation, name)
    kept = stored(session, settings, cloudformation, name) if stack else []
    if settings.force and kept:
        confirm(kept)
    sagemaker, stopped = session.client("sagemaker"), []
    for item in items:
        given = SimpleNamespace(**vars(settings))
        if item.kind == "tuning job":
            given.tune_job = item.name
            tune_remote.stop(given)
        elif item.kind == "training job":
            if item.keep_alive:  # its instances would stay warm, and bill, after it stops
                end_warm_pool(sagemaker, item.name)
            given.job = item.name
            jobs.stop(given)
            stopped.append(item.name)
        elif item.kind == "warm pool" and item.state == "Available":  # InUse: a job above's
            end_warm_pool(sagemaker, item.name)
            print(f"Warm pool of {item.name} ended")
        elif item.kind == "endpoint":
            given.endpoint = item.name
            endpoints.undeploy(given)
        elif item.kind == "build":
            session.client("codebuild").stop_build(id=item.name)
            print(f"Build {item.name} stopped")
    if stack:
        wait_ended(sagemaker, stopped, settings.stack_timeout)  # the role outlives the jobs
        cloudformation.delete_stack(StackName=name)
        bootstrap.wait(cloudformation, "stack_delete_complete", name, settings.stack_timeout)
        print(f"Stack {name} deleted (its role with it)")
    else:
        print(f"No stack {name} in {settings.aws_region} (make bootstrap makes one)")
    for kind, resource, _ in kept:
        if settings.force:
            empty(session, kind, resource)
            print(f"Deleted the {kind} {resource} and all it held")
        else:
            print(f"Kept the {kind} {resource} and its data: make teardown FORCE=1 deletes them")
    print(f"Nothing of {settings.project_name} is left billing in {settings.aws_region}.")
    return 0


def end_warm_pool(sagemaker, job: str) -> None:
    """AWS's way to end a warm pool now: its keep-alive period set to 0."""
    sagemaker.update_training_job(
        TrainingJobName=job, ResourceConfig={"KeepAlivePeriodInSeconds": 0}
    )


def wait_ended(sagemaker, names: list[str], timeout: float) -> None:
    for name in names:
        aws.wait(sagemaker, "training_job_completed_or_stopped", timeout, TrainingJobName=name)


def stored(session, settings, cloudformation, name: str) -> list[tuple[str, str, int]]:
    """(kind, name, how many objects or images) of the stack's bucket and repository that
    have this project's tag."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
    found = []
    for resource in (r for page in pages for r in page["StackResourceSummaries"]):
        kind, physical = KINDS.get(resource["ResourceType"]), resource.get("PhysicalResourceId")
        if kind and physical and owner(session, kind, physical) == settings.project_name:
            found.append((kind, physical, count(session, kind, physical)))
    return found


def owner(session, kind: str, name: str) -> str | None:
    if kind == "bucket":
        tags = session.client("s3").get_bucket_tagging(Bucket=name)["TagSet"]
    else:
        ecr = session.client("ecr")
        arn = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryArn"]
        tags = ecr.list_tags_for_resource(resourceArn=arn)["tags"]  # Key, Value as S3's
    return {t["Key"]: t["Value"] for t in tags}.get("ProjectName")


def count(session, kind: str, name: str) -> int:
    if kind == "bucket":
        pages = session.client("s3").get_paginator("list_objects_v2").paginate(Bucket=name)
        return sum(page.get("KeyCount", 0) for page in pages)
    pages = session.client("ecr").get_paginator("list_images").paginate(repositoryName=name)
    return sum(len(page["imageIds"]) for page in pages)


def confirm(kept: list[tuple[str, str, int]]) -> None:
    """FORCE=1: the user types yes to what will be lost (stdin: a terminal, or a pipe)."""
    what = "; ".join(f"the {kind} {name} with its {n} {'objects' if kind == 'bucket' else 'images'}"
                     for kind, name, n in kept)  # fmt: skip
    print(f"FORCE=1 deletes for good: {what}. Type yes to go on: ", end="", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        why = "no answer (no terminal?)" if not answer else f"the answer was {answer!r}"
        raise Failure(f"FORCE: nothing deleted, {why}; type yes, or make teardown without FORCE")


def empty(session, kind: str, name: str) -> None:
    if kind == "repository":  # force: with its images
        session.client("ecr").delete_repository(repositoryName=name, force=True)
        return
    s3 = session.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        if page.get("Contents"):
            keys = [{"Key": o["Key"]} for o in page["Contents"]]
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=name)
