"""What is in a checkpoint is data, never code: the training state round-trips exactly through
safetensors and JSON, and resume refuses a checkpoint with a pickle in it (a matching `_COMPLETE`
checks integrity, not authorship) before anything is loaded, so the pickle's code never runs."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, planned, write
from xstilts.backends.reconcile import write_specs
from xstilts.errors import UntrustedContentError
from xstilts.store import LocalStore
from xstilts.train import state as training_state
from xstilts.train.checkpoint import Checkpointer


class _RunsCode:
    """A pickle that runs a command when loaded (what an attacker would plant)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_optimizer_scheduler_and_rng_state_round_trip_exactly(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (s + 1))
    for _ in range(3):
        model(torch.randn(5, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
    for name, tree in (("optimizer", optimizer.state_dict()), ("scheduler", scheduler.state_dict())):
        training_state.write_tree(tree, tmp_path / f"{name}.json", tmp_path / f"{name}.safetensors")
        back = training_state.read_tree(tmp_path / f"{name}.json", tmp_path / f"{name}.safetensors")
        assert _same(back, tree), name

    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    saved = training_state.rng_state()
    training_state.write_tree(saved, tmp_path / "rng.json", tmp_path / "rng.safetensors")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restored = training_state.read_tree(tmp_path / "rng.json", tmp_path / "rng.safetensors")
    training_state.set_rng_state(restored)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # NaN equals NaN here


def test_state_that_is_not_plain_data_is_never_pickled(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot store a _RunsCode"):
        training_state.write_tree({"x": _RunsCode("true")}, tmp_path / "x.json")


@pytest.mark.parametrize("planted", ["custom_checkpoint_0.pkl", "optimizer.bin"])
def test_checkpointer_refuses_a_manifest_that_lists_a_pickle(tmp_path: Path, planted: str) -> None:
    store = LocalStore(tmp_path / "store")
    local = tmp_path / "staging" / "checkpoints" / "step-2"
    local.mkdir(parents=True)
    (local / planted).write_bytes(pickle.dumps(_RunsCode("true")))
    checkpointer = Checkpointer(store, "phases/target/0123456789ab", tmp_path / "staging")
    checkpointer.commit(2, {"step": 2})
    with pytest.raises(UntrustedContentError, match=f"holds {planted}, a pickle") as err:
        checkpointer.latest()
    assert err.value.exit_code == 3


def _plant(checkpoint: Path, name: str, payload: bytes) -> None:
    """Add a file to a committed checkpoint and rewrite its `_COMPLETE` to match, as an attacker who
    can write to the bucket would."""
    (checkpoint / name).write_bytes(payload)
    manifest = json.loads((checkpoint / "_COMPLETE").read_text())
    manifest["files"].append(
        {"path": name, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    )
    (checkpoint / "_COMPLETE").write_text(json.dumps(manifest))


def test_resume_refuses_a_planted_pickle_and_runs_no_code(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep_file = write(tmp_path, micro())
    plan, encoder, intermediate = planned(sweep_file)
    root = tmp_path / "store"
    write_specs(plan, LocalStore(root))
    env = {"XSTILTS_STAGING": str(tmp_path / "staging")}
    for phase in (encoder, intermediate):
        done = run_xstilts("phase", "run", phase.address, "--store", str(root), env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    # The phase "was killed" after its last checkpoint: no phase marker, a complete checkpoint.
    (root / intermediate.prefix / "_COMPLETE").unlink()
    checkpoint = sorted((root / intermediate.prefix / "checkpoints").glob("step-*"))[-1]
    manifest = (checkpoint / "_COMPLETE").read_text()
    proof = tmp_path / "the-pickle-ran"
    payload = pickle.dumps(_RunsCode(f"touch {proof}"))

    # Where Accelerate's own loader would find it: custom_checkpoint_0.pkl holds a registered object.
    _plant(checkpoint, "custom_checkpoint_0.pkl", payload)
    resumed = run_xstilts("phase", "run", intermediate.address, "--store", str(root), env=env)
    assert resumed.returncode == 3, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert not proof.exists(), "the planted pickle ran"
    last = resumed.stderr.strip().splitlines()[-1]
    assert "custom_checkpoint_0.pkl" in last and "pickle" in last and "refusing to resume" in last
    assert "Traceback" not in resumed.stderr
    assert not (root / intermediate.prefix / "_COMPLETE").exists()

    # A pickle under an allowed name is not unpickled either: safetensors refuses to parse it.
    (checkpoint / "custom_checkpoint_0.pkl").unlink()
    (checkpoint / "_COMPLETE").write_text(manifest)
    data = json.loads(manifest)
    for entry in data["files"]:
        if entry["path"] == "optimizer.safetensors":
            (checkpoint / "optimizer.safetensors").write_bytes(payload)
            entry.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    (checkpoint / "_COMPLETE").write_text(json.dumps(data))
    resumed = run_xstilts("phase", "run", intermediate.address, "--store", str(root), env=env)
    assert resumed.returncode == 3, resumed.stderr[-2000:]
    assert "cannot be read as xstilts training state" in resumed.stderr.strip().splitlines()[-1]
    assert not proof.exists() and "Traceback" not in resumed.stderr
