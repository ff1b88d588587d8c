"""After a failed check: where cookiecutter saved the answers, and how to replay them.

cookiecutter (2.7.1, main.cookiecutter) writes every answer to its replay file,
<replay_dir>/<template folder name>.json, after the last prompt and before it generates
anything, so before this hook runs. Editing the fields at fault there and running
`cookiecutter --replay-file FILE TEMPLATE` takes the user back without fifteen prompts.

A replay passes its values as they are: a default made from another answer (role_arn from
aws_account_id, say) is not made again, so such values are listed for editing too.
"""

import json
import os
import shlex
from pathlib import Path

from sm_template.template import derived_from, variables
from sm_template.validation import show

DEFAULT_REPLAY_DIR = "~/.cookiecutter_replay/"


def _replay_dirs() -> list[Path]:
    """The user's replay_dir (COOKIECUTTER_CONFIG, ~/.cookiecutterrc), then the default."""
    found = []
    try:
        from cookiecutter.config import get_user_config

        found.append(Path(get_user_config()["replay_dir"]))
    except Exception:  # no cookiecutter here, or a config it cannot read: the default only
        pass
    found.append(Path(os.path.expanduser(DEFAULT_REPLAY_DIR)))
    return list(dict.fromkeys(found))


def _holds(path: Path, answers: dict) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("cookiecutter") == answers
    except (OSError, ValueError, AttributeError):
        return False


def replay_file(answers: dict) -> Path | None:
    """The replay file cookiecutter wrote for this very run, if it can be found.

    Its name is the template folder's (the temporary copy the hooks run from keeps that
    name, and _repo_dir names it); a --replay-file run saves under that file's name instead,
    so any other file of the replay folder holding exactly these answers counts too.
    """
    name = os.path.basename(os.path.normpath(str(answers.get("_repo_dir") or "")))
    for folder in _replay_dirs():
        candidates = [folder / f"{name}.json"] if name else []
        if folder.is_dir():
            candidates += sorted(folder.glob("*.json"), key=lambda p: -p.stat().st_mtime)
        for candidate in candidates:
            if candidate.is_file() and _holds(candidate, answers):
                return candidate.absolute()
    return None


def replay_command(path: Path, answers: dict) -> str:
    """`cookiecutter --replay-file PATH TEMPLATE` as the user ran it: the template as typed
    (_template), its --checkout, and -o when the project went elsewhere than the shell's
    working directory."""
    words = ["cookiecutter", "--replay-file", str(path)]
    if answers.get("_checkout"):
        words += ["--checkout", str(answers["_checkout"])]
    words.append(str(answers["_template"]))
    output_dir, shell_dir = answers.get("_output_dir"), os.environ.get("PWD")
    if output_dir and not (
        shell_dir and os.path.realpath(shell_dir) == os.path.realpath(output_dir)
    ):
        words += ["-o", str(output_dir)]
    return shlex.join(words)


def fields_at_fault(errors: list[str]) -> list[str]:
    """The template variables the error lines name ("<field>: ..."), in prompt order."""
    named = {error.split(":", 1)[0] for error in errors}
    return [name for name in variables() if name in named]


def replay_hint(answers: dict, errors: list[str]) -> list[str]:
    """One line each: the replay file, every field to edit there (those the errors name,
    then those derived from them), and the command; empty when there is no replay file."""
    if not answers.get("_template"):
        return []
    path = replay_file(answers)
    if path is None:
        return []
    fields = fields_at_fault(errors)
    lines = [
        f'your answers are saved in {path}; edit the fields below in its "cookiecutter" '
        "section and replay it instead of answering every prompt again"
    ]
    lines += [f"fix {field} there (see above)" for field in fields]
    lines += [
        f"fix {field} there too: {show(str(answers.get(field, '')))} was made from "
        f"{' and '.join(parents)}"
        for field, parents in derived_from(fields, answers).items()
    ]
    lines.append(f"then run: {replay_command(path, answers)}")
    return lines
