"""Train the MNIST classifier: the model, the data it learns from, and the fit. Yours to edit.

What to change where:
- the model: build_model, its layers, loss, optimizer and metrics;
- the data: the channels train() reads, streamed from their .npz files (x: the inputs, y: the
  labels) a file at a time, and check_labels. "training" is required; "validation" too: it is
  scored each epoch, and what tuning chooses on; "test" is scored once, at the end;
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


def check_labels(labels) -> None:
    """Read before training, a file at a time: a bad label fails the job naming its file."""
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"labels must be 0..{NUM_CLASSES - 1}")


def train(hp: dict) -> None:
    """Fit the model to the training channel, validate each epoch, score it on test, save it."""
    cluster = sagemaker_runtime.join_cluster(seed=hp["seed"])  # before other TensorFlow work
    training = cluster.channel("training", required=True, check=check_labels)
    validation = cluster.channel("validation", required=True, check=check_labels)  # to choose on
    test = cluster.channel("test", required=False, check=check_labels)  # never chosen on
    print(f"training on {training.examples} examples of shape {training.shape}")
    batch_size = hp["batch-size"]
    train_data, steps = cluster.dataset(training, batch_size, shuffle=True)
    validation_data, validation_steps = cluster.dataset(validation, batch_size, shuffle=False)
    with cluster.strategy.scope():
        model = build_model(training.shape, hp["learning-rate"])
    model.fit(
        train_data,
        epochs=hp["epochs"],
        steps_per_epoch=steps,
        validation_data=validation_data,
        validation_steps=validation_steps,
        callbacks=cluster.callbacks(),
        verbose=0,  # sagemaker_runtime prints each epoch, its metrics as METRIC lines
    )
    if test is not None:
        test_data, test_steps = cluster.dataset(test, batch_size, shuffle=False)
        loss, accuracy = model.evaluate(test_data, steps=test_steps, verbose=0)
        cluster.print_metric("test:loss", loss)
        cluster.print_metric("test:accuracy", accuracy)
    cluster.save_model(model)


if __name__ == "__main__":
    sys.exit(sagemaker_runtime.run(train))
