"""What train.py promises the outside world: the hyperparameters it accepts and the
metric lines it prints.

train.py (inside the container) and run_estimator.py (on your machine) both import this
module, so the metric regexes SageMaker uses can never drift from the format train.py
prints, and a typo in a hyperparameter name is caught before a job is paid for.
Keep it free of heavy imports: the launcher loads it on every call.
"""

import math
import re

# name -> (type, default, lowest allowed value, help)
HYPERPARAMETERS = {
    "epochs": (int, 5, 1, "passes over the training data"),
    "batch-size": (int, 64, 1, "examples per step (global, across all hosts)"),
    "learning-rate": (float, 0.001, 0.0, "Adam learning rate (must be > 0)"),
    "seed": (int, 42, 0, "random seed, for repeatable runs"),
}


def coerce_hyperparameter(name: str, raw) -> int | float:
    """The typed value of one hyperparameter, from any form SageMaker may pass it in:
    3, "3", "3.0", '"3"' (JSON-encoded), "1e-3". Raises ValueError with a one-line
    reason that names the hyperparameter and says what is allowed."""
    if name not in HYPERPARAMETERS:
        known = ", ".join(HYPERPARAMETERS)
        raise ValueError(f"unknown hyperparameter {name!r}; known: {known}")
    kind, _default, lowest, _help = HYPERPARAMETERS[name]
    text = str(raw).strip().strip('"').strip("'")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(
            f"hyperparameter {name}={raw!r} is not a number; give a {kind.__name__}"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"hyperparameter {name}={raw!r} must be a finite number")
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"hyperparameter {name}={raw!r} is not a whole number")
        number = int(number)
    if number < lowest or (kind is float and lowest == 0.0 and number <= 0.0):
        bound = f"> {lowest}" if kind is float and lowest == 0.0 else f">= {lowest}"
        raise ValueError(f"hyperparameter {name}={raw!r} is out of range; it must be {bound}")
    return number


# Every metric train.py may print, in the order it prints them.
METRIC_NAMES = (
    "train:loss",
    "train:accuracy",
    "validation:loss",
    "validation:accuracy",
    "test:loss",
    "test:accuracy",
)

METRIC_PREFIX = "METRIC"
# A float as Python prints it: 0.5, -0.25, 1e-05, 3.2E+10, 7, nan and inf excluded.
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def format_metric(name: str, value: float, epoch: int | None = None) -> str:
    """One metric line, e.g. 'METRIC train:loss=0.0123 epoch=3'."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; add it to METRIC_NAMES")
    line = f"{METRIC_PREFIX} {name}={float(value):.6g}"
    return line if epoch is None else f"{line} epoch={epoch}"


def metric_regex(name: str) -> str:
    """The regex SageMaker applies to each log line; group 1 is the value."""
    return rf"{METRIC_PREFIX} {re.escape(name)}=({NUMBER})"


def metric_definitions() -> list[dict[str, str]]:
    """SageMaker MetricDefinitions (Name/Regex), one per metric train.py prints."""
    return [{"Name": name, "Regex": metric_regex(name)} for name in METRIC_NAMES]


def parse_metric_line(line: str) -> tuple[str, float, int | None] | None:
    """(name, value, epoch) for a metric line, None for any other line."""
    for name in METRIC_NAMES:
        match = re.search(metric_regex(name) + r"(?: epoch=(\d+))?", line)
        if match:
            epoch = int(match.group(2)) if match.group(2) else None
            return name, float(match.group(1)), epoch
    return None
