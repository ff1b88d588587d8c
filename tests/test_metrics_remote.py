"""make metrics JOB=<name> for a SageMaker job: its metrics as CloudWatch holds them, from
a moto server seeded with a job and its metric data."""

import dataclasses
import subprocess
from datetime import datetime, timedelta, timezone

from helpers import VENV_BIN, create_training_job, make_with_test_venv

JOB = "digits-remote-20261126093342"
# train:loss per minute of the job: the last value is neither the smallest nor the first
LOSS_BY_MINUTE = {0: 0.9, 1: 0.25, 2: 0.5}


def seed_job(moto) -> None:
    """The job and its train:loss series, sent out of time order: ordering is the reader's."""
    create_training_job(moto, JOB)
    now = datetime.now(timezone.utc)
    moto.client("cloudwatch").put_metric_data(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricData=[
            {
                "MetricName": "train:loss",
                "Dimensions": [{"Name": "Host", "Value": f"{JOB}/algo-1"}],
                "Timestamp": now - timedelta(minutes=3 - minute),
                "Value": LOSS_BY_MINUTE[minute],
            }
            for minute in (2, 0, 1)
        ],
    )


def metrics(project, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "project_tools.metrics", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def table_row(stdout: str, metric: str) -> tuple[float, int]:
    """(final value, points) from the printed table's row of the metric."""
    [(value, points)] = [
        line.split()[1:] for line in stdout.splitlines() if line.split()[:1] == [metric]
    ]
    return float(value), int(points)


def test_a_remote_jobs_metrics_become_a_table_of_final_values_and_a_chart(bake, moto):
    project = next(
        bake({"aws_checks": "skip", "aws_account_id": moto.account_id}).output_dir.iterdir()
    )
    # in eu-west-1, the environment's default region us-east-1: make passes JOB and AWS_REGION
    seed_job(dataclasses.replace(moto, region="eu-west-1"))

    env = moto.env()
    done = make_with_test_venv(
        project, "metrics", ".installed-tools", env, JOB=JOB, AWS_REGION="eu-west-1"
    )

    assert done.returncode == 0, done.stderr
    assert table_row(done.stdout, "train:loss") == (LOSS_BY_MINUTE[2], 3)  # the newest value
    png = project / "outputs" / JOB / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_remote_job_is_one_line_without_a_traceback(bake, moto):
    project = next(bake({"aws_checks": "skip"}).output_dir.iterdir())

    done = metrics(project, moto.env(), "--job", "no-such-job")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: there is no training job no-such-job in us-east-1; check the name and "
        "AWS_REGION: aws sagemaker list-training-jobs --region us-east-1"
    ]
