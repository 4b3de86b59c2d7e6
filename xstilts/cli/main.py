"""The `xstilts` Typer app: command groups are registered here, each in its own module."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from xstilts import __version__
from xstilts.cli import assets, phase, report, suggest, sweep, tasks
from xstilts.cli.output import Output, OutputFormat, handle_errors
from xstilts.store import DEFAULT_STORE


def _flags_without_placeholder() -> None:
    """Typer's help prints `<bool>` after every flag (`--detach <bool>`), which takes no value, and
    `<str>` after text arguments, which says nothing: neither is shown."""
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperOption, TyperArgument):
        shown = cls.display_type_rich

        def display_type_rich(self, ctx, _shown=shown):  # type: ignore[no-untyped-def]
            if getattr(self, "is_flag", False) or self.name == "help":
                return None
            text = _shown(self, ctx)
            return None if text == "<str>" else text

        cls.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_placeholder()

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
app.command("suggest")(suggest.suggest_cmd)


@app.command("env")
@handle_errors
def env_cmd(
    store: Annotated[str, typer.Option("--store", metavar="URI", help="the store to check")] = DEFAULT_STORE,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
) -> None:
    """Versions, devices, store and cluster reachability: paste it into a bug report."""
    from xstilts.cli.environment import as_lines, environment

    info = environment(store)
    Output(output).data(info, lambda: "\n".join(as_lines(info)))


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
