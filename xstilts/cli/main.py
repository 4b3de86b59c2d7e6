"""The `xstilts` Typer app: command groups are registered here, each in its own module."""

from __future__ import annotations

import logging
import os

import typer

from xstilts import __version__
from xstilts.cli import assets, phase, report, sweep, tasks

app = typer.Typer(
    name="xstilts",
    help="STILTs / X-STILTs sweeps: intermediate-task training and zero-shot cross-lingual transfer, "
    "locally or as Kubernetes Jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
app.add_typer(sweep.app, name="sweep")
app.add_typer(phase.app, name="phase")
app.add_typer(tasks.app, name="tasks")
app.add_typer(assets.model_app, name="model")
app.add_typer(assets.data_app, name="data")
app.command("report")(report.report_cmd)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xstilts {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """xstilts."""


def main() -> None:
    # Quiet library chatter; progress comes as JSON lines and the live display.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DS_BUILD_OPS", "0")
    logging.basicConfig(level=logging.WARNING)
    app()
