"""make metrics JOB=<name> for a SageMaker job: its metrics as CloudWatch holds them, from
a moto server seeded with a job and its metric data."""

import subprocess
from datetime import datetime, timedelta, timezone

from helpers import VENV_BIN, create_training_job

JOB = "digits-remote-20261126093342"


def seed_job(moto) -> None:
    create_training_job(moto, JOB)
    now = datetime.now(timezone.utc)
    moto.client("cloudwatch").put_metric_data(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricData=[
            {
                "MetricName": "train:loss",
                "Dimensions": [{"Name": "Host", "Value": f"{JOB}/algo-1"}],
                "Timestamp": now - timedelta(minutes=3 - minute),
                "Value": value,
            }
            for minute, value in enumerate([0.9, 0.5, 0.25])
        ],
    )


def test_a_remote_jobs_metrics_become_a_table_and_a_chart(bake, moto, tmp_path):
    project = bake({"aws_checks": "skip", "aws_account_id": moto.account_id}).output_dir
    project = next(project.iterdir())
    seed_job(moto)
    done = subprocess.run(
        [str(VENV_BIN / "python"), "scripts/metrics.py", "--job", JOB, "--region", "us-east-1"],
        cwd=project,
        env=moto.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "train:loss" in done.stdout and "0.25" in done.stdout
    png = project / "outputs" / JOB / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_remote_job_is_one_line_without_a_traceback(bake, moto):
    project = next(bake({"aws_checks": "skip"}).output_dir.iterdir())
    done = subprocess.run(
        [str(VENV_BIN / "python"), "scripts/metrics.py", "--job", "no-such-job"],
        cwd=project,
        env=moto.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: could not read the metrics of job no-such-job")
    assert "Traceback" not in done.stderr
