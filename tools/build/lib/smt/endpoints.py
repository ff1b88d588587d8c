"""Plumbing: make deploy / undeploy / endpoints: a SageMaker endpoint of a trained model, its
removal (endpoint, endpoint config, model: nothing left billing), and this project's endpoints
(found by their ProjectName tag).

Plain boto3 clients of project_tools/aws.py, not the SDK: measured against the moto server
(moto 5.2.5; deploy of one model on ml.m5.large, the endpoint InService at once):
- boto3: works as is; 4 requests (CreateModel, CreateEndpointConfig, CreateEndpoint,
  DescribeEndpoint), 0.13-0.46 s of calls after a 0.1-0.4 s import; 2.1 s and 72 MB for the
  whole process.
- sagemaker-core resources (Model/EndpointConfig/Endpoint.create): 7 requests (a Describe
  after each Create); fails on moto's answers (pydantic rejects its empty VpcConfig and
  DataCaptureConfig), and works once those are dropped: 0.8 s of calls, 2.4 s import,
  6.6 s and 252 MB for the whole process.
- sagemaker.serve.ModelBuilder(image_uri=, s3_model_data_url=): 8 requests and 36-39 s
  (its deploy sleeps 30 s before it first looks at the endpoint, InService or not, and reads
  the endpoint's CloudWatch log); asks IAM's SimulatePrincipalPolicy about the role first (moto
  answers 500: SAGEMAKER_VALIDATE_ROLE=false gets past it); tags only through a private field;
  names the endpoint config after the endpoint; draws a rich box for progress; 3.6-6.9 s import,
  50 s and 297 MB for the whole process.
The three calls are all a deploy needs; the SDK adds requests, time and failure modes, and
nothing this project uses. Only SERVING_IMAGE=tensorflow imports the SDK: its image_uris.
"""

import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from smt import aws
from smt.job_settings import unique_base
from smt.settings import SettingsParser, checked, instance_type, one_of, switch
from smt.settings import whole_number as count

PROJECT_DIR = Path(__file__).resolve().parents[1]
VARIANT, MAX_CONCURRENCY = "AllTraffic", 5  # serverless: requests served at once
MEMORY_STEP = 1024  # serverless memory: 1024, 2048, ... up to the API's maximum (6144)
GONE = re.compile(r"could not find|does not exist|not found", re.I)  # AWS's words, moto's


def memory_size(text: str) -> int:
    top = aws.api_maximum("ServerlessMemorySizeInMB")  # 6144 as the API states it
    steps = lambda t: t.isdigit() and MEMORY_STEP <= int(t) <= top and int(t) % MEMORY_STEP == 0  # noqa: E731
    return checked(steps, f"one of {MEMORY_STEP}, {2 * MEMORY_STEP}, ... {top} (MB)", int)(text)


model_s3 = checked(lambda t: re.fullmatch(r"s3://[^/]+/.+\.tar\.gz", t) is not None,
                   "the S3 URI of a model.tar.gz (s3://bucket/.../model.tar.gz)")  # fmt: skip


def settings(argv=None):
    p = SettingsParser(__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["deploy", "undeploy", "list"])
    p.setting("--image", "deploy: the pushed image (train-remote's)")
    p.setting("--serving-image", "deploy: which container serves", one_of("ours", "tensorflow"))
    p.setting("--model-s3", "deploy: the model.tar.gz (default: the newest remote job's)", model_s3)
    p.setting("--serve-instance-type", "deploy", instance_type, "ml.m5.large")
    p.setting("--serve-instance-count", "deploy", count, "1")
    p.setting("--serverless-memory", "deploy: MB, a serverless endpoint instead", memory_size)
    p.setting("--wait", "deploy: 0 returns at once", switch, "1")
    p.setting("--deploy-timeout", "seconds to wait for InService or a deletion", count, "1800")
    p.setting("--endpoint", "undeploy: the endpoint's name")
    p.setting("--project-name", "the ProjectName tag", default=PROJECT_DIR.name)
    p.setting("--base-job-name", "names start with this", default=PROJECT_DIR.name)
    p.setting("--role-arn", "deploy: the IAM role the endpoint's model runs as")
    p.setting("--aws-region", "the AWS region")
    p.add_argument("--poll", type=float, default=5, help="seconds between polls")
    args = p.parse_args(argv)
    ours = args.serving_image != "tensorflow"
    needs = {"deploy": ["role_arn"] + ["image"] * ours, "undeploy": ["endpoint"], "list": []}
    for name in ["aws_region", *needs[args.command]]:
        if not getattr(args, name):
            target = "endpoints" if args.command == "list" else args.command
            p.error(f"{name.upper()}: make {target} needs it: make {target} {name.upper()}=...")
    return args


def duration(seconds: float) -> str:
    """3 d 4 h, 2 h 5 min, 7 min 12 s, 40 s."""
    units, left, parts = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)], int(seconds), []
    for name, size in units:
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size} {name}")
            left %= size
    return " ".join(parts[:2])


# ---- what to deploy ----
def project_of(sagemaker, arn: str) -> str | None:
    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
    return next((t["Value"] for t in tags if t["Key"] == "ProjectName"), None)


def newest_model(sagemaker, base: str, project: str) -> tuple[str, str]:
    """(job, model.tar.gz URI) of the newest Completed training job with this project's name
    and ProjectName tag."""
    prefix = unique_base(base).rsplit("-", 1)[0]  # as train-remote names jobs: <prefix>-<random>
    page = sagemaker.list_training_jobs(NameContains=prefix, StatusEquals="Completed",
                                        SortBy="CreationTime", SortOrder="Descending")  # fmt: skip
    jobs = sorted(page["TrainingJobSummaries"], key=lambda j: j["CreationTime"], reverse=True)
    job = next((j for j in jobs if project_of(sagemaker, j["TrainingJobArn"]) == project), None)
    if not job:
        train = "train one (make train-remote) or set MODEL_S3=s3://.../model.tar.gz"
        none = f"no completed training job of {project} ({prefix}-*) in this region"
        raise aws.Refused(f"MODEL_S3: {none}; {train}")
    name = job["TrainingJobName"]
    return name, sagemaker.describe_training_job(TrainingJobName=name)["ModelArtifacts"][
        "S3ModelArtifacts"
    ]


def require_object(s3, uri: str) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if aws.error_code(error) not in ("404", "NoSuchKey", "NoSuchBucket"):
            raise
        raise aws.Refused(f"MODEL_S3: {uri} does not exist; check the URI") from None


def tensorflow_image(region: str, args) -> tuple[str, str]:
    """AWS's TensorFlow Serving image for the pinned version, or the nearest one AWS has:
    the newest at or below it (a SavedModel loads in the same or a newer TF), else the
    oldest above. (image URI, what was chosen and why)."""
    from sagemaker.core import image_uris

    text = (PROJECT_DIR / "requirements.txt").read_text()
    pinned = re.search(r"^tensorflow(?:\[[^]]*\])?==(\S+)", text, re.M)[1]
    number = lambda v: tuple(int(n) for n in v.split(".")[:2])  # noqa: E731
    versions = sorted(image_uris.config_for_framework("tensorflow")["inference"]["versions"],
                      key=number)  # fmt: skip
    below = [v for v in versions if number(v) <= number(pinned)]
    chosen = below[-1] if below else versions[0]
    scope = {"serverless_inference_config": True} if args.serverless_memory else {}
    try:
        uri = image_uris.retrieve("tensorflow", region, version=chosen, image_scope="inference",
                                  instance_type=args.serve_instance_type, **scope)  # fmt: skip
    except ValueError as error:
        raise aws.Refused(f"SERVING_IMAGE=tensorflow: {error}") from None
    same = number(chosen) == number(pinned)
    why = "the pinned version" if same else f"the nearest AWS has to the pinned {pinned}"
    return uri, f"AWS's TensorFlow Serving {chosen} ({why})"


# ---- deploy ----
def deploy(args, session) -> int:
    sagemaker, region = session.client("sagemaker"), args.aws_region
    if args.serving_image == "tensorflow":
        image, which = tensorflow_image(region, args)
    else:
        aws.require_image(session, args.image)  # pushed? before anything is created
        image, which = args.image, "the project's image (serve)"
    source, model = "MODEL_S3", args.model_s3
    if not model:
        source, model = newest_model(sagemaker, args.base_job_name, args.project_name)
    require_object(session.client("s3"), model)
    name = f"{unique_base(args.base_job_name)}-{time.strftime('%Y%m%d%H%M%S')}"  # <= 63
    variant = {"VariantName": VARIANT, "ModelName": name}
    if args.serverless_memory:
        memory = {"MemorySizeInMB": args.serverless_memory, "MaxConcurrency": MAX_CONCURRENCY}
        variant["ServerlessConfig"] = memory
    else:
        count, kind = args.serve_instance_count, args.serve_instance_type
        variant |= {"InstanceType": kind, "InitialInstanceCount": count}
    tags = [{"Key": "ProjectName", "Value": args.project_name}]
    print(f"model:   {model} ({source})\nimage:   {image}, {which}\nserving: {serving(variant)}")
    container = {"Image": image, "ModelDataUrl": model}
    sagemaker.create_model(ModelName=name, PrimaryContainer=container,
                           ExecutionRoleArn=args.role_arn, Tags=tags)  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant],
                                     Tags=tags)  # fmt: skip
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    print(f"Endpoint {name} created (its model and endpoint config have the same name).")
    if not args.wait:
        print(f"Watch it: make endpoints; delete it: make undeploy ENDPOINT={name}")
        return 0
    return wait_in_service(sagemaker, name, args)


def wait_in_service(sagemaker, name: str, args) -> int:
    """Poll until the endpoint leaves Creating: one line, redrawn in place on a terminal (a
    line per change of status elsewhere); 0 InService, 1 Failed or too long, 130 Ctrl-C."""
    started, shown, tty = time.monotonic(), None, sys.stdout.isatty()
    delete = f"make undeploy ENDPOINT={name}"
    try:
        while True:
            status = sagemaker.describe_endpoint(EndpointName=name)
            waited = time.monotonic() - started
            line = f"Endpoint {name}: {status['EndpointStatus']}"
            if tty:
                print(f"\r{line} ({duration(waited)})\033[K", end="", flush=True)
            elif status["EndpointStatus"] != shown:
                print(line, flush=True)
            shown = status["EndpointStatus"]
            if shown not in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
                break
            if waited > args.deploy_timeout:
                print("\n" * tty, end="")
                late = f"not InService after {duration(waited)} (DEPLOY_TIMEOUT)"
                sys.exit(f"error: endpoint {name} is {late}; it may still come up, and bill: "
                         f"make endpoints shows it, {delete} deletes it")  # fmt: skip
            time.sleep(args.poll)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; endpoint {name} keeps coming up (and billing): {delete}",
              file=sys.stderr)  # fmt: skip
        return 130
    if tty:
        print()  # ends the line drawn in place
    if shown == "InService":
        print(f"Try it: make predict ENDPOINT={name}\nIt bills until you delete it: {delete}")
        return 0
    print(f"FAILED: {status.get('FailureReason') or 'no reason given'}")
    print(f"Remove what is left of it: {delete}")
    return 1


# ---- undeploy ----
def existing(call, **kwargs):
    """call(**kwargs)'s answer, or None when AWS says that resource is not there."""
    try:
        return call(**kwargs)
    except Exception as error:
        if aws.error_code(error) == "ValidationException" and GONE.search(str(error)):
            return None
        raise


def undeploy(args, session) -> int:
    sagemaker, name, region = session.client("sagemaker"), args.endpoint, args.aws_region
    if not (endpoint := existing(sagemaker.describe_endpoint, EndpointName=name)):
        raise aws.Refused(f"ENDPOINT: there is no endpoint {name} in {region}; "
                          "this project's: make endpoints")  # fmt: skip
    owner = project_of(sagemaker, endpoint["EndpointArn"])
    if owner != args.project_name:
        raise aws.Refused(f"ENDPOINT: {name} is not this project's (ProjectName={owner}); "
                          "delete it in the SageMaker console")  # fmt: skip
    config = endpoint["EndpointConfigName"]  # deleted already: its models are not known
    variants = existing(sagemaker.describe_endpoint_config, EndpointConfigName=config)
    models = [v["ModelName"] for v in (variants or {}).get("ProductionVariants", [])]
    if endpoint["EndpointStatus"] != "Deleting":
        sagemaker.delete_endpoint(EndpointName=name)
    started = time.monotonic()
    while time.monotonic() - started <= args.deploy_timeout:
        if not existing(sagemaker.describe_endpoint, EndpointName=name):
            break
        time.sleep(args.poll)
    else:
        sys.exit(f"error: endpoint {name} is still Deleting after {duration(args.deploy_timeout)}"
                 f"; see: make endpoints, then again: make undeploy ENDPOINT={name}")  # fmt: skip
    deleted = [f"endpoint {name}"]
    for delete, kind, key, names in [
        (sagemaker.delete_endpoint_config, "endpoint config", "EndpointConfigName", [config]),
        (sagemaker.delete_model, "model", "ModelName", models),
    ]:
        deleted += [f"{kind} {each}" for each in names if existing(delete, **{key: each})]
    print(f"Deleted {', '.join(deleted)}.\nNothing of {name} is left billing.")
    return 0


# ---- make endpoints ----
def project_endpoints(sagemaker, project: str) -> list[dict]:
    pages = sagemaker.get_paginator("list_endpoints").paginate(SortBy="CreationTime")
    found = [e for page in pages for e in page["Endpoints"]]
    return [e for e in found if project_of(sagemaker, e["EndpointArn"]) == project]


def serving(variant: dict) -> str:
    if memory := variant.get("ServerlessConfig", {}).get("MemorySizeInMB"):
        return f"serverless {memory} MB"
    return f"{variant['InstanceType']} x {variant['InitialInstanceCount']}"


def serving_of(sagemaker, endpoint: dict) -> str:
    name = sagemaker.describe_endpoint(EndpointName=endpoint["EndpointName"])["EndpointConfigName"]
    config = existing(sagemaker.describe_endpoint_config, EndpointConfigName=name)
    return serving(config["ProductionVariants"][0]) if config else "?"


def list_endpoints(args, session) -> int:
    sagemaker, region = session.client("sagemaker"), args.aws_region
    endpoints = project_endpoints(sagemaker, args.project_name)
    if not endpoints:
        print(f"No endpoint of {args.project_name} in {region}: none is running or billing.")
        return 0
    now, width = datetime.now(timezone.utc), max(len(e["EndpointName"]) for e in endpoints)
    print(f"{'endpoint':<{width}}  {'status':<14} {'serving':<20} age")
    for e in endpoints:
        age = duration((now - e["CreationTime"]).total_seconds())
        print(f"{e['EndpointName']:<{width}}  {e['EndpointStatus']:<14} "
              f"{serving_of(sagemaker, e):<20} {age}")  # fmt: skip
    print("Each bills until deleted: make undeploy ENDPOINT=<name>")
    return 0


def main(argv=None) -> int:
    args = settings(argv)
    command = {"deploy": deploy, "undeploy": undeploy, "list": list_endpoints}[args.command]
    try:
        return command(args, aws.session(args.aws_region))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except aws.Refused as error:  # a check of ours: the setting to fix
        sys.exit(f"error: {error}")
    except Exception as error:  # AWS said no: one line, not a traceback
        if os.environ.get("DEBUG"):
            raise
        sys.exit(f"error: {aws.explain(error)} (DEBUG=1 shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
