"""Embedding-space adversarial training in `MultiTaskModel.forward` (R3F, FreeLB) on every trainable
format, with the tiny encoder: a finite loss with gradients, reproducible under a seed, a no-op in
evaluation mode, and the plain path untouched when `adversarial` is "none"."""

from __future__ import annotations

import pytest
import torch

from xstilts.data.batching import collate
from xstilts.data.features import featurize
from xstilts.data.load import load_examples
from xstilts.modeling.model import MultiTaskModel
from xstilts.tasks import get_task

TASKS = ["mnli", "hellaswag", "squad", "udpos", "stsb"]  # classification, MC, QA, tagging, regression


def _batch(name: str, data, tokenizer) -> dict[str, torch.Tensor]:
    task = get_task(name)
    examples = load_examples(task, "train", data, "en", limit=3)
    features = featurize(task, tokenizer, examples, 96, doc_stride=32)
    keep = ("input_ids", "labels", "start_positions", "end_positions")
    return collate([{k: v for k, v in f.items() if k in keep} for f in features], tokenizer.pad_token_id)


def _loss(model: MultiTaskModel, name: str, batch: dict[str, torch.Tensor], seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return model(name, batch)[1]


@pytest.mark.parametrize("kind", ["r3f", "freelb"])
@pytest.mark.parametrize("name", TASKS)
def test_adversarial_loss_is_finite_differentiable_and_seeded(name, kind, data, tokenizer, encoder_factory):
    batch = _batch(name, data, tokenizer)
    model = MultiTaskModel(encoder_factory(), [get_task(name)], adversarial=kind, adversarial_weight=1.0)
    model.train()
    loss = _loss(model, name, batch)
    assert torch.isfinite(loss)
    loss.backward()
    embeddings = model.encoder.get_input_embeddings().weight.grad
    assert embeddings is not None and torch.isfinite(embeddings).all() and embeddings.abs().sum() > 0
    assert all(p.grad is not None for p in model.heads[name].parameters())
    assert _loss(model, name, batch).item() == loss.item()  # same seed, same noise, same loss


@pytest.mark.parametrize("name", ["mnli", "squad"])
def test_adversarial_term_adds_to_the_task_loss(name, data, tokenizer, encoder_factory):
    """Without dropout the clean passes agree exactly, so the total minus the plain loss is the term:
    non-negative and tiny for R3F (a divergence under 1e-5 noise), and for FreeLB the mean task loss over
    its ascent steps, which climb from the clean loss."""
    batch = _batch(name, data, tokenizer)
    plain = MultiTaskModel(encoder_factory(), [get_task(name)])
    plain.eval()  # no dropout; eval mode also turns the adversarial branch off, so train the others
    clean = plain(name, batch)[1].item()
    for kind in ("r3f", "freelb"):
        model = MultiTaskModel(encoder_factory(), [get_task(name)], adversarial=kind, adversarial_weight=2.0)
        model.load_state_dict(plain.state_dict())
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        term = (_loss(model, name, batch).item() - clean) / 2.0
        if kind == "r3f":
            assert 0.0 <= term < 1e-3
        else:
            assert clean - 1e-4 <= term < 10 * clean


def test_none_and_eval_mode_take_the_plain_path(data, tokenizer, encoder_factory):
    batch = _batch("mnli", data, tokenizer)
    plain = MultiTaskModel(encoder_factory(), [get_task("mnli")])
    r3f = MultiTaskModel(encoder_factory(), [get_task("mnli")], adversarial="r3f")
    r3f.load_state_dict(plain.state_dict())
    plain.train()
    torch.manual_seed(3)
    expected, state = plain("mnli", batch)[1].item(), torch.get_rng_state()
    none = MultiTaskModel(encoder_factory(), [get_task("mnli")], adversarial="none")
    none.load_state_dict(plain.state_dict())
    none.train()
    torch.manual_seed(3)
    assert none("mnli", batch)[1].item() == expected
    assert torch.equal(torch.get_rng_state(), state), "no extra random draws when adversarial is none"
    plain.eval()
    r3f.eval()
    assert r3f("mnli", batch)[1].item() == plain("mnli", batch)[1].item()
