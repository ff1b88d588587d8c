"""What the CLI turns into one line and an exit code (cli.py): nothing else is caught."""


class Failure(Exception):
    """A check of ours failed, or AWS or Docker said no: the message says why and what to do.
    Exit code 1."""

    exit_code = 1


class BadSetting(Failure):
    """A setting's value is wrong or missing: the message names it and how to fix it.
    Exit code 2, as for a bad option."""

    exit_code = 2
