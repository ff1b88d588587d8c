"""The training job: SageMaker ModelTrainer's arguments (SDK v3) for every job of this project,
`make train-local` (local mode, Docker here), `make train-remote` and each tuning trial. Yours
to edit: a VPC (networking=), a KMS key, an environment variable, more instances...

The tools (smt) call trainer_arguments() and use what it returns as it is, adding only what
depends on where the job runs: the mode and session, the local folder, the channels (DATA_DIR,
or S3), the metric definitions (code/job_contract.py) and the tags (ProjectName, GitCommit,
GitDirty, ImageTag; tags you return here are kept).
This function's name and argument are the tools' stable API."""

from sagemaker.core.training import configs


def trainer_arguments(job) -> dict:
    """ModelTrainer's keyword arguments for one job.

    `job` holds the settings its command reads (`make help` lists them; job.instance_type is
    INSTANCE_TYPE) and what smt worked out from them: job.remote (False in local mode),
    job.image, job.name (a unique base job name), job.hyperparameters (typed, as train.py gets
    them), job.max_wait and job.checkpoint_s3 (set with SPOT=1). In local mode the remote
    jobs' settings (ROLE_ARN, MAX_RUN, S3_OUTPUT_PATH ...) are not there: read them under
    `if job.remote`."""
    arguments = dict(
        training_image=job.image,
        base_job_name=job.name,
        hyperparameters=job.hyperparameters,
        compute=configs.Compute(
            instance_type=job.instance_type,  # "local" or "local_gpu" in local mode
            instance_count=job.instance_count,
            enable_managed_spot_training=job.spot or None,
            keep_alive_period_in_seconds=job.keep_alive,
        ),
    )
    if job.remote:
        arguments.update(
            role=job.role_arn,
            training_input_mode=job.input_mode,
            stopping_condition=configs.StoppingCondition(
                max_runtime_in_seconds=job.max_run, max_wait_time_in_seconds=job.max_wait
            ),
            output_data_config=configs.OutputDataConfig(s3_output_path=job.s3_output_path),
        )
        if job.checkpoint_s3:  # spot: an interrupted job resumes from here
            arguments["checkpoint_config"] = configs.CheckpointConfig(
                s3_uri=f"{job.checkpoint_s3}/", local_path="/opt/ml/checkpoints"
            )
    return arguments
