"""What train.py accepts and what it reports: yours to edit.

- HYPERPARAMETERS: each hyperparameter train.py takes, typed in train(hp) as hp["name"]; a
  job given a name missing here, or a value out of range, is refused before it is paid for.
- SEARCH_SPACE: the range tuning searches for each hyperparameter it varies (make tune-local,
  make tune); the others keep their defaults or HPARAMS. OBJECTIVE: the metric tuning optimizes.
- METRIC_NAMES: every metric train.py may print, in order; SageMaker charts exactly these.
  Keras' own ("train:<m>", "validation:<m>": the loss and model.compile's metrics) are
  printed each epoch; train.py prints the others itself.

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

# name -> ("linear" or "log", lowest, highest), a range of the hyperparameter's own type (an int
# is searched over whole numbers), or a list of the values to try; checked against HYPERPARAMETERS
SEARCH_SPACE = {
    "learning-rate": ("log", 1e-4, 1e-1),
    "batch-size": [32, 64, 128],
}

# (a validation metric of METRIC_NAMES, "maximize" or "minimize"): never test:*, the final score
OBJECTIVE = ("validation:accuracy", "maximize")
