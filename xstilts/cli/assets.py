"""`xstilts model tiny` and `xstilts data fixtures`: the offline tiny encoder and fixture datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.output import handle_errors, say
from xstilts.spec.models import TinyModelSpec

model_app = typer.Typer(help="Models.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets.", no_args_is_help=True)


@model_app.command("tiny")
@handle_errors
def tiny_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write the model and tokenizer to")],
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> None:
    """Build the offline tiny XLM-R-shaped encoder (random init) and its fixture-trained tokenizer."""
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.tiny import build_tiny_encoder

    spec = TinyModelSpec(hidden_size=hidden_size, num_hidden_layers=layers, init_seed=seed).model_dump()
    build_tiny_encoder(out_dir, corpus_lines(), spec)
    say(f"wrote the tiny encoder and tokenizer to {out_dir}")


@data_app.command("fixtures")
@handle_errors
def fixtures_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the fixture datasets")],
    size: Annotated[str, typer.Option(help="tiny or small")] = "tiny",
) -> None:
    """Write the fixture datasets (real Hugging Face schemas, four languages incl. Cyrillic)."""
    from xstilts.data.fixtures import SIZES, write_fixtures

    if size not in SIZES:
        raise typer.BadParameter(f"use one of {', '.join(SIZES)}", param_hint="--size")
    write_fixtures(out_dir, size)
    say(f"wrote fixture datasets to {out_dir}")
