"""The optional multilingual MLM phase runs before intermediate training and hands on its encoder."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModel

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.plan import expand
from xstilts.spec import load_sweep


def test_mlm_phase_feeds_intermediate_training(tmp_path: Path):
    sweep = write(tmp_path, micro(targets=["tatoeba"], mlm={"enabled": True, "training": {"max_steps": 3}}))
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = expand(load_sweep(sweep))
    mlm = next(p for p in plan.ordered() if p.kind == "mlm")
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    assert intermediate.inputs == {"encoder": mlm.address}
    metrics = json.loads((store / mlm.prefix / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["final_loss"] > 0
    encoder = AutoModel.from_pretrained(store / mlm.prefix / "model")
    assert encoder.config.hidden_size == 32
    lineage = json.loads((store / intermediate.prefix / "lineage.json").read_text())
    assert lineage["inputs"]["encoder"]["address"] == mlm.address
