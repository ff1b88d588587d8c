"""The container contract of sagemaker_runtime.py that the launcher relies on too: how
hyperparameters are typed, how metric lines look and are read back, how a failure is told."""

import re

import pytest
import sagemaker_runtime

# (name, value, epoch, the line train.py prints for it), exactly as SageMaker's logs show it
PRINTED_METRICS = [
    ("train:loss", 0.5, 1, "METRIC train:loss=0.5 epoch=1"),
    ("train:loss", -0.25, 2, "METRIC train:loss=-0.25 epoch=2"),
    ("validation:loss", 1e-05, 3, "METRIC validation:loss=1e-05 epoch=3"),
    ("validation:loss", -3.5e12, 4, "METRIC validation:loss=-3.5e+12 epoch=4"),
    ("train:accuracy", 0.0, 5, "METRIC train:accuracy=0 epoch=5"),
    ("validation:accuracy", 123456789.0, 6, "METRIC validation:accuracy=1.23457e+08 epoch=6"),
    ("test:loss", 7.0, None, "METRIC test:loss=7"),
    ("test:accuracy", 0.975, None, "METRIC test:accuracy=0.975"),
]


@pytest.mark.parametrize("name, value, epoch, line", PRINTED_METRICS)
def test_a_metric_is_printed_as_one_line_with_six_significant_digits(name, value, epoch, line):
    assert sagemaker_runtime.format_metric(name, value, epoch=epoch) == line


@pytest.mark.parametrize("name, value, epoch, line", PRINTED_METRICS)
def test_exactly_one_metric_definition_reads_each_printed_line_and_its_value(
    name, value, epoch, line
):
    definitions = sagemaker_runtime.metric_definitions()
    matching = [d for d in definitions if re.search(d["Regex"], "algo-1-x7k2 | " + line)]
    assert [d["Name"] for d in matching] == [name]
    read = float(re.search(matching[0]["Regex"], line).group(1))
    assert read == pytest.approx(value, rel=1e-5)


def test_sagemaker_gets_one_metric_definition_per_declared_metric():
    definitions = sagemaker_runtime.metric_definitions()
    assert [d["Name"] for d in definitions] == [
        "train:loss",
        "train:accuracy",
        "validation:loss",
        "validation:accuracy",
        "test:loss",
        "test:accuracy",
    ]
    assert all(set(d) == {"Name", "Regex"} for d in definitions)


@pytest.mark.parametrize(
    "line, parsed",
    [
        ("METRIC validation:loss=1e-05 epoch=3", ("validation:loss", 1e-05, 3)),
        ("algo-1_1  | METRIC train:loss=-0.25 epoch=12", ("train:loss", -0.25, 12)),
        ("METRIC test:accuracy=0.975", ("test:accuracy", 0.975, None)),
        ("Epoch 2/3", None),
        ("METRIC train:lost=0.5 epoch=1", None),
    ],
)
def test_a_log_line_parses_into_name_value_and_epoch_or_none(line, parsed):
    assert sagemaker_runtime.parse_metric_line(line) == parsed


def test_an_unknown_metric_name_cannot_be_printed():
    with pytest.raises(ValueError, match="unknown metric 'train:los'.*job_contract.py"):
        sagemaker_runtime.format_metric("train:los", 1.0)


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("epochs", "3", 3),
        ("epochs", 3, 3),
        ("epochs", "3.0", 3),
        ("epochs", '"3"', 3),
        ("learning-rate", "1e-3", 0.001),
        ("learning-rate", 1, 1.0),
        ("batch-size", " 64 ", 64),
    ],
)
def test_a_hyperparameter_in_any_form_sagemaker_passes_is_coerced_to_its_type(name, raw, expected):
    value = sagemaker_runtime.coerce_hyperparameter(name, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("epochs", "2.5", "not a whole number"),
        ("epochs", "0", ">= 1"),
        ("learning-rate", "0", "> 0"),
        ("learning-rate", "nan", "finite"),
        ("batch-size", "many", "not a number"),
        ("epoch", "3", "unknown hyperparameter"),
    ],
)
def test_a_bad_hyperparameter_is_rejected_with_a_one_line_reason_naming_it(name, raw, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        sagemaker_runtime.coerce_hyperparameter(name, raw)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_hyperparameters_not_given_take_their_declared_defaults():
    assert sagemaker_runtime.parse_hyperparameters(["--epochs", "2"]) == {
        "epochs": 2,
        "batch-size": 64,
        "learning-rate": 0.001,
        "seed": 42,
    }


def test_the_objective_sagemaker_adds_to_a_tuning_trials_hyperparameters_is_not_refused():
    """A tuning job gives each trial _tuning_objective_metric too; the toolkit passes it on."""
    argv = ["--_tuning_objective_metric", "validation:accuracy", "--learning-rate", "0.01"]
    assert sagemaker_runtime.parse_hyperparameters(argv)["learning-rate"] == 0.01


@pytest.mark.parametrize("per_job, folder", [("1", "tune-x-001-ab12cd34"), ("", "")])
def test_tuning_trials_back_up_under_their_own_job_name_other_jobs_directly(
    opt_ml, monkeypatch, per_job, folder
):
    monkeypatch.setenv("CHECKPOINT_PER_JOB", per_job)
    monkeypatch.setenv("TRAINING_JOB_NAME", "tune-x-001-ab12cd34")
    plan = sagemaker_runtime.distribution_plan(["algo-1"], "algo-1", 0)
    backup, _ = sagemaker_runtime.Cluster(plan, strategy=None, seed=0).callbacks()
    assert backup.backup_dir == str(opt_ml / "checkpoints" / folder / "backup")


def test_a_long_reason_is_written_as_one_line_of_at_most_1000_characters(opt_ml, capfd):
    def train(hp):
        raise sagemaker_runtime.JobError("bad data:\n" + "x" * 2000)

    assert sagemaker_runtime.run(train, []) == 1
    reason = (opt_ml / "output" / "failure").read_text()
    assert reason.startswith("bad data: xxx") and reason.endswith("x\n")
    assert len(reason) == 1001 and reason.count("\n") == 1
    assert capfd.readouterr().err == f"FAILURE: {reason}"


def test_a_user_error_exits_1_with_its_message_as_the_reason_and_no_traceback(opt_ml, capfd):
    def train(hp):
        raise sagemaker_runtime.JobError(f"channel 'training' is odd (epochs={hp['epochs']})")

    assert sagemaker_runtime.run(train, ["--epochs", "3"]) == 1
    reason = (opt_ml / "output" / "failure").read_text()
    assert reason == "channel 'training' is odd (epochs=3)\n"
    assert "Traceback" not in capfd.readouterr().err


def test_an_unexpected_error_exits_1_with_its_traceback_and_its_type_as_the_reason(opt_ml, capfd):
    def train(hp):
        raise RuntimeError("out of memory\non the GPU")

    assert sagemaker_runtime.run(train, []) == 1
    assert (opt_ml / "output" / "failure").read_text() == "RuntimeError: out of memory on the GPU\n"
    err = capfd.readouterr().err
    assert "Traceback" in err and err.endswith("FAILURE: RuntimeError: out of memory on the GPU\n")


def test_an_interrupted_run_exits_143_as_a_process_killed_by_sigterm(opt_ml):
    def train(hp):
        raise sagemaker_runtime.Interrupted("interrupted by SIGTERM")

    assert sagemaker_runtime.run(train, []) == 143
    assert (opt_ml / "output" / "failure").read_text() == "interrupted by SIGTERM\n"


def test_a_run_that_returns_exits_0_and_leaves_no_failure_file(opt_ml):
    assert sagemaker_runtime.run(lambda hp: None, []) == 0
    assert not (opt_ml / "output" / "failure").exists()
