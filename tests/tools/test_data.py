"""smt data (make data): the project's scripts/prepare_data.py, with DATASET, DATA_DIR and
SHARDS, run in the project whatever the working directory."""

import numpy as np


def test_make_data_writes_the_channels_into_the_projects_data_dir_in_shards(
    smt, project_dir, monkeypatch
):
    monkeypatch.chdir(project_dir / "code")  # smt finds the project from a subfolder

    done = smt("data", "--dataset", "digits", "--data-dir", "prepared", "--shards", "3")

    assert done.code == 0
    training = sorted((project_dir / "prepared" / "training").glob("*.npz"))
    assert [f.name for f in training] == [f"data-0000{i}-of-00003.npz" for i in range(3)]
    assert len({len(np.load(f)["y"]) for f in training}) == 1  # equal shares
    assert (project_dir / "prepared" / "test").is_dir()
