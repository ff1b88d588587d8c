"""Plumbing: the launcher's settings checked before anything is uploaded or paid for, and
completed (typed hyperparameters, a unique job name, spot's MAX_WAIT and checkpoints).
Each rule is one SageMaker or local mode would refuse, or one that would fail inside the
container once the instances are paid for; the message names the setting to change."""

import secrets

from project_tools import aws
from project_tools.contract import runtime

REMOTE_NEEDS = ["instance_type", "role_arn", "aws_region", "s3_output_path"]


def unique_base(base: str) -> str:
    """The SDK names jobs <base>-<seconds>: a random part keeps two jobs apart, and 40
    characters leave room for the timestamp within SageMaker's 63."""
    cleaned = "".join(c if c.isalnum() else "-" for c in base).strip("-")[:40] or "job"
    return f"{cleaned}-{secrets.token_hex(3)}"


def typed_hyperparameters(text: str, skip_checks: bool) -> dict:
    """'epochs=2 learning-rate=0.001' -> {'epochs': 2, 'learning-rate': 0.001}, checked
    against what train.py accepts unless skip_checks (to see train.py's own answer)."""
    pairs = [item.partition("=") for item in text.split()]
    for name, sep, value in pairs:
        if not (name and sep and value):
            raise ValueError(f"{name + sep + value!r} is not name=value (e.g. epochs=3)")
    coerce = (lambda _, value: value) if skip_checks else runtime().coerce_hyperparameter
    return {name: coerce(name, value) for name, _, value in pairs}


def problem(args) -> str | None:
    """The first thing wrong with the launcher's settings, or None."""
    remote, sharded = args.mode == "remote", args.data_distribution == "ShardedByS3Key"
    for name in ["image"] + (REMOTE_NEEDS if remote else []):
        if getattr(args, name) is None:
            return (
                f"--{name.replace('_', '-')} (or {name.upper()}) is required for {args.mode} jobs"
            )
    args.base_job_name = unique_base(args.base_job_name)
    try:
        args.hparams = typed_hyperparameters(args.hparams, args.skip_checks)
    except ValueError as error:
        return f"HPARAMS: {error}"
    if args.max_wait and not (remote and args.spot):
        return "MAX_WAIT applies to spot jobs only: add SPOT=1"
    if remote and args.spot:
        args.max_wait = args.max_wait or 2 * args.max_run
        if args.max_wait < args.max_run:
            return (
                f"MAX_WAIT {args.max_wait} is shorter than MAX_RUN {args.max_run}: SageMaker "
                f"counts the run inside the wait, so use MAX_WAIT >= {args.max_run}"
            )
        args.checkpoint_s3 = args.checkpoint_s3 or (
            f"{args.s3_output_path}/checkpoints/{args.base_job_name}"
        )
    if not remote and (args.keep_alive or args.input_mode not in (None, "File") or sharded):
        return (
            "KEEP_ALIVE, INPUT_MODE and ShardedByS3Key are settings of remote jobs; local "
            "runs start at once and give every host all the files"
        )
    limit = aws.api_maximum("KeepAlivePeriodInSeconds") if remote and args.keep_alive else 0
    if limit and args.keep_alive > limit:
        return f"KEEP_ALIVE {args.keep_alive} is above SageMaker's maximum, {limit} s"
    training = args.data_dir / "training"
    if remote and args.data_s3:
        return None
    if not training.is_dir():
        return f"no training data in {training}; run: make data"
    files = len(list(training.glob("*.npz")))
    if remote and sharded and files % args.instance_count:
        return (
            f"ShardedByS3Key gives each of the {args.instance_count} hosts whole files, but the "
            f"{files} file(s) in {training} do not divide evenly: make data "
            f"SHARDS={args.instance_count}"
        )
    return None
