"""Train the MNIST classifier: the model, the data it learns from, and the fit. Yours to edit.

What to change where:
- the model: build_model, its layers, loss, optimizer and metrics;
- the data: read_channel (a channel's .npz arrays -> inputs and labels) and the channels
  train() reads: "training" (required), "validation" (scored each epoch: what tuning chooses
  on; without it, a share of training is held out) and "test" (scored once, at the end);
- the hyperparameters (train(hp) gets them typed) and the metric names: job_contract.py.

The SageMaker plumbing (arguments, channels, hosts and GPUs, checkpoints, SIGTERM, where the
model goes, failure reasons) is in sagemaker_runtime.py: you need not open it. To fail the
job with a reason of yours, raise sagemaker_runtime.JobError("what is wrong, how to fix it").
"""

import sys

import sagemaker_runtime
import tf_keras as keras

NUM_CLASSES = 10  # the labels are the digits 0..9


def build_model(input_shape: tuple[int, ...], learning_rate: float):
    """The classifier of the original notebook: Flatten, Dense 128 relu, Dropout 0.2, Dense 10.
    Its first layer scales the pixels to 0..1: being part of the saved model, the scaling
    serves too, and clients send the images as they are (0..255)."""
    model = keras.Sequential(
        [
            keras.layers.Rescaling(1 / 255, input_shape=input_shape),
            keras.layers.Flatten(),
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


def read_channel(name: str, required: bool):
    """(images, labels) from one channel, as stored; None for a missing optional one."""
    x, y = sagemaker_runtime.load_channel(name, required)
    if x is None:
        return None
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise sagemaker_runtime.JobError(f"channel '{name}': labels must be 0..{NUM_CLASSES - 1}")
    return x.astype("float32"), y.astype("int64")


def train(hp: dict) -> None:
    """Fit the model to the training channel, validate each epoch, score it on test, save it."""
    cluster = sagemaker_runtime.join_cluster(seed=hp["seed"])  # before other TensorFlow work
    x_train, y_train = read_channel("training", required=True)
    held_out = read_channel("validation", required=False)
    if held_out is None:  # no validation channel: hold out a seeded tenth of training instead
        (x_train, y_train), held_out = cluster.hold_out(x_train, y_train, share=0.1)
    test = read_channel("test", required=False)  # the final score: never chosen on
    print(f"training on {len(x_train)} examples of shape {x_train.shape[1:]}")
    batch_size = hp["batch-size"]
    training, steps = cluster.dataset("training", x_train, y_train, batch_size, shuffle=True)
    validation, validation_steps = cluster.dataset("validation", *held_out, batch_size, False)
    with cluster.strategy.scope():
        model = build_model(x_train.shape[1:], hp["learning-rate"])
    model.fit(
        training,
        epochs=hp["epochs"],
        steps_per_epoch=steps,
        validation_data=validation,
        validation_steps=validation_steps,
        callbacks=cluster.callbacks(),
        verbose=0,  # sagemaker_runtime prints each epoch, its metrics as METRIC lines
    )
    if test is not None:
        testing, test_steps = cluster.dataset("test", *test, batch_size, shuffle=False)
        loss, accuracy = model.evaluate(testing, steps=test_steps, verbose=0)
        cluster.print_metric("test:loss", loss)
        cluster.print_metric("test:accuracy", accuracy)
    cluster.save_model(model)


if __name__ == "__main__":
    sys.exit(sagemaker_runtime.run(train))
