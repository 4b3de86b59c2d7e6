"""`xstilts phase run`: the container entrypoint."""

from __future__ import annotations

from typing import Annotated

import typer

from xstilts.cli.output import handle_errors

app = typer.Typer(help="Run one phase (the container entrypoint).", no_args_is_help=True)


@app.command("run")
@handle_errors
def run_cmd(
    address: Annotated[str, typer.Argument(help="the phase's content address")],
    store: Annotated[str, typer.Option("--store", help="store URI holding the phase spec")],
) -> None:
    """Run one phase and commit its outputs (a no-op if it is already complete)."""
    from xstilts.phases.run import run_phase

    run_phase(address, store)
