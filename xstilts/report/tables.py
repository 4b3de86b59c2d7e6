"""The report's tables, computed from `Results` in plain Python, and their Markdown and CSV writers.

Conventions:
- a cell's value is the mean over seeds; seeds that share one evaluate phase (retrieval targets of the
  baseline, whose encoder does not depend on the seed) count once; the spread is the sample standard
  deviation (n - 1) over distinct results, shown only when there are at least two;
- deltas are differences of means against the baseline of the same encoder;
- the XTREME-style average of a row is the mean of its per-target averages (each the mean over all of
  the target's evaluated languages, English included), as XTREME computes its overall score; it is
  left blank unless the row has every target of the sweep;
- Markdown shows numbers with 1 decimal (deltas signed; hours 2, distances 3); CSV keeps full precision.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xstilts.plan.expand import BASELINE
from xstilts.report.collect import Results, RunResult

BEST_PER_TARGET = "best per target"
EMPTY = "—"

ColumnFormat = Literal["text", "number", "signed", "hours", "duration", "integer", "fraction"]


@dataclass(frozen=True)
class Stat:
    """Mean over `n` distinct results, with their sample standard deviation when n > 1."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("Stat of no values")
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(mean=statistics.fmean(values), std=std, n=len(values))


Cell = str | int | float | Stat | None


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


# --------------------------------------------------------------------------- aggregation


def mean_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


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


def _difference(value: float | None, reference: float | None) -> float | None:
    return value - reference if value is not None and reference is not None else None


def _mean_or_none(stat: Stat | None) -> float | None:
    return stat.mean if stat else None


# --------------------------------------------------------------------------- tables


def _key_columns(extra: Sequence[Column] = ()) -> list[Column]:
    return [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"), *extra]


def target_table(grid: Grid, target: str) -> Table:
    """Rows (encoder, setting); columns: seeds, each language, avg, zero-shot avg (mean ± std over seeds)."""
    langs = grid.languages(target)
    columns = _key_columns([Column("seeds", "seeds", "integer")])
    columns += [Column(lang, lang) for lang in langs]
    columns += [Column("avg", "avg"), Column("zero_shot_avg", "zero-shot avg")]
    table = Table(target, f"{target} ({grid.metric(target)})", columns)
    for enc, setting in grid.row_keys(target):
        cell = grid.cell(enc, setting, target)
        if cell is None:
            continue
        table.rows.append([enc, setting, cell.n, *(cell.language(lang) for lang in langs), cell.average,
                           cell.zero_shot])  # fmt: skip
    table.notes.append("mean over seeds (± sample std when more than one distinct result)")
    return table


def target_delta_table(grid: Grid, target: str) -> Table:
    """Rows (encoder, intermediate setting); columns: deltas vs baseline per language, avg, zero-shot avg."""
    langs = grid.languages(target)
    columns = _key_columns([Column(lang, lang, "signed") for lang in langs])
    columns += [Column("avg", "avg", "signed"), Column("zero_shot_avg", "zero-shot avg", "signed")]
    table = Table(f"{target}_delta", f"{target}: Δ vs baseline", columns)
    for enc, setting in grid.row_keys(target):
        base, cell = grid.cell(enc, BASELINE, target), grid.cell(enc, setting, target)
        if setting == BASELINE or base is None or cell is None:
            continue
        deltas = [_difference(_mean_or_none(cell.language(lang)), _mean_or_none(base.language(lang)))
                  for lang in langs]  # fmt: skip
        table.rows.append([
            enc, setting, *deltas, cell.average.mean - base.average.mean,
            _difference(_mean_or_none(cell.zero_shot), _mean_or_none(base.zero_shot)),
        ])  # fmt: skip
    if not table.rows:
        table.notes.append("no baseline result for this target yet: deltas need one")
    else:
        table.notes.append("difference of means over seeds, same encoder's baseline")
    return table


@dataclass(frozen=True)
class BestChoice:
    encoder: str
    target: str
    setting: str
    average: float
    baseline: float | None

    @property
    def delta(self) -> float | None:
        return _difference(self.average, self.baseline)


def best_per_target(grid: Grid, encoder: str) -> dict[str, BestChoice]:
    """For each target, the intermediate setting with the highest average (ties: the first in sweep order)."""
    choices = {}
    for target in grid.results.targets:
        candidates = [(grid.average(encoder, s, target), s) for s in grid.results.intermediate_settings]
        scored = [(avg, s) for avg, s in candidates if avg is not None]
        if not scored:
            continue
        best_avg = max(avg for avg, _ in scored)
        setting = next(s for avg, s in scored if avg == best_avg)
        baseline = grid.average(encoder, BASELINE, target)
        choices[target] = BestChoice(encoder, target, setting, best_avg, baseline)
    return choices


def _best_row_xtreme(grid: Grid, choices: dict[str, BestChoice]) -> float | None:
    if len(choices) != len(grid.results.targets):
        return None
    return mean_of(c.average for c in choices.values())


def summary_table(grid: Grid) -> Table:
    """Rows (encoder, setting) plus each encoder's best-per-target row; columns: each target's average,
    the XTREME-style average and its delta vs the baseline."""
    targets = grid.results.targets
    columns = _key_columns([Column(t, t) for t in targets])
    columns += [Column("xtreme_avg", "XTREME avg"), Column("delta_xtreme_avg", "Δ XTREME avg", "signed")]
    table = Table("summary", "Summary: average score per target", columns)
    for enc in grid.results.encoders:
        baseline_xtreme = grid.xtreme_average(enc, BASELINE)
        for e, setting in grid.row_keys():
            if e != enc:
                continue
            xtreme = grid.xtreme_average(enc, setting)
            delta = _difference(xtreme, baseline_xtreme) if setting != BASELINE else None
            averages = [grid.average(enc, setting, t) for t in targets]
            table.rows.append([enc, setting, *averages, xtreme, delta])
        choices = best_per_target(grid, enc)
        if choices:
            xtreme = _best_row_xtreme(grid, choices)
            table.rows.append([
                enc, BEST_PER_TARGET, *(choices[t].average if t in choices else None for t in targets),
                xtreme, _difference(xtreme, baseline_xtreme),
            ])  # fmt: skip
    table.notes.append(
        "XTREME avg: mean of the per-target averages (blank unless the row has every target); "
        f"'{BEST_PER_TARGET}': the best intermediate setting for each target (see the next table)"
    )
    return table


def summary_delta_table(grid: Grid) -> Table:
    """Rows (encoder, intermediate setting); columns: each target's average delta vs baseline, and XTREME."""
    targets = grid.results.targets
    columns = _key_columns([Column(t, t, "signed") for t in targets])
    columns.append(Column("xtreme_avg", "XTREME avg", "signed"))
    table = Table("summary_delta", "Δ vs baseline: average score per target", columns)
    for enc, setting in grid.row_keys():
        if setting == BASELINE or not grid.has_baseline(enc):
            continue
        deltas = [_difference(grid.average(enc, setting, t), grid.average(enc, BASELINE, t)) for t in targets]
        xtreme = _difference(grid.xtreme_average(enc, setting), grid.xtreme_average(enc, BASELINE))
        table.rows.append([enc, setting, *deltas, xtreme])
    return table


def best_table(grid: Grid) -> Table:
    """The setting picked for each target in the best-per-target row, with its delta vs baseline."""
    columns = [
        Column("encoder", "encoder", "text"), Column("target", "target", "text"),
        Column("setting", "best intermediate", "text"), Column("average", "avg"),
        Column("baseline", "baseline avg"), Column("delta", "Δ", "signed"),
    ]  # fmt: skip
    table = Table("best", "Best intermediate setting per target", columns)
    for enc in grid.results.encoders:
        for target, choice in best_per_target(grid, enc).items():
            table.rows.append([enc, target, choice.setting, choice.average, choice.baseline, choice.delta])
    return table


def _language_deltas(grid: Grid, encoder: str, setting: str) -> dict[str, list[float]]:
    """lang -> per-target deltas (setting mean - baseline mean) across targets that evaluate it."""
    deltas: dict[str, list[float]] = {}
    for target in grid.results.targets:
        base, cell = grid.cell(encoder, BASELINE, target), grid.cell(encoder, setting, target)
        if base is None or cell is None:
            continue
        for lang in grid.languages(target):
            delta = _difference(_mean_or_none(cell.language(lang)), _mean_or_none(base.language(lang)))
            if delta is not None:
                deltas.setdefault(lang, []).append(delta)
    return deltas


DistanceFn = Callable[[str], float]


def load_distance() -> DistanceFn | None:
    """Syntactic distance from English from `xstilts.analysis.typology`, or None when it is unavailable."""
    try:
        from xstilts.analysis.typology import typological_distance
    except ImportError:
        return None

    def distance(lang: str) -> float:
        return typological_distance(lang, kind="syntactic")

    return distance


def _distance_or_none(distance: DistanceFn | None, lang: str) -> float | None:
    if distance is None:
        return None
    try:
        return float(distance(lang))
    except (KeyError, ValueError):
        return None


def languages_table(grid: Grid, distance: DistanceFn | None = None) -> Table:
    """Rows (encoder, language): each intermediate setting's delta vs baseline for the en -> language pair,
    averaged over the targets that evaluate the language; with the syntactic distance from English when
    `distance` is given (the column is omitted otherwise)."""
    settings = grid.results.intermediate_settings
    columns = [Column("encoder", "encoder", "text"), Column("language", "language", "text")]
    if distance is not None:
        columns.append(Column("syntactic_distance", "syntactic distance from en", "fraction"))
    columns.append(Column("targets", "targets", "integer"))  # targets contributing to the deltas
    columns += [Column(s, s, "signed") for s in settings]
    table = Table("languages", "Δ vs baseline per English → language pair (mean over targets)", columns)
    for enc in grid.results.encoders:
        per_setting = {s: _language_deltas(grid, enc, s) for s in settings}
        langs = sorted({lang for deltas in per_setting.values() for lang in deltas})
        rows = []
        for lang in langs:
            dist = [_distance_or_none(distance, lang)] if distance is not None else []
            counts = max(len(per_setting[s].get(lang, [])) for s in settings)
            values = [mean_of(per_setting[s].get(lang, [])) for s in settings]
            rows.append([enc, lang, *dist, counts, *values])
        table.rows += sorted(rows, key=_language_sort_key(distance is not None))
    if distance is not None:
        table.notes.append("syntactic distance: URIEL cosine distance from English (xstilts.analysis)")
    return table


def _language_sort_key(has_distance: bool) -> Callable[[list[Cell]], tuple[bool, float, bool, str]]:
    """By distance from English (unknown last) when known, then English first, then by code."""

    def key(row: list[Cell]) -> tuple[bool, float, bool, str]:
        lang = str(row[1])
        dist = row[2] if has_distance else None
        known = isinstance(dist, float)
        return (not known, dist if isinstance(dist, float) else 0.0, lang != "en", lang)

    return key


def distance_correlations(table: Table) -> dict[str, float]:
    """Spearman's rho between syntactic distance and each setting's delta (per encoder when several),
    using `xstilts.analysis.alignment.spearman`; empty when either is unavailable or too few languages."""
    keys = [c.key for c in table.columns]
    if "syntactic_distance" not in keys:
        return {}
    try:
        from xstilts.analysis.alignment import spearman
    except ImportError:
        return {}
    first_setting = keys.index("targets") + 1
    encoders = list(dict.fromkeys(str(row[0]) for row in table.rows))
    correlations = {}
    for enc in encoders:
        rows = [row for row in table.rows if row[0] == enc]
        for setting in keys[first_setting:]:
            rho = _spearman_of(spearman, rows, keys.index("syntactic_distance"), keys.index(setting))
            if rho is not None:
                correlations[setting if len(encoders) == 1 else f"{enc}/{setting}"] = rho
    return correlations


def _spearman_of(spearman: Callable, rows: list[list[Cell]], x: int, y: int) -> float | None:
    pairs = [(row[x], row[y]) for row in rows if isinstance(row[x], float) and isinstance(row[y], float)]
    if len(pairs) < 3:
        return None
    rho = float(spearman([p[0] for p in pairs], [p[1] for p in pairs]))
    return None if math.isnan(rho) else rho


def cost_table(results: Results) -> Table:
    """One row per complete phase: duration, GPUs (gpu x nodes), GPU-hours, CPU pod-hours; then the total."""
    columns = [
        Column("phase", "phase", "text"), Column("kind", "kind", "text"),
        Column("address", "address", "text"),
        Column("duration_s", "duration", "duration"), Column("gpus", "GPUs", "integer"),
        Column("gpu_hours", "GPU-hours", "hours"), Column("cpu_hours", "CPU pod-hours", "hours"),
    ]  # fmt: skip
    table = Table("cost", "Cost of the complete phases", columns)
    for cost in results.costs:
        table.rows.append([cost.name, cost.kind, cost.address, cost.seconds, cost.gpus, cost.gpu_hours,
                           cost.cpu_hours])  # fmt: skip
    table.rows.append(["total", "", "", results.seconds, None, results.gpu_hours, results.cpu_hours])
    table.notes.append("duration: lineage finished_at - started_at; GPUs = resources.gpu x nodes; "
                       "phases with no GPU count as CPU pod-hours (hours x nodes)")  # fmt: skip
    return table


@dataclass
class Tables:
    summary: Table
    summary_delta: Table
    best: Table
    targets: dict[str, Table]
    target_deltas: dict[str, Table]
    languages: Table
    cost: Table
    correlations: dict[str, float]
    # Research-question tables (xstilts.report.research), by name; only those the results support.
    research: dict[str, Table] = field(default_factory=dict)

    def all(self) -> list[Table]:
        per_target = [t for name in self.targets for t in (self.targets[name], self.target_deltas[name])]
        return [self.summary, self.summary_delta, self.best, *per_target, self.languages,
                *self.research.values(), self.cost]  # fmt: skip


def build_tables(results: Results, distance: DistanceFn | None = None) -> Tables:
    """Every table of the report. `distance` defaults to the typology module's, when importable."""
    from xstilts.report.research import research_tables

    grid = Grid(results)
    distance = distance if distance is not None else load_distance()
    targets = [t for t in results.targets if any(key[2] == t for key in grid.cells)]
    languages = languages_table(grid, distance)
    return Tables(
        summary=summary_table(grid), summary_delta=summary_delta_table(grid), best=best_table(grid),
        targets={t: target_table(grid, t) for t in targets},
        target_deltas={t: target_delta_table(grid, t) for t in targets},
        languages=languages, cost=cost_table(results), correlations=distance_correlations(languages),
        research={table.name: table for table in research_tables(grid)},
    )  # fmt: skip


# --------------------------------------------------------------------------- writers


def _format_duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_cell(value: Cell, fmt: ColumnFormat) -> str:
    """A cell as Markdown: numbers with 1 decimal (deltas signed), hours 2, fractions 3, H:MM:SS durations."""
    if value is None:
        return EMPTY
    if isinstance(value, Stat):
        text = format_cell(value.mean, fmt)
        return f"{text} ± {value.std:.1f}" if value.std is not None else text
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if fmt == "integer" or isinstance(value, bool):
        return str(value)
    number = float(value)
    if fmt == "duration":
        return _format_duration(number)
    if fmt == "hours":
        return f"{number:.2f}"
    if fmt == "fraction":
        return f"{number:.3f}"
    if fmt == "signed":
        return f"{number:+.1f}"
    if fmt == "text":
        return str(value)
    return f"{number:.1f}"


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (text columns left-aligned, numbers right-aligned)."""
    header = "| " + " | ".join(c.header.replace("|", "\\|") for c in table.columns) + " |"
    align = "|" + "|".join(":---" if c.fmt == "text" else "---:" for c in table.columns) + "|"
    lines = [header, align]
    for row in table.rows:
        cells = (format_cell(v, c.fmt) for v, c in zip(row, table.columns, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _stat_columns(table: Table) -> set[str]:
    return {c.key for i, c in enumerate(table.columns) if any(isinstance(row[i], Stat) for row in table.rows)}


def _csv_value(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value  # type: ignore[return-value]


def to_csv(table: Table) -> str:
    """CSV with full precision; a column of mean ± std cells becomes `<key>` and `<key>_std`."""
    stats = _stat_columns(table)
    header: list[str] = []
    for column in table.columns:
        header += [column.key, f"{column.key}_std"] if column.key in stats else [column.key]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out: list[str | int | float] = []
        for value, column in zip(row, table.columns, strict=True):
            if column.key not in stats:
                out.append(_csv_value(value))
            elif isinstance(value, Stat):
                out += [_csv_value(value.mean), _csv_value(value.std)]
            else:
                out += [_csv_value(value), ""]
        writer.writerow(out)
    return buffer.getvalue()


def write_csv(table: Table, path: Path) -> Path:
    path.write_text(to_csv(table), encoding="utf-8")
    return path


def rows_to_csv(rows: list[dict]) -> str:
    """Long-format rows (dicts, possibly with different metric fields) as CSV; columns in first-seen order."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()
