"""How big a sweep's DAG will be, known before it is expanded, so a sweep that takes minutes and
gigabytes to plan (220,002 phases: 166 s, 1.26 GB) is announced instead of silently slow."""

from __future__ import annotations

import os

from xstilts.spec.models import Sweep

WARN_PHASES = 20_000  # `XSTILTS_PLAN_WARN_PHASES` overrides


def estimated_phases(sweep: Sweep) -> int:
    """An upper bound on the phases `expand` makes (deduplication only lowers it)."""
    settings = int(sweep.baseline) + len(sweep.intermediate)
    per_seed = int(sweep.mlm.enabled) + len(sweep.intermediate) + settings * len(sweep.targets) * 2
    per_encoder = 1 + int(sweep.analysis.domain_alignment) + len(sweep.seeds) * per_seed
    return len(sweep.encoders) * per_encoder


def size_warning(sweep: Sweep) -> str | None:
    """A one-line warning when the sweep is above the size threshold, else None."""
    try:
        limit = int(os.environ.get("XSTILTS_PLAN_WARN_PHASES", WARN_PHASES))
    except ValueError:
        limit = WARN_PHASES
    estimate = estimated_phases(sweep)
    if estimate <= limit:
        return None
    return (
        f"warning: sweep '{sweep.name}' expands to up to {estimate:,} phases (more than {limit:,}): planning "
        "alone takes minutes and gigabytes of memory, and every status pass checks each phase; consider "
        "splitting it into several sweep files (they share phases through the store), or set "
        "XSTILTS_PLAN_WARN_PHASES to silence this"
    )
