"""make tune-local on real engines: trials in SageMaker local mode on the shared digits
project, their table, chart and best model; Ctrl-C between trials; an objective that
train.py never prints."""

import math
import os
import re
import shutil
import signal
import subprocess
import time

from engines import TIMINGS, Stopwatch, make
from helpers import trials_table

OBJECTIVE = "validation:accuracy"
HPARAMS = "epochs=3"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tune_local(path, project, check=True, **settings):
    env, all_settings = project["env"], {**project["settings"], **settings}
    return make(path, "tune-local", env=env, check=check, timeout=1800, **all_settings)


def results_folder(stdout: str):
    from pathlib import Path

    return Path(re.search(r"results in (\S+)$", stdout, re.M)[1])


def last_logged(run_folder, metric: str) -> float:
    """The metric's last value in a trial's log, read here with a regex of this test's own."""
    log = (run_folder / "train.log").read_text()
    return float(re.findall(rf"METRIC {re.escape(metric)}=(\S+) epoch=\d+$", log, re.M)[-1])


def test_tune_local_tables_charts_and_keeps_the_best_of_three_trials_and_tracks_them(project):
    path, outputs = project["path"], project["path"] / "outputs"
    with Stopwatch("train-local, digits, epochs=3 (to compare a trial with)") as single:
        make(path, "train-local", env=project["env"], HPARAMS=HPARAMS, **project["settings"])
    with Stopwatch("tune-local, 3 trials of digits, epochs=3") as tuning:
        done = tune_local(path, project, MAX_JOBS=3, TUNE_SEED=1, HPARAMS=HPARAMS)
    rows = trials_table(done.stdout)
    assert len(rows) == 3 and {r["status"] for r in rows.values()} == {"Completed"}
    for name in rows:  # each trial got data/validation as its channel, as train-local does
        assert "no validation channel" not in (outputs / name / "train.log").read_text()
    header = f"{OBJECTIVE} (max)"
    printed = {name: float(row[header]) for name, row in rows.items()}
    assert all(math.isfinite(value) for value in printed.values())
    logged = {name: last_logged(outputs / name, OBJECTIVE) for name in rows}
    assert printed == {name: float(f"{value:.4g}") for name, value in logged.items()}
    [starred] = [name for name, row in rows.items() if row["best"]]
    assert starred == max(logged, key=logged.get)  # the first of any equal best, as max()
    assert f"best: {starred}, {OBJECTIVE}=" in done.stdout
    png = (results_folder(done.stdout) / "objective.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    from PIL import Image  # matplotlib's own dependency

    with Image.open(results_folder(done.stdout) / "objective.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 2 * image.size[1]  # two panels
    assert (outputs / "latest").resolve() == (outputs / starred).resolve()
    assert (outputs / "latest" / "model.tar.gz").is_file()
    # MLflow (the embedded default): the search is a run, each trial a run of its own under it
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{outputs / 'mlflow' / 'mlflow.db'}")
    search = results_folder(done.stdout).name
    experiments = [e.experiment_id for e in client.search_experiments()]
    [parent] = client.search_runs(experiments, f"attributes.run_name = '{search}'")
    assert (parent.info.status, parent.data.tags["kind"]) == ("FINISHED", "tune-local")
    assert parent.data.metrics[f"best:{OBJECTIVE}"] == logged[starred]
    assert parent.data.tags["best.trial"] == starred
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == sorted(rows)
    assert {c.info.status for c in children} == {"FINISHED"}
    per_trial = sum(float(row["time (s)"]) for row in rows.values()) / len(rows)
    TIMINGS["tune-local: a trial's mean wall time"] = per_trial
    print(
        f"a trial {per_trial:.1f} s, a train-local {single.seconds:.1f} s (tune {tuning.seconds})"
    )


def test_ctrl_c_stops_after_the_running_trial_and_keeps_its_result(project):
    settings = {**project["settings"], "MAX_JOBS": 3, "TUNE_SEED": 2, "HPARAMS": "epochs=2"}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "tune-local", *(f"{k}={v}" for k, v in settings.items())],
        cwd=project["path"],
        env=project["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own: Ctrl-C reaches make and its tools
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("trial 1 of 3:"):
            time.sleep(3)  # the trial's smt train-local has started
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert process.wait(timeout=900) != 0
    stdout = "".join(output)
    assert "Ctrl-C: no new trials" in stdout and "trial 2 of 3" not in stdout
    rows = trials_table(stdout)
    assert [row["status"] for row in rows.values()] == ["Completed"]
    assert (results_folder(stdout) / "objective.png").read_bytes().startswith(PNG_SIGNATURE)


def test_an_objective_train_py_never_prints_is_marked_no_objective(project, tmp_path):
    tag = make(project["path"], "-s", "print-IMAGE_TAG", env=project["env"],
               **project["settings"]).stdout.strip()  # before the edit: no build  # fmt: skip
    copy = tmp_path / "project"
    shutil.copytree(project["path"], copy, ignore=shutil.ignore_patterns("outputs", "checkp*"))
    contract = copy / "code" / "job_contract.py"
    text = contract.read_text().replace(
        '    "test:accuracy",\n', '    "test:accuracy",\n    "validation:f1",\n'
    )
    text = text.replace('OBJECTIVE = ("validation:accuracy"', 'OBJECTIVE = ("validation:f1"')
    contract.write_text(text)
    done = tune_local(copy, project, check=False, MAX_JOBS=1, HPARAMS="epochs=1", IMAGE_TAG=tag)
    assert done.returncode != 0
    [row] = trials_table(done.stdout).values()
    assert (row["status"], row["validation:f1 (max)"], row["best"]) == ("no objective", "-", False)
    assert "no objective: 1 trial(s) never printed validation:f1" in done.stdout
    assert "no trial has an objective" in done.stdout
