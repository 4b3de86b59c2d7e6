"""Format-aware perturbation of canonical examples: augmentation copies, evaluation perturbations, and
the fixture dictionaries they read (`fixtures:` paths, `{lang}` placeholders, either direction)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.augment.dictionaries import dictionary_path, english_keyed, into_english
from xstilts.augment.examples import augment_examples, label, perturb_for_evaluation
from xstilts.data.fixtures import muse_dictionary
from xstilts.data.lexicon import content_word
from xstilts.errors import ConfigError
from xstilts.tasks import get_task

DATA = {"source": "fixtures"}
CHAR = {"name": "char_noise", "rate": 0.3, "seed": 0, "copies": 2}
SWITCH = {
    "name": "code_switch", "rate": 1.0, "seed": 0, "copies": 1, "mode": "copies",
    "dictionary": "fixtures:dictionaries/en-{lang}.txt", "languages": ["de"],
}  # fmt: skip
MIXED = {"name": "code_mixed", "rate": 1.0, "seed": 0, "dictionary": "fixtures:dictionaries/{lang}-en.txt"}

PAIR = {"text_a": "the big dog chases the cat .", "text_b": "the dog chases the cat .", "label": 0}
CHOICE = {"context": "the dog sees the cat .", "choices": ["the dog is big .", "a cat is old ."], "label": 1}
QA = {
    "id": "q1", "context": "the dog chases the cat in paris .", "question": "who chases the cat ?",
    "answers": {"text": ["the dog"], "answer_start": [0]},
}  # fmt: skip
TAGS = {"tokens": ["the", "dog", "chases", "the", "cat", "."], "tags": [5, 7, 15, 5, 7, 12]}


def test_fixture_dictionaries_are_muse_files_from_the_lexicon():
    lines = muse_dictionary("en", "de").splitlines()
    assert f"dog\t{content_word('dog', 'de')}" in lines or content_word("dog", "de") == "dog"
    assert all(len(line.split("\t")) == 2 for line in lines)
    reverse = muse_dictionary("de", "en").splitlines()
    assert sorted(line.split("\t")[::-1] for line in lines) == sorted(line.split("\t") for line in reverse)
    path = dictionary_path("fixtures:dictionaries/en-{lang}.txt", DATA, "ru")
    assert path.is_file() and path.name == "en-ru.txt"


def test_dictionary_paths_need_a_language_for_the_placeholder(tmp_path: Path):
    assert dictionary_path(str(tmp_path / "en-de.txt"), DATA) == tmp_path / "en-de.txt"
    with pytest.raises(ConfigError, match="languages"):
        english_keyed("fixtures:dictionaries/en-{lang}.txt", DATA, None)
    with pytest.raises(ConfigError, match="does not exist"):
        english_keyed(str(tmp_path / "en-xx.txt"), DATA, None)


def test_into_english_reads_either_direction_the_same():
    forward = into_english("fixtures:dictionaries/{lang}-en.txt", DATA, "es")
    inverted = into_english("fixtures:dictionaries/en-es.txt", DATA, "es")
    assert forward == inverted and forward
    assert into_english("fixtures:dictionaries/{lang}-en.txt", DATA, "sw") is None  # no file: not applicable


@pytest.mark.parametrize(
    ("task", "example", "changed", "kept"),
    [
        ("mnli", PAIR, ("text_a", "text_b"), ("label",)),
        ("hellaswag", CHOICE, ("context", "choices"), ("label",)),
        ("squad", QA, ("question",), ("context", "answers", "id")),
        ("udpos", TAGS, ("tokens",), ("tags",)),
    ],
)
def test_augmentation_appends_seeded_copies_per_format(task, example, changed, kept):
    out = augment_examples(get_task(task), [example], [CHAR, SWITCH], DATA)
    assert out[0] == example and len(out) == 1 + CHAR["copies"] + SWITCH["copies"]
    for copy in out[1:]:
        assert any(copy[f] != example[f] for f in changed), copy
        assert all(copy[f] == example[f] for f in kept)
    assert out[1] != out[2], "two copies of one spec draw different noise"
    assert augment_examples(get_task(task), [example], [CHAR, SWITCH], DATA) == out  # seeded
    reseeded = augment_examples(get_task(task), [example], [{**CHAR, "seed": 1}], DATA)
    assert reseeded[1:] != out[1:3]
    if task == "udpos":
        assert all(len(c["tokens"]) == len(c["tags"]) for c in out)


def test_code_switching_uses_the_dictionary_languages():
    copy = augment_examples(get_task("mnli"), [PAIR], [SWITCH], DATA)[1]
    expected = " ".join(content_word(w, "de") if w not in ("the", ".") else w for w in PAIR["text_a"].split())
    assert copy["text_a"] == expected.replace("the ", "der ")


def test_qa_answers_stay_valid_and_tagging_refuses_word_perturbations():
    out = augment_examples(get_task("squad"), [QA], [CHAR], DATA)
    for copy in out:
        start, text = copy["answers"]["answer_start"][0], copy["answers"]["text"][0]
        assert copy["context"][start : start + len(text)] == text
    with pytest.raises(ConfigError, match="tagging"):
        augment_examples(get_task("udpos"), [TAGS], [{"name": "word_perturb", "rate": 0.5}], DATA)


def test_evaluation_perturbations_and_when_they_do_not_apply():
    xnli = get_task("xnli")
    german = {"text_a": "der hund sieht die katze .", "text_b": None, "label": 0}
    mixed, why = perturb_for_evaluation(xnli, [german], MIXED, DATA, "de")
    assert why is None and mixed[0]["text_a"] == "the hund sieht die katze ."  # only dictionary words change
    dog = content_word("dog", "de")
    mixed, _ = perturb_for_evaluation(xnli, [{**german, "text_a": f"der {dog} ."}], MIXED, DATA, "de")
    assert mixed[0]["text_a"] == "the dog ."
    assert perturb_for_evaluation(xnli, [german], MIXED, DATA, "en") == (
        None,
        "no code-mixing of English text with English",
    )
    word = {"name": "word_perturb", "rate": 0.1}
    none, why = perturb_for_evaluation(get_task("udpos"), [TAGS], word, DATA, "de")
    assert none is None and why is not None and "tokens" in why
    tatoeba = {"source": "der hund .", "target": "the dog .", "source_id": "1", "target_id": "1"}
    noisy, _ = perturb_for_evaluation(get_task("tatoeba"), [tatoeba], {**CHAR, "rate": 1.0}, DATA, "de")
    assert noisy[0]["target"] == "the dog ." and noisy[0]["source"] != "der hund ."
    assert label({"name": "char_noise", "rate": 0.05}) == "char_noise-0.05"


def test_a_sweep_augmenting_through_a_lang_placeholder_must_name_the_languages():
    from xstilts.spec import parse_sweep

    sweep = {
        "name": "s", "data": {"source": "fixtures"}, "encoders": [{"name": "tiny", "model": "tiny"}],
        "targets": ["pawsx"],
        "intermediate": [{"task": "mnli", "augment": [{**SWITCH, "languages": None}]}],
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"intermediate\[0\].*languages"):
        parse_sweep(sweep, "s.yaml")
    sweep["intermediate"][0]["augment"][0]["languages"] = ["de"]
    assert parse_sweep(sweep, "s.yaml").intermediate[0].augment[0].languages == ["de"]
