"""`xstilts phase run`: the container entrypoint, and a phase run by hand."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from xstilts.cli.output import handle_errors
from xstilts.errors import UsageError
from xstilts.plan.phase import ADDRESS_LENGTH, check_address, is_address

app = typer.Typer(help="Run one phase (the container entrypoint).", no_args_is_help=True)


def resolve_address(text: str, store) -> str:
    """A full address as given; a unique prefix of one is completed from the phase specs in the store.
    The prefix only filters the listing: no key is ever built from it."""

    if is_address(text):
        return text
    if not text or len(text) >= ADDRESS_LENGTH or any(c not in "0123456789abcdef" for c in text):
        return check_address(text)  # not an address nor a prefix of one: refused (exit 3)
    matches = sorted(
        name
        for info in store.list("specs/")
        if is_address(name := info.key.rsplit("/", 1)[-1].removesuffix(".json")) and name.startswith(text)
    )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(
            f"no phase spec in {store.describe()} starts with {text!r} (fix: submit the sweep to this store "
            "first, or check the address with `xstilts sweep plan FILE`)"
        )
    raise UsageError(
        f"{text!r} matches {len(matches)} phases: {', '.join(matches[:10])} (fix: give more digits)"
    )


@app.command("run")
@handle_errors
def run_cmd(
    address: Annotated[
        str, typer.Argument(help="the phase's content address, or a unique prefix of it", metavar="ADDRESS")
    ],
    store: Annotated[str, typer.Option("--store", metavar="URI", help="store URI holding the phase spec")],
) -> None:
    """Run one phase and commit its outputs (a no-op if it is already complete). By hand, the math
    libraries get the thread counts the local backend gives its phases (OMP_NUM_THREADS and friends)."""
    from xstilts.backends.local import thread_env
    from xstilts.store import open_store

    for name, value in thread_env().items():
        os.environ.setdefault(name, value)
    opened = open_store(store)
    full = resolve_address(address, opened)

    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))
    from xstilts.phases.run import run_phase

    run_phase(full, opened)
