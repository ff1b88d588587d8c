"""Plumbing: command options that read the Makefile's settings of the same name.

The Makefile is the one place with defaults and exports every setting to the commands it
runs: --instance-type defaults to $INSTANCE_TYPE, --spot to $SPOT. So a new setting is one
commented variable in the Makefile and one `setting()` line where it is used.
"""

import argparse
import os


def whole_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def switch(text: str) -> bool:
    """1 or 0, as the Makefile's switches (SPOT=1, WAIT=0) are written."""
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"{text!r} is not 1 (on) or 0 (off)")
    return text == "1"


def one_of(*choices: str):
    def choice(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    choice.choices = choices  # for the help text
    return choice


def instance_type(text: str) -> str:
    if not text.startswith("ml."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a SageMaker instance type (ml.*)")
    return text


def s3_uri(text: str) -> str:
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an s3://bucket/prefix URI")
    return text.rstrip("/")


class SettingsParser(argparse.ArgumentParser):
    def __init__(self, doc: str):
        formatter = argparse.RawDescriptionHelpFormatter
        super().__init__(description=doc, formatter_class=formatter, allow_abbrev=False)

    def setting(self, flag: str, help: str, type=str, default: str | None = None) -> None:
        """An option defaulting to $NAME, else to `default`. The default is a string that
        argparse converts with `type`, so a bad value in the Makefile reads as a bad option."""
        name = flag.lstrip("-").upper().replace("-", "_")
        value = os.environ.get(name) or default
        if hasattr(type, "choices"):
            help += f": {'|'.join(type.choices)}"
        help += f" [{name}={value}]" if value else f" [{name}]"
        self.add_argument(flag, type=type, default=value, help=help)
