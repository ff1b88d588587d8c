"""Plumbing, make tune-local: TRIALS trainings here, each one `make train-local` (run_estimator.py
local, the same image) with hyperparameters drawn from SEARCH_SPACE (random search seeded by
SEED) over HPARAMS. Each trial's objective is read from its log with the metric definitions a
SageMaker job gets, its last value as SageMaker's tuner takes it. Then a table, a chart in
outputs/tune-<id>/, and outputs/latest pointing at the best trial. Ctrl-C stops after the
running trial(s) and keeps what finished; a second Ctrl-C stops those too."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from smt import search_space, tuning_report
from smt.project import runtime
from smt.local_run import point_latest
from smt.settings import SettingsParser

PROJECT_DIR = Path(__file__).resolve().parents[1]


def whole(setting: str, text: str, lowest: int) -> int:
    if not (text.strip().isdigit() and int(text) >= lowest):
        raise ValueError(f"{setting}={text!r} is not a whole number >= {lowest}: e.g. {setting}=4")
    return int(text)


def checked(args) -> dict:
    """The tuning's plan, every setting and the search space checked before the first trial;
    ValueError names the first bad one (run_estimator's own checks exit with their line)."""
    import run_estimator  # the launcher each trial runs: its checks of HPARAMS, data, hosts

    plan = dict(
        trials=whole("TRIALS", args.trials, 1),
        parallel=whole("PARALLEL", args.parallel, 1),
        seed=whole("SEED", args.seed, 0),
        ranges=search_space.ranges(),
        objective=search_space.objective(),
    )
    static = run_estimator.settings(["local", "--image", args.image, "--hparams", args.hparams])
    for name in [r.name for r in plan["ranges"] if r.name in static.hparams]:
        raise ValueError(
            f"HPARAMS sets {name}, which SEARCH_SPACE tunes: drop it from HPARAMS, or drop its"
            " range from SEARCH_SPACE in code/job_contract.py to keep it fixed"
        )
    rng = random.Random(plan["seed"])  # drawn up front: the same SEED, the same trials
    points = [search_space.sample(plan["ranges"], rng) for _ in range(plan["trials"])]
    plan["points"] = [readable(point, plan["ranges"]) for point in points]
    return plan


def readable(point: dict, ranges: list) -> dict:
    """Floats to 4 significant digits (within their range): HPARAMS a user can copy."""
    bounds = {r.name: (r.low, r.high) for r in ranges if r.scale and r.kind is float}
    return {
        name: min(max(float(f"{value:.4g}"), bounds[name][0]), bounds[name][1])
        if name in bounds
        else value
        for name, value in point.items()
    }


def regex_of(metric: str) -> str:
    """The regex a SageMaker job is given for the metric (its metric definition)."""
    return next(d["Regex"] for d in runtime().metric_definitions() if d["Name"] == metric)


def final_value(log: Path, metric: str) -> float | None:
    """The metric's last value in the log, found with the regex SageMaker is given for it."""
    regex = regex_of(metric)
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    values = [float(m[1]) for line in text.splitlines() if (m := re.search(regex, line))]
    return values[-1] if values else None


class Tuning:
    """The trials of one make tune-local, run PARALLEL at a time, each in its own session:
    Ctrl-C reaches this process alone, which lets the running trials finish."""

    def __init__(self, args, plan: dict):
        self.args, self.plan, self.stopping, self.running = args, plan, False, {}
        self.outputs = args.outputs_dir.resolve()
        self.id = time.strftime("%Y%m%d-%H%M%S")
        self.folder = self.outputs / f"tune-{self.id}"
        self.folder.mkdir(parents=True)

    def interrupted(self, signum, frame) -> None:
        if self.stopping:  # the second Ctrl-C: the running trials too, as Ctrl-C stops a run
            for process in list(self.running.values()):
                os.killpg(process.pid, signal.SIGINT)
            return
        self.stopping = True
        print("\nCtrl-C: no new trials; the running one finishes (Ctrl-C again stops it now)",
              file=sys.stderr, flush=True)  # fmt: skip

    def trial(self, number: int, point: dict) -> tuning_report.Trial:
        base = f"tune-{self.id}-{number}"  # the run's folder: outputs/<base>-<random>-<time>
        hparams = " ".join([self.args.hparams, *(f"{k}={v}" for k, v in point.items())]).strip()
        print(f"trial {number} of {self.plan['trials']}: {hparams}", flush=True)
        command = [sys.executable, str(PROJECT_DIR / "run_estimator.py"), "local"]
        command += ["--image", self.args.image, "--hparams", hparams, "--base-job-name", base]
        quiet = self.plan["parallel"] > 1  # then each trial's launcher output goes to a file
        out = (self.folder / f"trial-{number}.out").open("w") if quiet else None
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out and subprocess.STDOUT,
            start_new_session=True,  # not the terminal's Ctrl-C: this process decides
        )
        self.running[number] = process
        process.wait()
        seconds = time.monotonic() - started
        del self.running[number]
        if out:
            out.close()
        runs = [p for p in self.outputs.glob(f"{base}-*") if p.is_dir()]
        run = runs[0] if runs else None
        objective = final_value(run / "train.log", self.plan["objective"][0]) if run else None
        if run is None or (run / "failure").is_file():
            reason = (run / "failure").read_text() if run else ""
            stopped = "SIGTERM" in reason or "KeyboardInterrupt" in reason
            status, objective = "Stopped" if stopped else "Failed", None
        else:
            status = "Completed" if objective is not None else "no objective"
        name = run.name if run else base
        value = "not printed" if objective is None else f"{objective:.6g}"
        print(f"trial {number}: {status}, {self.plan['objective'][0]} {value}", flush=True)
        return tuning_report.Trial(name, point, objective, seconds, status)

    def run(self) -> list[tuning_report.Trial]:
        queue, pending, done = list(enumerate(self.plan["points"], 1)), {}, []
        previous = signal.signal(signal.SIGINT, self.interrupted)
        try:
            with ThreadPoolExecutor(self.plan["parallel"]) as pool:
                while pending or (queue and not self.stopping):
                    while queue and not self.stopping and len(pending) < self.plan["parallel"]:
                        number, point = queue.pop(0)
                        pending[pool.submit(self.trial, number, point)] = number
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    done += [(pending.pop(future), future.result()) for future in finished]
        finally:
            signal.signal(signal.SIGINT, previous)
        return [trial for _, trial in sorted(done)]


def chart(trials, ranges, objective: tuple[str, str], title: str, path: Path):
    """The objective against each tuned hyperparameter, a panel each; the best one starred."""
    from matplotlib.figure import Figure  # not pyplot: no display, no backend to choose

    scored = [t for t in trials if t.objective is not None]
    best = tuning_report.best(trials, objective[1])
    figure = Figure(figsize=(4.5 * len(ranges), 4), layout="tight")
    for axis, r in zip(figure.subplots(1, len(ranges), squeeze=False)[0], ranges, strict=True):
        x, y = [t.hyperparameters[r.name] for t in scored], [t.objective for t in scored]
        axis.plot(x, y, "o", label="trial")
        if best is not None:
            axis.plot(best.hyperparameters[r.name], best.objective, "*", ms=16, label="best")
        axis.set(xlabel=r.name, ylabel=objective[0], xscale="log" if r.scale == "log" else "linear")
        if r.scale is None:  # a list of values: a tick each
            axis.set_xticks(sorted(set(r.values)))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return figure


def report(tuning: Tuning, trials: list) -> int:
    """The table, the chart and the best trial, of the trials that finished; outputs/latest."""
    (name, direction), folder = tuning.plan["objective"], tuning.folder
    table = tuning_report.table(trials, name, direction)
    (folder / "table.txt").write_text(table + "\n")
    (folder / "trials.json").write_text(json.dumps([t._asdict() for t in trials], indent=1))
    print(f"\n{table}\n")
    silent = sum(t.status == "no objective" for t in trials)
    if silent:
        print(
            f"no objective: {silent} trial(s) never printed {name} (SageMaker's regex"
            f" {regex_of(name)}); a tuning job would fail the same way: make train.py print"
            " it, or set OBJECTIVE in code/job_contract.py to a metric it prints"
        )
    best = tuning_report.best(trials, direction)
    if best is None:
        print(f"no trial has an objective: nothing to choose; the trials' logs: {tuning.outputs}")
        return 1
    chart(
        trials,
        tuning.plan["ranges"],
        (name, direction),
        f"tune-{tuning.id}",
        folder / "objective.png",
    )
    point_latest(tuning.outputs, best.name)
    chosen = " ".join(f"{k}={v}" for k, v in best.hyperparameters.items())
    print(f"best: {best.name}, {name}={best.objective:.6g} with {chosen}")
    print(f"outputs/latest -> {best.name} (its model: outputs/{best.name}/model.tar.gz)")
    print(f"table and chart: {folder / 'table.txt'}, {folder / 'objective.png'}")
    static = f"{tuning.args.hparams} {chosen}".strip()
    print(f'next: make train-local HPARAMS="{static}", or make tune to search on SageMaker')
    return 0


def main(argv=None) -> int:
    p = SettingsParser(__doc__)
    p.setting("--image", "the training image (make tune-local passes make build's tag)")
    p.setting("--trials", "trainings to try", default="4")
    p.setting("--parallel", "trials at once", default="1")
    p.setting("--seed", "the seed of the random search", default="0")
    p.setting("--hparams", "hyperparameters every trial gets (not the tuned ones)", default="")
    p.add_argument("--outputs-dir", type=Path, default=PROJECT_DIR / "outputs")
    args = p.parse_args(argv)
    if not args.image:
        p.exit(2, "error: --image (or IMAGE) is required: run make tune-local\n")
    try:
        plan = checked(args)
    except ValueError as error:
        p.exit(2, f"error: {error}\n")
    tuning = Tuning(args, plan)
    (name, direction) = plan["objective"]
    count, parallel, seed = plan["trials"], plan["parallel"], plan["seed"]
    print(
        f"tune-local: {count} trial(s), {parallel} at a time, SEED={seed}, {direction} {name};"
        f" results in {tuning.folder}",
        flush=True,
    )
    trials = tuning.run()  # the finished ones
    if not trials:
        print("stopped before any trial finished: nothing to report", file=sys.stderr)
        return 130
    code = report(tuning, trials)
    return 130 if tuning.stopping else code


if __name__ == "__main__":
    sys.exit(main())
