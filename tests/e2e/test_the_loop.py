"""What a user does, on real engines: bake, build, train locally, push, train remotely.

One project is baked for the module and carried through the loop in order, as a user
would: each test starts from what the one before left.
"""

import base64
import json
import os
import re
import shutil

import pytest
from engines import (
    SINGLE_IMAGE,
    Stopwatch,
    bake,
    image_layers,
    image_of,
    make,
    metric_definitions,
    pushed_manifest_type,
    registry_tags,
    run,
    score_model,
)
from helpers import TEMPLATE_DIR, put_image_tag

PROJECT_NAME = "Digits E2E"
SLUG = "digits_e2e"
REPOSITORY = "digits-e2e"


@pytest.fixture(scope="module")
def loop(tmp_path_factory, moto_server, base_image, registry, shared_venv):
    """A baked project with strict AWS checks against moto, in a git repository, with data."""
    moto_server.reset()
    moto_server.client("ecr").create_repository(repositoryName=REPOSITORY)
    bucket = f"sagemaker-us-east-1-{moto_server.account_id}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    env = moto_server.env(
        SAGEMAKER_VALIDATE_ROLE="false",
        HOME=str(tmp_path_factory.mktemp("h")),
        PATH=f"{shared_venv}/bin:{os.environ['PATH']}",  # the venv's aws CLI
        BASE_IMAGE=base_image,  # not on make's command line: make data does not read it
    )
    out = tmp_path_factory.mktemp("bake")
    bake(
        out,
        env,
        project_name=PROJECT_NAME,
        aws_account_id=moto_server.account_id,
        ecr_repository=REPOSITORY,
        aws_checks="strict",
    )
    project = out / SLUG
    for git in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-qm", "x"],
    ):
        run(["git", *git], cwd=project)
    settings = {"VENV": shared_venv}
    make(project, "data", env=env, DATASET="digits", **settings)
    return {
        "project": project,
        "env": env,
        "settings": settings,
        "bucket": bucket,
        "moto": moto_server,
        "registry": registry,
    }


def current_image(loop) -> str:
    return image_of(loop["project"], loop["env"], loop["settings"])


def test_make_build_builds_the_image_with_the_given_base(loop):
    # the same build inputs make the same tag: an earlier run's image would be up to date
    run(["docker", "rmi", "-f", current_image(loop)], check=False)
    with Stopwatch("make build (layers cached by the module before)"):
        done = make(loop["project"], "build", env=loop["env"], timeout=2400, **loop["settings"])
    image = current_image(loop)
    commit = run(["git", "rev-parse", "--short=12", "HEAD"], cwd=loop["project"]).stdout.strip()
    assert re.fullmatch(rf"{REPOSITORY}:[0-9a-f]{{12}}", image)  # a hash of the build inputs
    assert f"building {image} from {loop['env']['BASE_IMAGE']} for linux/amd64" in done.stdout
    config = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config}}", image]).stdout)
    assert config["Labels"]["org.opencontainers.image.revision"] == commit  # and the commit
    assert config["Labels"]["sm-template.git-dirty"] == "False"
    platform = run(["docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", image])
    assert platform.stdout.strip() == "linux/amd64"  # what SageMaker's instances run
    assert config["Cmd"] == ["train"] and "SAGEMAKER_PROGRAM=train.py" in config["Env"]
    again = make(loop["project"], "build", env=loop["env"], **loop["settings"])
    assert "is up to date" in again.stdout  # nothing changed: nothing rebuilt


def test_the_build_context_holds_only_what_the_image_needs(loop):
    project = loop["project"]
    (project / ".env").write_text("AWS_SECRET_ACCESS_KEY=do-not-ship\n")
    (project / ".aws").mkdir(exist_ok=True)
    (project / ".aws" / "credentials").write_text("[default]\n")
    (project / ".venv").mkdir(exist_ok=True)
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    dockerfile = f"FROM {loop['env']['BASE_IMAGE']}\nCOPY . /context/\n"
    try:
        run(
            ["docker", "build", "-q", "-t", "sm-template-context-check", "-f", "-", "."],
            cwd=project,
            input=dockerfile,
        )
        listing = run(
            ["docker", "run", "--rm", "sm-template-context-check", "find", "/context", "-type", "f"]
        ).stdout.split()
    finally:
        run(["docker", "rmi", "-f", "sm-template-context-check"], check=False)
        for path in (".env", ".aws/credentials", ".venv/pyvenv.cfg"):
            (project / path).unlink()
    shipped = sorted(path.removeprefix("/context/") for path in listing)
    assert shipped == [
        "code/job_contract.py",
        "code/sagemaker_runtime.py",
        "code/train.py",
        "container/serve",
        "container/serving.py",
        "container/train",
        "requirements-gpu.txt",
        "requirements-uv.txt",
        "requirements.txt",
    ]


def test_train_local_leaves_a_model_that_scores_well_and_metric_lines_that_parse(loop, tmp_path):
    project = loop["project"]
    with Stopwatch("train-local, 3 epochs"):
        done = make(
            project,
            "train-local",
            env=loop["env"],
            HPARAMS="epochs=3 learning-rate=0.005",
            **loop["settings"],
        )
    assert "completed" in done.stdout
    names, accuracy = score_model(project / "outputs" / "latest", project / "data", tmp_path)
    assert names.count("1/saved_model.pb") == 1, names
    assert accuracy > 0.8, f"accuracy {accuracy:.3f} on the test channel"

    definitions = metric_definitions(project)
    log = (project / "outputs" / "latest" / "train.log").read_text()
    metric_lines = [line for line in log.splitlines() if "METRIC " in line]
    final = [d["Name"] for d in definitions if d["Name"].startswith("test:")]
    per_epoch = len(definitions) - len(final)  # train: and validation: every epoch
    assert len(metric_lines) == 3 * per_epoch + len(final)  # 3 epochs, then the test scores
    for line in metric_lines:
        matches = [d for d in definitions if re.search(d["Regex"], line)]
        assert len(matches) == 1, line
        float(re.search(matches[0]["Regex"], line).group(1))


def test_a_local_run_leaves_every_file_in_the_project_to_the_user_who_ran_it(
    loop, non_root_user, shared_venv
):
    """The containers run as root; what they write (checkpoints, the run's folders) is
    given back. Run by someone not root, in the docker group, in a copy of the project that
    is theirs."""
    project = non_root_user.copy(loop["project"], shutil.ignore_patterns("outputs", "checkpoints"))
    home = non_root_user.home
    env = {**loop["env"], "HOME": str(home)}  # AWS keys in the environment, no AWS files:
    env.update(AWS_CONFIG_FILE=f"{home}/.aws/config", AWS_SHARED_CREDENTIALS_FILE=f"{home}/.aws/c")
    installed = f"{shared_venv}/.installed-tools"  # -o: not theirs to install into, nor needed
    with Stopwatch("train-local as a user who is not root, 1 epoch"):
        done = make(
            project,
            "-o",
            installed,
            "train-local",
            env=env,
            user=non_root_user,
            HPARAMS="epochs=1",
            **loop["settings"],
        )
    assert "completed" in done.stdout
    assert (project / "outputs" / "latest" / "model.tar.gz").is_file()
    not_theirs = [
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.lstat().st_uid != non_root_user.uid
    ]
    assert not_theirs == []


def test_a_code_only_edit_rebuilds_only_the_code_layer(loop):
    project = loop["project"]
    before = current_image(loop)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nAn edit that is not a build input.\n")
    assert current_image(loop) == before  # no new image for it
    train_py = project / "code" / "train.py"
    train_py.write_text(train_py.read_text() + "\n# a code-only edit\n")
    after = current_image(loop)
    assert after != before
    with Stopwatch("rebuild after a code-only edit"):
        make(project, "build", env=loop["env"], **loop["settings"])
    old_layers, new_layers = image_layers(before), image_layers(after)
    assert len(old_layers) == len(new_layers)
    assert old_layers[:-1] == new_layers[:-1] and old_layers[-1] != new_layers[-1]


def test_push_is_refused_before_login_and_after_it_puts_the_immutable_tag_in_the_registry(loop):
    project, registry = loop["project"], loop["registry"]
    refused = make(
        project, "push", env=loop["env"], check=False, REGISTRY=registry, **loop["settings"]
    )
    assert refused.returncode != 0
    assert "no basic auth credentials" in refused.stdout  # Docker's words: the registry asked
    with Stopwatch("login + push to the local registry"):
        done = make(
            project, "login", "push", env=loop["env"], REGISTRY=registry, **loop["settings"]
        )
    assert "Login Succeeded" in done.stdout
    tag = current_image(loop).split(":", 1)[1]
    assert tag in registry_tags(registry, REPOSITORY)
    assert tag != "latest"
    assert pushed_manifest_type(registry, REPOSITORY, tag) in SINGLE_IMAGE  # never an index


def test_login_fails_with_the_aws_clis_reason_when_the_token_cannot_be_had(loop):
    env = {**loop["env"], "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens there
    done = make(
        loop["project"],
        "login",
        env=env,
        check=False,
        REGISTRY=loop["registry"],
        **loop["settings"],
    )
    assert done.returncode != 0
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"' in done.stdout


def test_login_to_a_registry_that_refuses_the_token_fails_with_dockers_reason(
    loop, another_accounts_registry
):
    done = make(
        loop["project"],
        "login",
        env=loop["env"],
        check=False,
        REGISTRY=another_accounts_registry,
        **loop["settings"],
    )
    assert done.returncode != 0
    assert "Login Succeeded" not in done.stdout
    assert (
        f"login attempt to http://{another_accounts_registry}/v2/ failed with status: "
        "401 Unauthorized" in done.stdout
    )


def test_train_remote_sends_the_job_sagemaker_needs(loop):
    project, moto = loop["project"], loop["moto"]
    put_image_tag(moto, REPOSITORY, current_image(loop).split(":", 1)[1])  # as pushed to ECR
    moto.start_recording()
    with Stopwatch("train-remote (submit to moto)"):
        done = make(
            project,
            "train-remote",
            env=loop["env"],
            REGISTRY=loop["registry"],
            INSTANCE_TYPE="ml.c5.xlarge",
            INSTANCE_COUNT=1,  # each host reads files of its own: data/ has one a channel
            HPARAMS="epochs=4 batch-size=32",
            **loop["settings"],
        )
    # the job's outcome (moto completes every job at once) is test_train_remote_outcomes.py's
    [job] = re.findall(r"^Training job (\S+) submitted\.$", done.stdout, re.MULTILINE)
    creates = [
        r
        for r in moto.recorded_requests()
        if r.get("headers", {}).get("X-Amz-Target", "").endswith(".CreateTrainingJob")
    ]
    assert len(creates) == 1
    body = creates[0]["body"]
    request = json.loads(body if body.lstrip().startswith("{") else base64.b64decode(body))
    assert request["TrainingJobName"] == job
    tag = current_image(loop).split(":", 1)[1]
    prefix = f"s3://{loop['bucket']}/projects/{SLUG}"
    assert (
        request["AlgorithmSpecification"]["TrainingImage"]
        == f"{loop['registry']}/{REPOSITORY}:{tag}"
    )
    assert request["RoleArn"] == f"arn:aws:iam::{moto.account_id}:role/SageMakerExecutionRole"
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["HyperParameters"] == {"epochs": "4", "batch-size": "32"}
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions(project)
    assert {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    } == {c: f"{prefix}/data/{c}/" for c in ("training", "validation", "test")}
    assert request["OutputDataConfig"]["S3OutputPath"] == prefix
    assert {"Key": "ProjectName", "Value": PROJECT_NAME} in request["Tags"]
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 86400
    keys = [
        o["Key"]
        for o in moto.client("s3").list_objects_v2(
            Bucket=loop["bucket"], Prefix=f"projects/{SLUG}/data/"
        )["Contents"]
    ]
    assert sorted(keys) == [
        f"projects/{SLUG}/data/test/data.npz",
        f"projects/{SLUG}/data/training/data.npz",
        f"projects/{SLUG}/data/validation/data.npz",
    ]


def test_a_job_submitted_without_waiting_says_how_to_follow_and_stop_it_and_both_work(loop):
    project, env, settings = loop["project"], loop["env"], loop["settings"]
    done = make(project, "train-remote", "WAIT=0", env=env, REGISTRY=loop["registry"], **settings)
    [(job, same_job)] = re.findall(
        r"Follow it: make logs JOB=(\S+); stop it: make stop JOB=(\S+)$", done.stdout, re.MULTILINE
    )
    assert job == same_job
    logs = make(project, "logs", f"JOB={job}", env=env, **settings)
    assert f"Training job {job}: Completed" in logs.stdout  # moto's jobs complete at once
    stop = make(project, "stop", f"JOB={job}", env=env, **settings)
    assert f"Training job {job} has already ended (Completed); nothing to stop" in stop.stdout


def test_a_failing_train_py_makes_train_local_fail_with_its_reason(loop):
    project = loop["project"]
    train_py = project / "code" / "train.py"
    original = train_py.read_text()
    failing = "def train(hp):\n    raise RuntimeError('boom from the e2e test')\n\n\n"
    main_guard = 'if __name__ == "__main__":'
    assert main_guard in original
    train_py.write_text(original.replace(main_guard, failing + main_guard))  # the last def wins
    try:
        done = make(project, "train-local", env=loop["env"], check=False, **loop["settings"])
    finally:
        train_py.write_text(original)
    assert done.returncode != 0
    assert "FAILED: RuntimeError: boom from the e2e test" in done.stdout
    assert (project / "outputs" / "latest" / "failure").read_text().startswith("RuntimeError")


def test_nothing_is_left_behind_and_make_clean_removes_outputs_but_the_runs_history(loop):
    project = loop["project"]
    containers = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert [name for name in containers if name.startswith("running-")] == []
    make(project, "clean", env=loop["env"], **loop["settings"])
    assert [p.name for p in (project / "outputs").iterdir()] == ["mlflow"]  # make runs' store
    assert (project / "data" / "training" / "data.npz").exists()  # data is kept


def test_the_demo_bakes_a_project_and_trains_it_offline(tmp_path, base_image, shared_venv):
    demo_dir = tmp_path / "demo"
    env = {**os.environ, "BASE_IMAGE": base_image, "VENV": shared_venv}
    with Stopwatch("make demo (offline, build cached)"):
        done = run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(TEMPLATE_DIR),
                "demo",
                "OFFLINE=1",
                f"DEMO_DIR={demo_dir}",
                "HPARAMS=epochs=1",
            ],
            env=env,
            timeout=2400,
        )
    assert "completed" in done.stdout
    assert list(demo_dir.glob("*/outputs/latest/model.tar.gz"))
