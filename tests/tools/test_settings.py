"""The one settings table: where a value comes from, how a bad one is reported, and that the
CLI, make help and the reference are all made from it."""

import re
from pathlib import Path

import pytest
from helpers import TEMPLATE_DIR
from smt import cli, settings
from smt.errors import BadSetting


def test_a_value_in_settings_env_is_what_a_command_gets(project_dir):
    with (project_dir / "settings.env").open("a") as file:
        file.write("INSTANCE_COUNT = 3\n")
    assert settings.load("train-local", project_dir, environ={}).instance_count == 3


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file(project_dir):
    with (project_dir / "settings.env").open("a") as file:
        file.write("MAX_RUN = 100\n")
    environ = {"MAX_RUN": "200"}
    assert settings.load("train-remote", project_dir, environ=environ).max_run == 200
    given = {"MAX_RUN": "300"}
    assert settings.load("train-remote", project_dir, given, environ).max_run == 300


def test_an_empty_value_on_the_command_line_keeps_the_default(project_dir):
    assert settings.load("train-remote", project_dir, environ={"MAX_RUN": ""}).max_run == 86400


def test_the_answers_to_the_template_are_in_settings_env(project_dir):
    values = settings.load(None, project_dir, environ={})
    assert values.project_name == "MNIST on SageMaker"
    assert values.ecr_repository == "mnist_on_sagemaker"
    assert values.base_job_name == "mnist-on-sagemaker"


def test_a_bad_value_is_one_line_naming_the_setting_and_exit_code_2(smt):
    ran = smt("train-remote", "--instance-count", "zero")
    assert ran.code == 2
    assert ran.err.strip().splitlines() == [
        "error: INSTANCE_COUNT: 'zero' is not a whole number >= 1; hosts that train one model"
        " together (local mode runs them as containers here)"
    ]


def test_a_required_setting_left_empty_says_how_to_set_it(project_dir):
    (project_dir / "settings.env").write_text(
        re.sub(r"(?m)^ROLE_ARN = .*$", "ROLE_ARN =", (project_dir / "settings.env").read_text())
    )
    with pytest.raises(
        BadSetting, match=r"^ROLE_ARN: make train-remote needs it .*ROLE_ARN=\.\.\.$"
    ):
        settings.load("train-remote", project_dir, environ={})


@pytest.mark.parametrize(
    "name, command",
    [
        ("BASE_IMAGE", "build"),
        ("S3_OUTPUT_PATH", "tune"),
        ("AWS_REGION", "logs"),
        ("AWS_ACCOUNT_ID", "train-remote"),
    ],
)
def test_a_setting_a_command_cannot_do_without_left_empty_is_one_line(
    smt, project_dir, name, command
):
    path = project_dir / "settings.env"
    path.write_text(re.sub(rf"(?m)^{name} = .*$", f"{name} =", path.read_text()))
    ran = smt(command)
    assert ran.code == 2, ran.err
    assert (
        ran.err.startswith(f"error: {name}: make {command} needs it (") and ran.err.count("\n") == 1
    )


def test_an_unknown_name_in_settings_env_is_refused_with_its_line(project_dir):
    with (project_dir / "settings.env").open("a") as file:
        file.write("INSTANCE_CONT = 2\n")
    lines = (project_dir / "settings.env").read_text().count("\n")
    with pytest.raises(BadSetting, match=f"settings.env line {lines}: INSTANCE_CONT is not a"):
        settings.load("train-local", project_dir, environ={})


def test_a_quoted_value_in_settings_env_loses_its_quotes(project_dir):
    with (project_dir / "settings.env").open("a") as file:
        file.write('HPARAMS = "epochs=2 seed=3"\n')
    assert settings.load("train-local", project_dir, environ={}).hparams == "epochs=2 seed=3"


@pytest.mark.parametrize(
    "makeflags, names",
    [
        ("", []),
        (" -- SEED=5", ["SEED"]),
        ("s -- HPARAMS=epochs=2\\ seed=3 MAX_JOBS=2", ["HPARAMS", "MAX_JOBS"]),
        ("-- VENV=/x", ["VENV"]),
    ],
)
def test_the_variables_given_on_makes_command_line_are_read_from_makeflags(makeflags, names):
    assert settings.make_overrides(makeflags) == names


def test_a_hyperparameter_given_as_a_make_variable_is_refused_with_hparams_as_the_fix():
    with pytest.raises(BadSetting, match=r'^SEED: make train-local does not read .*HPARAMS="seed='):
        settings.check_overrides(["train-local"], ["SEED"], ("epochs", "seed"))


def test_another_commands_setting_is_refused_naming_who_reads_it():
    with pytest.raises(BadSetting, match="MAX_JOBS: make train-local .* read by tune, tune-local"):
        settings.check_overrides(["train-local"], ["MAX_JOBS"], ())


@pytest.mark.parametrize("command", ["logs", "stop", "metrics", "build-remote"])
def test_the_project_name_or_job_name_given_to_a_command_that_reads_neither_is_refused(command):
    for name in ("PROJECT_NAME", "BASE_JOB_NAME"):  # make logs JOB=x PROJECT_NAME=y: no effect
        with pytest.raises(BadSetting, match=f"^{name}: make {command} does not read"):
            settings.check_overrides([command], [name], ())


def test_makes_own_settings_and_the_commands_own_pass_the_check():
    settings.check_overrides(["train-remote"], ["VENV", "INSTANCE_COUNT", "HPARAMS"], ())


def test_a_setting_passes_when_one_of_makes_goals_reads_it():
    settings.check_overrides(["data", "build"], ["DATASET", "BASE_IMAGE"], ())
    settings.check_overrides(["login", "push", "train-remote"], ["INSTANCE_COUNT"], ())
    with pytest.raises(BadSetting, match="^SEED: make data build does not read"):
        settings.check_overrides(["data", "build"], ["SEED"], ())


def test_every_setting_names_only_commands_the_cli_has_and_has_a_help():
    for setting in settings.TABLE:
        assert setting.help, setting.name
        for command in setting.commands:
            assert command.rstrip("!") in cli.COMMANDS, (setting.name, command)


def test_each_commands_options_are_exactly_the_settings_it_reads():
    parser = cli.parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in cli.COMMANDS:
        options = {o for a in commands[name]._actions for o in a.option_strings} - {"-h", "--help"}
        assert options == {s.option for s in settings.for_command(name)}, name


def test_every_command_of_the_tools_is_a_target_of_the_projects_makefile():
    makefile = (TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "Makefile").read_text()
    listed = re.search(r"^COMMANDS := ((?:.*\\\n)*.*)$", makefile, re.M)[1]
    assert set(listed.replace("\\\n", " ").split()) == set(cli.COMMANDS)


def test_make_help_lists_every_setting_with_its_default(smt):
    out = smt("help").out
    for setting in settings.TABLE:
        line = next(line for line in out.splitlines() if line.split()[:1] == [setting.name])
        assert setting.help in line and (setting.default or "") in line


def test_the_references_settings_table_is_the_tables_own():
    reference = (TEMPLATE_DIR / "tools" / "README.md").read_text()
    table = "\n".join(settings.help_lines(markdown=True))
    assert table in reference, "tools/README.md: paste `smt help --markdown` into it again"


def test_smt_runs_only_inside_a_project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from smt import project

    project.root.cache_clear()
    assert cli.main(["metrics"]) == 1
    assert "no settings.env in" in capsys.readouterr().err
    project.root.cache_clear()
    assert Path.cwd() == tmp_path
