"""Prepare the training and test channels: data/training/data.npz and data/test/data.npz.

Each file holds `x` (uint8 images, N x H x W) and `y` (uint8 labels 0-9), the layout
code/train.py reads. Two sources:
  mnist   the real MNIST set (70,000 28x28 images), downloaded once (needs the internet)
  digits  scikit-learn's bundled 8x8 digits (1,797 images), offline: for tests and demos
"""

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path

import numpy as np

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DOWNLOAD_TIMEOUT_SECONDS = 60


def mnist(cache: Path):
    if not cache.exists():
        print(f"downloading MNIST from {MNIST_URL} ...")
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".part")
        try:
            with urllib.request.urlopen(MNIST_URL, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                partial.write_bytes(response.read())
        except OSError as error:
            partial.unlink(missing_ok=True)
            sys.exit(
                f"error: could not download MNIST ({error}); check your connection, "
                "or use the offline set: make data DATASET=digits"
            )
        if hashlib.sha256(partial.read_bytes()).hexdigest() != MNIST_SHA256:
            partial.unlink()
            sys.exit("error: the MNIST download is corrupt (checksum mismatch); run make data")
        partial.rename(cache)
    with np.load(cache) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def digits(test_fraction: float = 0.2, seed: int = 0):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.clip(bunch.images * 16, 0, 255).astype("uint8")  # 0..16 -> 0..255
    y = bunch.target.astype("uint8")
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return (x[train], y[train]), (x[test], y[test])


def write_channel(folder: Path, x: np.ndarray, y: np.ndarray, shards: int = 1) -> None:
    """data.npz, or data-00000-of-0000N.npz ... when sharded (ShardedByS3Key hands each
    host whole files). Older files go first, so no example is read twice."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.npz"):
        old.unlink()
    if shards > 1:  # equal shards: every host then takes the same number of steps
        dropped = len(x) % shards
        x, y = x[: len(x) - dropped], y[: len(y) - dropped]
        if dropped:
            print(f"{folder}: left out {dropped} example(s) to make {shards} equal shards")
    for index, part in enumerate(np.array_split(np.arange(len(x)), shards)):
        name = "data.npz" if shards == 1 else f"data-{index:05d}-of-{shards:05d}.npz"
        np.savez_compressed(folder / name, x=x[part].astype("uint8"), y=y[part].astype("uint8"))
    print(f"{folder}: {len(x)} examples of shape {x.shape[1:]} in {shards} file(s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="files per channel (for ShardedByS3Key: at least the host count)",
    )
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error(f"--shards {args.shards}: give a whole number >= 1")
    if args.dataset == "mnist":
        (train, test) = mnist(args.data_dir / "cache" / "mnist.npz")
    else:
        (train, test) = digits()
    write_channel(args.data_dir / "training", *train, shards=args.shards)
    write_channel(args.data_dir / "test", *test, shards=args.shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
