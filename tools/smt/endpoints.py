"""make deploy, undeploy and endpoints: a SageMaker endpoint of a trained model; its removal
(endpoint, endpoint config, model: nothing left billing); this project's endpoints, found by
their ProjectName tag.

Plain boto3, not the SDK. Measured against moto 5.2.5 (one model on ml.m5.large): boto3 makes
the 3 requests a deploy needs in 0.1-0.5 s (2.1 s, 72 MB for the whole process);
sagemaker-core's resources make 7 and fail on moto's answers (pydantic); ModelBuilder makes 8
in 36-39 s (it sleeps 30 s before its first look, asks IAM about the role, names the config
after the endpoint, tags only through a private field): 50 s, 297 MB. Only
SERVING_IMAGE=tensorflow imports the SDK, for its image_uris."""

import math
import re
import sys
import time
from datetime import datetime, timezone

from smt import aws
from smt.errors import BadSetting, Failure

VARIANT, MAX_CONCURRENCY = "AllTraffic", 5  # serverless: requests served at once
POLL_SECONDS = 5  # between two looks at an endpoint (the waiters' own delay is 30 s)
PAGE_SIZE = 100  # ListTrainingJobs' maximum (its default is 10)
GONE = re.compile(r"could not find|does not exist|not found", re.I)  # AWS's words, moto's
UNDEPLOY = "make undeploy ENDPOINT={}"


def duration(seconds: float) -> str:
    """3 d 4 h, 2 h 5 min, 7 min 12 s, 40 s."""
    units, left, parts = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)], int(seconds), []
    for name, size in units:
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size} {name}")
            left %= size
    return " ".join(parts[:2])


def project_of(sagemaker, arn: str) -> str | None:
    pages = sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
    return next((t["Value"] for page in pages for t in page["Tags"] if t["Key"] == "ProjectName"),
                None)  # fmt: skip


# ---- what to deploy: MODEL_S3, TUNE_JOB's best trial (tune_remote's), or the newest
# train-remote job
def newest_job(sagemaker, settings) -> tuple[str, str]:
    """(model, source) of the newest Completed train-remote job of this project. Tuning trials
    share its name prefix and tags (the tuner copies them): DescribeTrainingJob's TuningJobArn
    tells them apart. Every page is read, and sorted here: the newest may be on any."""
    prefix = aws.unique_name(settings.base_job_name, max_length=40, stamp=False)  # as train.job
    prefix = prefix.rsplit("-", 1)[0]
    pages = sagemaker.get_paginator("list_training_jobs").paginate(
        NameContains=prefix, StatusEquals="Completed", SortBy="CreationTime",
        SortOrder="Descending", PaginationConfig={"PageSize": PAGE_SIZE})  # fmt: skip
    found = [job for page in pages for job in page["TrainingJobSummaries"]]
    for summary in sorted(found, key=lambda job: job["CreationTime"], reverse=True):
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        if "TuningJobArn" not in job and project_of(sagemaker, job["TrainingJobArn"]) == (
            settings.project_name
        ):
            name = job["TrainingJobName"]
            return job["ModelArtifacts"]["S3ModelArtifacts"], f"the newest train-remote job, {name}"
    raise BadSetting(
        f"MODEL_S3: no completed train-remote job of {settings.project_name} ({prefix}-*) in "
        f"{settings.aws_region}; train one (make train-remote), or name a model: "
        "MODEL_S3=s3://.../model.tar.gz or TUNE_JOB=<tuning job>"
    )


def model_source(session, settings) -> tuple[str, str]:
    if settings.model_s3 and settings.tune_job:
        raise BadSetting("MODEL_S3, TUNE_JOB: name one model to serve, not both")
    if settings.model_s3:
        model, source = settings.model_s3, "MODEL_S3"
    elif settings.tune_job:
        from smt import tune_remote

        trial, model = tune_remote.best_model(settings)
        source = f"the best trial of {settings.tune_job}, {trial}"
    else:
        model, source = newest_job(session.client("sagemaker"), settings)
    bucket, _, key = model.removeprefix("s3://").partition("/")
    s3 = session.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as error:
        if aws.error_code(error) not in ("404", "NoSuchKey", "NoSuchBucket"):
            raise
        whose = "" if source == "MODEL_S3" else f", the model of {source},"
        raise BadSetting(f"MODEL_S3: {model}{whose} does not exist; check the URI") from None
    return model, source


def tensorflow_image(settings) -> tuple[str, str]:
    """AWS's TensorFlow Serving image for the pinned version, or the nearest one AWS has:
    the newest at or below it (a SavedModel loads in the same or a newer TF), else the
    oldest above. (image URI, what was chosen and why)."""
    from sagemaker.core import image_uris

    text = (settings.project_dir / "requirements.txt").read_text()
    pinned = re.search(r"^tensorflow(?:\[[^]]*\])?==(\S+)", text, re.M)[1]
    number = lambda v: tuple(int(n) for n in v.split(".")[:2])  # noqa: E731
    versions = sorted(image_uris.config_for_framework("tensorflow")["inference"]["versions"],
                      key=number)  # fmt: skip
    below = [v for v in versions if number(v) <= number(pinned)]
    chosen = below[-1] if below else versions[0]
    scope = {"serverless_inference_config": True} if settings.serverless_memory else {}
    try:
        uri = image_uris.retrieve("tensorflow", settings.aws_region, version=chosen,
                                  image_scope="inference",
                                  instance_type=settings.serve_instance_type, **scope)  # fmt: skip
    except ValueError as error:
        raise BadSetting(f"SERVING_IMAGE=tensorflow: {error}") from None
    same = number(chosen) == number(pinned)
    why = "the pinned version" if same else f"the nearest AWS has to the pinned {pinned}"
    return uri, f"AWS's TensorFlow Serving {chosen} ({why})"


# ---- deploy
def serving(variant: dict) -> str:
    if memory := variant.get("ServerlessConfig", {}).get("MemorySizeInMB"):
        return f"serverless {memory} MB"
    return f"{variant['InstanceType']} x {variant['InitialInstanceCount']}"


def deploy(settings) -> int:
    session = aws.session(settings.aws_region)
    if settings.serving_image == "tensorflow":
        image, which = tensorflow_image(settings)
    else:
        if not settings.remote_image:
            raise BadSetting("AWS_ACCOUNT_ID: make deploy needs it (or REGISTRY) for the image")
        aws.require_image(session, settings.remote_image)  # pushed? before anything is created
        image, which = settings.remote_image, "the project's image (serve)"
    model, source = model_source(session, settings)
    name = aws.unique_name(settings.base_job_name)
    variant = {"VariantName": VARIANT, "ModelName": name}
    if settings.serverless_memory:
        memory = {"MemorySizeInMB": settings.serverless_memory, "MaxConcurrency": MAX_CONCURRENCY}
        variant["ServerlessConfig"] = memory
    else:
        variant |= {"InstanceType": settings.serve_instance_type,
                    "InitialInstanceCount": settings.serve_instance_count}  # fmt: skip
    print(f"model:   {model} ({source})\nimage:   {image}, {which}\nserving: {serving(variant)}")
    sagemaker, tags = session.client("sagemaker"), aws.tags(settings)
    sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": image, "ModelDataUrl": model},
                           ExecutionRoleArn=settings.role_arn, Tags=tags)  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant],
                                     Tags=tags)  # fmt: skip
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    print(f"Endpoint {name} created (its model and endpoint config have the same name).")
    if not settings.wait:
        print(f"Watch it: make endpoints; delete it: {UNDEPLOY.format(name)}")
        return 0
    return wait_in_service(sagemaker, name, settings.deploy_timeout)


def wait_for(sagemaker, waiter: str, name: str, timeout: float, progress=None) -> None:
    """boto3's waiter, a look every POLL_SECONDS until `timeout` has passed (and one more);
    each answer redraws the progress line. Raises the waiter's WaiterError."""
    started = time.monotonic()

    def show(parsed, **_):
        if progress and "EndpointStatus" in parsed:
            waited = f" ({duration(time.monotonic() - started)})" if progress.tty else ""
            progress.show(f"Endpoint {name}: {parsed['EndpointStatus']}{waited}")

    sagemaker.meta.events.register("after-call.sagemaker.DescribeEndpoint", show)
    attempts = math.ceil(timeout / POLL_SECONDS) + 1
    config = {"Delay": POLL_SECONDS, "MaxAttempts": attempts}
    sagemaker.get_waiter(waiter).wait(EndpointName=name, WaiterConfig=config)


def wait_in_service(sagemaker, name: str, timeout: float) -> int:
    """0 InService, 1 Failed (and why), 130 Ctrl-C; a Failure when it takes too long."""
    from botocore.exceptions import ClientError, WaiterError

    progress, delete = aws.Progress(), UNDEPLOY.format(name)
    try:
        wait_for(sagemaker, "endpoint_in_service", name, timeout, progress)
    except KeyboardInterrupt:
        progress.end()
        print(f"stopped waiting; endpoint {name} keeps coming up (and billing): {delete}",
              file=sys.stderr)  # fmt: skip
        return 130
    except WaiterError as error:
        progress.end()
        answer = error.last_response
        if "Error" in answer:  # AWS's error, not a status: said as any other
            raise ClientError(answer, "DescribeEndpoint") from None
        if answer["EndpointStatus"] == "Failed":
            print(f"FAILED: {answer.get('FailureReason') or 'no reason given'}")
            print(f"Remove what is left of it: {delete}")
            return 1
        raise Failure(f"endpoint {name} is not InService after {duration(timeout)} "
                      "(DEPLOY_TIMEOUT); it may still come up, and bill: make endpoints shows "
                      f"it, {delete} deletes it") from None  # fmt: skip
    progress.end()
    print(f"Try it: make predict ENDPOINT={name}\nIt bills until you delete it: {delete}")
    return 0


# ---- undeploy
def existing(call, **kwargs):
    """call(**kwargs)'s answer, or None when AWS says that resource is not there."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as error:
        if aws.error_code(error) == "ValidationException" and GONE.search(str(error)):
            return None
        raise


def undeploy(settings) -> int:
    from botocore.exceptions import WaiterError

    sagemaker, name = aws.session(settings.aws_region).client("sagemaker"), settings.endpoint
    if not (endpoint := existing(sagemaker.describe_endpoint, EndpointName=name)):
        raise BadSetting(f"ENDPOINT: there is no endpoint {name} in {settings.aws_region}; "
                         "this project's: make endpoints")  # fmt: skip
    owner = project_of(sagemaker, endpoint["EndpointArn"])
    if owner != settings.project_name:
        raise BadSetting(f"ENDPOINT: {name} is not this project's (ProjectName={owner}); "
                         "delete it in the SageMaker console")  # fmt: skip
    config = endpoint["EndpointConfigName"]  # deleted already: its models are not known
    variants = existing(sagemaker.describe_endpoint_config, EndpointConfigName=config)
    models = [v["ModelName"] for v in (variants or {}).get("ProductionVariants", [])]
    if endpoint["EndpointStatus"] != "Deleting":
        sagemaker.delete_endpoint(EndpointName=name)
    try:
        wait_for(sagemaker, "endpoint_deleted", name, settings.deploy_timeout)
    except WaiterError as error:
        status = error.last_response.get("EndpointStatus", "there")
        raise Failure(f"endpoint {name} is still {status} after {duration(settings.deploy_timeout)}"
                      f" (DEPLOY_TIMEOUT); see make endpoints, then again: "
                      f"{UNDEPLOY.format(name)}") from None  # fmt: skip
    deleted = [f"endpoint {name}"]
    for delete, kind, key, names in [
        (sagemaker.delete_endpoint_config, "endpoint config", "EndpointConfigName", [config]),
        (sagemaker.delete_model, "model", "ModelName", models),
    ]:
        deleted += [f"{kind} {each}" for each in names if existing(delete, **{key: each})]
    print(f"Deleted {', '.join(deleted)}.\nNothing of {name} is left billing.")
    return 0


# ---- make endpoints
def listing(settings) -> int:
    sagemaker = aws.session(settings.aws_region).client("sagemaker")
    pages = sagemaker.get_paginator("list_endpoints").paginate(SortBy="CreationTime")
    endpoints = [e for page in pages for e in page["Endpoints"]
                 if project_of(sagemaker, e["EndpointArn"]) == settings.project_name]  # fmt: skip
    if not endpoints:
        print(f"No endpoint of {settings.project_name} in {settings.aws_region}: "
              "none is running or billing.")  # fmt: skip
        return 0
    now, width = datetime.now(timezone.utc), max(len(e["EndpointName"]) for e in endpoints)
    print(f"{'endpoint':<{width}}  {'status':<14} {'serving':<20} age")
    for e in endpoints:
        described = sagemaker.describe_endpoint(EndpointName=e["EndpointName"])
        config = existing(sagemaker.describe_endpoint_config,
                          EndpointConfigName=described["EndpointConfigName"])  # fmt: skip
        served = serving(config["ProductionVariants"][0]) if config else "?"
        age = duration((now - e["CreationTime"]).total_seconds())
        print(f"{e['EndpointName']:<{width}}  {e['EndpointStatus']:<14} {served:<20} {age}")
    print(f"Each bills until deleted: {UNDEPLOY.format('<name>')}")
    return 0
