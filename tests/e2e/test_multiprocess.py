"""A phase rendered for 2 GPUs runs its real `accelerate launch` command: on CPU, two processes over
gloo (DDP), a multi-task mixture with one head per task; rank 0 alone commits."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.plan import expand
from xstilts.render.job import render_phase
from xstilts.spec import load_sweep
from xstilts.spec.cluster import ClusterSettings


def test_two_process_data_parallel_phase(tmp_path: Path):
    training = {
        **micro()["training"],
        "max_steps": 6,
        "checkpoint_every": 3,
        "batch_size": 16,
        "per_device_batch_size": 8,
    }
    sweep = write(
        tmp_path,
        micro(
            intermediate=[{"tasks": ["mnli", "hellaswag"]}],
            targets=["tatoeba"],
            training=training,
            resources={"intermediate": {"gpu": 2}},
        ),
    )
    plan = expand(load_sweep(sweep))
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    job = render_phase(intermediate, "micro", "/store", ClusterSettings())[0]
    container = job.spec.template.spec.containers[0]
    assert container.command == ["accelerate"] and "--num_processes" in container.args
    assert container.args[container.args.index("--num_processes") + 1] == "2"

    store = tmp_path / "store"
    # ACCELERATE_USE_CPU turns `--multi_gpu` into CPU processes over gloo (ENVIRONMENT.md).
    result = run_xstilts(
        "sweep", "submit", str(sweep), "--store", str(store), "--no-report", env={"ACCELERATE_USE_CPU": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (store / intermediate.prefix / "logs" / "phase.log").read_text()
    assert log.count('"event": "start"') == 1, "only rank 0 logs and commits"
    metrics = json.loads((store / intermediate.prefix / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["tasks"] == ["mnli", "hellaswag"]
    heads = json.loads((store / intermediate.prefix / "model" / "heads.json").read_text())
    assert set(heads) == {"mnli", "hellaswag"}
