"""`xstilts report`: collect a sweep's results from the store; write report.md, CSV tables and PNG figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import xstilts.report.plots as plots
from xstilts.errors import XstiltsError
from xstilts.plan.expand import Plan
from xstilts.report.collect import MissingCell, Results, collect_results
from xstilts.report.tables import Table, Tables, build_tables, rows_to_csv, to_markdown, write_csv
from xstilts.store.base import Store

REPORT_FILE = "report.md"
RESULTS_FILE = "results.csv"  # long format: one row per (encoder, setting, target, seed, language)
MAX_MISSING_LISTED = 200


@dataclass
class ReportFiles:
    """The files a report wrote, by role. `csv` is keyed by table name (the file stem)."""

    out_dir: Path
    markdown: Path
    csv: dict[str, Path] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    results: Results | None = None

    def all(self) -> list[Path]:
        return [self.markdown, *self.csv.values(), *self.images.values()]


def build_report(plan: Plan, store: Store, out_dir: Path) -> ReportFiles:
    """Write the report of `plan`'s results in `store` to `out_dir` (created if needed) and return its files.

    Raises XstiltsError when no grid cell is complete yet. Cells still missing are listed in report.md.
    """
    results = collect_results(plan, store)
    if not results.runs:
        raise XstiltsError(_nothing_complete_message(results))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = build_tables(results)
    files = ReportFiles(out_dir=out_dir, markdown=out_dir / REPORT_FILE, results=results)
    for table in tables.all():
        files.csv[table.name] = write_csv(table, out_dir / f"{plots.safe_name(table.name)}.csv")
    files.csv["results"] = out_dir / RESULTS_FILE
    files.csv["results"].write_text(rows_to_csv(results.rows), encoding="utf-8")
    _draw(tables, out_dir, files)
    extra = _search_and_suggest_sections(plan, store)
    files.markdown.write_text(render_markdown(results, tables, files) + extra, encoding="utf-8")
    return files


def _search_and_suggest_sections(plan: Plan, store: Store) -> str:
    """Sections appended after the report: the successive-halving search (when the sweep has one) and the
    leave-one-target-out evaluation of `xstilts suggest` on the store's results (when it has any)."""
    from xstilts.report.search import search_summary, summary_markdown
    from xstilts.suggest.report import loto_markdown

    parts = [summary_markdown(search_summary(plan, store))] if plan.search is not None else []
    parts.append(loto_markdown(store) or "")
    return "".join("\n" + part for part in parts if part)


def _nothing_complete_message(results: Results) -> str:
    reason = "no grid cell of the sweep has a complete evaluate phase yet"
    unreadable = [m for m in results.missing if m.reason != "pending"]
    if unreadable:
        reason = f"{len(unreadable)} complete evaluate phase(s): bad metrics ({unreadable[0].reason})"
    return (
        f"nothing to report for sweep '{results.sweep}' in {results.store}: {reason} "
        f"(0 of {results.cells} cells); run `xstilts sweep status` to see progress, "
        "or pass the --store the sweep ran with"
    )


def _draw(tables: Tables, out_dir: Path, files: ReportFiles) -> None:
    heatmap = plots.heatmap(tables.summary_delta, out_dir / plots.HEATMAP_FILE)
    if heatmap is not None:
        files.images["heatmap"] = heatmap
    for target, table in tables.targets.items():
        image = plots.languages_plot(table, out_dir / plots.languages_plot_file(target))
        if image is not None:
            files.images[target] = image
    research = tables.research
    if "robustness_by_tasks" in research:
        image = plots.robustness_plot(research["robustness_by_tasks"], out_dir / plots.ROBUSTNESS_FILE)
        if image is not None:
            files.images["robustness"] = image
    if "domain_alignment" in research:
        image = plots.alignment_scatter(
            research["domain_alignment"], research["domain_correlation"], out_dir / plots.ALIGNMENT_FILE
        )
        if image is not None:
            files.images["domain_alignment"] = image


# --------------------------------------------------------------------------- Markdown


def _section(title: str, table: Table, level: int = 3) -> list[str]:
    lines = [f"{'#' * level} {title}", "", to_markdown(table).rstrip("\n"), ""]
    lines += [f"_{note}_" for note in table.notes]
    return lines + ([""] if table.notes else [])


def _image(files: ReportFiles, key: str, alt: str) -> list[str]:
    path = files.images.get(key)
    return [f"![{alt}]({path.name})", ""] if path else []


def _status_lines(results: Results) -> list[str]:
    done = results.cells - len(results.missing)
    lines = ["## Status", "", f"{done} of {results.cells} cells done (encoder x setting x target x seed)."]
    if not results.missing:
        return lines + [""]
    header = "| encoder | setting | target | seed | evaluate phase | state | next to run |"
    lines += ["", "Missing cells:", "", header, "|:---|:---|:---|---:|:---|:---|:---|"]
    for cell in results.missing[:MAX_MISSING_LISTED]:
        lines.append(_missing_row(cell))
    if len(results.missing) > MAX_MISSING_LISTED:
        lines.append(f"\n... and {len(results.missing) - MAX_MISSING_LISTED} more.")
    return lines + [""]


def _missing_row(cell: MissingCell) -> str:
    waiting = ", ".join(f"`{name}`" for name in cell.waiting_on) or "—"
    reason = cell.reason.replace("|", "\\|").replace("\n", " ")
    return (f"| {cell.encoder} | {cell.setting} | {cell.target} | {cell.seed} | `{cell.phase}` | {reason} "
            f"| {waiting} |")  # fmt: skip


def _correlation_lines(tables: Tables) -> list[str]:
    if tables.distance_correlation is None or not tables.distance_correlation.rows:
        return []
    return _section(tables.distance_correlation.title, tables.distance_correlation, level=4)


def _protocol_lines(results: Results, tables: Tables) -> list[str]:
    """How the numbers were made: benchmark, per-task protocols, statistics."""
    from xstilts.report.tables import BENCHMARK_LABELS

    label = BENCHMARK_LABELS.get(results.benchmark, results.benchmark)
    lines = ["## Protocol", ""]
    if results.benchmark == "custom":
        lines.append(
            "- Benchmark: custom (targets from XTREME and XTREME-R, each in all its registered "
            "languages): the averages are this sweep's, not a benchmark score."
        )
    else:
        lines.append(
            f"- Benchmark: {label}; every target is evaluated in exactly {label}'s languages "
            "(fixture sweeps: those with fixture data), and the averages use exactly those."
        )
    metrics = {run.target: run.metric for run in results.runs}
    protocols = {run.target: run.protocol for run in results.runs if run.protocol}
    for target in results.targets:
        metric, protocol = metrics.get(target), protocols.get(target, {})
        if metric == "udpos_f1":
            lines.append(
                f"- {target}: span F1 with seqeval 0.0.12's chunking of the raw UPOS tags, as "
                "XTREME's published UD-POS numbers (seqeval 1.x merges CCONJ/SCONJ)."
            )
        elif metric in ("squad", "mlqa", "squad_v2"):
            lines.append(
                f"- {target}: score = (F1 + EM) / 2 per language, XTREME's QA score; F1 and EM "
                "are in the QA table (papers usually quote F1). Unanswered questions score 0."
            )
        elif metric == "tatoeba_accuracy":
            direction = protocol.get("direction", "en-xx")
            how = (
                "each English sentence retrieves among the foreign ones, as XTREME"
                if direction == "en-xx"
                else "each foreign sentence retrieves among the English ones (not XTREME's direction)"
            )
            lines.append(f"- {target}: accuracy, direction {direction}: {how}.")
        elif metric and metric.startswith("bucc_f1"):
            if protocol.get("pairs") == "gold_only" or metric.endswith("gold_only"):
                lines.append(
                    f"- {target}: **bucc_f1_gold_only** — mined over the hub's gold pairs only (no "
                    "distractors): NOT BUCC F1; give data.bucc_path for the real task."
                )
            else:
                lines.append(
                    f"- {target}: BUCC F1, ratio-margin mining over every sentence of the BUCC 2018 "
                    f"files, duplicates: {protocol.get('duplicates', 'drop')}, threshold tuned on the "
                    "sample split and reused on the training (test) split."
                )
        elif metric == "map@20":
            lines.append(f"- {target}: mAP@20; a query whose gold is not in the pool scores 0.")
    lines += [
        "- Statistics: per cell, mean ± sample std over seeds [95% t-interval]; per delta vs baseline, a 95% "
        "paired bootstrap interval over the evaluation examples (same examples, same seeds, 1000 resamples, "
        "seeded: the report is reproducible) with its p-value, `*` where the interval excludes 0, and a "
        "sign-flip permutation test over seeds with 3 or more seeds.",
        "- Best intermediate setting per target: chosen on the dev score (see 'selected on'), never on the "
        "evaluation split.",
        "",
    ]
    return lines


def _research_lines(tables: Tables, files: ReportFiles) -> list[str]:
    research = tables.research
    lines: list[str] = []
    if "robustness" in research:
        lines += ["## Robustness", ""]
        lines += _section(research["robustness"].title, research["robustness"])
        lines += _section(research["robustness_by_tasks"].title, research["robustness_by_tasks"])
        lines += _image(files, "robustness", "robustness gap by number of intermediate tasks")
        lines += _sections(research, "robustness_trend", "robustness_groups")
    if "domain_alignment" in research:
        lines += ["## Domain alignment", ""]
        lines += _section(research["domain_alignment"].title, research["domain_alignment"])
        lines += _section(research["domain_correlation"].title, research["domain_correlation"])
        lines += _image(files, "domain_alignment", "alignment measures vs transfer gain")
        lines += _sections(research, "domain_alignment_languages", "domain_partial_correlation")
    if "difficulty" in research:
        lines += ["## Difficulty", ""]
        lines += _section(research["difficulty"].title, research["difficulty"])
        lines += _sections(research, "difficulty_languages", "difficulty_regression")
    return lines


def _sections(research: dict[str, Table], *names: str) -> list[str]:
    """The sections of those of `names` the report has, in that order."""
    return [
        line for name in names if name in research for line in _section(research[name].title, research[name])
    ]


def render_markdown(results: Results, tables: Tables, files: ReportFiles) -> str:
    """report.md: title, status (missing cells), summary and best-per-target, per-target tables and
    figures, the per-language breakdown and the cost. Deterministic: no timestamps."""
    lines = [f"# X-STILTs report: {results.sweep}", ""]
    if results.description:
        lines += [results.description.strip(), ""]
    lines += [
        f"Store: `{results.store}`. Encoders: {', '.join(results.encoders)}. "
        f"Settings: {', '.join(results.settings)}. Targets: {', '.join(results.targets)}.",
        "",
    ]
    lines += _status_lines(results)
    lines += _protocol_lines(results, tables)
    lines += ["## Summary", ""]
    lines += _section("Average score per target", tables.summary)
    if tables.summary_delta.rows:
        lines += _section("Δ vs baseline per target", tables.summary_delta)
        lines += _image(files, "heatmap", "setting x target deltas vs baseline")
    if tables.best.rows:
        lines += _section("Best intermediate setting per target (chosen on dev)", tables.best)
    if tables.qa is not None:
        lines += _section(tables.qa.title, tables.qa)
    lines += ["## Per target", ""]
    for target, table in tables.targets.items():
        lines += _section(table.title, table)
        delta = tables.target_deltas[target]
        if delta.rows:
            lines += _section(delta.title, delta, level=4)
        lines += _image(files, target, f"{target} per language")
    if tables.languages.rows:
        lines += ["## Per language", ""]
        lines += _section(tables.languages.title, tables.languages)
        lines += _correlation_lines(tables)
    lines += _research_lines(tables, files)
    total = (f"Total: {results.gpu_hours:.2f} GPU-hours, {results.cpu_hours:.2f} CPU pod-hours "
             f"over {len(results.costs)} complete phases.")  # fmt: skip
    lines += ["## Cost", "", total, ""]
    lines += _section(tables.cost.title, tables.cost)
    lines += ["## Files", ""]
    lines += [f"- [{path.name}]({path.name})" for path in files.csv.values()]
    lines += [f"- [{path.name}]({path.name})" for path in files.images.values()]
    return "\n".join(lines).rstrip("\n") + "\n"
