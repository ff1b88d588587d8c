"""A job's settings, checked before anything is built, uploaded or paid for: each bad one is
one line naming the setting as its user sets it, what is wrong and how to fix it (exit 2).
None of these tests has AWS or Docker: a check that came too late would fail on that."""

import re
import subprocess
import sys

import pytest
from smt import aws, settings, train

from sm_template.template import slug_max_length

REMOTE_ONLY = [
    ("KEEP_ALIVE", "600"),
    ("INPUT_MODE", "FastFile"),
    ("SPOT", "1"),
    ("MAX_WAIT", "7200"),
    ("DATA_DISTRIBUTION", "ShardedByS3Key"),
]


def one_line(ran) -> str:
    assert ran.code == 2 and ran.out == "", (ran.code, ran.out)
    [line] = ran.err.splitlines()
    return line


@pytest.mark.parametrize("command", ["train-local", "train-remote"])
@pytest.mark.parametrize(
    ("hparams", "says"),
    [
        ("epochs=two", "HPARAMS: hyperparameter epochs='two' is not a number"),
        ("epoch=2", "HPARAMS: unknown hyperparameter 'epoch'"),
        ("epochs", "HPARAMS: 'epochs' is not name=value (e.g. epochs=3)"),
    ],
)
def test_a_bad_hyperparameter_is_one_line_naming_hparams(smt, command, hparams, says):
    assert one_line(smt(command, "--hparams", hparams)).startswith(f"error: {says}")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SPOT", "yes", "'yes' is not 1 (on) or 0 (off)"),
        ("INSTANCE_COUNT", "0", "'0' is not a whole number >= 1"),
        ("INPUT_MODE", "Stream", "'Stream' is not one of File, FastFile, Pipe"),
        ("INSTANCE_TYPE", "m5.large", "'m5.large' is not an instance type (ml.*)"),
    ],
)
def test_a_bad_value_in_the_environment_is_one_line_naming_the_setting(
    smt, monkeypatch, name, value, says
):
    monkeypatch.setenv(name, value)  # as make passes `make train-remote SPOT=yes`
    assert one_line(smt("train-remote")).startswith(f"error: {name}: {says}; ")


def test_a_remote_job_without_a_role_says_which_setting_is_missing(smt, project_dir):
    env_file = project_dir / "settings.env"
    env_file.write_text(re.sub(r"(?m)^ROLE_ARN = .*$", "", env_file.read_text()))

    line = one_line(smt("train-remote"))

    assert line.startswith("error: ROLE_ARN: make train-remote needs it (the IAM role")
    assert line.endswith("set it in settings.env, or: make train-remote ROLE_ARN=...")


@pytest.mark.parametrize("command", ["train-local", "train-remote"])
def test_a_job_without_data_says_to_run_make_data(smt, project_dir, command):
    line = one_line(smt(command, "--data-dir", "elsewhere"))

    assert line == "error: DATA_DIR: no training data in elsewhere/training; run: make data"


@pytest.mark.parametrize(("name", "value"), REMOTE_ONLY)
def test_a_setting_of_remote_jobs_is_refused_for_a_local_run(smt, name, value):
    option = "--" + name.lower().replace("_", "-")
    line = one_line(smt("train-local", option, value))
    assert line == f"error: {name}: a setting of remote jobs (make train-remote)"


@pytest.mark.parametrize("command", ["train-local", "train-remote"])
def test_more_hosts_than_files_is_refused_saying_how_many_to_write(smt, command):
    """Each host reads files of its own; the baked project's data is one file a channel."""
    line = one_line(smt(command, "--instance-count", "2"))
    assert line == (
        "error: INSTANCE_COUNT: 2 hosts read files of their own, and data/training has 1:"
        " make data SHARDS=2"
    )


def test_pipe_mode_is_refused_before_the_job_with_the_modes_that_stream(smt):
    line = one_line(smt("train-remote", "--input-mode", "Pipe"))
    assert line == (
        "error: INPUT_MODE: Pipe sends a channel as one stream, which train.py does not read:"
        " use File or FastFile (train.py streams both)"
    )


def test_max_wait_without_spot_says_to_turn_spot_on(smt):
    line = one_line(smt("train-remote", "--max-wait", "7200"))
    assert line == "error: MAX_WAIT: it applies to spot jobs only: add SPOT=1"


def test_a_spot_max_wait_shorter_than_the_max_run_is_refused_with_the_fix(smt):
    line = one_line(smt("train-remote", "--spot", "1", "--max-run", "3600", "--max-wait", "1800"))
    assert line == (
        "error: MAX_WAIT: 1800 < MAX_RUN 3600, which the wait includes: use MAX_WAIT >= 3600"
    )


def test_keep_alive_above_sagemakers_maximum_is_refused_with_the_maximum(smt):
    limit = aws.api_maximum("KeepAlivePeriodInSeconds")  # botocore's model of the API says it
    line = one_line(smt("train-remote", "--keep-alive", str(limit + 1)))
    assert line == f"error: KEEP_ALIVE: {limit + 1} is above SageMaker's maximum, {limit} s"


def test_a_setting_comes_from_the_option_then_the_environment_then_settings_env(
    project_dir, monkeypatch
):
    with (project_dir / "settings.env").open("a") as env_file:
        env_file.write('HPARAMS = "epochs=2 learning-rate=0.001"\nINSTANCE_COUNT = 4\n')
    for index in range(1, 4):  # a file for each of up to 4 hosts
        (project_dir / "data" / "training" / f"data-{index}.npz").write_bytes(b"npz")
    monkeypatch.setenv("INSTANCE_COUNT", "3")

    def job(**given):
        values = settings.derive(settings.load("train-local", project_dir, given))
        return train.job(values, remote=False)

    assert job().hyperparameters == {"epochs": 2, "learning-rate": 0.001}  # typed
    assert job().instance_count == 3
    assert job(INSTANCE_COUNT="2").instance_count == 2


def job_names(project_dir, base: str, count: int) -> list[str]:
    """The names the SDK gives `count` jobs of this BASE_JOB_NAME, each with its timestamp."""
    values = settings.derive(settings.load("train-remote", project_dir, {"BASE_JOB_NAME": base}))
    return [f"{train.job(values, remote=True).name}-20261126093342" for _ in range(count)]


def test_job_names_are_unique_and_valid_for_sagemaker_even_from_long_underscored_names(
    project_dir,
):
    names = job_names(project_dir, "a_very_long_project_slug_" * 4, 20)

    assert len(set(names)) == 20
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)


def test_a_job_name_keeps_a_slug_of_the_templates_cap_whole(project_dir):
    longest = "x" * slug_max_length()  # the slug, BASE_JOB_NAME's default

    [name] = job_names(project_dir, longest, 1)

    assert name.startswith(f"{longest}-") and len(name) <= 63


@pytest.mark.parametrize("argv", [["train-remote", "--help"], ["train-local", "--hparams", "x"]])
def test_help_and_a_refusal_come_without_importing_the_sdk(project_dir, argv):
    """The SDK takes seconds to import: --help and a bad setting answer at once."""
    code = (
        f"import sys\nfrom smt import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit:\n"
        "    pass\nprint('sagemaker' in sys.modules, 'boto3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project_dir, timeout=60
    )

    assert done.stdout.splitlines()[-1] == "False False", done.stderr


def test_help_names_the_setting_behind_each_option(smt):
    shown = smt("train-remote", "--help")

    assert shown.code == 0
    text = " ".join(shown.out.split())
    for setting in ("INSTANCE_TYPE", "KEEP_ALIVE", "MAX_WAIT"):
        assert re.search(rf"--{setting.lower().replace('_', '-')} {setting}\b", text), setting
