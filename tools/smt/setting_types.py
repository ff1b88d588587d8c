"""The types of settings, and a setting's row of the table (settings.py): a type checks the
text given and converts it, or raises ValueError saying what it should be."""

import re
from dataclasses import dataclass
from pathlib import Path


def kind(test, what: str, convert=str):
    """A type: convert(text) if test(text), else ValueError("'text' is not <what>")."""

    def check(text: str):
        if not test(text):
            raise ValueError(f"{text!r} is not {what}")
        return convert(text)

    return check


TEXT = kind(lambda t: True, "text")
WHOLE = kind(lambda t: t.isdigit() and int(t) >= 1, "a whole number >= 1", int)
NATURAL = kind(str.isdigit, "a whole number >= 0", int)
SWITCH = kind(lambda t: t in ("0", "1"), "1 (on) or 0 (off)", lambda t: t == "1")
SECONDS = kind(lambda t: re.fullmatch(r"\d+(\.\d*)?", t) and float(t) > 0, "a number > 0", float)
INSTANCE = kind(lambda t: re.fullmatch(r"ml\.[a-z0-9-]+\.[a-z0-9]+", t), "an instance type (ml.*)")
S3_URI = kind(lambda t: re.fullmatch(r"s3://[a-z0-9.-]{3,63}(/.*)?", t),
              "an s3://bucket/prefix URI", lambda t: t.rstrip("/"))  # fmt: skip
STACK = kind(
    lambda t: re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", t),
    "a stack name (a letter, then letters, digits, hyphens; 128 at most)",
)
CODEBUILD = kind(
    lambda t: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{1,149}", t),
    "a CodeBuild project name (a letter or digit, then letters, digits, - and _; 150 at most)",
)
PATH = kind(lambda t: True, "a path", Path)
MODEL_TAR = kind(lambda t: re.fullmatch(r"s3://[^/]+/.+\.tar\.gz", t),
                 "the S3 URI of a model.tar.gz (s3://bucket/.../model.tar.gz)")  # fmt: skip


def serverless_memory(text: str) -> int:
    """MB in steps of 1024, up to the maximum botocore's API model states (6144)."""
    from smt.aws import api_maximum

    top, step = api_maximum("ServerlessMemorySizeInMB"), 1024
    fits = lambda t: t.isdigit() and step <= int(t) <= top and int(t) % step == 0  # noqa: E731
    return kind(fits, f"one of {step}, {2 * step}, ... {top} (MB)", int)(text)


def build_timeout(text: str) -> int:
    """Seconds: CodeBuild's timeout is 5 minutes at least, at most what botocore's model says."""
    from smt.aws import api_maximum

    top = 60 * api_maximum("BuildTimeOut", "codebuild")
    fits = lambda t: t.isdigit() and 300 <= int(t) <= top  # noqa: E731
    return kind(fits, f"a whole number of seconds from 300 to {top}", int)(text)


def one_of(*choices: str):
    return kind(lambda t: t in choices, f"one of {', '.join(choices)}")


@dataclass(frozen=True)
class Setting:
    name: str
    type: object
    default: str | None  # None: none, or derived from others (derive() says how)
    commands: tuple[str, ...]  # the commands that read it; "name!": that command needs it
    help: str

    @property
    def option(self) -> str:
        return "--" + self.name.lower().replace("_", "-")

    def required_by(self, command: str) -> bool:
        return f"{command}!" in self.commands
