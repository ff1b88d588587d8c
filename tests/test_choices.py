"""The choice answers are checked against cookiecutter.json's own lists, not a copy of them."""

import json

import pytest
from helpers import TEMPLATE_DIR, resolved_answers

from sm_template import template
from sm_template.validation import validate

CHOICE_VARIABLES = {
    name: value
    for name, value in json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text()).items()
    if isinstance(value, list) and not name.startswith("_")
}


def test_cookiecutter_json_has_choice_variables():
    assert CHOICE_VARIABLES  # else the tests below check nothing


@pytest.mark.parametrize(("field", "allowed"), CHOICE_VARIABLES.items())
def test_each_choice_of_a_choice_variable_is_accepted(field, allowed):
    for choice in allowed:
        errors, _ = validate(resolved_answers(**{field: choice}))

        assert [error for error in errors if error.startswith(f"{field}: ")] == [], choice


@pytest.mark.parametrize(("field", "allowed"), CHOICE_VARIABLES.items())
def test_a_value_outside_a_choice_variables_list_is_refused_naming_every_choice(field, allowed):
    # cookiecutter refuses these itself; validate() does not rely on it.
    errors, _ = validate({**resolved_answers(), field: "not-" + "-".join(allowed)})

    assert errors == [
        f'{field}: "not-{"-".join(allowed)}" is not a choice; answer {" or ".join(allowed)}'
    ]


def test_a_choice_added_to_cookiecutter_json_is_checked_without_another_edit(tmp_path, monkeypatch):
    variables = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    variables["accelerator"] = [*variables["accelerator"], "tpu"]
    variables["optimizer"] = ["adam", "sgd"]
    (tmp_path / "cookiecutter.json").write_text(json.dumps(variables))
    monkeypatch.setattr(template, "COOKIECUTTER_JSON", tmp_path / "cookiecutter.json")
    template.variables.cache_clear()
    try:
        accepted, _ = validate({**resolved_answers(), "accelerator": "tpu", "optimizer": "sgd"})
        refused, _ = validate({**resolved_answers(), "optimizer": "rmsprop"})
    finally:
        template.variables.cache_clear()

    assert accepted == []
    assert refused == ['optimizer: "rmsprop" is not a choice; answer adam or sgd']
