"""The hook script itself: it finds sm_template wherever cookiecutter took the template from,
and whatever goes wrong inside it, it prints one line, never a traceback of its own."""

import shutil
import subprocess
import sys

import pytest
from helpers import TEMPLATE_DIR, environment_without_aws, render_hook, resolved_answers

TEMPLATE_PARTS = ["cookiecutter.json", "hooks", "sm_template", "{{cookiecutter.project_slug}}"]


def copy_template(destination):
    """A copy of the template as a user would get it (no tests, no venv)."""
    destination.mkdir(parents=True)
    for part in TEMPLATE_PARTS:
        source = TEMPLATE_DIR / part
        if source.is_dir():
            shutil.copytree(
                source, destination / part, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(source, destination / part)
    return destination


def test_the_hook_finds_its_package_when_the_template_is_given_as_a_relative_path(bake, tmp_path):
    # `cookiecutter .` hands the hook a relative _repo_dir while the hook runs in the project
    # dir; a stale PWD (cookiecutter started by a program, not a shell) must not matter.
    env = environment_without_aws(tmp_path / "aws", PWD="/")

    result = bake(
        {"aws_checks": "skip", "aws_account_id": "12345"}, template=".", cwd=TEMPLATE_DIR, env=env
    )

    assert result.errors[0].startswith('ERROR: aws_account_id: "12345" is not 12 digits')
    assert result.leftovers == []


def test_the_hook_finds_its_package_in_a_template_cloned_from_git(bake, tmp_path):
    repository = copy_template(tmp_path / "sm-template")
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "template"]):
        subprocess.run([*git, *command], check=True, capture_output=True)

    result = bake(
        {"aws_checks": "skip", "aws_account_id": "12345"}, template=f"git+file://{repository}"
    )

    assert result.errors[0].startswith('ERROR: aws_account_id: "12345" is not 12 digits')
    assert (tmp_path / "home" / ".cookiecutters" / "sm-template" / "sm_template").is_dir()
    assert result.leftovers == []


def run_rendered_hook(tmp_path, repo_dir: str) -> subprocess.CompletedProcess:
    """Run the rendered hook with a _repo_dir of our choosing, as cookiecutter would, except
    that its parent process works in the project dir, not in the template dir."""
    script = tmp_path / "pre_gen_project.py"
    script.write_text(render_hook({**resolved_answers(aws_checks="skip"), "_repo_dir": repo_dir}))
    project = tmp_path / "project"
    project.mkdir()
    parent = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", parent, sys.executable, str(script)],
        cwd=project,
        env=environment_without_aws(tmp_path / "aws", PWD=str(project)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_template_directory_that_cannot_be_found_is_one_clear_line(tmp_path):
    done = run_rendered_hook(tmp_path, "no/such/template")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ERROR: sm-template cannot find its template directory 'no/such/template'; nothing was "
        "generated. Run cookiecutter with the template's absolute path."
    ]


def test_a_crash_inside_the_checks_is_one_line_not_a_traceback(tmp_path):
    broken = copy_template(tmp_path / "broken-template")
    (broken / "sm_template" / "pre_gen.py").write_text(
        "def run(answers, template_dir=None):\n    raise RuntimeError('a bug in the checks')\n"
    )

    done = run_rendered_hook(tmp_path, str(broken))

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ERROR: sm-template's pre-generation hook failed: RuntimeError: a bug in the checks; "
        "nothing was generated. Please report this with the command you ran."
    ]


@pytest.mark.skipif(shutil.which("lsof") is None, reason="lsof is not installed")
def test_without_proc_the_hook_asks_lsof_for_cookiecutters_working_directory(tmp_path):
    """macOS has no /proc, and cruft passes no _repo_dir: lsof must find the template."""
    script = tmp_path / "pre_gen_project.py"
    script.write_text(render_hook(resolved_answers(aws_checks="skip")))
    child = (
        "import os, runpy, sys; hook = runpy.run_path(sys.argv[1]); is_dir = os.path.isdir; "
        "os.path.isdir = lambda path: not path.startswith('/proc/') and is_dir(path); "
        "print(hook['parent_cwd']())"
    )
    # The parent works in the template directory, as cookiecutter does while a hook runs.
    parent = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", parent, sys.executable, "-c", child, str(script)],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(TEMPLATE_DIR)
