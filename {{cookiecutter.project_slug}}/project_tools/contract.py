"""Plumbing: the container code's contract on the host (the hyperparameters train.py takes,
the metrics it prints and their format). code/ is the folder the image runs, not a package,
so code/job_contract.py and code/sagemaker_runtime.py are loaded by file path; neither
imports anything heavy when loaded."""

import importlib.util
import sys
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parents[1] / "code"


def load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CODE_DIR / f"{name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)  # before it runs:
        spec.loader.exec_module(module)  # sagemaker_runtime imports job_contract
    return sys.modules[name]


def job_contract():
    """code/job_contract.py: HYPERPARAMETERS, METRIC_NAMES"""
    return load("job_contract")


def runtime():
    """code/sagemaker_runtime.py: coerce_hyperparameter, metric_definitions, parse_metric_line"""
    job_contract()
    return load("sagemaker_runtime")


def sdk_metric_definitions() -> list:
    """ModelTrainer's metric definitions: the regexes of the lines train.py prints."""
    from sagemaker.core.training.configs import MetricDefinition

    return [
        MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in runtime().metric_definitions()
    ]
