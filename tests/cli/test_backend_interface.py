"""`sweep submit --retry-failed` and `sweep cancel` call the same `Backend` methods whatever the
backend: each backend does what retrying and cancelling mean for it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import xstilts.cli.sweep as sweep_cli
from xstilts.backends.base import Backend, Observed
from xstilts.backends.reconcile import Reconciler
from xstilts.cli.main import app
from xstilts.plan.expand import expand
from xstilts.plan.phase import Phase
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import load_sweep
from xstilts.store import open_store

TINY = Path(__file__).resolve().parents[2] / "jobs" / "tiny.yaml"


class Recording(Backend):
    """A backend that runs nothing and records what the command asked of it."""

    name = "recording"

    def __init__(self, deleted: int = 0) -> None:
        self.deleted = deleted
        self.calls: list[tuple[str, Any]] = []

    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        self.calls.append(("submit", phase.address))
        return True

    def observe(self, sweep: str) -> dict[str, Observed]:
        return {}

    def logs(self, phase: Phase, follow: bool = False) -> Iterator[str] | None:
        return None

    def cancel(
        self, sweep: str, addresses: Collection[str] = (), keep: Callable[[], Collection[str]] = tuple
    ) -> int:
        self.calls.append(("cancel", (sweep, set(addresses), set(keep()))))
        return 2

    def retry_failed(self, sweep: str, done: Callable[[str], bool]) -> int:
        self.calls.append(("retry_failed", (sweep, done)))
        return self.deleted


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Recording:
    backend = Recording(deleted=3)
    monkeypatch.setattr(sweep_cli, "make_backend", lambda *args, **kwargs: backend)
    monkeypatch.setattr(sweep_cli, "cluster_settings", lambda sweep, kind: ClusterSettings())
    return backend


@pytest.mark.parametrize("kind", ["local", "kubernetes"])
def test_cancel_gives_every_backend_the_sweep_s_phases_and_the_committed_ones(
    recording: Recording, tmp_path: Path, kind: str
) -> None:
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["sweep", "cancel", str(TINY), "--backend", kind, "--store", str(store)])
    assert result.exit_code == 0, result.output
    ((call, (sweep, addresses, keep)),) = recording.calls
    assert (call, sweep) == ("cancel", "tiny")
    assert addresses == set(expand(load_sweep(TINY)).phases) and keep == set()
    assert "Cancelled 2 running phase(s)" in result.output


def test_submit_with_retry_asks_the_backend_to_retry_failures(recording: Recording, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["sweep", "submit", str(TINY), "--backend", "kubernetes", "--store", str(store), "--detach"]
    result = CliRunner().invoke(app, [*args, "--retry-failed", "--no-report"])
    assert result.exit_code == 0, result.output
    name, (sweep, done) = recording.calls[0]
    assert (name, sweep) == ("retry_failed", "tiny")
    plan = expand(load_sweep(TINY))
    assert not any(done(address) for address in plan.phases), "an empty store has no phase complete"
    assert done("ffffffffffff"), "a Job of no phase of this plan is left alone"
    assert "Deleted 3 failed Job(s)" in result.output
    assert ("submit", plan.ordered()[0].address) in recording.calls

    recording.calls.clear()
    result = CliRunner().invoke(app, [*args, "--no-retry-failed", "--no-report"])
    assert result.exit_code == 0, result.output
    assert all(name != "retry_failed" for name, _ in recording.calls)


def test_the_reconcile_loop_retries_failures_itself_only_where_the_backend_leaves_it_to_the_loop(
    tmp_path: Path,
) -> None:
    plan = expand(load_sweep(TINY))
    store = open_store(str(tmp_path / "store"))
    in_loop = Recording()
    assert Reconciler(plan, store, in_loop, "s", ClusterSettings(), retry_failed=True).retry_failed
    assert Backend.retry_failed(in_loop, "tiny", lambda address: False) == 0, "by default: nothing up front"
    up_front = Recording()
    up_front.retries_in_loop = False
    assert not Reconciler(plan, store, up_front, "s", ClusterSettings(), retry_failed=True).retry_failed
