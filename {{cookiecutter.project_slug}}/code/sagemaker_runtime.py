"""Plumbing: train.py's SageMaker side; need not be opened. Loaded by the launcher: no numpy/TF."""

import argparse
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from job_contract import HYPERPARAMETERS, METRIC_NAMES

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2: Keras 3's fit() fails multi-worker
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"  # a float as Python prints it, not nan


class JobError(ValueError):
    exit_code = 1  # a failure the user can fix; its message is the job's failure reason


class Interrupted(JobError):
    exit_code = 143  # 128 + SIGTERM, as if killed by it; the checkpoint has the last epoch


def coerce_hyperparameter(name: str, raw) -> int | float:  # from 3, "3", "3.0", '"3"', "1e-3"
    if name not in HYPERPARAMETERS:
        raise JobError(f"unknown hyperparameter {name!r}; known: {', '.join(HYPERPARAMETERS)}")
    kind, _default, lowest, _help = HYPERPARAMETERS[name]
    given = f"hyperparameter {name}={raw!r}"
    try:
        number = float(str(raw).strip().strip("\"'"))
    except ValueError:
        raise JobError(f"{given} is not a number; give a {kind.__name__}") from None
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise JobError(f"{given} is not a {'whole' if math.isfinite(number) else 'finite'} number")
    above = kind is float and lowest == 0.0  # a float whose lowest is 0.0 must be > 0
    if number < lowest or (above and number == 0.0):
        raise JobError(f"{given} is out of range; it must be {'>' if above else '>='} {lowest}")
    return kind(number)


def parse_hyperparameters(argv: list[str] | None) -> dict:  # None: sys.argv[1:]
    def error(message):  # not argparse's usage and exit 2, but a failure reason
        raise JobError(f"bad hyperparameters: {message}")

    parser = argparse.ArgumentParser(description="Train the model.", allow_abbrev=False)
    parser.error = error
    for name, (_kind, default, _lowest, help_text) in HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", dest=name, default=default, help=help_text)
    parser.add_argument("--_tuning_objective_metric", help=argparse.SUPPRESS)  # a tuning trial's
    hyperparameters = vars(parser.parse_args(argv))
    del hyperparameters["_tuning_objective_metric"]  # SageMaker's own, not train.py's
    return {n: coerce_hyperparameter(n, v) for n, v in hyperparameters.items()}


def format_metric(name: str, value: float, epoch: int | None = None) -> str:
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; add it to METRIC_NAMES in job_contract.py")
    return f"METRIC {name}={float(value):.6g}" + ("" if epoch is None else f" epoch={epoch}")


def metric_definitions() -> list[dict[str, str]]:
    return [{"Name": n, "Regex": rf"METRIC {re.escape(n)}=({NUMBER})"} for n in METRIC_NAMES]


def parse_metric_line(line: str) -> tuple[str, float, int | None] | None:
    names = "|".join(map(re.escape, METRIC_NAMES))
    match = re.search(rf"METRIC ({names})=({NUMBER})(?: epoch=(\d+))?", line)
    return (match[1], float(match[2]), int(match[3]) if match[3] else None) if match else None


def load_channel(name: str, required: bool):  # (x, y) of all its .npz files, or (None, None)
    import numpy as np

    channel, variable = f"channel '{name}'", f"SM_CHANNEL_{name.upper()}"
    folder = os.getenv(variable)
    if folder and Path(f"{folder}_0").is_fifo():
        raise JobError(f"{channel} arrives as a Pipe stream: use INPUT_MODE=File or FastFile")
    if not folder or not Path(folder).is_dir():
        if not required:
            return None, None
        raise JobError(f"{channel} is missing ({variable} is {folder!r}); pass it to the job")
    files = sorted(Path(folder).rglob("*.npz"))
    if not files:
        raise JobError(f"{channel} has no .npz files in {folder}; run make data")
    pairs = []
    for file in files:
        try:
            with np.load(file) as arrays:
                pairs.append((arrays["x"], arrays["y"]))
        except Exception as error:  # KeyError, BadZipFile, ValueError, OSError
            raise JobError(f"{channel}: {file.name} is not an npz of x and y ({error})") from None
    x, y = (np.concatenate(arrays) for arrays in zip(*pairs, strict=True))
    if len(x) == 0 or len(x) != len(y):
        raise JobError(f"{channel} has {len(x)} examples and {len(y)} labels: run make data")
    return x, y


def as_dataset(x, y, batch_size: int, seed: int, shuffle: bool, own_shard_of: int = 0):
    """(batched pipeline, steps per pass or None), of all the data or of this host's own shard."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(x), seed=seed) if shuffle else dataset  # a new order each epoch
    options, policy = tf.data.Options(), tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.DATA
    if own_shard_of <= 1:
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options), None
    share = batch_size // own_shard_of  # each batch is our share tiled: worker i takes slice i
    options.experimental_distribute.auto_shard_policy = policy.OFF
    if batch_size % own_shard_of:
        raise JobError(f"batch-size {batch_size} must be a multiple of the {own_shard_of} hosts")
    if len(x) < share:  # every host must take as many steps: equal shards (make data SHARDS=N)
        raise JobError(f"this host's shard has {len(x)} examples, fewer than one step ({share})")
    dataset = dataset.repeat().batch(share, drop_remainder=True)
    dataset = dataset.map(lambda *batch: tuple(tf.concat([t] * own_shard_of, 0) for t in batch))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options), len(x) // share


def sagemaker_cluster() -> tuple[list[str], str, int]:  # (hosts, this host, its GPUs)
    file = Path(os.getenv("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"), "resourceconfig.json")
    resource = json.loads(file.read_text()) if file.is_file() else {}
    hosts = json.loads(os.getenv("SM_HOSTS") or "[]") or resource.get("hosts") or ["localhost"]
    current = os.getenv("SM_CURRENT_HOST") or resource.get("current_host") or "localhost"
    return sorted(hosts), current, int(os.getenv("SM_NUM_GPUS") or 0)


def distribution_plan(hosts: list[str], current_host: str, num_gpus: int) -> dict:
    strategy = "multi-worker" if len(hosts) > 1 else "mirrored" if num_gpus > 1 else "default"
    if len(hosts) == 1:
        return dict(strategy=strategy, is_chief=True, hosts=1, tf_config=None)
    if current_host not in hosts:
        raise JobError(f"this host {current_host!r} is not among the job's hosts {hosts}")
    index, workers = hosts.index(current_host), [f"{host}:2222" for host in hosts]  # any free port
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    return dict(strategy=strategy, is_chief=index == 0, hosts=len(hosts), tf_config=tf_config)


class Cluster:  # the strategy to build the model under; the chief prints and saves alone
    def __init__(self, plan: dict, strategy, seed: int):
        self.plan, self.strategy, self.seed, self.is_chief = plan, strategy, seed, plan["is_chief"]
        self.say = print if self.is_chief else lambda *_: None

    def dataset(self, channel: str, x, y, batch_size: int, shuffle: bool):
        config = json.loads(os.getenv("SM_INPUT_DATA_CONFIG") or "{}").get(channel, {})
        hosts = self.plan["hosts"] if config.get("S3DistributionType") == "ShardedByS3Key" else 1
        return as_dataset(x, y, batch_size, self.seed, shuffle, own_shard_of=hosts)

    def hold_out(self, x, y, share: float):
        """((x, y) kept, (x, y) held out): a seeded random share of the examples, for validation."""
        import numpy as np

        if len(x) < 2:
            raise JobError(f"{len(x)} training example(s): too few to hold out a validation share")
        order = np.random.default_rng(self.seed).permutation(len(x))
        held, kept = np.split(order, [max(1, round(len(x) * share))])
        self.say(
            f"no validation channel: validating on {len(held)} of the {len(x)} training examples,"
            f" held out at random ({share:.0%}, seed {self.seed}); make data writes data/validation"
        )
        return (x[kept], y[kept]), (x[held], y[held])

    def callbacks(self) -> list:  # resume from the backup made each epoch; stop on SIGTERM
        import tf_keras as keras

        checkpoints, say = Path(os.getenv("CHECKPOINT_DIR", "/opt/ml/checkpoints")), self.say
        if os.getenv("CHECKPOINT_PER_JOB"):  # tuning: the trials share one S3 prefix, not a backup
            checkpoints /= os.getenv("TRAINING_JOB_NAME", "job")

        class Job(keras.callbacks.Callback):
            started, stopping = None, False

            def on_train_batch_end(self, batch, logs=None):
                if Job.stopping:  # set by SIGTERM: the backup holds the last completed epoch
                    raise Interrupted("interrupted by SIGTERM; a restart resumes from the backup")

            def on_epoch_begin(self, epoch, logs=None):
                if self.started is None and epoch > 0:
                    say(f"resumed from the checkpoint: starting at epoch {epoch + 1}")
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds, steps = time.perf_counter() - self.started, self.params["steps"] or 0
                rate = steps / max(seconds, 1e-9)
                say(f"epoch {epoch + 1}: {steps} steps in {seconds:.3f} s ({rate:.1f} steps/s)")
                for name in METRIC_NAMES:  # Keras logs train:m as m, validation:m as val_m
                    if (key := name.replace("validation:", "val_").removeprefix("train:")) in logs:
                        say(format_metric(name, logs[key], epoch=epoch + 1))

        signal.signal(signal.SIGTERM, lambda signum, frame: setattr(Job, "stopping", True))
        return [keras.callbacks.BackupAndRestore(str(checkpoints / "backup")), Job()]

    def print_metric(self, name: str, value: float) -> None:
        self.say(format_metric(name, value))

    def save_model(self, model) -> None:  # every worker saves: a collective operation
        export_dir = Path(os.getenv("SM_MODEL_DIR", "/opt/ml/model"), "1")  # for TF Serving
        with tempfile.TemporaryDirectory() as scratch:
            model.save(str(export_dir) if self.is_chief else scratch)
        self.say(f"model saved to {export_dir}")


def join_cluster(seed: int) -> Cluster:  # before other TensorFlow work: the strategy comes first
    import tensorflow as tf

    plan, strategy = distribution_plan(*sagemaker_cluster()), tf.distribute.get_strategy()
    if plan["tf_config"]:
        os.environ["TF_CONFIG"] = json.dumps(plan["tf_config"])
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task, workers = plan["tf_config"]["task"], plan["tf_config"]["cluster"]["worker"]
        cluster = f"worker {task['index']} of {len(workers)} ({', '.join(workers)})"
        print(f"cluster: {cluster}, {strategy.num_replicas_in_sync} replicas")
    elif plan["strategy"] == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        print(f"one host, {strategy.num_replicas_in_sync} GPUs (MirroredStrategy)")
    tf.keras.utils.set_random_seed(seed)
    return Cluster(plan, strategy, seed)


def run(train, argv: list[str] | None = None) -> int:  # as SageMaker runs a training program
    started = time.perf_counter()
    try:
        train(parse_hyperparameters(argv))
        print(f"trained in {time.perf_counter() - started:.2f} s (data, fit, evaluation, saving)")
        return 0
    except JobError as error:
        reason, exit_code = str(error), error.exit_code
    except Exception as error:  # anything unexpected: keep the traceback, report one line
        traceback.print_exc()
        reason, exit_code = f"{type(error).__name__}: {error}", 1
    reason = " ".join(reason.split())[:1000]  # one line: SageMaker keeps 1024 characters
    failure = Path(os.getenv("SM_OUTPUT_DIR", "/opt/ml/output"), "failure")
    try:  # the job's FailureReason
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason + "\n")
    except OSError as error:
        print(f"could not write {failure}: {error}", file=sys.stderr)
    print(f"FAILURE: {reason}", file=sys.stderr)
    return exit_code
