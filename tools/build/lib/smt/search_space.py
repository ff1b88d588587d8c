"""Plumbing: job_contract.py's SEARCH_SPACE and OBJECTIVE, checked against the hyperparameters'
own types and bounds (a range that train.py would reject fails before any trial runs, naming
the hyperparameter), and sampled for local random search."""

import math
import random
from typing import NamedTuple

from smt.project import contract as declarations
from smt.project import runtime

SCALES = ("linear", "log")
DIRECTIONS = ("maximize", "minimize")


class Range(NamedTuple):
    name: str
    kind: type  # int or float, from HYPERPARAMETERS; a categorical range keeps its values' type
    scale: str | None  # "linear" or "log"; None for a list of values
    low: float | None = None
    high: float | None = None
    values: tuple = ()


def ranges(space: dict | None = None) -> list[Range]:
    """SEARCH_SPACE as checked ranges; ValueError names the first bad one and what to do."""
    space = declarations().SEARCH_SPACE if space is None else space
    if not space:
        raise ValueError("SEARCH_SPACE in code/job_contract.py is empty: give it a range to tune")
    return [_checked(name, declared) for name, declared in space.items()]


def _checked(name: str, declared) -> Range:
    where = f"SEARCH_SPACE[{name!r}]"
    hyperparameters = declarations().HYPERPARAMETERS
    if name not in hyperparameters:
        raise ValueError(f"{where}: no such hyperparameter; known: {', '.join(hyperparameters)}")
    kind = hyperparameters[name][0]

    def coerce(value):  # as train.py would: its type and its lowest allowed value
        try:
            return runtime().coerce_hyperparameter(name, value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    if isinstance(declared, list):
        if not declared:
            raise ValueError(f"{where}: an empty list of values; give at least one")
        return Range(name, kind, None, values=tuple(coerce(v) for v in declared))
    if not (isinstance(declared, tuple) and len(declared) == 3 and declared[0] in SCALES):
        raise ValueError(f"{where}: give ('linear' or 'log', lowest, highest) or a list of values")
    scale, low, high = declared[0], coerce(declared[1]), coerce(declared[2])
    if low >= high:
        raise ValueError(f"{where}: lowest {low} is not below highest {high}: an empty range")
    if scale == "log" and low <= 0:
        raise ValueError(f"{where}: a log scale needs lowest > 0, not {low}")
    return Range(name, kind, scale, low, high)


def objective(declared: tuple | None = None) -> tuple[str, str]:
    """(metric name, 'maximize' or 'minimize'): a validation metric that train.py prints."""
    name, direction = declarations().OBJECTIVE if declared is None else declared
    metrics = declarations().METRIC_NAMES
    if name not in metrics:
        known = ", ".join(metrics)
        raise ValueError(f"OBJECTIVE {name!r} is not a metric train.py prints; it prints {known}")
    if not name.startswith("validation:"):
        raise ValueError(
            f"OBJECTIVE {name!r}: tune on a validation:* metric; test:* is the final, unseen"
            " score and train:* rewards overfitting"
        )
    if str(direction).lower() not in DIRECTIONS:
        raise ValueError(f"OBJECTIVE direction {direction!r}: use 'maximize' or 'minimize'")
    return name, str(direction).lower()


def sample(checked: list[Range], rng: random.Random) -> dict:
    """One random point of the space: uniform, or log-uniform on a log scale; whole for an int."""
    point = {}
    for r in checked:
        if r.scale is None:
            point[r.name] = rng.choice(r.values)
            continue
        if r.scale == "linear" and r.kind is int:
            point[r.name] = rng.randint(r.low, r.high)
            continue
        if r.scale == "log":
            value = math.exp(rng.uniform(math.log(r.low), math.log(r.high)))
        else:
            value = rng.uniform(r.low, r.high)
        point[r.name] = min(max(round(value), r.low), r.high) if r.kind is int else value
    return point
