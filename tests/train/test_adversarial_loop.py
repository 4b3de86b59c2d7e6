"""Each embedding-space adversarial method through the real training loop (`xstilts.train.loop.train`)
with the tiny encoder, and SMART's momentum teacher across a preemption: a run stopped by SIGTERM and
resumed from its checkpoint ends with the same weights, teacher and loss as an uninterrupted one."""

from __future__ import annotations

import io
import math
import signal

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from xstilts.data.features import featurize
from xstilts.data.load import load_examples
from xstilts.modeling.model import MultiTaskModel
from xstilts.spec.training import TrainingConfig
from xstilts.store import LocalStore
from xstilts.tasks import get_task
from xstilts.train.checkpoint import Checkpointer
from xstilts.train.loop import train
from xstilts.train.progress import ProgressLog

KEEP = ("input_ids", "labels", "start_positions", "end_positions")


@pytest.fixture(scope="module")
def features(data, tokenizer) -> dict[str, list[dict]]:
    task = get_task("mnli")
    examples = load_examples(task, "train", data, "en", limit=16)
    return {
        "mnli": [{k: v for k, v in f.items() if k in KEEP} for f in featurize(task, tokenizer, examples, 64)]
    }


def _config(kind: str, steps: int, **training) -> TrainingConfig:
    settings = dict(
        learning_rate=1e-3, batch_size=4, per_device_batch_size=2, max_steps=steps, epochs=10,
        checkpoint_every=100, mixed_precision="no", select_best=False, max_length=64, adversarial=kind,
    )  # fmt: skip
    return TrainingConfig(**{**settings, **training})


def _run(model, features, config, tokenizer, root) -> tuple[MultiTaskModel, object]:
    return train(
        model, features, config, 7, pad_token_id=tokenizer.pad_token_id,
        checkpointer=Checkpointer(LocalStore(root / "store"), "phase", root / "staging"),
        progress=ProgressLog("phase", stream=io.StringIO(), interval=3600),
    )  # fmt: skip


def _model(config: TrainingConfig, encoder_factory) -> MultiTaskModel:
    return MultiTaskModel(
        encoder_factory(), [get_task("mnli")], config.adversarial, config.adversarial_weight,
        config.adversarial_options,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["r3f", "freelb", "smart"])
def test_each_method_trains_through_the_loop(kind, features, tokenizer, encoder_factory, tmp_path):
    config = _config(kind, 3)
    model = _model(config, encoder_factory)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained, result = _run(model, features, config, tokenizer, tmp_path)
    assert result.steps == 3 and result.final_loss is not None and math.isfinite(result.final_loss)
    moved = [n for n, p in trained.named_parameters() if not torch.equal(p.detach(), start[n])]
    assert len(moved) == len(start), "every parameter was trained"
    if kind == "smart":
        teacher = trained.smart_teacher
        for name, param in trained.named_parameters():
            shadow = getattr(teacher, teacher.keys[name])
            assert not torch.equal(shadow, start[name]) and not torch.equal(shadow, param.detach()), name


def test_smart_resumed_after_preemption_ends_as_an_uninterrupted_run(
    features, tokenizer, encoder_factory, tmp_path
):
    config = _config("smart", 6, checkpoint_every=2)
    clean, clean_result = _run(
        _model(config, encoder_factory), features, config, tokenizer, tmp_path / "clean"
    )

    steps = 0

    def preempt_at_step_3(*_):
        nonlocal steps
        steps += 1
        if steps == 3:
            signal.raise_signal(signal.SIGTERM)  # the loop checkpoints after this step and exits

    handle = register_optimizer_step_post_hook(preempt_at_step_3)
    try:
        with pytest.raises(SystemExit):
            _run(_model(config, encoder_factory), features, config, tokenizer, tmp_path / "killed")
    finally:
        handle.remove()
    resumed, result = _run(_model(config, encoder_factory), features, config, tokenizer, tmp_path / "killed")
    assert result.resumed_from == 3 and clean_result.resumed_from is None
    assert result.final_loss == clean_result.final_loss
    expected = clean.state_dict()
    assert any(k.startswith("smart_teacher.") for k in expected)
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, expected[key]), key
