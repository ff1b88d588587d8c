"""Plumbing: the launcher's settings, checked before anything is uploaded or paid for, and
completed (typed hyperparameters, a unique job name, spot's MAX_WAIT and checkpoints). Each
message names the setting to change."""

import secrets

from project_tools import aws
from project_tools.contract import runtime

REMOTE_NEEDS = ["instance_type", "role_arn", "aws_region", "s3_output_path"]


def unique_base(base: str) -> str:
    """The SDK adds -<seconds>: a random part keeps two jobs apart; 40 + 22 <= 63 characters."""
    cleaned = "".join(c if c.isalnum() else "-" for c in base).strip("-")[:40] or "job"
    return f"{cleaned}-{secrets.token_hex(3)}"


def typed_hyperparameters(text: str, skip_checks: bool) -> dict:
    """'epochs=2 batch-size=32' -> {'epochs': 2, 'batch-size': 32}, checked as train.py would."""
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
        default_checkpoints = f"{args.s3_output_path}/checkpoints/{args.base_job_name}"
        args.checkpoint_s3 = args.checkpoint_s3 or default_checkpoints
    wait, run, hosts = args.max_wait, args.max_run, args.instance_count
    if wait and wait < run:
        return f"MAX_WAIT {wait} < MAX_RUN {run}, which the wait includes: use MAX_WAIT >= {run}"
    if not remote and (args.keep_alive or args.input_mode not in (None, "File") or sharded):
        return "KEEP_ALIVE, INPUT_MODE and ShardedByS3Key are settings of remote jobs"
    limit = aws.api_maximum("KeepAlivePeriodInSeconds") if remote and args.keep_alive else 0
    if limit and args.keep_alive > limit:
        return f"KEEP_ALIVE {args.keep_alive} is above SageMaker's maximum, {limit} s"
    training, files = args.data_dir / "training", len(list(args.data_dir.glob("training/*.npz")))
    if not (remote and args.data_s3) and not args.skip_checks and not training.is_dir():
        return f"no training data in {training}; run: make data"
    if remote and sharded and not args.data_s3 and files % hosts:
        uneven = f"ShardedByS3Key: {files} file(s) in {training} do not divide among {hosts} hosts"
        return f"{uneven}: make data SHARDS={hosts}"
    return None
