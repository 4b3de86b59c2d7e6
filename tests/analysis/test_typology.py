"""The shipped URIEL typology table: coverage, lookups, consistency, and errors."""

from __future__ import annotations

import math

import pytest

from xstilts.analysis import (
    DISTANCE_KINDS,
    distances_from,
    languages,
    normalize_language,
    typological_distance,
    typology_table,
)

XTREME_LANGUAGES = (
    "af ar az bg bn de el en es et eu fa fi fr gu he hi ht hu id it ja jv ka kk ko lt ml mr ms my nl pa pl "
    "pt qu ro ru sw ta te th tl tr uk ur vi wo yo zh"
).split()


def test_table_covers_every_xtreme_and_xtreme_r_language() -> None:
    assert languages() == XTREME_LANGUAGES
    rows = typology_table()
    assert [r["lang"] for r in rows] == XTREME_LANGUAGES
    assert set(rows[0]) == {"lang", "iso3", *DISTANCE_KINDS, "syntax_observed", "lat", "lon", "geo_fit_rmse"}


def test_values_are_distances_in_range() -> None:
    for row in typology_table():
        for kind in DISTANCE_KINDS:
            assert 0.0 <= row[kind] <= 1.0, (row["lang"], kind)
        assert 0 <= row["syntax_observed"] <= 103
        assert row["geo_fit_rmse"] < 0.01  # the recovered coordinates reproduce URIEL's geo vector


def test_english_is_at_zero_and_known_values() -> None:
    assert all(typological_distance("en", kind) == 0.0 for kind in DISTANCE_KINDS)
    assert typological_distance("de") == pytest.approx(0.0975)
    assert typological_distance("ja", "syntactic") == pytest.approx(0.4998)
    # 1 - 4/9: Dutch shares 4 of English's 9 Glottolog nodes (the table keeps 4 decimals)
    assert typological_distance("nl", "genetic") == pytest.approx(1 - 4 / 9, abs=5e-5)
    assert typological_distance("eu", "genetic") == 1.0  # Basque, an isolate


def test_sanity_of_the_typology() -> None:
    syntactic = distances_from("en", "syntactic")
    assert syntactic["nl"] < syntactic["de"] < syntactic["ja"]
    assert max(syntactic, key=syntactic.get) == "my"
    genetic = distances_from("en", "genetic")
    assert {lang for lang, d in genetic.items() if d < 0.6} == {"af", "de", "en", "nl"}  # West Germanic
    geographic = distances_from("en", "geographic")
    assert geographic["fr"] < geographic["ru"] < geographic["ja"]


def test_recovered_coordinates_are_where_the_languages_are_spoken() -> None:
    rows = {r["lang"]: r for r in typology_table()}
    assert rows["en"]["lat"] == pytest.approx(53, abs=3) and rows["en"]["lon"] == pytest.approx(-1, abs=3)
    assert rows["ja"]["lat"] == pytest.approx(35, abs=3) and rows["ja"]["lon"] == pytest.approx(135, abs=3)
    assert rows["qu"]["lat"] < -10 and rows["qu"]["lon"] < -60


def test_pairs_agree_with_the_per_language_table_and_are_symmetric() -> None:
    for row in typology_table():
        for kind in DISTANCE_KINDS:
            assert typological_distance(row["lang"], kind, "en") == row[kind]
            assert typological_distance("en", kind, row["lang"]) == row[kind]
    assert typological_distance("ru", "syntactic", reference="de") == typological_distance(
        "de", "syntactic", "ru"
    )
    assert typological_distance("uk", "syntactic", reference="ru") < typological_distance("uk", "syntactic")


def test_codes_are_case_insensitive_and_iso3_works() -> None:
    assert normalize_language("DE") == "de"
    assert normalize_language("deu") == "de"
    assert typological_distance("ZHO", "geographic", reference="eng") == typological_distance(
        "zh", "geographic"
    )


def test_unknown_language_raises_a_helpful_key_error() -> None:
    with pytest.raises(KeyError, match="no typology data for language 'xx'.*af ar az"):
        typological_distance("xx")
    with pytest.raises(KeyError, match="make_typology_table.py"):
        typological_distance("de", reference="klingon")


def test_unknown_kind_raises_value_error() -> None:
    with pytest.raises(ValueError, match="syntactic, phonological"):
        typological_distance("de", "lexical")


def test_table_is_a_fresh_copy() -> None:
    rows = typology_table()
    rows[0]["syntactic"] = math.nan
    assert not math.isnan(typology_table()[0]["syntactic"])
