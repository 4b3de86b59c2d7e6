"""Successive halving as phases. Every intermediate phase of the grid (one per encoder, setting and seed)
gets rung phases before it: the same config plus `stop_fraction` (train the first share of the full
run, same schedule) and `checkpoints_of` (checkpoint into the full phase's prefix), so each rung
continues the previous one's checkpoint and the full phase, the last rung, continues the last prefix:
content-addressed prefixes of one run, not new runs. Each rung's intermediate model gets its targets
fine-tuned (the grid's target config, shortened to the rung's share unless `target_fraction` says
otherwise) for the promotion decision on their English dev score; only the last rung has evaluate
phases (the evaluation split is never used to decide).

Which phases may run is decided from the store alone (`SearchPlan.gate`), each reconcile pass."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import mean
from typing import Any, Protocol

from xstilts.errors import ConfigError
from xstilts.plan.configs import IntermediateConfig, TargetConfig
from xstilts.plan.phase import Phase, content_address
from xstilts.store import Store, join_key


class Plan(Protocol):
    """What the search needs of `xstilts.plan.expand.Plan` (which imports this module to add rungs)."""

    sweep: Any
    phases: dict[str, Phase]

    def ordered(self) -> list[Phase]: ...

    def add(self, phase: Phase) -> str: ...


STOPPED, WAITING = "stopped", "waiting"


@dataclass
class Arm:
    """One intermediate setting under one encoder, across seeds."""

    encoder: str  # the address of the phase the intermediate phases train from
    setting: str
    # rung -> intermediate phase addresses (one per seed); the last rung is the grid's full phase
    intermediates: list[list[str]] = field(default_factory=list)
    # rung -> target task -> target phase addresses (one per seed)
    targets: list[dict[str, list[str]]] = field(default_factory=list)
    downstream: set[str] = field(default_factory=set)  # the full phases and everything after them

    def phases_after(self, rung: int) -> set[str]:
        """Every phase of the rungs after `rung`, the full run's included."""
        out = set(self.downstream)
        for r in range(rung + 1, len(self.intermediates) - 1):
            out.update(self.intermediates[r])
            out.update(a for addresses in self.targets[r].values() for a in addresses)
        return out


@dataclass
class Decision:
    encoder: str
    rung: int
    scores: dict[str, dict[str, float]]  # target -> setting -> mean dev score
    kept: list[str]
    stopped: list[str]
    # target -> setting -> mean final training loss of the rung's target phases: breaks dev-score ties
    losses: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Gate:
    held: dict[str, tuple[str, str]]  # address -> (state, reason)
    decisions: list[Decision]
    stopped_at: dict[tuple[str, str], int]  # (encoder, setting) -> rung


@dataclass
class SearchPlan:
    fractions: list[float]
    eta: int
    arms: list[Arm]
    # complete target phase -> (dev score, final training loss)
    _dev: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def _read(self, store: Store, phase: Phase) -> tuple[float | None, float | None]:
        if phase.address not in self._dev:  # complete phases never change: read once
            try:
                metrics = json.loads(store.get_text(join_key(phase.prefix, "metrics.json")))
            except (FileNotFoundError, ValueError, TypeError):
                metrics = {}
            dev = metrics.get("dev") or {}
            self._dev[phase.address] = (_number(dev.get("score")), _number(metrics.get("final_loss")))
        return self._dev[phase.address]

    def dev_score(self, store: Store, phase: Phase) -> float | None:
        return self._read(store, phase)[0]

    def final_loss(self, store: Store, phase: Phase) -> float | None:
        return self._read(store, phase)[1]

    def gate(self, plan: Plan, store: Store, done: set[str]) -> Gate:
        """Which phases must not run now (held until a rung is decided, or stopped), from what is
        complete in the store. Stateless: the same store gives the same answer to any controller."""
        gate = Gate({}, [], {})
        groups: dict[str, list[Arm]] = defaultdict(list)
        for arm in self.arms:
            groups[arm.encoder].append(arm)
        for encoder, arms in groups.items():
            alive = list(arms)
            for rung in range(len(self.fractions) - 1):
                rung_targets = [a for arm in alive for ads in arm.targets[rung].values() for a in ads]
                if not all(a in done for a in rung_targets):
                    reason = f"waiting for rung {rung + 1}'s decision (successive halving)"
                    for arm in alive:
                        for address in arm.phases_after(rung):
                            gate.held.setdefault(address, (WAITING, reason))
                    break
                scores: dict[str, dict[str, float]] = defaultdict(dict)
                losses: dict[str, dict[str, float]] = defaultdict(dict)
                for arm in alive:
                    for task, addresses in arm.targets[rung].items():
                        phases = [plan.phases[a] for a in addresses]
                        scores[task][arm.setting] = _mean(
                            [self.dev_score(store, p) for p in phases], -math.inf
                        )
                        losses[task][arm.setting] = _mean(
                            [self.final_loss(store, p) for p in phases], math.inf
                        )
                keep_count = max(1, math.ceil(len(alive) / self.eta))
                kept: set[str] = set()
                for task, per_setting in scores.items():  # the best 1/eta for ANY target go on
                    # Higher dev score first; equal scores (a short rung often leaves every setting at
                    # chance) by the lower training loss on the same target data; never by name: settings
                    # tied on both with the last one kept go on too.
                    rank = {s: (-per_setting[s], losses[task][s]) for s in per_setting}
                    ranked = sorted(per_setting, key=rank.__getitem__)
                    cut = rank[ranked[min(keep_count, len(ranked)) - 1]]
                    kept.update(s for s in ranked if rank[s] <= cut)
                stopped = [arm for arm in alive if arm.setting not in kept]
                for arm in stopped:
                    gate.stopped_at[(encoder, arm.setting)] = rung
                    best = ", ".join(f"{t} {scores[t][arm.setting]:.2f}" for t in sorted(scores))
                    reason = f"stopped at rung {rung + 1} of {len(self.fractions)} (English dev: {best})"
                    for address in arm.phases_after(rung):
                        gate.held[address] = (STOPPED, reason)
                gate.decisions.append(
                    Decision(
                        encoder,
                        rung,
                        dict(scores),
                        sorted(kept),
                        sorted(a.setting for a in stopped),
                        dict(losses),
                    )
                )
                alive = [arm for arm in alive if arm.setting in kept]
        return gate


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _mean(values: list[float | None], missing: float) -> float:
    known = [v for v in values if v is not None]
    return mean(known) if known else missing


def rung_target_config(config: dict[str, Any], fraction: float, share: float | None) -> dict[str, Any]:
    """A rung's target fine-tuning: the grid's, shortened to `share` of it (default: the rung's share of
    the intermediate run), a complete short run of its own (its own schedule, dev-scored at its end)."""
    share = fraction if share is None else share
    if share >= 1.0:
        return config
    training = dict(config["training"])
    training["epochs"] = training["epochs"] * share
    if training.get("max_steps"):
        training["max_steps"] = max(1, math.ceil(training["max_steps"] * share))
    return TargetConfig.model_validate({**config, "training": training}).dump()


def _descendants(plan: Plan, roots: list[str]) -> set[str]:
    users: dict[str, list[str]] = defaultdict(list)
    for phase in plan.ordered():
        for address in phase.inputs.values():
            users[address].append(phase.address)
    found, stack = set(), list(roots)
    while stack:
        address = stack.pop()
        if address in found:
            continue
        found.add(address)
        stack.extend(users.get(address, []))
    return found


def add_rungs(plan: Plan) -> SearchPlan:
    """Add the rung phases of `plan.sweep.search` to `plan` (expand's hook) and return the layout."""
    search = plan.sweep.search
    assert search is not None
    fractions = search.fractions()
    full = [p for p in plan.ordered() if p.kind == "intermediate"]
    targets_of: dict[str, list[Phase]] = defaultdict(list)
    for phase in plan.ordered():
        if phase.kind == "target" and phase.inputs.get("encoder") in {p.address for p in full}:
            targets_of[phase.inputs["encoder"]].append(phase)
    if len({p.label for p in full}) < 2 or not targets_of:
        raise ConfigError(
            "successive halving needs two or more intermediate settings and a target that is fine-tuned "
            "(its English dev score decides which settings go on)",
            field="search",
            fix="add intermediate settings or a fine-tuned target, or remove 'search'",
        )
    arms: dict[tuple[str, str], Arm] = {}
    for phase in full:
        upstream = phase.inputs["encoder"]
        arm = arms.setdefault((upstream, phase.label), Arm(upstream, phase.label))
        if not arm.intermediates:
            arm.intermediates = [[] for _ in fractions]
            arm.targets = [defaultdict(list) for _ in fractions]
        for rung, fraction in enumerate(fractions[:-1]):
            config = IntermediateConfig.model_validate(
                {**phase.config.dump(), "stop_fraction": fraction, "checkpoints_of": phase.address}
            ).dump()
            rung_phase = Phase(
                kind="intermediate", address=content_address("intermediate", config, phase.inputs),
                label=phase.label, config=config, inputs=dict(phase.inputs), resources=phase.resources,
                settings=list(phase.settings),
            )  # fmt: skip
            plan.add(rung_phase)
            arm.intermediates[rung].append(rung_phase.address)
            for target in targets_of[phase.address]:
                inputs = {"encoder": rung_phase.address}
                config = rung_target_config(target.config.dump(), fraction, search.target_fraction)
                rung_target = Phase(
                    kind="target", address=content_address("target", config, inputs),
                    label=target.label, config=config, inputs=inputs, resources=target.resources,
                    settings=list(target.settings),
                )  # fmt: skip
                plan.add(rung_target)
                arm.targets[rung][target.label].append(rung_target.address)
        arm.intermediates[-1].append(phase.address)
        for target in targets_of[phase.address]:
            arm.targets[-1][target.label].append(target.address)
    for arm in arms.values():
        arm.downstream = _descendants(plan, arm.intermediates[-1])
    return SearchPlan(fractions, search.eta, list(arms.values()))


def describe(layout: SearchPlan) -> dict[str, Any]:
    return {
        "fractions": layout.fractions,
        "eta": layout.eta,
        "settings": sorted({a.setting for a in layout.arms}),
    }
