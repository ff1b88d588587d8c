"""make data: the validation channel is a seeded share of training, apart from it, the same on
every run; the test channel is what it was, never chosen on."""

import numpy as np
import prepare_data


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
