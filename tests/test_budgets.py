"""The generated project stays thin and the package small (issue 19's budgets): a project
baked with the defaults, measured as scripts/budgets.py prints it."""

import importlib.util

import pytest
from helpers import TEMPLATE_DIR

spec = importlib.util.spec_from_file_location("budgets", TEMPLATE_DIR / "scripts" / "budgets.py")
budgets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budgets)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return budgets.figures(budgets.bake(tmp_path_factory.mktemp("budgets")))


@pytest.mark.parametrize("index", range(6))
def test_the_project_and_the_package_stay_within_their_line_budgets(measured, index):
    what, lines, budget = measured[index]
    assert lines <= budget, f"{what}: {lines} lines, over the budget of {budget}"
