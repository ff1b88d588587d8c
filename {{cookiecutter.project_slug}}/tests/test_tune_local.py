"""make tune-local before any trial runs: its settings and the search space checked, one line
each; the objective read from a trial's log as SageMaker reads it; the chart's axes."""

import argparse

import job_contract
import pytest

from project_tools import tune_local
from project_tools.tuning_report import Trial

SETTINGS = ("TRIALS", "PARALLEL", "SEED", "HPARAMS", "IMAGE", "INSTANCE_COUNT", "CODE_MOUNT")


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A data folder with a training channel, and none of the Makefile's settings."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "data" / "training").mkdir(parents=True)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


BAD_INPUTS = [  # (setting, value or the job_contract.py edit, what the one line must say)
    ("TRIALS", "0", "TRIALS='0' is not a whole number >= 1"),
    ("TRIALS", "x", "TRIALS='x' is not a whole number >= 1"),
    ("PARALLEL", "0", "PARALLEL='0' is not a whole number >= 1"),
    ("SEED", "-1", "SEED='-1' is not a whole number >= 0"),
    ("HPARAMS", "learning-rate=0.01", "HPARAMS sets learning-rate, which SEARCH_SPACE tunes"),
    ("HPARAMS", "epochs=two", "HPARAMS: hyperparameter epochs='two' is not a number"),
    ("SEARCH_SPACE", {"learning-rate": ("log", 0.01, 0.01)}, "['learning-rate']: lowest 0.01"),
    ("SEARCH_SPACE", {"learning-rate": ("log", 0.1, 0.001)}, "is not below highest 0.001"),
    ("SEARCH_SPACE", {"seed": ("log", 0, 10)}, "['seed']: a log scale needs lowest > 0, not 0"),
    ("SEARCH_SPACE", {"dropout": ("linear", 0.1, 0.5)}, "['dropout']: no such hyperparameter"),
    ("SEARCH_SPACE", {}, "SEARCH_SPACE in code/job_contract.py is empty"),
    ("OBJECTIVE", ("test:accuracy", "maximize"), "OBJECTIVE 'test:accuracy': tune on a valid"),
]


@pytest.mark.parametrize(
    "setting, value, message", BAD_INPUTS, ids=[f"{s}={v}" for s, v, _ in BAD_INPUTS]
)
def test_a_bad_setting_or_range_stops_tune_local_before_any_trial_with_one_line_naming_it(
    data, monkeypatch, capsys, setting, value, message
):
    if isinstance(value, str):
        monkeypatch.setenv(setting, value)
    else:  # an edit of code/job_contract.py
        monkeypatch.setattr(job_contract, setting, value)
    with pytest.raises(SystemExit) as stopped:
        tune_local.main(["--image", "x:1", "--outputs-dir", str(data / "outputs")])
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and setting in line and message in line, line
    assert not (data / "outputs").exists()  # no trial, no folder


def plan(seed: str) -> dict:
    args = argparse.Namespace(image="x:1", trials="5", parallel="1", seed=seed, hparams="")
    return tune_local.checked(args)


def test_the_same_seed_tries_the_same_points_and_another_seed_others(data):
    assert plan("3")["points"] == plan("3")["points"]
    assert plan("3")["points"] != plan("4")["points"]


def test_a_tried_learning_rate_has_four_digits_to_copy_and_stays_in_its_range(data):
    rates = [point["learning-rate"] for point in plan("5")["points"]]
    assert all(float(f"{rate:.4g}") == rate and 1e-4 <= rate <= 1e-1 for rate in rates), rates


def test_a_trials_objective_is_the_last_value_its_log_prints_by_sagemakers_regex(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "algo-1-x1  | METRIC validation:accuracy=0.5 epoch=1\n"
        "algo-1-x1  | METRIC validation:accuracy=0.75 epoch=2\n"
        "algo-1-x1  | METRIC test:accuracy=0.99\n"
    )
    assert tune_local.final_value(log, "validation:accuracy") == 0.75
    assert tune_local.final_value(log, "validation:loss") is None  # never printed


def test_the_chart_has_a_panel_per_tuned_hyperparameter_with_a_log_axis_for_a_log_range(
    tmp_path,
):
    ranges = tune_local.search_space.ranges(
        {"learning-rate": ("log", 1e-4, 1e-1), "batch-size": [32, 64]}
    )
    trials = [
        Trial("a", {"learning-rate": 0.001, "batch-size": 32}, 0.9, 10.0, "Completed"),
        Trial("b", {"learning-rate": 0.05, "batch-size": 64}, 0.7, 10.0, "Completed"),
        Trial("c", {"learning-rate": 0.01, "batch-size": 64}, None, 10.0, "no objective"),
    ]
    path = tmp_path / "objective.png"
    figure = tune_local.chart(trials, ranges, ("validation:accuracy", "maximize"), "t", path)
    axes = figure.axes
    assert [a.get_xlabel() for a in axes] == ["learning-rate", "batch-size"]
    assert [a.get_xscale() for a in axes] == ["log", "linear"]
    trial_points, best = axes[0].get_lines()
    assert list(trial_points.get_xdata()) == [0.001, 0.05]  # c printed no objective
    assert (list(best.get_xdata()), list(best.get_ydata())) == ([0.001], [0.9])
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
