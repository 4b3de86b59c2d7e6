"""`xstilts report FILE --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.common import load
from xstilts.cli.output import handle_errors, say


@handle_errors
def report_cmd(
    file: Annotated[Path, typer.Argument(help="sweep file (YAML)")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the report")],
    store: Annotated[str | None, typer.Option("--store", help="store URI")] = None,
) -> None:
    """Markdown and CSV tables (per target and language, deltas vs baseline) and plots."""
    from xstilts.report.build import build_report

    loaded = load(file, store)
    files = build_report(loaded.plan, loaded.store, out_dir)
    say(f"Report: {getattr(files, 'markdown', out_dir / 'report.md')}")
