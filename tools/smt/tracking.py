"""Every run an MLflow run: train-local, train-remote, each trial of tune-local and tune
under a run of its search. A run is first a record, outputs/mlflow/pending/<name>.json, then
synced to MLFLOW_TRACKING_URI (default: outputs/mlflow/mlflow.db, SQLite, no server); a record
that could not be synced (no server, a remote job still running) stays pending, and `make
runs` syncs it. Tracking never stops a run: a store that does not answer costs one warning
line and a bounded wait. train.py knows nothing of MLflow: a remote job's metrics are read
from its log (CloudWatch) once it has ended, by the parser that reads a local train.log."""

import hashlib
import json
import logging
import os
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

from smt import aws, jobs, local_run, project

STORE = Path("outputs") / "mlflow"  # of the project: mlflow.db, artifacts/, pending/, hashes
PARENT = "SMT_PARENT_RUN"  # set by tune-local for its trials: the name of the search's record
NAME_TAG = "smt.name"  # the record's name: a run is found by it, so a sync is never doubled
STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}  # SageMaker's
# MLflow's HTTP client retries 7 times with backoff (minutes) and waits 120 s for an answer
ARTIFACTS = ("train.log", "metrics.png", "failure", "table.txt", "objective.png")
BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def uri(settings) -> str:
    """MLFLOW_TRACKING_URI, its default made by settings.derive: the project's SQLite file."""
    return settings.mlflow_tracking_uri


def artifacts(tracking_uri: str) -> str | None:
    """A SQLite store's artifacts: a folder beside its file (else MLflow's ./mlruns, wherever
    the command ran); a server keeps them its own way."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def store(settings) -> Path:
    return (settings.project_dir / STORE).resolve()


class Tracker:
    """One per command: the client, the experiment (PROJECT_NAME), and whether the store has
    failed once already (then the rest of this command's records stay pending, unsaid)."""

    def __init__(self, settings, session=None):
        self.settings, self.client, self.experiment, self.failed = settings, None, None, False
        self.aws = session  # AWS's, for remote records: made when one needs it, if not given

    def connect(self):
        if self.client is None:
            for name, value in BOUNDS.items():
                os.environ.setdefault(name, value)
            import mlflow
            from mlflow import MlflowClient

            for noisy in ("mlflow", "alembic"):  # "Creating initial MLflow database tables"
                logging.getLogger(noisy).setLevel(logging.WARNING)  # after mlflow set it up
            if not uri(self.settings).startswith("arn:"):  # sagemaker-mlflow's header provider
                headers = logging.getLogger("mlflow.tracking.request_header.registry")  # fails
                headers.setLevel(logging.ERROR)  # on any other URI: a warning per request

            (store(self.settings) / "pending").mkdir(parents=True, exist_ok=True)
            # sagemaker-mlflow signs its requests for the ARN of the process's tracking URI
            mlflow.set_tracking_uri(uri(self.settings))
            client = MlflowClient(uri(self.settings))
            name = self.settings.project_name
            found = client.get_experiment_by_name(name)
            where = artifacts(uri(self.settings))
            self.experiment = found.experiment_id if found else client.create_experiment(
                name, artifact_location=where, tags={"project": name})  # fmt: skip
            self.client = client
        return self.client

    def find(self, name: str) -> str | None:
        """The run id of the record `name`, once synced."""
        runs = self.connect().search_runs([self.experiment], f"tags.`{NAME_TAG}` = '{name}'")
        return runs[0].info.run_id if runs else None

    def made(self, model: str) -> list:
        """The runs whose model (its S3 URI or path) is `model`: an endpoint's lineage."""
        return self.connect().search_runs([self.experiment], f"tags.model = '{model}'")

    def track(self, record: dict, refresh: bool = True) -> bool:
        """Save the record, then sync it: False (and one warning, once) when the store did not
        take it; it stays pending for make runs. refresh=False: a job just submitted, not
        asked about yet."""
        save(self.settings, record)
        if self.failed:
            return False
        try:
            self.sync(record, refresh)
            return True
        except tracking_errors() as error:
            self.warn(error, f"did not record run {record['name']}", "make runs records it later")
            return False

    def warn(self, error: Exception, what: str, then: str) -> None:
        """The one warning line of a command whose store (or AWS, for a remote record) failed:
        the rest of its records stay pending, unsaid."""
        self.failed = True
        why = aws.explain(error) if aws.is_aws_error(error) else " ".join(str(error).split())
        why = why[:200] or type(error).__name__
        print(f"warning: MLflow ({uri(self.settings)}) {what} ({why}); {then}", file=sys.stderr,
              flush=True)  # fmt: skip

    def sync(self, record: dict, refresh: bool = True) -> None:
        client = self.connect()
        run_id = record.get("run_id") or self.find(record["name"])
        if run_id is None:
            tags = {**record["tags"], NAME_TAG: record["name"]}
            if record.get("parent") and (parent := self.find(record["parent"])):
                tags["mlflow.parentRunId"] = parent
            run = client.create_run(self.experiment, start_time=record["start"], tags=tags,
                                    run_name=record["name"])  # fmt: skip
            run_id = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, str(v)) for k, v in record["params"].items()]
            client.log_batch(run_id, params=params)
            record["run_id"] = run_id
            save(self.settings, record)
        if refresh and record["status"] == "RUNNING" and record.get("job"):
            from smt import remote_runs  # a remote job, or a tuning job: has it ended?

            remote_runs.refresh(self, record)
        if record["status"] != "RUNNING":
            self.finish(run_id, record)
            pending(self.settings, record["name"]).unlink(missing_ok=True)

    def finish(self, run_id: str, record: dict) -> None:
        """The metrics of train.log, its chart and the log itself, the last tags, the end."""
        from mlflow.entities import Metric, RunTag

        client = self.connect()
        folder = Path(record["folder"]) if record.get("folder") else None
        files = [folder / name for name in ARTIFACTS] if folder else []
        if not client.get_run(run_id).data.metrics:  # once, not per sync
            log = folder / "train.log" if folder else None
            series = jobs.local_series(log) if log and log.is_file() else {}
            stamp = iter(range(record["start"], record["start"] + 10**9))  # the log's order
            metrics = [Metric(name, value, next(stamp), epoch)
                       for name, points in series.items() for epoch, value in points]  # fmt: skip
            metrics += [Metric(k, v, next(stamp), 0) for k, v in record.get("metrics", {}).items()]
            if metrics:
                client.log_batch(run_id, metrics=metrics)
            if series:
                jobs.chart(series, record["name"], folder / "metrics.png")
        for file in filter(Path.is_file, files):  # a run's log and chart; a search's table, chart
            client.log_artifact(run_id, str(file))
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in record["tags"].items()])
        client.set_terminated(run_id, record["status"], end_time=record.get("end"))


def tracking_errors() -> tuple[type[BaseException], ...]:
    """What a store that is down, slow, locked or refusing raises (not our bugs)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException
    from sqlalchemy.exc import SQLAlchemyError

    return (MlflowException, RequestException, SQLAlchemyError, OSError, BotoCoreError,
            ClientError)  # fmt: skip


def pending(settings, name: str) -> Path:
    return store(settings) / "pending" / f"{name}.json"


def save(settings, record: dict) -> None:
    write_whole(pending(settings, record["name"]), json.dumps(record, indent=1, default=str))


def write_whole(path: Path, text: str) -> None:
    """Whole or not at all: another process (a parallel trial, make runs) may read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # one per writer
    scratch.write_text(text)
    scratch.replace(path)


def catch_up(tracker: Tracker, parent: str | None = None) -> tuple[int, int]:
    """Sync every pending record (or `parent`'s children), oldest first (a search before its
    trials): (synced, left)."""
    files = (store(tracker.settings) / "pending").glob("*.json")
    records = [json.loads(path.read_text()) for path in files]
    records = [r for r in records if parent is None or r.get("parent") == parent]
    synced = 0
    for record in sorted(records, key=lambda r: r["start"]):
        if tracker.failed:
            break
        try:
            tracker.sync(record)
            synced += record["status"] != "RUNNING"
        except tracking_errors() as error:
            tracker.warn(error, f"did not record run {record['name']}", "make runs retries")
    left = len(list((store(tracker.settings) / "pending").glob("*.json")))
    return synced, left


def ms(moment: datetime | None = None) -> int:
    """MLflow's time: milliseconds since the epoch of `moment`, or of now."""
    return int((moment.timestamp() if moment else time.time()) * 1000)


def typed_parameters(given: dict) -> dict:
    """Every hyperparameter as train.py gets it: its declared default unless given."""
    declared = project.contract().HYPERPARAMETERS
    return {name: given.get(name, spec[1]) for name, spec in declared.items()} | given


def data_hashes(settings, folder: Path) -> dict[str, str]:
    """data.<channel>: a sha256 of each channel's files (names and bytes), kept in a cache by
    path, size and time: a channel of many GB is read again only when it changes."""
    cache_file = store(settings) / "hashes.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    hashes, known = {}, len(cache)
    for channel in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        digest = hashlib.sha256()
        for file in sorted(f for f in channel.rglob("*") if f.is_file()):
            stat = file.stat()
            key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
            if key not in cache:
                with file.open("rb") as opened:
                    cache[key] = hashlib.file_digest(opened, "sha256").hexdigest()
            digest.update(f"{file.relative_to(channel).as_posix()}\0{cache[key]}\0".encode())
        hashes[f"data.{channel.name}"] = digest.hexdigest()[:16]
    if len(cache) != known:  # only what was read anew
        write_whole(cache_file, json.dumps(cache))
    return hashes


def common_tags(settings, j, where: str) -> dict[str, str]:
    """The tags of every training run: project, commit, image, data, hosts."""
    state = project.git_state()
    return {"project": settings.project_name, "git.commit": state["commit"],
            "git.dirty": state["dirty"], "mlflow.source.git.commit": state["commit"],
            "image": j.image, "instance.type": j.instance_type,
            "instance.count": str(j.instance_count), "spot": str(bool(j.spot)),
            "where": where}  # fmt: skip


def local_record(settings, j, run, image_digest: str, parent: str | None) -> dict:
    """A finished train-local run (outputs/<name>/): completed, failed or stopped."""
    failure = run.folder / "failure"
    reason = failure.read_text() if failure.is_file() else ""
    status = "KILLED" if local_run.stopped(reason) else "FAILED" if reason else "FINISHED"
    tags = common_tags(settings, j, "local") | data_hashes(settings, j.data_dir) | {
        "image.digest": image_digest, "run.folder": str(run.folder), "kind": "train-local",
        "model": str(run.folder / "model.tar.gz") if status == "FINISHED" else ""}  # fmt: skip
    return {"name": run.name, "parent": parent, "start": run.started, "end": ms(),
            "status": status, "params": typed_parameters(j.hyperparameters), "tags": tags,
            "folder": str(run.folder)}  # fmt: skip


def track_local(settings, j, run) -> None:
    """After a local run: its record, synced (a warning if not); never raises for the store."""
    inspect = ("docker", "image", "inspect", "--format", "{{.Id}}", j.image)
    digest = project.run(*inspect, timeout=60).stdout.strip()  # "" if Docker is gone by now
    record = local_record(settings, j, run, digest, os.environ.get(PARENT))
    if Tracker(settings).track(record):
        print(f"tracked: MLflow run {record['run_id']} ({uri(settings)}); make runs lists it")


def search_parameters(settings, ranges, objective: tuple[str, str]) -> dict:
    """A search's own parameters: each range searched, the objective, the trials."""
    space = {f"search.{r.name}": list(r.values) if r.scale is None
             else f"{r.scale} {r.low}..{r.high}" for r in ranges}  # fmt: skip
    return space | {"objective": " ".join(objective), "max_jobs": settings.max_jobs,
                    "max_parallel": settings.max_parallel}  # fmt: skip
