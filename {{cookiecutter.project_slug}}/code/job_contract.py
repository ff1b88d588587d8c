"""What train.py accepts and what it reports: yours to edit.

- HYPERPARAMETERS: every hyperparameter train.py takes, as name -> (type, default, lowest
  allowed value, help). train.py's train(hp) gets each one typed, as hp["name"]; a job
  launched with a name missing here, or a value out of range, is refused before it is paid
  for.
- METRIC_NAMES: every metric train.py may print, in the order it prints them. SageMaker
  charts exactly these. "train:<m>" and "validation:<m>" are printed each epoch for every
  metric <m> Keras reports (the loss and the metrics given to model.compile); the others,
  train.py prints itself.

Only declarations here, and no imports beyond the standard library: the launcher loads this
file on your machine, where TensorFlow need not be installed.
"""

# name -> (type, default, lowest allowed value, help); a float whose lowest is 0.0 must be > 0
HYPERPARAMETERS = {
    "epochs": (int, 5, 1, "passes over the training data"),
    "batch-size": (int, 64, 1, "examples per step (global, across all hosts)"),
    "learning-rate": (float, 0.001, 0.0, "Adam learning rate (must be > 0)"),
    "seed": (int, 42, 0, "random seed, for repeatable runs"),
}

METRIC_NAMES = (
    "train:loss",
    "train:accuracy",
    "validation:loss",
    "validation:accuracy",
    "test:loss",
    "test:accuracy",
)
