"""Yours to edit: where the data comes from. Writes the training, validation and test channels:
.npz files of x (the images) and y (the labels), which training streams a file at a time.
Validation is a seeded share of the training data, for choosing hyperparameters; test is
scored once, at the end of a run, and never chosen on."""

import argparse
import hashlib
import math
import sys
import urllib.request
from pathlib import Path

import numpy as np

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FILE_BYTES = 16 * 2**20  # of images in a file at most: training holds a few in memory
VALIDATION_SHARE, VALIDATION_SEED = 0.1, 0  # a fixed tenth of training: the same every make data


def mnist(cache: Path):
    if not cache.exists():
        print(f"downloading MNIST from {MNIST_URL} ...")
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:  # read() to the end closes the response
            cache.write_bytes(urllib.request.urlopen(MNIST_URL, timeout=60).read())
        except OSError as error:
            sys.exit(f"error: cannot download MNIST ({error}); offline? make data DATASET=digits")
    if hashlib.sha256(cache.read_bytes()).hexdigest() != MNIST_SHA256:
        cache.unlink()  # a corrupt or half-written download: the next make data fetches it anew
        sys.exit("error: the MNIST download is corrupt (checksum mismatch); run make data")
    with np.load(cache) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = np.clip(bunch.images * 16, 0, 255), bunch.target  # 0..16 -> 0..255
    train, test = np.split(np.random.default_rng(0).permutation(len(x)), [int(len(x) * 0.8)])
    return (x[train], y[train]), (x[test], y[test])


def split_validation(x, y, share: float = VALIDATION_SHARE, seed: int = VALIDATION_SEED):
    """(training, validation): a seeded random share of the examples held out, the rest kept."""
    order = np.random.default_rng(seed).permutation(len(x))
    held, kept = np.split(order, [max(1, round(len(x) * share))])
    return (x[kept], y[kept]), (x[held], y[held])


def write_channel(folder: Path, x, y, shards: int) -> None:
    """Equal .npz files, a multiple of shards of them: each host (ShardedByS3Key) takes as many
    steps. Training streams them a file at a time, so no file is over FILE_BYTES."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.npz"):  # else their examples would be read twice
        old.unlink()
    shards *= math.ceil(x[:1].astype("uint8").nbytes * len(x) / (FILE_BYTES * shards))
    kept = len(x) - len(x) % shards
    for index, part in enumerate(np.split(np.arange(kept), shards)):
        name = "data.npz" if shards == 1 else f"data-{index:05d}-of-{shards:05d}.npz"
        np.savez_compressed(folder / name, x=x[part].astype("uint8"), y=y[part].astype("uint8"))
    print(f"{folder}: {kept} of {len(x)} examples of shape {x.shape[1:]} in {shards} equal file(s)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--shards", type=int, default=1, help="files per channel, >= the hosts")
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error(f"--shards {args.shards}: give a whole number >= 1")
    source = args.data_dir / "cache" / "mnist.npz"
    train, test = mnist(source) if args.dataset == "mnist" else digits()
    training, validation = split_validation(*train)
    for channel, (x, y) in {"training": training, "validation": validation, "test": test}.items():
        write_channel(args.data_dir / channel, x, y, args.shards)


if __name__ == "__main__":
    main()
