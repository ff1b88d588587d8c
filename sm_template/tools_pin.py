"""The generated project's pin of the template's tools (tools/: sm-template-tools, `smt`):
requirements-smt.txt, written by the pre-generation hook, since only the hook knows where the
template came from. Exactly this version of the tools, from:
- the package index by name, once this version is published there;
- until then, where the project was baked from: a local template folder as a path, a git
  template (gh:org/sm-template, https://..., cruft's clone) as git+<url>@<commit>."""

import os
import re
import subprocess
from pathlib import Path

# True once sm-template-tools of this repository's version is on the package index.
PUBLISHED = False
ABBREVIATIONS = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/",
                 "bb:": "https://bitbucket.org/"}  # fmt: skip
FILE = "requirements-smt.txt"


def version(template_dir: Path) -> str:
    text = (template_dir / "tools" / "smt" / "__init__.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text)[1]


def git_url(template: str) -> str | None:
    """The clone URL of a template given as a repository, None for a local folder."""
    for short, prefix in ABBREVIATIONS.items():
        if template.startswith(short):
            return prefix + template[len(short) :].removesuffix(".git") + ".git"
    if re.match(r"(git\+)?(https?|ssh|git|file)://|[\w.-]+@[\w.-]+:", template):
        return template.removeprefix("git+")
    return None


def requirement(answers: dict, template_dir: Path) -> str:
    name, pinned = "sm-template-tools", version(template_dir)
    if PUBLISHED:
        return f"{name}=={pinned}"
    template = str(answers.get("_template") or "")
    url = git_url(template)
    if url:
        head = ["git", "-C", str(template_dir), "rev-parse", "HEAD"]
        commit = subprocess.run(head, capture_output=True, text=True, timeout=20).stdout.strip()
        if commit:
            return f"{name} @ git+{url}@{commit}#subdirectory=tools"
    folder = Path(os.environ.get("PWD", "."), template) if template and not url else template_dir
    if not (folder / "tools" / "pyproject.toml").is_file():
        folder = template_dir  # cruft's or the pre-prompt hook's copy: the folder found
    return f"{name} @ {(folder.resolve() / 'tools').as_uri()}"


def write(answers: dict, template_dir: Path, project_dir: Path) -> None:
    line = requirement(answers, template_dir)
    (project_dir / FILE).write_text(
        "# The template's tools (smt), exactly the version this project was made with.\n"
        "# Upgrade: change this line to a newer version (see the README), then make venv.\n"
        f"{line}\n"
    )
