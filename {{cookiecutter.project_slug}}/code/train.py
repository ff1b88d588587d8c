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

Scaling out: with several hosts (SM_HOSTS) the hosts train ONE model together under
MultiWorkerMirroredStrategy; with several GPUs on a host, MirroredStrategy uses them all.
`batch-size` is the global batch, split across all replicas, so the learning rate and the
result match a single-host run. Only the chief (the first host) saves the model.

Surviving interruptions: the training state is backed up at the end of every epoch to
CHECKPOINT_DIR (default /opt/ml/checkpoints, which SageMaker syncs with S3 for spot jobs)
and restored on the next start. On SIGTERM (a spot interruption, docker stop) training
stops after the current step and exits, so at most one epoch of work is lost.
"""

import os

# Keras 2 API (tf-keras): Keras 3's fit() fails under MultiWorkerMirroredStrategy.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from job_contract import HYPERPARAMETERS, coerce_hyperparameter, format_metric  # noqa: E402

NUM_CLASSES = 10
FAILURE_REASON_LIMIT = 1000  # SageMaker keeps at most 1024 characters of FailureReason
WORKER_PORT = 2222  # for the multi-worker cluster; any free port inside the job's network


class JobError(Exception):
    """A failure the user can fix; its message is the job's failure reason."""


class Interrupted(Exception):
    """SIGTERM arrived; the last completed epoch is in the checkpoint."""


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
    if folder and Path(f"{folder}_0").is_fifo():
        raise JobError(
            f"channel '{name}' arrives in Pipe mode (a stream), but train.py reads "
            "files: use INPUT_MODE=File or FastFile"
        )
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


def sagemaker_cluster() -> tuple[list[str], str, int]:
    """(hosts, this host, GPUs on this host), as SageMaker describes them: the SM_* variables
    the toolkit sets, else resourceconfig.json; a lone 'localhost' outside SageMaker."""
    hosts = json.loads(os.environ.get("SM_HOSTS") or "[]")
    current = os.environ.get("SM_CURRENT_HOST", "")
    config_file = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    if not hosts and (config_file / "resourceconfig.json").is_file():
        resource = json.loads((config_file / "resourceconfig.json").read_text())
        hosts, current = resource.get("hosts", []), resource.get("current_host", "")
    if not hosts:
        hosts, current = ["localhost"], "localhost"
    return sorted(hosts), current, int(os.environ.get("SM_NUM_GPUS") or 0)


def distribution_plan(hosts: list[str], current_host: str, num_gpus: int) -> dict:
    """Which tf.distribute strategy fits the hosts and GPUs, this host's role, and the
    TF_CONFIG that forms the cluster (None for one host)."""
    if len(hosts) > 1:
        if current_host not in hosts:
            raise JobError(f"this host {current_host!r} is not among the job's hosts {hosts}")
        index = hosts.index(current_host)
        tf_config = {
            "cluster": {"worker": [f"{host}:{WORKER_PORT}" for host in hosts]},
            "task": {"type": "worker", "index": index},
        }
        return {
            "strategy": "multi-worker",
            "is_chief": index == 0,
            "worker_index": index,
            "tf_config": tf_config,
        }
    strategy = "mirrored" if num_gpus > 1 else "default"
    return {"strategy": strategy, "is_chief": True, "worker_index": 0, "tf_config": None}


def plan_hosts(plan: dict) -> list[str]:
    return plan["tf_config"]["cluster"]["worker"] if plan["tf_config"] else ["localhost"]


def make_strategy(plan: dict):
    import tensorflow as tf

    if plan["tf_config"]:
        os.environ["TF_CONFIG"] = json.dumps(plan["tf_config"])
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        workers = plan["tf_config"]["cluster"]["worker"]
        print(
            f"cluster: worker {plan['worker_index']} of {len(workers)} "
            f"({', '.join(workers)}), {strategy.num_replicas_in_sync} replicas",
            flush=True,
        )
        return strategy
    if plan["strategy"] == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        print(f"one host, {strategy.num_replicas_in_sync} GPUs (MirroredStrategy)", flush=True)
        return strategy
    return tf.distribute.get_strategy()


def data_is_sharded_by_host(channel: str) -> bool:
    """ShardedByS3Key gives each host its own files; FullyReplicated gives each all of them."""
    config = json.loads(os.environ.get("SM_INPUT_DATA_CONFIG") or "{}").get(channel, {})
    return config.get("S3DistributionType") == "ShardedByS3Key"


def as_dataset(x, y, batch_size: int, seed: int, shuffle: bool, own_shard_of: int = 0):
    """(batched tf.data pipeline, steps per pass or None).

    Data every host has in full (FullyReplicated): tf.distribute splits each global batch
    between the workers (AutoShardPolicy.DATA). Data SageMaker already split between the
    hosts (ShardedByS3Key, own_shard_of = the number of hosts): tf.distribute still hands
    worker i the i-th slice of every global batch, so each batch is this worker's share
    repeated once per worker; the slice it keeps is then its own examples. Every worker
    must take the same number of steps: shards of equal size (make data SHARDS=N).
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    if own_shard_of > 1:
        if batch_size % own_shard_of:
            raise JobError(
                f"batch-size {batch_size} must be a multiple of the {own_shard_of} "
                "hosts when each host has its own shard of the data"
            )
        share = batch_size // own_shard_of
        if len(x) < share:
            raise JobError(
                f"this host's shard has {len(x)} examples, fewer than one step "
                f"({share}); use fewer shards or a smaller batch-size"
            )

        def tile(images, labels):
            return (
                tf.tile(images, [own_shard_of] + [1] * (len(images.shape) - 1)),
                tf.tile(labels, [own_shard_of]),
            )

        dataset = dataset.repeat().batch(share, drop_remainder=True).map(tile)
        options.experimental_distribute.auto_shard_policy = policy.OFF
        steps = len(x) // share
    else:
        dataset = dataset.batch(batch_size)
        options.experimental_distribute.auto_shard_policy = policy.DATA
        steps = None
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options), steps


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


def metric_printer(checkpoint_dir: Path):
    """A Keras callback printing each epoch's metrics in the job_contract format, and
    saying where training resumed when a checkpoint was restored."""
    import tf_keras as keras

    names = {
        "loss": "train:loss",
        "accuracy": "train:accuracy",
        "val_loss": "validation:loss",
        "val_accuracy": "validation:accuracy",
    }

    class PrintMetrics(keras.callbacks.Callback):
        first_epoch = None
        started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()
            if self.first_epoch is None:
                self.first_epoch = epoch
                if epoch > 0:
                    print(
                        f"resumed from the checkpoint in {checkpoint_dir}: "
                        f"epochs 1-{epoch} were done, starting at epoch {epoch + 1}",
                        flush=True,
                    )

        def on_epoch_end(self, epoch, logs=None):
            seconds, steps = time.perf_counter() - self.started, self.params.get("steps") or 0
            print(
                f"epoch {epoch + 1}: {steps} steps in {seconds:.3f} s "
                f"({steps / max(seconds, 1e-9):.1f} steps/s)",
                flush=True,
            )
            for key, name in names.items():
                if logs and key in logs:
                    print(format_metric(name, logs[key], epoch=epoch + 1), flush=True)

    return PrintMetrics()


def stop_on_sigterm():
    """A Keras callback that, once SIGTERM arrives, stops after the current step."""
    import tf_keras as keras

    class StopOnSigterm(keras.callbacks.Callback):
        requested = False

        def __init__(self):
            super().__init__()
            signal.signal(signal.SIGTERM, self._request)

        def _request(self, signum, frame):
            StopOnSigterm.requested = True
            print("SIGTERM received: stopping after the current step", flush=True)

        def on_train_batch_end(self, batch, logs=None):
            if self.requested:
                raise Interrupted(
                    "interrupted by SIGTERM; the last completed epoch is in the "
                    "checkpoint, where the next start of this job resumes"
                )

    return StopOnSigterm()


def train(hp: dict) -> Path | None:
    import tensorflow as tf
    import tf_keras as keras

    plan = distribution_plan(*sagemaker_cluster())
    strategy = make_strategy(plan)  # before any other TensorFlow work
    tf.keras.utils.set_random_seed(hp["seed"])
    x_train, y_train = load_channel("training", required=True)
    test = load_channel("test", required=False)
    print(f"training on {len(x_train)} examples of shape {x_train.shape[1:]}", flush=True)
    batch, seed, hosts = hp["batch-size"], hp["seed"], len(plan_hosts(plan))
    training, steps = as_dataset(
        x_train,
        y_train,
        batch,
        seed,
        shuffle=True,
        own_shard_of=hosts if data_is_sharded_by_host("training") else 0,
    )
    validation, validation_steps = None, None
    if test is not None:
        validation, validation_steps = as_dataset(
            *test,
            batch,
            seed,
            shuffle=False,
            own_shard_of=hosts if data_is_sharded_by_host("test") else 0,
        )
    with strategy.scope():
        model = build_model(x_train.shape[1:], hp["learning-rate"])
    checkpoint_dir = Path(os.environ.get("CHECKPOINT_DIR", "/opt/ml/checkpoints"))
    callbacks = [
        keras.callbacks.BackupAndRestore(str(checkpoint_dir / "backup")),
        stop_on_sigterm(),
    ]
    if plan["is_chief"]:
        callbacks.append(metric_printer(checkpoint_dir))
    model.fit(
        training,
        epochs=hp["epochs"],
        steps_per_epoch=steps,
        validation_data=validation,
        validation_steps=validation_steps,
        callbacks=callbacks,
        verbose=2 if plan["is_chief"] else 0,
    )
    if test is not None:
        loss, accuracy = model.evaluate(validation, steps=validation_steps, verbose=0)
        if plan["is_chief"]:
            print(format_metric("test:loss", loss), flush=True)
            print(format_metric("test:accuracy", accuracy), flush=True)
    return save_model(model, plan["is_chief"])


def save_model(model, is_chief: bool) -> Path | None:
    """Every worker must take part in saving (it is a collective operation); only the
    chief's copy goes to SM_MODEL_DIR, so the job has exactly one model."""
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    if not is_chief:
        with tempfile.TemporaryDirectory() as scratch:
            model.save(scratch)
        return None
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
    except Interrupted as error:
        write_failure(str(error))
        return 143  # 128 + SIGTERM, as a process killed by it would
    except Exception as error:  # anything unexpected: keep the traceback, report one line
        traceback.print_exc()
        write_failure(f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
