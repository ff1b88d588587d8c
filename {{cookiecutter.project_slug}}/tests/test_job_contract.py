"""job_contract.py, the declarations you edit: they must be usable as they stand (the tools,
smt, check them the same way before any job)."""

import random

import job_contract
import pytest
import sagemaker_runtime
from smt import search_space


@pytest.mark.parametrize("name", list(job_contract.HYPERPARAMETERS))
def test_every_declared_default_is_a_valid_value_of_its_type(name):
    kind, default, _lowest, help_text = job_contract.HYPERPARAMETERS[name]
    value = sagemaker_runtime.coerce_hyperparameter(name, default)
    assert value == default and type(value) is kind
    assert help_text


def test_the_declared_search_space_and_objective_are_ones_train_py_accepts():
    ranges = search_space.ranges()  # raises, naming the range, if train.py would reject one
    assert {r.name for r in ranges} == set(job_contract.SEARCH_SPACE)
    assert search_space.objective()[0].startswith("validation:")


def test_every_sampled_point_is_a_valid_set_of_hyperparameters_within_its_ranges():
    ranges, rng = search_space.ranges(), random.Random(0)
    for _ in range(200):
        point = search_space.sample(ranges, rng)
        for r in ranges:
            value = sagemaker_runtime.coerce_hyperparameter(r.name, point[r.name])
            assert value == point[r.name] and type(value) is type(point[r.name])
            assert value in r.values if r.scale is None else r.low <= value <= r.high
