"""Train the MNIST classifier inside a SageMaker training container.

The SageMaker container contract, as the sagemaker-training toolkit sets it up:
- data comes from channels: SM_CHANNEL_TRAINING (required), SM_CHANNEL_TEST (optional),
  each a folder of .npz files holding `x` (images, uint8) and `y` (labels);
- hyperparameters arrive as `--name value` arguments (strings; see job_contract.py);
- the model goes to SM_MODEL_DIR/1/ (a TensorFlow SavedModel, servable as version 1);
- metrics are printed one per line in the format job_contract.py defines, which is what
  the launcher's metric definitions match;
- on any failure, a one-line reason goes to SM_OUTPUT_DIR/failure (SageMaker shows it as
  the job's FailureReason) and the process exits non-zero.
"""

import os

# Keras 2 API (tf-keras): Keras 3's fit() fails under MultiWorkerMirroredStrategy.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from job_contract import HYPERPARAMETERS, coerce_hyperparameter, format_metric  # noqa: E402

NUM_CLASSES = 10
FAILURE_REASON_LIMIT = 1000  # SageMaker keeps at most 1024 characters of FailureReason


class JobError(Exception):
    """A failure the user can fix; its message is the job's failure reason."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit 2: make it a reason
        raise JobError(f"bad hyperparameters: {message}")


def parse_hyperparameters(argv: list[str]) -> dict:
    parser = _ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    for name, (_kind, default, _lowest, help_text) in HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", default=default, help=help_text)
    args = parser.parse_args(argv)
    try:
        return {
            name: coerce_hyperparameter(name, getattr(args, name.replace("-", "_")))
            for name in HYPERPARAMETERS
        }
    except ValueError as error:
        raise JobError(str(error)) from None


def load_channel(name: str, required: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """All .npz files of one channel, concatenated; None for a missing optional one."""
    env_name = f"SM_CHANNEL_{name.upper()}"
    folder = os.environ.get(env_name)
    if not folder or not Path(folder).is_dir():
        if not required:
            return None
        raise JobError(
            f"channel '{name}' is missing ({env_name} is {folder!r}); "
            f"pass it to the job (make data, then make train-local)"
        )
    files = sorted(Path(folder).rglob("*.npz"))
    if not files:
        raise JobError(f"channel '{name}' has no .npz files in {folder}; run make data")
    xs, ys = [], []
    for file in files:
        try:
            with np.load(file) as arrays:
                xs.append(arrays["x"])
                ys.append(arrays["y"])
        except (KeyError, ValueError, OSError) as error:
            raise JobError(
                f"channel '{name}': {file.name} is not an npz with x and y ({error})"
            ) from None
    x, y = np.concatenate(xs), np.concatenate(ys).astype("int64")
    if len(x) == 0:
        raise JobError(f"channel '{name}' is empty: {len(files)} file(s), 0 examples")
    if len(x) != len(y):
        raise JobError(f"channel '{name}': {len(x)} images but {len(y)} labels")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise JobError(f"channel '{name}': labels must be 0..{NUM_CLASSES - 1}")
    return (x.astype("float32") / 255.0), y


def build_model(input_shape: tuple[int, ...], learning_rate: float):
    """The classifier of the original notebook: Flatten, Dense 128 relu, Dropout 0.2, Dense 10."""
    import tf_keras as keras

    model = keras.Sequential(
        [
            keras.layers.Flatten(input_shape=input_shape),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def metric_printer():
    """A Keras callback printing each epoch's metrics in the job_contract format."""
    import tf_keras as keras

    names = {
        "loss": "train:loss",
        "accuracy": "train:accuracy",
        "val_loss": "validation:loss",
        "val_accuracy": "validation:accuracy",
    }

    class PrintMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, name in names.items():
                if logs and key in logs:
                    print(format_metric(name, logs[key], epoch=epoch + 1), flush=True)

    return PrintMetrics()


def train(hp: dict) -> Path:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(hp["seed"])
    x_train, y_train = load_channel("training", required=True)
    test = load_channel("test", required=False)
    model = build_model(x_train.shape[1:], hp["learning-rate"])
    print(f"training on {len(x_train)} examples of shape {x_train.shape[1:]}", flush=True)
    model.fit(
        x_train,
        y_train,
        epochs=hp["epochs"],
        batch_size=hp["batch-size"],
        validation_data=test,
        callbacks=[metric_printer()],
        verbose=2,
    )
    if test is not None:
        loss, accuracy = model.evaluate(*test, batch_size=hp["batch-size"], verbose=0)
        print(format_metric("test:loss", loss), flush=True)
        print(format_metric("test:accuracy", accuracy), flush=True)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    export_dir = model_dir / "1"  # a version folder, as TensorFlow Serving expects
    model.save(str(export_dir))
    print(f"model saved to {export_dir}", flush=True)
    return export_dir


def write_failure(reason: str) -> None:
    """The one line SageMaker shows as FailureReason."""
    output_dir = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    line = " ".join(reason.split())[:FAILURE_REASON_LIMIT]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "failure").write_text(line + "\n")
    except OSError as error:
        print(f"could not write the failure file in {output_dir}: {error}", file=sys.stderr)
    print(f"FAILURE: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        train(parse_hyperparameters(sys.argv[1:] if argv is None else argv))
    except JobError as error:
        write_failure(str(error))
        return 1
    except Exception as error:  # anything unexpected: keep the traceback, report one line
        traceback.print_exc()
        write_failure(f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
