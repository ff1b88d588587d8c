"""make build-remote against the moto server: the build context uploaded as a zip, the
CodeBuild build started with the project's buildspec and the tag make build gives, its end
followed. moto's CodeBuild ignores StartBuild's overrides and makes each build SUCCEEDED at
once: the requests sent are checked (against botocore's API model, and for what they ask),
and the overlay answers as AWS does for a running, logging or failed build."""

import ast
import io
import re
import time
import zipfile
from types import SimpleNamespace

import pytest
import yaml
from helpers import actions, doctor_report, put_image_tag, valid_against_the_model, valid_params
from smt import bootstrap, build_remote
from smt import settings as settings_table

PROJECT = "mnist-on-sagemaker-image"
BUILD_ROLE = "arn:aws:iam::210987654321:role/build"
# The build context of the baked project: what .dockerignore lets through, and the two files
# Docker always sends
CONTEXT = [".dockerignore", "Dockerfile", "code/job_contract.py", "code/sagemaker_runtime.py",
           "code/train.py", "container/serve", "container/serving.py", "container/train",
           "requirements-gpu.txt", "requirements-uv.txt", "requirements.txt"]  # fmt: skip
START = "CodeBuild_20161006.StartBuild"


def one_line(done) -> str:
    assert "Traceback" not in done.err, done.err
    [line] = done.err.strip().splitlines()
    return line


def failed_with(done, pattern: str) -> None:
    """Exit 1, and one line on stderr that matches `pattern`."""
    assert done.code == 1
    line = one_line(done)
    assert re.fullmatch(pattern, line), line


@pytest.fixture
def account(aws, project_dir):
    """The bucket of S3_OUTPUT_PATH, the ECR repository (no image yet) and the CodeBuild
    project bootstrap would make (moto's CloudFormation cannot make one)."""
    values = settings_table.load("build-remote", project_dir, {"CODEBUILD_PROJECT": PROJECT}, {})
    bucket = values.s3_output_path.removeprefix("s3://").split("/")[0]
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("ecr").create_repository(repositoryName=values.ecr_repository)
    aws.client("codebuild").create_project(
        name=PROJECT, source={"type": "S3", "location": f"{bucket}/build/context.zip"},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole=BUILD_ROLE,
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_MEDIUM", "privilegedMode": True},
    )  # fmt: skip
    aws.start_recording()
    return bucket


def build(smt, *options: str):
    return smt("build-remote", "--codebuild-project", PROJECT, *options)


def content_tag(smt) -> str:
    done = smt("print", "IMAGE_TAG")
    assert done.code == 0, done.err
    return done.out.strip()


def uploaded(aws, bucket: str) -> tuple[str, zipfile.ZipFile]:
    [put] = [name for name in actions(aws) if name.startswith("PUT ")]
    key = put.split("?")[0].split(f"/{bucket}/", 1)[1]
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return key, zipfile.ZipFile(io.BytesIO(body))


def test_the_uploaded_zip_holds_exactly_the_build_context(smt, aws, account, project_dir):
    # what .dockerignore keeps out: secrets, bytecode, data, the virtualenv, everything else
    for path in (".env", ".aws/credentials", "code/__pycache__/train.cpython-312.pyc",
                 "code/notes.pyc", ".venv/pyvenv.cfg", "notes.md"):  # fmt: skip
        (project_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / path).write_text("not for the image\n")

    done = build(smt)

    assert done.code == 0, done.err
    key, archive = uploaded(aws, account)
    assert sorted(archive.namelist()) == CONTEXT
    assert archive.read("code/train.py") == (project_dir / "code/train.py").read_bytes()
    mode = archive.getinfo("container/train").external_attr >> 16
    assert mode & 0o111, "container/train must stay executable in the image"
    prefix = settings_table.load("build-remote", project_dir, {"CODEBUILD_PROJECT": PROJECT}, {})
    assert f"s3://{account}/{key}" == f"{prefix.s3_output_path}/build/{content_tag(smt)}.zip"


def test_the_build_starts_with_the_buildspec_the_source_and_the_tag_make_build_gives(
    smt, aws, account, project_dir, capsys
):
    started = time.monotonic()
    done = build(smt)
    seconds = time.monotonic() - started

    assert done.code == 0, done.err
    with capsys.disabled():
        print(f"\nbuild-remote on moto: {len(actions(aws))} requests, {seconds:.1f} s")
    tag = content_tag(smt)
    registry = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
    [start] = valid_against_the_model(aws, "StartBuild", "codebuild")
    variables = {v["name"]: v["value"] for v in start["environmentVariablesOverride"]}
    assert variables["IMAGE_URI"] == f"{registry}/mnist_on_sagemaker:{tag}"
    assert variables["REGISTRY"] == registry
    assert variables["PLATFORM"] == "linux/amd64"
    assert variables["REQUIREMENTS"] == "requirements.txt"
    assert start["projectName"] == PROJECT
    assert start["sourceTypeOverride"] == "S3"
    key, _ = uploaded(aws, account)
    assert start["sourceLocationOverride"] == f"{account}/{key}"
    assert start["buildspecOverride"] == (project_dir / "infra/buildspec.yml").read_text()
    assert start["timeoutInMinutesOverride"] == 60  # BUILD_TIMEOUT's default, 3600 s
    valid_against_the_model(aws, "BatchGetBuilds", "codebuild")
    assert f"pushed {variables['IMAGE_URI']}" in done.out


def test_an_image_already_in_ecr_is_not_built_again(smt, aws, account, project_dir):
    put_image_tag(aws, "mnist_on_sagemaker", content_tag(smt))
    aws.start_recording()

    done = build(smt)

    assert done.code == 0, done.err
    assert "is in ECR already" in done.out
    assert START not in actions(aws)
    assert not [name for name in actions(aws) if name.startswith("PUT ")]


def test_a_missing_repository_names_bootstrap_before_any_upload(smt, aws, account):
    aws.client("ecr").delete_repository(repositoryName="mnist_on_sagemaker")
    aws.start_recording()

    done = build(smt)

    assert done.code == 1
    assert one_line(done) == (
        "error: the ECR repository mnist_on_sagemaker does not exist in us-east-1 yet; "
        "make bootstrap makes it"
    )
    assert actions(aws) == ["AmazonEC2ContainerRegistry_V20150921.DescribeImages"]


def answers(*builds: dict):
    """BatchGetBuilds' answers, one per call (the last repeats), merged into moto's."""
    script = list(builds)

    def answer(request, moto_answer):
        [found] = moto_answer["builds"]
        return {"builds": [{**found, **(script.pop(0) if len(script) > 1 else script[0])}]}

    return answer


RUNNING = {"buildStatus": "IN_PROGRESS", "currentPhase": "BUILD"}


def test_a_failed_build_says_its_failed_phase_and_why_in_one_line(
    smt, aws, account, overlay, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    why = 'Error while executing command: docker push "$IMAGE_URI".\nReason: exit status 1'
    overlay.json_answers["CodeBuild_20161006.BatchGetBuilds"] = answers({
        "buildStatus": "FAILED", "currentPhase": "COMPLETED",
        "phases": [{"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED"},
                   {"phaseType": "BUILD", "phaseStatus": "FAILED",
                    "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": why}]},
                   {"phaseType": "POST_BUILD", "phaseStatus": "SUCCEEDED"}],
    })  # fmt: skip

    done = build(smt)

    failed_with(done, rf"error: build {PROJECT}:\S+ FAILED: phase BUILD FAILED: Error while "
                r'executing command: docker push "\$IMAGE_URI"\. '
                "Reason: exit status 1")  # fmt: skip


def test_the_build_shows_its_phase_and_newest_log_line_on_one_progress_line(
    smt, aws, account, overlay, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.05)
    logs = aws.client("logs")
    group, stream = f"/aws/codebuild/{PROJECT}", "build-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now, "message": "Step 1/12 : FROM python:3.12\n"},
        {"timestamp": now + 1, "message": "Step 2/12 : ENV PYTHONUNBUFFERED=1\n"},
    ])  # fmt: skip
    where = {"logs": {"groupName": group, "streamName": stream}}
    overlay.json_answers["CodeBuild_20161006.BatchGetBuilds"] = answers(
        {**RUNNING, **where}, {**RUNNING, **where}, {"buildStatus": "SUCCEEDED", **where}
    )

    done = build(smt)

    assert done.code == 0, done.err
    assert re.search(r"^build BUILD \(\d+ s\) Step 2/12 : ENV PYTHONUNBUFFERED=1$", done.out, re.M)
    assert "pushed " in done.out


def test_ctrl_c_says_the_build_goes_on_and_how_to_stop_it(smt, aws, account, overlay, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    overlay.json_answers["CodeBuild_20161006.BatchGetBuilds"] = answers(RUNNING)

    sleep, poll = time.sleep, 0.0123  # only the build's follow-up sleeps this long

    def interrupted(seconds):
        if seconds == poll:  # Ctrl-C while following; botocore's retry sleeps go on as they are
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr("smt.aws.POLL_SECONDS", poll)
    monkeypatch.setattr(build_remote.time, "sleep", interrupted)

    done = build(smt)

    assert done.code == 130
    [start] = valid_against_the_model(aws, "StartBuild", "codebuild")
    stop = re.search(r"to stop it: (aws codebuild stop-build --id (\S+) --region us-east-1)$",
                     done.out, re.M)  # fmt: skip
    assert stop, done.out
    assert stop[2].startswith(f"{PROJECT}:")


def test_a_build_still_running_after_build_timeout_says_so_and_how_to_stop_it(
    smt, aws, account, overlay, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    overlay.json_answers["CodeBuild_20161006.BatchGetBuilds"] = answers(RUNNING)
    clock = iter(range(0, 10_000, 200))  # 200 s a look, no real wait
    fake = SimpleNamespace(monotonic=lambda: next(clock), sleep=lambda seconds: None)
    monkeypatch.setattr(build_remote, "time", fake)

    done = build(smt, "--build-timeout", "300")

    failed_with(done, rf"error: build ({PROJECT}:\S+) is still BUILD after 300 s "
                r"\(BUILD_TIMEOUT\); the build goes on in CodeBuild; to stop it: "
                r"aws codebuild stop-build --id \1 --region us-east-1")  # fmt: skip
    [start] = valid_against_the_model(aws, "StartBuild", "codebuild")
    assert start["timeoutInMinutesOverride"] == 5  # CodeBuild stops it then


def test_the_buildspec_builds_for_the_platform_without_provenance_and_pushes_the_tag(
    project_dir,
):
    spec = yaml.safe_load((project_dir / "infra/buildspec.yml").read_text())
    commands = " ".join(spec["phases"]["build"]["commands"])
    assert "--provenance=false" in commands
    assert '--platform "$PLATFORM"' in commands
    assert '-t "$IMAGE_URI"' in commands and 'docker push "$IMAGE_URI"' in commands
    assert "pre_build" in spec["phases"] and "post_build" not in spec["phases"]
    # each variable the buildspec reads is one smt passes, or one CodeBuild sets
    values = settings_table.derive(
        settings_table.load("build-remote", project_dir, {"CODEBUILD_PROJECT": PROJECT}, {})
    )
    text = (project_dir / "infra/buildspec.yml").read_text()
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    read |= set(re.findall(r"--build-arg ([A-Z][A-Z0-9_]*)", text))
    assert read - {"AWS_REGION"} <= set(build_remote.variables(values))


def test_every_output_of_the_stack_is_a_setting_bootstrap_writes(project_dir):
    text = (project_dir / "infra/stack.yaml").read_text()
    outputs = re.findall(r"^  (\w+):\n    Value:", text.split("\nOutputs:\n")[1], re.M)
    assert "CodebuildProject" in outputs
    assert {bootstrap.setting_of(o) for o in outputs} <= set(settings_table.BY_NAME)


def test_the_build_role_reaches_only_the_build_prefix_the_repository_and_its_log_group(
    smt, aws, project_dir
):
    assert smt("bootstrap").code == 0
    listed = aws.client("cloudformation").list_stack_resources(StackName="mnist-on-sagemaker")
    [role] = [r["PhysicalResourceId"] for r in listed["StackResourceSummaries"]
              if r["LogicalResourceId"] == "BuildRole"]  # fmt: skip
    iam = aws.client("iam")
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "codebuild.amazonaws.com"}]
    [policy] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto keeps a role's policy from CloudFormation as repr()
        document = ast.literal_eval(document)
    reach = {}
    for statement in document["Statement"]:
        named = statement["Action"]
        for action in named if isinstance(named, list) else [named]:
            reach[action] = statement["Resource"]
    values = settings_table.load("train-remote", project_dir, environ={})
    bucket = values.s3_output_path.removeprefix("s3://").split("/")[0]
    assert reach["s3:GetObject"] == f"arn:aws:s3:::{bucket}/mnist-on-sagemaker/build/*"
    assert not [a for a in reach if a.startswith("s3:Put")]
    assert reach["ecr:PutImage"] == (
        "arn:aws:ecr:us-east-1:210987654321:repository/mnist_on_sagemaker"
    )
    assert [a for a, where in reach.items() if where == "*"] == ["ecr:GetAuthorizationToken"]
    assert reach["logs:PutLogEvents"].endswith(f":log-group:/aws/codebuild/{PROJECT}:*")


@pytest.mark.parametrize(
    ("project", "status", "says"),
    [
        (PROJECT, "OK", f"build-remote (CodeBuild project {PROJECT}) works here; build "
         "needs a Docker engine"),
        ("", "WARN", "neither build (no Docker engine answers) nor build-remote"),
    ],
)  # fmt: skip
def test_doctor_says_which_of_build_and_build_remote_work_here(
    smt, aws, project_dir, monkeypatch, project, status, says
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    done = smt("doctor", "--codebuild-project", project) if project else smt("doctor")
    report = doctor_report(done.out)
    assert report["builds"].startswith(f"{status} {says}"), report["builds"]
    docker = "WARN" if project else "FAIL"
    assert report["docker"].startswith(docker), report["docker"]
    if status == "WARN":  # the docker line's FAIL already fails doctor
        assert "-> fix: make bootstrap, then make build-remote" in report["builds"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CODEBUILD_PROJECT", "-image", "'-image' is not a CodeBuild project name"),
        ("CODEBUILD_PROJECT", "my image", "'my image' is not a CodeBuild project name"),
        ("CODEBUILD_PROJECT", "p" * 151, "is not a CodeBuild project name"),
        ("BUILD_TIMEOUT", "299", "'299' is not a whole number of seconds from 300 to 129600"),
        ("BUILD_TIMEOUT", "129601", "'129601' is not a whole number of seconds from 300"),
        ("BUILD_TIMEOUT", "an hour", "'an hour' is not a whole number of seconds"),
    ],
)
def test_a_bad_build_remote_setting_is_one_line_naming_it(smt, aws, name, value, says):
    aws.start_recording()
    given = {"CODEBUILD_PROJECT": PROJECT, name: value}
    options = [f"--{key.lower().replace('_', '-')}={val}" for key, val in given.items()]
    done = smt("build-remote", *options)
    assert done.code == 2
    line = one_line(done)
    assert line.startswith(f"error: {name}: ") and says in line, line
    assert actions(aws) == []  # refused before any request


def test_build_remote_without_a_codebuild_project_names_bootstrap(smt, aws):
    aws.start_recording()
    done = smt("build-remote")
    assert done.code == 2
    line = one_line(done)
    assert line.startswith("error: CODEBUILD_PROJECT: make build-remote needs it"), line
    assert "make bootstrap makes it" in line
    assert actions(aws) == []


def test_cost_limit_refuses_a_build_over_it_with_its_price_line_before_any_upload(
    smt, aws, account, priced
):
    done = build(smt, "--cost-limit", "0.5")

    assert done.code == 2
    assert ("price: build on BUILD_GENERAL1_MEDIUM x 60 min (BUILD_TIMEOUT) x $0.01/min"
            " = $0.60 at most") in done.out  # fmt: skip
    assert one_line(done) == (
        "error: COST_LIMIT: the worst case ($0.60) is over COST_LIMIT=0.5; "
        "choose a shorter BUILD_TIMEOUT, or raise COST_LIMIT"
    )
    assert START not in actions(aws)
    assert not [name for name in actions(aws) if name.startswith("PUT ")]
    [(_, asked)] = priced.answered  # moto records no request of a service it lacks
    valid_params("pricing", "GetProducts", asked)
    assert asked["ServiceCode"] == "CodeBuild"
    assert asked["Filters"] == [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}]


def test_a_shorter_build_timeout_lowers_the_worst_case_under_cost_limit_and_the_build_starts(
    smt, aws, account, priced
):
    done = build(smt, "--build-timeout", "1800", "--cost-limit", "0.5")

    assert done.code == 0, done.err
    assert "x 30 min (BUILD_TIMEOUT) x $0.01/min = $0.30 at most" in done.out
    assert START in actions(aws)


def test_price_unknown_when_the_price_list_does_not_answer_and_the_build_goes_on(smt, aws, account):
    """conftest's no_price_list: the Price List API at a port nothing listens on."""
    done = build(smt, "--cost-limit", "0.5")

    assert done.code == 0, done.err
    assert "price: build on BUILD_GENERAL1_MEDIUM: price unknown (AWS does not answer" in done.out
    assert "COST_LIMIT not checked" in done.out
    assert START in actions(aws)


def test_a_missing_codebuild_project_names_bootstrap_before_any_upload(smt, aws, account):
    aws.client("codebuild").delete_project(name=PROJECT)
    aws.start_recording()

    done = build(smt)

    failed_with(done, f"error: the CodeBuild project {PROJECT} does not exist in us-east-1; "
                "make bootstrap makes it")  # fmt: skip
    assert not [name for name in actions(aws) if name.startswith("PUT ")]
    assert START not in actions(aws)
