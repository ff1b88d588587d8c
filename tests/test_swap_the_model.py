"""Changing the model of a generated project means editing one function: build_model in
code/train.py. Swapped for another architecture, the project trains and saves that one."""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter
from helpers import TEMPLATE_DIR

EPOCH_METRICS = ["train:loss", "train:accuracy", "validation:loss", "validation:accuracy"]

# The new body of build_model(input_shape, learning_rate): a small convolutional net.
CONV_NET = '''\
    """A small convolutional net: Reshape, Conv2D 4 3x3, Flatten, Dense 32, Dense 10."""
    import tf_keras as keras

    model = keras.Sequential(
        [
            keras.layers.Reshape((*input_shape, 1), input_shape=input_shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
'''

# The saved model's layers as (class, units or filters), read back in a fresh process.
READ_LAYERS = """
import json, sys
import tf_keras
model = tf_keras.models.load_model(sys.argv[1])
print(json.dumps([
    [type(layer).__name__, layer.get_config().get("units") or layer.get_config().get("filters")]
    for layer in model.layers
]))
"""


def replace_function_body(source: str, function: str, body: str) -> str:
    """The source with one top-level function's body (docstring included) replaced."""
    [node] = [n for n in ast.parse(source).body if getattr(n, "name", None) == function]
    lines = source.splitlines(keepends=True)
    return "".join(lines[: node.body[0].lineno - 1]) + body + "".join(lines[node.end_lineno :])


def load_project_conftest(project: Path, monkeypatch):
    """The project's tests/conftest.py (for write_npz). It sets TF_* variables on import:
    set through monkeypatch first, they are undone after the test."""
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = importlib.util.spec_from_file_location("project_conftest", project / "tests/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def opt_ml_environment(root: Path, write_npz) -> dict[str, str]:
    """A tiny /opt/ml tree and the SM_* variables the training toolkit would set for it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SM_")}
    for channel, count, seed in [("training", 256, 1), ("validation", 64, 3), ("test", 64, 2)]:
        write_npz(root / "input/data" / channel, count, seed=seed)
        env[f"SM_CHANNEL_{channel.upper()}"] = str(root / "input/data" / channel)
    env.update(
        SM_MODEL_DIR=str(root / "model"),
        SM_OUTPUT_DIR=str(root / "output"),
        SM_INPUT_CONFIG_DIR=str(root / "input/config"),
        CHECKPOINT_DIR=str(root / "checkpoints"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def baked(output_dir: Path) -> Path:
    """A project baked with the defaults (no AWS checks)."""
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={"aws_checks": "skip"},
        )
    )


def trains_two_epochs_printing_every_metric(train_py: Path, *arguments: str, env: dict) -> None:
    """train.py run as SageMaker runs it, for two epochs: it exits 0, and prints each epoch's
    metrics, then the test channel's."""
    done = subprocess.run(
        [sys.executable, str(train_py), "--epochs", "2", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = re.findall(r"^METRIC (\S+)=\S+(?: epoch=(\d))?$", done.stdout, re.M)
    assert printed == [
        *[(name, epoch) for epoch in "12" for name in EPOCH_METRICS],
        ("test:loss", ""),
        ("test:accuracy", ""),
    ]


def test_a_model_swapped_in_build_model_alone_is_trained_and_saved(tmp_path, monkeypatch):
    project = baked(tmp_path / "bake")
    train_py = project / "code/train.py"
    train_py.write_text(replace_function_body(train_py.read_text(), "build_model", CONV_NET))
    root = tmp_path / "opt/ml"
    env = opt_ml_environment(root, load_project_conftest(project, monkeypatch).write_npz)

    trains_two_epochs_printing_every_metric(train_py, env=env)

    assert (root / "model/1/saved_model.pb").is_file()
    layers = subprocess.run(
        [sys.executable, "-c", READ_LAYERS, str(root / "model/1")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(layers.stdout) == [
        ["Reshape", None],
        ["Conv2D", 4],
        ["Flatten", None],
        ["Dense", 32],
        ["Dense", 10],
    ]
