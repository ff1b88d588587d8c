"""A failed check ends with where cookiecutter saved the answers, what to edit there (the
answers at fault and those derived from them) and the command that replays them, so one
typo does not mean answering every prompt again."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import MOTO_ACCOUNT_ID, TEMPLATE_DIR, environment_without_aws, resolved_answers

from sm_template import template
from sm_template.replay import fields_at_fault, replay_command, replay_hint
from sm_template.template import derived_from

HINT = "sm-template: your answers are saved in "
RUN = "sm-template: then run: "


def edits_asked(stderr: str) -> set[str]:
    """The fields the hint asks to fix in the replay file."""
    return {
        line.split()[2]
        for line in stderr.splitlines()
        if line.startswith("sm-template: fix ") and " there" in line
    }


def printed_command(stderr: str) -> list[str]:
    last = stderr.splitlines()[-1]
    assert last.startswith(RUN), stderr
    return shlex.split(last.removeprefix(RUN))


def replay_path(command: list[str]) -> Path:
    return Path(command[command.index("--replay-file") + 1])


def run_printed(command: list[str], tmp_path, env=None) -> subprocess.CompletedProcess:
    """The printed command as the user runs it, cookiecutter being this virtualenv's."""
    assert command[0] == "cookiecutter"
    env = {**(env or environment_without_aws(tmp_path / "aws")), "HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", *command[1:]],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_typo_is_fixed_in_the_printed_replay_file_and_the_printed_command_makes_the_project(
    bake, tmp_path
):
    result = bake({"aws_checks": "skip", "aws_account_id": "12345"})

    assert result.returncode != 0 and result.leftovers == []
    command = printed_command(result.stderr)
    path = replay_path(command)
    assert path == tmp_path / "home" / ".cookiecutter_replay" / f"{TEMPLATE_DIR.name}.json"
    assert f"{HINT}{path};" in result.stderr
    assert command[command.index(str(path)) + 1] == str(TEMPLATE_DIR)
    # role_arn and s3_output_path were made from the account: they are to be fixed too
    assert edits_asked(result.stderr) == {"aws_account_id", "role_arn", "s3_output_path"}

    saved = json.loads(path.read_text())
    for field in edits_asked(result.stderr):
        saved["cookiecutter"][field] = saved["cookiecutter"][field].replace("12345", "123456789012")
    path.write_text(json.dumps(saved))
    done = run_printed(command, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    project = result.output_dir / "mnist_on_sagemaker"
    settings = (project / "settings.env").read_text()
    assert "ROLE_ARN = arn:aws:iam::123456789012:role/SageMakerExecutionRole\n" in settings
    assert "s3://sagemaker-us-east-1-123456789012/projects/mnist_on_sagemaker" in settings


def test_the_replay_lines_come_last_one_line_each_naming_a_field(bake):
    result = bake({"aws_checks": "skip", "project_name": "Alice's model"})

    ours = result.stderr.splitlines()
    start = next(i for i, line in enumerate(ours) if line.startswith(HINT))
    assert ours[start - 1].startswith("sm-template: 1 problem in your answers; nothing was")
    assert ours[start + 1 : -1] == [
        "sm-template: fix project_name there (see above)",
        'sm-template: fix project_slug there too: "alice_s_model" was made from project_name',
        'sm-template: fix ecr_repository there too: "alice_s_model" was made from project_slug',
        "sm-template: fix s3_output_path there too: "
        '"s3://sagemaker-us-east-1-123456789012/projects/alice_s_model" was made from '
        "project_slug",
    ]
    assert ours[-1].startswith(f"{RUN}cookiecutter --replay-file ")


def test_an_answer_the_user_typed_is_not_listed_as_derived(bake):
    result = bake(
        {
            "aws_checks": "skip",
            "aws_account_id": "12345",
            "role_arn": "arn:aws:iam::123456789012:role/Mine",
        }
    )

    assert edits_asked(result.stderr) == {"aws_account_id", "s3_output_path"}


def test_a_failed_aws_check_gets_the_replay_lines_too(bake, moto):
    # The credentials are for the moto account; the answer names another one.
    result = bake(
        {"aws_checks": "strict", "aws_account_id": "123456789012"},
        env=moto.env(),
    )

    assert result.returncode != 0
    assert any(MOTO_ACCOUNT_ID in error for error in result.errors)
    assert edits_asked(result.stderr) == {"aws_account_id", "role_arn", "s3_output_path"}
    assert printed_command(result.stderr)[:2] == ["cookiecutter", "--replay-file"]


def test_the_replay_file_is_found_in_the_replay_dir_of_cookiecutters_user_config(bake, tmp_path):
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'my-replays'}\n")
    env = environment_without_aws(tmp_path / "aws", COOKIECUTTER_CONFIG=str(config))

    result = bake({"aws_checks": "skip", "aws_region": "us-east1"}, env=env)

    path = replay_path(printed_command(result.stderr))
    assert path == tmp_path / "my-replays" / f"{TEMPLATE_DIR.name}.json"
    assert json.loads(path.read_text())["cookiecutter"]["aws_region"] == "us-east1"


def test_a_second_mistake_in_a_replay_is_pointed_at_the_same_file(bake, tmp_path):
    first = bake({"aws_checks": "skip", "instance_count": "0"})
    command = printed_command(first.stderr)

    again = run_printed(command, tmp_path)

    assert again.returncode != 0
    assert printed_command(again.stderr) == command
    assert edits_asked(again.stderr) == {"instance_count"}


def test_without_a_replay_file_there_are_no_replay_lines(monkeypatch, tmp_path):
    # cruft, for one, generates without saving a replay file.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("COOKIECUTTER_CONFIG", raising=False)
    answers = {**resolved_answers(aws_checks="skip"), "_template": "gh:org/sm-template"}

    assert replay_hint(answers, ["aws_account_id: wrong"]) == []


@pytest.fixture
def other_template(tmp_path, monkeypatch):
    """sm_template.template reading another cookiecutter.json, as if it were the template's."""

    def use(variables: dict) -> None:
        path = tmp_path / "cookiecutter.json"
        path.write_text(json.dumps(variables))
        monkeypatch.setattr(template, "COOKIECUTTER_JSON", path)
        template.variables.cache_clear()
        template.references.cache_clear()

    yield use
    template.variables.cache_clear()
    template.references.cache_clear()


def test_what_depends_on_what_is_read_from_the_templated_defaults_of_cookiecutter_json(
    other_template,
):
    other_template(
        {
            "a": "x",
            "b": "{{ cookiecutter.a }}-y",
            "c": "{{ cookiecutter['b'] | upper }}",
            "d": ["{{ cookiecutter.a }}", "z"],
            "e": "{{ cookiecutter.b }}{{ cookiecutter.d }}",
            "_private": "{{ cookiecutter.a }}",
        }
    )

    assert template.references() == {
        "a": set(),
        "b": {"a"},
        "c": {"b"},
        "d": {"a"},
        "e": {"b", "d"},
    }
    answers = {"a": "1", "b": "1-y", "c": "1-Y", "d": "1", "e": "typed"}
    assert derived_from(["a"], answers) == {"b": ["a"], "c": ["b"]}


def test_a_fixed_name_changes_the_slug_and_what_is_made_of_the_slug():
    answers = resolved_answers(project_name="Alice's model")

    assert derived_from(["project_name"], answers) == {
        "project_slug": ["project_name"],
        "ecr_repository": ["project_slug"],
        "s3_output_path": ["project_slug"],
    }


def test_a_typed_slug_stops_the_chain_from_the_name():
    answers = resolved_answers(project_name="Alice's model", project_slug="alice")

    assert derived_from(["project_name"], answers) == {}


def test_the_fields_at_fault_are_the_ones_the_errors_name_in_prompt_order():
    errors = ["s3_output_path: bad", "aws_checks: no credentials", "aws_account_id: bad"]

    assert fields_at_fault(errors) == ["aws_account_id", "s3_output_path", "aws_checks"]


def test_the_command_names_the_template_as_typed_its_checkout_and_the_output_folder(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("PWD", str(tmp_path))
    answers = {"_template": "gh:org/sm-template", "_checkout": "v2", "_output_dir": "/p q"}

    assert replay_command(tmp_path / "r.json", answers) == (
        f"cookiecutter --replay-file {tmp_path}/r.json --checkout v2 gh:org/sm-template -o '/p q'"
    )
    answers = {"_template": ".", "_checkout": None, "_output_dir": str(tmp_path)}
    assert replay_command(tmp_path / "r.json", answers) == (
        f"cookiecutter --replay-file {tmp_path}/r.json ."
    )


def test_without_replay_lines_the_summary_says_to_run_cookiecutter_again(capsys):
    from sm_template.messages import report

    report(["aws_account_id: wrong; fix it"], [], [])

    assert capsys.readouterr().err.splitlines()[-1] == (
        "sm-template: 1 problem in your answers; nothing was generated. "
        "Fix them and run cookiecutter again."
    )
