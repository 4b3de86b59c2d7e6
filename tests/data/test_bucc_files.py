"""BUCC 2018 in its own file format (data.bucc_path; the fixtures write the same files): every sentence of
both sides plus the gold pairs, not just the hub's gold pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import example_config
from xstilts.data.load import DataUnavailableError, load_examples
from xstilts.phases.evaluate import bitext_sides, retrieval_protocol
from xstilts.plan.configs import parse_config
from xstilts.tasks import get_task

FIXTURES = {"source": "fixtures"}


def test_fixture_files_hold_every_sentence_and_the_hub_fixture_only_gold_pairs() -> None:
    task = get_task("bucc")
    rows = load_examples(task, "evaluate", FIXTURES, "de")
    src, tgt, gold = bitext_sides(rows)
    assert len(gold) == 100 and len(src) > len(gold) and len(tgt) > len(gold)  # distractors on both sides
    texts = list(src.values())
    assert len(set(texts)) < len(texts)  # a sentence repeated under a second id (dropped when mining)
    gold_only, _ = retrieval_protocol(
        task,
        parse_config(
            "evaluate", example_config("evaluate", bucc={"pairs": "gold_only", "duplicates": "drop"})
        ),
    )
    hub_rows = load_examples(gold_only, "evaluate", FIXTURES, "de")
    assert all(row["source"] and row["target"] for row in hub_rows) and len(hub_rows) == 100
    assert len(load_examples(task, "dev", FIXTURES, "de")) > 40  # the sample split: 40 gold pairs + more


def _write(directory: Path, name: str, lines: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def test_a_user_directory_in_the_shared_task_layout(tmp_path: Path) -> None:
    # the archives unpack to fr-en/fr-en.training.{fr,en,gold}; a flat directory works too
    for directory in (tmp_path / "nested" / "fr-en", tmp_path / "flat"):
        _write(directory, "fr-en.training.fr", ["fr-000000001\tUn chat.", "fr-000000002\tUn chien."])
        _write(directory, "fr-en.training.en", ["en-000000001\tA dog.", "en-000000002\tA cat.", "en-3\tNo."])
        _write(directory, "fr-en.training.gold", ["fr-000000001\ten-000000002", "fr-000000002\ten-000000001"])
    for root in (tmp_path / "nested", tmp_path / "flat"):
        rows = load_examples(get_task("bucc"), "evaluate", {"source": "hub", "bucc_path": str(root)}, "fr")
        src, tgt, gold = bitext_sides(rows)
        assert gold == {("fr-000000001", "en-000000002"), ("fr-000000002", "en-000000001")}
        assert src["fr-000000001"] == "Un chat." and set(tgt) == {"en-000000001", "en-000000002", "en-3"}


def test_bad_or_missing_files_are_data_errors(tmp_path: Path) -> None:
    data = {"source": "hub", "bucc_path": str(tmp_path)}
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_examples(get_task("bucc"), "evaluate", data, "ru")
    _write(tmp_path, "ru-en.training.ru", ["no tab on this line"])
    _write(tmp_path, "ru-en.training.en", ["en-1\tA."])
    _write(tmp_path, "ru-en.training.gold", [])
    with pytest.raises(DataUnavailableError, match="id<TAB>sentence"):
        load_examples(get_task("bucc"), "evaluate", data, "ru")
