"""Where a sweep's bilingual dictionaries come from, and which way round they are read.

A `PerturbationSpec.dictionary` is a path to a MUSE-style file (`word<TAB>translation`), with two
conveniences:

- `{lang}` in the path stands for a language: `/data/muse/en-{lang}.txt` with `languages: [de, es]` is
  the union of `en-de.txt` and `en-es.txt` (augmentation), and `/data/muse/{lang}-en.txt` is the
  dictionary of each evaluated language into English (code-mixed robustness evaluation);
- a `fixtures:` prefix resolves against the fixtures root, so tiny sweeps work offline:
  `fixtures:dictionaries/en-{lang}.txt` (written by `xstilts data fixtures`, from the fixture lexicon).

Augmentation (`code_switch`, and `code_mixed` on English training text) wants English-keyed entries;
code-mixed evaluation of language L wants L-keyed entries with English translations: an `en-L` file
is inverted for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xstilts.augment.text import Dictionary, invert_dictionary, load_dictionary, merge_dictionaries
from xstilts.errors import ConfigError

FIXTURES_PREFIX = "fixtures:"
LANG_PLACEHOLDER = "{lang}"
_MUSE_PAIR = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})\b")


def dictionary_path(spec: str, data: dict[str, Any], lang: str | None = None) -> Path:
    """The file a dictionary spec names, with `{lang}` filled in and `fixtures:` resolved."""
    if LANG_PLACEHOLDER in spec:
        if lang is None:
            raise ConfigError(
                f"dictionary {spec!r} has a {LANG_PLACEHOLDER} placeholder but no language to fill it",
                field="dictionary",
                fix="list the languages in the perturbation's 'languages'",
            )
        spec = spec.replace(LANG_PLACEHOLDER, lang)
    if spec.startswith(FIXTURES_PREFIX):
        from xstilts.data.fixtures import ensure_fixtures

        return ensure_fixtures(data.get("fixtures_size", "tiny")) / spec[len(FIXTURES_PREFIX) :]
    return Path(spec).expanduser()


def _read(path: Path, lang: str | None = None) -> dict[str, dict[str, list[str]]]:
    if not path.is_file():
        raise ConfigError(
            f"bilingual dictionary {path} does not exist",
            field="dictionary",
            fix="point 'dictionary' at a MUSE-style file (word<TAB>translation), e.g. "
            "fixtures:dictionaries/en-{lang}.txt for the fixtures",
        )
    try:
        return load_dictionary(path, lang)
    except ValueError as exc:
        raise ConfigError(
            str(exc), field="dictionary", fix="use a MUSE-style file named <src>-<tgt>.txt"
        ) from None


def english_keyed(spec: str, data: dict[str, Any], languages: Sequence[str] | None) -> Dictionary:
    """English words -> translations, for switching English training text into other languages."""
    if LANG_PLACEHOLDER not in spec:
        return _read(dictionary_path(spec, data))
    if not languages:
        raise ConfigError(
            f"dictionary {spec!r} has a {LANG_PLACEHOLDER} placeholder: say which languages to switch into",
            field="languages",
            fix="add 'languages: [de, es, ...]' to the perturbation",
        )
    return merge_dictionaries(*(_read(dictionary_path(spec, data, lang), lang) for lang in languages))


def into_english(spec: str, data: dict[str, Any], lang: str) -> Dictionary | None:
    """Words of `lang` -> English words, for code-mixing `lang` text with English; None when the sweep
    has no dictionary for `lang` (a `{lang}` path whose file is missing)."""
    path = dictionary_path(spec, data, lang)
    if LANG_PLACEHOLDER in spec and not path.is_file():
        return None
    match = _MUSE_PAIR.match(path.name)
    if match and match.group(1) == "en":  # an English-keyed file: read it the other way round
        return invert_dictionary(_read(path), lang) or None
    return _read(path, "en" if not match else None)
