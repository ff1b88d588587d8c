"""Answers reach the hook as data: one shaped like code is reported, never run."""

import json

import pytest
from helpers import TEMPLATE_DIR, render_hook, resolved_answers

NASTY_VALUES = {
    "every_ascii_character": "".join(map(chr, range(128))),
    "triple_quotes": '"""',
    "escaped_triple_quotes": '\\"""',
    "single_triple_quotes": "'''",
    "trailing_backslash": "abc\\",
    "only_backslashes": "\\\\\\",
    "raw_string_end": '\\"""); import os; os.system("touch PWNED")#',
    "line_separators": "a\u2028b\u2029c\r\nd",
    "html": "</script><!--",
    "jinja": "{{ 7*7 }}{% raw %}",
    "emoji": "🦆 ünïcode",
    "empty": "",
}


def test_every_character_an_answer_may_hold_comes_through_the_rendered_hook_unchanged():
    answers = {**resolved_answers(), **NASTY_VALUES}

    namespace = {"__name__": "rendered_hook"}  # defines the hook's names without running main()
    exec(compile(render_hook(answers), "pre_gen_project.py", "exec"), namespace)

    assert namespace["answers"] == answers


@pytest.mark.parametrize(
    ("field", "value", "quoted"),
    [
        pytest.param(
            "project_name",
            '"""); import os; open("{pwned}","w")#',
            '"""); import os; open("{pwned}","w")#',
            id="name-as-python",
        ),
        pytest.param(
            "aws_region",
            "__import__('os').system('touch {pwned}')",
            "__import__('os').system('touch {pwned}')",
            id="region-as-python",
        ),
        pytest.param(
            "s3_output_path", 's3://bucket/a"""b\\c\\', 'a"""b\\c\\', id="quotes-and-backslashes"
        ),
        pytest.param("instance_count", "$(touch {pwned})", "$(touch {pwned})", id="count-as-shell"),
    ],
)
def test_an_answer_shaped_like_code_is_reported_as_a_bad_answer_and_never_run(
    bake, tmp_path, field, value, quoted
):
    pwned = tmp_path / "PWNED"

    result = bake({"aws_checks": "skip", field: value.format(pwned=pwned)})

    assert result.returncode != 0
    [error] = [line for line in result.errors if line.startswith(f"ERROR: {field}: ")]
    # The value is quoted back (JSON-escaped; long ones cut short), so it arrived as text.
    assert json.dumps(quoted.format(pwned=pwned))[:60] in error
    assert "SyntaxError" not in result.output
    assert list(tmp_path.rglob("PWNED")) == []
    assert not (TEMPLATE_DIR / "PWNED").exists()
    assert result.leftovers == []


def test_an_answer_shaped_like_jinja_reaches_the_hook_as_text_and_is_not_evaluated(bake, tmp_path):
    # `--no-input key=value` answers are rendered by cookiecutter itself before any hook sees
    # them; a replay file passes them as they are, like answers typed at the prompts.
    answers = resolved_answers(aws_checks="skip")
    answers["project_name"] = "{{ 7*7 }} {{ cookiecutter.__class__ }}"
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))

    result = bake(replay_file=replay)

    assert result.returncode != 0
    [error] = result.errors
    assert error.startswith('ERROR: project_name: "{{ 7*7 }} {{ cookiecutter.__class__ }}" has ')
    assert "49" not in error
    assert result.leftovers == []
