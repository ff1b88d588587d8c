"""The MLflow records of SageMaker's runs: a train-remote job, a tuning job (make tune) and
each of its trials. Each is recorded when submitted (RUNNING) and finished by the first sync
that sees its job ended: the job's log is read from CloudWatch into outputs/<job>/train.log,
as a local run's, and its metrics parsed from it. A job submitted with WAIT=0 is finished by
`make runs`, which syncs what is pending."""

import hashlib

from smt import aws, jobs, project, tracking
from smt.tracking import ms


def s3_hashes(session, data_s3: str) -> dict[str, str]:
    """data.<channel>: a sha256 of each channel's keys and ETags (S3's hash of each object)."""
    bucket, prefix = aws.split_s3(f"{data_s3}/")
    pages = session.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix)  # fmt: skip
    digests: dict[str, hashlib._Hash] = {}
    for item in (item for page in pages for item in page.get("Contents", [])):
        channel, _, key = item["Key"].removeprefix(prefix).partition("/")
        if key:
            digest = digests.setdefault(channel, hashlib.sha256())
            digest.update(f"{key}\0{item['ETag']}\0".encode())
    return {f"data.{name}": digest.hexdigest()[:16] for name, digest in sorted(digests.items())}


def job_record(settings, j, name: str, session, digest: str, kind: str = "train-remote") -> dict:
    """A submitted job (or tuning job: kind "tune"), RUNNING until a sync sees it end."""
    local = not j.data_s3  # DATA_DIR, synced to S3 as it is
    hashes = tracking.data_hashes(settings, j.data_dir) if local else s3_hashes(session, j.data_s3)
    tags = tracking.common_tags(settings, j, "SageMaker") | hashes | {
        "image.digest": digest, "kind": kind, "job.name": name,
        "region": settings.aws_region}  # fmt: skip
    return {"name": name, "parent": None, "start": ms(), "status": "RUNNING",
            "job": name, "params": tracking.typed_parameters(j.hyperparameters),
            "tags": tags}  # fmt: skip


def track_submitted(settings, record: dict, session, follow, hint: str) -> int:
    """A job or tuning job just submitted: its run, RUNNING; with WAIT=1 follow() shows it to
    its end, which finishes the run (else, or after Ctrl-C, the next make runs does)."""
    tracker = tracking.Tracker(settings, session)
    tracker.track(record, refresh=False)  # not asked about yet: it was just submitted
    if not settings.wait:
        print(hint)
        return 0
    code = follow()
    if code != 130:
        tracker.track(record)
    return code


def refresh(tracker, record: dict) -> None:
    """Update a RUNNING record from SageMaker: a job that ended is finished."""
    tracker.aws = tracker.aws or aws.session(record["tags"]["region"])
    sagemaker = tracker.aws.client("sagemaker")
    if record["tags"]["kind"] == "tune":
        refresh_tuning(tracker, sagemaker, record)
        return
    job = sagemaker.describe_training_job(TrainingJobName=record["job"])
    record["tags"]["job.arn"] = job["TrainingJobArn"]
    if job["TrainingJobStatus"] in aws.RUNNING:
        return
    folder = tracker.settings.project_dir / "outputs" / record["job"]
    folder.mkdir(parents=True, exist_ok=True)
    events = jobs.new_events(tracker.aws.client("logs"), record["job"], {})
    several = len({host for _, host, _ in events}) > 1
    lines = [f"[{host}] {line}" if several else line for _, host, line in events]
    if lines:
        (folder / "train.log").write_text("\n".join(lines) + "\n")
    if reason := job.get("FailureReason"):
        (folder / "failure").write_text(reason + "\n")
    final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    model = job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")
    record.update(folder=str(folder), metrics={} if lines else final,
                  status=tracking.STATUS.get(job["TrainingJobStatus"], "FAILED"),
                  end=ms(job.get("TrainingEndTime") or job["LastModifiedTime"]))  # fmt: skip
    record["tags"] |= {"model": model if record["status"] == "FINISHED" else "",
                       "billable.seconds": str(job.get("BillableTimeInSeconds", ""))}  # fmt: skip


def refresh_tuning(tracker, sagemaker, record: dict) -> None:
    """A record for each trial not recorded yet (synced now: ended ones finish), then the
    search itself once it has ended: its best objective and best trial."""
    name = record["job"]
    tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    record["tags"]["job.arn"] = tuning["HyperParameterTuningJobArn"]
    pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    trials = [t for page in pages.paginate(HyperParameterTuningJobName=name)
              for t in page["TrainingJobSummaries"]]  # fmt: skip
    recorded = record.setdefault("trials", [])
    declared = project.contract().HYPERPARAMETERS  # a trial's: not the search's own
    for trial in sorted(trials, key=lambda t: t["CreationTime"]):
        if (trial_name := trial["TrainingJobName"]) in recorded:
            continue
        tuned = {k: typed(k, v) for k, v in (trial.get("TunedHyperParameters") or {}).items()}
        tags = {k: v for k, v in record["tags"].items() if k not in ("job.arn", "kind")}
        tags |= {"kind": "tune-trial", "job.name": trial_name, "job.arn": trial["TrainingJobArn"]}
        child = {"name": trial_name, "parent": record["name"], "start": ms(trial["CreationTime"]),
                 "status": "RUNNING", "job": trial_name, "tags": tags,
                 "params": {k: record["params"][k] for k in declared} | tuned}  # fmt: skip
        tracker.track(child)
        recorded.append(trial_name)
        tracking.save(tracker.settings, record)
    if tuning["HyperParameterTuningJobStatus"] in aws.RUNNING:
        return
    best = tuning.get("BestTrainingJob") or {}
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric")
    record["metrics"] = {f"best:{objective['MetricName']}": objective["Value"]} if objective else {}
    record["tags"]["best.trial"] = best.get("TrainingJobName", "")
    record.update(status=tracking.STATUS.get(tuning["HyperParameterTuningJobStatus"], "FAILED"),
                  end=ms(tuning.get("HyperParameterTuningEndTime")))  # fmt: skip


def typed(name: str, value: str):  # SageMaker lists a tuned value as a string
    try:
        return project.runtime().coerce_hyperparameter(name, value)
    except ValueError:  # a hyperparameter code/job_contract.py no longer declares
        return value
