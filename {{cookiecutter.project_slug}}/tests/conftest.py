"""Fixtures: an /opt/ml-shaped tree in a temporary folder, as SageMaker lays it out."""

import os
from pathlib import Path

import numpy as np
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_npz(folder: Path, count: int, seed: int = 0) -> None:
    """A tiny, learnable set: 8x8 images whose label is the bright row."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 8, size=count).astype("uint8")
    x = rng.integers(0, 40, size=(count, 8, 8)).astype("uint8")
    x[np.arange(count), y, :] = 255
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "data.npz", x=x, y=y)


@pytest.fixture
def opt_ml(tmp_path, monkeypatch):
    """/opt/ml in a temporary folder, with SM_* variables pointing into it."""
    root = tmp_path / "opt" / "ml"
    for channel, count, seed in [("training", 256, 1), ("validation", 64, 3), ("test", 64, 2)]:
        write_npz(root / "input" / "data" / channel, count, seed=seed)
        monkeypatch.setenv(f"SM_CHANNEL_{channel.upper()}", str(root / "input" / "data" / channel))
    (root / "model").mkdir(parents=True)
    (root / "output").mkdir(parents=True)
    monkeypatch.setenv("SM_MODEL_DIR", str(root / "model"))
    monkeypatch.setenv("SM_OUTPUT_DIR", str(root / "output"))
    monkeypatch.setenv("SM_INPUT_CONFIG_DIR", str(root / "input" / "config"))
    monkeypatch.setenv("CHECKPOINT_DIR", str(root / "checkpoints"))
    for name in ("SM_HOSTS", "SM_CURRENT_HOST", "SM_NUM_GPUS", "SM_INPUT_DATA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return root
