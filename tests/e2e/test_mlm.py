"""Multilingual MLM, in both of the paper's forms, from the pretrained LM head: as a phase before each
intermediate setting (the baseline stays MLM-free) and as a task in an intermediate mixture. A hub sweep
with MLM but no corpus is refused instead of training on fixture text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForMaskedLM

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.plan import BASELINE, expand
from xstilts.spec import load_sweep


def test_mlm_phase_continues_the_pretrained_lm_head(tmp_path: Path):
    # A learning rate of 1e-12 leaves the weights where they start: the MLM phase's LM head must be the
    # one the encoder phase saved (not a fresh random head, as when the encoder phase kept no head).
    mlm = {"enabled": True, "training": {"max_steps": 2, "learning_rate": 1e-12, "warmup_ratio": 0.0}}
    sweep = write(tmp_path, micro(targets=["tatoeba"], mlm=mlm))
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = expand(load_sweep(sweep))
    encoder = next(p for p in plan.ordered() if p.kind == "encoder")
    phase = next(p for p in plan.ordered() if p.kind == "mlm")
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    assert intermediate.inputs == {"encoder": phase.address}
    metrics = json.loads((store / phase.prefix / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["final_loss"] > 0

    pretrained, info = AutoModelForMaskedLM.from_pretrained(
        store / encoder.prefix / "model", output_loading_info=True
    )
    assert not [k for k in info["missing_keys"] if "lm_head" in k], "the encoder phase saved the LM head"
    continued = AutoModelForMaskedLM.from_pretrained(store / phase.prefix / "model")
    for name, weight in pretrained.lm_head.state_dict().items():
        assert torch.allclose(weight, continued.lm_head.state_dict()[name], atol=1e-6), name
    assert AutoModel.from_pretrained(store / phase.prefix / "model").config.hidden_size == 32
    # Trained phases save the upstream tokenizer as it was, not with the truncation state of their last
    # tokenizer call (which a resumed phase, reading its features from the cache, never makes).
    upstream = json.loads((store / encoder.prefix / "model" / "tokenizer.json").read_text())
    for trained in (phase, intermediate):
        saved = json.loads((store / trained.prefix / "model" / "tokenizer.json").read_text())
        assert (saved["truncation"], saved["padding"]) == (upstream["truncation"], upstream["padding"]), (
            trained.name
        )

    # the baseline is the plain encoder: no MLM phase upstream of it
    baseline = next(r for r in plan.runs if r.setting == BASELINE)
    assert plan.phases[baseline.evaluate].inputs == {"encoder": encoder.address}


def test_mlm_as_a_task_of_the_intermediate_mixture(tmp_path: Path):
    sweep = write(
        tmp_path,
        micro(targets=["tatoeba"], intermediate=[{"name": "mnli-mlm", "tasks": ["mnli", "mlm"]}],
              mlm={"mask_probability": 0.2}),
    )  # fmt: skip
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = expand(load_sweep(sweep))
    assert not [p for p in plan.ordered() if p.kind == "mlm"]
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    assert intermediate.config.mlm.model_dump() == {"corpus": None, "mask_probability": 0.2}
    metrics = json.loads((store / intermediate.prefix / "metrics.json").read_text())
    assert metrics["tasks"] == ["mnli", "mlm"] and metrics["steps"] == 4
    log = (store / intermediate.prefix / "logs" / "phase.log").read_text()
    data = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"data"' in line]
    assert {event.get("task") for event in data} >= {"mnli", "mlm"}


def test_mixture_mlm_head_is_the_checkpoint_head_tied_to_the_encoder(tmp_path: Path):
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.mlm import MissingLMHeadError, load_masked_lm
    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.modeling.tiny import build_tiny_encoder
    from xstilts.tasks import get_task

    model_dir = build_tiny_encoder(tmp_path / "tiny", corpus_lines(n_per_lang=30), {"vocab_size": 300})
    model = MultiTaskModel(load_encoder(model_dir), [get_task("mnli"), get_task("mlm")], pretrained=model_dir)
    head = model.heads["mlm"].head
    saved = AutoModelForMaskedLM.from_pretrained(model_dir).lm_head
    assert torch.equal(head.dense.weight, saved.dense.weight) and torch.equal(head.bias, saved.bias)
    assert head.decoder.weight is model.encoder.get_input_embeddings().weight
    # a checkpoint without an LM head (an old encoder phase's output) is refused, not re-initialised
    AutoModel.from_pretrained(model_dir).save_pretrained(tmp_path / "bare")
    with pytest.raises(MissingLMHeadError, match="no pretrained masked-LM head"):
        load_masked_lm(tmp_path / "bare")


@pytest.mark.parametrize(
    "mlm_form",
    [{"mlm": {"enabled": True}}, {"intermediate": [{"tasks": ["mnli", "mlm"]}]}],
    ids=["phase", "mixture"],
)
def test_hub_sweep_with_mlm_and_no_corpus_is_refused(tmp_path: Path, mlm_form: dict):
    sweep = write(tmp_path, {**micro(data={"source": "hub"}), **mlm_form})
    result = run_xstilts("sweep", "plan", str(sweep))
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert str(sweep) in message and "field 'mlm.corpus'" in message and "fix:" in message
    assert "Traceback" not in result.stderr
