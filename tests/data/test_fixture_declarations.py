"""Fixture files are declared beside their generators (`@fixture_splits`, `@local_fixture_files` in
xstilts/data/fixtures.py): no two declarations may write the same file, or one would silently
overwrite the other's rows."""

from __future__ import annotations

from collections import Counter

from xstilts.data import fixtures


def test_no_two_declarations_write_the_same_hub_file() -> None:
    written = Counter(
        (dataset, config, split) for dataset, config, split, _ in fixtures.fixture_splits_declared()
    )
    assert written and not [key for key, count in written.items() if count > 1]


def test_no_two_declarations_write_the_same_local_file() -> None:
    written = Counter(path for path, _ in fixtures.local_files_declared())
    assert written and not [path for path, count in written.items() if count > 1]
