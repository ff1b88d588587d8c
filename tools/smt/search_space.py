"""What both tunings (tune-local, tune) search and how they score and show their trials:
job_contract.py's SEARCH_SPACE and OBJECTIVE, checked as train.py checks hyperparameters."""

import math
import random
import re
from pathlib import Path
from typing import NamedTuple

from smt import project
from smt.errors import BadSetting
from smt.train import typed_hyperparameters


class Range(NamedTuple):
    name: str
    scale: str | None  # "linear" or "log"; None for a list of values
    low: float | None = None  # int or float, as the hyperparameter is
    high: float | None = None
    values: tuple = ()


class Trial(NamedTuple):
    name: str  # the trial's local run or its SageMaker training job
    hyperparameters: dict  # the tuned ones
    objective: float | None  # None: the objective metric never printed
    seconds: float | None
    status: str  # Completed, Failed, Stopped, InProgress, or "no objective"


def checked(settings) -> tuple[list[Range], tuple[str, str]]:
    """(the ranges, (OBJECTIVE's metric, 'maximize' or 'minimize')); BadSetting names the first
    thing wrong, before anything runs or is paid for."""
    if settings.max_parallel > settings.max_jobs:
        raise BadSetting(f"MAX_PARALLEL: {settings.max_parallel} is above MAX_JOBS"
                         f" {settings.max_jobs}, which is all the trainings there are; use"
                         f" MAX_PARALLEL <= {settings.max_jobs}")  # fmt: skip
    found, chosen = ranges(), objective()
    static = typed_hyperparameters(settings.hparams)
    for tuned in [r.name for r in found if r.name in static]:
        raise BadSetting(f"HPARAMS sets {tuned}, which SEARCH_SPACE tunes: drop it from HPARAMS,"
                         " or drop its range from SEARCH_SPACE in code/job_contract.py to keep"
                         " it fixed")  # fmt: skip
    return found, chosen


def objective() -> tuple[str, str]:
    """OBJECTIVE, checked: (a validation metric train.py prints, 'maximize' or 'minimize').
    The project's own tests call it too (tests/test_job_contract.py)."""
    contract = project.contract()
    name, direction = contract.OBJECTIVE
    if name not in contract.METRIC_NAMES:
        known = ", ".join(contract.METRIC_NAMES)
        raise BadSetting(f"OBJECTIVE {name!r} is not a metric train.py prints; it prints {known}")
    if not name.startswith("validation:"):
        raise BadSetting(f"OBJECTIVE {name!r}: tune on a validation:* metric; test:* is the"
                         " final, unseen score and train:* rewards overfitting")  # fmt: skip
    if str(direction).lower() not in ("maximize", "minimize"):
        raise BadSetting(f"OBJECTIVE direction {direction!r}: use 'maximize' or 'minimize'")
    return name, str(direction).lower()


def ranges(space: dict | None = None) -> list[Range]:
    space = project.contract().SEARCH_SPACE if space is None else space
    if not space:
        raise BadSetting("SEARCH_SPACE in code/job_contract.py is empty: give it a range to tune")
    return [_checked(name, declared) for name, declared in space.items()]


def _checked(name: str, declared) -> Range:
    where, hyperparameters = f"SEARCH_SPACE[{name!r}]", project.contract().HYPERPARAMETERS
    if name not in hyperparameters:
        raise BadSetting(f"{where}: no such hyperparameter; known: {', '.join(hyperparameters)}")

    def coerce(value):  # as train.py would: its type and its lowest allowed value
        try:
            return project.runtime().coerce_hyperparameter(name, value)
        except ValueError as error:
            raise BadSetting(f"{where}: {error}") from None

    if isinstance(declared, list):
        if not declared:
            raise BadSetting(f"{where}: an empty list of values; give at least one")
        return Range(name, None, values=tuple(map(coerce, declared)))
    shaped = isinstance(declared, tuple) and len(declared) == 3 and declared[0] in ("linear", "log")
    if not shaped:
        raise BadSetting(f"{where}: give ('linear' or 'log', lowest, highest) or a list of values")
    scale, low, high = declared[0], coerce(declared[1]), coerce(declared[2])
    if low >= high:
        raise BadSetting(f"{where}: lowest {low} is not below highest {high}: an empty range")
    if scale == "log" and low <= 0:
        raise BadSetting(f"{where}: a log scale needs lowest > 0, not {low}")
    return Range(name, scale, low, high)


def sample(checked: list[Range], rng: random.Random) -> dict:
    """One random point: uniform, or log-uniform on a log scale; whole for an int. Floats
    keep 4 significant digits (within their range): HPARAMS a user can copy."""
    point = {}
    for r in checked:
        if r.scale is None:
            point[r.name] = rng.choice(r.values)
        elif r.scale == "linear" and isinstance(r.low, int):
            point[r.name] = rng.randint(r.low, r.high)
        else:
            there, back = (math.log, math.exp) if r.scale == "log" else (float, float)
            value = back(rng.uniform(there(r.low), there(r.high)))
            value = round(value) if isinstance(r.low, int) else float(f"{value:.4g}")
            point[r.name] = min(max(value, r.low), r.high)
    return point


def regex_of(metric: str) -> str:
    return next(d["Regex"] for d in project.runtime().metric_definitions() if d["Name"] == metric)


def final_value(log: Path, metric: str) -> float | None:
    """The metric's last value in a log, found as SageMaker finds it: a tuner's objective."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    values = re.findall(regex_of(metric), text)
    return float(values[-1]) if values else None


def best(trials: list[Trial], direction: str) -> Trial | None:
    scored = [t for t in trials if t.objective is not None and math.isfinite(t.objective)]
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda t: t.objective, default=None)


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as columns, two spaces apart: the tuning tables, make runs, make status."""
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def table(trials: list[Trial], objective_name: str, direction: str, chosen: str | None = None):
    """One row per trial: name, each tuned hyperparameter, objective, time, status; * = the
    best (`chosen`: SageMaker's pick, else the best objective)."""
    names = sorted({name for t in trials for name in t.hyperparameters})
    chosen = chosen or getattr(best(trials, direction), "name", None)
    rows = [["  trial", *names, f"{objective_name} ({direction[:3]})", "time (s)", "status"]]
    for t in trials:
        tuned = [t.hyperparameters.get(n) for n in names]
        cells = map(cell, [*tuned, t.objective, t.seconds and round(t.seconds, 1)])
        rows.append([("* " if t.name == chosen else "  ") + t.name, *cells, t.status])
    return aligned(rows)
