"""Several hosts and several GPUs: what the image's runtime (code/sagemaker_runtime.py)
decides from what SageMaker says about the hosts, and how it shares the data among them.
Real containers on two hosts: tests/e2e/test_scale_out.py."""

import json

import pytest
import sagemaker_runtime as runtime


@pytest.mark.parametrize("num_gpus", [0, 1])
def test_one_host_with_at_most_one_gpu_uses_the_default_strategy(num_gpus):
    plan = runtime.distribution_plan(["algo-1"], "algo-1", num_gpus=num_gpus)
    assert plan["strategy"] == "default" and plan["is_chief"] and plan["tf_config"] is None


def test_one_host_with_several_gpus_mirrors_over_them():
    assert runtime.distribution_plan(["algo-1"], "algo-1", num_gpus=4)["strategy"] == "mirrored"


def test_several_hosts_form_one_cluster_and_only_the_first_is_chief():
    hosts = ["algo-1", "algo-2", "algo-3"]
    plans = [runtime.distribution_plan(hosts, host, num_gpus=1) for host in hosts]
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
    with pytest.raises(runtime.JobError, match="not among the job's hosts"):
        runtime.distribution_plan(["algo-1", "algo-2"], "algo-9", num_gpus=0)


def test_the_cluster_comes_from_sm_variables_or_else_resourceconfig(opt_ml, monkeypatch):
    assert runtime.sagemaker_cluster() == (["localhost"], "localhost", 0)
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    resource = {"current_host": "algo-2", "hosts": ["algo-2", "algo-1"]}
    (config / "resourceconfig.json").write_text(json.dumps(resource))
    assert runtime.sagemaker_cluster() == (["algo-1", "algo-2"], "algo-2", 0)
    monkeypatch.setenv("SM_HOSTS", '["algo-1","algo-2","algo-3"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-3")
    monkeypatch.setenv("SM_NUM_GPUS", "8")
    assert runtime.sagemaker_cluster() == (["algo-1", "algo-2", "algo-3"], "algo-3", 8)


def test_only_the_chief_prints_final_scores_and_keeps_the_model(opt_ml, capfd):
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    chief, other = (
        runtime.Cluster(
            runtime.distribution_plan(["algo-1", "algo-2"], host, 0), strategy=None, seed=0
        )
        for host in ("algo-1", "algo-2")
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
