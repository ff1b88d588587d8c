#!/usr/bin/env python3
"""Run the training image as a SageMaker training job: `local` in Docker here (SageMaker local
mode, no AWS needed), `remote` on SageMaker from ECR (make push), with --data-dir synced to
S3_OUTPUT_PATH/data unless --data-s3. Every option defaults to the Makefile setting of the
same name (--instance-type reads INSTANCE_TYPE). This file is the job: settings, channels,
the trainer, the result; the plumbing is in project_tools/."""

import os
import sys
from pathlib import Path

from project_tools import aws, job_settings, jobs
from project_tools.contract import sdk_metric_definitions
from project_tools.local_run import LocalRun
from project_tools.settings import SettingsParser, instance_type, one_of, s3_uri, switch
from project_tools.settings import whole_number as count

PROJECT_DIR = Path(__file__).resolve().parent
CHANNELS = ("training", "validation", "test")  # training is required; the others when present


def settings(argv=None):
    p = SettingsParser(__doc__)
    p.add_argument("mode", choices=["local", "remote"], help="where the job runs")
    p.setting("--image", "the training image: a local tag, or its ECR URI for remote")
    p.setting("--hparams", 'hyperparameters, e.g. "epochs=2 learning-rate=0.001"', default="")
    p.setting("--instance-count", "hosts that train one model together", count, "1")
    p.setting("--data-dir", "a sub-folder per channel (training, validation, test)", Path, "data")
    p.setting("--project-name", "the ProjectName tag of the job", default=PROJECT_DIR.name)
    p.setting("--base-job-name", "job names start with this", default=PROJECT_DIR.name)
    p.setting("--instance-type", "remote: the instance type", instance_type)
    p.setting("--role-arn", "remote: the IAM role SageMaker assumes")
    p.setting("--aws-region", "remote: the AWS region")
    p.setting("--s3-output-path", "remote: where the model and data go", s3_uri)
    p.setting("--data-s3", "remote: an S3 prefix that already holds the channels", s3_uri)
    p.setting("--data-distribution", "remote", one_of("FullyReplicated", "ShardedByS3Key"))
    p.setting("--input-mode", "remote: how data arrives", one_of("File", "FastFile", "Pipe"))
    p.setting("--wait", "remote: 0 submits and returns at once", switch, "1")
    p.setting("--max-run", "remote: stop the job after this many seconds", count, "86400")
    p.setting("--spot", "remote: 1 runs on spot capacity", switch, "0")
    p.setting("--max-wait", "remote, spot: seconds with waiting (>= max-run)", count)
    p.setting("--checkpoint-s3", "remote: the S3 prefix of the checkpoints", s3_uri)
    p.setting("--keep-alive", "remote: seconds to keep the instances warm", count)
    p.setting("--checkpoint-dir", "local: the checkpoints of local runs", Path, "checkpoints")
    p.setting("--accelerator", "local: gpu gives the containers the GPUs", one_of("cpu", "gpu"))
    p.setting("--code-mount", "local: 1 mounts code/ over the image's code", switch, "0")
    p.add_argument("--skip-checks", action="store_true", help="pass hyperparameters unchecked")
    args = p.parse_args(argv)
    problem = job_settings.problem(args)  # and completes args: typed hyperparameters, job name
    if problem:
        p.exit(2, f"error: {problem}\n")
    return args


def local_job(args) -> int:
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    run = LocalRun(PROJECT_DIR / "outputs", args)
    trainer = ModelTrainer(
        training_mode=Mode.LOCAL_CONTAINER,
        local_container_root=str(run.root),
        training_image=args.image,
        base_job_name=args.base_job_name,
        compute=Compute(
            instance_type="local_gpu" if args.accelerator == "gpu" else "local",
            instance_count=args.instance_count,
        ),
        hyperparameters=run.hyperparameters(PROJECT_DIR / "code"),  # with CODE_MOUNT's
        environment={"CHECKPOINT_DIR": "/opt/ml/input/data/checkpoints"},
    )
    folders = [(c, args.data_dir.resolve() / c) for c in CHANNELS] + [
        ("checkpoints", run.checkpoints)
    ]
    channels = [InputData(channel_name=n, data_source=str(f)) for n, f in folders if f.is_dir()]
    with run:
        trainer.train(input_data_config=channels, wait=True, logs=True)
    return run.report()


def remote_trainer(args, session, environment: dict | None = None):
    """The SageMaker training job's ModelTrainer: train-remote's, and each tuning trial's."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training import configs
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    return ModelTrainer(  # the SDK checks ROLE_ARN here, before the upload
        training_mode=Mode.SAGEMAKER_TRAINING_JOB,
        sagemaker_session=Session(boto_session=session),
        role=args.role_arn,
        training_image=args.image,
        base_job_name=args.base_job_name,
        compute=configs.Compute(
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            enable_managed_spot_training=args.spot or None,
            keep_alive_period_in_seconds=args.keep_alive,
        ),
        training_input_mode=args.input_mode or "File",
        stopping_condition=configs.StoppingCondition(
            max_runtime_in_seconds=args.max_run, max_wait_time_in_seconds=args.max_wait
        ),
        checkpoint_config=args.checkpoint_s3
        and configs.CheckpointConfig(
            s3_uri=f"{args.checkpoint_s3}/", local_path="/opt/ml/checkpoints"
        ),
        output_data_config=configs.OutputDataConfig(s3_output_path=args.s3_output_path),
        hyperparameters=args.hparams,
        tags=[configs.Tag(key="ProjectName", value=args.project_name)],
        environment=environment or {},
    ).with_metric_definitions(sdk_metric_definitions())


def remote_job(args) -> int:
    from sagemaker.core.resources import TrainingJob

    session, region = aws.session(args.aws_region), args.aws_region
    aws.require_image(session, args.image)  # before any upload or submit
    trainer = remote_trainer(args, session)
    channels = aws.s3_channels(session, CHANNELS, args)  # data_dir synced unless DATA_S3
    trainer.train(input_data_config=channels, wait=False, logs=False)
    [job] = TrainingJob.get_all(name_contains=args.base_job_name, session=session, region=region)
    print(f"Training job {job.training_job_name} submitted.")
    if not args.wait:
        print(jobs.hint(job.training_job_name))
        return 0
    return jobs.follow(job.training_job_name, session)


def main(argv=None) -> int:
    args = settings(argv)
    # No telemetry unless the user chose an SDK config of their own: local runs stay offline.
    os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(PROJECT_DIR / "sagemaker.yaml"))
    try:
        return local_job(args) if args.mode == "local" else remote_job(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # AWS or Docker said no: one line, not a traceback
        if os.environ.get("DEBUG"):
            raise
        print(f"error: {aws.explain(error)} (DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
