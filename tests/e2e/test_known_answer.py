"""Known answer: the fixtures are built so that MNLI teaches what PAWS-X needs (noticing negation), and
de/es share about half their words with English (ru shares none). Over three seeds, MNLI-then-PAWS-X
must beat PAWS-X alone in the zero-shot languages: proof that the trained encoder flows phase to phase."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from tests.conftest import run_xstilts
from tests.e2e.sweeps import write
from xstilts.plan import BASELINE, expand
from xstilts.spec import load_sweep

SEEDS = [1, 2, 3]
ZERO_SHOT = ("de", "es")


def test_intermediate_mnli_improves_zero_shot_pawsx(tmp_path: Path):
    sweep_file = write(
        tmp_path,
        {
            "name": "known-answer",
            "data": {"source": "fixtures"},
            "encoders": [{"name": "tiny", "model": "tiny"}],
            "intermediate": [{"task": "mnli"}],
            "targets": ["pawsx"],
            "languages": {"pawsx": ["en", *ZERO_SHOT]},
            "seeds": SEEDS,
            "training": {"learning_rate": 1e-3, "max_length": 96, "checkpoint_every": 1000},
            "intermediate_training": {"epochs": 3},
            "task_training": {"pawsx": {"epochs": 15}},
        },
    )
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]

    plan = expand(load_sweep(sweep_file))
    zero_shot: dict[tuple[str, int], float] = {}
    for run in plan.runs:
        metrics = json.loads((store / plan.phases[run.evaluate].prefix / "metrics.json").read_text())
        zero_shot[(run.setting, run.seed)] = statistics.mean(
            metrics["languages"][lang]["score"] for lang in ZERO_SHOT
        )
    gains = [zero_shot[("mnli", seed)] - zero_shot[(BASELINE, seed)] for seed in SEEDS]
    print("zero-shot PAWS-X accuracy (de, es mean):", zero_shot, "gains:", gains)
    assert all(gain > 0 for gain in gains), f"MNLI helps on every seed: {gains}"
    assert statistics.mean(gains) >= 5.0, f"a clear average gain: {gains}"
