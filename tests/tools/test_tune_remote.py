"""smt tune, tune-status and tune-stop against the moto server, as their user sees them: what
the CreateHyperParameterTuningJob request carries, the progress line and the table of
trials, failures' reasons, and the checks that refuse a bad setting before any request.

moto 5.2.5 makes every tuning job Completed at once with one made-up trial, and has neither
ListTrainingJobsForHyperParameterTuningJob nor StopHyperParameterTuningJob: the overlay
(status_overlay.StatusOverlay) scripts the statuses DescribeHyperParameterTuningJob answers and
the trials, and answers the stop, each after moto has recorded the request."""

import io
import json
import re
import sys
from datetime import UTC, datetime

import pytest
from helpers import actions, bodies, seed_account
from smt import settings, tune_remote
from smt.errors import Failure
from status_overlay import ANY_JOB

METRICS = ["train:loss", "train:accuracy", "validation:loss", "validation:accuracy",
           "test:loss", "test:accuracy"]  # fmt: skip
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
CREATE = "SageMaker.CreateHyperParameterTuningJob"


@pytest.fixture
def ready(project_dir, aws, overlay, monkeypatch):
    """An account train-remote would run in (the image in ECR, the role, the bucket), behind
    the overlay, recording from here; the project's settings of make tune. The channels are
    on S3 already (DATA_S3): no upload, which takes seconds (the aws CLI)."""
    values = settings.derive(settings.load("tune", project_dir))
    seed_account(aws, values.ecr_repository, values.image_tag, values.role_arn,
                 values.s3_output_path)  # fmt: skip
    bucket = values.s3_output_path.removeprefix("s3://").split("/")[0]
    for channel in ("training", "validation", "test"):
        aws.client("s3").put_object(Bucket=bucket, Key=f"channels/{channel}/data.npz", Body=b"")
    monkeypatch.setenv("DATA_S3", f"s3://{bucket}/channels")
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    monkeypatch.setenv("TUNE_POLL", "0.05")
    aws.start_recording()
    return values


def created(moto) -> dict:
    [request] = map(json.loads, bodies(moto, CREATE))
    return request


def submitted(stdout: str) -> str:
    [name] = re.findall(r"^Tuning job (\S+) submitted", stdout, re.MULTILINE)
    return name


def summary(name: str, status: str, objective: float | None, reason: str = "", **tuned) -> dict:
    """A trial as ListTrainingJobsForHyperParameterTuningJob (and BestTrainingJob) describes
    it: strings, as SageMaker gives the tuned values; 60 s of training."""
    trial = {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:::training-job/{name}",
             "CreationTime": START, "TrainingStartTime": START, "TrainingEndTime": START + 60,
             "TrainingJobStatus": status, "TunedHyperParameters": tuned}  # fmt: skip
    if objective is not None:
        metric = {"MetricName": "validation:accuracy", "Value": objective}
        trial["FinalHyperParameterTuningJobObjectiveMetric"] = metric
    return trial | ({"FailureReason": reason} if reason else {})


def tuning(status: str, completed=0, running=0, failed=0, best: dict | None = None, **more):
    """DescribeHyperParameterTuningJob's answer, as far as the overlay scripts it."""
    counters = {"Completed": completed, "InProgress": running, "RetryableError": 0,
                "NonRetryableError": failed, "Stopped": 0}  # fmt: skip
    return {"HyperParameterTuningJobStatus": status, "TrainingJobStatusCounters": counters,
            "BestTrainingJob": best} | more  # fmt: skip


def test_tune_submits_the_search_space_the_objective_the_metric_definitions_and_the_job(
    smt, ready, aws, monkeypatch
):
    monkeypatch.delenv("DATA_S3")  # DATA_DIR uploaded, as train-remote does
    done = smt("tune", "--wait", "0", "--spot", "1", "--strategy", "Random", "--max-jobs", "4",
               "--max-parallel", "3", "--hparams", "epochs=3 seed=7")  # fmt: skip

    assert done.code == 0, done.err
    request = created(aws)
    name = request["HyperParameterTuningJobName"]
    assert name == submitted(done.out) and len(name) <= 32
    assert name.startswith(ready.base_job_name[:8])
    assert done.out.splitlines()[-1] == f"Follow it: make tune-status TUNE_JOB={name}"
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
    assert algorithm["TrainingImage"] == ready.remote_image
    definitions = algorithm["MetricDefinitions"]  # the tuner's own: it ignores the trainer's
    assert [d["Name"] for d in definitions] == METRICS
    [objective] = [d["Regex"] for d in definitions if d["Name"] == "validation:accuracy"]
    assert re.search(objective, "METRIC validation:accuracy=0.9375 epoch=2")[1] == "0.9375"
    assert job["RoleArn"] == ready.role_arn
    assert job["StaticHyperParameters"] == {"epochs": "3", "seed": "7"}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 86400,
        "MaxWaitTimeInSeconds": 172800,
    }
    checkpoints = job["CheckpointConfig"]
    assert checkpoints["LocalPath"] == "/opt/ml/checkpoints"
    assert checkpoints["S3Uri"].startswith(f"{ready.s3_output_path}/checkpoints/")
    assert job["Environment"] == {"CHECKPOINT_PER_JOB": "1"}  # a folder per trial in there
    channels = sorted(c["ChannelName"] for c in job["InputDataConfig"])
    assert channels == ["test", "training", "validation"]  # train-remote's
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags["ProjectName"] == ready.project_name and tags["ImageTag"] == ready.image_tag
    names = actions(aws)  # the image is checked before anything is uploaded or submitted
    assert names.index("AmazonEC2ContainerRegistry_V20150921.DescribeImages") < names.index(CREATE)


@pytest.mark.parametrize(("hparams", "most"), [("epochs=3", 3), ("", 5)])
def test_hyperband_gets_its_most_epochs_from_hparams_else_from_the_default(
    smt, ready, aws, hparams, most
):
    done = smt("tune", "--wait", "0", "--strategy", "Hyperband", "--hparams", hparams)

    assert done.code == 0, done.err
    config = created(aws)["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband"
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MaxResource": most}}


def test_hyperband_without_an_epochs_hyperparameter_is_refused_before_any_aws_request(
    smt, aws, project_dir
):
    contract = project_dir / "code" / "job_contract.py"
    renamed = 'HYPERPARAMETERS["passes"] = HYPERPARAMETERS.pop("epochs")'
    contract.write_text(f"{contract.read_text()}\n{renamed}\n")

    refused_in_one_line(smt("tune", "--strategy", "Hyperband"), "STRATEGY: Hyperband needs")
    assert actions(aws) == []


def test_tune_waits_with_a_line_per_change_then_shows_the_trials_and_the_best(smt, ready, overlay):
    first = summary(
        "t-001-aaaa", "Completed", 0.91, **{"learning-rate": "0.001", "batch-size": "64"}
    )
    second = summary(
        "t-002-bbbb", "Completed", 0.955, **{"learning-rate": "0.01", "batch-size": "32"}
    )
    running = tuning("InProgress", running=2)
    overlay.tuning_statuses[ANY_JOB] = [
        running,  # the SDK's describe, after it creates the job
        running,
        running,  # no change: no new line
        tuning("InProgress", completed=1, running=1, best=first),
        tuning("Completed", completed=2, best=second),
    ]
    overlay.trials[ANY_JOB] = [first, second]

    done = smt("tune")

    assert done.code == 0, done.err
    name = submitted(done.out)
    lines = done.out.splitlines()
    progress = [line for line in lines if line.startswith(f"Tuning job {name}: ")]
    best = "best validation:accuracy"
    assert progress == [
        f"Tuning job {name}: InProgress: 0 completed, 2 running, 0 failed of 4; {best}: none yet",
        f"Tuning job {name}: InProgress: 1 completed, 1 running, 0 failed of 4; {best}: 0.91",
        f"Tuning job {name}: Completed: 2 completed, 0 running, 0 failed of 4; {best}: 0.955",
        f"Tuning job {name}: Completed",
    ]
    assert lines[-3:] == [
        "best: t-002-bbbb, validation:accuracy=0.955 with batch-size=32 learning-rate=0.01",
        f"  its model: {ready.s3_output_path}/t-002-bbbb/output/model.tar.gz",
        '  train with it: make train-remote HPARAMS="batch-size=32 learning-rate=0.01"',
    ]


def test_deploys_source_is_the_best_trial_of_tune_job_not_the_trial_that_ended_last(
    smt, ready, overlay, project_dir
):
    name = submitted(smt("tune", "--wait", "0").out)
    best = summary(f"{name}-001-aaaa", "Completed", 0.97, **{"learning-rate": "0.001"})
    overlay.tuning_statuses[ANY_JOB] = [tuning("Completed", completed=2, best=best)]
    overlay.trials[ANY_JOB] = [
        best,
        summary(f"{name}-002-bbbb", "Completed", 0.5, **{"learning-rate": "0.02"}),
    ]

    for given in ({"TUNE_JOB": name}, {}):  # named, or the newest tuning job
        deploy = settings.load("deploy", project_dir, given)
        assert tune_remote.best_model(deploy) == (
            f"{name}-001-aaaa",
            f"{ready.s3_output_path}/{name}-001-aaaa/output/model.tar.gz",
        )


def test_deploy_from_a_tuning_job_without_a_best_trial_says_so(smt, ready, overlay, project_dir):
    name = submitted(smt("tune", "--wait", "0").out)
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", running=1)]

    with pytest.raises(
        Failure, match=f"^tuning job {name} has no best trial yet: make tune-status"
    ):
        tune_remote.best_model(settings.load("deploy", project_dir, {"TUNE_JOB": name}))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_tune_rewrites_its_one_progress_line_in_place(
    smt, ready, overlay, monkeypatch
):
    best = summary("t-001-aaaa", "Completed", 0.9, **{"learning-rate": "0.001"})
    overlay.tuning_statuses[ANY_JOB] = [
        tuning("InProgress", running=2),  # the SDK's describe, after it creates the job
        tuning("InProgress", running=2),
        tuning("InProgress", completed=1, running=1, best=best),
        tuning("Completed", completed=2, best=best),
    ]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)

    assert smt("tune").code == 0

    text = terminal.getvalue()
    name, best = submitted(text), "best validation:accuracy"
    progress = [
        f"Tuning job {name}: InProgress: 0 completed, 2 running, 0 failed of 4; {best}: none yet",
        f"Tuning job {name}: InProgress: 1 completed, 1 running, 0 failed of 4; {best}: 0.9",
        f"Tuning job {name}: Completed: 2 completed, 0 running, 0 failed of 4; {best}: 0.9",
    ]  # each over the last, on one line of the terminal
    assert "".join(f"\r{line}\x1b[K" for line in progress) in text
    assert f"\x1b[K\nTuning job {name}: Completed\n" in text  # one newline, at the end


def test_tune_status_shows_the_newest_tuning_jobs_trials_in_tune_locals_table(
    smt, ready, aws, overlay
):
    assert smt("tune", "--wait", "0").code == 0
    name = submitted(smt("tune", "--wait", "0").out)  # the newer of two
    best = summary("t-001-aaaa", "Completed", 0.9, **{"learning-rate": "0.001"})
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", completed=1, running=1, best=best)]
    overlay.trials[name] = [
        best,
        summary("t-002-bbbb", "InProgress", None, **{"learning-rate": "0.02"}),
        summary("t-003-cccc", "Completed", None, **{"learning-rate": "0.0123456"}),
    ]
    aws.start_recording()

    done = smt("tune-status")

    assert done.code == 0, done.err
    assert done.out.startswith(
        f"Tuning job {name}: InProgress\n"
        "  trial       learning-rate  validation:accuracy (max)  time (s)  status\n"
        "* t-001-aaaa  0.001          0.9                        60        Completed\n"
        "  t-002-bbbb  0.02           -                          60        InProgress\n"
        "  t-003-cccc  0.01235        -                          60        no objective\n"
    )
    assert f"stop it: make tune-stop TUNE_JOB={name}" in done.out
    listed = [json.loads(b) for b in bodies(aws, "SageMaker.ListHyperParameterTuningJobs")]
    assert [body["NameContains"] for body in listed] == [name.rsplit("-", 2)[0]]
    [described] = map(json.loads, bodies(aws, "SageMaker.DescribeHyperParameterTuningJob"))
    assert described == {"HyperParameterTuningJobName": name}


def test_tune_status_shows_this_projects_newest_tuning_job_on_any_page_not_one_named_alike(
    smt, ready, aws, overlay
):
    ours = submitted(smt("tune", "--wait", "0").out)
    definition = {key: created(aws)["TrainingJobDefinition"][key] for key in (
        "AlgorithmSpecification", "RoleArn", "OutputDataConfig", "ResourceConfig",
        "StoppingCondition")}  # fmt: skip
    config = {"Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Maximize",
              "MetricName": "validation:accuracy"}, "ResourceLimits": {
              "MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1}}  # fmt: skip
    for i in range(100):  # newer, a page of them: their names too start as make tune names ours
        aws.client("sagemaker").create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=f"{ours.rsplit('-', 2)[0]}-{i:06x}-v2",
            HyperParameterTuningJobConfig=config,
            TrainingJobDefinition=definition,
            Tags=[{"Key": "ProjectName", "Value": f"{ready.project_name} v2"}],
        )
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", running=1)]
    aws.start_recording()

    done = smt("tune-status")

    assert done.code == 0, done.err
    assert done.out.startswith(f"Tuning job {ours}: InProgress\n")
    [described] = map(json.loads, bodies(aws, "SageMaker.DescribeHyperParameterTuningJob"))
    assert described == {"HyperParameterTuningJobName": ours}
    assert actions(aws).count("SageMaker.ListHyperParameterTuningJobs") == 2  # both pages


def test_a_tuning_job_whose_trials_fail_shows_its_reason_and_each_trials_and_exits_1(
    smt, ready, overlay
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

    done = smt("tune")

    assert done.code == 1
    assert done.out.splitlines()[-3:] == [
        "FAILED: The training jobs failed: 3 of 3.",
        f"trial t-001-aaaa, t-002-bbbb failed: {why}",
        "trial t-003-cccc failed: ClientError: out of memory",
    ]


def test_tune_stop_stops_the_named_tuning_job(smt, ready, aws, overlay):
    name = submitted(smt("tune", "--wait", "0").out)
    overlay.tuning_statuses[ANY_JOB] = [tuning("InProgress", running=2)]
    overlay.answer_stop = True
    aws.start_recording()

    done = smt("tune-stop", "--tune-job", name)

    assert done.code == 0, done.err
    assert done.out.startswith(f"Tuning job {name} is stopping")
    [stopped] = map(json.loads, bodies(aws, "SageMaker.StopHyperParameterTuningJob"))
    assert stopped == {"HyperParameterTuningJobName": name}


def test_tune_stop_of_a_tuning_job_that_has_ended_stops_nothing(smt, ready, aws, overlay):
    name = submitted(smt("tune", "--wait", "0").out)
    overlay.tuning_statuses[ANY_JOB] = [tuning("Completed", completed=4)]
    aws.start_recording()

    done = smt("tune-stop", "--tune-job", name)

    assert (done.code, done.out) == (0, f"Tuning job {name} has already ended (Completed);"
                                        " nothing to stop\n")  # fmt: skip
    assert bodies(aws, "SageMaker.StopHyperParameterTuningJob") == []


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
BAD_SETTINGS = [  # (the options, what make tune says)
    ({"MAX_PARALLEL": "3", "MAX_JOBS": "2"}, "MAX_PARALLEL: 3 is above MAX_JOBS 2"),
    ({"MAX_JOBS": "0"}, "MAX_JOBS: '0' is not a whole number >= 1"),
    ({"STRATEGY": "Grid"}, "STRATEGY: 'Grid' is not one of Bayesian, Random, Hyperband"),
    ({"EARLY_STOPPING": "Sometimes"}, "EARLY_STOPPING: 'Sometimes' is not one of Off, Auto"),
    ({"STRATEGY": "Hyperband", "EARLY_STOPPING": "Auto"}, "EARLY_STOPPING: Hyperband stops"),
    ({"HPARAMS": "learning-rate=0.1"}, "HPARAMS sets learning-rate, which SEARCH_SPACE tunes"),
    ({"HPARAMS": "epochs=two"}, "HPARAMS: hyperparameter epochs='two' is not a number"),
    ({"MAX_WAIT": "100"}, "MAX_WAIT: it applies to spot jobs only"),
]


def refused_in_one_line(done, says: str) -> None:
    """Exit 2 and one line; the tests that use it need no ready account: any request of
    AWS is the failure."""
    assert done.code == 2 and done.out == ""
    [error] = done.err.splitlines()
    assert error.startswith(f"error: {says}"), error


@pytest.mark.parametrize(("declared", "says"), BAD_CONTRACT)
def test_a_bad_search_space_or_objective_is_refused_in_one_line_before_any_aws_request(
    smt, aws, project_dir, declared, says
):
    contract = project_dir / "code" / "job_contract.py"
    contract.write_text(f"{contract.read_text()}\n{declared}\n")  # declared again, last: it wins

    refused_in_one_line(smt("tune"), says)
    assert actions(aws) == []


@pytest.mark.parametrize(("given", "says"), BAD_SETTINGS)
def test_a_bad_tuning_setting_is_refused_in_one_line_naming_it_before_any_aws_request(
    smt, aws, given, says
):
    options = [word for name, value in given.items() for word in (f"--{name.lower()}", value)]
    refused_in_one_line(smt("tune", *[o.replace("_", "-") for o in options]), says)
    assert actions(aws) == []


def test_an_objective_the_newest_local_runs_log_never_printed_is_refused(smt, aws, project_dir):
    run = project_dir / "outputs" / "mnist-on-sagemaker-20260101000000"
    run.mkdir(parents=True)
    (run / "train.log").write_text("epoch 1: 3 steps\nMETRIC validation_accuracy=0.9 epoch=1\n")
    (project_dir / "outputs" / "latest").symlink_to(run.name)

    done = smt("tune")

    refused_in_one_line(done, "OBJECTIVE 'validation:accuracy': its regex ")
    assert f"matches no line of outputs/{run.name}/train.log" in done.err
    assert actions(aws) == []


def test_an_image_tag_that_is_not_in_ecr_stops_tune_before_any_upload(smt, ready, aws):
    done = smt("tune", "--image-tag", "not-pushed")

    image = ready.remote_image.replace(ready.image_tag, "not-pushed")
    assert (done.code, done.err) == (1, f"error: the image {image} is not in ECR; push it"
                                        " first: make push\n")  # fmt: skip
    assert actions(aws) == [  # train-remote's check, reused
        "GetCallerIdentity",
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
    ]


@pytest.mark.parametrize(
    ("given", "says"),
    [(["--tune-job", "nope"], "TUNE_JOB: there is no tuning job nope in us-east-1; check the"
      " name and AWS_REGION: aws sagemaker list-hyper-parameter-tuning-jobs --region us-east-1"),
     ([], "no tuning job named mnist-on-sag-* in us-east-1: start one with make tune, or name"
      " one: TUNE_JOB=<name>")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["tune-status", "tune-stop"])
def test_tune_status_and_stop_without_such_a_tuning_job_say_so_in_one_line(
    smt, ready, command, given, says
):
    done = smt(command, *given)

    assert (done.code, done.out, done.err) == (1, "", f"error: {says}\n")
