"""make metrics JOB=<name> for a SageMaker job: the table of the final values DescribeTrainingJob
answers (FinalMetricDataList), and no chart. moto 5.2.5 answers one fixed train:progress, so
the job's values come through the overlay fixture (status_overlay.StatusOverlay), which
merges them into its answer."""

import dataclasses
import subprocess

from helpers import VENV_BIN, create_training_job, make_with_test_venv

JOB = "digits-remote-20261126093342"
# Each value apart from the others and from any count: a value in another metric's row, or a
# column other than the value's, fails.
FINALS = [("validation:accuracy", 0.8125), ("train:loss", 0.375), ("test:loss", 4.5)]


def metrics(project, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "project_tools.metrics", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_remote_jobs_final_metrics_become_a_table_and_no_chart(bake, moto, overlay):
    project = next(
        bake({"aws_checks": "skip", "aws_account_id": moto.account_id}).output_dir.iterdir()
    )
    # in eu-west-1, the environment's default region us-east-1: make passes JOB and AWS_REGION
    create_training_job(dataclasses.replace(moto, region="eu-west-1"), JOB)
    finals = [{"MetricName": name, "Value": value, "Timestamp": 1.8e9} for name, value in FINALS]
    overlay.statuses[JOB] = [{"FinalMetricDataList": finals}]

    env = moto.env(AWS_ENDPOINT_URL=overlay.url)
    done = make_with_test_venv(
        project, "metrics", ".installed-tools", env, JOB=JOB, AWS_REGION="eu-west-1"
    )

    assert done.returncode == 0, done.stderr
    _, table = done.stdout.split(" final value\n")  # after make's echo of the command
    rows = [(name, float(value)) for name, value in map(str.split, table.splitlines())]
    assert sorted(rows) == sorted(FINALS)
    assert not (project / "outputs").exists()  # no chart: SageMaker's console charts a job


def test_an_unknown_remote_job_is_one_line_without_a_traceback(bake, moto):
    project = next(bake({"aws_checks": "skip"}).output_dir.iterdir())

    done = metrics(project, moto.env(), "--job", "no-such-job")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: there is no training job no-such-job in us-east-1; check the name and "
        "AWS_REGION: aws sagemaker list-training-jobs --region us-east-1"
    ]
