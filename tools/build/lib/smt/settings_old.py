"""Plumbing: options that read the Makefile's settings, which it exports to the commands it
runs: --instance-type defaults to $INSTANCE_TYPE. A new setting is one commented variable in
the Makefile and one `setting()` line where it is used."""

import argparse
import os
import re


def checked(test, what: str, convert=str):
    """An argparse type: convert(text) if test(text), else "'text' is not <what>"."""

    def check(text: str):
        if not test(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return convert(text)

    return check


whole_number = checked(lambda t: t.isdigit() and int(t) >= 1, "a whole number >= 1", int)
switch = checked(lambda t: t in ("0", "1"), "1 (on) or 0 (off)", lambda t: t == "1")
instance_type = checked(lambda t: t.startswith("ml."), "a SageMaker instance type (ml.*)")
s3_uri = checked(lambda t: t.startswith("s3://") and len(t) > 5, "an s3://bucket/prefix URI",
                 lambda t: t.rstrip("/"))  # fmt: skip


def one_of(*choices: str):
    choice = checked(lambda t: t in choices, f"one of {', '.join(choices)}")
    choice.choices = choices  # for the help text
    return choice


class SettingsParser(argparse.ArgumentParser):
    def __init__(self, doc: str):
        formatter = argparse.RawDescriptionHelpFormatter
        super().__init__(description=doc, formatter_class=formatter, allow_abbrev=False)

    def setting(self, flag: str, help: str, type=str, default: str | None = None) -> None:
        """An option defaulting to $NAME, else `default`: a string argparse converts with
        `type`, so a bad value in the Makefile reads as a bad option."""
        name = flag.lstrip("-").upper().replace("-", "_")
        value = os.environ.get(name) or default
        if hasattr(type, "choices"):
            help += f": {'|'.join(type.choices)}"
        help += f" [{name}={value}]" if value else f" [{name}]"
        self.add_argument(flag, type=type, default=value, help=help)

    def error(self, message: str):
        """One line naming the setting (argument --instance-count: ... -> INSTANCE_COUNT: ...),
        not argparse's usage block: the user set the Makefile variable, not the option."""
        flag = re.match(r"argument (--[\w-]+)[^:]*: (.*)", message)
        if flag:
            message = f"{flag[1].lstrip('-').upper().replace('-', '_')}: {flag[2]}"
        self.exit(2, f"error: {message}\n")
