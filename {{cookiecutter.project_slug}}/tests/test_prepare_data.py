"""make data: the validation channel is a seeded share of training, apart from it, the same on
every run; the test channel is what it was, never chosen on; SHARDS splits training into
equal files, one share per host (DATA_DISTRIBUTION=ShardedByS3Key)."""

import numpy as np
import prepare_data
import pytest


def channels(data_dir) -> dict:
    arrays = {}
    for channel in ("training", "validation", "test"):
        with np.load(data_dir / channel / "data.npz") as data:
            arrays[channel] = (data["x"], data["y"])
    return arrays


def rows(x, y) -> list[bytes]:
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(x, y, strict=True))


def test_validation_is_split_off_training_the_same_way_each_time_and_test_is_untouched(tmp_path):
    for run in ("first", "second"):
        prepare_data.main(["--dataset", "digits", "--data-dir", str(tmp_path / run)])
    first, second = channels(tmp_path / "first"), channels(tmp_path / "second")
    for channel in first:  # seeded: the same split twice
        assert all((a == b).all() for a, b in zip(first[channel], second[channel], strict=True))
    (x_train, y_train), (x_test, y_test) = prepare_data.digits()
    assert (first["test"][0] == x_test.astype("uint8")).all()
    assert (first["test"][1] == y_test).all()
    assert [len(first[c][1]) for c in ("training", "validation")] == [1293, 144]
    pairs = zip(first["training"], first["validation"], strict=True)
    together = rows(*(np.concatenate(arrays) for arrays in pairs))
    assert together == rows(x_train.astype("uint8"), y_train)  # every example once, no more


def test_the_validation_share_holds_none_of_the_training_examples():
    x = np.arange(1000)
    (kept, _), (held, _) = prepare_data.split_validation(x, x % 10)
    assert len(held) == 100 and not set(kept) & set(held) and len(kept) + len(held) == 1000


@pytest.mark.parametrize("shards, per_file", [(3, 431), (2, 646)])
def test_prepare_data_writes_equal_shards_and_says_what_the_remainder_leaves_out(
    tmp_path, capsys, shards, per_file
):
    """The digits set has 1293 training examples (and 144 for validation): 3 files of 431
    hold all of them; 2 files of 646 leave one out, and the printed line says so (each host
    takes as many steps)."""
    prepare_data.main(["--dataset", "digits", "--data-dir", str(tmp_path)])
    prepare_data.main(["--dataset", "digits", "--data-dir", str(tmp_path), "--shards", str(shards)])
    files = sorted((tmp_path / "training").glob("*.npz"))  # data.npz of the first run is gone
    assert [f.name for f in files] == [f"data-0000{i}-of-0000{shards}.npz" for i in range(shards)]
    assert [len(np.load(f)["y"]) for f in files] == [per_file] * shards
    printed = capsys.readouterr().out.splitlines()
    assert f"{tmp_path / 'training'}: {per_file * shards} of 1293 examples" in printed[-3]
    assert printed[-3].endswith(f"in {shards} equal file(s)")


def test_a_channel_too_big_for_one_file_is_split_into_a_multiple_of_the_shards(
    tmp_path, monkeypatch
):
    """Training holds a file in memory at a time: a big channel is written as many files,
    each within FILE_BYTES of images, still a multiple of SHARDS for the hosts."""
    monkeypatch.setattr(prepare_data, "FILE_BYTES", 20_000)  # digits: 1293 x 64 bytes
    prepare_data.main(["--dataset", "digits", "--data-dir", str(tmp_path), "--shards", "2"])
    files = sorted((tmp_path / "training").glob("*.npz"))
    sizes = [np.load(f)["x"].nbytes for f in files]
    assert len(files) == 6 and max(sizes) <= 20_000 and len(set(sizes)) == 1
