"""What both tunings (tune-local, tune) search and how they score: job_contract.py's
SEARCH_SPACE and OBJECTIVE, checked against the hyperparameters' own types and bounds (a
range train.py would reject fails before any trial runs, naming it), with the settings
they share; random points of the space; a trial's objective as SageMaker reads it."""

import math
import random
import re
from pathlib import Path
from typing import NamedTuple

from smt import project
from smt.errors import BadSetting

SCALES = ("linear", "log")
DIRECTIONS = ("maximize", "minimize")


class Range(NamedTuple):
    name: str
    kind: type  # int or float, from HYPERPARAMETERS; a categorical range keeps its values' type
    scale: str | None  # "linear" or "log"; None for a list of values
    low: float | None = None
    high: float | None = None
    values: tuple = ()


def checked(settings) -> tuple[list[Range], tuple[str, str]]:
    """The ranges and the objective, and the settings around them, before anything runs or
    is paid for: BadSetting names the first thing wrong."""
    from smt.train import typed_hyperparameters

    if settings.max_parallel > settings.max_jobs:
        raise BadSetting(f"MAX_PARALLEL: {settings.max_parallel} is above MAX_JOBS"
                         f" {settings.max_jobs}, which is all the trainings there are; use"
                         f" MAX_PARALLEL <= {settings.max_jobs}")  # fmt: skip
    found, goal, static = ranges(), objective(), typed_hyperparameters(settings.hparams)
    for name in [r.name for r in found if r.name in static]:
        raise BadSetting(f"HPARAMS sets {name}, which SEARCH_SPACE tunes: drop it from HPARAMS,"
                         " or drop its range from SEARCH_SPACE in code/job_contract.py to keep"
                         " it fixed")  # fmt: skip
    return found, goal


def ranges(space: dict | None = None) -> list[Range]:
    """SEARCH_SPACE as checked ranges."""
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
        return Range(name, hyperparameters[name][0], None, values=tuple(map(coerce, declared)))
    if not (isinstance(declared, tuple) and len(declared) == 3 and declared[0] in SCALES):
        raise BadSetting(f"{where}: give ('linear' or 'log', lowest, highest) or a list of values")
    scale, low, high = declared[0], coerce(declared[1]), coerce(declared[2])
    if low >= high:
        raise BadSetting(f"{where}: lowest {low} is not below highest {high}: an empty range")
    if scale == "log" and low <= 0:
        raise BadSetting(f"{where}: a log scale needs lowest > 0, not {low}")
    return Range(name, hyperparameters[name][0], scale, low, high)


def objective() -> tuple[str, str]:
    """(metric name, 'maximize' or 'minimize'): a validation metric that train.py prints."""
    contract = project.contract()
    name, direction = contract.OBJECTIVE
    if name not in contract.METRIC_NAMES:
        known = ", ".join(contract.METRIC_NAMES)
        raise BadSetting(f"OBJECTIVE {name!r} is not a metric train.py prints; it prints {known}")
    if not name.startswith("validation:"):
        raise BadSetting(f"OBJECTIVE {name!r}: tune on a validation:* metric; test:* is the"
                         " final, unseen score and train:* rewards overfitting")  # fmt: skip
    if str(direction).lower() not in DIRECTIONS:
        raise BadSetting(f"OBJECTIVE direction {direction!r}: use 'maximize' or 'minimize'")
    return name, str(direction).lower()


def sample(checked: list[Range], rng: random.Random) -> dict:
    """One random point: uniform, or log-uniform on a log scale; whole for an int. Floats
    keep 4 significant digits (within their range): HPARAMS a user can copy."""
    point = {}
    for r in checked:
        if r.scale is None:
            point[r.name] = rng.choice(r.values)
        elif r.scale == "linear" and r.kind is int:
            point[r.name] = rng.randint(r.low, r.high)
        else:
            log = r.scale == "log"
            value = rng.uniform(*((math.log(r.low), math.log(r.high)) if log else (r.low, r.high)))
            value = math.exp(value) if log else value
            value = round(value) if r.kind is int else float(f"{value:.4g}")
            point[r.name] = min(max(value, r.low), r.high)
    return point


def regex_of(metric: str) -> str:
    """The regex a SageMaker job is given for the metric (its metric definition)."""
    return next(d["Regex"] for d in project.runtime().metric_definitions() if d["Name"] == metric)


def final_value(log: Path, metric: str) -> float | None:
    """The metric's last value in a log, found as SageMaker finds it: a tuner's objective."""
    regex = regex_of(metric)
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    values = [float(m[1]) for line in text.splitlines() if (m := re.search(regex, line))]
    return values[-1] if values else None
