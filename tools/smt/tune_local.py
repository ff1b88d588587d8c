"""make tune-local: MAX_JOBS trainings here, MAX_PARALLEL at once, each `smt train-local` at
a random point of SEARCH_SPACE; a table, a chart, and outputs/latest at the best trial."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from smt import aws, image, search_space, tracking, train
from smt.local_run import point_latest, stopped
from smt.search_space import Trial, best, table
from smt.settings import for_command

MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "SMT_MAKE_GOALS")  # no `make` runs it


def trial_command(settings, hparams: str, base: str) -> list[str]:
    """`smt train-local` for a trial, with every other setting it reads as tune-local has it."""
    given = {"HPARAMS": hparams, "BASE_JOB_NAME": base, "IMAGE_TAG": settings.image_tag}
    command = [sys.executable, "-m", "smt", "train-local"]
    for setting in for_command("train-local"):
        value = given.get(setting.name, getattr(settings, setting.name.lower(), None))
        if value is not None:
            command += [setting.option, str(int(value) if isinstance(value, bool) else value)]
    return command


class Tuning:
    """The trials of one make tune-local, each in its own session: Ctrl-C reaches this
    process alone, which lets the running trials finish."""

    def __init__(self, settings, ranges, objective):
        self.settings, self.ranges, self.objective = settings, ranges, objective
        self.stopping, self.running = False, {}
        rng = random.Random(settings.tune_seed)  # drawn up front: the same seed, the same trials
        self.points = [search_space.sample(ranges, rng) for _ in range(settings.max_jobs)]
        self.outputs = (settings.project_dir / "outputs").resolve()
        self.name = aws.unique_name("tune")  # tune-<random>-<time>: two in a second differ
        self.folder = self.outputs / self.name
        self.folder.mkdir(parents=True)

    def interrupted(self, signum, frame) -> None:
        if self.stopping:  # the second Ctrl-C: the running trials too, as Ctrl-C stops a run
            for process in list(self.running.values()):
                os.killpg(process.pid, signal.SIGINT)
            return
        self.stopping = True
        print("\nCtrl-C: no new trials; the running one finishes (Ctrl-C again stops it now)",
              file=sys.stderr, flush=True)  # fmt: skip

    def trial(self, number: int, point: dict) -> Trial | None:
        if self.stopping:  # after Ctrl-C: no new trials
            return None
        base = f"{self.name}-{number}"  # the run's folder: outputs/<base>-<time>
        tuned = [f"{k}={v}" for k, v in point.items()]
        hparams = " ".join(filter(None, [self.settings.hparams, *tuned]))
        print(f"trial {number} of {len(self.points)}: {hparams}", flush=True)
        quiet = self.settings.max_parallel > 1  # then each trial's output goes to a file
        out = (self.folder / f"trial-{number}.out").open("w") if quiet else None
        environment = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
        environment[tracking.PARENT] = self.name  # each trial's MLflow run is the search's child
        started = time.monotonic()
        process = subprocess.Popen(trial_command(self.settings, hparams, base),
                                   cwd=self.settings.project_dir, env=environment,
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=out and subprocess.STDOUT,
                                   start_new_session=True)  # not the terminal's Ctrl-C  # fmt: skip
        self.running[number] = process
        process.wait()  # a training has no time limit here, as train-local has none
        seconds = time.monotonic() - started
        del self.running[number]
        if out:
            out.close()
        run = next((p for p in self.outputs.glob(f"{base}-*") if p.is_dir()), None)
        metric = self.objective[0]
        value = search_space.final_value(run / "train.log", metric) if run else None
        if run is None or (run / "failure").is_file():
            reason = (run / "failure").read_text() if run else ""
            status, value = "Stopped" if stopped(reason) else "Failed", None
        else:
            status = "Completed" if value is not None else "no objective"
        shown = "not printed" if value is None else f"{value:.6g}"
        print(f"trial {number}: {status}, {metric} {shown}", flush=True)
        return Trial(run.name if run else base, point, value, seconds, status)

    def run(self) -> list[Trial]:
        """The trials that finished, in order."""
        previous = signal.signal(signal.SIGINT, self.interrupted)
        try:
            with ThreadPoolExecutor(self.settings.max_parallel) as pool:
                done = list(pool.map(self.trial, range(1, len(self.points) + 1), self.points))
        finally:
            signal.signal(signal.SIGINT, previous)
        return [trial for trial in done if trial is not None]


def chart(trials, ranges, objective: tuple[str, str], title: str, path: Path):
    """The objective against each tuned hyperparameter, a panel each; the best one starred."""
    from matplotlib.figure import Figure  # not pyplot: no display, no backend to choose

    scored, chosen = [t for t in trials if t.objective is not None], best(trials, objective[1])
    figure = Figure(figsize=(4.5 * len(ranges), 4), layout="tight")
    for axis, r in zip(figure.subplots(1, len(ranges), squeeze=False)[0], ranges, strict=True):
        x, y = [t.hyperparameters[r.name] for t in scored], [t.objective for t in scored]
        axis.plot(x, y, "o", label="trial")
        axis.plot(chosen.hyperparameters[r.name], chosen.objective, "*", ms=16, label="best")
        axis.set(xlabel=r.name, ylabel=objective[0], xscale="log" if r.scale == "log" else "linear")
        if r.scale is None:  # a list of values: a tick each
            axis.set_xticks(sorted(set(r.values)))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return figure


def report(tuning: Tuning, trials: list[Trial]) -> int:
    """The table, the chart and the best trial, of the trials that finished; outputs/latest."""
    (name, direction), folder = tuning.objective, tuning.folder
    text = table(trials, name, direction)
    (folder / "table.txt").write_text(text + "\n")
    (folder / "trials.json").write_text(json.dumps([t._asdict() for t in trials], indent=1))
    print(f"\n{text}\n")
    if silent := sum(t.status == "no objective" for t in trials):
        print(f"no objective: {silent} trial(s) never printed {name} (SageMaker's regex"
              f" {search_space.regex_of(name)}); a tuning job would fail the same way: make"
              " train.py print it, or set OBJECTIVE in code/job_contract.py to a metric it"
              " prints")  # fmt: skip
    chosen = best(trials, direction)
    if chosen is None:
        print(f"no trial has an objective: nothing to choose; the trials' logs: {tuning.outputs}")
        return 1
    chart(trials, tuning.ranges, tuning.objective, tuning.name, folder / "objective.png")
    point_latest(tuning.outputs, chosen.name)
    hparams = " ".join(f"{k}={v}" for k, v in chosen.hyperparameters.items())
    print(f"best: {chosen.name}, {name}={chosen.objective:.6g} with {hparams}")
    print(f"outputs/latest -> {chosen.name} (its model: outputs/{chosen.name}/model.tar.gz)")
    print(f"table and chart: {folder / 'table.txt'}, {folder / 'objective.png'}")
    static = f"{tuning.settings.hparams} {hparams}".strip()
    print(f'next: make train-local HPARAMS="{static}", or make tune to search on SageMaker')
    return 0


def track_search(tuning: Tuning, trials: list[Trial], record: dict) -> None:
    """The search's MLflow run ends with its best; trials a busy SQLite file refused follow."""
    chosen = best(trials, tuning.objective[1])
    record.update(status="KILLED" if tuning.stopping else "FINISHED" if chosen else "FAILED",
                  end=tracking.ms(), folder=str(tuning.folder))  # fmt: skip
    if chosen:
        record["metrics"] = {f"best:{tuning.objective[0]}": chosen.objective}
        record["tags"]["best.trial"] = chosen.name
    tracker = tracking.Tracker(tuning.settings)
    if tracker.track(record):
        tracking.catch_up(tracker, parent=tuning.name)


def main(settings) -> int:
    ranges, objective = search_space.checked(settings)
    j = train.job(settings, remote=False)  # train-local's checks, once, before any trial
    if not settings.code_mount:  # once, before trials that may start together
        image.build(settings)
    tuning = Tuning(settings, ranges, objective)
    tags = tracking.common_tags(settings, j, "local") | {"kind": "tune-local"}
    params = tracking.typed_parameters(j.hyperparameters)
    record = {"name": tuning.name, "parent": None, "start": tracking.ms(), "tags": tags,
              "status": "RUNNING", "params": params | tracking.search_parameters(
                  settings, ranges, objective)}  # fmt: skip
    tracking.Tracker(settings).track(record)  # before the trials: they are its children
    print(f"tune-local: {settings.max_jobs} trial(s), {settings.max_parallel} at a time,"
          f" TUNE_SEED={settings.tune_seed}, {objective[1]} {objective[0]}; results in"
          f" {tuning.folder}", flush=True)  # fmt: skip
    trials = tuning.run()  # the finished ones
    if not trials:
        print("stopped before any trial finished: nothing to report", file=sys.stderr)
        return 130
    code = report(tuning, trials)
    track_search(tuning, trials, record)
    return 130 if tuning.stopping else code
