"""Deterministic, seeded text perturbations for augmentation and robustness evaluation.

Every perturbation is a pure function ``(text, rng, **params) -> str``: all randomness comes from the
``random.Random`` passed in, so the same text, rng state and params always give the same output.
``perturb`` and ``apply_to_example`` derive that rng from a user seed combined with a stable hash of the
text (and the perturbation and field names), so each example gets its own noise, reproducible across
processes (no use of the salted built-in ``hash``). Same-script substitutions read ``unicodedata``, so a
Python with newer Unicode tables may pick differently for rare scripts.

Dictionaries are ``{word: {lang: [translation, ...]}}``. ``code_switch`` reads them from the key side
(English training text -> other languages); ``code_mixed`` is the evaluation-time reverse (a
target-language sentence with words swapped for English ones), so it wants a dictionary keyed by
target-language words: load a MUSE ``de-en`` file, or ``invert_dictionary`` an English-keyed one.

Token-tagging examples (``perturb_tokens``) only admit perturbations that keep one output token per
input token, so the tags stay aligned.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any

Dictionary = Mapping[str, Mapping[str, Sequence[str]]]
Perturbation = Callable[..., str]

CHAR_OPS = ("swap", "delete", "insert", "substitute")
WORD_OPS = ("drop", "repeat", "swap")

_QWERTY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_QWERTY_OFFSETS = (0.0, 0.5, 0.75, 1.25)  # horizontal stagger of each row, in key widths
_SAME_SCRIPT_WINDOW = 32
_MUSE_LANGS = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})\b")


# --------------------------------------------------------------------------- seeding


def example_seed(seed: int, text: str, *salt: str) -> int:
    """A 64-bit seed from ``seed``, the text and optional salt strings; stable across processes."""
    h = hashlib.blake2b(digest_size=8)
    for part in (str(seed), *salt, text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "big")


def example_rng(seed: int, text: str, *salt: str) -> random.Random:
    return random.Random(example_seed(seed, text, *salt))


# --------------------------------------------------------------------------- splitting


def split_whitespace(text: str) -> list[tuple[bool, str]]:
    """Runs of ``(is_whitespace, chunk)`` covering ``text`` exactly, using ``str.isspace``."""
    return [(is_space, "".join(chunk)) for is_space, chunk in groupby(text, key=str.isspace)]


def _split_words(text: str) -> tuple[str, list[str], list[str]]:
    """``text == leading + words[0] + seps[0] + words[1] + seps[1] + ...``; the last sep may be empty."""
    runs = split_whitespace(text)
    leading = runs.pop(0)[1] if runs and runs[0][0] else ""
    words, seps = [], []
    for is_space, chunk in runs:
        if is_space:
            seps[-1] = chunk
        else:
            words.append(chunk)
            seps.append("")
    return leading, words, seps


def _join_words(leading: str, pairs: Sequence[tuple[str, str]]) -> str:
    return leading + "".join(word + sep for word, sep in pairs)


# --------------------------------------------------------------------------- character noise


@lru_cache(maxsize=1)
def _keyboard_neighbours() -> dict[str, str]:
    """Adjacent keys on a staggered QWERTY layout (letters to letters, digits to digits)."""
    x = {ch: (r, c + _QWERTY_OFFSETS[r]) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}
    neighbours = {}
    for ch, (r, cx) in x.items():
        near = [
            other
            for other, (r2, cx2) in x.items()
            if other != ch
            and other.isalpha() == ch.isalpha()
            and ((r2 == r and abs(cx2 - cx) == 1) or (abs(r2 - r) == 1 and abs(cx2 - cx) <= 0.75))
        ]
        neighbours[ch] = "".join(near)
    return neighbours


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _same_kind(a: str, b: str) -> bool:
    return (a.isalpha(), a.isdigit(), a.isupper(), a.islower()) == (
        b.isalpha(),
        b.isdigit(),
        b.isupper(),
        b.islower(),
    )


@lru_cache(maxsize=4096)
def _same_script_characters(ch: str) -> str:
    """Characters near ``ch`` in code-point order, of the same script (first word of the Unicode name)
    and the same kind (letter or digit, same case)."""
    script = _script(ch)
    if not script:
        return ""
    cp = ord(ch)
    lo, hi = max(0, cp - _SAME_SCRIPT_WINDOW), min(0x10FFFF, cp + _SAME_SCRIPT_WINDOW)
    candidates = (chr(c) for c in range(lo, hi + 1) if c != cp and not 0xD800 <= c <= 0xDFFF)
    return "".join(o for o in candidates if o.isalnum() and _same_kind(o, ch) and _script(o) == script)


def typo_character(ch: str, rng: random.Random) -> str:
    """A mistyping of ``ch``: a QWERTY neighbour for ASCII letters/digits, else a same-script character."""
    lower = ch.lower()
    near = _keyboard_neighbours().get(lower) if ch.isascii() else None
    if near:
        out = rng.choice(near)
        return out.upper() if ch.isupper() else out
    pool = _same_script_characters(ch)
    return rng.choice(pool) if pool else ch


def _noise_word(word: str, rng: random.Random, rate: float, ops: Sequence[str]) -> str:
    chars, out, i = list(word), [], 0
    while i < len(chars):
        ch = chars[i]
        if not (ch.isalnum() and rng.random() < rate):
            out.append(ch)
            i += 1
            continue
        op = rng.choice(ops)
        if op == "swap" and i + 1 < len(chars):
            out += [chars[i + 1], ch]
            i += 2
            continue
        if op == "delete" and len(out) + len(chars) - i - 1 > 0:
            i += 1
            continue
        if op == "insert":
            out += [ch, typo_character(ch, rng)]
        else:  # substitute, and the fallback for a swap at the end or a delete that would empty the word
            out.append(typo_character(ch, rng))
        i += 1
    return "".join(out)


def char_noise(text: str, rng: random.Random, *, rate: float = 0.05, ops: Sequence[str] = CHAR_OPS) -> str:
    """Typo-style noise: each letter/digit is hit with probability ``rate`` by one of ``ops``.

    Whitespace is never touched and no word is emptied, so ``text.split()`` keeps its length and the
    whitespace runs stay byte-identical. Punctuation and symbols are never chosen, but a swap may move one.
    """
    _check_rate(rate)
    _check_ops(ops, CHAR_OPS)
    runs = split_whitespace(text)
    return "".join(chunk if is_space else _noise_word(chunk, rng, rate, ops) for is_space, chunk in runs)


# --------------------------------------------------------------------------- word perturbations


def word_perturb(text: str, rng: random.Random, *, rate: float = 0.1, ops: Sequence[str] = WORD_OPS) -> str:
    """Each whitespace-separated word is, with probability ``rate``, dropped, repeated or swapped with the
    next one.

    Whitespace around untouched words is kept; a repeat is joined by one space. At least one word survives.
    """
    _check_rate(rate)
    _check_ops(ops, WORD_OPS)
    leading, words, seps = _split_words(text)
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word, sep = words[i], seps[i]
        if rng.random() >= rate:
            out.append((word, sep))
            i += 1
            continue
        op = rng.choice(ops)
        if op == "swap" and i + 1 < len(words):
            out += [(words[i + 1], sep), (word, seps[i + 1])]
            i += 2
            continue
        if op == "drop" and len(out) + len(words) - i - 1 > 0:
            if i == len(words) - 1:  # keep the trailing whitespace, lose the one before the dropped word
                out[-1] = (out[-1][0], sep)
        elif op == "repeat":
            out += [(word, " "), (word, sep)]
        else:
            out.append((word, sep))
        i += 1
    return _join_words(leading, out)


# --------------------------------------------------------------------------- dictionaries


def load_dictionary(path: str | os.PathLike[str], lang: str | None = None) -> dict[str, dict[str, list[str]]]:
    """Read a MUSE-style bilingual dictionary: one ``source<space or tab>translation`` pair per line.

    Repeated sources collect several translations (order kept, duplicates dropped). With a tab in the
    line, the two sides may contain spaces (phrases). Source words are lower-cased. ``lang`` names the
    target language; if omitted it is read from a MUSE file name such as ``en-de.0-5000.txt``.
    """
    path = Path(path)
    target = lang or _target_from_filename(path)
    entries: dict[str, dict[str, list[str]]] = {}
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            if len(fields) != 2 or not all(fields):
                raise ValueError(f"{path}:{lineno}: expected 'word translation', got {line!r}")
            translations = entries.setdefault(fields[0].lower(), {}).setdefault(target, [])
            if fields[1] not in translations:
                translations.append(fields[1])
    return entries


def _target_from_filename(path: Path) -> str:
    match = _MUSE_LANGS.match(path.name)
    if not match:
        raise ValueError(
            f"cannot tell the target language of {path}: pass lang=..., or name the file like MUSE's "
            "'<src>-<tgt>.txt' (e.g. en-de.0-5000.txt)"
        )
    return match.group(2)


def merge_dictionaries(*dictionaries: Dictionary) -> dict[str, dict[str, list[str]]]:
    """Union of several dictionaries (e.g. one MUSE file per target language)."""
    merged: dict[str, dict[str, list[str]]] = {}
    for dictionary in dictionaries:
        for word, by_lang in dictionary.items():
            for lang, translations in by_lang.items():
                into = merged.setdefault(word, {}).setdefault(lang, [])
                into.extend(t for t in translations if t not in into)
    return merged


def invert_dictionary(dictionary: Dictionary, lang: str, into: str = "en") -> dict[str, dict[str, list[str]]]:
    """``{en_word: {lang: [w, ...]}}`` -> ``{w: {into: [en_word, ...]}}`` (keys lower-cased).

    Builds the target-language-keyed dictionary that ``code_mixed`` wants from an English-keyed one.
    """
    inverted: dict[str, dict[str, list[str]]] = {}
    for word, by_lang in dictionary.items():
        for translation in by_lang.get(lang, ()):
            sources = inverted.setdefault(translation.lower(), {}).setdefault(into, [])
            if word not in sources:
                sources.append(word)
    return inverted


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> dict[str, dict[str, list[str]]]:
    return load_dictionary(path)


def _resolve_dictionary(dictionary: Dictionary | str | os.PathLike[str]) -> Dictionary:
    if isinstance(dictionary, (str, os.PathLike)):
        stat = os.stat(dictionary)
        return _load_cached(os.fspath(dictionary), stat.st_mtime_ns, stat.st_size)
    return dictionary


# --------------------------------------------------------------------------- code-switching


def match_case(translation: str, original: str) -> str:
    """Give ``translation`` the capitalisation pattern of ``original`` (ALL CAPS, Capitalised, or as is)."""
    letters = [c for c in original if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return translation.upper()
    if letters and original[0].isupper():
        return translation[:1].upper() + translation[1:]
    return translation


def _is_affix(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def split_affixes(word: str) -> tuple[str, str, str]:
    """``("(", "Hello", "),")`` for ``"(Hello),"``: punctuation and symbols around a word's core.

    Combining marks stay in the core (a regex ``\\W`` would strip Devanagari vowel signs, for one).
    """
    start, end = 0, len(word)
    while start < end and _is_affix(word[start]):
        start += 1
    while end > start and _is_affix(word[end - 1]):
        end -= 1
    return word[:start], word[start:end], word[end:]


def _lookup(dictionary: Dictionary, word: str) -> Mapping[str, Sequence[str]] | None:
    return dictionary.get(word) or dictionary.get(word.lower())


def _switch_word(
    word: str,
    rng: random.Random,
    dictionary: Dictionary,
    rate: float,
    languages: Sequence[str] | None,
    single_word: bool,
) -> str:
    """With probability ``rate``, translate the core of ``word``, keeping the punctuation around it."""
    prefix, core, suffix = split_affixes(word)
    entry = _lookup(dictionary, core) if core else None
    if not entry:
        return word
    options = [
        (lang, t)
        for lang, translations in entry.items()
        if languages is None or lang in languages
        for t in translations
        if _usable(t, single_word)
    ]
    if not options or rng.random() >= rate:
        return word
    chosen_lang = rng.choice(sorted({lang for lang, _ in options}))
    translation = rng.choice([t for lang, t in options if lang == chosen_lang])
    return prefix + match_case(translation, core) + suffix


def _usable(translation: str, single_word: bool) -> bool:
    return bool(translation) and not (single_word and any(c.isspace() for c in translation))


def _switch_word_language_first(
    word: str,
    rng: random.Random,
    dictionary: Dictionary,
    rate: float,
    languages: Sequence[str],
    single_word: bool,
) -> str:
    """CoSDA-ML's order: the word is selected with probability ``rate``, then a language is drawn
    uniformly from ``languages``, then the word is looked up in that language's dictionary; a word the
    language has no translation for stays as it is."""
    if rng.random() >= rate:
        return word
    lang = rng.choice(languages)
    prefix, core, suffix = split_affixes(word)
    entry = _lookup(dictionary, core) if core else None
    translations = [t for t in (entry or {}).get(lang, ()) if _usable(t, single_word)]
    if not translations:
        return word
    return prefix + match_case(rng.choice(translations), core) + suffix


def dictionary_languages(dictionary: Dictionary) -> list[str]:
    """Every language a dictionary translates into, sorted."""
    return sorted({lang for entry in dictionary.values() for lang in entry})


def code_switch(
    text: str,
    rng: random.Random,
    *,
    dictionary: Dictionary | str | os.PathLike[str],
    rate: float = 0.3,
    languages: Sequence[str] | None = None,
    single_word: bool = False,
    language_first: bool = False,
    sentence_rate: float = 1.0,
) -> str:
    """Dictionary code-switching: each word found in ``dictionary`` is, with probability ``rate``,
    replaced by a translation into one of ``languages`` (all the entry's languages by default; the
    language is drawn first, then the translation, so languages with long lists are not favoured).

    ``language_first`` (CoSDA-ML, Qin et al. 2020): every word is selected with probability ``rate`` and
    given a language drawn from ``languages`` (default: all of the dictionary's) before the lookup, so a
    word missing from that language's dictionary stays English. ``sentence_rate``: the probability that
    the text is switched at all (CoSDA-ML's sentence-level ratio).

    Leading/trailing punctuation and the capitalisation pattern of the word are kept; whitespace is
    untouched. A phrase translation (``single_word=False``) can change the word count.
    A path (str or PathLike) is loaded with ``load_dictionary`` and cached by path and mtime.
    """
    _check_rate(rate)
    _check_rate(sentence_rate)
    lookup = _resolve_dictionary(dictionary)
    if sentence_rate < 1.0 and rng.random() >= sentence_rate:
        return text
    if language_first:
        pool = list(languages) if languages else dictionary_languages(lookup)
        if not pool:
            return text
        return "".join(
            chunk if is_space else _switch_word_language_first(chunk, rng, lookup, rate, pool, single_word)
            for is_space, chunk in split_whitespace(text)
        )
    return "".join(
        chunk if is_space else _switch_word(chunk, rng, lookup, rate, languages, single_word)
        for is_space, chunk in split_whitespace(text)
    )


def code_mixed(
    text: str,
    rng: random.Random,
    *,
    dictionary: Dictionary | str | os.PathLike[str],
    rate: float = 0.5,
    languages: Sequence[str] = ("en",),
    single_word: bool = False,
) -> str:
    """Evaluation-time code-mixing (a random, non-adversarial take on PolyGloss/Bumblebee, Tan & Joty 2021):
    words of a target-language sentence are swapped for their English equivalents.

    ``dictionary`` is keyed by target-language words, e.g. a MUSE ``de-en`` file or
    ``invert_dictionary(english_keyed, "de")``; ``languages`` are the embedded languages to draw from.
    """
    return code_switch(
        text, rng, dictionary=dictionary, rate=rate, languages=languages, single_word=single_word
    )


# --------------------------------------------------------------------------- registry and helpers

PERTURBATIONS: dict[str, Perturbation] = {
    "char_noise": char_noise,
    "word_perturb": word_perturb,
    "code_switch": code_switch,
    "code_mixed": code_mixed,
}

# Perturbations that can map each token to exactly one token (code-switching with single_word=True).
TOKEN_PRESERVING = frozenset({"char_noise", "code_switch", "code_mixed"})


def get_perturbation(name: str) -> Perturbation:
    try:
        return PERTURBATIONS[name]
    except KeyError:
        raise KeyError(f"unknown perturbation {name!r}; known: {', '.join(sorted(PERTURBATIONS))}") from None


def perturb(text: str, name: str, seed: int, **params: Any) -> str:
    """Apply perturbation ``name`` to ``text`` with an rng seeded from ``seed``, ``name`` and the text."""
    return get_perturbation(name)(text, example_rng(seed, text, name), **params)


def apply_to_example(
    example: Mapping[str, Any],
    fields: Sequence[str],
    name: str,
    seed: int,
    *,
    tags_field: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A copy of ``example`` with each of ``fields`` perturbed; other keys are untouched.

    A field may hold a string or a list of strings (e.g. multiple-choice endings; each is perturbed as
    its own text). For token tagging pass ``tags_field`` (e.g. ``"ner_tags"``): then ``fields`` must be
    the one token-list field and it goes through ``perturb_tokens``, which refuses perturbations that
    would change the token count.
    """
    out = dict(example)
    if tags_field is not None:
        if len(fields) != 1:
            raise ValueError(
                f"with tags_field={tags_field!r}, fields must be the one token field, not {fields}"
            )
        tokens, tags = perturb_tokens(example[fields[0]], example[tags_field], name, seed, **params)
        out[fields[0]], out[tags_field] = tokens, tags
        return out
    for field in fields:
        value = example[field]
        if isinstance(value, str):
            out[field] = _perturb_field(value, field, name, seed, params)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out[field] = type(value)(_perturb_field(v, field, name, seed, params) for v in value)
        else:
            raise TypeError(f"field {field!r} holds {type(value).__name__}; expected str or a list of str")
    return out


def _perturb_field(text: str, field: str, name: str, seed: int, params: Mapping[str, Any]) -> str:
    return get_perturbation(name)(text, example_rng(seed, text, name, field), **params)


def perturb_tokens(
    tokens: Sequence[str], tags: Sequence[Any], name: str, seed: int, **params: Any
) -> tuple[list[str], list[Any]]:
    """Perturb a token-tagged sentence token by token, keeping one token per tag.

    ``char_noise`` noises each token on its own; ``code_switch``/``code_mixed`` translate each token 1:1
    (phrase translations are skipped). Perturbations that change the token count raise ValueError.
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    fn = get_perturbation(name)
    if name not in TOKEN_PRESERVING:
        raise ValueError(
            f"perturbation {name!r} can change the number of tokens, which would misalign the tags; "
            f"use one of {', '.join(sorted(TOKEN_PRESERVING))} for token-tagging examples"
        )
    if name in ("code_switch", "code_mixed"):
        params = {**params, "single_word": True}
    rng = example_rng(seed, "\x1f".join(tokens), name, "tokens")
    sentence_rate = float(params.pop("sentence_rate", 1.0))  # one decision for the whole sentence
    if sentence_rate < 1.0 and rng.random() >= sentence_rate:
        return list(tokens), list(tags)
    return [fn(token, rng, **params) for token in tokens], list(tags)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")


def _check_ops(ops: Sequence[str], known: Sequence[str]) -> None:
    unknown = [op for op in ops if op not in known]
    if unknown or not ops:
        raise ValueError(f"ops must be a non-empty subset of {known}, got {tuple(ops)}")
