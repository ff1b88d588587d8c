"""smt serve-local (smt/local_server.py): which model it mounts where, and its one-line
refusals, all before Docker is asked anything. Serving on a real engine: e2e/test_serving.py."""

import io
import tarfile

import pytest
from smt import local_server

NAME_IT = "name a model.tar.gz, a folder holding 1/, or a run in outputs/: MODEL=<it>"


def saved_model(folder):
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "saved_model.pb").write_bytes(b"a SavedModel")


def model_tar(path):
    """A model.tar.gz as a training job writes it: 1/saved_model.pb."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("1/saved_model.pb")
        member.size = len(b"a SavedModel")
        archive.addfile(member, io.BytesIO(b"a SavedModel"))


def test_a_local_runs_model_tar_gz_is_extracted_once_beside_it_and_mounted_at_opt_ml_model(
    project_dir,
):
    run = project_dir / "outputs" / "run-1"
    model_tar(run / "model.tar.gz")
    (project_dir / "outputs" / "latest").symlink_to("run-1")

    for model in (None, "run-1", str(run / "model.tar.gz")):
        folder, target = local_server.model_mount(model, project_dir / "outputs")
        assert (folder, target) == (run.resolve() / "model", "/opt/ml/model")
    assert (run / "model" / "1" / "saved_model.pb").read_bytes() == b"a SavedModel"


def test_a_folder_of_the_savedmodel_itself_is_mounted_as_version_1(project_dir):
    saved_model(project_dir / "exported")

    folder, target = local_server.model_mount(str(project_dir / "exported" / "1"), project_dir)

    assert (folder, target) == ((project_dir / "exported" / "1").resolve(), "/opt/ml/model/1")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        ({"MODEL": "nowhere"}, f"MODEL: nowhere does not exist; {NAME_IT}"),
        ({}, f"MODEL: no local model yet: run make train-local, or {NAME_IT}"),
    ],
)
def test_serve_local_says_in_one_line_when_there_is_no_model_and_starts_nothing(
    smt, make, says, monkeypatch
):
    monkeypatch.setattr(local_server.image, "build", lambda settings: pytest.fail("built"))
    options = [arg for name, value in make.items() for arg in (f"--{name.lower()}", value)]

    done = smt("serve-local", *options)

    assert (done.code, done.err.splitlines()) == (2, [f"error: {says}"])


def test_a_failed_run_is_named_with_its_failure_reason(smt, project_dir):
    run = project_dir / "outputs" / "run-2"
    run.mkdir(parents=True)
    (run / "failure").write_text("epochs: 'zero' is not a number\n")

    done = smt("serve-local", "--model", str(run))

    assert done.code == 2
    assert done.err.splitlines() == [
        f"error: MODEL: {run} holds no SavedModel (the run failed: epochs: 'zero' is not a "
        f"number); {NAME_IT}"
    ]
