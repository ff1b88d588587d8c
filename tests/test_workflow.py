"""The generated GitHub workflow is valid against GitHub's published schema (check-jsonschema
ships it, so this runs offline), and no job can run for GitHub's default six hours."""

import subprocess
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter
from helpers import TEMPLATE_DIR, VENV_BIN


@pytest.fixture(scope="module")
def workflow_file(tmp_path_factory) -> Path:
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        output_dir=str(tmp_path_factory.mktemp("workflow")),
        extra_context={"aws_checks": "skip"},
    )
    return Path(project) / ".github" / "workflows" / "ci.yml"


def check_against_githubs_schema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(VENV_BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_generated_workflow_is_valid_against_githubs_schema(workflow_file):
    done = check_against_githubs_schema(workflow_file)

    assert done.returncode == 0, done.stdout + done.stderr


def test_a_workflow_with_a_misspelt_key_fails_the_schema_check(workflow_file, tmp_path):
    text = workflow_file.read_text()
    assert "    timeout-minutes: " in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("    timeout-minutes: ", "    timeout-minute: ", 1))

    done = check_against_githubs_schema(broken)

    assert done.returncode == 1
    assert "'timeout-minute' was unexpected" in done.stdout


def test_every_job_of_the_generated_workflow_has_a_timeout(workflow_file):
    jobs = yaml.safe_load(workflow_file.read_text())["jobs"]

    assert jobs
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int), f"job {name} has no timeout-minutes"
        assert 1 <= job["timeout-minutes"] <= 60, name
