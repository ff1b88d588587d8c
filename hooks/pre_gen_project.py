"""Check every answer before cookiecutter writes anything; exit 1 with one line per problem.

The answers enter as data: tojson escapes every quote and backslash, so no answer can end
the raw string or become code. The checks live in the template's sm_template package.
"""

import json
import os
import subprocess
import sys

answers = json.loads(r"""{{ cookiecutter | tojson }}""")


def parent_cwd() -> str:
    """cookiecutter's working directory: /proc on Linux, lsof on macOS (no /proc there).
    cruft gives no _repo_dir at all, so this is how its runs find the template."""
    proc = f"/proc/{os.getppid()}/cwd"
    if os.path.isdir(proc):
        return proc
    try:
        listed = subprocess.run(
            ["lsof", "-a", "-p", str(os.getppid()), "-d", "cwd", "-Fn"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return next((line[1:] for line in listed.splitlines() if line.startswith("n")), "")


def template_dir() -> str | None:
    """The template directory, which holds sm_template.

    This script runs from a temporary copy, so __file__ does not help. cookiecutter gives
    _repo_dir as typed: absolute for a clone under ~/.cookiecutters, but maybe relative to
    where cookiecutter started (`cookiecutter .`), while this script runs in the project dir.
    While a hook runs, cookiecutter's own process works in the template directory, so its
    working directory is the answer; failing that, the shell's PWD is where it started.
    """
    repo_dir = answers.get("_repo_dir", "")
    candidates = [repo_dir] if os.path.isabs(repo_dir) else []
    candidates += [parent_cwd(), os.path.join(os.environ.get("PWD", ""), repo_dir)]
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, "sm_template", "pre_gen.py")):
            return os.path.realpath(candidate)
    return None


def main() -> int:
    found = template_dir()
    if found is None:
        print(
            f"ERROR: sm-template cannot find its template directory {answers.get('_repo_dir')!r}; "
            "nothing was generated. Run cookiecutter with the template's absolute path.",
            file=sys.stderr,
        )
        return 1
    sys.path.insert(0, found)
    from sm_template.pre_gen import run

    return run(answers, found)


if __name__ == "__main__":
    try:
        status = main()
    except KeyboardInterrupt:
        print("sm-template: interrupted; nothing was generated.", file=sys.stderr)
        status = 130
    except Exception as error:  # a bug of ours: one line, not a traceback
        print(
            f"ERROR: sm-template's pre-generation hook failed: {type(error).__name__}: {error}; "
            "nothing was generated. Please report this with the command you ran.",
            file=sys.stderr,
        )
        status = 1
    sys.exit(status)
