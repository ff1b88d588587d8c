"""The package passes the linter and formatter the generated projects use, at their pins."""

import subprocess

from helpers import TEMPLATE_DIR, VENV_BIN


def test_the_package_and_its_tests_pass_ruff_check_and_format():
    for command in (["check"], ["format", "--check"]):
        ruff = [str(VENV_BIN / "ruff"), *command, "--no-cache", "tools", "tests/tools"]
        done = subprocess.run(ruff, cwd=TEMPLATE_DIR, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout
