"""Successive halving as phases: rung fractions, rung phases as content-addressed prefixes of the grid's
intermediate phases, and the stateless gate's decisions from what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.sweeps import micro
from xstilts.errors import ConfigError
from xstilts.plan import expand
from xstilts.plan.search import STOPPED, WAITING
from xstilts.spec.models import SearchSpec, Sweep
from xstilts.store import LocalStore


def sweep(**search) -> Sweep:
    intermediate = [{"task": "mnli"}, {"task": "qqp"}, {"task": "sst2"}]
    return Sweep.model_validate(micro(intermediate=intermediate, targets=["pawsx", "tatoeba"], search=search))


def test_rung_fractions():
    assert SearchSpec(budget_fraction=1 / 9, eta=3).fractions() == [0.111111, 0.333333, 1.0]
    assert SearchSpec(budget_fraction=0.25, eta=3).fractions() == [0.25, 0.75, 1.0]
    assert SearchSpec(budget_fraction=0.1, eta=3, rungs=2).fractions() == [0.1, 1.0]
    # 1/9 written as 0.1111: 0.1111 x 9 = 0.9999 is the full run, not one more rung of 99.99 % of it.
    assert SearchSpec(budget_fraction=0.1111, eta=3).fractions() == [0.1111, 0.3333, 1.0]


def test_rungs_are_prefixes_of_the_grid_phases():
    plan = expand(sweep(budget_fraction=1 / 3, eta=3))
    grid = expand(sweep(budget_fraction=1 / 3, eta=3).model_copy(update={"search": None}))
    assert set(grid.phases) <= set(plan.phases)  # the last rung IS the grid
    rungs = [p for p in plan.ordered() if p.kind == "intermediate" and p.config.stop_fraction is not None]
    assert len(rungs) == 3
    for rung in rungs:
        full = plan.phases[rung.config.checkpoints_of]
        assert full.address in grid.phases and rung.inputs == full.inputs
        assert {
            k: v for k, v in rung.config.dump().items() if k not in ("stop_fraction", "checkpoints_of")
        } == full.config.dump()
    # Rung targets are fine-tuned like the grid's; no rung is evaluated on the evaluation split.
    rung_targets = [
        p for p in plan.ordered() if p.kind == "target" and p.inputs["encoder"] in {r.address for r in rungs}
    ]
    assert len(rung_targets) == 3 and all(p.task == "pawsx" for p in rung_targets)
    users = {a for p in plan.ordered() if p.kind == "evaluate" for a in p.inputs.values()}
    assert not users & {p.address for p in rung_targets} and not users & {r.address for r in rungs}


def test_search_needs_settings_and_a_fine_tuned_target():
    with pytest.raises(ConfigError, match="two or more intermediate settings"):
        expand(Sweep.model_validate(micro(search={"budget_fraction": 0.5})))


def _complete(store: LocalStore, prefix: str, metrics: dict | None = None) -> None:
    root = Path(store.root) / prefix
    root.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        (root / "metrics.json").write_text(json.dumps(metrics))


def test_gate_holds_then_stops_from_the_store(tmp_path: Path):
    plan = expand(sweep(budget_fraction=1 / 3, eta=3))
    layout = plan.search
    store = LocalStore(tmp_path)
    gate = layout.gate(plan, store, set())
    fulls = {a for arm in layout.arms for a in arm.intermediates[-1]}
    assert all(gate.held[a][0] == WAITING for a in fulls) and not gate.decisions
    assert not any(a in gate.held for arm in layout.arms for a in arm.intermediates[0])  # rung 1 runs

    done = set()
    dev = {"mnli": 80.0, "qqp": 60.0, "sst2": 50.0}
    for arm in layout.arms:
        done.update(arm.intermediates[0])
        for address in arm.targets[0]["pawsx"]:
            _complete(store, plan.phases[address].prefix, {"dev": {"score": dev[arm.setting]}})
            done.add(address)
    gate = layout.gate(plan, store, done)
    (decision,) = gate.decisions
    assert decision.kept == ["mnli"] and decision.stopped == ["qqp", "sst2"]
    for arm in layout.arms:
        states = {gate.held.get(a, ("free",))[0] for a in arm.downstream}
        assert states == ({"free"} if arm.setting == "mnli" else {STOPPED})
    # Another controller (a fresh layout object) reading the same store decides the same.
    again = expand(sweep(budget_fraction=1 / 3, eta=3))
    assert again.search.gate(again, store, done).held == gate.held


def _rung_decision(tmp_path: Path, metrics: dict[str, dict]):
    """The first rung's decision once every setting's rung targets completed with `metrics[setting]`."""
    plan = expand(sweep(budget_fraction=1 / 3, eta=3))
    layout, store, done = plan.search, LocalStore(tmp_path), set()
    for arm in layout.arms:
        done.update(arm.intermediates[0])
        for address in arm.targets[0]["pawsx"]:
            _complete(store, plan.phases[address].prefix, metrics[arm.setting])
            done.add(address)
    (decision,) = layout.gate(plan, store, done).decisions
    return decision


def test_settings_tied_at_the_cut_all_go_on(tmp_path: Path):
    """A rung whose dev scores cannot tell settings apart (every rung target at chance) stops none of the
    tied ones: they are not ranked by name."""
    dev = {"mnli": 50.0, "qqp": 50.0, "sst2": 40.0}
    decision = _rung_decision(tmp_path, {s: {"dev": {"score": v}} for s, v in dev.items()})
    assert decision.kept == ["mnli", "qqp"] and decision.stopped == ["sst2"]


def test_a_dev_score_tie_goes_to_the_lower_training_loss(tmp_path: Path):
    loss = {"mnli": 0.7, "qqp": 0.6, "sst2": 0.9}
    decision = _rung_decision(
        tmp_path, {s: {"dev": {"score": 50.0}, "final_loss": v} for s, v in loss.items()}
    )
    assert decision.kept == ["qqp"] and decision.stopped == ["mnli", "sst2"]
    assert decision.losses["pawsx"] == loss
