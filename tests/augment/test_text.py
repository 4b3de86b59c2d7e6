"""Text perturbations: exact outputs for fixed seeds, determinism, identities, and invariants."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xstilts.augment import (
    PERTURBATIONS,
    apply_to_example,
    char_noise,
    code_mixed,
    code_switch,
    example_seed,
    invert_dictionary,
    load_dictionary,
    merge_dictionaries,
    perturb,
    perturb_tokens,
    word_perturb,
)
from xstilts.augment.text import match_case, split_affixes, split_whitespace, typo_character

SENTENCE = "The quick brown fox jumps over the lazy dog."
DICTIONARY = {
    "the": {"de": ["die", "der"], "es": ["el"]},
    "dog": {"de": ["Hund"], "es": ["perro"]},
    "fox": {"de": ["Fuchs"], "es": ["zorro"]},
    "quick": {"fr": ["rapide"]},
    "ice": {"es": ["hielo"]},
    "lazy": {"es": ["muy perezoso"]},
}
MUSE_EN_DE = "the die\nthe der\ndog Hund\nfox\tFuchs\nice cream\tSpeiseeis\n\nthe die\n"


@pytest.fixture
def muse_file(tmp_path: Path) -> Path:
    path = tmp_path / "en-de.0-5000.txt"
    path.write_text(MUSE_EN_DE, encoding="utf-8")
    return path


def rng(seed: int = 0) -> random.Random:
    return random.Random(seed)


# --------------------------------------------------------------------------- exact behaviour


def test_char_noise_exact_output_for_a_fixed_seed() -> None:
    # substitute h->y, swap r/o, delete o, substitute v->b, swap l/a, delete o
    assert perturb(SENTENCE, "char_noise", seed=0, rate=0.2) == "Tye quick brwon fx jumps ober the alzy dg."


def test_char_noise_each_operation_on_its_own() -> None:
    text = "abcdef ghij"  # with this rng, positions a, e/f, g/h and i are hit
    assert char_noise(text, rng(3), rate=0.3, ops=("swap",)) == "bacdeg hgji"  # f is last: substituted
    assert char_noise(text, rng(3), rate=0.3, ops=("delete",)) == "bcdf ghj"
    assert char_noise(text, rng(3), rate=0.3, ops=("insert",)) == "asbcdef ghikj"
    assert char_noise(text, rng(3), rate=0.3, ops=("substitute",)) == "sbcdef ghkj"


def test_char_noise_substitutes_keyboard_neighbours_and_keeps_case() -> None:
    assert char_noise("Q", rng(0), rate=1.0, ops=("substitute",)) in {"W", "A"}
    assert {typo_character("f", rng(s)) for s in range(50)} == set("rtdgcv")  # staggered QWERTY
    assert {typo_character("5", rng(s)) for s in range(50)} == set("46")


def test_char_noise_stays_in_the_script_of_non_latin_text() -> None:
    out = char_noise("привет мир", rng(0), rate=1.0, ops=("substitute",))
    assert out == "въяёзѓ фцч"
    assert all(unicodedata.name(c).startswith("CYRILLIC SMALL") for c in out.replace(" ", ""))
    hindi = char_noise("नमस्ते", rng(0), rate=1.0, ops=("substitute",))
    assert hindi == "ऊधश्थे"  # letters replaced by Devanagari letters; the virama and vowel sign stay
    mixed = char_noise("你好 세계 Ελλάδα 123 ١٢٣", rng(0), rate=1.0, ops=("substitute",))
    assert mixed == "佅妑 셖겵 Ιπςςϑί 212 ٤٤٩"


def test_char_noise_never_empties_a_word_or_touches_punctuation_alone() -> None:
    assert char_noise("a b c", rng(0), rate=1.0, ops=("delete",)) == "q n v"  # substituted instead
    assert char_noise("... !!! ---", rng(0), rate=1.0) == "... !!! ---"


def test_word_perturb_exact_output_and_each_operation() -> None:
    text = "one two three four five"
    assert perturb(text, "word_perturb", seed=0, rate=0.5) == "two one three four five"
    # with rng(1), words one, two and four are hit
    assert word_perturb(text, rng(1), rate=0.5, ops=("drop",)) == "three five"
    assert word_perturb(text, rng(1), rate=0.5, ops=("repeat",)) == "one one two two three four four five"
    assert word_perturb(text, rng(1), rate=0.5, ops=("swap",)) == "two one four three five"


def test_word_perturb_keeps_whitespace_around_untouched_words() -> None:
    assert word_perturb("  a\tb  c\n", rng(0), rate=1.0, ops=("swap",)) == "  b\ta  c\n"
    assert word_perturb("  a\tb  c\n", rng(0), rate=1.0, ops=("drop",)) == "  c\n"


def test_word_perturb_never_drops_every_word() -> None:
    assert word_perturb("alone", rng(0), rate=1.0, ops=("drop",)) == "alone"
    assert word_perturb("a b c", rng(0), rate=1.0, ops=("drop",)) == "c"


def test_code_switch_exact_output_preserves_case_and_punctuation() -> None:
    text = 'THE quick brown Fox jumps over "the" lazy dog.'
    out = code_switch(text, rng(0), dictionary=DICTIONARY, rate=1.0)
    assert out == 'EL rapide brown Zorro jumps over "die" muy perezoso Hund.'  # a language per word
    out_de = code_switch(text, rng(0), dictionary=DICTIONARY, rate=1.0, languages=["de"])
    assert out_de == 'DIE quick brown Fuchs jumps over "der" lazy Hund.'


def test_code_switch_rate_half_switches_some_words() -> None:
    outs = [
        perturb(SENTENCE, "code_switch", seed=s, dictionary=DICTIONARY, rate=0.5, languages=["de"])
        for s in (1, 5)
    ]
    assert outs == [
        "Die quick brown fox jumps over der lazy dog.",
        "The quick brown Fuchs jumps over der lazy dog.",
    ]


def test_code_switch_single_word_skips_phrase_translations() -> None:
    out = code_switch("lazy", rng(0), dictionary=DICTIONARY, rate=1.0, single_word=True)
    assert out == "lazy"


def test_code_switch_reads_a_muse_file_path(muse_file: Path) -> None:
    out = code_switch("The dog and the fox.", rng(0), dictionary=muse_file, rate=1.0)
    assert out.split()[1] == "Hund" and out.endswith("Fuchs.")


def test_code_mixed_puts_english_into_a_target_language_sentence() -> None:
    german_to_english = invert_dictionary(DICTIONARY, "de")
    assert german_to_english["hund"] == {"en": ["dog"]}
    out = code_mixed("Der Hund sah die Katze.", rng(0), dictionary=german_to_english, rate=1.0)
    assert out == "The Dog sah the Katze."


def test_match_case_and_split_affixes() -> None:
    assert match_case("hund", "DOG") == "HUND"
    assert match_case("hund", "Dog") == "Hund"
    assert match_case("Hund", "dog") == "Hund"
    assert match_case("hund", "I") == "Hund"
    assert split_affixes('("Hello"),') == ('("', "Hello", '"),')
    assert split_affixes("नमस्ते।") == ("", "नमस्ते", "।")  # the trailing vowel sign stays in the core
    assert split_affixes("...") == ("...", "", "")


# --------------------------------------------------------------------------- dictionaries


def test_load_dictionary_muse_format(muse_file: Path) -> None:
    assert load_dictionary(muse_file) == {
        "the": {"de": ["die", "der"]},
        "dog": {"de": ["Hund"]},
        "fox": {"de": ["Fuchs"]},
        "ice cream": {"de": ["Speiseeis"]},
    }


def test_load_dictionary_needs_a_language_when_the_name_does_not_say(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("cat Katze\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lang="):
        load_dictionary(path)
    assert load_dictionary(path, lang="de") == {"cat": {"de": ["Katze"]}}


def test_load_dictionary_rejects_malformed_lines_with_their_number(tmp_path: Path) -> None:
    path = tmp_path / "en-fr.txt"
    path.write_text("cat chat\nthree words here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"en-fr.txt:2"):
        load_dictionary(path)


def test_merge_dictionaries_unions_languages_and_translations() -> None:
    merged = merge_dictionaries(
        {"cat": {"de": ["Katze"]}}, {"cat": {"fr": ["chat"], "de": ["Katze", "Kater"]}}
    )
    assert merged == {"cat": {"de": ["Katze", "Kater"], "fr": ["chat"]}}


# --------------------------------------------------------------------------- seeding and helpers


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("char_noise", {"rate": 0.3}),
        ("word_perturb", {"rate": 0.3}),
        ("code_switch", {"rate": 0.5, "dictionary": DICTIONARY}),
        ("code_mixed", {"rate": 0.5, "dictionary": invert_dictionary(DICTIONARY, "de")}),
    ],
)
def test_same_seed_same_output_other_seeds_differ(name: str, params: dict) -> None:
    text = SENTENCE if name != "code_mixed" else "Der Hund und der Fuchs sehen die Katze und die Hunde."
    runs = [perturb(text, name, seed=s, **params) for s in range(8)]
    assert runs == [perturb(text, name, seed=s, **params) for s in range(8)]
    assert len(set(runs)) > 1


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_rate_zero_is_identity(name: str) -> None:
    params = {"rate": 0.0}
    if name in ("code_switch", "code_mixed"):
        params["dictionary"] = DICTIONARY
    text = "  The   dog,\tTHE fox!\n"
    assert perturb(text, name, seed=7, **params) == text


def test_example_seed_is_stable_and_depends_on_text_and_salt() -> None:
    assert example_seed(0, "abc") == example_seed(0, "abc")
    assert example_seed(0, "abc") == 17122834912619395450
    assert example_seed(0, "abc") != example_seed(0, "abd")
    assert example_seed(0, "abc") != example_seed(1, "abc")
    assert example_seed(0, "abc", "x") != example_seed(0, "abc")


def test_perturb_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="char_noise"):
        perturb("x", "typo", seed=0)


def test_bad_rate_and_ops_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        char_noise("x", rng(), rate=1.5)
    with pytest.raises(ValueError, match="ops"):
        word_perturb("x", rng(), ops=("shuffle",))


def test_apply_to_example_perturbs_only_the_named_fields_and_lists_elementwise() -> None:
    example = {"premise": SENTENCE, "hypothesis": SENTENCE, "endings": ["a dog", "a fox"], "label": 1}
    out = apply_to_example(example, ["premise", "endings"], "char_noise", seed=0, rate=0.5)
    assert out["hypothesis"] == SENTENCE and out["label"] == 1
    assert out["premise"] != SENTENCE
    assert isinstance(out["endings"], list) and len(out["endings"]) == 2
    assert example["premise"] == SENTENCE  # the input is not modified
    # fields get independent noise even when their texts are equal
    both = apply_to_example(example, ["premise", "hypothesis"], "char_noise", seed=0, rate=0.5)
    assert both["premise"] != both["hypothesis"]
    assert apply_to_example(example, ["premise"], "char_noise", seed=0, rate=0.5) == out | {
        "endings": example["endings"]
    }


def test_apply_to_example_rejects_non_text_fields() -> None:
    with pytest.raises(TypeError, match="label"):
        apply_to_example({"label": 1}, ["label"], "char_noise", seed=0)


def test_apply_to_example_with_tags_keeps_alignment() -> None:
    example = {"tokens": ["The", "dog", "barks", "."], "ner_tags": [0, 1, 0, 0]}
    out = apply_to_example(example, ["tokens"], "code_switch", seed=0, tags_field="ner_tags",
                           dictionary=DICTIONARY, rate=1.0, languages=["de"])  # fmt: skip
    assert out["ner_tags"] == [0, 1, 0, 0]
    assert out["tokens"][1] == "Hund" and len(out["tokens"]) == 4
    with pytest.raises(ValueError, match="number of tokens"):
        apply_to_example(example, ["tokens"], "word_perturb", seed=0, tags_field="ner_tags")


# --------------------------------------------------------------------------- token tagging


def test_perturb_tokens_char_noise_and_code_switch_keep_alignment() -> None:
    tokens, tags = ["The", "lazy", "dog", "(", "barks", ")"], ["O", "O", "B-ANI", "O", "O", "O"]
    noised, noised_tags = perturb_tokens(tokens, tags, "char_noise", seed=0, rate=0.5)
    assert len(noised) == len(tokens) and noised_tags == tags and noised != tokens
    switched, _ = perturb_tokens(tokens, tags, "code_switch", seed=0, dictionary=DICTIONARY, rate=1.0)
    assert len(switched) == len(tokens)
    assert switched[1] == "lazy"  # "muy perezoso" would add a token, so it is skipped
    assert switched[2] in {"Hund", "perro"}


def test_perturb_tokens_refuses_count_changing_perturbations_and_bad_lengths() -> None:
    with pytest.raises(ValueError, match="misalign"):
        perturb_tokens(["a", "b"], [0, 0], "word_perturb", seed=0)
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        perturb_tokens(["a", "b"], [0], "char_noise", seed=0)


# --------------------------------------------------------------------------- properties

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RATES = st.floats(min_value=0.0, max_value=1.0)
# arbitrary unicode, with extra (including non-ASCII) whitespace so that words and runs are common
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(" \t\n\u3000\xa0\u2028"), st.sampled_from("ab,.")))


def whitespace_skeleton(text: str) -> list[str]:
    return [chunk for is_space, chunk in split_whitespace(text) if is_space]


@FAST
@given(text=TEXT, seed=st.integers(0, 2**32), rate=RATES)
def test_char_noise_preserves_whitespace_and_token_count(text: str, seed: int, rate: float) -> None:
    out = perturb(text, "char_noise", seed=seed, rate=rate)
    assert whitespace_skeleton(out) == whitespace_skeleton(text)
    assert len(out.split()) == len(text.split())
    assert (out[:1].isspace()) == (text[:1].isspace())


@FAST
@given(text=TEXT, seed=st.integers(0, 2**32), rate=RATES)
def test_word_perturb_never_crashes_and_only_reuses_input_words(text: str, seed: int, rate: float) -> None:
    out = perturb(text, "word_perturb", seed=seed, rate=rate)
    assert set(out.split()) <= set(text.split())
    assert bool(out.split()) == bool(text.split())
    swapped = perturb(text, "word_perturb", seed=seed, rate=rate, ops=("swap",))
    assert sorted(swapped.split()) == sorted(text.split())


@FAST
@given(
    text=TEXT,
    seed=st.integers(0, 2**32),
    rate=RATES,
    words=st.dictionaries(st.text(min_size=1, max_size=5), st.text(min_size=1, max_size=8), max_size=5),
)
def test_code_switch_never_crashes_and_keeps_whitespace(
    text: str, seed: int, rate: float, words: dict
) -> None:
    dictionary = {w: {"xx": [t]} for w, t in words.items()}
    for name in ("code_switch", "code_mixed"):
        out = perturb(
            text, name, seed=seed, rate=rate, dictionary=dictionary, languages=["xx"], single_word=True
        )
        if not any(any(c.isspace() for c in t) for t in words.values()):
            assert whitespace_skeleton(out) == whitespace_skeleton(text)


@FAST
@given(
    tokens=st.lists(st.text(max_size=6), max_size=8),
    seed=st.integers(0, 2**32),
    rate=RATES,
)
def test_perturb_tokens_keeps_one_token_per_tag(tokens: list[str], seed: int, rate: float) -> None:
    tags = list(range(len(tokens)))
    for name, params in (("char_noise", {}), ("code_switch", {"dictionary": DICTIONARY})):
        out, out_tags = perturb_tokens(tokens, tags, name, seed=seed, rate=rate, **params)
        assert len(out) == len(tokens) and out_tags == tags
        assert [bool(t.strip()) for t in out] == [bool(t.strip()) for t in tokens]
