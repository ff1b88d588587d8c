"""`smt <command>`: one parser built from the settings table, one exit policy.

Exit codes: 0 done; 1 a check failed, a job failed, or AWS or Docker said no (one line:
errors.Failure, or AWS's error through aws.explain); 2 a bad setting (errors.BadSetting);
130 Ctrl-C. Anything else is a bug of ours and keeps its traceback."""

import argparse
import importlib
import os
import sys

from smt import __version__, project, settings
from smt.errors import Failure

# command -> (module:function, what it does); the function takes the settings, returns the exit
COMMANDS = {
    "build": ("image:build", "build the image, tagged by a hash of its build inputs"),
    "login": ("image:login", "log Docker in to the ECR registry"),
    "push": ("image:push", "push the image to ECR (build first)"),
    "build-remote": ("build_remote:build_remote", "build and push the image in CodeBuild"),
    "data": ("train:data", "data/training, validation and test (scripts/prepare_data.py)"),
    "train-local": ("train:train_local", "train in SageMaker local mode: Docker here, no AWS"),
    "train-remote": ("train:train_remote", "train on SageMaker with the pushed image"),
    "tune-local": ("tune_local:main", "try SEARCH_SPACE here: MAX_JOBS local trainings"),
    "tune": ("tune_remote:tune", "tune on SageMaker: MAX_JOBS trainings over SEARCH_SPACE"),
    "tune-status": ("tune_remote:status", "a tuning job's trials and its best (TUNE_JOB=)"),
    "tune-stop": ("tune_remote:stop", "stop a tuning job and its trials (TUNE_JOB=)"),
    "serve-local": ("local_server:main", "serve a local model in Docker on localhost"),
    "predict": ("predict:main", "send N test examples to the local server or ENDPOINT="),
    "metrics": ("jobs:metrics", "final metrics of the newest local run, or of JOB="),
    "logs": ("jobs:logs", "a SageMaker job's log, followed while it runs (JOB=)"),
    "stop": ("jobs:stop", "stop a SageMaker job (JOB=)"),
    "deploy": ("endpoints:deploy", "an endpoint of the newest train-remote job or TUNE_JOB's best"),
    "undeploy": ("endpoints:undeploy", "delete ENDPOINT=, its config and model"),
    "bootstrap": ("bootstrap:bootstrap", "the role, bucket and ECR repository: one stack"),
    "status": ("status:status", "what of this project bills now: jobs, warm pools, endpoints"),
    "teardown": ("teardown:teardown", "stop and delete all of it, then the stack (FORCE=1: data)"),
    "runs": ("runs:runs", "this project's MLflow runs (SORT=objective), RUN= one, ENDPOINT= its"),
    "ui": ("runs:ui", "MLflow's UI of this project's runs, on localhost"),
    "doctor": ("doctor:main", "check Docker, AWS and disk: OK/WARN/FAIL, a fix for each FAIL"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="smt", description=__doc__.split("\n\n")[0],
                                  allow_abbrev=False)  # fmt: skip
    top.add_argument("--version", action="version", version=f"smt {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, what) in COMMANDS.items():
        command = commands.add_parser(name, help=what, description=what, allow_abbrev=False)
        for setting in settings.for_command(name):
            command.add_argument(setting.option, dest=setting.name, metavar=setting.name,
                                 help=setting.help)  # fmt: skip
    listing = commands.add_parser("help", help="the commands and every setting")
    listing.add_argument("--markdown", action="store_true", help="the settings as a table")
    value = commands.add_parser("print", help="a setting's value in force")
    value.add_argument("name", choices=sorted([*settings.BY_NAME, *settings.DERIVED]))
    return top


def show_help() -> int:
    print("Commands (make COMMAND [SETTING=value ...], or smt COMMAND [--setting value]):")
    for name, (_, what) in COMMANDS.items():
        print(f"  {name:<13} {what}")
    print(f"Settings (in {settings.SETTINGS_FILE}, or on the command line; [default]):")
    print("\n".join(settings.help_lines()))
    return 0


def print_setting(name: str) -> int:
    """`make print-NAME`: its value in force."""
    value = getattr(settings.derive(settings.load(None, project.root())), name.lower())
    print("" if value is None else value)
    return 0


def run(command: str, given: dict) -> int:
    project_dir = project.root()
    names = settings.make_overrides(os.environ.get("MAKEFLAGS", ""))
    if names:  # run by make: the Makefile names its goals (make data build: both)
        goals = os.environ.get("SMT_MAKE_GOALS", "").split() or [command]
        commands = [goal for goal in goals if goal in COMMANDS] or [command]
        settings.check_overrides(commands, names, project.contract().HYPERPARAMETERS)
    values = settings.derive(settings.load(command, project_dir, given))
    # No telemetry unless the user chose an SDK config of their own: local runs stay offline.
    os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(project_dir / "sagemaker.yaml"))
    module, function = COMMANDS[command][0].split(":")
    return getattr(importlib.import_module(f"smt.{module}"), function)(values)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "help":
            if args.markdown:
                return print("\n".join(settings.help_lines(markdown=True))) or 0
            return show_help()
        if args.command == "print":
            return print_setting(args.name)
        given = {k: v for k, v in vars(args).items() if k.isupper() and v is not None}
        return run(args.command, given)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from smt import aws

        if not isinstance(error, Failure) and not aws.is_aws_error(error):
            raise  # a bug: its traceback
        if os.environ.get("DEBUG"):
            raise
        print(f"error: {aws.explain(error)}", file=sys.stderr)
        return error.exit_code if isinstance(error, Failure) else 1


if __name__ == "__main__":
    sys.exit(main())
