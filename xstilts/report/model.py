"""The report's table model: a table of typed columns and rows of cells, and the mean ± std cell.
Builders (`xstilts.report.tables`, `xstilts.report.research`) fill tables; writers
(`xstilts.report.writers`) turn them into Markdown and CSV."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from xstilts.evaluate.delta import Delta
from xstilts.evaluate.seeds import seed_summary

ColumnFormat = Literal["text", "number", "signed", "hours", "duration", "integer", "fraction", "p"]
CORRELATION_NOTE = (
    "p: two-sided permutation test (exact up to 7 pairs, else 2000 permutations); CI: 95% percentile "
    "bootstrap over the pairs (1000 resamples); seeded; blank: fewer than 3 pairs or a constant side"
)


@dataclass(frozen=True)
class Stat:
    """Mean over `n` distinct results, with their sample standard deviation and the 95% t-interval of
    the mean when n > 1."""

    mean: float
    std: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:

        if not values:
            raise ValueError("Stat of no values")
        found = seed_summary(list(values))
        return cls(mean=found.mean, std=found.std, n=found.n, ci_low=found.ci_low, ci_high=found.ci_high)


Cell = str | int | float | Stat | Delta | None


@dataclass(frozen=True)
class Column:
    key: str  # CSV header (a Stat column adds `<key>_std`)
    header: str  # Markdown header
    fmt: ColumnFormat = "number"


@dataclass
class Table:
    name: str  # file stem for CSV
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def column(self, key: str) -> list[Cell]:
        index = [c.key for c in self.columns].index(key)
        return [row[index] for row in self.rows]

    def row(self, **match: Cell) -> list[Cell]:
        """The first row whose cells equal `match` (by column key); KeyError if none."""
        keys = [c.key for c in self.columns]
        for row in self.rows:
            if all(row[keys.index(k)] == v for k, v in match.items()):
                return row
        raise KeyError(f"{self.name}: no row with {match}")

    def value(self, column: str, **match: Cell) -> Cell:
        return self.row(**match)[[c.key for c in self.columns].index(column)]


def mean_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None
