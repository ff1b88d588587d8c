"""make metrics on a local run: the final values and a chart, read with the metric format
train.py prints."""

import pytest

from project_tools import contract, metrics


@pytest.fixture(autouse=True)
def no_job_setting(monkeypatch):
    """make test exports the Makefile's settings: a JOB given to it is not these tests' run."""
    monkeypatch.delenv("JOB", raising=False)


def fake_run(outputs, name="digits-run-1", epochs=3):
    """A run folder as train-local leaves it, its log prefixed the way compose prefixes it."""
    format_metric = contract.runtime().format_metric
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


def test_the_newest_local_run_gets_a_table_of_final_values_and_a_png_chart(tmp_path, capsys):
    folder = fake_run(tmp_path)
    assert metrics.main(["--outputs-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "train:loss" in table and "0.333333" in table and "test:accuracy" in table
    png = folder / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_are_read_by_epoch_and_final_values_follow_the_last_epoch(tmp_path):
    folder = fake_run(tmp_path)
    series = metrics.local_series(folder / "train.log")
    assert series["train:loss"] == [(1, 1.0), (2, 0.5), (3, 0.333333)]  # 6 digits, as printed
    assert series["test:accuracy"] == [(3, 0.91)]


def test_the_chart_has_a_panel_per_quantity_with_whole_epochs_and_test_as_a_final_point(
    tmp_path,
):
    folder = fake_run(tmp_path, epochs=3)
    series = metrics.local_series(folder / "train.log")

    figure = metrics.chart(series, "digits-run-1", tmp_path / "chart.png")

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


def test_without_a_local_run_it_says_what_to_do(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        metrics.main(["--outputs-dir", str(tmp_path)])
    assert exit.value.code == 2
    assert "make train-local" in capsys.readouterr().err
