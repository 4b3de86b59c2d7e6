"""Results indexed by (encoder, setting, target) cell, with the aggregates the tables read."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from xstilts.plan.expand import BASELINE
from xstilts.report.collect import Results, RunResult
from xstilts.report.model import Stat, mean_of
from xstilts.report.significance import Significance

QA_METRICS = ("squad", "squad_v2", "mlqa")
BENCHMARK_LABELS = {"xtreme": "XTREME", "xtreme-r": "XTREME-R", "custom": "custom"}


def _distinct(runs: Iterable[RunResult]) -> list[RunResult]:
    """One result per evaluate phase (seeds sharing a phase are one result, not two)."""
    return list({run.evaluate: run for run in runs}.values())


@dataclass
class CellStats:
    """Aggregates of one (encoder, setting, target) cell over its seeds."""

    runs: list[RunResult]

    @property
    def n(self) -> int:
        return len(self.runs)

    def language(self, lang: str) -> Stat | None:
        values = [run.scores[lang] for run in self.runs if lang in run.scores]
        return Stat.of(values) if values else None

    @property
    def average(self) -> Stat:
        return Stat.of([run.average for run in self.runs])

    @property
    def zero_shot(self) -> Stat | None:
        values = [run.average_zero_shot for run in self.runs if run.average_zero_shot is not None]
        return Stat.of(values) if values else None


class Grid:
    """Results indexed by (encoder, setting, target)."""

    def __init__(self, results: Results):
        self.results = results
        grouped: dict[tuple[str, str, str], list[RunResult]] = {}
        for run in results.runs:
            grouped.setdefault((run.encoder, run.setting, run.target), []).append(run)
        self.cells = {key: CellStats(_distinct(runs)) for key, runs in grouped.items()}
        self._runs = grouped
        self.significance = Significance(self)

    def runs(self, encoder: str, setting: str, target: str) -> list[RunResult]:
        """Every run of a cell, one per seed (seeds sharing an evaluate phase each list it)."""
        return self._runs.get((encoder, setting, target), [])

    def dev(self, encoder: str, setting: str, target: str) -> tuple[float, str] | None:
        """Mean dev score over the cell's distinct runs and its source, when every run has one."""
        cell = self.cell(encoder, setting, target)
        if cell is None or any(run.dev is None for run in cell.runs):
            return None
        values = [float(run.dev) for run in cell.runs if run.dev is not None]
        return statistics.fmean(values), str(cell.runs[0].dev_source or "dev")

    def is_qa(self, target: str) -> bool:
        return self.metric(target) in QA_METRICS

    @property
    def benchmark_label(self) -> str:
        return BENCHMARK_LABELS.get(self.results.benchmark, self.results.benchmark)

    def cell(self, encoder: str, setting: str, target: str) -> CellStats | None:
        return self.cells.get((encoder, setting, target))

    def average(self, encoder: str, setting: str, target: str) -> float | None:
        cell = self.cell(encoder, setting, target)
        return cell.average.mean if cell else None

    def has_baseline(self, encoder: str) -> bool:
        return any(self.cell(encoder, BASELINE, t) for t in self.results.targets)

    def languages(self, target: str) -> list[str]:
        """The target's evaluated languages: English first, then alphabetical."""
        langs = {lang for (_, _, t), cell in self.cells.items() if t == target for run in cell.runs
                 for lang in run.scores}  # fmt: skip
        return sorted(langs, key=lambda lang: (lang != "en", lang))

    def metric(self, target: str) -> str:
        for (_, _, t), cell in self.cells.items():
            if t == target:
                return cell.runs[0].metric
        return ""

    def row_keys(self, target: str | None = None) -> list[tuple[str, str]]:
        """(encoder, setting) pairs with at least one result (for `target`, if given), in sweep order."""
        return [
            (enc, setting) for enc in self.results.encoders for setting in self.results.settings
            if any(self.cell(enc, setting, t) for t in ([target] if target else self.results.targets))
        ]  # fmt: skip

    def xtreme_average(self, encoder: str, setting: str) -> float | None:
        averages = [self.average(encoder, setting, t) for t in self.results.targets]
        return mean_of(averages) if all(a is not None for a in averages) else None
