"""`xstilts report FILE [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.common import load
from xstilts.cli.output import handle_errors, say


@handle_errors
def report_cmd(
    file: Annotated[Path, typer.Argument(help="sweep file (YAML)", metavar="FILE")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="directory for the report (default: the store's reports/<sweep>/, as submit writes it)",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", metavar="URI", help="store (default: the sweep's `store`, else ./xstilts-runs)"
        ),
    ] = None,
) -> None:
    """Markdown and CSV tables (per target and language, deltas vs baseline) and plots."""
    from xstilts.cli.sweep import write_report
    from xstilts.report.build import build_report

    loaded = load(file, store)
    if out_dir is None:
        say(f"Report: {write_report(loaded)}")
        return
    files = build_report(loaded.plan, loaded.store, out_dir)
    say(f"Report: {getattr(files, 'markdown', out_dir / 'report.md')}")
