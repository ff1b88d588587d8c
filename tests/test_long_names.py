"""A long project name in any script bakes: the slug made from it is capped, whole words
first, and stays a valid slug (issue 10: 110 Japanese characters made a folder name longer
than 255 bytes, and cookiecutter crashed creating it before any hook could speak)."""

import json

import pytest
from helpers import resolved_answers
from slugify import slugify

from sm_template.template import slug_max_length
from sm_template.validation import PROJECT_SLUG, validate

LONG_NAMES = {
    "japanese-110": (
        "機械学習による手書き数字認識のための畳み込みニューラルネットワークモデルを"
        "アマゾンのセージメーカーで訓練し評価して本番環境に配置するための完全な"
        "プロジェクトテンプレートと自動化された継続的インテグレーションの設定ですよね"
    ),
    "cyrillic": (
        "Классификатор рукописных цифр на сверточной нейронной сети для обучения в SageMaker"
    ),
    "greek": "Ταξινομητής χειρόγραφων ψηφίων με συνελικτικό νευρωνικό δίκτυο στο SageMaker",
    "latin": (
        "A very long project name that keeps going well past any folder name a person "
        "would want to type twice or read in a prompt"
    ),
    "one-long-word": (
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft"
    ),
}


def test_the_japanese_name_is_110_characters_and_would_make_a_slug_over_255_bytes():
    name = LONG_NAMES["japanese-110"]

    assert len(name) == 110
    assert len(slugify(name, separator="_").encode()) > 255


def test_the_slug_cap_is_set_and_keeps_a_training_job_name_whole():
    # A job name is BASE_JOB_NAME (the slug), a random part and the SDK's timestamp: with a
    # slug of 40 it fits SageMaker's 63 whole (tests/tools/test_job_settings.py).
    assert slug_max_length() is not None and 20 <= slug_max_length() <= 40


@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_a_long_name_in_any_script_bakes_with_a_valid_slug_within_the_cap(bake, name):
    result = bake({"aws_checks": "skip", "project_name": name})

    assert result.returncode == 0, result.output[-500:]
    cap = slug_max_length()
    assert len(slugify(name, separator="_")) > cap  # the cap is what this test is about
    [folder] = result.leftovers
    assert 0 < len(folder) <= cap
    assert PROJECT_SLUG.fullmatch(folder) and not folder.endswith("_")
    saved = json.loads((result.output_dir / folder / ".cookiecutter.json").read_text())
    assert saved["project_slug"] == folder
    assert saved["ecr_repository"] == folder
    assert saved["s3_output_path"].endswith(f"/projects/{folder}")
    assert result.errors == [] and result.warnings == []


@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_the_capped_slug_and_what_is_derived_from_it_pass_every_check(name):
    answers = resolved_answers(project_name=name)

    assert validate(answers) == ([], [])


def test_the_cap_keeps_the_most_whole_words_that_fit_in_their_order():
    name = LONG_NAMES["latin"]
    words = slugify(name, separator="_").split("_")
    fitting = [k for k in range(1, len(words)) if len("_".join(words[:k])) <= slug_max_length()]

    assert resolved_answers(project_name=name)["project_slug"] == "_".join(words[: max(fitting)])


def test_a_name_of_one_word_longer_than_the_cap_is_cut_at_the_cap():
    name = LONG_NAMES["one-long-word"]

    slug = resolved_answers(project_name=name)["project_slug"]

    assert slug == slugify(name, separator="_")[: slug_max_length()]
