"""Run in the project's image by bench/streaming.py: steps/s of train.build_model on a channel
streamed by the runtime against the same arrays in memory, an epoch of each in turn, and the
streamed pipeline iterated alone. Usage: python stream_throughput.py CHANNEL_DIR ROUNDS"""

import os
import sys
import time

sys.path.insert(0, "/opt/ml/code")  # the image's code: the runtime and train.py
import numpy as np  # noqa: E402
import sagemaker_runtime as runtime  # noqa: E402
import tensorflow as tf  # noqa: E402
import train  # noqa: E402

BATCH, SEED = runtime.parse_hyperparameters([])["batch-size"], 42


def in_memory(channel):
    """The runtime's pipeline before streaming: every file read and joined, then sliced."""
    x = np.concatenate([np.load(file)["x"] for file in channel.files])
    y = np.concatenate([np.load(file)["y"] for file in channel.files]).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=SEED)
    return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def epoch(model, dataset, steps) -> float:
    """Steps/s of one epoch of fit."""
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps / (time.perf_counter() - started)


def main(folder: str, rounds: int) -> None:
    os.environ["SM_CHANNEL_TRAINING"] = folder
    tf.keras.utils.set_random_seed(SEED)
    channel = runtime.open_channel("training", True, check=train.check_labels)
    streamed, steps = runtime.stream(channel, BATCH, SEED, shuffle=True)
    pipelines = {"streamed": streamed, "in-memory": in_memory(channel)}
    models = {name: train.build_model(channel.shape, 1e-3) for name in pipelines}
    print(f"BENCH steps {steps} batch {BATCH}", flush=True)
    for name in pipelines:  # the first epoch traces the model: not counted
        epoch(models[name], pipelines[name], steps)
    for _ in range(rounds):
        for name, dataset in pipelines.items():
            print(f"BENCH {name} {epoch(models[name], dataset, steps):.1f} steps/s", flush=True)
        started, batches = time.perf_counter(), sum(1 for _ in streamed)
        print(f"BENCH pipeline {batches / (time.perf_counter() - started):.1f} steps/s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
