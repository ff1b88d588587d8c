"""smt metrics (make metrics [JOB=<name>]): a local run's final values and chart, read with
the metric format train.py prints (the project's code/sagemaker_runtime.py); a SageMaker
job's final values, as DescribeTrainingJob answers them (moto 5.2.5 answers one fixed
train:progress: the overlay fixture merges the job's values into its answer)."""

import dataclasses

from helpers import create_training_job
from smt import jobs, project

JOB = "digits-remote-20261126093342"
# Each value apart from the others and from any count: a value in another metric's row, or a
# column other than the value's, fails.
FINALS = [("validation:accuracy", 0.8125), ("train:loss", 0.375), ("test:loss", 4.5)]


def fake_run(outputs, name="digits-run-1", epochs=3):
    """A run folder as train-local leaves it, its log prefixed the way compose prefixes it."""
    format_metric = project.runtime().format_metric
    folder = outputs / name
    folder.mkdir(parents=True)
    lines = ["algo-1_1  | Epoch 1/3"]
    for epoch in range(1, epochs + 1):
        for metric, value in [
            ("train:loss", 1.0 / epoch),
            ("train:accuracy", 0.3 * epoch),
            ("validation:loss", 1.2 / epoch),
            ("validation:accuracy", 0.25 * epoch),
        ]:
            lines.append("algo-1_1  | " + format_metric(metric, value, epoch=epoch))
    lines.append("algo-1_1  | " + format_metric("test:loss", 0.4))
    lines.append("algo-1_1  | " + format_metric("test:accuracy", 0.91))
    (folder / "train.log").write_text("\n".join(lines) + "\n")
    (outputs / "latest").symlink_to(folder.name)
    return folder


def test_the_newest_local_run_gets_a_table_of_final_values_and_a_png_chart(smt, project_dir):
    folder = fake_run(project_dir / "outputs")

    done = smt("metrics")

    assert done.code == 0, done.err
    rows = dict(line.split() for line in done.out.splitlines()[1:-1])
    assert rows == {
        "train:loss": "0.333333",
        "train:accuracy": "0.9",
        "validation:loss": "0.4",
        "validation:accuracy": "0.75",
        "test:loss": "0.4",
        "test:accuracy": "0.91",
    }
    png = folder / "metrics.png"
    assert done.out.splitlines()[-1] == f"chart: {png}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_are_read_by_epoch_and_final_values_follow_the_last_epoch(project_dir):
    folder = fake_run(project_dir / "outputs")
    series = jobs.local_series(folder / "train.log")
    assert series["train:loss"] == [(1, 1.0), (2, 0.5), (3, 0.333333)]  # 6 digits, as printed
    assert series["test:accuracy"] == [(3, 0.91)]


def test_the_chart_has_a_panel_per_quantity_with_whole_epochs_and_test_as_a_final_point(
    project_dir,
):
    folder = fake_run(project_dir / "outputs", epochs=3)
    series = jobs.local_series(folder / "train.log")

    figure = jobs.chart(series, "digits-run-1", project_dir / "chart.png")

    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]
    for axis in figure.axes:
        train, validation, test = axis.get_lines()
        assert [line.get_label() for line in (train, validation, test)] == [
            "train",
            "validation",
            "test",
        ]
        assert list(train.get_xdata()) == list(validation.get_xdata()) == [1, 2, 3]
        assert list(test.get_xdata()) == [3] and test.get_linestyle() == "None"
        assert test.get_marker() != "None"
        ticks = [tick for tick in axis.get_xticks() if 1 <= tick <= 3]
        assert ticks == [1, 2, 3], axis.get_xticks()  # whole epochs only


def test_without_a_local_run_it_says_what_to_do(smt):
    done = smt("metrics")

    assert (done.code, done.out) == (2, "")
    assert (
        done.err
        == "error: JOB: no local run yet; run make train-local, or name a job: JOB=<name>\n"
    )


def test_a_remote_jobs_final_metrics_become_a_table_and_no_chart(
    smt, aws, overlay, project_dir, monkeypatch
):
    # in eu-west-1, settings.env's region us-east-1: --aws-region is what make passes
    create_training_job(dataclasses.replace(aws, region="eu-west-1"), JOB)
    finals = [{"MetricName": name, "Value": value, "Timestamp": 1.8e9} for name, value in FINALS]
    overlay.statuses[JOB] = [{"FinalMetricDataList": finals}]
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)

    done = smt("metrics", "--job", JOB, "--aws-region", "eu-west-1")

    assert done.code == 0, done.err
    header, *table = done.out.splitlines()
    assert header.split() == ["metric", "final", "value"]
    rows = [(name, float(value)) for name, value in map(str.split, table)]
    assert sorted(rows) == sorted(FINALS)
    assert not (project_dir / "outputs").exists()  # no chart: SageMaker's console charts a job


def test_a_remote_job_without_metrics_says_so_in_one_line(smt, aws, overlay, monkeypatch):
    create_training_job(aws, JOB)
    overlay.statuses[JOB] = [{"FinalMetricDataList": []}]
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)

    done = smt("metrics", "--job", JOB)

    assert (done.code, done.err) == (1, f"error: job {JOB} has no metrics (yet)\n")
