"""The launcher's settings: fast, typed, and clear about what is wrong, before any job."""

import os
import re
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

import run_estimator
from project_tools import job_settings

# The Makefile exports its settings; these tests give the launcher only what they pass.
SETTINGS = {"IMAGE", "HPARAMS", "INSTANCE_COUNT", "DATA_DIR", "SPOT", "MAX_RUN", "MAX_WAIT"}


@pytest.fixture(autouse=True)
def no_makefile_settings(monkeypatch):
    for name in SETTINGS | {"KEEP_ALIVE", "INPUT_MODE", "DATA_DISTRIBUTION", "ROLE_ARN"}:
        monkeypatch.delenv(name, raising=False)


def launcher(*args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / "run_estimator.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_DIR,
        env={**{k: v for k, v in os.environ.items() if k not in SETTINGS}, **(env or {})},
    )


def test_help_answers_without_importing_the_sagemaker_sdk():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, run_estimator\ntry:\n    run_estimator.settings(['--help'])\n"
            "except SystemExit:\n    pass\nprint('sagemaker' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=60,
    )
    assert done.stdout.strip().endswith("False")
    assert launcher("--help").returncode == 0


def test_help_names_the_makefile_setting_behind_each_option():
    text = launcher("--help").stdout
    for flag, setting in [("--instance-type", "INSTANCE_TYPE"), ("--keep-alive", "KEEP_ALIVE")]:
        assert re.search(rf"{flag} .*\[{setting}", text.replace("\n", " ")), flag


def test_options_default_to_the_settings_of_the_same_name(tmp_path, monkeypatch):
    (tmp_path / "training").mkdir()
    monkeypatch.setenv("HPARAMS", "epochs=2 learning-rate=0.001 batch-size=32")
    monkeypatch.setenv("INSTANCE_COUNT", "3")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    args = run_estimator.settings(["local", "--image", "x:1"])
    assert args.hparams == {"epochs": 2, "learning-rate": 0.001, "batch-size": 32}
    assert args.instance_count == 3 and args.data_dir == tmp_path


def test_an_option_on_the_command_line_wins_over_the_setting(tmp_path, monkeypatch):
    (tmp_path / "training").mkdir()
    monkeypatch.setenv("INSTANCE_COUNT", "3")
    args = run_estimator.settings(
        ["local", "--image", "x:1", "--instance-count", "2", "--data-dir", str(tmp_path)]
    )
    assert args.instance_count == 2


@pytest.mark.parametrize(
    "hparams, message",
    [
        ("epochs=two", "not a number"),
        ("epoch=2", "unknown hyperparameter"),
        ("epochs", "not name=value"),
    ],
)
def test_a_bad_hyperparameter_is_a_one_line_error_without_a_traceback(hparams, message):
    done = launcher("local", "--image", "x:1", "--hparams", hparams)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_setting_from_the_makefile_is_reported_like_a_bad_option():
    done = launcher("local", "--image", "x:1", env={"SPOT": "yes"})
    assert done.returncode == 2
    assert done.stderr == "error: SPOT: 'yes' is not 1 (on) or 0 (off)\n"


def test_a_remote_job_without_a_role_says_which_setting_is_missing(tmp_path):
    done = remote(tmp_path=tmp_path, role=None)
    assert done.returncode == 2
    assert "--role-arn (or ROLE_ARN) is required for remote jobs" in done.stderr


def test_a_local_run_without_data_says_to_run_make_data(tmp_path):
    done = launcher("local", "--image", "x:1", "--data-dir", str(tmp_path / "none"))
    assert done.returncode == 2 and "run: make data" in done.stderr


def test_an_instance_count_of_zero_is_rejected():
    done = launcher("local", "--image", "x:1", "--instance-count", "0")
    assert done.returncode == 2
    assert done.stderr == "error: INSTANCE_COUNT: '0' is not a whole number >= 1\n"


def test_job_names_are_unique_and_valid_for_sagemaker_even_from_long_underscored_names():
    bases = {job_settings.unique_base("a_very_long_project_slug_" * 4) for _ in range(20)}
    assert len(bases) == 20
    for base in bases:
        name = f"{base}-20261126093342"  # what the SDK appends
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)


def remote(*args, tmp_path, role="arn:aws:iam::123456789012:role/r"):
    (tmp_path / "training").mkdir(exist_ok=True)
    (tmp_path / "training" / "data.npz").touch()
    role_option = ["--role-arn", role] if role else []
    return launcher(
        "remote",
        "--image",
        "x:1",
        *role_option,
        "--instance-type",
        "ml.m5.large",
        "--aws-region",
        "us-east-1",
        "--s3-output-path",
        "s3://b/p",
        "--data-dir",
        str(tmp_path),
        *args,
        env={"ROLE_ARN": ""},
    )


def test_a_spot_max_wait_shorter_than_the_max_run_is_refused_with_the_fix(tmp_path):
    done = remote("--spot", "1", "--max-run", "3600", "--max-wait", "1800", tmp_path=tmp_path)
    assert done.returncode == 2 and "use MAX_WAIT >= 3600" in done.stderr


def test_max_wait_without_spot_says_to_turn_spot_on(tmp_path):
    done = remote("--max-wait", "7200", tmp_path=tmp_path)
    assert done.returncode == 2 and "SPOT=1" in done.stderr


@pytest.mark.parametrize("max_wait, expected", [(None, 2 * 3600), ("5000", 5000)])
def test_a_spot_job_waits_twice_its_run_unless_max_wait_says_otherwise(
    tmp_path, max_wait, expected
):
    (tmp_path / "training").mkdir()
    argv = ["remote", "--image", "x:1", "--role-arn", "r", "--instance-type", "ml.m5.large"]
    argv += ["--aws-region", "us-east-1", "--s3-output-path", "s3://b/p"]
    argv += ["--data-dir", str(tmp_path), "--spot", "1", "--max-run", "3600"]
    args = run_estimator.settings(argv + (["--max-wait", max_wait] if max_wait else []))
    assert args.max_wait == expected
    assert args.checkpoint_s3 == f"s3://b/p/checkpoints/{args.base_job_name}"


def test_sharding_by_s3_key_needs_a_file_per_host(tmp_path):
    done = remote(
        "--instance-count", "2", "--data-distribution", "ShardedByS3Key", tmp_path=tmp_path
    )
    assert done.returncode == 2 and "make data SHARDS=2" in done.stderr


def test_keep_alive_above_sagemakers_maximum_is_refused_before_submitting(tmp_path):
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    limit = model.shape_for("KeepAlivePeriodInSeconds").metadata["max"]
    done = remote("--keep-alive", str(limit + 1), tmp_path=tmp_path)
    assert done.returncode == 2
    assert f"KEEP_ALIVE {limit + 1} is above SageMaker's maximum, {limit} s" in done.stderr


def test_local_mode_refuses_sharding_by_s3_key():
    done = launcher("local", "--image", "x:1", "--data-distribution", "ShardedByS3Key")
    assert done.returncode == 2 and "settings of remote jobs" in done.stderr


def test_skip_checks_passes_hyperparameters_through_as_text(tmp_path):
    (tmp_path / "training").mkdir()
    argv = ["local", "--image", "x:1", "--skip-checks", "--hparams", "epochs=zero"]
    args = run_estimator.settings(argv + ["--data-dir", str(tmp_path)])
    assert args.hparams == {"epochs": "zero"}


@pytest.mark.parametrize("option", [["--keep-alive", "600"], ["--input-mode", "FastFile"]])
def test_remote_only_settings_are_refused_for_local_runs(option):
    done = launcher("local", "--image", "x:1", *option)
    assert done.returncode == 2 and "settings of remote jobs" in done.stderr


def test_an_unknown_input_mode_is_refused_with_the_choices():
    done = launcher("remote", "--image", "x:1", "--input-mode", "Stream")
    assert done.returncode == 2
    assert "'Stream' is not one of File, FastFile, Pipe" in done.stderr
