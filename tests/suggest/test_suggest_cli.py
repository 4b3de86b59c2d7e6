"""`xstilts suggest` as a user runs it: on an empty store (task embeddings computed through the local
backend, ranked by similarity alone, said so; a sweep file for the top-k that loads), and on a store
holding a finished sweep (regression on observed gains, the leave-one-target-out table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.plan import expand
from xstilts.report import build_report
from xstilts.spec import load_sweep
from xstilts.store import LocalStore

pytestmark = pytest.mark.xdist_group("suggest-cli")


def test_empty_store_ranks_by_similarity_and_writes_a_sweep(tmp_path: Path):
    store, out = tmp_path / "store", tmp_path / "suggested.yaml"
    args = ["suggest", "--target", "pawsx", "--store", str(store), "--data", "fixtures"]
    result = run_xstilts(*args, "--pool", "mnli", "--pool", "squad", "--sweep-out", str(out), "--top", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ranked by embedding similarity alone" in result.stdout
    assert "Computed task embeddings for mnli, pawsx, squad" in result.stderr
    sweep = load_sweep(out)
    assert sweep.targets == ["pawsx"] and len(sweep.intermediate) == 1 and sweep.baseline

    again = run_xstilts(*args, "--pool", "mnli", "--pool", "squad", "-o", "json", "--no-compute")
    assert again.returncode == 0, again.stderr[-3000:]  # embeddings are in the store now
    data = json.loads(again.stdout)
    assert data["method"] == "similarity" and data["observed_gains"] == 0
    assert [c["task"] for c in data["candidates"]][:1] == [sweep.intermediate[0].task]
    assert all(c["predicted_gain"] is None for c in data["candidates"])

    missing = run_xstilts(*args, "--pool", "qqp", "--no-compute")
    assert missing.returncode != 0 and "qqp" in missing.stderr and "Traceback" not in missing.stderr


def test_store_with_results_regression_and_leave_one_target_out(tmp_path: Path):
    training = {**micro()["training"], "max_steps": 3, "max_eval_examples": 20}
    sweep = micro(
        "suggest-grid", intermediate=[{"task": "mnli"}, {"task": "qqp"}], targets=["pawsx", "xnli"],
        training=training,
    )  # fmt: skip
    store, sweep_file = tmp_path / "store", write(tmp_path, sweep)
    done = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), "--no-report")
    assert done.returncode == 0, done.stderr[-3000:]

    result = run_xstilts("suggest", "--target", "pawsx", "--store", str(store), "-o", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["observed_gains"] == 4  # 2 intermediate tasks x 2 targets
    assert data["method"] == "regression" or "regression needs" in data["note"]
    assert {c["task"] for c in data["candidates"]} == {"mnli", "qqp"}
    assert all(c["observed_gain"] is not None for c in data["candidates"])
    rows = data["evaluation"]["targets"]
    assert [r["target"] for r in rows] == ["pawsx", "xnli"]
    for row in rows:
        assert 0.0 <= row["ndcg3"] <= 1.0 and -1.0 <= row["spearman"] <= 1.0
        assert row["mnli_ndcg3"] is not None and row["random_ndcg3"] is not None

    table = run_xstilts("suggest", "--target", "xnli", "--store", str(store), "--no-compute")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "Leave-one-target-out evaluation" in table.stdout and "MNLI NDCG@3" in table.stdout

    report = build_report(expand(load_sweep(sweep_file)), LocalStore(store), tmp_path / "report")
    text = report.markdown.read_text()
    assert "## Suggesting intermediate tasks: leave-one-target-out" in text
    assert "| pawsx | 2 |" in text and "| xnli | 2 |" in text
