"""Typological distances between XTREME / XTREME-R languages, offline, from a shipped URIEL table.

``data/typology.tsv`` (distances from English plus metadata) and ``data/typology_pairs.tsv`` (every
language pair) were generated from lang2vec 1.1.2's URIEL vectors by ``data/make_typology_table.py``,
whose header says how each distance is defined; lang2vec itself is not needed at run time.
Syntactic, phonological and inventory distances are cosine distances of kNN-imputed URIEL vectors:
check ``syntax_observed`` before trusting a low-resource language's syntactic distance.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from typing import Any

DISTANCE_KINDS = ("syntactic", "phonological", "inventory", "genetic", "geographic", "featural")
_INT_COLUMNS = frozenset({"syntax_observed"})
_TEXT_COLUMNS = frozenset({"lang", "iso3", "lang_a", "lang_b"})


def _read_tsv(name: str) -> list[dict[str, Any]]:
    text = resources.files("xstilts.analysis").joinpath("data", name).read_text(encoding="utf-8")
    return [
        {k: v if k in _TEXT_COLUMNS else int(v) if k in _INT_COLUMNS else float(v) for k, v in row.items()}
        for row in csv.DictReader(text.splitlines(), delimiter="\t")
    ]


@lru_cache(maxsize=1)
def _language_rows() -> tuple[dict[str, Any], ...]:
    return tuple(_read_tsv("typology.tsv"))


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Lower-cased ISO 639-1 and ISO 639-3 codes -> the table's ISO 639-1 code."""
    aliases = {}
    for row in _language_rows():
        aliases[row["lang"].lower()] = row["lang"]
        aliases[row["iso3"].lower()] = row["lang"]
    return aliases


@lru_cache(maxsize=1)
def _pair_distances() -> dict[frozenset[str], dict[str, float]]:
    return {
        frozenset((row["lang_a"], row["lang_b"])): {k: row[k] for k in DISTANCE_KINDS}
        for row in _read_tsv("typology_pairs.tsv")
    }


def languages() -> list[str]:
    """The ISO 639-1 codes the table covers."""
    return [row["lang"] for row in _language_rows()]


def normalize_language(lang: str) -> str:
    """The table's ISO 639-1 code for ``lang`` (ISO 639-1 or 639-3, any case); KeyError if not covered."""
    try:
        return _aliases()[lang.strip().lower()]
    except KeyError:
        raise KeyError(
            f"no typology data for language {lang!r}; the table covers the XTREME/XTREME-R languages "
            f"{' '.join(languages())} (ISO 639-1, or their ISO 639-3 codes). To add one, extend LANGUAGES "
            "in xstilts/analysis/data/make_typology_table.py and regenerate the table."
        ) from None


def typology_table() -> list[dict[str, Any]]:
    """One row per language: ``lang``, ``iso3``, the distances from English (``DISTANCE_KINDS``),
    ``syntax_observed`` (observed, not imputed, syntax features out of 103), ``lat``, ``lon``,
    ``geo_fit_rmse``. A fresh copy on each call."""
    return [dict(row) for row in _language_rows()]


def typological_distance(lang: str, kind: str = "syntactic", reference: str = "en") -> float:
    """URIEL distance of ``kind`` between ``lang`` and ``reference`` (0 for a language with itself)."""
    if kind not in DISTANCE_KINDS:
        raise ValueError(f"unknown distance kind {kind!r}; choose one of {', '.join(DISTANCE_KINDS)}")
    a, b = normalize_language(lang), normalize_language(reference)
    if a == b:
        return 0.0
    return _pair_distances()[frozenset((a, b))][kind]


def distances_from(reference: str = "en", kind: str = "syntactic") -> dict[str, float]:
    """``{lang: distance}`` from ``reference`` for every language in the table (reference included, at 0)."""
    return {lang: typological_distance(lang, kind, reference) for lang in languages()}
