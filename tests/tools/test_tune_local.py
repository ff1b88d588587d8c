"""smt tune-local without Docker: its settings and the search space checked before any trial,
one line each; trials run as `smt train-local` children, here a stand-in that parses the
real command line and writes the log a training would; the best trial chosen from the logs,
the table, the chart; and make's variables that no command reads, refused."""

import json
import os
import random
import re
import sys
import textwrap

import pytest
from helpers import make_with_test_venv, trials_table
from smt import image, search_space, settings
from smt.search_space import Trial
from smt.tune_local import chart

# A stand-in for `python -m smt train-local ...`: smt's own parser reads the options the
# trial is given, then it leaves what a run does (outputs/<base job name>-<time>/train.log,
# outputs/latest pointing at it) with the objectives the test chose for this trial
# (FAKE_OBJECTIVES, by trial number).
TRAINING = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    from pathlib import Path
    from smt import cli
    assert sys.argv[1:4] == ["-m", "smt", "train-local"], sys.argv
    given = vars(cli.parser().parse_args(sys.argv[3:]))
    number = int(given["BASE_JOB_NAME"].rsplit("-", 1)[1])
    objective = json.loads(os.environ["FAKE_OBJECTIVES"])[number - 1]
    run = Path("outputs") / (given["BASE_JOB_NAME"] + "-20260101000000")
    run.mkdir(parents=True)
    log = [f"METRIC validation:accuracy={{v}} epoch={{e}}" for e, v in enumerate(objective, 1)]
    (run / "train.log").write_text("\\n".join(["epoch 1: 3 steps", *log]) + "\\n")
    (run / "call.json").write_text(json.dumps({{"given": given, "env": dict(os.environ)}}))
    Path("outputs/latest").unlink(missing_ok=True)
    Path("outputs/latest").symlink_to(run.name)  # as each local run ends
""")


@pytest.fixture
def trainings(project_dir, tmp_path, monkeypatch):
    """Trials run the stand-in (no Docker); no image is built. Set FAKE_OBJECTIVES: a list of
    each trial's validation:accuracy values, epoch by epoch."""
    python = tmp_path / "python"
    python.write_text(TRAINING.format(python=sys.executable))
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(image, "build", lambda settings: print(f"build {settings.image}"))
    return project_dir / "outputs"


def test_tune_local_keeps_the_best_trial_even_when_a_later_one_finishes_last(
    smt, trainings, monkeypatch
):
    # trial 2 is the best by its LAST value (0.9), though trial 1 printed the highest (0.95);
    # 3 and 4 start after it, and each run points outputs/latest at itself as it ends
    objectives = [[0.95, 0.5], [0.7, 0.9], [0.8], [0.6]]
    monkeypatch.setenv("FAKE_OBJECTIVES", json.dumps(objectives))

    done = smt("tune-local", "--max-jobs", "4", "--max-parallel", "2", "--tune-seed", "1")

    assert done.code == 0, done.err
    rows = trials_table(done.out)
    objective = [row["validation:accuracy (max)"] for row in rows.values()]
    assert objective == ["0.5", "0.9", "0.8", "0.6"]  # each trial's last value
    [starred] = [name for name, row in rows.items() if row["best"]]
    assert starred == list(rows)[1] and starred.split("-")[-2] == "2"
    assert f"best: {starred}, validation:accuracy=0.9 with " in done.out
    assert os.readlink(trainings / "latest") == starred  # the model serve-local serves
    [results] = trainings.glob("tune-*/objective.png")
    assert results.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_each_trial_is_smt_train_local_with_its_point_and_the_same_image_outside_make(
    smt, trainings, project_dir, monkeypatch
):
    monkeypatch.setenv("FAKE_OBJECTIVES", json.dumps([[0.5], [0.6]]))
    monkeypatch.setenv("MAKEFLAGS", "r -- MAX_JOBS=2 HPARAMS=epochs=2")  # make tune-local's
    monkeypatch.setenv("SMT_MAKE_GOALS", "tune-local")
    monkeypatch.setenv("MAX_JOBS", "2")
    monkeypatch.setenv("HPARAMS", "epochs=2")
    (project_dir / "data" / "training" / "more.npz").write_bytes(b"npz")  # a file a host

    done = smt("tune-local", "--instance-count", "2")

    assert done.code == 0, done.err
    tag = settings.derive(settings.load("tune-local", project_dir)).image_tag
    calls = [json.loads(p.read_text()) for p in sorted(trainings.glob("tune-*-*/call.json"))]
    printed = re.findall(r"^trial \d of 2: (.*)$", done.out, re.MULTILINE)
    assert [call["given"]["HPARAMS"] for call in calls] == printed
    assert all(hparams.startswith("epochs=2 learning-rate=") for hparams in printed)
    assert [call["given"]["INSTANCE_COUNT"] for call in calls] == ["2", "2"]
    assert {call["given"]["IMAGE_TAG"] for call in calls} == {tag}
    assert [call["env"].keys() & {"MAKEFLAGS", "SMT_MAKE_GOALS"} for call in calls] == [set()] * 2


def trials_tried(smt, seed: int) -> list[str]:
    done = smt("tune-local", "--max-jobs", "3", "--tune-seed", str(seed))
    assert done.code == 0, done.err
    return re.findall(r"^trial \d of 3: (.*)$", done.out, re.MULTILINE)


def test_the_same_tune_seed_tries_the_same_points_and_another_seed_others(
    smt, trainings, monkeypatch
):
    monkeypatch.setenv("FAKE_OBJECTIVES", json.dumps([[0.5]] * 3))

    assert trials_tried(smt, 3) == trials_tried(smt, 3) != trials_tried(smt, 4)


def test_a_tried_learning_rate_has_four_digits_to_copy_and_stays_in_its_range(project_dir):
    rng, ranges = random.Random(5), search_space.ranges()
    rates = [search_space.sample(ranges, rng)["learning-rate"] for _ in range(200)]

    assert all(len(repr(rate).replace(".", "").strip("0")) <= 4 for rate in rates), rates
    assert all(1e-4 <= rate <= 1e-1 for rate in rates), rates


BAD_INPUTS = [  # (option or job_contract.py's declaration, what the one line must say)
    (["--max-jobs", "0"], "MAX_JOBS: '0' is not a whole number >= 1"),
    (["--max-jobs", "x"], "MAX_JOBS: 'x' is not a whole number >= 1"),
    (["--max-parallel", "0"], "MAX_PARALLEL: '0' is not a whole number >= 1"),
    (["--max-parallel", "5"], "MAX_PARALLEL: 5 is above MAX_JOBS 4"),
    (["--tune-seed", "-1"], "TUNE_SEED: '-1' is not a whole number >= 0"),
    (["--hparams", "learning-rate=0.01"], "HPARAMS sets learning-rate, which SEARCH_SPACE tunes"),
    (["--hparams", "epochs=two"], "HPARAMS: hyperparameter epochs='two' is not a number"),
    (["--spot", "1"], "SPOT: a setting of remote jobs (make train-remote)"),
    (["--data-dir", "nowhere"], "DATA_DIR: no training data in nowhere/training; run: make data"),
    ('SEARCH_SPACE = {"learning-rate": ("log", 0.01, 0.01)}', "['learning-rate']: lowest 0.01"),
    ('SEARCH_SPACE = {"learning-rate": ("log", 0.1, 0.001)}', "is not below highest 0.001"),
    ('SEARCH_SPACE = {"seed": ("log", 0, 10)}', "['seed']: a log scale needs lowest > 0, not 0"),
    ('SEARCH_SPACE = {"dropout": ("linear", 0.1, 0.5)}', "['dropout']: no such hyperparameter"),
    ("SEARCH_SPACE = {}", "SEARCH_SPACE in code/job_contract.py is empty"),
    ('OBJECTIVE = ("test:accuracy", "maximize")', "OBJECTIVE 'test:accuracy': tune on a valid"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "says"), BAD_INPUTS, ids=[says for _, says in BAD_INPUTS])
def test_a_bad_setting_or_range_stops_tune_local_before_any_trial_with_one_line_naming_it(
    smt, trainings, project_dir, given, says
):
    if isinstance(given, str):  # an edit of code/job_contract.py: declared again, last, it wins
        contract = project_dir / "code" / "job_contract.py"
        contract.write_text(f"{contract.read_text()}\n{given}\n")
        given = []

    done = smt("tune-local", *given)

    assert (done.code, done.out) == (2, "")
    [line] = done.err.splitlines()
    assert line.startswith("error: ") and says in line, line
    assert not trainings.exists()  # no trial, no folder


def test_a_trials_objective_is_the_last_value_its_log_prints_by_sagemakers_regex(
    project_dir, tmp_path
):
    log = tmp_path / "train.log"
    log.write_text(
        "algo-1-x1  | METRIC validation:accuracy=0.5 epoch=1\n"
        "algo-1-x1  | METRIC validation:accuracy=7.5e-01 epoch=2\n"
        "algo-1-x1  | METRIC test:accuracy=0.99\n"
    )
    assert search_space.final_value(log, "validation:accuracy") == 0.75
    assert search_space.final_value(log, "validation:loss") is None  # never printed


def test_the_chart_has_a_panel_per_tuned_hyperparameter_with_a_log_axis_for_a_log_range(
    project_dir, tmp_path
):
    ranges = search_space.ranges({"learning-rate": ("log", 1e-4, 1e-1), "batch-size": [32, 64]})
    trials = [
        Trial("a", {"learning-rate": 0.001, "batch-size": 32}, 0.9, 10.0, "Completed"),
        Trial("b", {"learning-rate": 0.05, "batch-size": 64}, 0.7, 10.0, "Completed"),
        Trial("c", {"learning-rate": 0.01, "batch-size": 64}, None, 10.0, "no objective"),
    ]
    path = tmp_path / "objective.png"
    figure = chart(trials, ranges, ("validation:accuracy", "maximize"), "t", path)
    axes = figure.axes
    assert [a.get_xlabel() for a in axes] == ["learning-rate", "batch-size"]
    assert [a.get_xscale() for a in axes] == ["log", "linear"]
    trial_points, best = axes[0].get_lines()
    assert list(trial_points.get_xdata()) == [0.001, 0.05]  # c printed no objective
    assert (list(best.get_xdata()), list(best.get_ydata())) == ([0.001], [0.9])
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("variable", "says"),
    [("TUNE_SEED", "TUNE_SEED: make train-local does not read this setting; it is read by"
      " tune-local"),
     ("TRIALS", "TRIALS: make train-local does not read this setting; make help lists the"
      " settings")],
)  # fmt: skip
def test_a_tuning_setting_given_to_train_local_is_refused_naming_who_reads_it(
    smt, monkeypatch, variable, says
):
    monkeypatch.setenv("MAKEFLAGS", f"r -- {variable}=5")  # make train-local VARIABLE=5

    done = smt("train-local")

    assert (done.code, done.out, done.err) == (2, "", f"error: {says}\n")


def test_make_train_local_seed_5_is_refused_seed_is_a_hyperparameter(project_dir):
    done = make_with_test_venv(project_dir, "train-local", ".installed-tools", dict(os.environ),
                               SEED=5)  # fmt: skip

    assert done.returncode == 2 and done.stdout == ""
    error, make_says = done.stderr.splitlines()
    assert error == ('error: SEED: make train-local does not read this setting; a hyperparameter'
                     ' goes in HPARAMS: HPARAMS="seed=..."')  # fmt: skip
    assert re.fullmatch(r"make: \*\*\* \[Makefile:\d+: train-local\] Error 2", make_says)
