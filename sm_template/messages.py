"""What the hooks print: errors and warnings to stderr, progress notes to stdout.

cookiecutter prints its own traceback after a failing hook, so the last line of ours says
plainly that nothing was generated and what to do next.
"""

import sys


def note(text: str) -> None:
    print(f"sm-template: {text}", flush=True)


def report(errors: list[str], warnings: list[str]) -> None:
    """Print each problem as one line, then a closing summary when any is an error."""
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if errors:
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        print(
            f"sm-template: {count} in your answers; nothing was generated. "
            "Fix them and run cookiecutter again.",
            file=sys.stderr,
        )
    sys.stderr.flush()
