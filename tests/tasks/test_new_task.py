"""A task is one registry entry: a target added here (an existing format, metric and fixture data)
plans, trains on the tiny model, is evaluated and scored, with no other file of xstilts touched."""

from __future__ import annotations

import json

import pytest

from xstilts.backends.reconcile import write_specs
from xstilts.evaluate.scoring import SCORERS
from xstilts.phases.evaluate import RETRIEVAL
from xstilts.phases.run import run_phase
from xstilts.plan.expand import expand
from xstilts.spec.load import parse_sweep
from xstilts.store.local import LocalStore
from xstilts.tasks import Format, Role, TaskDef, all_tasks, get_task, registry
from xstilts.tasks import adapters as a
from xstilts.tasks.base import Source

# PAWS-X's data under another name: paraphrase identification scored by accuracy. Its own `hparams`
# make its English fine-tuning differ from PAWS-X's, so the planner trains it rather than reusing PAWS-X.
PARAPHRASE = TaskDef(
    name="paraphrase-again",
    role=Role.TARGET,
    format=Format.CLASSIFICATION,
    metric="accuracy",
    train=Source("google/xtreme", "PAWS-X.en", "train", a.pawsx),
    dev=Source("google/xtreme", "PAWS-X.en", "validation", a.pawsx),
    evaluate=Source("google/xtreme", "PAWS-X.{lang}", "test", a.pawsx),
    languages=("en", "de", "fr"),
    labels=("not_paraphrase", "paraphrase"),
    hparams={"max_length": 64},
    description="PAWS-X again, registered by a test",
)


def test_every_registered_metric_has_one_scorer():
    for task in all_tasks():
        if task.format is Format.RETRIEVAL:
            assert task.metric in RETRIEVAL, task.name
        elif task.format is not Format.MLM:
            assert task.metric in SCORERS, task.name
    assert set(SCORERS).isdisjoint(RETRIEVAL)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_task_added_as_one_registry_entry_plans_runs_and_is_scored(tmp_path, monkeypatch):
    assert a.pawsx is get_task("pawsx").train.adapter  # the entry reuses PAWS-X's adapter and fixtures
    monkeypatch.setitem(registry.REGISTRY, PARAPHRASE.name, PARAPHRASE)
    sweep = parse_sweep(
        {
            "name": "one-entry",
            "benchmark": "custom",
            "data": {"source": "fixtures"},
            "encoders": [{"name": "tiny", "model": "tiny"}],
            "baseline": True,
            "targets": ["Paraphrase_Again"],
            "seeds": [1],
            "training": {"max_steps": 4, "batch_size": 8, "max_length": 64, "max_dev_examples": 16},
        },
        "one-entry.yaml",
    )
    plan = expand(sweep)
    assert [p.kind for p in plan.ordered()] == ["encoder", "target", "evaluate"]
    store = LocalStore(tmp_path / "store")
    write_specs(plan, store)
    for phase in plan.ordered():
        assert run_phase(phase.address, store) == "done", phase.name
    (evaluate,) = [p for p in plan.ordered() if p.kind == "evaluate"]
    metrics = json.loads(store.get_text(f"{evaluate.prefix}/metrics.json"))
    assert metrics["task"] == PARAPHRASE.name and metrics["metric"] == "accuracy"
    assert set(metrics["languages"]) == {"en", "de"}  # fr has no fixture: planned out
    assert all(0.0 <= m["score"] <= 100.0 for m in metrics["languages"].values())
