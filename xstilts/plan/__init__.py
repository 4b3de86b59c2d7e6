"""Sweep -> phase DAG with content addresses; dedupe; topological order."""

from xstilts.plan.expand import BASELINE, Plan, Run, expand
from xstilts.plan.phase import Phase, content_address, phase_prefix, spec_key

__all__ = [
    "BASELINE",
    "Phase",
    "Plan",
    "Run",
    "content_address",
    "expand",
    "phase_prefix",
    "spec_key",
]
