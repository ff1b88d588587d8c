"""Scaling out and surviving, on real containers: two hosts in SageMaker local mode, a run
stopped with SIGTERM that resumes, and the failures a user can cause."""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

from engines import Stopwatch, image_of, make, make_argv, run, sagemaker_host, score_model
from helpers import put_image_tag

HPARAMS = "epochs=4 learning-rate=0.005"
SLOW_HPARAMS = "epochs=6 batch-size=1"  # about 1,400 steps an epoch: time to interrupt


def train_local(project, *, check=True, **settings):
    return make(
        project["path"],
        "train-local",
        env=project["env"],
        check=check,
        **project["settings"],
        **settings,
    )


def latest(project):
    return project["path"] / "outputs" / "latest"


def shards_of(project, data: Path, shards: int) -> Path:
    """The project's digits data written again, as `shards` equal files a channel."""
    venv = project["settings"]["VENV"]  # make data reads no BASE_IMAGE: it would refuse it
    make(project["path"], "data", env=project["env"], DATASET="digits", SHARDS=shards,
         DATA_DIR=data, VENV=venv)  # fmt: skip
    return data


def files_read(log: str, worker: int) -> dict[str, str]:
    """{channel: its files} as the worker said it reads them."""
    said = re.findall(rf"worker {worker} reads channel '(\w+)' \(\d+ files\): (.+)", log)
    return dict(said)


def test_two_hosts_train_one_model_that_scores_like_one_host(project, tmp_path):
    data = shards_of(project, tmp_path / "data", shards=2)
    train_local(project, HPARAMS=HPARAMS, DATA_DIR=data)
    _, one_host = score_model(latest(project), data, tmp_path / "one")
    with Stopwatch("train-local, 2 hosts"):
        done = train_local(project, HPARAMS=HPARAMS, INSTANCE_COUNT=2, DATA_DIR=data)
    assert "cluster: worker 0 of 2 (algo-1:2222, algo-2:2222)" in done.stdout
    assert "cluster: worker 1 of 2 (algo-1:2222, algo-2:2222)" in done.stdout
    assert "2 replicas" in done.stdout
    # replicated data: each worker reads every other file, none of the other's
    assert files_read(done.stdout, 0)["training"] == "data-00000-of-00002.npz"
    assert files_read(done.stdout, 1)["training"] == "data-00001-of-00002.npz"
    names, two_hosts = score_model(latest(project), data, tmp_path / "two")
    assert names.count("1/saved_model.pb") == 1  # one model, from the chief
    assert two_hosts > 0.8 and abs(two_hosts - one_host) < 0.05, (one_host, two_hosts)


def test_two_hosts_sharded_by_s3_key_each_train_on_the_files_they_were_given(project, tmp_path):
    """SageMaker's ShardedByS3Key, which local mode does not do: two bare `docker run IMAGE
    train` on one network, as SageMaker starts its hosts, each given one file a channel."""
    data, hosts = shards_of(project, tmp_path / "data", shards=2), ("algo-1", "algo-2")
    image = image_of(project["path"], project["env"], project["settings"])
    network = f"sharded-{tmp_path.name}"[:60]
    run(["docker", "network", "create", network])
    try:
        for index, host in enumerate(hosts):
            own = tmp_path / host / "data"  # the files SageMaker would copy to this host
            for channel in ("training", "validation", "test"):
                (own / channel).mkdir(parents=True)
                shutil.copy(data / channel / f"data-0000{index}-of-00002.npz", own / channel)
            mounts = sagemaker_host(tmp_path / host / "ml", own, {"epochs": "2"}, host=host,
                                    hosts=hosts, distribution="ShardedByS3Key")  # fmt: skip
            run(["docker", "run", "-d", "--name", f"{network}-{host}", "--network", network,
                 "--network-alias", host, "--hostname", host, *mounts, image, "train"])  # fmt: skip
        with Stopwatch("2 hosts, ShardedByS3Key, bare docker run"):
            codes = [run(["docker", "wait", f"{network}-{h}"], timeout=900).stdout for h in hosts]
        logs = [run(["docker", "logs", f"{network}-{h}"]).stdout for h in hosts]
    finally:
        run(["docker", "rm", "-f", *(f"{network}-{h}" for h in hosts)], check=False)
        run(["docker", "network", "rm", network], check=False)
    assert [code.strip() for code in codes] == ["0", "0"], logs
    for worker, log in enumerate(logs):  # each host read all it got, and only that
        assert files_read(log, worker) == dict.fromkeys(
            ("training", "validation", "test"), f"data-0000{worker}-of-00002.npz"
        )
    assert (tmp_path / "algo-1" / "ml" / "model" / "1" / "saved_model.pb").is_file()
    assert not (tmp_path / "algo-2" / "ml" / "model" / "1").exists()  # the chief's alone


def running_container() -> str:
    names = run(["docker", "ps", "--format", "{{.Names}}"]).stdout.split()
    (name,) = [n for n in names if n.startswith("running-")]
    return name


def test_a_local_run_stopped_by_sigterm_resumes_from_its_last_epoch(project, tmp_path):
    first = subprocess.Popen(
        make_argv("train-local", HPARAMS=SLOW_HPARAMS, **project["settings"]),
        cwd=project["path"],
        env=project["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    completed, output = [], []
    for line in first.stdout:
        output.append(line)
        if "METRIC train:loss" in line:
            completed.append(int(line.rsplit("epoch=", 1)[1]))
            if len(completed) == 1:
                run(["docker", "kill", "--signal", "TERM", running_container()])
    assert first.wait(timeout=600) != 0
    assert "FAILED: interrupted by SIGTERM" in "".join(output)

    with Stopwatch("train-local resumed after SIGTERM"):
        resumed = train_local(project, HPARAMS=SLOW_HPARAMS)
    starting_at = int(resumed.stdout.split("starting at epoch ", 1)[1].split()[0])
    assert starting_at == completed[-1] + 1 > 1  # resumed, at most one epoch lost
    _, after_resume = score_model(latest(project), project["path"] / "data", tmp_path / "r")

    train_local(project, HPARAMS=SLOW_HPARAMS)  # the same run, never interrupted
    assert "resumed from the checkpoint" not in latest(project).joinpath("train.log").read_text()
    _, uninterrupted = score_model(latest(project), project["path"] / "data", tmp_path / "u")
    assert after_resume >= uninterrupted - 0.03, (after_resume, uninterrupted)


def test_a_failure_train_py_finds_reaches_the_user_as_one_line(project, tmp_path):
    """What smt cannot check before the run (its own checks refuse a bad hyperparameter or a
    missing channel: tests/tools/test_job_settings.py): a training channel with no files."""
    data = tmp_path / "data"
    (data / "training").mkdir(parents=True)
    (data / "test").mkdir()
    for file in (project["path"] / "data" / "test").glob("*.npz"):
        (data / "test" / file.name).write_bytes(file.read_bytes())

    done = train_local(project, check=False, DATA_DIR=data, HPARAMS="epochs=1")

    reason = "channel 'training' has no .npz files"
    assert done.returncode != 0
    failed = [line for line in done.stdout.splitlines() if " FAILED: " in line]
    assert len(failed) == 1 and reason in failed[0], done.stdout[-2000:]
    assert reason in (latest(project) / "failure").read_text()


def test_spot_sharding_warm_pool_and_input_mode_reach_the_job_request(project, moto_server):
    moto_server.reset()
    bucket = "sagemaker-us-east-1-123456789012"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    env = moto_server.env(SAGEMAKER_VALIDATE_ROLE="false", PATH=project["env"]["PATH"])
    path = project["path"]
    venv = project["settings"]["VENV"]  # make data reads no BASE_IMAGE: it would refuse it
    make(path, "data", env=env, DATASET="digits", SHARDS=2, VENV=venv)
    refused = make(
        path,
        "train-remote",
        env=env,
        check=False,
        SPOT=1,
        MAX_RUN=3600,
        MAX_WAIT=600,
        **project["settings"],
    )
    assert refused.returncode != 0 and "use MAX_WAIT >= 3600" in refused.stdout
    put_image_tag(moto_server, "scale_out", "v1")
    moto_server.start_recording()
    make(
        path,
        "train-remote",
        env=env,
        KEEP_ALIVE=600,
        INPUT_MODE="FastFile",
        SPOT=1,
        MAX_RUN=3600,
        MAX_WAIT=5000,  # not the default 2 x MAX_RUN: the setting itself must arrive
        INSTANCE_COUNT=2,
        DATA_DISTRIBUTION="ShardedByS3Key",
        IMAGE_TAG="v1",
        **project["settings"],
    )
    (body,) = [
        r["body"]
        for r in moto_server.recorded_requests()
        if r.get("headers", {}).get("X-Amz-Target", "").endswith(".CreateTrainingJob")
    ]
    request = json.loads(body if body.lstrip().startswith("{") else base64.b64decode(body))
    assert request["EnableManagedSpotTraining"] is True
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600,
        "MaxWaitTimeInSeconds": 5000,
    }
    checkpoints = request["CheckpointConfig"]
    prefix = f"s3://{bucket}/projects/scale_out/checkpoints/scale-out-"
    assert checkpoints["S3Uri"].startswith(prefix) and checkpoints["S3Uri"].endswith("/")
    assert checkpoints["LocalPath"] == "/opt/ml/checkpoints"
    assert {
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in request["InputDataConfig"]
    } == {"ShardedByS3Key"}
    keys = sorted(
        o["Key"]
        for o in moto_server.client("s3").list_objects_v2(
            Bucket=bucket, Prefix="projects/scale_out/data/training/"
        )["Contents"]
    )
    assert keys == [f"projects/scale_out/data/training/data-0000{i}-of-00002.npz" for i in range(2)]


def test_with_code_mount_an_edit_runs_without_a_build(project):
    path = project["path"]
    images = ["docker", "images", "-q", path.name]  # the project's (other tests share the engine)
    images_before = run(images).stdout.split()
    train_py = path / "code" / "train.py"
    original = train_py.read_text()
    main_guard = 'if __name__ == "__main__":'
    edited = original.replace(main_guard, 'print("edited, not rebuilt")\n\n\n' + main_guard)
    train_py.write_text(edited)
    try:
        with Stopwatch("train-local with CODE_MOUNT=1 after an edit"):
            done = train_local(project, HPARAMS="epochs=1", CODE_MOUNT=1)
    finally:
        train_py.write_text(original)
    assert "code mount ON" in done.stdout
    assert "edited, not rebuilt" in done.stdout
    assert "building " not in done.stdout
    assert run(images).stdout.split() == images_before
