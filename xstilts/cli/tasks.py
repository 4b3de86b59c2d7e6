"""`xstilts tasks list`: the task registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from xstilts.cli.output import Output, OutputFormat, handle_errors
from xstilts.errors import ConfigError
from xstilts.tasks import all_tasks

app = typer.Typer(help="The task registry.", no_args_is_help=True)


ROLES = ("intermediate", "target")


@app.command("list")
@handle_errors
def list_cmd(
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json", show_choices=True)
    ] = OutputFormat.table,
    role: Annotated[
        str | None,
        typer.Option(metavar="[intermediate|target]", help="only the tasks with this role (default: all)"),
    ] = None,
) -> None:
    """Name, role, format, metric, languages and dataset of every task."""
    if role is not None and role not in ROLES:
        raise ConfigError(f"{role!r} is not a task role", field="--role", fix="use intermediate or target")
    tasks = [t for t in all_tasks() if role is None or t.role.value in (role, "both")]
    rows = [
        {
            "name": t.name,
            "role": t.role.value,
            "format": t.format.value,
            "metric": t.metric,
            "languages": list(t.languages),
            "dataset": (t.evaluate or t.train).dataset if (t.evaluate or t.train) else None,  # type: ignore[union-attr]
            "config": (t.evaluate or t.train).config if (t.evaluate or t.train) else None,  # type: ignore[union-attr]
            "labels": list(t.labels),
            "domain": t.domain,
            "difficulty": t.difficulty,
            "source": t.source,
            "description": t.description,
        }
        for t in tasks
    ]
    Output(output).data(rows, lambda: _table(rows))


def _table(rows: list[dict]) -> Table:
    table = Table(show_edge=False)
    for col in ("name", "role", "format", "metric", "languages", "dataset"):
        table.add_column(col, overflow="fold")
    for r in rows:
        langs = " ".join(r["languages"]) if len(r["languages"]) <= 8 else f"{len(r['languages'])} languages"
        table.add_row(
            Text(r["name"]),
            r["role"],
            r["format"],
            r["metric"],
            Text(langs),
            Text(f"{r['dataset']} {r['config'] or ''}"),
        )
    return table
