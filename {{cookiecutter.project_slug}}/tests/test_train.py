"""train.py run in-process against an /opt/ml-shaped tree, as the toolkit would run it."""

import re

import job_contract
import train


def failure_reason(opt_ml) -> str:
    return (opt_ml / "output" / "failure").read_text()


def test_training_saves_a_servable_model_under_version_1(opt_ml):
    assert train.main(["--epochs", "2"]) == 0
    assert (opt_ml / "model" / "1" / "saved_model.pb").is_file()
    assert not (opt_ml / "output" / "failure").exists()


def test_the_saved_model_loads_and_scores_above_chance(opt_ml):
    import numpy as np
    import tensorflow as tf

    assert train.main(["--epochs", "8", "--learning-rate", "0.01"]) == 0
    model = tf.saved_model.load(str(opt_ml / "model" / "1"))
    with np.load(opt_ml / "input" / "data" / "test" / "data.npz") as data:
        logits = model.signatures["serving_default"](tf.constant(data["x"] / 255.0, "float32"))
        predicted = np.argmax(next(iter(logits.values())).numpy(), axis=1)
        assert (predicted == data["y"]).mean() > 0.5  # 8 classes: chance is 0.125


def test_every_metric_line_matches_a_metric_definition_and_all_metrics_appear(opt_ml, capfd):
    assert train.main(["--epochs", "2"]) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("METRIC")]
    seen = set()
    for line in lines:
        matches = [d for d in job_contract.metric_definitions() if re.search(d["Regex"], line)]
        assert len(matches) == 1, f"{line!r} matched {len(matches)} definitions"
        value = float(re.search(matches[0]["Regex"], line).group(1))
        assert value == value  # not NaN
        seen.add(matches[0]["Name"])
    assert seen == set(job_contract.METRIC_NAMES)


def test_hyperparameters_in_the_string_forms_sagemaker_passes_are_accepted(opt_ml):
    assert train.main(["--epochs", "1.0", "--batch-size", '"32"', "--learning-rate", "1e-3"]) == 0


def test_a_bad_hyperparameter_value_writes_a_one_line_reason_and_exits_non_zero(opt_ml):
    assert train.main(["--epochs", "zero"]) == 1
    reason = failure_reason(opt_ml)
    assert reason.count("\n") == 1 and "epochs" in reason and "not a number" in reason


def test_an_out_of_range_learning_rate_is_a_failure_reason(opt_ml):
    assert train.main(["--learning-rate", "-0.5"]) == 1
    assert "learning-rate" in failure_reason(opt_ml) and "> 0" in failure_reason(opt_ml)


def test_an_unknown_hyperparameter_is_a_failure_reason_not_a_usage_dump(opt_ml):
    assert train.main(["--epoch", "3"]) == 1
    assert "unrecognized arguments: --epoch 3" in failure_reason(opt_ml)


def test_a_missing_training_channel_is_named_in_the_failure_reason(opt_ml, monkeypatch):
    monkeypatch.delenv("SM_CHANNEL_TRAINING")
    assert train.main(["--epochs", "1"]) == 1
    assert "channel 'training' is missing" in failure_reason(opt_ml)


def test_an_empty_training_channel_is_named_in_the_failure_reason(opt_ml):
    (opt_ml / "input" / "data" / "training" / "data.npz").unlink()
    assert train.main(["--epochs", "1"]) == 1
    assert "channel 'training' has no .npz files" in failure_reason(opt_ml)


def test_labels_outside_the_ten_classes_are_a_failure_reason(opt_ml):
    import numpy as np

    np.savez(
        opt_ml / "input" / "data" / "training" / "data.npz",
        x=np.zeros((4, 8, 8), "uint8"),
        y=np.array([0, 1, 2, 11], "uint8"),
    )
    assert train.main(["--epochs", "1"]) == 1
    assert "labels must be 0..9" in failure_reason(opt_ml)


def test_training_runs_without_a_test_channel(opt_ml, monkeypatch, capfd):
    monkeypatch.delenv("SM_CHANNEL_TEST")
    assert train.main(["--epochs", "1"]) == 0
    assert "METRIC test:accuracy" not in capfd.readouterr().out
