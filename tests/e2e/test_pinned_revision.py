"""`encoders[].revision` pins the weights, not only the tokenizer: two revisions of one hub model give the
encoder phase different weights. Offline, with a Hugging Face cache laid out as the hub client writes it
(refs/<branch> -> commit, snapshots/<commit>/<files>), so from_pretrained resolves revisions for real."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.data.fixtures import corpus_lines
from xstilts.modeling.tiny import build_tiny_encoder
from xstilts.plan import expand
from xstilts.spec import load_sweep

REPO_ID = "xstilts-test/tiny-revisions"
MAIN, V2 = "a" * 40, "b" * 40
SHAPE = {"hidden_size": 32, "intermediate_size": 64, "vocab_size": 400}


def hub_cache(root: Path) -> Path:
    """Two snapshots of REPO_ID: main (init seed 0) and branch v2 (init seed 1)."""
    repo = root / "models--xstilts-test--tiny-revisions"
    lines = corpus_lines(n_per_lang=40)
    for commit, seed in ((MAIN, 0), (V2, 1)):
        build_tiny_encoder(repo / "snapshots" / commit, lines, {**SHAPE, "init_seed": seed})
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v2").write_text(V2)
    return root


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_two_revisions_give_the_encoder_phase_different_weights(tmp_path: Path):
    cache = hub_cache(tmp_path / "hub")
    encoders = [
        {"name": "pinned-main", "model": REPO_ID, "revision": MAIN},
        {"name": "branch-v2", "model": REPO_ID, "revision": "v2"},
    ]
    sweep = write(tmp_path, micro(encoders=encoders, intermediate=[], targets=["tatoeba"]))
    store = tmp_path / "store"
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report", env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    plan = expand(load_sweep(sweep))
    saved = {p.label: weights(store / p.prefix / "model") for p in plan.ordered() if p.kind == "encoder"}
    snapshot = {
        rev: weights(cache / "models--xstilts-test--tiny-revisions" / "snapshots" / rev) for rev in (MAIN, V2)
    }
    key = "roberta.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(snapshot[MAIN][key], snapshot[V2][key])
    for name, revision in (("pinned-main", MAIN), ("branch-v2", V2)):
        assert set(saved[name]) == set(snapshot[revision]), name
        assert all(torch.equal(saved[name][k], snapshot[revision][k]) for k in saved[name]), name
    assert not torch.equal(saved["pinned-main"][key], saved["branch-v2"][key])
    assert os.environ.get("HF_HUB_CACHE") != str(cache)  # the test's cache never leaked into this process
    shutil.rmtree(cache)
