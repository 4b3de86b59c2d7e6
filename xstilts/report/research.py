"""The report's tables for the research questions, each present only when the sweep has what it needs:

- `robustness` (sweeps with `robustness`): the gap, clean minus perturbed score, per language for every
  (encoder, setting, target, perturbation), and the relative gap, mean ± std and interval over model
  seeds x perturbation seeds;
- `robustness_by_tasks`: how the gap moves with the number of intermediate tasks in the setting
  (0 = baseline), averaged over the settings of that size and the targets;
- `robustness_trend`: the least-squares slope of the gap on the number of intermediate tasks, with t and
  bootstrap intervals (a trend test);
- `robustness_groups`: the gap per XTREME-R task group;
- `domain_alignment` (sweeps with `analysis: {domain_alignment: true}`): the alignment measures of each
  intermediate setting with each target beside the transfer gain (setting average minus baseline
  average on the target); a mixture gets the mean of its tasks' measures;
- `domain_correlation`: n, Spearman's rho, Pearson's r and Kendall's tau between each measure and the
  gain (`xstilts.analysis.alignment.alignment_report`), with permutation p-values and bootstrap
  intervals, over all pairs and per target (same-corpus pairs left out);
- `domain_alignment_languages`: the measures against each target language's evaluation text, with the
  language's gain and the encoder's CKA on paired examples;
- `domain_partial_correlation`: the partial Spearman correlation of each measure with the gain,
  controlling for the intermediate training size, with a bootstrap interval;
- `difficulty` (sweeps whose single-task settings span at least two difficulty levels of the registry,
  or that probe them): the settings ordered by difficulty, with the measured difficulty, and their
  deltas vs baseline per target;
- `difficulty_languages` and `difficulty_regression` (sweeps with `analysis.difficulty_probe`): the
  measured difficulty joined to the gain per language with its typological distance, and the regression
  gain ~ difficulty + distance + difficulty x distance with intervals.

numpy is the only numeric dependency; no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from xstilts.plan.expand import BASELINE
from xstilts.report.collect import Results, RunResult
from xstilts.report.grid import Grid
from xstilts.report.model import CORRELATION_NOTE, Column, Stat, Table, mean_of
from xstilts.tasks import get_task

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


# XTREME-R's task groups (Ruder et al. 2021, Table 1); PAWS-X and BUCC, XTREME's but not XTREME-R's, in
# the groups XTREME put them in.
TASK_GROUPS = {
    "xnli": "classification", "xcopa": "classification", "pawsx": "classification",
    "udpos": "structured prediction", "panx": "structured prediction",
    "xquad": "question answering", "mlqa": "question answering", "tydiqa": "question answering",
    "tatoeba": "retrieval", "mewsli-x": "retrieval", "lareqa": "retrieval", "bucc": "retrieval",
}  # fmt: skip


def perturbation_labels(results: Results) -> list[str]:
    """The perturbations of the sweep, one label for all the seeds of one (`char_noise-0.1@seed1`, ...)."""
    from xstilts.evaluate.robustness import base_label

    return list(dict.fromkeys(base_label(name) for run in results.runs for name in run.perturbed))


def seed_gaps(run: RunResult, name: str) -> list[dict[str, float]]:
    """Per perturbation seed: lang -> clean score minus perturbed score, for the languages it applied to."""
    from xstilts.evaluate.robustness import base_label

    out = []
    for label, perturbed in run.perturbed.items():
        if base_label(label) == name:
            gaps = {lang: run.scores[lang] - score for lang, score in perturbed.items() if lang in run.scores}
            if gaps:
                out.append(gaps)
    return out


def run_gaps(run: RunResult, name: str) -> dict[str, float]:
    """lang -> the gap, the mean over the perturbation's seeds."""
    per_seed = seed_gaps(run, name)
    langs = {lang for gaps in per_seed for lang in gaps}
    return {lang: statistics.fmean(g[lang] for g in per_seed if lang in g) for lang in langs}


def _relative(run: RunResult, gaps: dict[str, float]) -> float | None:
    """The gap relative to the clean score, in percent, averaged over the languages."""
    shares = [100 * gap / run.scores[lang] for lang, gap in gaps.items() if run.scores.get(lang)]
    return statistics.fmean(shares) if shares else None


def robustness_table(grid: Grid) -> Table:
    """Rows (encoder, setting, target, perturbation): the gap per language, its mean (avg) and the
    relative gap, each a mean with its interval over model seeds x perturbation seeds."""
    results = grid.results
    labels = perturbation_labels(results)
    found = {lang for target in results.targets for lang in grid.languages(target)}
    langs = sorted(found, key=lambda lang: (lang != "en", lang))
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("tasks", "tasks", "integer"), Column("target", "target", "text"),
               Column("perturbation", "perturbation", "text"),
               Column("perturbation_seeds", "perturbation seeds", "integer")]  # fmt: skip
    columns += [Column(lang, lang, "signed") for lang in langs]
    columns += [Column("avg", "avg gap", "signed"), Column("relative", "relative gap %", "signed")]
    table = Table("robustness", "Robustness gap: clean minus perturbed score", columns)
    for enc, setting in grid.row_keys():
        for target in results.targets:
            cell = grid.cell(enc, setting, target)
            if cell is None:
                continue
            for name in labels:
                per_run = [(run, seed_gaps(run, name)) for run in cell.runs]
                gaps = [(run, g) for run, per_seed in per_run for g in per_seed]
                if not gaps:
                    continue
                per_lang = [_stat([g[lang] for _, g in gaps if lang in g]) for lang in langs]
                average = _stat([statistics.fmean(g.values()) for _, g in gaps])
                relative = _stat([r for r in (_relative(run, g) for run, g in gaps) if r is not None])
                seeds = max(len(per_seed) for _, per_seed in per_run)
                size = task_count(results, setting)
                table.rows.append([enc, setting, size, target, name, seeds, *per_lang, average, relative])
    table.notes.append("positive: the perturbation costs that many points; relative: the gap as a "
                       "percentage of the clean score; mean ± std [95% t-interval] over model seeds x "
                       "perturbation seeds; blank: not applicable (metrics.json perturbations_skipped "
                       "says why)")  # fmt: skip
    return table


def robustness_by_tasks_table(grid: Grid) -> Table:
    """Rows (encoder, perturbation, number of intermediate tasks): settings, clean and perturbed averages
    over the languages the perturbation applied to, and the gap (means over settings and targets)."""
    results = grid.results
    columns = [Column("encoder", "encoder", "text"), Column("perturbation", "perturbation", "text"),
               Column("tasks", "intermediate tasks", "integer"), Column("settings", "settings", "integer"),
               Column("clean", "clean avg"), Column("perturbed", "perturbed avg"),
               Column("gap", "gap", "signed"), Column("relative", "relative gap %", "signed")]  # fmt: skip
    table = Table("robustness_by_tasks", "Robustness gap by number of intermediate tasks", columns)
    for enc in results.encoders:
        for name in perturbation_labels(results):
            by_size: dict[int, list[tuple[str, str, float, float]]] = {}
            for setting, target, clean, perturbed in _setting_scores(grid, enc, name):
                by_size.setdefault(task_count(results, setting), []).append(
                    (setting, target, clean, perturbed)
                )
            for size in sorted(by_size):
                entries = by_size[size]
                clean_avg = statistics.fmean(e[2] for e in entries)
                perturbed_avg = statistics.fmean(e[3] for e in entries)
                relative = statistics.fmean(100 * (e[2] - e[3]) / e[2] for e in entries if e[2])
                settings = len({e[0] for e in entries})
                gap = clean_avg - perturbed_avg
                table.rows.append([enc, name, size, settings, clean_avg, perturbed_avg, gap, relative])
    table.notes.append("0 tasks: the baseline; means over the settings of each size and the targets")
    return table


def robustness_trend_table(grid: Grid) -> Table:
    """Per (encoder, perturbation): the least-squares slope of the gap (and of the relative gap) on the
    number of intermediate tasks over the (setting, target) cells, with its 95% intervals."""
    from xstilts.analysis.regression import slope
    from xstilts.evaluate.statistics import stable_seed

    results = grid.results
    columns = [Column("encoder", "encoder", "text"), Column("perturbation", "perturbation", "text"),
               Column("n", "cells", "integer"), Column("sizes", "task counts", "integer"),
               Column("slope", "gap slope / task", "signed"), Column("slope_ci", "95% CI (t)", "text"),
               Column("slope_boot_ci", "95% CI (bootstrap)", "text"),
               Column("relative_slope", "relative slope %/task", "signed"),
               Column("relative_ci", "95% CI (t)", "text")]  # fmt: skip
    table = Table(
        "robustness_trend", "Trend of the robustness gap with the number of intermediate tasks", columns
    )
    for enc in results.encoders:
        for name in perturbation_labels(results):
            cells = [(task_count(results, s), c, p) for s, _, c, p in _setting_scores(grid, enc, name)]
            sizes = len({size for size, _, _ in cells})
            if len(cells) < 2 or sizes < 2:
                continue
            x = [float(size) for size, _, _ in cells]
            fit = slope(x, [c - p for _, c, p in cells], seed=stable_seed(enc, name))
            relative = slope(
                x, [100 * (c - p) / c if c else 0.0 for _, c, p in cells], seed=stable_seed(name, enc)
            )
            table.rows.append([enc, name, len(cells), sizes, fit.estimate,
                               _interval(fit.t_low, fit.t_high, 1), _interval(fit.boot_low, fit.boot_high, 1),
                               relative.estimate,
                               _interval(relative.t_low, relative.t_high, 1)])  # fmt: skip
    table.notes.append("cells: (setting, target) means over seeds; a negative slope: more intermediate "
                       "tasks, a smaller gap; t: from the residual variance (blank with fewer than 3 cells); "
                       "bootstrap: 1000 resamples of the cells, seeded")  # fmt: skip
    return table


def robustness_groups_table(grid: Grid) -> Table | None:
    """XTREME-R's task groups: per (encoder, setting, perturbation, group) the mean over the group's
    targets of the clean score, the gap and the relative gap (None without a grouped target)."""
    results = grid.results
    grouped = [t for t in results.targets if t in TASK_GROUPS]
    if not grouped:
        return None
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("perturbation", "perturbation", "text"), Column("group", "task group", "text"),
               Column("targets", "targets", "integer"), Column("clean", "clean avg"),
               Column("gap", "gap", "signed"), Column("relative", "relative gap %", "signed")]  # fmt: skip
    table = Table("robustness_groups", "Robustness gap by XTREME-R task group", columns)
    for enc in results.encoders:
        for name in perturbation_labels(results):
            by_cell: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for setting, target, clean, perturbed in _setting_scores(grid, enc, name):
                if target in TASK_GROUPS:
                    by_cell.setdefault((setting, TASK_GROUPS[target]), []).append((clean, perturbed))
            for (setting, group), entries in by_cell.items():
                clean = statistics.fmean(e[0] for e in entries)
                gap = statistics.fmean(e[0] - e[1] for e in entries)
                relative = statistics.fmean(100 * (e[0] - e[1]) / e[0] for e in entries if e[0])
                table.rows.append([enc, setting, name, group, len(entries), clean, gap, relative])
    table.notes.append("groups as XTREME-R (classification, structured prediction, question answering, "
                       "retrieval); PAWS-X and BUCC in their XTREME groups; means over the group's "
                       "targets")  # fmt: skip
    return table


def _setting_scores(grid: Grid, encoder: str, name: str) -> Iterable[tuple[str, str, float, float]]:
    """(setting, target, clean, perturbed) per (setting, target) cell of `encoder`, means over seeds."""
    for enc, setting in grid.row_keys():
        for target in grid.results.targets if enc == encoder else ():
            cell = grid.cell(enc, setting, target)
            pairs = [p for p in (_clean_and_perturbed(r, name) for r in cell.runs) if p] if cell else []
            if pairs:
                yield (setting, target, statistics.fmean(p[0] for p in pairs),
                       statistics.fmean(p[1] for p in pairs))  # fmt: skip


def _clean_and_perturbed(run: RunResult, name: str) -> tuple[float, float] | None:
    gaps = run_gaps(run, name)
    if not gaps:
        return None
    clean = statistics.fmean(run.scores[lang] for lang in gaps)
    return clean, clean - statistics.fmean(gaps.values())


# --------------------------------------------------------------------------- domain alignment


def alignment_pairs(grid: Grid, reference: str = "train") -> list[dict[str, Any]]:
    """One dict per (encoder, intermediate setting, target[, language]) with the measures, the transfer
    gain, the setting's training size and whether it shares a corpus with the target. `reference`:
    `train` (the target's English training text; gain: the target average's) or `eval` (its evaluation
    text per language; gain: that language's)."""
    results = grid.results
    by_task: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in results.alignment:
        if row.get("reference", "train") == reference:
            by_task[(row["encoder"], row["intermediate"], row["target"], str(row.get("language", "en")))] = (
                row
            )
    languages = sorted({key[3] for key in by_task}, key=lambda lang: (lang != "en", lang))
    pairs = []
    for enc in results.encoders:
        for setting in results.intermediate_settings:
            tasks = results.setting_tasks.get(setting, [])
            for target in results.targets:
                for lang in languages:
                    rows = [by_task.get((enc, task, target, lang)) for task in tasks]
                    if not rows or any(r is None for r in rows):
                        continue
                    measures = {m: mean_of(_finite(r.get(m)) for r in rows if r) for m in (*MEASURES, "cka")}
                    gain = (_delta(grid, enc, setting, target) if reference == "train"
                            else _language_delta(grid, enc, setting, target, lang))  # fmt: skip
                    pairs.append({"encoder": enc, "setting": setting, "tasks": len(tasks), "target": target,
                                  "language": lang, **measures, "gain": gain,
                                  "same_corpus": any(bool(r and r.get("same_corpus")) for r in rows),
                                  "train_size": results.setting_sizes.get(setting)})  # fmt: skip
    return pairs


def _language_delta(grid: Grid, encoder: str, setting: str, target: str, lang: str) -> float | None:
    cell, base = grid.cell(encoder, setting, target), grid.cell(encoder, BASELINE, target)
    value = cell.language(lang) if cell else None
    reference = base.language(lang) if base else None
    return value.mean - reference.mean if value and reference else None


def alignment_table(pairs: list[dict[str, Any]]) -> Table:
    columns = [Column("encoder", "encoder", "text"), Column("setting", "intermediate", "text"),
               Column("target", "target", "text"), Column("same_corpus", "same corpus", "text"),
               Column("train_size", "train examples", "integer")]  # fmt: skip
    columns += [Column(m, MEASURE_HEADERS[m], "fraction") for m in MEASURES]
    columns.append(Column("gain", "transfer gain", "signed"))
    title = "Domain alignment of intermediate and target data vs transfer gain"
    table = Table("domain_alignment", title, columns)
    for pair in pairs:
        table.rows.append([pair["encoder"], pair["setting"], pair["target"], _yes_no(pair["same_corpus"]),
                           pair["train_size"], *(pair[m] for m in MEASURES), pair["gain"]])  # fmt: skip
    table.notes.append("measures over seeded random samples of English training text "
                       "(xstilts.phases.analysis); transfer gain: the setting's average minus the baseline's "
                       "on the target; mixtures: mean of their tasks' measures; same corpus: closeness by "
                       "construction (left out of the correlations)")  # fmt: skip
    return table


def alignment_languages_table(pairs: list[dict[str, Any]]) -> Table:
    """The intermediate training text against each target language's evaluation text, with the
    language's gain and the encoder's CKA between the language and English (paired examples)."""
    columns = [Column("encoder", "encoder", "text"), Column("setting", "intermediate", "text"),
               Column("target", "target", "text"), Column("language", "language", "text"),
               Column("same_corpus", "same corpus", "text")]  # fmt: skip
    columns += [Column(m, MEASURE_HEADERS[m], "fraction") for m in MEASURES]
    columns += [Column("cka", "CKA (paired)", "fraction"), Column("gain", "gain", "signed")]
    table = Table("domain_alignment_languages", "Alignment with the target's evaluation text per language",
                  columns)  # fmt: skip
    for pair in pairs:
        table.rows.append([pair["encoder"], pair["setting"], pair["target"], pair["language"],
                           _yes_no(pair["same_corpus"]), *(pair[m] for m in MEASURES), pair["cka"],
                           pair["gain"]])  # fmt: skip
    table.notes.append("gain: the setting's score in the language minus the baseline's; CKA: linear CKA of "
                       "the encoder's embeddings of the same examples in English and the language (parallel "
                       "evaluation sets, bitext pairs); blank where the data has no pairs")  # fmt: skip
    return table


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def correlation_table(pairs: list[dict[str, Any]]) -> Table:
    from xstilts.analysis.alignment import alignment_report

    columns = [Column("encoder", "encoder", "text"), Column("measure", "measure", "text"),
               Column("group", "target", "text"), Column("n", "pairs", "integer"),
               Column("spearman", "Spearman's rho", "fraction"),
               Column("pearson", "Pearson's r", "fraction"), Column("spearman_p", "p (rho)", "p"),
               Column("spearman_ci", "rho 95% CI", "text"), Column("kendall", "Kendall's tau", "fraction"),
               Column("kendall_p", "p (tau)", "p"), Column("kendall_ci", "tau 95% CI", "text")]  # fmt: skip
    table = Table("domain_correlation", "Rank correlation of alignment with transfer gain", columns)
    pairs = [p for p in pairs if not p["same_corpus"]]
    for enc in dict.fromkeys(p["encoder"] for p in pairs):
        members = [p for p in pairs if p["encoder"] == enc]
        several = len({p["target"] for p in members}) > 1
        for row in alignment_report(members, measures=MEASURES, group_by="target" if several else None):
            group = ALL_PAIRS if row["group"] == "*" else row["group"]
            table.rows.append([
                enc, row["measure"], group, row["n"], _finite(row["spearman"]), _finite(row["pearson"]),
                _finite(row["spearman_p"]), _interval(row["spearman_low"], row["spearman_high"]),
                _finite(row["kendall"]), _finite(row["kendall_p"]),
                _interval(row["kendall_low"], row["kendall_high"]),
            ])  # fmt: skip
    table.notes.append("same-corpus pairs left out; blank: fewer than two pairs with a gain (p-values and "
                       "intervals: three), or a constant measure; " + CORRELATION_NOTE)  # fmt: skip
    return table


def partial_correlation_table(train_pairs: list[dict[str, Any]], eval_pairs: list[dict[str, Any]]) -> Table:
    """Partial Spearman correlation of each measure with the gain controlling for the intermediate
    training size, over the training-text pairs and over the per-language evaluation-text pairs."""
    from xstilts.analysis.alignment import partial_report

    columns = [Column("encoder", "encoder", "text"), Column("reference", "target text", "text"),
               Column("measure", "measure", "text"), Column("n", "pairs", "integer"),
               Column("partial", "partial rho | size", "fraction"),
               Column("ci", "95% CI", "text")]  # fmt: skip
    table = Table("domain_partial_correlation", "Alignment vs gain, controlling for intermediate data size",
                  columns)  # fmt: skip
    for reference, pairs in (("train", train_pairs), ("eval", eval_pairs)):
        usable = [p for p in pairs if not p["same_corpus"]]
        for enc in dict.fromkeys(p["encoder"] for p in usable):
            members = [p for p in usable if p["encoder"] == enc]
            for row in partial_report(members, MEASURES, control="train_size"):
                table.rows.append([enc, reference, row["measure"], row["n"], _finite(row["partial"]),
                                   _interval(row["low"], row["high"])])  # fmt: skip
    table.notes.append("partial Spearman: the rank correlation of measure and gain after a line on the rank "
                       "of the setting's training examples is taken out of both; CI: 95% percentile "
                       "bootstrap over the pairs (1000 resamples, seeded); blank: fewer than 4 pairs, or "
                       "the measure or gain explained by the size; same-corpus pairs left out")  # fmt: skip
    return table


def _interval(low: Any, high: Any, digits: int = 2) -> str | None:
    lo, hi = _finite(low), _finite(high)
    return None if lo is None or hi is None else f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"


# --------------------------------------------------------------------------- difficulty


def _difficulty(task_name: str) -> tuple[int | None, str]:

    try:
        task = get_task(task_name)
    except Exception:  # an unknown task (user registry): no difficulty
        return None, ""
    return task.difficulty_rank, task.difficulty


def _single_task_settings(results: Results) -> dict[str, str]:
    return {s: results.setting_tasks[s][0] for s in results.intermediate_settings
            if len(results.setting_tasks.get(s, [])) == 1}  # fmt: skip


def _probe(results: Results, encoder: str, setting: str) -> float | None:
    task = _single_task_settings(results).get(setting)
    return results.probe_scores.get(encoder, {}).get(task) if task else None


def difficulty_table(grid: Grid) -> Table | None:
    """Single-task settings ordered by the registry's difficulty level, with the measured difficulty
    (the probe's dev score) where the sweep probes, each target's delta vs baseline and their mean; None
    unless the settings span two levels or more, or are probed."""
    results = grid.results
    levels = {s: _difficulty(task) for s, task in _single_task_settings(results).items()}
    levels = {s: level for s, level in levels.items() if level[0] is not None}
    if len({rank for rank, _ in levels.values()}) < 2 and not results.probe_scores:
        return None
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("difficulty", "difficulty", "text"), Column("rank", "rank", "integer"),
               Column("probe_dev", "probe dev score"), Column("measured", "measured difficulty")]  # fmt: skip
    columns += [Column(t, f"Δ {t}", "signed") for t in results.targets] + [Column("mean", "mean Δ", "signed")]
    table = Table("difficulty", "Δ vs baseline by intermediate-task difficulty", columns)
    for enc in results.encoders:
        for setting in sorted(levels, key=lambda s: (levels[s][0], s)):
            deltas = [_delta(grid, enc, setting, t) for t in results.targets]
            if all(d is None for d in deltas):
                continue
            rank, name = levels[setting]
            probe = _probe(results, enc, setting)
            measured = 100 - probe if probe is not None else None
            table.rows.append([enc, setting, name, rank, probe, measured, *deltas, mean_of(deltas)])
    table.notes.append("difficulty: the registry's ordinal level (easy < medium < hard < harder < hardest); "
                       "measured: 100 minus the English dev score the baseline encoder reaches after the "
                       "probe's fixed budget (analysis.difficulty_probe); per-language deltas with "
                       "typological distance: the per-language table")  # fmt: skip
    return table


def difficulty_points(grid: Grid, distance: Callable[[str], float] | None) -> list[dict[str, Any]]:
    """One point per (encoder, probed single-task setting, target, non-English language): measured
    difficulty, the language's typological distance from English and the transfer gain in it."""
    results = grid.results
    points = []
    for enc in results.encoders:
        for setting in _single_task_settings(results):
            probe = _probe(results, enc, setting)
            if probe is None:
                continue
            for target in results.targets:
                for lang in grid.languages(target):
                    if lang == "en":
                        continue
                    gain = _language_delta(grid, enc, setting, target, lang)
                    far = _distance(distance, lang)
                    if gain is not None and far is not None:
                        points.append({"encoder": enc, "setting": setting, "target": target, "language": lang,
                                       "difficulty": 100 - probe, "distance": far, "gain": gain})  # fmt: skip
    return points


def _distance(distance: Callable[[str], float] | None, lang: str) -> float | None:
    if distance is None:
        return None
    try:
        return float(distance(lang))
    except (KeyError, ValueError):
        return None


def difficulty_languages_table(points: list[dict[str, Any]]) -> Table:
    columns = [Column("encoder", "encoder", "text"), Column("setting", "setting", "text"),
               Column("target", "target", "text"), Column("language", "language", "text"),
               Column("difficulty", "measured difficulty"),
               Column("distance", "syntactic distance", "fraction"),
               Column("gain", "gain", "signed")]  # fmt: skip
    table = Table("difficulty_languages", "Measured difficulty, typological distance and gain per language",
                  columns)  # fmt: skip
    for p in points:
        table.rows.append([p["encoder"], p["setting"], p["target"], p["language"], p["difficulty"],
                           p["distance"], p["gain"]])  # fmt: skip
    table.notes.append("gain: the setting's score in the language minus the baseline's; distance: syntactic "
                       "distance from English (xstilts.analysis.typology)")  # fmt: skip
    return table


def difficulty_regression_table(points: list[dict[str, Any]]) -> Table:
    """gain ~ difficulty + distance + difficulty x distance by least squares, per encoder, each
    coefficient with its t and bootstrap 95% intervals (the predictors centred, so the main effects are
    the slopes at the mean of the other)."""
    from xstilts.analysis.regression import ols
    from xstilts.evaluate.statistics import stable_seed

    columns = [Column("encoder", "encoder", "text"), Column("term", "term", "text"),
               Column("n", "points", "integer"), Column("estimate", "estimate", "fraction"),
               Column("se", "std. error", "fraction"), Column("ci", "95% CI (t)", "text"),
               Column("boot_ci", "95% CI (bootstrap)", "text"), Column("r2", "R²", "fraction")]  # fmt: skip
    table = Table("difficulty_regression", "Gain ~ difficulty + distance + difficulty × distance", columns)
    for enc in dict.fromkeys(p["encoder"] for p in points):
        members = [p for p in points if p["encoder"] == enc]
        difficulty = np.array([p["difficulty"] for p in members])
        far = np.array([p["distance"] for p in members])
        difficulty, far = difficulty - difficulty.mean(), far - far.mean()
        fit = ols({"difficulty": difficulty, "distance": far, "difficulty x distance": difficulty * far},
                  [p["gain"] for p in members], seed=stable_seed("difficulty", enc))  # fmt: skip
        for c in fit.coefficients:
            table.rows.append([enc, c.name, fit.n, _finite(c.estimate), _finite(c.se),
                               _interval(c.t_low, c.t_high, 3), _interval(c.boot_low, c.boot_high, 3),
                               _finite(fit.r2)])  # fmt: skip
    table.notes.append("points: (probed setting, target, language) gains; difficulty and distance centred; "
                       "t: classical interval from the residual variance; bootstrap: 1000 resamples of the "
                       "points, seeded; blank: not identifiable (fewer points than terms, a constant "
                       "predictor)")  # fmt: skip
    return table


def _delta(grid: Grid, encoder: str, setting: str, target: str) -> float | None:
    value, base = grid.average(encoder, setting, target), grid.average(encoder, BASELINE, target)
    return value - base if value is not None and base is not None else None


# --------------------------------------------------------------------------- all


def research_tables(grid: Grid, distance: Callable[[str], float] | None = None) -> list[Table]:
    """The research tables this sweep's results support, in report order (`distance`: a language's
    typological distance from English, for the difficulty regression)."""
    tables: list[Table] = []
    if perturbation_labels(grid.results):
        tables += [robustness_table(grid), robustness_by_tasks_table(grid), robustness_trend_table(grid)]
        groups = robustness_groups_table(grid)
        if groups is not None:
            tables.append(groups)
    if grid.results.alignment:
        pairs, per_language = alignment_pairs(grid), alignment_pairs(grid, "eval")
        tables += [alignment_table(pairs), correlation_table(pairs)]
        if per_language:
            tables.append(alignment_languages_table(per_language))
        tables.append(partial_correlation_table(pairs, per_language))
    difficulty = difficulty_table(grid)
    if difficulty is not None:
        tables.append(difficulty)
    points = difficulty_points(grid, distance)
    if points:
        tables += [difficulty_languages_table(points), difficulty_regression_table(points)]
    return tables
