"""Plumbing: train.py's SageMaker side; need not be opened. Loaded by the launcher: no numpy/TF."""

import argparse
import dataclasses
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
SHUFFLE_BUFFER = 10_000  # examples: the memory of shuffling is bounded, whatever the data
PREFETCH = 4  # batches; AUTOTUNE grows its buffer to a share of the host's memory, not the job's
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


@dataclasses.dataclass
class Channel:
    """This host's .npz files of a channel, counted from their headers before training; read
    a file at a time as it trains (stream()): memory does not grow with the channel."""

    name: str
    files: list[Path]
    examples: int
    shape: tuple  # of one example
    dtype: str
    steps_of: int  # the examples that set the steps: the fewest any host reads

    def read(self, file: bytes):  # one file's (x, y), in numpy, while the model trains
        import numpy as np

        path = Path(file.decode())
        try:
            with np.load(path) as arrays:
                x, y = arrays["x"], arrays["y"].astype("int64")
        except Exception as error:  # BadZipFile, a CRC error, OSError: the file is corrupt
            raise JobError(f"channel '{self.name}': {path.name} cannot be read ({error})") from None
        return x, y


def read_header(channel: str, file: Path, check) -> tuple[tuple, str]:
    """(shape, dtype) of the file's x, from its header; its labels checked by check()."""
    import numpy as np

    try:
        with np.load(file) as arrays, arrays.zip.open("x.npy") as stream:
            major, _ = np.lib.format.read_magic(stream)  # the format's version: 1.0 or 2.0
            shape, _, dtype = getattr(np.lib.format, f"read_array_header_{major}_0")(stream)
            labels = arrays["y"]
    except Exception as error:  # KeyError, BadZipFile, ValueError, OSError
        raise JobError(f"{channel}: {file.name} is not an npz of x and y ({error})") from None
    try:
        if not shape or shape[0] != len(labels) or not len(labels):
            raise ValueError(f"{shape[:1]} examples and {len(labels)} labels: run make data")
        if check:
            check(labels)
    except ValueError as error:
        raise JobError(f"{channel}: {file.name}: {error}") from None
    return shape, str(dtype)


def open_channel(name: str, required: bool, hosts: int = 1, index: int = 0, check=None):
    """The Channel of this host's files: every hosts-th from index (tf.data's FILE sharding),
    or None for a missing optional channel. check(labels) raises ValueError for bad ones."""
    channel, variable = f"channel '{name}'", f"SM_CHANNEL_{name.upper()}"
    folder = os.getenv(variable)
    if folder and Path(f"{folder}_0").is_fifo():
        raise JobError(f"{channel} arrives as a Pipe stream: use INPUT_MODE=File or FastFile")
    if not folder or not Path(folder).is_dir():
        if not required:
            return None
        raise JobError(f"{channel} is missing ({variable} is {folder!r}): make data writes it")
    files = sorted(Path(folder).rglob("*.npz"))
    if not files:
        raise JobError(f"{channel} has no .npz files in {folder}; run make data")
    if len(files) < hosts:
        raise JobError(
            f"{channel} has {len(files)} file(s) for {hosts} hosts, and each host reads files of"
            f" its own: write at least {hosts} (make data SHARDS={hosts})"
        )
    headers = [read_header(channel, file, check) for file in files]
    if len(kinds := {(shape[1:], dtype) for shape, dtype in headers}) > 1:
        raise JobError(f"{channel}: its files hold examples of different kinds: {sorted(kinds)}")
    counts = [shape[0] for shape, _ in headers]
    steps_of = min(sum(counts[i::hosts]) for i in range(hosts))
    (shape, dtype), own = kinds.pop(), slice(index, None, hosts)
    return Channel(name, files[own], sum(counts[own]), shape, dtype, steps_of)


def stream(channel: Channel, batch_size: int, seed: int, shuffle: bool, own_share_of: int = 0):
    """(batched pipeline, steps per epoch): the channel's files read in parallel, a file at a
    time, shuffled in a bounded buffer. With own_share_of hosts, each batch is this host's
    share tiled: tf.distribute gives worker i slice i, so each host trains on its own data."""
    import tensorflow as tf

    def read(file):
        x, y = tf.numpy_function(channel.read, [file], (tf.as_dtype(channel.dtype), tf.int64))
        return tf.ensure_shape(x, (None, *channel.shape)), tf.reshape(y, [-1])

    files = tf.data.Dataset.from_tensor_slices([str(file) for file in channel.files])
    files = files.shuffle(len(channel.files), seed=seed) if shuffle else files  # anew each epoch
    # Two files read at once, in two threads, and their examples interleaved: memory holds a
    # few files, whatever the channel's size (bench/RESULTS.md measures it)
    arrays = files.map(read, num_parallel_calls=2, deterministic=not shuffle).prefetch(1)
    dataset = arrays.interleave(lambda *xy: tf.data.Dataset.from_tensor_slices(xy), cycle_length=2)
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed) if shuffle else dataset
    options = tf.data.Options()  # each host reads files of its own already: no more sharding
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    if own_share_of <= 1:
        steps = math.ceil(channel.examples / batch_size)  # known: each epoch starts anew
        dataset = dataset.batch(batch_size).apply(tf.data.experimental.assert_cardinality(steps))
        return dataset.prefetch(PREFETCH).with_options(options), steps
    share = batch_size // own_share_of
    if batch_size % own_share_of:
        raise JobError(f"batch-size {batch_size} must be a multiple of the {own_share_of} hosts")
    if channel.steps_of < share:  # a host's share of one step
        raise JobError(f"channel '{channel.name}': {channel.steps_of} examples a host, < {share}")
    dataset = dataset.repeat().batch(share, drop_remainder=True)  # all hosts take steps_of's
    dataset = dataset.map(lambda *batch: tuple(tf.concat([t] * own_share_of, 0) for t in batch))
    return dataset.prefetch(PREFETCH).with_options(options), channel.steps_of // share


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

    def channel(self, name: str, required: bool, check=None) -> Channel | None:
        """This host's files of the channel: ShardedByS3Key gave it its own, else it takes every
        n-th of them. check(labels) raises ValueError for labels the model cannot learn."""
        config = json.loads(os.getenv("SM_INPUT_DATA_CONFIG") or "{}").get(name, {})
        hosts = 1 if config.get("S3DistributionType") == "ShardedByS3Key" else self.plan["hosts"]
        worker = self.plan["tf_config"]["task"]["index"] if self.plan["tf_config"] else 0
        channel = open_channel(name, required, hosts, worker if hosts > 1 else 0, check)
        if channel and self.plan["hosts"] > 1:  # every worker says which files it reads
            names = ", ".join(file.name for file in channel.files[:5])
            print(f"worker {worker} reads channel '{name}' ({len(channel.files)} files): {names}")
        return channel

    def dataset(self, channel: Channel, batch_size: int, shuffle: bool):
        """(pipeline, steps per epoch) of this host's files, for every host alike."""
        return stream(channel, batch_size, self.seed, shuffle, own_share_of=self.plan["hosts"])

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
        reason, exit_code = f"{type(error).__name__}: {error}", 1
        if raised := re.search(r"\bJobError: (.+)", reason):  # in tf.data, as the data streamed
            reason = raised[1]
        else:
            traceback.print_exc()
    reason = " ".join(reason.split())[:1000]  # one line: SageMaker keeps 1024 characters
    failure = Path(os.getenv("SM_OUTPUT_DIR", "/opt/ml/output"), "failure")
    try:  # the job's FailureReason
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason + "\n")
    except OSError as error:
        print(f"could not write {failure}: {error}", file=sys.stderr)
    print(f"FAILURE: {reason}", file=sys.stderr)
    return exit_code
