"""Channels streamed from their files (code/sagemaker_runtime.py): counted from the files'
headers before training, read a file at a time while it runs, shuffled in a bounded buffer,
and shared among hosts by files. The bench measures the memory (bench/run.py)."""

import json
import os
import zipfile

import numpy as np
import pytest
import sagemaker_runtime as runtime


def write_files(folder, sizes, first=0):
    """One .npz file per size; example i has label i and an image filled with i (mod 256)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, size in enumerate(sizes):
        y = np.arange(first, first + size)
        x = np.broadcast_to((y % 256).astype("uint8")[:, None, None], (size, 2, 3)).copy()
        np.savez_compressed(folder / f"data-{index:05d}.npz", x=x, y=y)
        first += size


@pytest.fixture
def channel_dir(tmp_path, monkeypatch):
    folder = tmp_path / "training"
    monkeypatch.setenv("SM_CHANNEL_TRAINING", str(folder))
    return folder


def epoch(dataset) -> list[list[int]]:
    return [labels.numpy().tolist() for _, labels in dataset]


def test_a_channel_is_counted_from_its_headers_and_streams_every_example_once_an_epoch(
    channel_dir,
):
    write_files(channel_dir, [10, 7, 5])
    channel = runtime.open_channel("training", required=True)
    assert (channel.examples, channel.steps_of, channel.shape) == (22, 22, (2, 3))
    dataset, steps = runtime.stream(channel, batch_size=4, seed=0, shuffle=True)
    assert steps == 6
    for _ in range(2):  # each epoch starts anew and ends with the data
        batches = epoch(dataset)
        assert [len(batch) for batch in batches] == [4, 4, 4, 4, 4, 2]
        assert sorted(sum(batches, [])) == list(range(22))
    images, labels = next(iter(dataset))
    assert images.dtype.name == "uint8" and images.shape[1:] == (2, 3)
    assert (images.numpy()[:, 0, 0] == labels.numpy()).all()  # each image with its own label


def test_the_shuffle_buffer_is_bounded_and_the_order_is_new_each_epoch(channel_dir, monkeypatch):
    monkeypatch.setattr(runtime, "SHUFFLE_BUFFER", 8)
    write_files(channel_dir, [100])
    channel = runtime.open_channel("training", required=True)
    dataset, _ = runtime.stream(channel, batch_size=100, seed=0, shuffle=True)
    (first,), (second,) = epoch(dataset), epoch(dataset)
    assert first != list(range(100)) and first != second and sorted(first) == list(range(100))
    # a buffer of 8 draws each example from the next 8 the file holds: none from further on
    assert all(label < position + 8 for position, label in enumerate(first))


def test_without_shuffling_every_epoch_reads_the_same_order(channel_dir):
    write_files(channel_dir, [5, 5])
    dataset, steps = runtime.stream(
        runtime.open_channel("training", required=True), batch_size=3, seed=0, shuffle=False
    )
    first = sum(epoch(dataset), [])
    assert steps == 4 and sorted(first) == list(range(10)) and sum(epoch(dataset), []) == first


@pytest.mark.parametrize("sizes, fewest", [([6, 6, 6, 6], 12), ([6, 6, 6], 6)])
def test_replicated_data_gives_each_host_every_nth_file_and_all_hosts_the_same_steps(
    channel_dir, sizes, fewest
):
    write_files(channel_dir, sizes)
    hosts = [runtime.open_channel("training", True, hosts=2, index=i) for i in (0, 1)]
    names = [[file.name for file in host.files] for host in hosts]
    assert not set(names[0]) & set(names[1]) and len(sum(names, [])) == len(sizes)
    steps = [
        runtime.stream(host, batch_size=4, seed=0, shuffle=True, own_share_of=2)[1]
        for host in hosts
    ]
    assert steps[0] == steps[1] == fewest // 2  # as many as the host with fewest examples


def test_a_host_reads_every_nth_file_of_replicated_data_and_all_it_got_sharded_by_s3_key(
    channel_dir, monkeypatch, capsys
):
    write_files(channel_dir, [4, 4, 4, 4])
    plan = runtime.distribution_plan(["algo-1", "algo-2"], "algo-2", num_gpus=0)
    cluster = runtime.Cluster(plan, strategy=None, seed=0)
    names = [file.name for file in cluster.channel("training", required=True).files]
    assert names == ["data-00001.npz", "data-00003.npz"]
    said = "worker 1 reads channel 'training' (2 files): data-00001.npz, data-00003.npz"
    assert capsys.readouterr().out.splitlines() == [said]  # every worker says it, not the chief
    sharded = {"training": {"S3DistributionType": "ShardedByS3Key"}}
    monkeypatch.setenv("SM_INPUT_DATA_CONFIG", json.dumps(sharded))
    assert len(cluster.channel("training", required=True).files) == 4  # its own already


def test_a_host_takes_its_own_share_of_each_global_batch_from_its_own_files(channel_dir):
    write_files(channel_dir, [10])
    channel = runtime.open_channel("training", required=True)
    dataset, steps = runtime.stream(channel, 8, seed=0, shuffle=False, own_share_of=2)
    assert steps == 2  # 10 examples, 4 of them a step on this host
    images, labels = next(iter(dataset))
    # tf.distribute gives worker i slice i of each batch of 8: both slices are ours
    assert labels.numpy().tolist() == [0, 1, 2, 3, 0, 1, 2, 3] and images.shape == (8, 2, 3)


def test_fewer_files_than_hosts_is_a_reason_that_says_how_many_to_write(channel_dir):
    write_files(channel_dir, [10])
    with pytest.raises(runtime.JobError) as refused:
        runtime.open_channel("training", required=True, hosts=3, index=0)
    assert str(refused.value) == (
        "channel 'training' has 1 file(s) for 3 hosts, and each host reads files of its own:"
        " write at least 3 (make data SHARDS=3)"
    )


def test_a_batch_that_does_not_divide_among_the_hosts_is_a_failure_reason(channel_dir):
    write_files(channel_dir, [9, 9, 9])
    channel = runtime.open_channel("training", True, hosts=3, index=0)
    with pytest.raises(runtime.JobError, match="multiple of the 3 hosts"):
        runtime.stream(channel, batch_size=8, seed=0, shuffle=False, own_share_of=3)


def damage(file, member: str) -> None:
    """Flips bytes inside a member's compressed data, past the header that counting reads."""
    with zipfile.ZipFile(file) as archive:
        info = archive.getinfo(member)
    with open(file, "r+b") as raw:
        raw.seek(info.header_offset + 30 + len(info.filename) + info.compress_size // 2)
        raw.write(os.urandom(16))


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda f: f.write_bytes(b"not a zip"), "data-00001.npz is not an npz of x and y"),
        (lambda f: f.write_bytes(f.read_bytes()[:-40]), "data-00001.npz is not an npz of x and y"),
        (lambda f: np.savez(f, x=np.zeros((2, 2, 3))), "data-00001.npz is not an npz of x and y"),
        (
            lambda f: np.savez(f, x=np.zeros((3, 2, 3)), y=np.zeros(2)),
            "data-00001.npz: (3,) examples and 2 labels: run make data",
        ),
    ],
)
def test_a_corrupt_file_is_a_one_line_reason_naming_it_before_training(channel_dir, spoil, message):
    write_files(channel_dir, [4, 4])
    spoil(channel_dir / "data-00001.npz")
    with pytest.raises(runtime.JobError) as refused:
        runtime.open_channel("training", required=True)
    assert str(refused.value).startswith(f"channel 'training': {message}")
    assert "\n" not in str(refused.value)


def test_images_damaged_past_their_header_fail_the_job_naming_the_file_when_read(
    opt_ml, channel_dir, capfd
):
    write_files(channel_dir, [4])
    x = np.random.default_rng(0).integers(0, 256, (4000, 2, 3), "uint8")  # not compressible
    np.savez_compressed(channel_dir / "data-00001.npz", x=x, y=np.zeros(4000, "int64"))
    damage(channel_dir / "data-00001.npz", "x.npy")
    channel = runtime.open_channel("training", required=True)  # the header is whole

    def train(hp):
        for _ in runtime.stream(channel, batch_size=64, seed=0, shuffle=False)[0]:
            pass

    assert runtime.run(train, []) == 1
    reason = (opt_ml / "output" / "failure").read_text()
    assert reason.startswith("channel 'training': data-00001.npz cannot be read (")
    assert reason.count("\n") == 1


def test_a_label_check_failing_names_the_file(channel_dir):
    write_files(channel_dir, [4, 4])

    def check(labels):
        if labels.max() >= 6:
            raise ValueError("labels must be 0..5")

    with pytest.raises(runtime.JobError) as refused:
        runtime.open_channel("training", required=True, check=check)
    assert str(refused.value) == "channel 'training': data-00001.npz: labels must be 0..5"


def test_a_channel_sent_as_a_pipe_is_refused_with_the_input_modes_that_work(channel_dir):
    channel_dir.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(f"{channel_dir}_0")  # SageMaker's Pipe mode: a FIFO per epoch beside the folder
    with pytest.raises(runtime.JobError) as refused:
        runtime.open_channel("training", required=True)
    assert str(refused.value) == (
        "channel 'training' arrives as a Pipe stream: use INPUT_MODE=File or FastFile"
    )
