"""What the hooks print: errors and warnings to stderr, progress notes to stdout.

cookiecutter prints its own traceback after a failing hook, so our last lines say plainly
that nothing was generated and what to do next: where the answers are saved, what to fix
there and the command that replays them (sm_template.replay), or else to run it again.
"""

import sys


def note(text: str) -> None:
    print(f"sm-template: {text}", flush=True)


def report(errors: list[str], warnings: list[str], replay: list[str] | None = None) -> None:
    """Print each problem as one line, then a closing summary when any is an error: with
    `replay` (where the answers are saved, what to edit there, the command), those lines last.
    """
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if errors:
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        then = "" if replay else " Fix them and run cookiecutter again."
        print(
            f"sm-template: {count} in your answers; nothing was generated.{then}", file=sys.stderr
        )
        for line in replay or []:
            print(f"sm-template: {line}", file=sys.stderr)
    sys.stderr.flush()
