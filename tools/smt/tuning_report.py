"""The table of a tuning's trials, the same for make tune-local and make tune-status, and
which trial is best."""

import math
from typing import NamedTuple


class Trial(NamedTuple):
    name: str  # the trial's local run or its SageMaker training job
    hyperparameters: dict  # the tuned ones
    objective: float | None  # None: the objective metric never printed
    seconds: float | None
    status: str  # Completed, Failed, Stopped, InProgress, or "no objective"


def best(trials: list[Trial], direction: str) -> Trial | None:
    """The trial with the best finite objective ('maximize' or 'minimize'); None if none has one."""
    scored = [t for t in trials if t.objective is not None and math.isfinite(t.objective)]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda t: t.objective)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def table(trials: list[Trial], objective_name: str, direction: str, chosen: str | None = None):
    """One row per trial: name, each tuned hyperparameter, objective, time, status; * = the
    best (`chosen`: SageMaker's pick, else the best objective)."""
    names = sorted({name for t in trials for name in t.hyperparameters})
    chosen = chosen or getattr(best(trials, direction), "name", None)
    header = ["trial", *names, f"{objective_name} ({direction[:3]})", "time (s)", "status"]
    rows = [header] + [
        [("* " if t.name == chosen else "  ") + t.name]
        + [_cell(t.hyperparameters.get(n)) for n in names]
        + [_cell(t.objective), _cell(None if t.seconds is None else round(t.seconds, 1)), t.status]
        for t in trials
    ]
    rows[0][0] = "  " + rows[0][0]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)
