"""Sweep files for the cluster tier: the smallest that cross every phase kind, and a two-phase one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.sweeps import micro, write
from xstilts.plan.expand import Plan, expand
from xstilts.spec.load import load_sweep

# Timings and throughput differ between runs; everything else a phase reports must not.
VOLATILE_METRICS = ("tokens_per_s", "train_seconds")


def every_kind(name: str = "kinds", **overrides: Any) -> dict[str, Any]:
    """encoder -> mlm -> intermediate (MNLI) -> target (PAWS-X) -> evaluate: five phases, one each."""
    return micro(
        name,
        targets=["pawsx"],
        baseline=False,
        mlm={"enabled": True, "training": {"max_steps": 3}},
        **overrides,
    )


def two_phases(name: str = "pair", **overrides: Any) -> dict[str, Any]:
    """encoder -> evaluate (Tatoeba retrieval, no training)."""
    return micro(name, intermediate=[], targets=["tatoeba"], **overrides)


def sweep_file(tmp: Path, sweep: dict[str, Any]) -> tuple[Path, Plan]:
    tmp.mkdir(parents=True, exist_ok=True)
    path = write(tmp, sweep, f"{sweep['name']}.yaml")
    return path, expand(load_sweep(path))


def metrics(store: Any, plan: Plan) -> dict[str, dict[str, Any]]:
    """Every phase's metrics.json without the volatile fields, by phase name."""
    out = {}
    for phase in plan.ordered():
        data = json.loads(store.get_text(f"{phase.prefix}/metrics.json"))
        out[phase.name] = {k: v for k, v in data.items() if k not in VOLATILE_METRICS}
    return out
