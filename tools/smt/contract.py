"""Plumbing: code/sagemaker_runtime.py (coerce_hyperparameter, metric_definitions ...) and the
code/job_contract.py it imports, on the host: loaded by file path, as code/ is the image's
folder, not a package; neither imports anything heavy when loaded."""

import importlib.util
import sys
from pathlib import Path


def runtime():
    for name in ("job_contract", "sagemaker_runtime"):  # the first is the second's import
        if name not in sys.modules:
            path = Path(__file__).resolve().parents[1] / "code" / f"{name}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[name])
    return sys.modules["sagemaker_runtime"]


def sdk_metric_definitions() -> list:
    """ModelTrainer's metric definitions: the regexes of the lines train.py prints."""
    from sagemaker.core.training.configs import MetricDefinition

    return [
        MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in runtime().metric_definitions()
    ]


def declarations():
    """code/job_contract.py itself: HYPERPARAMETERS, SEARCH_SPACE, OBJECTIVE, METRIC_NAMES."""
    runtime()
    return sys.modules["job_contract"]
