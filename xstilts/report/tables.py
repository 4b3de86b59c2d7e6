"""The report's tables, built from `Results` in plain Python. The table model is `xstilts.report.model`,
the cells `xstilts.report.grid`, the Markdown and CSV writers `xstilts.report.writers`, the research
questions' tables `xstilts.report.research` (re-exported here: this module is the report's table API).

Conventions:
- a cell's value is the mean over seeds; seeds that share one evaluate phase (retrieval targets of the
  baseline, whose encoder does not depend on the seed) count once; the spread is the sample standard
  deviation (n - 1) over distinct results and the 95% t-interval of the mean, shown with two or more;
- deltas are differences of means against the baseline of the same encoder, with a 95% paired
  bootstrap interval over the evaluation examples and its p-value (`xstilts.report.significance`);
  `*` marks a delta whose interval excludes 0;
- the benchmark average of a row (XTREME or XTREME-R, as the sweep names it) is the mean of its
  per-target averages (each the mean over the target's evaluated languages, English included; QA
  scores are the mean of F1 and EM), as XTREME's evaluate.py computes its overall score; it is left
  blank unless the row has every target of the sweep;
- the best intermediate setting per target is chosen on the dev score (the target's English dev set
  its model was selected on; BUCC's sample split), never on the evaluation split it reports;
- Markdown shows numbers with 1 decimal (deltas signed; hours 2, distances 3); CSV keeps full precision.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xstilts.analysis.typology import typological_distance
from xstilts.plan.expand import BASELINE
from xstilts.report.collect import Results
from xstilts.report.grid import BENCHMARK_LABELS, QA_METRICS, CellStats, Grid
from xstilts.report.model import CORRELATION_NOTE, Cell, Column, ColumnFormat, Stat, Table, mean_of
from xstilts.report.research import research_tables
from xstilts.report.writers import EMPTY, format_cell, rows_to_csv, to_csv, to_markdown, write_csv
from xstilts.tasks import benchmark_targets

__all__ = [  # the model, grid and writers are re-exported: `xstilts.report.tables` is the report's API
    "BENCHMARK_LABELS", "CORRELATION_NOTE", "EMPTY", "QA_METRICS", "Cell", "CellStats", "Column",
    "ColumnFormat", "Grid", "Stat", "Table", "Tables", "build_tables", "format_cell", "mean_of",
    "rows_to_csv", "to_csv", "to_markdown", "write_csv",
]  # fmt: skip

BEST_PER_TARGET = "best per target"


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
    """Rows (encoder, intermediate setting); columns: deltas vs baseline per language, avg, zero-shot avg,
    each with its paired-bootstrap interval where the prediction files carry per-example stats."""
    langs = grid.languages(target)
    columns = _key_columns([Column(lang, lang, "signed") for lang in langs])
    columns += [Column("avg", "avg", "signed"), Column("zero_shot_avg", "zero-shot avg", "signed")]
    columns.append(Column("seed_p", "p (seeds)", "p"))
    table = Table(f"{target}_delta", f"{target}: Δ vs baseline", columns)
    intervals = False
    for enc, setting in grid.row_keys(target):
        base, cell = grid.cell(enc, BASELINE, target), grid.cell(enc, setting, target)
        if setting == BASELINE or base is None or cell is None:
            continue
        found = grid.significance.target(enc, setting, target)
        deltas: list[Cell] = [
            _difference(_mean_or_none(cell.language(lang)), _mean_or_none(base.language(lang)))
            for lang in langs
        ]
        average: Cell = cell.average.mean - base.average.mean
        zero_shot: Cell = _difference(_mean_or_none(cell.zero_shot), _mean_or_none(base.zero_shot))
        seed_p = None
        if found is not None:
            intervals = True
            deltas = [found.languages.get(lang, d) for lang, d in zip(langs, deltas, strict=True)]
            average, seed_p = found.average, found.average.seed_p
            zero_shot = found.zero_shot if found.zero_shot is not None else zero_shot
        table.rows.append([enc, setting, *deltas, average, zero_shot, seed_p])
    if not table.rows:
        table.notes.append("no baseline result for this target yet: deltas need one")
    else:
        table.notes.append("difference of means over seeds, same encoder's baseline")
        table.notes.append(SIGNIFICANCE_NOTE if intervals else NO_INTERVALS_NOTE)
    return table


SIGNIFICANCE_NOTE = (
    "[low, high]: 95% paired bootstrap interval over the evaluation examples (same examples and seeds for "
    "both systems; 1000 resamples, seeded); * marks an interval that excludes 0; p (seeds): sign-flip "
    "permutation test over paired seeds (3 or more)"
)
NO_INTERVALS_NOTE = "no intervals: the prediction files carry no per-example stats (runs of an older xstilts)"


@dataclass(frozen=True)
class BestChoice:
    encoder: str
    target: str
    setting: str
    average: float  # on the evaluation split, reported
    baseline: float | None
    criterion: str  # what the choice was made on (never the evaluation split)
    dev: float | None = None

    @property
    def delta(self) -> float | None:
        return _difference(self.average, self.baseline)


NO_DEV_CRITERION = "mean dev rank over the targets with a dev score (this target has no dev split)"


def best_per_target(grid: Grid, encoder: str) -> dict[str, BestChoice]:
    """For each target, the intermediate setting with the best DEV score (ties: the first in sweep order):
    the target's English dev score its model was selected on, or BUCC's sample split. A target with no
    dev split (Tatoeba, LAReQA) takes the setting with the best mean dev rank over the targets that have
    one. The evaluation split is never used to choose."""
    settings = grid.results.intermediate_settings
    dev = {
        target: {s: d for s in settings if (d := grid.dev(encoder, s, target)) is not None}
        for target in grid.results.targets
    }
    with_dev = {t: scores for t, scores in dev.items() if scores}
    ranks: dict[str, list[int]] = {}
    for scores in with_dev.values():
        ordered = sorted(scores, key=lambda s: (-scores[s][0], settings.index(s)))
        for rank, setting in enumerate(ordered, start=1):
            ranks.setdefault(setting, []).append(rank)
    ranked = sorted(
        (s for s in settings if with_dev and len(ranks.get(s, [])) == len(with_dev)),
        key=lambda s: (statistics.fmean(ranks[s]), settings.index(s)),
    )
    choices = {}
    for target in grid.results.targets:
        scored = dev[target]
        if scored:
            best = max(scored.values(), key=lambda v: v[0])[0]
            setting = next(s for s in settings if s in scored and scored[s][0] == best)
            criterion, dev_score = scored[setting][1], scored[setting][0]
        else:  # no dev split: the best mean dev rank elsewhere, among settings with a result here
            fallback = [s for s in ranked if grid.average(encoder, s, target) is not None]
            if not fallback:
                continue
            setting, criterion, dev_score = fallback[0], NO_DEV_CRITERION, None
        average = grid.average(encoder, setting, target)
        if average is None:
            continue
        baseline = grid.average(encoder, BASELINE, target)
        choices[target] = BestChoice(encoder, target, setting, average, baseline, criterion, dev_score)
    return choices


def _best_row_xtreme(grid: Grid, choices: dict[str, BestChoice]) -> float | None:
    if len(choices) != len(grid.results.targets):
        return None
    return mean_of(c.average for c in choices.values())


def summary_table(grid: Grid) -> Table:
    """Rows (encoder, setting) plus each encoder's best-per-target row; columns: each target's average,
    the XTREME-style average and its delta vs the baseline."""
    targets = grid.results.targets
    label = benchmark_average_label(grid)
    columns = _key_columns([Column(t, target_header(grid, t)) for t in targets])
    columns += [Column("xtreme_avg", label), Column("delta_xtreme_avg", f"Δ {label}", "signed")]
    table = Table("summary", "Summary: average score per target", columns)
    for enc in grid.results.encoders:
        baseline_xtreme = grid.xtreme_average(enc, BASELINE)
        for e, setting in grid.row_keys():
            if e != enc:
                continue
            xtreme = grid.xtreme_average(enc, setting)
            delta: Cell = _difference(xtreme, baseline_xtreme) if setting != BASELINE else None
            if delta is not None:
                delta = grid.significance.combined(enc, {t: setting for t in targets}) or delta
            averages = [grid.average(enc, setting, t) for t in targets]
            table.rows.append([enc, setting, *averages, xtreme, delta])
        choices = best_per_target(grid, enc)
        if choices:
            xtreme = _best_row_xtreme(grid, choices)
            delta = _difference(xtreme, baseline_xtreme)
            if delta is not None:
                delta = grid.significance.combined(enc, {t: c.setting for t, c in choices.items()}) or delta
            table.rows.append([
                enc, BEST_PER_TARGET, *(choices[t].average if t in choices else None for t in targets),
                xtreme, delta,
            ])  # fmt: skip
    table.notes.append(benchmark_note(grid))
    table.notes.append(
        f"'{BEST_PER_TARGET}': for each target the intermediate setting with the best dev score (see the "
        "best-setting table), reported on the evaluation split"
    )
    return table


def target_header(grid: Grid, target: str) -> str:
    """A target's column header; a metric that is not the task's official one says so (BUCC mined over the
    hub's gold pairs only: `bucc_f1_gold_only`)."""
    metric = grid.metric(target)
    return f"{target} ({metric})" if metric.endswith("_gold_only") else target


def benchmark_average_label(grid: Grid) -> str:
    label = grid.benchmark_label
    return "avg over targets" if grid.results.benchmark == "custom" else f"{label} avg"


def benchmark_note(grid: Grid) -> str:
    """What the benchmark-average column is: which benchmark, whether the sweep covers all its tasks."""

    results = grid.results
    head = ("mean of the per-target averages (blank unless the row has every target); QA targets count "
            "(F1 + EM) / 2, as XTREME's score (papers often quote QA F1: see the QA table)")  # fmt: skip
    if results.benchmark == "custom":
        return f"{head}; custom benchmark: each target in all its registered languages, not an XTREME score"
    members = benchmark_targets(results.benchmark)
    label = grid.benchmark_label
    covered = [t for t in members if t in results.targets]
    unofficial = [t for t in results.targets if grid.metric(t).endswith("_gold_only")]
    if unofficial:
        return (f"{head}; {', '.join(unofficial)} scored with {grid.metric(unofficial[0])} (the hub's gold "
                f"pairs only, no distractors): not the {label} score")  # fmt: skip
    if len(covered) == len(members):
        return f"{head}; {label}: its {len(members)} tasks in exactly its languages"
    return (f"{head}; {label} languages, but only {len(covered)} of its {len(members)} tasks "
            f"({', '.join(covered)}): not the {label} score")  # fmt: skip


def summary_delta_table(grid: Grid) -> Table:
    """Rows (encoder, intermediate setting); columns: each target's average delta vs baseline, and XTREME."""
    targets = grid.results.targets
    columns = _key_columns([Column(t, target_header(grid, t), "signed") for t in targets])
    columns.append(Column("xtreme_avg", benchmark_average_label(grid), "signed"))
    table = Table("summary_delta", "Δ vs baseline: average score per target", columns)
    intervals = False
    for enc, setting in grid.row_keys():
        if setting == BASELINE or not grid.has_baseline(enc):
            continue
        deltas: list[Cell] = []
        for t in targets:
            delta = _difference(grid.average(enc, setting, t), grid.average(enc, BASELINE, t))
            found = grid.significance.target(enc, setting, t) if delta is not None else None
            intervals = intervals or found is not None
            deltas.append(found.average if found is not None else delta)
        xtreme: Cell = _difference(grid.xtreme_average(enc, setting), grid.xtreme_average(enc, BASELINE))
        if xtreme is not None:
            xtreme = grid.significance.combined(enc, {t: setting for t in targets}) or xtreme
        table.rows.append([enc, setting, *deltas, xtreme])
    if table.rows:
        table.notes.append(SIGNIFICANCE_NOTE if intervals else NO_INTERVALS_NOTE)
    return table


def best_table(grid: Grid) -> Table:
    """The setting picked for each target in the best-per-target row, with its delta vs baseline."""
    columns = [
        Column("encoder", "encoder", "text"), Column("target", "target", "text"),
        Column("setting", "best intermediate", "text"), Column("selected_on", "selected on", "text"),
        Column("dev", "dev score"), Column("average", "avg (evaluation)"),
        Column("baseline", "baseline avg"), Column("delta", "Δ", "signed"),
    ]  # fmt: skip
    table = Table("best", "Best intermediate setting per target (chosen on dev)", columns)
    for enc in grid.results.encoders:
        for target, choice in best_per_target(grid, enc).items():
            found = grid.significance.target(enc, choice.setting, target)
            delta: Cell = found.average if found is not None and choice.delta is not None else choice.delta
            table.rows.append([enc, target, choice.setting, choice.criterion, choice.dev, choice.average,
                               choice.baseline, delta])  # fmt: skip
    table.notes.append(
        "chosen on the dev score named in 'selected on' (English dev: the target's English dev set its "
        "model was selected on), never on the evaluation split reported in avg"
    )
    return table


def qa_table(grid: Grid) -> Table | None:
    """QA targets' F1 and exact match (averages over languages, mean ± std over seeds): XTREME's QA
    score is their mean, papers usually quote F1."""
    targets = [t for t in grid.results.targets if grid.is_qa(t)]
    if not targets:
        return None
    columns = _key_columns()
    for t in targets:
        columns += [Column(f"{t}_f1", f"{t} F1"), Column(f"{t}_exact_match", f"{t} EM")]
    table = Table("qa", "QA: F1 and exact match (average over languages)", columns)
    for enc, setting in grid.row_keys():
        row: list[Cell] = [enc, setting]
        for t in targets:
            cell = grid.cell(enc, setting, t)
            for field_name in ("f1", "exact_match"):
                values = [
                    statistics.fmean(fields[field_name] for fields in run.languages.values())
                    for run in (cell.runs if cell else [])
                    if all(field_name in fields for fields in run.languages.values())
                ]
                row.append(Stat.of(values) if values else None)
        table.rows.append(row)
    table.notes.append(
        "score = (F1 + EM) / 2 per language, as XTREME averages QA; mean ± std [95% CI] over seeds"
    )
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
    """Syntactic distance from English from `xstilts.analysis.typology`."""

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


def distance_correlation_table(table: Table) -> Table | None:
    """Rank correlation of syntactic distance from English with each setting's per-language delta: n,
    Spearman's rho and Kendall's tau, each with a permutation p-value and a 95% bootstrap interval
    (seeded). None without distances."""
    keys = [c.key for c in table.columns]
    if "syntactic_distance" not in keys:
        return None
    from xstilts.evaluate.statistics import correlation_test, stable_seed

    columns = [
        Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
        Column("n", "n", "integer"), *CORRELATION_COLUMNS,
    ]  # fmt: skip
    out = Table("distance_correlation", "Syntactic distance from English vs Δ (rank correlation)", columns)
    x = keys.index("syntactic_distance")
    for enc in dict.fromkeys(str(row[0]) for row in table.rows):
        rows = [row for row in table.rows if row[0] == enc]
        for setting in keys[keys.index("targets") + 1 :]:
            y = keys.index(setting)
            pairs = [
                (row[x], row[y]) for row in rows if isinstance(row[x], float) and isinstance(row[y], float)
            ]
            test = correlation_test(
                [p[0] for p in pairs], [p[1] for p in pairs], seed=stable_seed(enc, setting)
            )
            out.rows.append([enc, setting, test.n, *correlation_cells(test)])
    out.notes.append(CORRELATION_NOTE)
    return out


CORRELATION_COLUMNS = (
    Column("spearman", "Spearman's rho", "fraction"), Column("spearman_p", "p (rho)", "p"),
    Column("spearman_ci", "rho 95% CI", "text"), Column("kendall", "Kendall's tau", "fraction"),
    Column("kendall_p", "p (tau)", "p"), Column("kendall_ci", "tau 95% CI", "text"),
)  # fmt: skip


def correlation_cells(test) -> list[Cell]:
    def finite(value: float) -> float | None:
        return None if math.isnan(value) else value

    def interval(low: float, high: float) -> str | None:
        return None if math.isnan(low) or math.isnan(high) else f"[{low:+.2f}, {high:+.2f}]"

    return [
        finite(test.spearman), finite(test.spearman_p), interval(test.spearman_low, test.spearman_high),
        finite(test.kendall), finite(test.kendall_p), interval(test.kendall_low, test.kendall_high),
    ]  # fmt: skip


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
    qa: Table | None = None
    distance_correlation: Table | None = None
    benchmark: str = "custom"

    def all(self) -> list[Table]:
        per_target = [t for name in self.targets for t in (self.targets[name], self.target_deltas[name])]
        extra = [t for t in (self.qa,) if t is not None]
        distance = [t for t in (self.distance_correlation,) if t is not None]
        return [self.summary, self.summary_delta, self.best, *extra, *per_target, self.languages, *distance,
                *self.research.values(), self.cost]  # fmt: skip


def build_tables(results: Results, distance: DistanceFn | None = None) -> Tables:
    """Every table of the report. `distance` defaults to the typology module's, when importable."""

    grid = Grid(results)
    distance = distance if distance is not None else load_distance()
    targets = [t for t in results.targets if any(key[2] == t for key in grid.cells)]
    languages = languages_table(grid, distance)
    return Tables(
        summary=summary_table(grid), summary_delta=summary_delta_table(grid), best=best_table(grid),
        targets={t: target_table(grid, t) for t in targets},
        target_deltas={t: target_delta_table(grid, t) for t in targets},
        languages=languages, cost=cost_table(results), correlations=distance_correlations(languages),
        research={table.name: table for table in research_tables(grid, distance)}, qa=qa_table(grid),
        distance_correlation=distance_correlation_table(languages), benchmark=results.benchmark,
    )  # fmt: skip
