"""smt train-remote, in-process against the session's moto server: what it checks before it
uploads or submits anything, the CreateTrainingJob request it sends (moto accepts what AWS
rejects: the tests read the recorded request), and how it ends as its user sees it.

moto 5.2.5 completes every job at once and has no IAM SimulatePrincipalPolicy (500): the
overlay fixture (status_overlay.StatusOverlay) scripts the statuses DescribeTrainingJob
answers, and helpers.iam_simulation answers SimulatePrincipalPolicy."""

import json
import re
import shutil
import subprocess
import urllib.parse
from types import SimpleNamespace

import pytest
from helpers import (
    MOTO_ACCOUNT_ID,
    SAGEMAKER_TRUST,
    actions,
    bodies,
    iam_simulation,
    put_image_tag,
    refused_argument,
)
from smt import jobs
from status_overlay import ANY_JOB

REPOSITORY, TAG = "mnist_on_sagemaker", "v1"
BUCKET = f"sagemaker-us-east-1-{MOTO_ACCOUNT_ID}"
OUTPUT = f"s3://{BUCKET}/projects/{REPOSITORY}"  # the baked project's S3_OUTPUT_PATH
ROLE_ARN = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/SageMakerExecutionRole"
RUNNING = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
CREATE = "SageMaker.CreateTrainingJob"
PREFLIGHT = ["GetCallerIdentity", "AmazonEC2ContainerRegistry_V20150921.DescribeImages"]


@pytest.fixture
def account(aws, project_dir, monkeypatch):
    """What train-remote needs in moto: the image tag in ECR, the bucket, and the channels
    on S3 as DATA_S3 (no upload: the aws CLI takes a second to start); the tests' polls
    every 0.1 s. Recording from here."""
    put_image_tag(aws, REPOSITORY, TAG)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for name in ("training", "validation", "test"):
        s3.put_object(Bucket=BUCKET, Key=f"uploaded/{name}/data.npz", Body=b"npz")
    monkeypatch.setenv("DATA_S3", f"s3://{BUCKET}/uploaded")
    monkeypatch.setenv("IMAGE_TAG", TAG)
    monkeypatch.setattr("smt.aws.POLL_SECONDS", 0.1)
    aws.start_recording()
    return aws


@pytest.fixture
def behind_overlay(account, overlay, monkeypatch):
    """The account behind the overlay: its describes scripted, IAM's simulation stubbed."""
    overlay.query_answers["SimulatePrincipalPolicy"] = iam_simulation()
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    return overlay


def created(moto) -> dict:
    [request] = map(json.loads, bodies(moto, CREATE))
    return request


def submitted(out: str) -> str:
    [job] = re.findall(r"^Training job (\S+) submitted\.$", out, re.MULTILINE)
    return job


def after_submitting(out: str) -> list[str]:
    lines = out.splitlines()
    return lines[lines.index(f"Training job {submitted(out)} submitted.") :]


def test_the_request_carries_the_settings_and_the_channels_synced_from_data_dir(
    smt, account, project_dir, monkeypatch
):
    """DATA_DIR's channels synced to S3_OUTPUT_PATH/data: a stale file there deleted (a job
    would read it too), nothing but the channels uploaded, a channel with no files left out."""
    monkeypatch.delenv("DATA_S3")
    account.client("s3").put_object(
        Bucket=BUCKET, Key=f"projects/{REPOSITORY}/data/training/stale.npz"
    )
    shutil.rmtree(project_dir / "data" / "validation")
    shards(project_dir, 2)  # one file for each of the 2 hosts
    (project_dir / "data" / "raw").mkdir()
    (project_dir / "data" / "raw" / "download.gz").write_bytes(b"not a channel")

    done = smt(
        "train-remote",
        "--wait",
        "0",
        "--instance-type",
        "ml.c5.xlarge",
        "--instance-count",
        "2",
        "--hparams",
        "epochs=4 batch-size=32",
    )

    assert done.code == 0, done.err
    request = created(account)
    assert request["TrainingJobName"] == submitted(done.out)
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        f"{MOTO_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{TAG}"
    )
    assert request["RoleArn"] == ROLE_ARN
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"] == {"epochs": "4", "batch-size": "32"}
    assert request["OutputDataConfig"]["S3OutputPath"] == OUTPUT
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert "EnableManagedSpotTraining" not in request and "CheckpointConfig" not in request
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"]
    }
    assert {name: source["S3Uri"] for name, source in channels.items()} == {
        name: f"{OUTPUT}/data/{name}/" for name in ("training", "test")
    }
    assert {s["S3DataDistributionType"] for s in channels.values()} == {"FullyReplicated"}
    listed = account.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="projects/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"projects/{REPOSITORY}/data/{name}" for name in
        ("test/data.npz", "training/data-00000-of-00002.npz", "training/data-00001-of-00002.npz")
    ]  # fmt: skip
    assert done.out.splitlines()[-1] == jobs.hint(request["TrainingJobName"])


@pytest.mark.parametrize(("max_wait", "sent"), [(None, 2 * 3600), ("5000", 5000)])
def test_a_spot_job_sends_max_wait_twice_max_run_unless_max_wait_is_set(
    smt, account, max_wait, sent
):
    options = ["--max-wait", max_wait] if max_wait else []
    done = smt("train-remote", "--wait", "0", "--spot", "1", "--max-run", "3600", *options)

    assert done.code == 0, done.err
    request = created(account)
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600,
        "MaxWaitTimeInSeconds": sent,
    }
    assert request["EnableManagedSpotTraining"] is True
    job = request["TrainingJobName"]
    assert (
        request["CheckpointConfig"]
        == {  # per job: this job's own checkpoints
            "S3Uri": f"{OUTPUT}/checkpoints/{job.removesuffix(job[-15:])}/",
            "LocalPath": "/opt/ml/checkpoints",
        }
    )


def test_a_warm_pool_and_the_input_mode_reach_the_request(smt, account):
    done = smt("train-remote", "--wait", "0", "--keep-alive", "600", "--input-mode", "FastFile")

    assert done.code == 0, done.err
    request = created(account)
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"


def test_the_jobs_tags_carry_the_project_the_git_commit_the_dirty_flag_and_the_image_tag(
    smt, account, project_dir
):
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "baked")
    (project_dir / "README.md").write_text("edited\n")

    done = smt("train-remote", "--wait", "0")

    assert done.code == 0, done.err
    tags = {tag["Key"]: tag["Value"] for tag in created(account)["Tags"]}
    assert tags == {
        "ProjectName": "MNIST on SageMaker",
        "GitCommit": git("rev-parse", "--short=12", "HEAD"),
        "GitDirty": "True",
        "ImageTag": TAG,
    }


def test_train_remote_names_the_job_it_submitted_without_listing_jobs(smt, account):
    create_training_job_elsewhere = account.client("sagemaker")  # a job of the same base name
    create_training_job_elsewhere.create_training_job(
        TrainingJobName="mnist-on-sagemaker-000000-20260101000000",
        RoleArn=ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": "x:1", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": OUTPUT},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    )
    account.start_recording()

    done = smt("train-remote")

    assert done.code == 0, done.err
    job = created(account)["TrainingJobName"]
    assert after_submitting(done.out) == [
        f"Training job {job} submitted.",
        f"Training job {job}: Completed",
        f"model: {OUTPUT}/{job}/output/model.tar.gz",
    ]
    assert "SageMaker.ListTrainingJobs" not in actions(account)


def test_without_credentials_train_remote_fails_in_one_line_before_any_request(
    smt, account, monkeypatch
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)

    done = smt("train-remote")

    assert done.code == 1
    assert (
        done.err
        == "error: no AWS credentials found; run aws configure (or aws sso login) and retry\n"
    )
    assert actions(account) == []


def test_an_image_tag_that_is_not_in_ecr_stops_train_remote_before_any_upload(
    smt, account, monkeypatch
):
    monkeypatch.setenv("IMAGE_TAG", "not-pushed")

    done = smt("train-remote")

    assert done.code == 1
    image = f"{MOTO_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:not-pushed"
    assert done.err == f"error: the image {image} is not in ECR; push it first: make push\n"
    assert actions(account) == PREFLIGHT


def test_a_trainer_the_sdk_refuses_is_one_line_naming_run_estimator_before_any_upload(
    smt, account, project_dir
):
    refused_argument(project_dir, "vpc")

    done = smt("train-remote")

    assert done.code == 1
    assert done.err == (
        "error: run_estimator.py: ModelTrainer refuses trainer_arguments(job): "
        "vpc: Extra inputs are not permitted\n"
    )
    assert actions(account) == PREFLIGHT


# The SDK describes the job it creates once; train-remote's own describes come after.
SDK_DESCRIBES = 1


def the_job_goes(overlay, *statuses: dict) -> None:
    """The submitted job answers InProgress to the SDK's describe and train-remote's first,
    then each of `statuses` in turn."""
    overlay.statuses[ANY_JOB] = [RUNNING] * (SDK_DESCRIBES + 1) + list(statuses)


def test_a_job_that_fails_while_train_remote_waits_prints_its_reason_and_exits_1(
    smt, behind_overlay
):
    reason = "AlgorithmError: learning-rate must be > 0 (train.py, /opt/ml/output/failure)"
    the_job_goes(
        behind_overlay,
        {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": reason},
    )

    done = smt("train-remote")

    job = submitted(done.out)
    assert after_submitting(done.out) == [
        f"Training job {job} submitted.",
        f"Training job {job}: Failed",
        f"FAILED: {reason}",
    ]
    assert (done.code, done.err) == (1, "")
    # it saw InProgress, then Failed; MLflow's record of the job read Failed once more
    assert behind_overlay.describes == SDK_DESCRIBES + 2 + 1


@pytest.mark.parametrize(
    ("secondary", "says"),
    [("Stopped", "Stopped"), ("MaxRuntimeExceeded", "Stopped (MaxRuntimeExceeded)")],
)
def test_a_job_stopped_while_train_remote_waits_ends_it_with_exit_0_saying_how(
    smt, behind_overlay, secondary, says
):
    """A stopped job is not a failed one (one stopped on time still uploads its model)."""
    the_job_goes(behind_overlay, {"TrainingJobStatus": "Stopped", "SecondaryStatus": secondary})

    done = smt("train-remote")

    job = submitted(done.out)
    assert after_submitting(done.out) == [
        f"Training job {job} submitted.",
        f"Training job {job}: {says}",
    ]
    assert (done.code, done.err) == (0, "")
    # it saw InProgress, then Stopped; MLflow's record of the job read Stopped once more
    assert behind_overlay.describes == SDK_DESCRIBES + 2 + 1


def test_ctrl_c_while_train_remote_waits_exits_130_saying_the_job_runs_on_and_how_to_stop_it(
    smt, account, behind_overlay, monkeypatch
):
    behind_overlay.statuses[ANY_JOB] = [RUNNING]

    def interrupted(seconds):
        raise KeyboardInterrupt  # Ctrl-C, while it waits for the next look

    monkeypatch.setattr(jobs, "time", SimpleNamespace(sleep=interrupted))  # jobs' own only

    done = smt("train-remote")

    job = submitted(done.out)
    running = f"job {job} keeps running (and billing): make stop JOB={job} stops it"
    assert (done.code, done.err) == (130, f"\nstopped following; {running}\n")
    assert "SageMaker.StopTrainingJob" not in actions(account)


def test_with_role_validation_on_it_asks_iam_about_role_arn_before_it_submits(
    smt, account, behind_overlay, monkeypatch
):
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE")
    moto = account
    moto.client("iam").create_role(
        RoleName="SageMakerExecutionRole", AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST)
    )
    moto.start_recording()

    done = smt("train-remote", "--wait", "0")

    assert done.code == 0, done.err
    [simulate] = map(urllib.parse.parse_qs, bodies(moto, "SimulatePrincipalPolicy"))
    assert simulate["PolicySourceArn"] == [ROLE_ARN]
    names = actions(moto)
    assert names.index("SimulatePrincipalPolicy") < names.index(CREATE)
    assert created(moto)["RoleArn"] == ROLE_ARN


@pytest.mark.parametrize(
    ("refused_for", "why", "iam_calls"),
    [
        (
            "its trust",
            "Its trust policy does not allow 'sagemaker.amazonaws.com' to assume it",
            ["SimulatePrincipalPolicy", "GetRole"],
        ),  # moto's GetRole answers the trust policy
        (
            "a permission",
            "Missing permissions: ecr:GetAuthorizationToken",
            ["SimulatePrincipalPolicy"],
        ),
    ],  # the stub denies it
)
def test_a_role_the_sdk_refuses_stops_train_remote_in_one_line_before_any_upload(
    smt, account, behind_overlay, monkeypatch, refused_for, why, iam_calls
):
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE")
    trust = json.dumps(SAGEMAKER_TRUST)
    if refused_for == "its trust":
        trust = trust.replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")
    else:
        denied = ("ecr:GetAuthorizationToken",)
        behind_overlay.query_answers["SimulatePrincipalPolicy"] = iam_simulation(denied)
    iam = account.client("iam")
    iam.create_role(RoleName="SageMakerExecutionRole", AssumeRolePolicyDocument=trust)
    account.start_recording()

    done = smt("train-remote")

    assert done.code == 1
    [line] = done.err.splitlines()
    refused = f"error: ROLE_ARN: IAM role '{ROLE_ARN}' cannot be used for 'training' workloads."
    assert line.startswith(f"{refused} {why}")
    assert line.endswith("; fix the role (make doctor checks its trust) or set ROLE_ARN")
    assert actions(account) == [*PREFLIGHT, *iam_calls]  # nothing uploaded, nothing submitted


def shards(project_dir, count: int) -> None:
    """data/training as `make data SHARDS=count` leaves it."""
    training = project_dir / "data" / "training"
    (training / "data.npz").rename(training / f"data-00000-of-0000{count}.npz")
    for i in range(1, count):
        (training / f"data-0000{i}-of-0000{count}.npz").write_bytes(b"npz")


def test_sharded_by_s3_key_3_files_on_2_hosts_is_refused_in_one_line_before_any_upload(
    smt, account, project_dir, monkeypatch
):
    monkeypatch.delenv("DATA_S3")  # DATA_DIR's files are the ones to share out
    shards(project_dir, 3)

    done = smt("train-remote", "--instance-count", "2", "--data-distribution", "ShardedByS3Key")

    assert (done.code, done.out) == (2, "")
    assert done.err == (
        "error: DATA_DISTRIBUTION: ShardedByS3Key: 3 file(s) in data/training do not"
        " divide among 2 hosts: make data SHARDS=2\n"
    )
    assert actions(account) == []  # nothing uploaded, nothing created


def test_sharded_by_s3_key_4_files_on_2_hosts_gives_each_host_a_share_of_every_channel(
    smt, account, project_dir, monkeypatch
):
    monkeypatch.delenv("DATA_S3")
    shards(project_dir, 4)

    done = smt(
        "train-remote",
        "--wait",
        "0",
        "--instance-count",
        "2",
        "--data-distribution",
        "ShardedByS3Key",
    )

    assert done.code == 0, done.err
    request = created(account)
    distributions = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in request["InputDataConfig"]
    }
    assert distributions == dict.fromkeys(("training", "validation", "test"), "ShardedByS3Key")
    listed = account.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=f"projects/{REPOSITORY}/data/training/"
    )
    assert len(listed["Contents"]) == 4
