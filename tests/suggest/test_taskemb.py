"""The taskemb phase on the tiny encoder and the fixtures: TextEmb and TaskEmb (Fisher sketch) per task,
content-addressed like any phase, deterministic, and different for different tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.sweeps import micro, write
from xstilts.backends.reconcile import write_specs
from xstilts.phases.run import run_phase
from xstilts.phases.taskemb import sketch
from xstilts.plan import expand
from xstilts.spec import load_sweep
from xstilts.store import LocalStore
from xstilts.suggest.embeddings import cosine, read_embeddings, taskemb_phase

pytestmark = pytest.mark.xdist_group("taskemb")


def test_sketch_keeps_cosines_roughly_and_is_seeded():
    import torch

    rng = np.random.default_rng(0)
    a = torch.tensor(rng.random(20000))
    b = a + torch.tensor(rng.random(20000)) * 0.5
    exact = float(a @ b / (a.norm() * b.norm()))
    sa, sb = sketch([("w", a)], 512, 0), sketch([("w", b)], 512, 0)
    assert abs(float(sa @ sb) - exact) < 0.05
    assert np.array_equal(sa, sketch([("w", a)], 512, 0))
    assert not np.array_equal(sa, sketch([("w", a)], 512, 1))


def test_taskemb_phases_on_the_tiny_encoder(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XSTILTS_STAGING", str(tmp_path / "staging"))
    plan = expand(load_sweep(write(tmp_path, micro())))
    encoder = next(p for p in plan.ordered() if p.kind == "encoder")
    phases = {task: taskemb_phase(encoder, task) for task in ("mnli", "pawsx", "tatoeba")}
    for phase in phases.values():
        plan.add(phase)
    store = LocalStore(tmp_path / "store")
    write_specs(plan, store)
    assert run_phase(encoder.address, store) == "done"
    for phase in phases.values():
        assert phase.prefix.startswith("phases/taskemb/")
        assert run_phase(phase.address, store) == "done"
    assert run_phase(phases["mnli"].address, store) == "skipped"  # content-addressed: computed once

    emb = {task: read_embeddings(store, phase) for task, phase in phases.items()}
    assert emb["mnli"]["text"].shape == (32,)  # the micro sweep's hidden size
    assert emb["mnli"]["task"].shape == (4096,) and emb["pawsx"]["task"].shape == (4096,)
    assert emb["tatoeba"]["task"] is None  # no training data: TextEmb only
    assert np.isclose(np.linalg.norm(emb["mnli"]["task"]), 1.0)
    same = cosine(emb["mnli"]["task"], emb["mnli"]["task"])
    other = cosine(emb["mnli"]["task"], emb["pawsx"]["task"])
    assert same == pytest.approx(1.0) and other is not None and other < 0.999
    metrics = json.loads((tmp_path / "store" / phases["pawsx"].prefix / "metrics.json").read_text())
    assert metrics["fisher_examples"] > 0 and metrics["text_examples"] > 0

    # The same phase recomputed from scratch gives the same vectors.
    store.delete_prefix(phases["pawsx"].prefix)
    assert run_phase(phases["pawsx"].address, store) == "done"
    repeat = read_embeddings(store, phases["pawsx"])
    assert np.allclose(repeat["task"], emb["pawsx"]["task"], atol=1e-6)
    assert np.allclose(repeat["text"], emb["pawsx"]["text"], atol=1e-6)
