"""Reports of a sweep's results: tables (Markdown, CSV), deltas vs baseline, XTREME-style averages,
per-language breakdowns, cost, and PNG figures. No torch; matplotlib is imported only when drawing.

The CLI's `xstilts report FILE --out DIR` is `build_report(expand(load_sweep(FILE)), open_store(URI), DIR)`.
"""

from xstilts.report.build import ReportFiles, build_report
from xstilts.report.collect import MissingCell, PhaseCost, Results, RunResult, collect_results
from xstilts.report.tables import Stat, Table, Tables, build_tables, to_csv, to_markdown

__all__ = [
    "MissingCell", "PhaseCost", "ReportFiles", "Results", "RunResult", "Stat", "Table", "Tables",
    "build_report", "build_tables", "collect_results", "to_csv", "to_markdown",
]  # fmt: skip
