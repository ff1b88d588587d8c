"""The update path: a baked project takes a newer template's changes (cruft, `make update`),
keeps the user's edits, and needs no AWS access although its answers say aws_checks=strict.

Everything is real: a git repository of this working tree's template, projects baked from it
with cruft or cookiecutter (AWS checks against the moto server), git, cruft and make.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import (
    MOTO_ACCOUNT_ID,
    TEMPLATE_DIR,
    VENV_BIN,
    environment_without_aws,
    make_with_test_venv,
)

SLUG = "mnist_on_sagemaker"
# Answers whose AWS checks pass against the moto server (its account, an existing repository)
STRICT = {"aws_checks": "strict", "aws_account_id": MOTO_ACCOUNT_ID}
USER_EDIT = "# the user's own line, which no update may lose\n"
TIMEOUT = 120


def run(command: list[str], cwd: Path, env: dict[str, str], check: bool = True):
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check:
        assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def user_env(tmp_path):
    """A user's environment: no AWS setup at all, a fresh HOME, and a git identity."""

    def make(**extra: str) -> dict[str, str]:
        home = tmp_path / "user-home"  # not "home": the bake fixture makes that one
        home.mkdir(exist_ok=True)
        env = environment_without_aws(tmp_path / "aws", **extra)
        who = {"NAME": "Test User", "EMAIL": "user@example.com"}
        for role in ("AUTHOR", "COMMITTER"):
            env.update({f"GIT_{role}_{key}": value for key, value in who.items()})
        return {**env, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}

    return make


@pytest.fixture
def template_repo(tmp_path, user_env):
    """A git repository of the template as this working tree has it (not the .venv)."""
    repo = tmp_path / "sm-template"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = TEMPLATE_DIR / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    commit_all(repo, user_env(), "sm-template", init=True)
    return repo


def commit_all(directory: Path, env: dict[str, str], message: str, init: bool = False) -> None:
    if init:
        run(["git", "init", "-q"], directory, env)
    run(["git", "add", "-A"], directory, env)
    run(["git", "commit", "-q", "-m", message], directory, env)


def change_template(repo: Path, env: dict[str, str], name: str, old: str, new: str) -> None:
    """A newer template: one line of a generated file changed, and committed."""
    path = repo / "{{cookiecutter.project_slug}}" / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not one line of {name}"
    path.write_text(text.replace(old, new))
    commit_all(repo, env, f"Template: change {name}")


def edit_and_commit(project: Path, env: dict[str, str], name: str, text: str) -> None:
    with (project / name).open("a") as file:
        file.write(text)
    commit_all(project, env, f"User: edit {name}")


def make_update(project: Path, env: dict[str, str], **settings: str):
    """`make update` as a user runs it (the virtualenv: this test run's, which has cruft)."""
    return make_with_test_venv(project, "update", ".installed-tools", env, **settings)


def cruft_create(template: Path, output_dir: Path, env: dict[str, str], answers: dict) -> Path:
    output_dir.mkdir()
    run(
        [str(VENV_BIN / "cruft"), "create", str(template), "--no-input"]
        + ["--output-dir", str(output_dir), "--extra-context", json.dumps(answers)],
        output_dir,
        env,
    )
    return output_dir / SLUG


def error_of(done) -> str:
    """The one error line (make adds its own "make: *** ... Error 1" after it)."""
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode != 0
    return line


def assert_up_to_date(project: Path, env: dict[str, str]) -> None:
    done = run([str(VENV_BIN / "cruft"), "check"], project, env, check=False)
    assert done.returncode == 0 and "up to date" in done.stdout, done.stdout + done.stderr


def test_a_cruft_project_takes_a_template_change_and_keeps_the_users_edit_without_aws(
    template_repo, moto, tmp_path, user_env
):
    moto.client("ecr").create_repository(repositoryName=SLUG)
    project = cruft_create(template_repo, tmp_path / "out", user_env(**moto.env()), STRICT)
    saved = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert saved["aws_checks"] == "strict"  # so a regeneration would ask AWS, unless skipped
    env = user_env()  # from here on: no AWS credentials, profile or endpoint at all
    commit_all(project, env, "Generated", init=True)
    edit_and_commit(project, env, "code/train.py", USER_EDIT)
    change_template(template_repo, env, "README.md", "## The loop\n", "## The edit-train loop\n")

    done = make_update(project, env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "## The edit-train loop\n" in (project / "README.md").read_text()
    assert (project / "code/train.py").read_text().endswith(USER_EDIT)
    assert "updated: review with git diff HEAD, then commit" in done.stdout
    assert_up_to_date(project, env)
    status = run(["git", "status", "--porcelain"], project, env).stdout.splitlines()
    assert sorted(line[3:] for line in status) == [".cruft.json", "README.md"]


def test_a_cookiecutter_project_linked_once_as_make_update_says_takes_a_template_change(
    template_repo, bake, moto, user_env
):
    moto.client("ecr").create_repository(repositoryName=SLUG)
    baked = bake(STRICT, env=moto.env(), template=template_repo)
    assert baked.returncode == 0, baked.output
    project = baked.output_dir / SLUG
    saved = json.loads((project / ".cookiecutter.json").read_text())
    assert saved["aws_checks"] == "strict"
    assert not [key for key in saved if key.startswith("_")]  # answers only, no machine paths
    env = user_env(**moto.env())  # credentials at hand: any AWS call would be recorded
    commit_all(project, env, "Generated", init=True)

    done = make_update(project, env, TEMPLATE=str(template_repo))

    error = error_of(done)
    assert error.startswith("error: this project is not linked to its template yet")
    link = error.split("link it once: ", 1)[1]  # the command it tells the user to run
    run(["bash", "-c", link], project, env)
    edit_and_commit(project, env, "code/train.py", USER_EDIT)
    change_template(template_repo, env, "Makefile", "INSTALLER ?= uv\n", "INSTALLER ?= pip\n")
    moto.reset()

    done = make_update(project, env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "INSTALLER ?= pip\n" in (project / "Makefile").read_text()
    assert (project / "code/train.py").read_text().endswith(USER_EDIT)
    assert not list(project.rglob("*.rej"))
    assert moto.recorded_requests() == []
    assert_up_to_date(project, env)


def test_an_update_that_meets_the_users_edit_of_the_same_line_stops_and_names_the_file(
    template_repo, tmp_path, user_env
):
    env = user_env()
    project = cruft_create(template_repo, tmp_path / "out", env, {"aws_checks": "skip"})
    commit_all(project, env, "Generated", init=True)
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("## The loop\n", "## My loop\n"))
    commit_all(project, env, "User: rename a section")
    change_template(template_repo, env, "README.md", "## The loop\n", "## The edit-train loop\n")

    done = make_update(project, env)

    assert error_of(done).startswith(
        "error: the update conflicts with your edits in README.md: resolve the <<<<<<< markers"
    )
    text = readme.read_text()
    assert "<<<<<<<" in text and "## My loop\n" in text and "## The edit-train loop\n" in text


def test_make_update_refuses_uncommitted_changes_and_a_project_outside_git_in_one_line(
    template_repo, tmp_path, user_env
):
    env = user_env()
    project = cruft_create(template_repo, tmp_path / "out", env, {"aws_checks": "skip"})
    done = make_update(project, env)
    error = error_of(done)
    assert error.startswith("error: make update merges the template's changes into git")
    assert error.endswith("git init && git add -A && git commit -m 'Generated from sm-template'")

    commit_all(project, env, "Generated", init=True)
    (project / "code/train.py").write_text("# not committed\n")
    change_template(template_repo, env, "README.md", "## The loop\n", "## The edit-train loop\n")
    done = make_update(project, env)
    assert done.returncode != 0
    assert "unclean git project" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (project / "code/train.py").read_text() == "# not committed\n"
    assert "## The loop\n" in (project / "README.md").read_text()


def test_an_unreachable_template_fails_in_one_line_and_changes_nothing(
    template_repo, tmp_path, user_env
):
    env = user_env()
    project = cruft_create(template_repo, tmp_path / "out", env, {"aws_checks": "skip"})
    commit_all(project, env, "Generated", init=True)
    shutil.rmtree(template_repo)  # the template moved away

    done = make_update(project, env)

    assert error_of(done).startswith(f"error: the template {template_repo} cannot be reached")
    assert "Traceback" not in done.stdout + done.stderr
    assert run(["git", "status", "--porcelain"], project, env).stdout == ""
