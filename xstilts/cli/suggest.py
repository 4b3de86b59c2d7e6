"""`xstilts suggest --target TASK`: rank candidate intermediate tasks for a target (xstilts.suggest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.output import OutputFormat, handle_errors, print_json, say
from xstilts.errors import ConfigError
from xstilts.store import DEFAULT_STORE, open_store
from xstilts.suggest.text import suggestion_lines


def _work_dir(store_uri: str) -> Path:
    if "://" not in store_uri:
        return Path(store_uri) / "_local"
    return Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts")) / "local" / "suggest"


@handle_errors
def suggest_cmd(
    target: Annotated[str, typer.Option("--target", help="the target task to find intermediate tasks for")],
    encoder: Annotated[
        str | None,
        typer.Option("--encoder", help="encoder name in the store (a model id when the store has none)"),
    ] = None,
    pool: Annotated[
        list[str] | None, typer.Option("--pool", help="candidate intermediate task (repeatable)")
    ] = None,
    store: Annotated[
        str, typer.Option("--store", help="store URI (a path or s3://bucket/prefix)")
    ] = DEFAULT_STORE,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
    sweep_out: Annotated[
        Path | None, typer.Option("--sweep-out", help="write a sweep file for the top-k candidates")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="candidates in the sweep file (and shown)")] = 3,
    compute: Annotated[
        bool,
        typer.Option("--compute/--no-compute", help="compute missing task embeddings locally (default on)"),
    ] = True,
    data: Annotated[
        str, typer.Option("--data", help="hub or fixtures: the data of a new encoder (empty store only)")
    ] = "hub",
) -> None:
    """Rank intermediate tasks for TARGET: predicted gain with a 95% interval and why, from task embeddings,
    domain alignment and every finished result in the store; with a leave-one-target-out evaluation."""
    from xstilts.suggest.service import run_suggest, write_sweep

    if data not in ("hub", "fixtures"):
        raise ConfigError(f"--data {data!r} is not a data source", field="--data", fix="use hub or fixtures")
    uri = store if "://" in store else str(Path(store).expanduser().resolve())
    suggestion, chosen, computed = run_suggest(
        open_store(uri), uri, target, encoder=encoder, pool=pool, compute=compute,
        work_dir=_work_dir(uri), data=data,
    )  # fmt: skip
    if computed:
        say(f"Computed task embeddings for {', '.join(computed)} (encoder {chosen.label}) in {uri}")
    if sweep_out is not None:
        write_sweep(sweep_out, suggestion, chosen, top)
        say(f"Wrote {sweep_out}: the top {top} candidates and the baseline on {suggestion.target}")
    if output is OutputFormat.json:
        print_json(suggestion.as_dict())
        return
    for line in suggestion_lines(suggestion):
        typer.echo(line)
