"""Which sweeps a store holds: `submit` records each sweep under `sweeps/<name>.json` (its phases and
when it was last submitted); `sweep list` reads the records back with phases done, last activity and
GPU-hours (from the done phases' lineage and their pods' GPU counts)."""

from __future__ import annotations

import calendar
import json
import time
from typing import Any

from xstilts.plan.expand import Plan
from xstilts.store import Store, join_key
from xstilts.store.complete import complete_prefixes

SWEEPS = "sweeps"


def record_sweep(plan: Plan, store: Store, file: str) -> None:
    phases = [
        {"address": p.address, "prefix": p.prefix, "gpus": p.resources.gpu * p.resources.nodes}
        for p in plan.ordered()
    ]
    record = {
        "name": plan.sweep.name,
        "file": file,
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "phases": phases,
    }
    store.put_text(join_key(SWEEPS, f"{plan.sweep.name}.json"), json.dumps(record, indent=1))


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


def list_sweeps(store: Store) -> list[dict[str, Any]]:
    rows = []
    for info in sorted(store.list(f"{SWEEPS}/"), key=lambda i: i.key):
        if not info.key.endswith(".json"):
            continue
        try:
            record = json.loads(store.get_text(info.key))
        except (json.JSONDecodeError, FileNotFoundError):
            continue
        phases = record.get("phases", [])
        done = complete_prefixes(store, [p["prefix"] for p in phases])
        last = _seconds(record.get("submitted_at"))
        gpu_seconds = 0.0
        for phase in phases:
            if phase["prefix"] not in done:
                continue
            try:
                lineage = json.loads(store.get_text(join_key(phase["prefix"], "lineage.json")))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            start, end = _seconds(lineage.get("started_at")), _seconds(lineage.get("finished_at"))
            if end is not None:
                last = max(last or end, end)
            if start is not None and end is not None:
                gpu_seconds += max(0.0, end - start) * phase.get("gpus", 0)
        rows.append(
            {
                "sweep": record.get("name"),
                "done": len(done),
                "total": len(phases),
                "last_activity": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else None,
                "gpu_hours": round(gpu_seconds / 3600, 2),
                "file": record.get("file"),
            }
        )
    return rows
