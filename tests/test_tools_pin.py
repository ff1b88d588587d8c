"""A baked project pins the template's tools exactly (requirements-smt.txt): by path from a
local template, by git URL and commit from a git one, by version once published."""

import re
import subprocess

import pytest
from helpers import TEMPLATE_DIR

from sm_template import tools_pin

VERSION = re.search(r'__version__ = "(.+)"', (TEMPLATE_DIR / "tools/smt/__init__.py").read_text())[
    1
]


@pytest.fixture
def git_template(tmp_path):
    """A git repository holding the tools' version file, as a clone of the template is."""
    folder = tmp_path / "clone"
    (folder / "tools" / "smt").mkdir(parents=True)
    (folder / "tools" / "smt" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    (folder / "tools" / "pyproject.toml").write_text("")
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "tools"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    return folder, commit.strip()


def test_a_project_baked_from_a_local_template_pins_its_tools_folder_by_path(bake):
    baked = bake({"aws_checks": "skip"})
    assert baked.returncode == 0, baked.output
    project = baked.output_dir / "mnist_on_sagemaker"
    pin = (project / "requirements-smt.txt").read_text().splitlines()[-1]
    assert pin == f"sm-template-tools @ {(TEMPLATE_DIR / 'tools').resolve().as_uri()}"
    assert "-r requirements-smt.txt" in (project / "requirements-tools.txt").read_text()


@pytest.mark.parametrize(
    "template, url",
    [
        ("gh:org/sm-template", "https://github.com/org/sm-template.git"),
        ("https://github.com/org/sm-template", "https://github.com/org/sm-template"),
        ("git@github.com:org/sm-template.git", "git@github.com:org/sm-template.git"),
        ("git+file:///srv/sm-template", "file:///srv/sm-template"),
    ],
)
def test_a_git_template_is_pinned_to_its_url_at_the_commit_baked(git_template, template, url):
    folder, commit = git_template
    pin = tools_pin.requirement({"_template": template}, folder)
    assert pin == f"sm-template-tools @ git+{url}@{commit}#subdirectory=tools"


def test_once_published_the_pin_is_the_version_on_the_index(git_template, monkeypatch):
    monkeypatch.setattr(tools_pin, "PUBLISHED", True)
    assert tools_pin.requirement({"_template": "gh:org/x"}, git_template[0]) == (
        "sm-template-tools==9.8.7"
    )


def test_the_pinned_version_is_the_repositorys_one():
    assert tools_pin.version(TEMPLATE_DIR) == VERSION
