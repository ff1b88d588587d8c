"""make update: bring this project up to date with the newest sm-template, keeping your edits.

cruft regenerates the project from the answers in .cruft.json twice, from the template commit
recorded there and from the newest one, and applies the difference to this git work tree:
a 3-way merge where git can (a conflict gets <<<<<<< markers), else *.rej files beside the
files it could not patch. Nothing is committed: review with git diff HEAD, then commit.

  update.py --template URL   URL only serves the hint when the project is not linked yet
"""

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import cruft
from click import ClickException
from cookiecutter.exceptions import FailedHookException

PROJECT_DIR = Path(__file__).resolve().parents[1]
CRUFT_FILE = PROJECT_DIR / ".cruft.json"


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )


def link_command(template: str) -> str:
    cruft_bin = Path(sys.executable).parent / "cruft"
    return (
        f'{cruft_bin} link {template} --no-input --extra-context "$(cat .cookiecutter.json)"'
        ' && git add .cruft.json && git commit -m "Link to the template"'
    )


def conflicts() -> list[str]:
    """Files the update could not merge: unmerged paths (markers) and *.rej files."""
    status = git("status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    unmerged = ("DD", "AU", "UD", "UA", "DU", "AA", "UU")
    return sorted(
        line[3:]
        for line in status
        if line[:2] in unmerged or (line.startswith("?? ") and line.endswith(".rej"))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True, help="the template's git URL")
    args = parser.parse_args(argv)

    if not CRUFT_FILE.is_file():
        print(
            "error: this project is not linked to its template yet (no .cruft.json); "
            f"link it once (README: Updating from a newer template): {link_command(args.template)}",
            file=sys.stderr,
        )
        return 1
    # Without git, cruft would patch blindly: no 3-way merge, nothing to review or undo.
    try:
        in_git = git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    except FileNotFoundError:
        print("error: git not found; install it: https://git-scm.com/downloads", file=sys.stderr)
        return 1
    if not in_git:
        print(
            "error: make update merges the template's changes into git; put the project in git "
            "first: git init && git add -A && git commit -m 'Generated from sm-template'",
            file=sys.stderr,
        )
        return 1

    # The template's pre-generation hook runs for both regenerations, with the saved answers:
    # they were checked against AWS when the project was made, so skip that (no credentials
    # needed, no ECR repository created). The hook reads this from its environment.
    os.environ["SM_TEMPLATE_AWS_CHECKS"] = "skip"
    # cruft clones the template with git, which has no overall timeout: abort a stalled
    # transfer (under 1 KB/s for a minute) instead of hanging.
    os.environ.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
    os.environ.setdefault("GIT_HTTP_LOW_SPEED_TIME", "60")

    # cookiecutter logs a failing hook with a traceback; the hook's lines and ours say it all.
    logging.getLogger("cookiecutter").addHandler(logging.NullHandler())
    before = CRUFT_FILE.read_text()
    try:
        # skip_apply_ask: the tree is committed (cruft insists), so git diff HEAD shows the
        # update and git reset --hard undoes it. Untracked files (scratch, notes) may stay:
        # git apply never overwrites them.
        if not cruft.update(PROJECT_DIR, skip_apply_ask=True, allow_untracked_files=True):
            return 1  # cruft said why: uncommitted changes
    except FailedHookException:
        print(
            "error: the template's pre-generation hook stopped the update (its ERROR lines "
            "above say why); nothing was changed. README (Updating from a newer template) "
            "says how to change a saved answer",
            file=sys.stderr,
        )
        return 1
    except ClickException as error:  # cruft's errors: an unreachable template, ...
        print(f"error: {' '.join(error.format_message().split())}", file=sys.stderr)
        return 1
    except Exception as error:  # one line, not a traceback
        print(
            f"error: the update failed: {type(error).__name__}: {' '.join(str(error).split())}; "
            "git status shows what it changed",
            file=sys.stderr,
        )
        return 1
    if CRUFT_FILE.read_text() == before:
        return 0  # already up to date: cruft said so
    unmerged = conflicts()
    if unmerged:
        print(
            f"error: the update conflicts with your edits in {', '.join(unmerged)}: resolve the "
            "<<<<<<< markers and git add the files (or apply the .rej hunks by hand and delete "
            "them), then commit",
            file=sys.stderr,
        )
        return 1
    print("sm-template: updated; review with git diff HEAD, then commit (with .cruft.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
