"""The report's tables for the research questions, each present only when the sweep has what it needs:

- `robustness` (sweeps with `robustness`): the gap, clean minus perturbed score, per language for every
  (encoder, setting, target, perturbation), mean ± std over seeds;
- `robustness_by_tasks`: how the gap moves with the number of intermediate tasks in the setting
  (0 = baseline), averaged over the settings of that size and the targets;
- `domain_alignment` (sweeps with `analysis: {domain_alignment: true}`): the alignment measures of each
  intermediate setting with each target beside the transfer gain (setting average minus baseline
  average on the target); a mixture gets the mean of its tasks' measures;
- `domain_correlation`: Spearman's rho and Pearson's r between each measure and the gain
  (`xstilts.analysis.alignment.alignment_report`), over all pairs and per target;
- `difficulty` (sweeps whose single-task settings span at least two difficulty levels of the registry):
  the settings ordered by difficulty with their deltas vs baseline per target.

numpy (through `xstilts.analysis.alignment`) is the only numeric dependency; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from xstilts.plan.expand import BASELINE
from xstilts.report.collect import Results, RunResult
from xstilts.report.tables import Column, Grid, Stat, Table, mean_of

MEASURES = ("vocabulary_overlap", "weighted_vocabulary_overlap", "js_divergence", "embedding_cosine")
MEASURE_HEADERS = {
    "vocabulary_overlap": "vocab overlap", "weighted_vocabulary_overlap": "weighted overlap",
    "js_divergence": "JS divergence", "embedding_cosine": "embedding cosine",
}  # fmt: skip
ALL_PAIRS = "all"


def task_count(results: Results, setting: str) -> int:
    return len(results.setting_tasks.get(setting, [])) if setting != BASELINE else 0


def _stat(values: list[float]) -> Stat | None:
    return Stat.of(values) if values else None


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(float(value)) else None


# --------------------------------------------------------------------------- robustness


def perturbation_labels(results: Results) -> list[str]:
    return list(dict.fromkeys(name for run in results.runs for name in run.perturbed))


def run_gaps(run: RunResult, name: str) -> dict[str, float]:
    """lang -> clean score minus perturbed score, for the languages the perturbation applied to."""
    perturbed = run.perturbed.get(name, {})
    return {lang: run.scores[lang] - score for lang, score in perturbed.items() if lang in run.scores}


def robustness_table(grid: Grid) -> Table:
    """Rows (encoder, setting, target, perturbation): the gap per language and its mean (avg)."""
    results = grid.results
    labels = perturbation_labels(results)
    found = {lang for target in results.targets for lang in grid.languages(target)}
    langs = sorted(found, key=lambda lang: (lang != "en", lang))
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("tasks", "tasks", "integer"), Column("target", "target", "text"),
               Column("perturbation", "perturbation", "text")]  # fmt: skip
    columns += [Column(lang, lang, "signed") for lang in langs] + [Column("avg", "avg gap", "signed")]
    table = Table("robustness", "Robustness gap: clean minus perturbed score", columns)
    for enc, setting in grid.row_keys():
        for target in results.targets:
            cell = grid.cell(enc, setting, target)
            if cell is None:
                continue
            for name in labels:
                gaps = [run_gaps(run, name) for run in cell.runs]
                if not any(gaps):
                    continue
                per_lang = [_stat([g[lang] for g in gaps if lang in g]) for lang in langs]
                average = _stat([sum(g.values()) / len(g) for g in gaps if g])
                size = task_count(results, setting)
                table.rows.append([enc, setting, size, target, name, *per_lang, average])
    table.notes.append("positive: the perturbation costs that many points; mean ± std over seeds; blank: "
                       "not applicable (metrics.json perturbations_skipped says why)")  # fmt: skip
    return table


def robustness_by_tasks_table(grid: Grid) -> Table:
    """Rows (encoder, perturbation, number of intermediate tasks): settings, clean and perturbed averages
    over the languages the perturbation applied to, and the gap (means over settings and targets)."""
    results = grid.results
    columns = [Column("encoder", "encoder", "text"), Column("perturbation", "perturbation", "text"),
               Column("tasks", "intermediate tasks", "integer"), Column("settings", "settings", "integer"),
               Column("clean", "clean avg"), Column("perturbed", "perturbed avg"),
               Column("gap", "gap", "signed")]  # fmt: skip
    table = Table("robustness_by_tasks", "Robustness gap by number of intermediate tasks", columns)
    for enc in results.encoders:
        for name in perturbation_labels(results):
            by_size: dict[int, list[tuple[str, float, float]]] = {}
            for setting, clean, perturbed in _setting_scores(grid, enc, name):
                by_size.setdefault(task_count(results, setting), []).append((setting, clean, perturbed))
            for size in sorted(by_size):
                entries = by_size[size]
                clean_avg = sum(e[1] for e in entries) / len(entries)
                perturbed_avg = sum(e[2] for e in entries) / len(entries)
                settings = len({e[0] for e in entries})
                gap = clean_avg - perturbed_avg
                table.rows.append([enc, name, size, settings, clean_avg, perturbed_avg, gap])
    table.notes.append("0 tasks: the baseline; means over the settings of each size and the targets")
    return table


def _setting_scores(grid: Grid, encoder: str, name: str) -> Iterable[tuple[str, float, float]]:
    """(setting, clean, perturbed) per (setting, target) cell of `encoder`, each a mean over seeds."""
    for enc, setting in grid.row_keys():
        for target in grid.results.targets if enc == encoder else ():
            cell = grid.cell(enc, setting, target)
            pairs = [p for p in (_clean_and_perturbed(r, name) for r in cell.runs) if p] if cell else []
            if pairs:
                yield setting, sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)


def _clean_and_perturbed(run: RunResult, name: str) -> tuple[float, float] | None:
    perturbed = {lang: s for lang, s in run.perturbed.get(name, {}).items() if lang in run.scores}
    if not perturbed:
        return None
    clean = sum(run.scores[lang] for lang in perturbed) / len(perturbed)
    return clean, sum(perturbed.values()) / len(perturbed)


# --------------------------------------------------------------------------- domain alignment


def alignment_pairs(grid: Grid) -> list[dict[str, Any]]:
    """One dict per (encoder, intermediate setting, target) with the measures and the transfer gain."""
    results = grid.results
    by_task = {(r["encoder"], r["intermediate"], r["target"]): r for r in results.alignment}
    pairs = []
    for enc in results.encoders:
        for setting in results.intermediate_settings:
            tasks = results.setting_tasks.get(setting, [])
            for target in results.targets:
                rows = [by_task.get((enc, task, target)) for task in tasks]
                if not rows or any(r is None for r in rows):
                    continue
                measures = {m: mean_of(_finite(r.get(m)) for r in rows if r) for m in MEASURES}
                average, baseline = grid.average(enc, setting, target), grid.average(enc, BASELINE, target)
                gain = average - baseline if average is not None and baseline is not None else None
                pairs.append({"encoder": enc, "setting": setting, "tasks": len(tasks), "target": target,
                              **measures, "gain": gain})  # fmt: skip
    return pairs


def alignment_table(pairs: list[dict[str, Any]]) -> Table:
    columns = [Column("encoder", "encoder", "text"), Column("setting", "intermediate", "text"),
               Column("target", "target", "text")]  # fmt: skip
    columns += [Column(m, MEASURE_HEADERS[m], "fraction") for m in MEASURES]
    columns.append(Column("gain", "transfer gain", "signed"))
    title = "Domain alignment of intermediate and target data vs transfer gain"
    table = Table("domain_alignment", title, columns)
    for pair in pairs:
        table.rows.append([pair["encoder"], pair["setting"], pair["target"], *(pair[m] for m in MEASURES),
                           pair["gain"]])  # fmt: skip
    table.notes.append("measures over English training text (xstilts.phases.analysis); transfer gain: "
                       "the setting's average minus the baseline's on the target; mixtures: mean of their "
                       "tasks' measures")  # fmt: skip
    return table


def correlation_table(pairs: list[dict[str, Any]]) -> Table:
    from xstilts.analysis.alignment import alignment_report

    columns = [Column("encoder", "encoder", "text"), Column("measure", "measure", "text"),
               Column("group", "target", "text"), Column("n", "pairs", "integer"),
               Column("spearman", "Spearman's rho", "fraction"),
               Column("pearson", "Pearson's r", "fraction")]  # fmt: skip
    table = Table("domain_correlation", "Rank correlation of alignment with transfer gain", columns)
    for enc in dict.fromkeys(p["encoder"] for p in pairs):
        members = [p for p in pairs if p["encoder"] == enc]
        several = len({p["target"] for p in members}) > 1
        for row in alignment_report(members, measures=MEASURES, group_by="target" if several else None):
            group = ALL_PAIRS if row["group"] == "*" else row["group"]
            table.rows.append([enc, row["measure"], group, row["n"], _finite(row["spearman"]),
                               _finite(row["pearson"])])  # fmt: skip
    table.notes.append("blank: fewer than two pairs with a gain, or a constant measure")
    return table


# --------------------------------------------------------------------------- difficulty


def _difficulty(task_name: str) -> tuple[int | None, str]:
    from xstilts.tasks import get_task

    try:
        task = get_task(task_name)
    except Exception:  # an unknown task (user registry): no difficulty
        return None, ""
    return task.difficulty_rank, task.difficulty


def difficulty_table(grid: Grid) -> Table | None:
    """Single-task settings ordered by the registry's difficulty level, with each target's delta vs
    baseline and their mean; None unless the settings span two levels or more."""
    results = grid.results
    levels = {s: _difficulty(results.setting_tasks[s][0]) for s in results.intermediate_settings
              if len(results.setting_tasks.get(s, [])) == 1}  # fmt: skip
    levels = {s: level for s, level in levels.items() if level[0] is not None}
    if len({rank for rank, _ in levels.values()}) < 2:
        return None
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("difficulty", "difficulty", "text"), Column("rank", "rank", "integer")]  # fmt: skip
    columns += [Column(t, f"Δ {t}", "signed") for t in results.targets] + [Column("mean", "mean Δ", "signed")]
    table = Table("difficulty", "Δ vs baseline by intermediate-task difficulty", columns)
    for enc in results.encoders:
        for setting in sorted(levels, key=lambda s: (levels[s][0], s)):
            deltas = [_delta(grid, enc, setting, t) for t in results.targets]
            if all(d is None for d in deltas):
                continue
            rank, name = levels[setting]
            table.rows.append([enc, setting, name, rank, *deltas, mean_of(deltas)])
    table.notes.append("difficulty: the registry's ordinal level (easy < medium < hard < harder < hardest); "
                       "per-language deltas with typological distance: the per-language table")  # fmt: skip
    return table


def _delta(grid: Grid, encoder: str, setting: str, target: str) -> float | None:
    value, base = grid.average(encoder, setting, target), grid.average(encoder, BASELINE, target)
    return value - base if value is not None and base is not None else None


# --------------------------------------------------------------------------- all


def research_tables(grid: Grid) -> list[Table]:
    """The research tables this sweep's results support, in report order."""
    tables: list[Table] = []
    if perturbation_labels(grid.results):
        tables += [robustness_table(grid), robustness_by_tasks_table(grid)]
    if grid.results.alignment:
        pairs = alignment_pairs(grid)
        tables += [alignment_table(pairs), correlation_table(pairs)]
    difficulty = difficulty_table(grid)
    if difficulty is not None:
        tables.append(difficulty)
    return tables

