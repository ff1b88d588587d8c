"""`make test` (the README's test command, and CI's) runs the unit tests first, so that a unit
failure shows in minutes, and the end-to-end tests (a quarter of an hour) after them."""

import subprocess
import sys

from helpers import TEMPLATE_DIR


def pytest_commands_of_make_test() -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "test", f"VENV={sys.prefix}"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if " -m pytest " in line]


def collected(marker: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-m", marker],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_make_test_runs_the_unit_tests_then_the_end_to_end_tests():
    commands = pytest_commands_of_make_test()
    assert [c.split(" -m pytest ", 1)[1].split(" -p ")[0].strip() for c in commands] == [
        '-m "not e2e" -n 3',
        "-m e2e",
    ], commands


def test_the_unit_run_holds_no_end_to_end_test_and_the_end_to_end_run_holds_all_of_them():
    unit, e2e = collected("not e2e"), collected("e2e")
    assert unit and not [t for t in unit if t.startswith("tests/e2e/")]
    assert e2e and all(t.startswith("tests/e2e/") for t in e2e)
