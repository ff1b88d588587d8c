"""make runs: this project's MLflow runs in a table, newest first or best OBJECTIVE first;
RUN=<id or name> shows one in full; ENDPOINT=<name> the run whose model an endpoint serves
(lineage: its data hashes, its commit). make ui: MLflow's own UI on localhost. Each first
records the runs still pending (tracking.catch_up): a job submitted with WAIT=0 is finished
here once SageMaker says it has ended."""

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from smt import aws, project, tracking
from smt.errors import BadSetting, Failure
from smt.search_space import aligned, cell

UI_BOOT_SECONDS = 120  # mlflow server imports its app, and migrates an old store


def connected(settings) -> tracking.Tracker:
    """A tracker with the pending runs recorded, or a Failure naming the store."""
    tracker = tracking.Tracker(settings)
    synced, left = tracking.catch_up(tracker)
    if synced:
        print(f"recorded {synced} run(s) that were pending")
    if left:
        print(f"{left} run(s) not recorded yet (a job still running, or the store did not"
              " answer): make runs records them later")  # fmt: skip
    try:
        tracker.connect()
    except tracking.tracking_errors() as error:
        why = " ".join(str(error).split())[:200]
        raise Failure(f"MLFLOW_TRACKING_URI: {tracking.uri(settings)} does not answer ({why})"
                      ) from None  # fmt: skip
    return tracker


def all_runs(tracker) -> list:
    client, found, token = tracker.client, [], None
    while True:
        page = client.search_runs([tracker.experiment], max_results=1000, page_token=token,
                                  order_by=["attributes.start_time DESC"])  # fmt: skip
        found += page
        if not (token := page.token):
            return found


def find(tracker, wanted: str):
    """A run by its id or its name (a local run's folder, a job's name)."""
    quoted = wanted.replace("'", "")  # a name or an id has no quotes: keep the filter whole
    for filter_string in (f"attributes.run_id = '{quoted}'", f"attributes.run_name = '{quoted}'"):
        if found := tracker.client.search_runs([tracker.experiment], filter_string):
            return found[0]
    raise BadSetting(f"RUN: no run {wanted} in {tracking.uri(tracker.settings)}; make runs"
                     " lists them (RUN= takes an id or a name)")  # fmt: skip


def changed(run) -> str:
    """The hyperparameters that differ from code/job_contract.py's defaults."""
    declared = project.contract().HYPERPARAMETERS
    shown = [f"{k}={v}" for k, v in run.data.params.items()
             if k in declared and v != str(declared[k][1])]  # fmt: skip
    return " ".join(shown) or "defaults"


def table(tracker, settings) -> int:
    metric, direction = project.contract().OBJECTIVE
    test = "test:" + metric.partition(":")[2]
    found = all_runs(tracker)
    if not found:
        print(f"no runs yet in {tracking.uri(settings)}: make train-local records one")
        return 0
    if settings.sort == "objective":
        scored = [r for r in found if objective(r, metric) is not None]
        best_first = sorted(scored, key=lambda r: objective(r, metric),
                            reverse=direction == "maximize")  # fmt: skip
        found = best_first + [r for r in found if r not in scored]
    rows = [[r.info.run_name, datetime.fromtimestamp(r.info.start_time / 1000).strftime(
        "%m-%d %H:%M"), r.data.tags.get("kind", "?"), r.info.status, changed(r),
        cell(objective(r, metric)), cell(r.data.metrics.get(test)), r.data.tags.get("model") or "-"]
        for r in found]  # fmt: skip
    head = ["run", "started", "kind", "status", "hyperparameters", metric, test, "model"]
    print(aligned([head, *rows]))
    print(f"{len(rows)} run(s) in {tracking.uri(settings)}; one in full: make runs RUN=<run>")
    return 0


def objective(run, metric: str) -> float | None:
    metrics = run.data.metrics
    return metrics.get(metric, metrics.get(f"best:{metric}"))


def show(tracker, run) -> int:
    info, data = run.info, run.data
    print(f"run {info.run_name} (id {info.run_id}): {info.status}")
    print("hyperparameters: " + " ".join(f"{k}={v}" for k, v in sorted(data.params.items())))
    for name, value in sorted(data.metrics.items()):
        steps = len(tracker.client.get_metric_history(info.run_id, name))
        print(f"  {name:<22} {value:>10.6g}  ({steps} value(s))")
    for key, value in sorted(data.tags.items()):
        if not key.startswith(("mlflow.", tracking.NAME_TAG)):
            print(f"  {key:<22} {value}")
    artifacts = [a.path for a in tracker.client.list_artifacts(info.run_id)]
    print(f"artifacts: {', '.join(artifacts) or 'none'} ({info.artifact_uri})")
    if data.tags.get("model"):
        print(f"serve it: make serve-local RUN={info.run_id}; deploy it: make deploy"
              f" RUN={info.run_id}")  # fmt: skip
    return 0


def lineage(tracker, settings) -> int:
    """The run behind ENDPOINT: by the endpoint's MlflowRun tag (make deploy sets it), else by
    its model's S3 URI, which the run recorded."""
    from smt.endpoints import existing, tags_of

    sagemaker, name = aws.session(settings.aws_region).client("sagemaker"), settings.endpoint
    if not (endpoint := existing(sagemaker.describe_endpoint, EndpointName=name)):
        raise BadSetting(f"ENDPOINT: there is no endpoint {name} in {settings.aws_region};"
                         " make status lists this project's")  # fmt: skip
    tags = tags_of(sagemaker, endpoint["EndpointArn"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=model_name)["PrimaryContainer"]["ModelDataUrl"]
    if run_id := tags.get("MlflowRun"):
        run = tracker.client.get_run(run_id)
    else:
        found = tracker.made(model)
        if not found:
            raise Failure(f"ENDPOINT: no run of {tracking.uri(settings)} made {model}, the model"
                          f" endpoint {name} serves")  # fmt: skip
        run = found[0]
    print(f"endpoint {name} serves {model}, the model of run {run.info.run_name}")
    return show(tracker, run)


def runs(settings) -> int:
    tracker = connected(settings)
    if settings.endpoint:
        return lineage(tracker, settings)
    if settings.run:
        return show(tracker, find(tracker, settings.run))
    return table(tracker, settings)


def model(settings) -> tuple[str, str, str]:
    """RUN's model (S3 URI or local path), its run name and id: for deploy and serve-local."""
    tracker = connected(settings)
    run = find(tracker, settings.run)
    if not (where := run.data.tags.get("model")):
        raise BadSetting(f"RUN: run {run.info.run_name} has no model ({run.info.status}):"
                         " make runs shows which have")  # fmt: skip
    return where, run.info.run_name, run.info.run_id


def ui(settings) -> int:
    """MLflow's UI: a server's own, or mlflow server over the project's SQLite file here."""
    target = tracking.uri(settings)
    if target.startswith("http"):
        print(f"MLflow's UI: {target} (MLFLOW_TRACKING_URI: the server serves it)")
        return 0
    tracker = connected(settings)
    if target.startswith("arn:"):  # SageMaker's managed MLflow: a presigned URL to its UI
        sagemaker = aws.session(target.split(":")[3]).client("sagemaker")
        name = target.rsplit("/", 1)[-1]
        url = sagemaker.create_presigned_mlflow_tracking_server_url(TrackingServerName=name)
        print(f"MLflow's UI (valid 5 minutes): {url['AuthorizedUrl']}")
        return 0
    port, artifacts = settings.ui_port, tracking.artifacts(target)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", target,
               *(["--default-artifact-root", artifacts] if artifacts else []),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    print(f"starting MLflow's UI on {url} ...", flush=True)
    log = tracking.store(settings) / "ui.log"  # a file, not a pipe: nobody reads it as it runs
    with log.open("w") as written:
        server = subprocess.Popen(command, stdout=written, stderr=subprocess.STDOUT)
    try:
        exited = lambda: server.poll() is not None and "it exited"  # noqa: E731
        if problem := project.wait_until_ready(f"{url}/health", exited, UI_BOOT_SECONDS):
            said = " ".join(log.read_text().split()) if server.poll() is not None else ""
            why = said[-200:] or problem
            raise Failure(f"UI_PORT: MLflow's UI did not start on port {port} ({why}); another"
                          f" port: make ui UI_PORT={port + 1}")  # fmt: skip
        page = f"{url}/#/experiments/{tracker.experiment}?workflowType=machine_learning"
        print(f"MLflow's UI: {page} (Ctrl-C stops it)", flush=True)  # its runs, not GenAI's pages
        server.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def local_model(settings, outputs: Path) -> str:
    """serve-local RUN=: the run's model here; a remote run's downloaded once, beside it."""
    where, name, _ = model(settings)
    if not where.startswith("s3://"):
        return where
    copy = outputs / name / "model.tar.gz"
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        bucket, key = aws.split_s3(where)
        print(f"downloading {where} ...", flush=True)
        aws.session(settings.aws_region).client("s3").download_file(bucket, key, str(copy))
    return str(copy)


def run_of_model(tracker, model: str) -> str | None:
    """The id of the run that recorded `model`; None when none did, or the store is down."""
    try:
        found = tracker.made(model)
    except tracking.tracking_errors() as error:
        tracker.warn(error, "did not answer", "the endpoint will not name its MLflow run")
        return None
    return found[0].info.run_id if found else None


def mark_deployed(tracker, run_id: str | None, endpoint: str) -> None:
    """The run's tag endpoint.<name>: where its model is served (a warning if not recorded)."""
    if not run_id:
        return
    try:
        stamp = datetime.now().isoformat(timespec="seconds")
        tag = (f"endpoint.{endpoint}", f"{tracker.settings.aws_region} {stamp}")
        tracker.connect().set_tag(run_id, *tag)
        print(f"tracked: run {run_id} is served by endpoint {endpoint}")
    except tracking.tracking_errors() as error:
        tracker.warn(error, f"did not tag run {run_id}", f"endpoint {endpoint} serves it")
