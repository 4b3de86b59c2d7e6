"""`training.batching: split` through the real training loop: a step's length-sorted parts, weighted by
their loss units, give the gradient of the whole random batch (dropout off, no clipping), for a loss
over examples (classification, span QA) and one over labelled tokens (tagging)."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from transformers import AutoModel, XLMRobertaConfig

from xstilts.data.features import featurize
from xstilts.data.load import load_examples
from xstilts.modeling.model import MultiTaskModel
from xstilts.spec.training import TrainingConfig
from xstilts.store import LocalStore
from xstilts.tasks import get_task
from xstilts.train.checkpoint import Checkpointer
from xstilts.train.loop import step_loss_weights, train
from xstilts.train.progress import ProgressLog
from xstilts.train.schedule import build_schedule

BATCH, MICRO = 12, 3
KEEP = ("input_ids", "labels", "start_positions", "end_positions")


def dropout_free_model(tokenizer, name: str) -> MultiTaskModel:
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    encoder = AutoModel.from_config(config, add_pooling_layer=False, attn_implementation="sdpa")
    model = MultiTaskModel(encoder, [get_task(name)])
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["mnli", "udpos", "squad", "udpos-unlabelled-part"])
def test_split_step_has_the_whole_random_batchs_gradient(name, data, tokenizer, tmp_path) -> None:
    from xstilts.data.batching import collate

    unlabelled_part = name == "udpos-unlabelled-part"
    name = name.removesuffix("-unlabelled-part")
    task = get_task(name)
    examples = load_examples(task, "train", data, "en", limit=BATCH)
    features = [{k: v for k, v in f.items() if k in KEEP} for f in featurize(task, tokenizer, examples, 96)]
    features = features[:BATCH]
    assert len(features) == BATCH
    if name == "mnli":  # the fixture pairs are all 42-50 tokens: make most short, a few long, as in NLI
        cut = [6 + i if i < 8 else None for i in range(BATCH)]
        features = [{**f, "input_ids": f["input_ids"][:c]} for f, c in zip(features, cut, strict=True)]
    if unlabelled_part:  # the six shortest sentences have no labelled token: their part's mean loss is NaN
        shortest = sorted(range(BATCH), key=lambda i: len(features[i]["input_ids"]))[:6]
        for i in shortest:
            features[i] = {**features[i], "labels": [-100] * len(features[i]["labels"])}
    model = dropout_free_model(tokenizer, name)

    reference = copy.deepcopy(model)
    reference.train()
    _, loss = reference(name, collate(features, tokenizer.pad_token_id))
    loss.backward()
    expected = gradients(reference)

    # The loop's parts for its first step differ in length and size (or, tagging, in labelled tokens), so
    # plain averaging of their losses would be wrong.
    lengths = [len(f["input_ids"]) for f in features]
    schedule = build_schedule({name: lengths}, MICRO, 1.0, seed=5, batching="split", parts=BATCH // MICRO)
    weights = step_loss_weights(schedule, {name: features}, 0, BATCH // MICRO, "split")
    assert weights is not None
    if name != "squad":  # span QA averages over examples, and its fixture parts are 3 examples each
        assert max(weights) - min(weights) > 0.1
    if unlabelled_part:
        assert min(weights) == 0.0

    captured: dict[str, torch.Tensor] = {}

    def capture(optimizer, *_):
        captured.update(gradients(model))

    handle = register_optimizer_step_pre_hook(capture)
    try:
        config = TrainingConfig(
            learning_rate=1e-3, batch_size=BATCH, per_device_batch_size=MICRO, batching="split", max_steps=1,
            max_grad_norm=1e9, mixed_precision="no", select_best=False, max_length=96,
        )  # fmt: skip
        _, result = train(
            model, {name: features}, config, 5, pad_token_id=tokenizer.pad_token_id,
            checkpointer=Checkpointer(LocalStore(tmp_path / "store"), "split", tmp_path / "staging"),
            progress=ProgressLog("split", stream=io.StringIO(), interval=3600),
        )  # fmt: skip
    finally:
        handle.remove()
    assert result.final_loss is not None and math.isfinite(result.final_loss)  # a NaN part adds nothing
    assert result.final_loss == pytest.approx(loss.item(), rel=1e-5)  # the whole batch's loss, as reported
    assert captured.keys() == expected.keys()
    for key, grad in expected.items():
        difference = (captured[key] - grad).abs().max()
        assert torch.allclose(captured[key], grad, rtol=1e-4, atol=1e-6), (key, difference)
