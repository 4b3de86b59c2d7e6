"""`xstilts suggest` end to end: pick the encoder, find or compute the task embeddings (taskemb phases,
run through the local backend like any sweep's phases, so they are computed once per store), read the
observed gains, rank, and write the sweep file for the top-k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xstilts.errors import ConfigError, PhaseFailedError
from xstilts.plan.configs import EncoderConfig
from xstilts.plan.expand import Plan
from xstilts.plan.phase import Phase, content_address
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.models import EncoderSpec, Sweep
from xstilts.store import Store
from xstilts.suggest.embeddings import read_embeddings, taskemb_phase
from xstilts.suggest.observe import StoreView, alignment_pairs, observed_gains, read_store
from xstilts.suggest.rank import Embeddings, Suggestion, suggest
from xstilts.tasks import get_task

# The X-STILTs paper's single intermediate tasks: the default pool when the store has observed none.
PAPER_POOL = ("ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "squad", "sst2")


def choose_encoder(view: StoreView, name: str | None, gains_by_encoder: dict[str, int], data: str) -> Phase:
    """The encoder phase named `name` (the one with the most observed gains when several share the name),
    else the store's encoder with the most gains; with none in the store, a new encoder phase for model
    `name` (default: tiny) on `data`."""
    encoders = [p for p in view.encoders() if name is None or p.label == name]
    done = [p for p in encoders if view.is_done(p.address)] or encoders
    if done:
        return max(done, key=lambda p: (gains_by_encoder.get(p.address, 0), p.label, p.address))
    model = name or "tiny"
    label = "tiny" if model == "tiny" else model.rsplit("/", 1)[-1].lower()[:40]
    spec = EncoderSpec(name=label, model=model)
    tiny: dict[str, Any] = {}
    if spec.model == "tiny":
        tiny = {"data": {"source": data} if data == "hub" else {"source": data, "fixtures_size": "tiny"},
                "tiny": spec.tiny}  # fmt: skip
    config = EncoderConfig(model=spec.model, revision=spec.revision, checkpoint="masked-lm", **tiny).dump()
    return Phase(kind="encoder", address=content_address("encoder", config, {}), label=label, config=config)


def _plan(encoder: Phase, phases: list[Phase]) -> Plan:
    sweep = Sweep(name="suggest-taskemb", encoders=[{"name": "x", "model": "tiny"}], targets=["pawsx"])
    plan = Plan(sweep)
    plan.add(encoder)
    for phase in phases:
        plan.add(phase)
    return plan


def compute_embeddings(
    store: Store, store_uri: str, view: StoreView, encoder: Phase, tasks: list[str], *, compute: bool,
    work_dir: Path, on_pass=None,
) -> tuple[Embeddings, list[str]]:  # fmt: skip
    """task -> embeddings of every task in `tasks`; runs the missing taskemb phases (and the encoder phase
    when the store has none) through the local backend unless `compute` is off. Returns the embeddings
    and the tasks computed now."""
    from xstilts.backends.local import LocalBackend
    from xstilts.backends.reconcile import FAILED, Reconciler

    phases = {task: taskemb_phase(encoder, task) for task in tasks}
    missing = [t for t, p in phases.items() if not view.is_done(p.address)]
    if missing and not compute:
        raise ConfigError(
            f"no task embeddings in the store for {', '.join(missing)} under encoder {encoder.label}",
            field="--no-compute",
            fix="drop --no-compute to compute them (a few seconds per task), or give a --pool without them",
        )
    if missing:
        plan = _plan(encoder, [phases[t] for t in missing])
        backend = LocalBackend(work_dir)
        try:
            statuses = Reconciler(plan, store, backend, store_uri, ClusterSettings()).run(on_pass=on_pass)
        finally:
            backend.close()
        failed = [s for s in statuses if s.state == FAILED]
        if failed:
            raise PhaseFailedError(f"task embedding phase {failed[0].name} failed: {failed[0].reason}")
    return {t: read_embeddings(store, p) for t, p in phases.items()}, missing


def run_suggest(
    store: Store, store_uri: str, target: str, *, encoder: str | None, pool: list[str] | None, compute: bool,
    work_dir: Path, data: str = "hub", on_pass=None,
) -> tuple[Suggestion, Phase, list[str]]:  # fmt: skip
    target = get_task(target).name
    view = read_store(store)
    gains = observed_gains(store, view)
    per_encoder: dict[str, int] = {}
    for g in gains:
        per_encoder[g.encoder] = per_encoder.get(g.encoder, 0) + 1
    chosen = choose_encoder(view, encoder, per_encoder, data)
    gains = [g for g in gains if g.encoder == chosen.address]
    if pool:
        candidates = [get_task(t).name for t in pool]
    else:
        candidates = sorted({g.intermediate for g in gains}) or list(PAPER_POOL)
    candidates = [t for t in dict.fromkeys(candidates) if t != target]
    if not candidates:
        raise ConfigError(
            "no candidate intermediate tasks", field="--pool", fix="name at least one other task"
        )
    tasks = sorted({target, *candidates, *(g.intermediate for g in gains), *(g.target for g in gains)})
    embeddings, computed = compute_embeddings(
        store, store_uri, view, chosen, tasks, compute=compute, work_dir=work_dir, on_pass=on_pass
    )
    alignment = alignment_pairs(store, view, chosen.address)
    return suggest(target, chosen.label, candidates, gains, embeddings, alignment), chosen, computed


def sweep_file(suggestion: Suggestion, encoder: Phase, top: int) -> dict[str, Any]:
    """A sweep for the top-k candidates and the baseline on the target (training settings: defaults)."""
    config = encoder.config.dump()
    spec: dict[str, Any] = {"name": encoder.label, "model": config["model"]}
    if config.get("revision"):
        spec["revision"] = config["revision"]
    if "tiny" in config:
        spec["tiny"] = config["tiny"]
    data = config.get("data") or {"source": "hub"}
    name = f"suggested-{suggestion.target}"[:40].strip("-")
    return {
        "name": name,
        "description": f"top {top} intermediate tasks for {suggestion.target} from `xstilts suggest` "
        f"({suggestion.method})",
        "data": {k: v for k, v in data.items() if k in ("source", "fixtures_size")},
        "encoders": [spec],
        "baseline": True,
        "intermediate": [{"task": c.task} for c in suggestion.candidates[:top]],
        "targets": [suggestion.target],
        "seeds": [1, 2, 3],
    }


def write_sweep(path: Path, suggestion: Suggestion, encoder: Phase, top: int) -> None:
    path.write_text(yaml.safe_dump(sweep_file(suggestion, encoder, top), sort_keys=False))
