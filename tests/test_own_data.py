"""The generated README's "Your own data" offers a channel of plain image files, a folder per
class, in place of the .npz files. Its code blocks, applied to a baked project as the README
says, write such a channel and train on it, and the saved model classifies those images."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from test_swap_the_model import baked, opt_ml_environment, trains_two_epochs_printing_every_metric

# The saved model read back in a fresh process: its input shape, and its accuracy on the test
# channel's PNG files (test/<label>/<n>.png), each resized to that shape as Keras loads it.
CLASSIFY = """
import json, sys
from pathlib import Path
import numpy as np
import tf_keras as keras
model, files = keras.models.load_model(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*/*.png"))
shape = model.input_shape[1:]
images = np.stack([
    keras.utils.img_to_array(keras.utils.load_img(f, color_mode="grayscale", target_size=shape[:2]))
    for f in files
])
predicted = model.predict(images, verbose=0).argmax(axis=1)
labels = np.array([int(f.parent.name) for f in files])
print(json.dumps({"shape": shape, "accuracy": float((predicted == labels).mean())}))
"""


def readme_section(readme: str, title: str) -> str:
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def replace_function(source: str, function: str, new: str) -> str:
    """The source with one top-level function, def line to end, replaced by new."""
    [node] = [n for n in ast.parse(source).body if getattr(n, "name", None) == function]
    lines = source.splitlines(keepends=True)
    return "".join(lines[: node.lineno - 1]) + new + "".join(lines[node.end_lineno :])


def apply_image_files(project: Path) -> None:
    """The section's changes: its first block above train() in train.py, and train()'s calls
    swapped as its prose says; its second block in place of prepare_data.py's write_channel."""
    section = readme_section((project / "README.md").read_text(), "Your own data")
    functions, write_channel = re.findall(r"```python\n(.*?)```", section, re.S)
    swaps = re.findall(r"`(\w+)\(` in\s+place of `([\w.]+)\(`", section)
    assert [old for _, old in swaps] == ["cluster.channel", "cluster.dataset"], section

    train_py = project / "code/train.py"
    source = train_py.read_text().replace("\ndef train(", f"\n{functions}\n\ndef train(", 1)
    head, body = source.split("\ndef train(", 1)
    for new, old in swaps:
        assert f"{old}(" in body, f"train() no longer calls {old}: the README is stale"
        body = body.replace(f"{old}(", f"{new}(")
    train_py.write_text(f"{head}\ndef train({body}")

    prepare = project / "scripts/prepare_data.py"
    prepare.write_text(replace_function(prepare.read_text(), "write_channel", write_channel))


def test_a_channel_of_image_files_a_folder_per_class_trains_as_the_readme_says(tmp_path):
    project = baked(tmp_path / "bake")
    apply_image_files(project)
    root = tmp_path / "opt/ml"
    channels = root / "input/data"
    # scikit-learn's digits (offline): 8x8 images, which the model takes resized to 28x28
    subprocess.run(
        [sys.executable, "scripts/prepare_data.py", "--dataset", "digits", "--data-dir", channels],
        cwd=project,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert not list(channels.rglob("*.npz"))
    assert sorted(p.name for p in (channels / "training").iterdir()) == [str(d) for d in range(10)]
    env = opt_ml_environment(root, write_npz=lambda *_, **__: None)  # the PNGs are written

    trains_two_epochs_printing_every_metric(
        project / "code/train.py", "--batch-size", "32", env=env
    )
    classified = subprocess.run(
        [sys.executable, "-c", CLASSIFY, str(root / "model/1"), str(channels / "test")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(classified.stdout.splitlines()[-1])
    assert result["shape"] == [28, 28, 1]
    assert result["accuracy"] > 0.5  # of ten classes: it learned from the images
