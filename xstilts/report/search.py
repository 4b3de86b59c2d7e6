"""What a successive-halving search did and what it cost, against the full grid it replaces: which
settings stopped at which rung, phases executed, and accelerator hours (measured for the phases that
ran; for the grid's phases that never ran, estimated from the measured phases of the same kind and task:
an intermediate phase from the full runs that finished, or from its own last rung scaled to the full
run). A CPU-only phase counts as one accelerator (its seconds are what a GPU run would roughly take on
the same tiny sweep; on a cluster the preset's GPUs count)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from statistics import mean
from typing import Any

from xstilts.plan.expand import Plan, expand
from xstilts.plan.phase import Phase
from xstilts.report.collect import phase_cost
from xstilts.store import Store
from xstilts.store.complete import complete_prefixes

SECONDS_PER_HOUR = 3600.0


def _hours(store: Store, phase: Phase) -> float | None:
    cost = phase_cost(store, phase)
    return None if cost.seconds is None else cost.seconds * max(1, cost.gpus) / SECONDS_PER_HOUR


def _key(phase: Phase) -> tuple[str, str, bool]:
    return (
        phase.kind,
        phase.label if phase.kind != "intermediate" else "",
        getattr(phase.config, "stop_fraction", None) is not None,
    )


def search_summary(plan: Plan, store: Store) -> dict[str, Any]:
    layout = plan.search
    if layout is None:
        raise ValueError(f"sweep '{plan.sweep.name}' has no search")
    grid = expand(plan.sweep.model_copy(update={"search": None}))
    every = {**grid.phases, **plan.phases}
    prefixes = complete_prefixes(store, [p.prefix for p in every.values()])
    done = {a for a, p in every.items() if p.prefix in prefixes}
    measured = {a: _hours(store, every[a]) for a in done}
    by_key: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
    for address, hours in measured.items():
        if hours is not None:
            by_key[_key(every[address])].append(hours)
    gate = layout.gate(plan, store, done)

    def estimate(phase: Phase) -> float:
        if measured.get(phase.address) is not None:
            return measured[phase.address]  # type: ignore[return-value]
        same = by_key.get(_key(phase))
        if same:
            return mean(same)
        if phase.kind == "intermediate":  # no full run finished: the arm's last rung, scaled up
            for arm in layout.arms:
                if phase.address in arm.intermediates[-1]:
                    for rung in range(len(layout.fractions) - 2, -1, -1):
                        hours = [measured.get(a) for a in arm.intermediates[rung]]
                        if all(h is not None for h in hours):
                            return mean(hours) / layout.fractions[rung]  # type: ignore[arg-type]
        return 0.0

    spent = sum(h for a, h in measured.items() if a in plan.phases and h is not None)
    grid_hours = sum(estimate(p) for p in grid.phases.values())
    settings = []
    for arm in layout.arms:
        rung = gate.stopped_at.get((arm.encoder, arm.setting))
        finished = all(a in done for a in arm.downstream)
        settings.append({
            "setting": arm.setting,
            "stopped_at_rung": None if rung is None else rung + 1,
            "state": "stopped" if rung is not None else ("finished" if finished else "running"),
            "trained_fraction": layout.fractions[rung] if rung is not None else 1.0,
        })  # fmt: skip
    return {
        "sweep": plan.sweep.name,
        "rungs": layout.fractions,
        "eta": layout.eta,
        "settings": settings,
        "decisions": [dataclasses.asdict(d) for d in gate.decisions],
        "phases_executed": sum(1 for a in plan.phases if a in done),
        "grid_phases": len(grid.phases),
        "gpu_hours": round(spent, 6),
        "grid_gpu_hours": round(grid_hours, 6),
        "fraction_of_grid": round(spent / grid_hours, 4) if grid_hours else None,
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    rungs = ", ".join(f"{f:.0%}" for f in summary["rungs"])
    lines = [
        "## Successive halving on the intermediate axis",
        "",
        f"Rungs (share of the full run): {rungs}; eta {summary['eta']}. Promotion on the targets' English "
        "dev scores (mean over seeds; equal scores by the lower training loss); the best 1/eta for any "
        "target go on.",
        "",
        "| setting | state | stopped at rung | trained |",
        "|---|---|---|---|",
    ]
    for s in summary["settings"]:
        rung = "-" if s["stopped_at_rung"] is None else str(s["stopped_at_rung"])
        lines.append(f"| {s['setting']} | {s['state']} | {rung} | {s['trained_fraction']:.0%} |")
    share = summary["fraction_of_grid"]
    lines += [
        "",
        f"Phases executed: {summary['phases_executed']} (the full grid: {summary['grid_phases']}). "
        f"Accelerator hours: {summary['gpu_hours']:.4f} spent, {summary['grid_gpu_hours']:.4f} estimated "
        f"for the full grid" + (f" ({share:.0%})." if share is not None else "."),
        "",
    ]
    return "\n".join(lines)
