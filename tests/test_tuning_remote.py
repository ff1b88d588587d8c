"""`make tune`, `make tune-status` and `make tune-stop` against the moto server, as their user
sees them: what the CreateHyperParameterTuningJob request carries, the progress and the table
of trials, failures' reasons, and the preflight that refuses a bad setting before any request.

moto 5.2.5 makes every tuning job Completed at once with one made-up trial, and has neither
ListTrainingJobsForHyperParameterTuningJob nor StopHyperParameterTuningJob: the overlay
(status_overlay.StatusOverlay) scripts the statuses DescribeHyperParameterTuningJob answers and
the trials, and answers the stop, each after moto has recorded the request.
"""

import json
import os
import pty
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from helpers import (
    actions,
    bake_with_data,
    bodies,
    make_command,
    make_setting,
    make_with_test_venv,
    project_module,
    ready_behind_overlay,
)
from status_overlay import ANY_JOB

METRICS = ["train:loss", "train:accuracy", "validation:loss", "validation:accuracy",
           "test:loss", "test:accuracy"]  # fmt: skip
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def make_failed(target: str) -> re.Pattern:
    return re.compile(rf"make: \*\*\* \[Makefile:\d+: {target}\] Error (\d+)")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake_with_data(tmp_path_factory.mktemp("bake"))


@pytest.fixture
def env(project, moto, overlay) -> dict[str, str]:
    return {**ready_behind_overlay(moto, overlay, project), "TUNE_POLL": "0.05"}


def make(project, target: str, env: dict, **settings):
    return make_with_test_venv(project, target, ".installed-tools", env, **settings)


def created(moto) -> dict:
    [request] = map(json.loads, bodies(moto, "SageMaker.CreateHyperParameterTuningJob"))
    return request


def submitted(stdout: str) -> str:
    [name] = re.findall(r"^Tuning job (\S+) submitted", stdout, re.MULTILINE)
    return name


def summary(name: str, status: str, objective: float | None, reason: str = "", **tuned) -> dict:
    """A trial as ListTrainingJobsForHyperParameterTuningJob describes it (strings, as
    SageMaker gives the tuned values), 60 s of training."""
    trial = {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:::training-job/{name}",
             "CreationTime": START, "TrainingStartTime": START, "TrainingEndTime": START + 60,
             "TrainingJobStatus": status, "TunedHyperParameters": tuned}  # fmt: skip
    if objective is not None:
        metric = {"MetricName": "validation:accuracy", "Value": objective}
        trial["FinalHyperParameterTuningJobObjectiveMetric"] = metric
    return trial | ({"FailureReason": reason} if reason else {})


def tuning(status: str, completed=0, running=0, failed=0, best: float | None = None, **more):
    counters = {"Completed": completed, "InProgress": running, "RetryableError": 0,
                "NonRetryableError": failed, "Stopped": 0}  # fmt: skip
    metric = {"Type": "Maximize", "MetricName": "validation:accuracy", "Value": best}
    best_job = {"FinalHyperParameterTuningJobObjectiveMetric": metric} if best else None
    return {"HyperParameterTuningJobStatus": status, "TrainingJobStatusCounters": counters,
            "BestTrainingJob": best_job} | more  # fmt: skip


def test_make_tune_submits_the_search_space_the_objective_the_metric_definitions_and_the_job(
    project, env, moto
):
    done = make(project, "tune", env, WAIT=0, SPOT=1, STRATEGY="Random", MAX_JOBS=4,
                MAX_PARALLEL=3, HPARAMS="epochs=3 seed=7")  # fmt: skip

    assert done.returncode == 0, done.stderr
    request = created(moto)
    name = request["HyperParameterTuningJobName"]
    assert name == submitted(done.stdout) and len(name) <= 32
    assert done.stdout.splitlines()[-1] == f"Follow it: make tune-status TUNE_JOB={name}"
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 3}
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:accuracy",
    }
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["ParameterRanges"] == {  # job_contract's SEARCH_SPACE
        "ContinuousParameterRanges": [{"Name": "learning-rate", "MinValue": "0.0001",
                                       "MaxValue": "0.1", "ScalingType": "Logarithmic"}],
        "CategoricalParameterRanges": [{"Name": "batch-size", "Values": ["32", "64", "128"]}],
    }  # fmt: skip
    job = request["TrainingJobDefinition"]
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == make_setting(project, "REMOTE_IMAGE")
    definitions = algorithm["MetricDefinitions"]  # the tuner's own: it ignores the trainer's
    assert [d["Name"] for d in definitions] == METRICS
    [objective] = [d["Regex"] for d in definitions if d["Name"] == "validation:accuracy"]
    assert re.search(objective, "METRIC validation:accuracy=0.9375 epoch=2")[1] == "0.9375"
    assert job["RoleArn"] == make_setting(project, "ROLE_ARN")
    assert job["StaticHyperParameters"] == {"epochs": "3", "seed": "7"}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 86400,
        "MaxWaitTimeInSeconds": 172800,
    }
    checkpoints = job["CheckpointConfig"]
    assert checkpoints["LocalPath"] == "/opt/ml/checkpoints"
    assert checkpoints["S3Uri"].startswith(
        f"{make_setting(project, 'S3_OUTPUT_PATH')}/checkpoints/"
    )
    assert job["Environment"] == {"CHECKPOINT_PER_JOB": "1"}  # a folder per trial in there
    channels = sorted(c["ChannelName"] for c in job["InputDataConfig"])
    assert channels == sorted(p.name for p in (project / "data").iterdir())  # train-remote's
    assert {"Key": "ProjectName", "Value": make_setting(project, "PROJECT_NAME")} in request["Tags"]
    names = actions(moto)  # the image is checked before anything is uploaded or submitted
    assert names.index("AmazonEC2ContainerRegistry_V20150921.DescribeImages") < names.index(
        "SageMaker.CreateHyperParameterTuningJob"
    )


def test_hyperband_gets_its_most_epochs_from_hparams(project, env, moto):
    done = make(project, "tune", env, WAIT=0, STRATEGY="Hyperband", HPARAMS="epochs=3")

    assert done.returncode == 0, done.stderr
    config = created(moto)["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband"
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MaxResource": 3}}


def test_make_tune_waits_with_a_line_per_change_then_shows_the_trials_and_the_best(
    project, env, overlay
):
    running = tuning("InProgress", running=2)
    overlay.tuning_statuses[ANY_JOB] = [
        running,  # the SDK's describe, after it creates the job
        running,
        running,  # no change: no new line
        tuning("InProgress", completed=1, running=1, best=0.91),
        tuning("Completed", completed=2, best=0.955),
    ]
    overlay.trials[ANY_JOB] = [
        summary("t-001-aaaa", "Completed", 0.91, **{"learning-rate": "0.001", "batch-size": "64"}),
        summary("t-002-bbbb", "Completed", 0.955, **{"learning-rate": "0.01", "batch-size": "32"}),
    ]

    done = make(project, "tune", env)

    assert done.returncode == 0, done.stderr
    name = submitted(done.stdout)
    lines = done.stdout.splitlines()
    progress = [line for line in lines if line.startswith(f"Tuning job {name}: ")]
    best = "best validation:accuracy"
    assert progress == [
        f"Tuning job {name}: InProgress: 0 completed, 2 running, 0 failed of 8; {best}: none yet",
        f"Tuning job {name}: InProgress: 1 completed, 1 running, 0 failed of 8; {best}: 0.91",
        f"Tuning job {name}: Completed: 2 completed, 0 running, 0 failed of 8; {best}: 0.955",
        f"Tuning job {name}: Completed",
    ]
    output = make_setting(project, "S3_OUTPUT_PATH")
    assert lines[-3:] == [
        "best: t-002-bbbb, validation:accuracy=0.955 with batch-size=32 learning-rate=0.01",
        f"  its model: {output}/t-002-bbbb/output/model.tar.gz",
        '  train with it: make train-remote HPARAMS="batch-size=32 learning-rate=0.01"',
    ]


def test_on_a_terminal_make_tune_rewrites_its_one_progress_line_in_place(project, env, overlay):
    overlay.tuning_statuses[ANY_JOB] = [
        tuning("InProgress", running=2),  # the SDK's describe, after it creates the job
        tuning("InProgress", running=2),
        tuning("InProgress", completed=1, running=1, best=0.9),
        tuning("Completed", completed=2, best=0.9),
    ]
    terminal, its_end = pty.openpty()
    make = subprocess.Popen(
        make_command("tune", ".installed-tools"),
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=its_end,
        stderr=subprocess.PIPE,
    )
    os.close(its_end)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: make and its children have closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert make.wait(timeout=120) == 0, make.stderr.read()

    text = shown.decode()
    name, best = submitted(text.replace("\r\n", "\n")), "best validation:accuracy"
    progress = [
        f"Tuning job {name}: InProgress: 0 completed, 2 running, 0 failed of 8; {best}: none yet",
        f"Tuning job {name}: InProgress: 1 completed, 1 running, 0 failed of 8; {best}: 0.9",
        f"Tuning job {name}: Completed: 2 completed, 0 running, 0 failed of 8; {best}: 0.9",
    ]  # each over the last, on one line of the terminal
    assert "".join(f"\r{line}\x1b[K" for line in progress) in text
    assert f"\x1b[K\r\nTuning job {name}: Completed\r\n" in text  # one newline, at the end


def test_tune_status_shows_the_newest_tuning_jobs_trials_in_tune_locals_table(
    project, env, moto, overlay
):
    report = project_module(project, "project_tools/tuning_report.py")
    assert make(project, "tune", env, WAIT=0).returncode == 0
    name = submitted(make(project, "tune", env, WAIT=0).stdout)  # the newer of two
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", completed=1, running=1, best=0.9)]
    overlay.trials[name] = [
        summary(f"{name}-001-aaaa", "Completed", 0.9, **{"learning-rate": "0.001"}),
        summary(f"{name}-002-bbbb", "InProgress", None, **{"learning-rate": "0.02"}),
    ]
    moto.start_recording()

    done = make(project, "tune-status", env)

    assert done.returncode == 0, done.stderr
    trials = [  # as train.py types them
        report.Trial(f"{name}-001-aaaa", {"learning-rate": 0.001}, 0.9, 60.0, "Completed"),
        report.Trial(f"{name}-002-bbbb", {"learning-rate": 0.02}, None, 60.0, "InProgress"),
    ]
    table = report.table(trials, "validation:accuracy", "maximize")
    assert done.stdout.startswith(f"Tuning job {name}: InProgress\n{table}\n")
    assert f"stop it: make tune-stop TUNE_JOB={name}" in done.stdout
    listed = [json.loads(b) for b in bodies(moto, "SageMaker.ListHyperParameterTuningJobs")]
    assert [body["SortOrder"] for body in listed] == ["Descending"]
    [described] = map(json.loads, bodies(moto, "SageMaker.DescribeHyperParameterTuningJob"))
    assert described == {"HyperParameterTuningJobName": name}


def test_a_tuning_job_whose_trials_fail_shows_its_reason_and_each_trials_and_exits_1(
    project, env, overlay
):
    why = "AlgorithmError: bad hyperparameters: unrecognized arguments: --momentum 0.9"
    overlay.tuning_statuses[ANY_JOB] = [
        tuning("InProgress", running=2),
        tuning("Failed", failed=3, FailureReason="The training jobs failed: 3 of 3."),
    ]
    overlay.trials[ANY_JOB] = [
        summary("t-001-aaaa", "Failed", None, why, **{"learning-rate": "0.001"}),
        summary("t-002-bbbb", "Failed", None, why, **{"learning-rate": "0.01"}),
        summary(
            "t-003-cccc", "Failed", None, "ClientError: out of memory", **{"learning-rate": "1"}
        ),
    ]

    done = make(project, "tune", env)

    assert done.returncode == 2
    assert make_failed("tune").fullmatch(done.stderr.strip())[1] == "1"
    assert done.stdout.splitlines()[-3:] == [
        "FAILED: The training jobs failed: 3 of 3.",
        f"trial t-001-aaaa, t-002-bbbb failed: {why}",
        "trial t-003-cccc failed: ClientError: out of memory",
    ]


def test_tune_stop_stops_the_named_tuning_job(project, env, moto, overlay):
    name = submitted(make(project, "tune", env, WAIT=0).stdout)
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", running=2)]
    overlay.answer_stop = True
    moto.start_recording()

    done = make(project, "tune-stop", env, TUNE_JOB=name)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Tuning job {name} is stopping")
    [stopped] = map(json.loads, bodies(moto, "SageMaker.StopHyperParameterTuningJob"))
    assert stopped == {"HyperParameterTuningJobName": name}


BAD_CONTRACT = [  # (job_contract.py's declaration, what make tune says)
    ('SEARCH_SPACE = {"learning-rate": ("log", 0.01, 0.01)}',
     "SEARCH_SPACE['learning-rate']: lowest 0.01 is not below highest 0.01: an empty range"),
    ('SEARCH_SPACE = {"batch-size": []}',
     "SEARCH_SPACE['batch-size']: an empty list of values; give at least one"),
    ('SEARCH_SPACE = {"learning-rate": ("linear", 0.1, 0.001)}',
     "SEARCH_SPACE['learning-rate']: lowest 0.1 is not below highest 0.001: an empty range"),
    ('SEARCH_SPACE = {"seed": ("log", 0, 100)}',
     "SEARCH_SPACE['seed']: a log scale needs lowest > 0, not 0"),
    ('OBJECTIVE = ("test:accuracy", "maximize")',
     "OBJECTIVE 'test:accuracy': tune on a validation:* metric"),
    ('OBJECTIVE = ("validation:f1", "maximize")',
     "OBJECTIVE 'validation:f1' is not a metric train.py prints"),
]  # fmt: skip
BAD_SETTINGS = [  # (make's settings, what make tune says)
    ({"MAX_PARALLEL": "3", "MAX_JOBS": "2"}, "MAX_PARALLEL 3 is above MAX_JOBS 2"),
    ({"MAX_JOBS": "0"}, "MAX_JOBS: '0' is not a whole number >= 1"),
    ({"STRATEGY": "Grid"}, "STRATEGY: 'Grid' is not one of Bayesian, Random, Hyperband"),
    ({"EARLY_STOPPING": "Sometimes"}, "EARLY_STOPPING: 'Sometimes' is not one of Off, Auto"),
    ({"STRATEGY": "Hyperband", "EARLY_STOPPING": "Auto"}, "EARLY_STOPPING: Hyperband stops"),
    ({"HPARAMS": "learning-rate=0.1"}, "HPARAMS sets learning-rate, which SEARCH_SPACE tunes"),
]


def refused_in_one_line(done, says: str) -> None:
    assert done.returncode == 2
    error, make_says = done.stderr.splitlines()
    assert error.startswith(f"error: {says}"), error
    assert make_failed("tune").fullmatch(make_says)


@pytest.mark.parametrize(("declared", "says"), BAD_CONTRACT)
def test_a_bad_search_space_or_objective_is_refused_in_one_line_before_any_aws_request(
    project, env, moto, declared, says
):
    contract = project / "code" / "job_contract.py"
    original = contract.read_text()
    contract.write_text(f"{original}\n{declared}\n")  # declared again, last: it wins
    try:
        done = make(project, "tune", env)
    finally:
        contract.write_text(original)

    refused_in_one_line(done, says)
    assert actions(moto) == []


@pytest.mark.parametrize(("settings", "says"), BAD_SETTINGS)
def test_a_bad_tuning_setting_is_refused_in_one_line_naming_it_before_any_aws_request(
    project, env, moto, settings, says
):
    done = make(project, "tune", env, **settings)

    refused_in_one_line(done, says)
    assert actions(moto) == []


def test_an_objective_the_newest_local_runs_log_never_printed_is_refused(project, env, moto):
    run = project / "outputs" / "mnist-on-sagemaker-20260101000000"
    run.mkdir(parents=True)
    (run / "train.log").write_text("epoch 1: 3 steps\nMETRIC validation_accuracy=0.9 epoch=1\n")
    (project / "outputs" / "latest").symlink_to(run.name)
    try:
        done = make(project, "tune", env)
    finally:
        shutil.rmtree(project / "outputs")

    refused_in_one_line(done, "OBJECTIVE 'validation:accuracy': its regex ")
    assert f"matches no line of outputs/{run.name}/train.log" in done.stderr
    assert actions(moto) == []


def test_an_image_tag_that_is_not_in_ecr_stops_make_tune_before_any_upload(project, env, moto):
    done = make(project, "tune", env, IMAGE_TAG="not-pushed")

    image = make_setting(project, "REMOTE_IMAGE", IMAGE_TAG="not-pushed")
    refused_in_one_line(done, f"the image {image} is not in ECR; push it first: make push")
    assert actions(moto) == [  # train-remote's check, reused
        "GetCallerIdentity",
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
    ]


@pytest.mark.parametrize(
    ("settings", "says"),
    [({"TUNE_JOB": "nope"}, "there is no tuning job nope in us-east-1; check the name and "
      "AWS_REGION: aws sagemaker list-hyper-parameter-tuning-jobs --region us-east-1"),
     ({}, "no tuning job named mnist-on-sagemaker-* in us-east-1: start one with make tune, "
      "or name one: TUNE_JOB=<name>")],
)  # fmt: skip
def test_tune_status_without_such_a_tuning_job_says_so_in_one_line(project, env, settings, says):
    done = make(project, "tune-status", env, **settings)

    assert done.returncode == 2
    error, make_says = done.stderr.splitlines()
    assert error == f"error: {says}"
    assert make_failed("tune-status").fullmatch(make_says)[1] == "1"
