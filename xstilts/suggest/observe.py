"""What the store knows, independent of any sweep file: every phase spec under `specs/`, which phases
are complete, the observed transfer gains (an intermediate task's evaluate score minus the baseline's
with the same encoder, target training, evaluation and seed), and the domain-alignment measures."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from pydantic import ValidationError

from xstilts.plan.configs import IntermediateConfig, PhaseConfig
from xstilts.plan.phase import Phase, is_address
from xstilts.store import Store, join_key
from xstilts.store.complete import complete_prefixes

ALIGNMENT_MEASURES = (
    "vocabulary_overlap",
    "weighted_vocabulary_overlap",
    "js_divergence",
    "embedding_cosine",
)


def _digest(config: PhaseConfig) -> str:
    return hashlib.sha256(json.dumps(config.dump(), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StoreView:
    phases: dict[str, Phase]
    complete: set[str]  # addresses

    def is_done(self, address: str) -> bool:
        return address in self.complete

    def metrics(self, store: Store, phase: Phase) -> dict[str, Any] | None:
        try:
            data = json.loads(store.get_text(join_key(phase.prefix, "metrics.json")))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def root_encoder(self, address: str) -> Phase | None:
        phase = self.phases.get(address)
        while phase is not None and phase.kind != "encoder":
            phase = self.phases.get(phase.inputs.get("encoder", ""))
        return phase

    def encoders(self) -> list[Phase]:
        return [p for p in self.phases.values() if p.kind == "encoder"]


def read_store(store: Store) -> StoreView:
    phases: dict[str, Phase] = {}
    for obj in store.list("specs/"):
        address = obj.key.rsplit("/", 1)[-1].removesuffix(".json")
        if not is_address(address):
            continue
        try:
            phase = Phase.model_validate_json(store.get_text(obj.key))
        except (ValidationError, ValueError, FileNotFoundError):
            continue
        if phase.address == address and phase.computed_address() == address:
            phases[address] = phase
    done = complete_prefixes(store, [p.prefix for p in phases.values()])
    return StoreView(phases, {a for a, p in phases.items() if p.prefix in done})


@dataclass
class Gain:
    """Mean observed gain of one intermediate task on one target under one encoder."""

    encoder: str  # encoder phase address
    intermediate: str
    target: str
    gain: float
    cells: list[float] = field(default_factory=list)  # one gain per (seed, training variant)


def _score(metrics: dict[str, Any]) -> float | None:
    for key in ("average_zero_shot", "average"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def observed_gains(store: Store, view: StoreView) -> list[Gain]:
    """Gains of single-task intermediate settings trained straight from the encoder (no MLM phase, no
    augmentation), paired with the baseline cell that differs only by the intermediate phase."""
    baseline: dict[tuple, float] = {}
    treated: list[tuple[tuple, str, str, float]] = []  # (pair key, intermediate task, target, score)
    for phase in view.phases.values():
        if phase.kind != "evaluate" or not view.is_done(phase.address):
            continue
        if "model" in phase.inputs:
            target = view.phases.get(phase.inputs["model"])
            if target is None:
                continue
            upstream = view.phases.get(target.inputs.get("encoder", ""))
            trained = _digest(target.config)
        else:
            upstream = view.phases.get(phase.inputs.get("encoder", ""))
            trained = "-"
        if upstream is None:
            continue
        metrics = view.metrics(store, phase)
        score = _score(metrics) if metrics else None
        if score is None:
            continue
        if upstream.kind == "encoder":
            baseline[(upstream.address, trained, _digest(phase.config))] = score
            continue
        config = upstream.config
        parent = view.phases.get(upstream.inputs.get("encoder", ""))
        if (
            not isinstance(config, IntermediateConfig)
            or len(config.tasks) != 1
            or config.augment
            or config.stop_fraction is not None
            or parent is None
            or parent.kind != "encoder"
        ):
            continue
        treated.append(((parent.address, trained, _digest(phase.config)), config.tasks[0], phase.task, score))
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for key, task, target, score in treated:
        if key in baseline:
            cells[(key[0], task, target)].append(score - baseline[key])
    return [
        Gain(encoder, task, target, mean(values), values)
        for (encoder, task, target), values in sorted(cells.items())
    ]


def alignment_pairs(store: Store, view: StoreView, encoder: str) -> dict[tuple[str, str], dict[str, float]]:
    """(intermediate task, target) -> alignment measures, from the encoder's complete analysis phases."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for phase in view.phases.values():
        if (
            phase.kind != "analysis"
            or phase.inputs.get("encoder") != encoder
            or not view.is_done(phase.address)
        ):
            continue
        metrics = view.metrics(store, phase) or {}
        for pair in metrics.get("pairs", []):
            if not isinstance(pair, dict):
                continue
            measures = {m: float(pair[m]) for m in ALIGNMENT_MEASURES if isinstance(pair.get(m), int | float)}
            out[(str(pair.get("intermediate")), str(pair.get("target")))] = measures
    return out
