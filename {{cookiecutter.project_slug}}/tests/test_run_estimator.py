"""The launcher's argument handling: fast, typed, and clear about what is wrong."""

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

import run_estimator


def launcher(*args, timeout=60):
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / "run_estimator.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_DIR,
    )


def test_help_answers_without_importing_the_sagemaker_sdk():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, run_estimator; run_estimator.build_parser().format_help();"
            "print('sagemaker' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=60,
    )
    assert done.stdout.strip() == "False"
    assert launcher("--help").returncode == 0


def test_hyperparameters_are_parsed_into_typed_values(tmp_path):
    (tmp_path / "training").mkdir()
    args = run_estimator.build_parser().parse_args(
        [
            "local",
            "--image",
            "x:1",
            "--hparams",
            "epochs=2 learning-rate=0.001 batch-size=32",
            "--data-dir",
            str(tmp_path),
        ]
    )
    run_estimator.check_arguments(args)
    assert args.hparams == {"epochs": 2, "learning-rate": 0.001, "batch-size": 32}


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


def test_a_remote_job_without_a_role_says_which_option_is_missing(tmp_path):
    done = remote("--role", "", tmp_path=tmp_path)  # the later --role wins
    assert done.returncode == 2 and "--role is required" in done.stderr


def test_a_local_run_without_data_says_to_run_make_data(tmp_path):
    done = launcher("local", "--image", "x:1", "--data-dir", str(tmp_path / "none"))
    assert done.returncode == 2 and "run: make data" in done.stderr


def test_an_instance_count_of_zero_is_rejected():
    done = launcher("local", "--image", "x:1", "--instance-count", "0")
    assert done.returncode == 2 and "instance-count" in done.stderr


def test_job_names_are_unique_and_valid_for_sagemaker_even_from_long_underscored_names():
    bases = {run_estimator.unique_job_base("a_very_long_project_slug_" * 4) for _ in range(20)}
    assert len(bases) == 20
    for base in bases:
        name = f"{base}-20261126093342"  # what the SDK appends
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)


def remote(*args, tmp_path):
    (tmp_path / "training").mkdir(exist_ok=True)
    (tmp_path / "training" / "data.npz").touch()
    return launcher(
        "remote",
        "--image",
        "x:1",
        "--role",
        "arn:aws:iam::123456789012:role/r",
        "--region",
        "us-east-1",
        "--s3-output-path",
        "s3://b/p",
        "--data-dir",
        str(tmp_path),
        *args,
    )


def test_a_spot_max_wait_shorter_than_the_max_run_is_refused_with_the_fix(tmp_path):
    done = remote("--spot", "--max-run", "3600", "--max-wait", "1800", tmp_path=tmp_path)
    assert done.returncode == 2 and "use MAX_WAIT >= 3600" in done.stderr


def test_max_wait_without_spot_says_to_turn_spot_on(tmp_path):
    done = remote("--max-wait", "7200", tmp_path=tmp_path)
    assert done.returncode == 2 and "SPOT=1" in done.stderr


def test_sharding_by_s3_key_needs_a_file_per_host(tmp_path):
    done = remote(
        "--instance-count", "2", "--data-distribution", "ShardedByS3Key", tmp_path=tmp_path
    )
    assert done.returncode == 2 and "make data SHARDS=2" in done.stderr


def test_local_mode_refuses_sharding_by_s3_key():
    done = launcher("local", "--image", "x:1", "--data-distribution", "ShardedByS3Key")
    assert done.returncode == 2 and "FullyReplicated" in done.stderr


def test_skip_checks_passes_hyperparameters_through_as_text():
    args = run_estimator.build_parser().parse_args(
        ["local", "--image", "x:1", "--skip-checks", "--hparams", "epochs=zero"]
    )
    run_estimator.check_arguments(args)
    assert args.hparams == {"epochs": "zero"}


@pytest.mark.parametrize("option", [["--keep-alive", "600"], ["--input-mode", "FastFile"]])
def test_remote_only_settings_are_refused_for_local_runs(option):
    done = launcher("local", "--image", "x:1", *option)
    assert done.returncode == 2 and "settings of remote jobs" in done.stderr


def test_an_unknown_input_mode_is_refused_with_the_choices():
    done = launcher("remote", "--image", "x:1", "--input-mode", "Stream")
    assert done.returncode == 2 and "File" in done.stderr and "FastFile" in done.stderr
