"""The metric format and the hyperparameter types shared by train.py and the launcher."""

import re

import job_contract
import pytest


@pytest.mark.parametrize("value", [0.5, -0.25, 1e-05, -3.5e12, 0.0, 7.0, 123456789.0])
def test_a_printed_metric_is_read_back_by_its_regex_negatives_and_exponents_included(value):
    line = job_contract.format_metric("train:loss", value, epoch=3)
    match = re.search(job_contract.metric_regex("train:loss"), line)
    assert match and float(match.group(1)) == pytest.approx(value, rel=1e-5)


def test_metric_regexes_do_not_match_each_others_lines():
    line = job_contract.format_metric("validation:loss", 0.1)
    assert not re.search(job_contract.metric_regex("train:loss"), line)


def test_a_metric_line_parses_into_name_value_and_epoch():
    line = job_contract.format_metric("test:accuracy", 0.97, epoch=2)
    assert job_contract.parse_metric_line("x " + line) == ("test:accuracy", 0.97, 2)
    assert job_contract.parse_metric_line("Epoch 2/3") is None


def test_an_unknown_metric_name_cannot_be_printed():
    with pytest.raises(ValueError, match="unknown metric"):
        job_contract.format_metric("train:los", 1.0)


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("epochs", "3", 3),
        ("epochs", 3, 3),
        ("epochs", "3.0", 3),
        ("epochs", '"3"', 3),
        ("learning-rate", "1e-3", 0.001),
        ("batch-size", " 64 ", 64),
    ],
)
def test_hyperparameters_accept_the_forms_sagemaker_passes(name, raw, expected):
    assert job_contract.coerce_hyperparameter(name, raw) == expected


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("epochs", "2.5", "not a whole number"),
        ("epochs", "0", ">= 1"),
        ("learning-rate", "0", "> 0"),
        ("learning-rate", "nan", "finite"),
        ("batch-size", "many", "not a number"),
        ("epoch", "3", "unknown hyperparameter"),
    ],
)
def test_bad_hyperparameters_are_rejected_with_a_reason_naming_them(name, raw, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        job_contract.coerce_hyperparameter(name, raw)
    assert name in str(caught.value)
