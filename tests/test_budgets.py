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


OVER = pytest.mark.xfail(
    strict=True,  # passes once the package is within budget: then this mark must go
    reason="issue 19, blocked on a decision: 2,200 lines were set for its plumbing alone"
    " (about 2,600 now); issue 20's modules (bootstrap, build_remote, status, teardown,"
    " prices) add 677 and issue 21's (tracking, remote_runs, runs) 622: 3,898 in all",
)


@pytest.mark.parametrize("index", [0, 1, 2, 3, pytest.param(4, marks=OVER), 5])
def test_the_project_and_the_package_stay_within_their_line_budgets(measured, index):
    what, lines, budget = measured[index]
    assert lines <= budget, f"{what}: {lines} lines, over the budget of {budget}"
