"""make deploy and undeploy (nothing left billing); make status lists this project's endpoints.
Plain boto3, not the SDK (tools/README.md says why)."""

import re
import sys
import time

from botocore.exceptions import ClientError, WaiterError

from smt import aws, prices
from smt.errors import BadSetting, Failure

VARIANT, MAX_CONCURRENCY = "AllTraffic", 5  # serverless: requests served at once
UNDEPLOY = "make undeploy ENDPOINT={}"


def duration(seconds: float) -> str:
    """3 d 4 h, 2 h 5 min, 7 min 12 s, 40 s."""
    left, parts = int(seconds), []
    for name, size in [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]:
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size} {name}")
            left %= size
    return " ".join(parts[:2])


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    pages = sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
    return {t["Key"]: t["Value"] for page in pages for t in page["Tags"]}


def project_of(sagemaker, arn: str) -> str | None:
    return tags_of(sagemaker, arn).get("ProjectName")


def name_prefix(settings, length: int, stamp: bool) -> str:
    """How the names aws.unique_name(BASE_JOB_NAME, length, stamp) gives begin."""
    return aws.unique_name(settings.base_job_name, length, stamp).rsplit("-", 1 + stamp)[0]


def newest_first(sagemaker, settings, kind: str, listing: str, **filters):
    """This project's jobs by their ProjectName tag (a name prefix, cut short, may be another's
    too), newest first. Every page is read, and sorted here: the newest may be on any."""
    paging = {"PageSize": aws.api_maximum("MaxResults")}  # not the listings' default 10
    pages = sagemaker.get_paginator(listing).paginate(PaginationConfig=paging, **filters)
    found = [job for page in pages for job in page[f"{kind}Summaries"]]
    for job in sorted(found, key=lambda job: job["CreationTime"], reverse=True):
        if project_of(sagemaker, job[f"{kind}Arn"]) == settings.project_name:
            yield job


def newest_job(sagemaker, settings) -> tuple[str, str]:
    """(model, source) of this project's newest Completed train-remote job. Tuning trials share
    its name prefix and tags (the tuner copies them): their TuningJobArn tells them apart."""
    prefix = name_prefix(settings, 40, stamp=False)
    filters = {"NameContains": prefix, "StatusEquals": "Completed"}
    found = newest_first(sagemaker, settings, "TrainingJob", "list_training_jobs", **filters)
    for summary in found:
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        if "TuningJobArn" not in job:
            name = job["TrainingJobName"]
            return job["ModelArtifacts"]["S3ModelArtifacts"], f"the newest train-remote job, {name}"
    raise BadSetting(
        f"MODEL_S3: no completed train-remote job of {settings.project_name} ({prefix}-*) in "
        f"{settings.aws_region}; train one (make train-remote), or name a model: "
        "MODEL_S3=s3://.../model.tar.gz or TUNE_JOB=<tuning job>"
    )


def model_source(session, settings) -> tuple[str, str, str | None]:
    """(the model.tar.gz on S3, where it comes from, its MLflow run when RUN names it)."""
    given = [name for name in ("MODEL_S3", "TUNE_JOB", "RUN") if getattr(settings, name.lower())]
    if len(given) > 1:
        both = "both" if len(given) == 2 else "all three"
        raise BadSetting(f"{', '.join(given)}: name one model to serve, not {both}")
    run_id = None
    if settings.model_s3:
        model, source = settings.model_s3, "MODEL_S3"
    elif settings.run:
        model, source, run_id = run_model(session, settings)
    elif settings.tune_job:
        from smt import tune_remote

        trial, model = tune_remote.best_model(settings)
        source = f"the best trial of {settings.tune_job}, {trial}"
    else:
        model, source = newest_job(session.client("sagemaker"), settings)
    bucket, key = aws.split_s3(model)
    try:
        session.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if aws.error_code(error) not in ("404", "NoSuchKey", "NoSuchBucket"):
            raise
        whose = "" if source == "MODEL_S3" else f", the model of {source},"
        raise BadSetting(f"MODEL_S3: {model}{whose} does not exist; check the URI") from None
    return model, source, run_id


def run_model(session, settings) -> tuple[str, str, str]:
    """RUN's model on S3: a local run's is uploaded beside the jobs' models first."""
    from smt import runs

    model, name, run_id = runs.model(settings)
    if not model.startswith("s3://"):
        if not settings.s3_output_path:
            raise BadSetting("S3_OUTPUT_PATH: deploying a local run's model uploads it there")
        local, model = model, f"{settings.s3_output_path}/models/{name}/model.tar.gz"
        bucket, key = aws.split_s3(model)
        print(f"uploading {local} to {model}", flush=True)
        session.client("s3").upload_file(local, bucket, key)
    return model, f"run {name}", run_id


def tensorflow_image(settings) -> tuple[str, str]:
    """(image URI, why): AWS's TensorFlow Serving for the pinned version, else the newest below
    it (a SavedModel loads in the same or a newer TF), else the oldest above."""
    from sagemaker.core import image_uris

    text = (settings.project_dir / "requirements.txt").read_text()
    pinned = re.search(r"^tensorflow(?:-cpu)?(?:\[[^]]*\])?==(\S+)", text, re.M)[1]
    number = lambda v: tuple(int(n) for n in v.split(".")[:2])  # noqa: E731
    config = image_uris.config_for_framework("tensorflow")["inference"]
    versions = sorted(config["versions"], key=number)
    below = [v for v in versions if number(v) <= number(pinned)]
    chosen = below[-1] if below else versions[0]
    extra = {"serverless_inference_config": True} if settings.serverless_memory else {}
    scope = {"image_scope": "inference", "instance_type": settings.serve_instance_type, **extra}
    try:
        uri = image_uris.retrieve("tensorflow", settings.aws_region, chosen, **scope)
    except ValueError as error:
        raise BadSetting(f"SERVING_IMAGE=tensorflow: {error}") from None
    same = number(chosen) == number(pinned)
    why = "the pinned version" if same else f"the nearest AWS has to the pinned {pinned}"
    return uri, f"AWS's TensorFlow Serving {chosen} ({why})"


def serving(variant: dict) -> str:
    if memory := variant.get("ServerlessConfig", {}).get("MemorySizeInMB"):
        return f"serverless {memory} MB"
    return f"{variant['InstanceType']} x {variant['InitialInstanceCount']}"


def deploy(settings) -> int:
    prices.line(settings, "deploy")  # COST_LIMIT: before anything is made
    session = aws.session(settings.aws_region)
    if settings.serving_image == "tensorflow":
        image, which = tensorflow_image(settings)
    else:
        aws.require_image(session, settings.remote_image)  # pushed? before anything is created
        image, which = settings.remote_image, "the project's image (serve)"
    model, source, run_id = model_source(session, settings)
    from smt import runs, tracking

    tracker = tracking.Tracker(settings)  # lineage: the endpoint's MlflowRun, the run's tag
    run_id = run_id or runs.run_of_model(tracker, model)
    name = aws.unique_name(settings.base_job_name)
    variant = {"VariantName": VARIANT, "ModelName": name}
    if settings.serverless_memory:
        memory = {"MemorySizeInMB": settings.serverless_memory, "MaxConcurrency": MAX_CONCURRENCY}
        variant["ServerlessConfig"] = memory
    else:
        variant["InstanceType"] = settings.serve_instance_type
        variant["InitialInstanceCount"] = settings.serve_instance_count
    print(f"model:   {model} ({source})\nimage:   {image}, {which}\nserving: {serving(variant)}")
    sagemaker = session.client("sagemaker")
    tags = aws.tags(settings, **({"MlflowRun": run_id} if run_id else {}))
    container = {"Image": image, "ModelDataUrl": model}
    sagemaker.create_model(
        ModelName=name, PrimaryContainer=container, ExecutionRoleArn=settings.role_arn, Tags=tags
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[variant], Tags=tags
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    print(f"Endpoint {name} created (its model and endpoint config have the same name).")
    runs.mark_deployed(tracker, run_id, name)
    if not settings.wait:
        print(f"Watch it: make status; delete it: {UNDEPLOY.format(name)}")
        return 0
    return wait_in_service(sagemaker, name, settings.deploy_timeout)


def wait_for(sagemaker, waiter: str, name: str, timeout: float, progress=None) -> None:
    started = time.monotonic()

    def show(parsed):
        if progress and "EndpointStatus" in parsed:
            waited = f" ({duration(time.monotonic() - started)})" if progress.tty else ""
            progress.show(f"Endpoint {name}: {parsed['EndpointStatus']}{waited}")

    aws.wait(sagemaker, waiter, timeout, show, EndpointName=name)


def wait_in_service(sagemaker, name: str, timeout: float) -> int:
    """0 InService, 1 Failed (and why), 130 Ctrl-C; a Failure when it takes too long."""
    progress, delete = aws.Progress(), UNDEPLOY.format(name)
    try:
        wait_for(sagemaker, "endpoint_in_service", name, timeout, progress)
    except KeyboardInterrupt:
        progress.end()
        keeps = f"endpoint {name} keeps coming up (and billing)"
        print(f"stopped waiting; {keeps}: {delete}", file=sys.stderr)
        return 130
    except WaiterError as error:
        progress.end()
        answer = error.last_response
        if answer["EndpointStatus"] == "Failed":
            print(f"FAILED: {answer.get('FailureReason') or 'no reason given'}")
            print(f"Remove what is left of it: {delete}")
            return 1
        late = f"endpoint {name} is not InService after {duration(timeout)} (DEPLOY_TIMEOUT)"
        bills = f"it may still come up, and bill: make status shows it, {delete} deletes it"
        raise Failure(f"{late}; {bills}") from None
    progress.end()
    print(f"Try it: make predict ENDPOINT={name}\nIt bills until you delete it: {delete}")
    return 0


def existing(call, **kwargs):
    """call(**kwargs)'s answer, or None when AWS says that resource is not there."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if aws.is_missing(error):
            return None
        raise


def undeploy(settings) -> int:
    sagemaker, name = aws.session(settings.aws_region).client("sagemaker"), settings.endpoint
    if not (endpoint := existing(sagemaker.describe_endpoint, EndpointName=name)):
        where = f"{name} in {settings.aws_region}"
        raise BadSetting(f"ENDPOINT: there is no endpoint {where}; this project's: make status")
    owner = project_of(sagemaker, endpoint["EndpointArn"])
    if owner != settings.project_name:
        whose = f"{name} is not this project's (ProjectName={owner})"
        raise BadSetting(f"ENDPOINT: {whose}; delete it in the SageMaker console")
    config = endpoint["EndpointConfigName"]  # deleted already: its models are not known
    variants = existing(sagemaker.describe_endpoint_config, EndpointConfigName=config)
    models = [v["ModelName"] for v in (variants or {}).get("ProductionVariants", [])]
    if endpoint["EndpointStatus"] != "Deleting":
        sagemaker.delete_endpoint(EndpointName=name)
    try:
        wait_for(sagemaker, "endpoint_deleted", name, settings.deploy_timeout)
    except WaiterError as error:
        status = error.last_response.get("EndpointStatus", "there")
        late = f"endpoint {name} is still {status} after {duration(settings.deploy_timeout)}"
        again = f"see make status, then again: {UNDEPLOY.format(name)}"
        raise Failure(f"{late} (DEPLOY_TIMEOUT); {again}") from None
    deleted = [f"endpoint {name}"]
    if existing(sagemaker.delete_endpoint_config, EndpointConfigName=config):
        deleted.append(f"endpoint config {config}")
    deleted += [f"model {m}" for m in models if existing(sagemaker.delete_model, ModelName=m)]
    print(f"Deleted {', '.join(deleted)}.\nNothing of {name} is left billing.")
    return 0
