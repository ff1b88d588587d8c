"""Every run an MLflow run (smt/tracking.py, remote_runs.py, runs.py), read back as a user
would, with MlflowClient, from a real SQLite store (the embedded default, or the test's own
MLFLOW_TRACKING_URI: conftest's mlflow_store); SageMaker is the moto server, behind the
overlay where moto cannot say what a job does (status_overlay.StatusOverlay)."""

import json
import re
import socket
import time
from types import SimpleNamespace

import pytest
import test_endpoints
import test_train_remote
import test_tune_remote
from helpers import create_training_job, free_port
from smt import settings, tracking, train
from status_overlay import ANY_JOB
from test_train_remote import BUCKET, OUTPUT, REPOSITORY, RUNNING, TAG, submitted
from test_tune_remote import summary, tuning

# the fixtures of those tests, used here as there
account, behind_overlay = test_train_remote.account, test_train_remote.behind_overlay
ready, deploy_account = test_tune_remote.ready, test_endpoints.account

EXPERIMENT = "MNIST on SageMaker"  # the baked project's PROJECT_NAME
COMPLETED = {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"}
LOG = ["Epoch 1/2", "METRIC train:loss=0.5 epoch=1", "METRIC train:accuracy=0.8 epoch=1",
       "METRIC validation:loss=0.6 epoch=1", "METRIC validation:accuracy=0.75 epoch=1",
       "Epoch 2/2", "METRIC train:loss=0.25 epoch=2", "METRIC train:accuracy=0.9 epoch=2",
       "METRIC validation:loss=0.4 epoch=2", "METRIC validation:accuracy=0.85 epoch=2",
       "METRIC test:loss=0.45", "METRIC test:accuracy=0.84"]  # fmt: skip
HISTORY = {  # each metric's (epoch, value) in LOG's order; test's, printed once: the last epoch
    "train:loss": [(1, 0.5), (2, 0.25)], "train:accuracy": [(1, 0.8), (2, 0.9)],
    "validation:loss": [(1, 0.6), (2, 0.4)], "validation:accuracy": [(1, 0.75), (2, 0.85)],
    "test:loss": [(2, 0.45)], "test:accuracy": [(2, 0.84)]}  # fmt: skip


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def recorded(uri: str) -> dict:
    """The project's runs in the store, by name."""
    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    return {r.info.run_name: r for r in mlflow.search_runs([experiment.experiment_id])}


def history(uri: str, run) -> dict:
    mlflow = client(uri)
    return {name: [(m.step, m.value) for m in mlflow.get_metric_history(run.info.run_id, name)]
            for name in run.data.metrics}  # fmt: skip


def logged(moto, job: str, lines: list[str]) -> None:
    """The job's log in CloudWatch as SageMaker writes it: a stream per host."""
    logs = moto.client("logs")
    group, stream = "/aws/sagemaker/TrainingJobs", f"{job}/algo-1-{int(time.time())}"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000)
    events = [{"timestamp": start + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def log_once_submitted(overlay, moto) -> None:
    """The job writes LOG once the SDK has described it: its name is known then."""

    def describe(n: int) -> None:
        if n == 1:
            [job] = moto.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
            logged(moto, job["TrainingJobName"], LOG)

    overlay.on_describe = describe


def test_a_remote_job_is_a_run_of_the_embedded_store_with_its_hyperparameters_log_and_model(
    smt, account, behind_overlay, project_dir, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # nothing set: outputs/mlflow/mlflow.db
    account.client("s3").put_object(Bucket=BUCKET, Key="uploaded/training/data.npz", Body=b"new")
    behind_overlay.statuses[ANY_JOB] = [RUNNING] * 2 + [COMPLETED]  # the SDK's, follow's first
    log_once_submitted(behind_overlay, account)

    done = smt("train-remote", "--hparams", "epochs=2 learning-rate=1e-2")

    assert (done.code, done.err) == (0, "")
    job = submitted(done.out)
    uri = f"sqlite:///{project_dir / 'outputs' / 'mlflow' / 'mlflow.db'}"
    [(name, run)] = recorded(uri).items()
    described = account.client("sagemaker").describe_training_job(TrainingJobName=job)
    [image] = account.client("ecr").describe_images(
        repositoryName=REPOSITORY, imageIds=[{"imageTag": TAG}])["imageDetails"]  # fmt: skip
    tags = run.data.tags
    assert (name, run.info.status) == (job, "FINISHED")
    assert (tags["job.name"], tags["job.arn"]) == (job, described["TrainingJobArn"])
    assert tags["image.digest"] == image["imageDigest"]
    assert tags["model"] == described["ModelArtifacts"]["S3ModelArtifacts"]
    assert tags["model"] == f"{OUTPUT}/{job}/output/model.tar.gz"
    hashes = {k: v for k, v in tags.items() if k.startswith("data.")}
    assert sorted(hashes) == ["data.test", "data.training", "data.validation"]
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in hashes.values())
    assert hashes["data.validation"] == hashes["data.test"] != hashes["data.training"]  # bytes
    assert run.data.params == {"epochs": "2", "batch-size": "64", "learning-rate": "0.01",
                               "seed": "42"}  # fmt: skip
    assert history(uri, run) == HISTORY
    artifacts = client(uri).list_artifacts(run.info.run_id)
    assert {a.path for a in artifacts} >= {"train.log", "metrics.png"}
    copy = client(uri).download_artifacts(run.info.run_id, "train.log", str(project_dir))
    assert open(copy).read().splitlines() == LOG


def make_runs_records_it(smt, uri: str, job: str, waiting) -> None:
    """make runs syncs the job's pending record: FINISHED, with LOG's metrics, no longer
    pending."""
    done = smt("runs")
    assert done.code == 0, done.err
    assert "recorded 1 run(s) that were pending" in done.out.splitlines()
    run = recorded(uri)[job]
    assert run.info.status == "FINISHED"
    assert history(uri, run) == HISTORY
    assert not waiting.exists()


def test_a_job_submitted_with_wait_0_runs_in_mlflow_until_make_runs_sees_it_end(
    smt, account, behind_overlay, project_dir, mlflow_store
):
    behind_overlay.statuses[ANY_JOB] = [RUNNING]

    job = submitted(smt("train-remote", "--wait", "0").out)

    assert recorded(mlflow_store)[job].info.status == "RUNNING"
    waiting = project_dir / "outputs" / "mlflow" / "pending" / f"{job}.json"
    assert waiting.is_file()
    behind_overlay.statuses[ANY_JOB] = [COMPLETED]
    logged(account, job, LOG)

    make_runs_records_it(smt, mlflow_store, job, waiting)


def test_a_tuning_job_is_a_parent_run_and_each_of_its_two_trials_a_child_with_its_job(
    smt, ready, aws, overlay, mlflow_store
):
    trials = []
    for number, (rate, accuracy) in enumerate([("0.001", 0.91), ("0.01", 0.955)], 1):
        name = f"t-00{number}-{number:04x}"
        create_training_job(aws, name, output=ready.s3_output_path)  # their describes: moto's
        arn = aws.client("sagemaker").describe_training_job(TrainingJobName=name)
        trial = summary(name, "Completed", accuracy, **{"learning-rate": rate})
        trials.append(trial | {"TrainingJobArn": arn["TrainingJobArn"]})
    running = tuning("InProgress", running=2)  # the SDK's, follow's first
    overlay.tuning_statuses[ANY_JOB] = [running] * 2 + [tuning("Completed", 2, best=trials[1])]
    overlay.trials[ANY_JOB] = trials

    done = smt("tune")

    assert done.code == 0, done.err
    name = test_tune_remote.submitted(done.out)
    described = aws.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)  # fmt: skip
    runs = recorded(mlflow_store)
    assert sorted(runs) == sorted([name, *(t["TrainingJobName"] for t in trials)])
    parent = runs[name]
    assert (parent.data.tags["kind"], parent.info.status) == ("tune", "FINISHED")
    assert parent.data.tags["job.name"] == name
    assert parent.data.tags["job.arn"] == described["HyperParameterTuningJobArn"]
    assert parent.data.metrics == {"best:validation:accuracy": 0.955}
    for trial in trials:
        child = runs[trial["TrainingJobName"]]
        tags = child.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert (tags["kind"], child.info.status) == ("tune-trial", "FINISHED")
        assert (tags["job.name"], tags["job.arn"]) == (child.info.run_name, trial["TrainingJobArn"])
        assert child.data.params["learning-rate"] == trial["TunedHyperParameters"]["learning-rate"]


@pytest.fixture(params=["refuses", "never answers"])
def dead_server(request):
    """MLFLOW_TRACKING_URI of a server that is down (a closed port), or hung: it takes the
    connection and never answers."""
    if request.param == "refuses":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel accepts; nobody reads or answers
        yield f"http://127.0.0.1:{hung.getsockname()[1]}"


def test_a_tracking_server_that_is_down_costs_one_warning_and_make_runs_records_the_run_later(
    smt, account, behind_overlay, project_dir, mlflow_store, dead_server, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead_server)
    behind_overlay.statuses[ANY_JOB] = [RUNNING] * 2 + [COMPLETED]
    log_once_submitted(behind_overlay, account)
    started = time.monotonic()

    done = smt("train-remote")

    took = time.monotonic() - started
    assert done.code == 0, done.err
    job = submitted(done.out)
    assert len(done.err.splitlines()) == 1, done.err
    [warning] = done.err.splitlines()
    assert warning.startswith(f"warning: MLflow ({dead_server}) did not record run {job} (")
    assert warning.endswith("; make runs records it later")
    assert took < 30  # MLflow's HTTP timeout is 10 s, without retries
    assert done.out.splitlines()[-1] == f"model: {OUTPUT}/{job}/output/model.tar.gz"
    waiting = project_dir / "outputs" / "mlflow" / "pending" / f"{job}.json"
    assert json.loads(waiting.read_text())["name"] == job
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)  # the store answers again

    make_runs_records_it(smt, mlflow_store, job, waiting)


def local_run(project_dir, name: str, hours_ago: int, accuracy: float, hparams: str = "") -> str:
    """A train-local run as it ends (outputs/<name>/ with its log and model), recorded as
    train-local records it, started hours_ago: its run id."""
    values = settings.derive(settings.load("train-local", project_dir, {"HPARAMS": hparams}))
    folder = project_dir / "outputs" / name
    folder.mkdir(parents=True)
    (folder / "train.log").write_text(f"METRIC validation:accuracy={accuracy} epoch=1\n"
                                      f"METRIC test:accuracy={accuracy - 0.01:.2f}\n")  # fmt: skip
    (folder / "model.tar.gz").write_bytes(b"model")
    run = SimpleNamespace(name=name, folder=folder, started=tracking.ms() - hours_ago * 3600000)
    j = train.job(values, remote=False)
    record = tracking.local_record(values, j, run, f"sha256:{'1' * 64}", parent=None)
    assert tracking.Tracker(values).track(record)
    return record["run_id"]


def table(out: str) -> dict[str, dict]:
    """make runs' table: each run's cells by the header's names."""
    [head, *rows, total] = out.splitlines()
    assert total.endswith("one in full: make runs RUN=<run>")
    names, cells = head.split(), [re.split(r"\s{2,}", row.strip()) for row in rows]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cells}


def test_make_runs_lists_the_newest_first_or_the_best_objective_first_and_one_in_full(
    smt, project_dir
):
    made = [("run-a", 3, 0.9, "epochs=2"), ("run-b", 2, 0.95, ""), ("run-c", 1, 0.8, "")]
    for name, hours_ago, accuracy, hparams in made:  # (name, started hours ago, objective)
        local_run(project_dir, name, hours_ago, accuracy, hparams)

    newest, best = smt("runs"), smt("runs", "--sort", "objective")

    assert (newest.code, best.code) == (0, 0), newest.err + best.err
    assert list(table(newest.out)) == ["run-c", "run-b", "run-a"]
    assert list(table(best.out)) == ["run-b", "run-a", "run-c"]  # validation:accuracy, max
    assert table(best.out)["run-a"] | {"started": "-"} == {
        "run": "run-a", "started": "-", "kind": "train-local", "status": "FINISHED",
        "hyperparameters": "epochs=2", "validation:accuracy": "0.9", "test:accuracy": "0.89",
        "model": str(project_dir / "outputs" / "run-a" / "model.tar.gz")}  # fmt: skip
    unknown = smt("runs", "--run", "run-x")
    assert (unknown.code, unknown.out) == (2, "")
    [line] = unknown.err.splitlines()
    assert line.startswith("error: RUN: no run run-x in sqlite:///")
    shown = smt("runs", "--run", "run-b")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert re.fullmatch(r"run run-b \(id [0-9a-f]{32}\): FINISHED", lines[0])
    assert lines[1] == "hyperparameters: batch-size=64 epochs=5 learning-rate=0.001 seed=42"
    assert "  validation:accuracy          0.95  (1 value(s))" in lines
    assert re.match(r"artifacts: metrics.png, train.log \(", lines[-2])


def shown_tags(out: str) -> dict[str, str]:
    """The `  name  value` lines of a run shown in full."""
    return dict(line.split(maxsplit=1) for line in out.splitlines() if line.startswith("  "))


def test_deploy_run_serves_a_local_runs_model_and_the_endpoint_leads_back_to_its_data_and_commit(
    smt, aws, deploy_account, project_dir, mlflow_store
):
    commit = test_endpoints.committed(project_dir)[1]["Value"]  # the project in git
    name = "mnist-on-sagemaker-20261206100000"
    run_id = local_run(project_dir, name, 1, 0.9)
    aws.start_recording()

    done = smt("deploy", "--run", name, "--wait", "0")

    assert done.code == 0, done.err
    endpoint = test_endpoints.deployed(done.out)
    model = f"{deploy_account.s3_output_path}/models/{name}/model.tar.gz"
    bucket, _, key = model.removeprefix("s3://").partition("/")
    assert aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == b"model"
    created = test_endpoints.request(aws, "SageMaker.CreateModel")
    assert created["PrimaryContainer"]["ModelDataUrl"] == model
    for action in ("SageMaker.CreateModel", "SageMaker.CreateEndpoint"):
        tags = test_endpoints.request(aws, action)["Tags"]
        assert {"Key": "MlflowRun", "Value": run_id} in tags, action
    run = client(mlflow_store).get_run(run_id)
    assert f"endpoint.{endpoint}" in run.data.tags

    lineage = smt("runs", "--endpoint", endpoint)

    assert lineage.code == 0, lineage.err
    assert lineage.out.splitlines()[0] == (
        f"endpoint {endpoint} serves {model}, the model of run {name}")  # fmt: skip
    shown = shown_tags(lineage.out)
    assert shown["git.commit"] == commit
    hashes = tracking.data_hashes(deploy_account, project_dir / "data")  # the data as it is
    assert {k: shown[k] for k in hashes} == hashes == {
        k: v for k, v in run.data.tags.items() if k.startswith("data.")}  # fmt: skip
