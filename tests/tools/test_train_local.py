"""smt train-local without Docker: the image's build and the SDK's local mode (its
ModelTrainer.train) are replaced by stand-ins that do what SageMaker's local mode leaves in
the run's folder; what the tests check is how smt sets the run up and how it ends it: as
outputs/<job>/, whatever happened, and never as outputs/.running-*. The real local mode runs
in tests/e2e (test_the_loop.py, test_scale_out.py)."""

from pathlib import Path

import pytest
from helpers import refused_argument
from smt import image, local_run

PRINTED = "algo-1-x8k2p  | METRIC train:loss=0.5 epoch=1"


@pytest.fixture
def local_mode(project_dir, monkeypatch):
    """Records the build and each ModelTrainer.train; `then(root)` is what the local mode
    does in the run's folder (local_container_root): by default, a completed run."""
    from sagemaker.train.model_trainer import ModelTrainer

    seen = {"builds": 0, "trainers": []}

    def completed(root: Path) -> None:
        print(PRINTED)
        (root / "compressed_artifacts").mkdir()
        for name in ("model.tar.gz", "output.tar.gz"):
            (root / "compressed_artifacts" / name).write_bytes(b"tar")

    def train(trainer, input_data_config=None, wait=True, logs=True):
        seen["trainers"].append((trainer, input_data_config))
        seen["then"](Path(trainer.local_container_root))

    seen["then"] = completed
    monkeypatch.setattr(
        image, "build", lambda settings: seen.__setitem__("builds", seen["builds"] + 1)
    )
    monkeypatch.setattr(local_run, "housekeeping", lambda *args: "")  # docker ps, rm, run chown
    monkeypatch.setattr(ModelTrainer, "train", train)
    return seen


def runs(project_dir: Path) -> list[str]:
    """The runs' folders: not latest, nor mlflow (the runs' history, make runs)."""
    kept = ("latest", "mlflow")
    return sorted(p.name for p in (project_dir / "outputs").iterdir() if p.name not in kept)


def test_a_local_run_ends_as_outputs_job_with_its_model_its_log_and_latest_pointing_at_it(
    smt, project_dir, local_mode
):
    done = smt("train-local", "--hparams", "epochs=2 learning-rate=0.01")

    assert done.code == 0, done.err
    [run] = runs(project_dir)
    folder = project_dir / "outputs" / run
    assert (project_dir / "outputs" / "latest").resolve() == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "metrics.png",  # drawn for MLflow's record of the run
        "model.tar.gz",
        "output.tar.gz",
        "train.log",
    ]
    assert PRINTED in (folder / "train.log").read_text().splitlines()
    assert done.out.splitlines()[-3:] == [
        f"Training job {run} completed.",
        f"model: {folder / 'model.tar.gz'}",
        f"log:   {folder / 'train.log'}",
    ]
    [(trainer, channels)] = local_mode["trainers"]
    assert local_mode["builds"] == 1
    assert trainer.hyperparameters == {"epochs": 2, "learning-rate": 0.01}
    assert trainer.environment == {"CHECKPOINT_DIR": "/opt/ml/input/data/checkpoints"}
    assert trainer.compute.instance_type == "local"
    sources = {c.channel_name: c.data_source for c in channels}
    data = project_dir / "data"
    checkpoints = sources.pop("checkpoints")
    assert sources == {name: str(data / name) for name in ("training", "validation", "test")}
    assert Path(checkpoints).parent == project_dir / "checkpoints"


def test_a_run_started_in_a_subfolder_reads_the_projects_data_and_writes_its_outputs(
    smt, project_dir, local_mode, monkeypatch
):
    monkeypatch.chdir(project_dir / "code")

    done = smt("train-local")

    assert done.code == 0, done.err
    [(_, channels)] = local_mode["trainers"]
    training = next(c.data_source for c in channels if c.channel_name == "training")
    assert training == str(project_dir / "data" / "training")
    assert len(runs(project_dir)) == 1 and not (project_dir / "code" / "outputs").exists()


def test_a_run_train_py_failed_ends_with_its_reason_in_one_line_and_exit_1(
    smt, project_dir, local_mode
):
    def failed(root: Path) -> None:
        (root / "algo-1" / "output").mkdir(parents=True)
        (root / "algo-1" / "output" / "failure").write_text("RuntimeError: boom\n")
        raise RuntimeError("Failed to run: ['docker-compose', 'up']. Process exited with code: 1")

    local_mode["then"] = failed

    done = smt("train-local")

    assert done.code == 1
    [run] = runs(project_dir)
    folder = project_dir / "outputs" / run
    assert f"Training job {run} FAILED: RuntimeError: boom" in done.out.splitlines()
    assert (folder / "failure").read_text() == "RuntimeError: boom\n"
    assert sorted(p.name for p in folder.iterdir()) == ["failure", "train.log"]  # no algo-1/
    assert (project_dir / "outputs" / "latest").resolve() == folder


def test_ctrl_c_ends_the_run_as_failed_saying_the_same_command_resumes_it(
    smt, project_dir, local_mode
):
    def interrupted(root: Path) -> None:
        raise KeyboardInterrupt

    local_mode["then"] = interrupted

    done = smt("train-local")

    assert done.code == 1
    [run] = runs(project_dir)
    assert done.out.splitlines()[-3:] == [
        f"Training job {run} FAILED: the run did not finish: KeyboardInterrupt",
        f"log: {project_dir / 'outputs' / run / 'train.log'}",
        "The same command resumes it from its checkpoint.",
    ]


def test_a_trainer_the_sdk_refuses_ends_the_run_with_a_failure_file_and_one_line(
    smt, project_dir, local_mode
):
    refused_argument(project_dir, "vpc")

    done = smt("train-local")

    says = "run_estimator.py: ModelTrainer refuses trainer_arguments(job): vpc: Extra inputs"
    says += " are not permitted"
    assert (done.code, done.err) == (1, f"error: {says}\n")
    assert list((project_dir / "outputs").glob(".running-*")) == []
    [run] = runs(project_dir)
    failure = project_dir / "outputs" / run / "failure"
    assert failure.read_text() == f"the run did not finish: {says}\n"
    assert local_mode["trainers"] == []


def test_no_docker_to_run_ends_the_run_with_a_failure_file_and_one_line(
    smt, project_dir, local_mode
):
    def no_docker(root: Path) -> None:
        raise FileNotFoundError(2, "No such file or directory", "docker")

    local_mode["then"] = no_docker

    done = smt("train-local")

    says = "local mode could not run Docker: FileNotFoundError: [Errno 2] No such file or"
    says += " directory: 'docker'"
    assert (done.code, done.err) == (1, f"error: {says}\n")
    [run] = runs(project_dir)
    assert (
        project_dir / "outputs" / run / "failure"
    ).read_text() == f"the run did not finish: {says}\n"


def test_with_code_mount_the_newest_image_runs_the_projects_code_without_a_build(
    smt, project_dir, local_mode, monkeypatch
):
    monkeypatch.setattr(image, "newest", lambda settings: "mnist_on_sagemaker:older")

    done = smt("train-local", "--code-mount", "1", "--hparams", "epochs=1")

    assert done.code == 0, done.err
    assert local_mode["builds"] == 0
    [(trainer, _)] = local_mode["trainers"]
    assert trainer.training_image == "mnist_on_sagemaker:older"
    assert trainer.hyperparameters == {
        "epochs": 1,
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": (project_dir / "code").as_uri(),
    }
    assert "code mount ON" in done.out


def test_only_the_same_image_hyperparameters_hosts_and_data_share_checkpoints(
    smt, project_dir, local_mode
):
    def checkpoints() -> str:
        channels = local_mode["trainers"][-1][1]
        return next(c.data_source for c in channels if c.channel_name == "checkpoints")

    smt("train-local", "--hparams", "epochs=2")
    first = checkpoints()
    smt("train-local", "--hparams", "epochs=2")
    assert checkpoints() == first  # the same run again: it resumes
    for other in (
        ["--hparams", "epochs=3"],
        ["--hparams", "epochs=2", "--instance-count", "2"],
        ["--hparams", "epochs=2", "--image-tag", "another"],
    ):
        smt("train-local", *other)
        assert checkpoints() != first, other
    (project_dir / "data" / "training" / "more.npz").write_bytes(b"more data")
    smt("train-local", "--hparams", "epochs=2")
    assert checkpoints() != first
