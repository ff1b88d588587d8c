"""train.py run in-process against an /opt/ml-shaped tree, as the toolkit would run it (and
as its own process, for SIGTERM)."""

import os
import re
import signal
import subprocess
import sys

import job_contract
import sagemaker_runtime
import train
from conftest import PROJECT_DIR


def run_train(*argv: str) -> int:
    """The exit code of `python train.py ARGV...`, without a new process."""
    return sagemaker_runtime.run(train.train, list(argv))


def failure_reason(opt_ml) -> str:
    return (opt_ml / "output" / "failure").read_text()


def test_training_saves_a_servable_model_under_version_1(opt_ml):
    assert run_train("--epochs", "2") == 0
    assert (opt_ml / "model" / "1" / "saved_model.pb").is_file()
    assert not (opt_ml / "output" / "failure").exists()


def test_the_saved_model_takes_the_images_as_stored_and_scores_them_as_training_did(opt_ml, capfd):
    """The scaling is a layer of the model: on the test channel as it is (0..255), the saved
    model's loss and accuracy are those train.py printed for it."""
    import numpy as np
    import pytest
    import tensorflow as tf

    assert run_train("--epochs", "8", "--learning-rate", "0.01") == 0
    printed = dict(re.findall(r"^METRIC test:(\w+)=(\S+)$", capfd.readouterr().out, re.M))
    model = tf.saved_model.load(str(opt_ml / "model" / "1"))
    with np.load(opt_ml / "input" / "data" / "test" / "data.npz") as data:
        x, y = data["x"], data["y"]
    outputs = model.signatures["serving_default"](tf.constant(x, "float32"))
    logits = next(iter(outputs.values())).numpy().astype("float64")
    top = logits.max(axis=1)
    log_sum = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    loss = float(np.mean(log_sum - logits[np.arange(len(y)), y]))
    accuracy = float((logits.argmax(axis=1) == y).mean())
    assert accuracy > 0.5  # 8 classes: chance is 0.125
    assert loss == pytest.approx(float(printed["loss"]), rel=1e-3)
    assert accuracy == pytest.approx(float(printed["accuracy"]))


def test_every_metric_line_matches_a_metric_definition_and_all_metrics_appear(opt_ml, capfd):
    assert run_train("--epochs", "2") == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("METRIC")]
    seen = set()
    for line in lines:
        matches = [d for d in sagemaker_runtime.metric_definitions() if re.search(d["Regex"], line)]
        assert len(matches) == 1, f"{line!r} matched {len(matches)} definitions"
        value = float(re.search(matches[0]["Regex"], line).group(1))
        assert value == value  # not NaN
        seen.add(matches[0]["Name"])
    assert seen == set(job_contract.METRIC_NAMES)


def test_the_log_tells_the_data_each_epoch_its_metrics_and_where_the_model_went(opt_ml, capfd):
    assert run_train("--epochs", "2", "--batch-size", "64") == 0
    out = capfd.readouterr().out
    assert "training on 256 examples of shape (8, 8)\n" in out
    for epoch in (1, 2):
        assert re.search(rf"^epoch {epoch}: 4 steps in [\d.]+ s \([\d.]+ steps/s\)$", out, re.M)
        epoch_metrics = re.findall(rf"^METRIC (\S+)=\S+ epoch={epoch}$", out, re.M)
        assert epoch_metrics == [
            "train:loss",
            "train:accuracy",
            "validation:loss",
            "validation:accuracy",
        ]
    assert re.findall(r"^METRIC (test:\w+)=\S+$", out, re.M) == ["test:loss", "test:accuracy"]
    assert f"model saved to {opt_ml / 'model' / '1'}\n" in out


def test_hyperparameters_in_the_string_forms_sagemaker_passes_reach_train_typed(opt_ml):
    received = []

    def spy(hp):
        received.append(hp)
        train.train(hp)

    argv = ["--epochs", "1.0", "--batch-size", '"32"', "--learning-rate", "1e-3", "--seed", "7"]
    assert sagemaker_runtime.run(spy, argv) == 0
    typed = {name: (type(value), value) for name, value in received[0].items()}
    assert typed == {
        "epochs": (int, 1),
        "batch-size": (int, 32),
        "learning-rate": (float, 0.001),
        "seed": (int, 7),
    }


def test_a_bad_hyperparameter_value_writes_a_one_line_reason_and_exits_non_zero(opt_ml):
    assert run_train("--epochs", "zero") == 1
    reason = failure_reason(opt_ml)
    assert reason.count("\n") == 1 and "epochs" in reason and "not a number" in reason


def test_an_out_of_range_learning_rate_is_a_failure_reason(opt_ml):
    assert run_train("--learning-rate", "-0.5") == 1
    assert "learning-rate" in failure_reason(opt_ml) and "> 0" in failure_reason(opt_ml)


def test_an_unknown_hyperparameter_is_a_failure_reason_not_a_usage_dump(opt_ml, capfd):
    assert run_train("--epoch", "3") == 1
    assert "unrecognized arguments: --epoch 3" in failure_reason(opt_ml)
    assert "usage:" not in capfd.readouterr().err


def test_a_missing_training_channel_is_named_in_the_failure_reason(opt_ml, monkeypatch):
    monkeypatch.delenv("SM_CHANNEL_TRAINING")
    assert run_train("--epochs", "1") == 1
    assert "channel 'training' is missing" in failure_reason(opt_ml)


def test_an_empty_training_channel_is_named_in_the_failure_reason(opt_ml):
    (opt_ml / "input" / "data" / "training" / "data.npz").unlink()
    assert run_train("--epochs", "1") == 1
    assert "channel 'training' has no .npz files" in failure_reason(opt_ml)


def test_labels_outside_the_ten_classes_are_a_failure_reason(opt_ml):
    import numpy as np

    np.savez(
        opt_ml / "input" / "data" / "training" / "data.npz",
        x=np.zeros((4, 8, 8), "uint8"),
        y=np.array([0, 1, 2, 11], "uint8"),
    )
    assert run_train("--epochs", "1") == 1
    assert failure_reason(opt_ml) == "channel 'training': data.npz: labels must be 0..9\n"


def test_training_runs_without_a_test_channel_and_prints_no_test_score(opt_ml, monkeypatch, capfd):
    monkeypatch.delenv("SM_CHANNEL_TEST")
    assert run_train("--epochs", "1") == 0
    out = capfd.readouterr().out
    assert "METRIC train:loss=" in out and "METRIC validation:accuracy=" in out
    assert "METRIC test:" not in out


def validation_accuracy(out: str) -> float:
    return float(re.findall(r"^METRIC validation:accuracy=(\S+) epoch=\d+$", out, re.M)[-1])


def test_validation_scores_the_validation_channel_and_test_only_the_final_model(opt_ml, capfd):
    """The test set is written to be all one label: a model scored on it as validation data
    would print the same accuracy for both (it did, before validation got its channel)."""
    import numpy as np

    test = opt_ml / "input" / "data" / "test" / "data.npz"
    with np.load(test) as data:
        x, y = data["x"], data["y"]
    np.savez(test, x=x[y == y[0]], y=y[y == y[0]])
    assert run_train("--epochs", "2") == 0
    out = capfd.readouterr().out
    assert "no validation channel" not in out and "training on 256 examples" in out
    test_accuracy = float(re.findall(r"^METRIC test:accuracy=(\S+)$", out, re.M)[0])
    assert validation_accuracy(out) != test_accuracy


def test_a_missing_validation_channel_is_a_failure_reason_not_a_silent_skip(opt_ml, monkeypatch):
    """Validation is what tuning and early decisions choose on; never test, nor training."""
    monkeypatch.delenv("SM_CHANNEL_VALIDATION")
    assert run_train("--epochs", "1") == 1
    assert failure_reason(opt_ml).startswith("channel 'validation' is missing")


def train_process(*args):
    """train.py as its own process, as the toolkit runs it: SIGTERM reaches it."""
    return subprocess.Popen(
        [sys.executable, "-u", str(PROJECT_DIR / "code" / "train.py"), *args],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_stops_after_the_step_and_the_next_run_resumes_from_the_checkpoint(opt_ml):
    args = ["--epochs", "6", "--batch-size", "1"]
    first = train_process(*args)
    completed = []
    for line in first.stdout:
        if line.startswith("METRIC train:loss"):
            completed.append(int(line.rsplit("epoch=", 1)[1]))
            if len(completed) == 1:
                first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143
    reason = (opt_ml / "output" / "failure").read_text()
    assert "interrupted by SIGTERM" in reason and reason.count("\n") == 1
    (opt_ml / "output" / "failure").unlink()

    second = train_process(*args)
    output = second.stdout.read()
    assert second.wait(timeout=300) == 0, output
    resumed_at = int(output.split("starting at epoch ", 1)[1].split()[0])
    assert resumed_at == completed[-1] + 1  # no completed epoch is done twice
    assert f"epoch={resumed_at - 1}\n" not in output
    assert (opt_ml / "model" / "1" / "saved_model.pb").is_file()
    assert not list((opt_ml / "checkpoints").rglob("*.index"))  # backup gone after success
