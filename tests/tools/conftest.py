"""Fixtures of the tools' unit tests: they import smt and call it in-process, in a copy of one
project baked once per session (no bake per test), against the session's moto server."""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import OTHER_TAG, OTHERS, PROJECT_TAG, bake_with_data, free_port, price_list
from smt import cli, project

SLUG = "mnist_on_sagemaker"
USER_MODULES = ("job_contract", "sagemaker_runtime", "run_estimator")


@pytest.fixture(scope="session")
def baked(tmp_path_factory) -> Path:
    """A project baked with the defaults (AWS checks skipped) for moto's account, with tiny
    training, validation and test channels in data/."""
    return bake_with_data(tmp_path_factory.mktemp("baked"), SLUG)


@pytest.fixture
def project_dir(baked, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the baked project, as the working directory; smt finds it anew."""
    copy = tmp_path / SLUG
    shutil.copytree(baked, copy, symlinks=True)
    monkeypatch.chdir(copy)
    project.root.cache_clear()
    for name in USER_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    yield copy
    project.root.cache_clear()
    for name in USER_MODULES:
        sys.modules.pop(name, None)


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def smt(project_dir, capsys):
    """smt("train-remote", "--wait", "0"): the CLI in-process, in project_dir: its exit code
    and what it printed."""

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as done:  # argparse's own errors
            code = done.code
        printed = capsys.readouterr()
        return Ran(code, printed.out, printed.err)

    return run


@pytest.fixture
def aws(moto, monkeypatch):
    """This process's environment pointed at the test's (emptied) moto server."""
    for key, value in moto.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return moto


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, made once per worker: a new store costs about 2 s of
    migrations (and mlflow's import 3 s), where a copy of this one costs nothing."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates it
    return path


@pytest.fixture(autouse=True)
def mlflow_store(migrated_store, tmp_path, monkeypatch) -> str:
    """Each test's own MLflow store, a copy of the migrated one, as MLFLOW_TRACKING_URI: what
    smt tracks goes there, not into a store of each project copy made anew (2 s a test). A
    test of the embedded default deletes MLFLOW_TRACKING_URI."""
    path = tmp_path / "mlflow" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(migrated_store, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(autouse=True)
def no_price_list(tmp_path, monkeypatch):
    """The Price List API out of reach (a port nothing listens on: "price unknown" at once) and
    an empty cache of prices, unless a test gives them: no test reads the developer's cache,
    and moto's recording holds no pricing request it did not ask for."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def priced(overlay, monkeypatch):
    """AWS behind the overlay, whose Price List API says ml.* costs $0.5/h to train and $0.25/h
    to serve, and a CodeBuild minute $0.01 on BUILD_GENERAL1_MEDIUM (more on others)."""
    builds = {"g1.small": 0.005, "g1.medium": 0.01, "g1.large": 0.02, "ARM:g1.medium": 0.03}
    overlay.json_answers["AWSPriceListService.GetProducts"] = price_list(
        {"Training": 0.5, "Hosting": 0.25, "CodeBuild": builds}
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", overlay.url)
    return overlay


@dataclass
class Billing:
    job: str  # running, with a warm pool to come (KeepAlivePeriodInSeconds)
    warm: str  # completed, its warm pool Available
    endpoint: str
    bucket: str
    repository: str
    listed: dict  # (filter, value) -> the training jobs ListTrainingJobs gives for it


def endpoint_of(moto, name: str, tags: dict) -> None:
    sagemaker, tagged = moto.client("sagemaker"), [{"Key": k, "Value": v} for k, v in tags.items()]
    role = f"arn:aws:iam::{moto.account_id}:role/r"
    container = {"Image": "x:1", "ModelDataUrl": "s3://b/m.tar.gz"}
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=role, Tags=tagged,
                           PrimaryContainer=container)  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
               "InitialInstanceCount": 2}  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant],
                                     Tags=tagged)  # fmt: skip
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tagged)


@pytest.fixture
def billing(smt, aws, priced, project_dir, monkeypatch) -> Billing:
    """A moto account where this project bills: its bootstrap stack (a file in the bucket, an
    image in the repository), a running training job, a warm pool, an endpoint; and another
    project's running job, warm pool and endpoint. moto makes every job Completed: the overlay
    lists them as running or warm (ListTrainingJobs by status), scripts their describes,
    answers StopTrainingJob and UpdateTrainingJob (moto has neither). Recording from here."""
    from helpers import create_training_job, put_image_tag
    from smt import settings

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    assert smt("bootstrap").code == 0
    values = settings.load("train-remote", project_dir, environ={})
    bucket = values.s3_output_path.removeprefix("s3://").split("/")[0]
    aws.client("s3").put_object(Bucket=bucket, Key="mnist-on-sagemaker/model.tar.gz", Body=b"m")
    put_image_tag(aws, values.ecr_repository, "v1")
    seeded = Billing("mnist-on-sagemaker-run", "mnist-on-sagemaker-warm",
                     "mnist-on-sagemaker-ep", bucket, values.ecr_repository, {})  # fmt: skip
    for name, tags in [(seeded.job, PROJECT_TAG), (seeded.warm, PROJECT_TAG),
                       (f"{OTHERS}-run", OTHER_TAG), (f"{OTHERS}-warm", OTHER_TAG)]:  # fmt: skip
        create_training_job(aws, name, tags=tags)
    endpoint_of(aws, seeded.endpoint, PROJECT_TAG)
    endpoint_of(aws, f"{OTHERS}-ep", OTHER_TAG)
    jobs = (seeded.job, seeded.warm, f"{OTHERS}-run", f"{OTHERS}-warm")
    describe = aws.client("sagemaker").describe_training_job
    described = {name: describe(TrainingJobName=name) for name in jobs}
    listed = seeded.listed
    listed[("StatusEquals", "InProgress")] = [seeded.job, f"{OTHERS}-run"]
    listed[("WarmPoolStatusEquals", "Available")] = [seeded.warm, f"{OTHERS}-warm"]

    def listing(request: dict, _moto_answer) -> dict:
        names = [n for (key, value), ns in listed.items() if request.get(key) == value for n in ns]
        running = request.get("StatusEquals", "Completed")
        return {"TrainingJobSummaries": [
            {"TrainingJobName": n, "TrainingJobArn": described[n]["TrainingJobArn"],
             "CreationTime": described[n]["CreationTime"].timestamp(),
             "TrainingJobStatus": running, "WarmPoolStatus": {"Status": "Available"}}
            for n in names]}  # fmt: skip

    priced.json_answers["SageMaker.ListTrainingJobs"] = listing
    priced.json_answers["SageMaker.UpdateTrainingJob"] = lambda r, _: {"TrainingJobArn": "x"}
    config = {**described[seeded.job]["ResourceConfig"], "KeepAlivePeriodInSeconds": 600}
    running = {"TrainingJobStatus": "InProgress", "ResourceConfig": config}
    priced.statuses[seeded.job] = [running, running, {"TrainingJobStatus": "Stopped"}]
    priced.answer_stop = True
    monkeypatch.setenv("AWS_ENDPOINT_URL", priced.url)
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.05)
    aws.start_recording()
    return seeded
