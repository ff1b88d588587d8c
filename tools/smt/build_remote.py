"""make build-remote: the image built and pushed by CodeBuild, for a machine without Docker
(SageMaker Studio, an Apple Silicon laptop, a locked-down CI). The build context (what
.dockerignore lets through) goes to S3 as a zip; the project's infra/buildspec.yml builds it
for linux/amd64 and pushes the tag `make build` would give, so train-remote, tune and deploy
find it as usual."""

import io
import math
import time
import zipfile

from smt import aws, image, prices, project
from smt.errors import Failure

BUILDSPEC = "infra/buildspec.yml"
# the CodeBuild role of infra/stack.yaml reads the bucket only under BASE_JOB_NAME/build/
CONTEXT_FOLDER = "build"
DONE = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"}  # a build's final statuses


def context_files(project_dir) -> list[str]:
    """The files `docker build` would send: .dockerignore's rules as Docker applies them
    (docker-py's implementation of them; Dockerfile and .dockerignore are always sent)."""
    from docker.utils.build import exclude_paths

    ignore = project_dir / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    found = exclude_paths(str(project_dir), patterns)
    return sorted(path for path in found if (project_dir / path).is_file())


def context_zip(project_dir) -> bytes:
    """The build context as a zip, each file's permissions kept (container/train runs)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in context_files(project_dir):
            archive.write(project_dir / path, path)
    return buffer.getvalue()


def variables(settings) -> dict[str, str]:
    """What infra/buildspec.yml reads: the image's name and the build's arguments."""
    state = project.git_state()
    return {"IMAGE_URI": settings.remote_image, "REGISTRY": settings.registry,
            "PLATFORM": settings.platform, **image.build_arguments(settings),
            "GIT_COMMIT": state["commit"], "GIT_DIRTY": str(state["dirty"])}  # fmt: skip


def build_remote(settings) -> int:
    buildspec = settings.project_dir / BUILDSPEC
    if not buildspec.is_file():
        raise Failure(
            f"{BUILDSPEC} is missing: make build-remote runs it; restore it (make update)"
        )
    session = aws.session(settings.aws_region)
    ecr, name = session.client("ecr"), settings.remote_image
    try:  # the repository's tags are immutable: a second push of a tag fails
        ecr.describe_images(repositoryName=settings.ecr_repository,
                            imageIds=[{"imageTag": settings.image_tag}])  # fmt: skip
        print(f"image {name} is in ECR already (build inputs unchanged)")
        return 0
    except ecr.exceptions.ImageNotFoundException:
        pass
    except ecr.exceptions.RepositoryNotFoundException:
        raise Failure(f"the ECR repository {settings.ecr_repository} does not exist in "
                      f"{settings.aws_region} yet; make bootstrap makes it") from None  # fmt: skip
    codebuild = session.client("codebuild")
    found = codebuild.batch_get_projects(names=[settings.codebuild_project])["projects"]
    if not found:
        raise Failure(f"the CodeBuild project {settings.codebuild_project} does not exist in "
                      f"{settings.aws_region}; make bootstrap makes it")  # fmt: skip
    # COST_LIMIT: before anything is uploaded or started
    prices.line(settings, "build-remote", found[0]["environment"]["computeType"])
    bucket, prefix = aws.split_s3(settings.s3_output_path)
    key = "/".join(filter(None, [prefix, CONTEXT_FOLDER, f"{settings.image_tag}.zip"]))
    archive = context_zip(settings.project_dir)
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=archive)
    print(f"build context ({len(archive) / 1e6:.1f} MB) uploaded to s3://{bucket}/{key}")
    build = codebuild.start_build(
        projectName=settings.codebuild_project,
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{bucket}/{key}",
        buildspecOverride=buildspec.read_text(),
        timeoutInMinutesOverride=math.ceil(settings.build_timeout / 60),
        environmentVariablesOverride=[{"name": key, "value": value, "type": "PLAINTEXT"}
                                      for key, value in variables(settings).items()],
    )["build"]  # fmt: skip
    print(f"building {name} in CodeBuild: build {build['id']}", flush=True)
    try:
        build = follow(session, build, settings.build_timeout)
    except KeyboardInterrupt:
        print(f"\n{stop_hint(build, settings.aws_region)}", flush=True)
        raise
    if build["buildStatus"] != "SUCCEEDED":
        raise Failure(f"build {build['id']} {build['buildStatus']}: {failed_phase(build)}")
    print(f"pushed {name}")
    return 0


def follow(session, build: dict, timeout: float) -> dict:
    """The build, once it is done, its phase and newest log line on one progress line.
    boto3 has no CodeBuild waiter, hence this loop (a look every POLL_SECONDS)."""
    codebuild, logs, progress = session.client("codebuild"), session.client("logs"), aws.Progress()
    started, token, line = time.monotonic(), None, ""
    while True:
        [build] = codebuild.batch_get_builds(ids=[build["id"]])["builds"]
        where = build.get("logs", {})
        if where.get("groupName") and where.get("streamName"):  # once the build has started
            more = {"nextToken": token} if token else {}
            events = logs.get_log_events(logGroupName=where["groupName"], startFromHead=True,
                                         logStreamName=where["streamName"], **more)  # fmt: skip
            token = events["nextForwardToken"]
            said = [e["message"].strip() for e in events["events"] if e["message"].strip()]
            line = said[-1][:100] if said else line
        elapsed = time.monotonic() - started
        progress.show(f"build {build.get('currentPhase', '?')} ({elapsed:.0f} s) {line}".rstrip())
        if build["buildStatus"] in DONE:
            progress.end()
            return build
        if elapsed > timeout:
            progress.end()
            still = f"build {build['id']} is still {build.get('currentPhase')} after {timeout:g} s"
            raise Failure(f"{still} (BUILD_TIMEOUT); {stop_hint(build, session.region_name)}")
        time.sleep(aws.POLL_SECONDS)


def stop_hint(build: dict, region: str) -> str:
    stop = f"aws codebuild stop-build --id {build['id']} --region {region}"
    return f"the build goes on in CodeBuild; to stop it: {stop}"


def failed_phase(build: dict) -> str:
    """The phase that failed and why, in one line."""
    failed = [p for p in build.get("phases", [])
              if p.get("phaseStatus") not in (None, "SUCCEEDED")]  # fmt: skip
    if not failed:
        return f"no phase says why; aws codebuild batch-get-builds --ids {build['id']}"
    phase = failed[0]
    contexts = [" ".join(c.get("message", "").split()) for c in phase.get("contexts", [])]
    why = "; ".join(filter(None, contexts)) or phase["phaseStatus"]
    return f"phase {phase['phaseType']} {phase['phaseStatus']}: {why}"
