"""make metrics on a local run: the final values and a chart, read with the job contract."""

import metrics
from job_contract import format_metric


def fake_run(outputs, name="digits-run-1", epochs=3):
    """A run folder as train-local leaves it, its log prefixed the way compose prefixes it."""
    folder = outputs / name
    folder.mkdir(parents=True)
    lines = ["algo-1_1  | Epoch 1/3"]
    for epoch in range(1, epochs + 1):
        lines.append("algo-1_1  | " + format_metric("train:loss", 1.0 / epoch, epoch=epoch))
        lines.append("algo-1_1  | " + format_metric("train:accuracy", 0.3 * epoch, epoch=epoch))
    lines.append("algo-1_1  | " + format_metric("test:accuracy", 0.91))
    (folder / "train.log").write_text("\n".join(lines) + "\n")
    (outputs / "latest").symlink_to(name)
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


def test_without_a_local_run_it_says_what_to_do(tmp_path, capsys):
    assert metrics.main(["--outputs-dir", str(tmp_path)]) == 2
    assert "make train-local" in capsys.readouterr().err
