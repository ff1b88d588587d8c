"""Several hosts, several GPUs, interruptions: what the runtime decides from what SageMaker
says about the hosts, and how train.py resumes after SIGTERM (a real process and signal)."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import prepare_data
import pytest
import sagemaker_runtime
from conftest import PROJECT_DIR


@pytest.mark.parametrize("num_gpus", [0, 1])
def test_one_host_with_at_most_one_gpu_uses_the_default_strategy(num_gpus):
    plan = sagemaker_runtime.distribution_plan(["algo-1"], "algo-1", num_gpus=num_gpus)
    assert plan["strategy"] == "default" and plan["is_chief"] and plan["tf_config"] is None


def test_one_host_with_several_gpus_mirrors_over_them():
    assert (
        sagemaker_runtime.distribution_plan(["algo-1"], "algo-1", num_gpus=4)["strategy"]
        == "mirrored"
    )


def test_several_hosts_form_one_cluster_and_only_the_first_is_chief():
    hosts = ["algo-1", "algo-2", "algo-3"]
    plans = [sagemaker_runtime.distribution_plan(hosts, host, num_gpus=1) for host in hosts]
    assert [p["strategy"] for p in plans] == ["multi-worker"] * 3
    assert [p["is_chief"] for p in plans] == [True, False, False]
    assert [p["tf_config"]["task"] for p in plans] == [
        {"type": "worker", "index": i} for i in range(3)
    ]
    assert plans[1]["tf_config"]["cluster"]["worker"] == [
        "algo-1:2222",
        "algo-2:2222",
        "algo-3:2222",
    ]


def test_a_host_outside_the_cluster_is_a_failure_reason():
    with pytest.raises(sagemaker_runtime.JobError, match="not among the job's hosts"):
        sagemaker_runtime.distribution_plan(["algo-1", "algo-2"], "algo-9", num_gpus=0)


def test_the_cluster_comes_from_sm_variables_or_else_resourceconfig(opt_ml, monkeypatch):
    assert sagemaker_runtime.sagemaker_cluster() == (["localhost"], "localhost", 0)
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-2", "algo-1"]})
    )
    assert sagemaker_runtime.sagemaker_cluster() == (["algo-1", "algo-2"], "algo-2", 0)
    monkeypatch.setenv("SM_HOSTS", '["algo-1","algo-2","algo-3"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-3")
    monkeypatch.setenv("SM_NUM_GPUS", "8")
    assert sagemaker_runtime.sagemaker_cluster() == (["algo-1", "algo-2", "algo-3"], "algo-3", 8)


def test_data_sharded_by_s3_key_is_not_sharded_again(monkeypatch):
    plan = sagemaker_runtime.distribution_plan(["algo-1", "algo-2"], "algo-1", num_gpus=0)
    cluster = sagemaker_runtime.Cluster(plan, strategy=None, seed=0)
    x, y = np.zeros((8, 2), "float32"), np.zeros(8)

    def steps(channel):  # None: all the data on every host, for tf.distribute to shard
        return cluster.dataset(channel, x, y, batch_size=4, shuffle=False)[1]

    assert steps("training") is None
    monkeypatch.setenv(
        "SM_INPUT_DATA_CONFIG", json.dumps({"training": {"S3DistributionType": "ShardedByS3Key"}})
    )
    assert steps("training") == 4  # this host's own shard, 2 examples of each batch of 4
    assert steps("test") is None


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


def test_a_host_with_its_own_shard_keeps_its_own_examples_in_every_global_batch():
    x = np.arange(40, dtype="float32").reshape(10, 2, 2)
    y = np.arange(10)
    dataset, steps = sagemaker_runtime.as_dataset(
        x, y, batch_size=8, seed=0, shuffle=False, own_shard_of=2
    )
    assert steps == 2  # 10 examples, 4 of them a step on this host
    images, labels = next(iter(dataset))
    # tf.distribute gives worker i slice i of each batch of 8: both slices are ours
    assert labels.numpy().tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert images.shape == (8, 2, 2)


def test_a_batch_that_does_not_divide_among_the_hosts_is_a_failure_reason():
    with pytest.raises(sagemaker_runtime.JobError, match="multiple of the 3 hosts"):
        sagemaker_runtime.as_dataset(
            np.zeros((9, 2)), np.zeros(9), batch_size=8, seed=0, shuffle=False, own_shard_of=3
        )


def test_only_the_chief_prints_final_scores_and_keeps_the_model(opt_ml, capfd):
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    hosts = ["algo-1", "algo-2"]
    chief, other = (
        sagemaker_runtime.Cluster(
            sagemaker_runtime.distribution_plan(hosts, host, 0), strategy=None, seed=0
        )
        for host in hosts
    )
    other.print_metric("test:accuracy", 0.5)
    other.save_model(model)
    assert capfd.readouterr().out == ""
    assert not list((opt_ml / "model").iterdir())

    chief.print_metric("test:accuracy", 0.5)
    chief.save_model(model)
    assert (opt_ml / "model" / "1" / "saved_model.pb").is_file()
    assert capfd.readouterr().out.splitlines() == [
        "METRIC test:accuracy=0.5",
        f"model saved to {opt_ml / 'model' / '1'}",
    ]


def run_train(opt_ml, *args):
    """train.py as its own process, as the toolkit runs it."""
    return subprocess.Popen(
        [sys.executable, "-u", str(PROJECT_DIR / "code" / "train.py"), *args],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_stops_after_the_step_and_the_next_run_resumes_from_the_checkpoint(opt_ml):
    args = ["--epochs", "6", "--batch-size", "1"]
    first = run_train(opt_ml, *args)
    completed = []
    for line in first.stdout:
        if line.startswith("METRIC train:loss"):
            completed.append(int(line.rsplit("epoch=", 1)[1]))
            if len(completed) == 1:
                first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143
    reason = (opt_ml / "output" / "failure").read_text()
    assert "interrupted by SIGTERM" in reason and reason.count("\n") == 1
    (opt_ml / "output" / "failure").unlink()

    second = run_train(opt_ml, *args)
    output = second.stdout.read()
    assert second.wait(timeout=300) == 0, output
    resumed_at = int(output.split("starting at epoch ", 1)[1].split()[0])
    assert resumed_at == completed[-1] + 1  # no completed epoch is done twice
    assert f"epoch={resumed_at - 1}\n" not in output
    assert (opt_ml / "model" / "1" / "saved_model.pb").is_file()
    assert not list((opt_ml / "checkpoints").rglob("*.index"))  # backup gone after success
