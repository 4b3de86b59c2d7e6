"""Embedding-space adversarial training in `MultiTaskModel.forward` (R3F, FreeLB, SMART) on every
trainable format, with the tiny encoder: a finite loss with gradients, reproducible under a seed, each
method's objective as its paper writes it, SMART's momentum teacher (zero proximal term on the first
step, the EMA by hand afterwards, kept out of the saved model), a no-op in evaluation mode, and the
plain path untouched when `adversarial` is "none"."""

from __future__ import annotations

import copy

import pytest
import torch

from xstilts.data.batching import collate
from xstilts.data.features import featurize
from xstilts.data.load import load_examples
from xstilts.modeling.adversarial import teacher_momentum
from xstilts.modeling.model import HEADS_WEIGHTS, MultiTaskModel
from xstilts.spec.adversarial import FreeLBOptions, SmartOptions
from xstilts.tasks import get_task

TASKS = ["mnli", "hellaswag", "squad", "udpos", "stsb"]  # classification, MC, QA, tagging, regression
KINDS = ["r3f", "freelb", "smart"]


def _batch(name: str, data, tokenizer) -> dict[str, torch.Tensor]:
    task = get_task(name)
    examples = load_examples(task, "train", data, "en", limit=3)
    features = featurize(task, tokenizer, examples, 96, doc_stride=32)
    keep = ("input_ids", "labels", "start_positions", "end_positions")
    return collate([{k: v for k, v in f.items() if k in keep} for f in features], tokenizer.pad_token_id)


def _loss(model: MultiTaskModel, name: str, batch: dict[str, torch.Tensor], seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return model(name, batch)[1]


def _without_dropout(model: MultiTaskModel) -> MultiTaskModel:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def _kl_by_hand(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    p, q = logits_p.double().softmax(-1), logits_q.double().softmax(-1)
    return ((p * (p.log() - q.log())).sum(-1) + (q * (q.log() - p.log())).sum(-1)).mean()


@pytest.mark.parametrize("kind", KINDS)
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
def test_each_method_returns_its_papers_objective(name, data, tokenizer, encoder_factory):
    """Without dropout the clean passes agree exactly with the plain model's loss L:
    R3F is L + lambda * KL term (tiny under 1e-5 noise); FreeLB is its adversarial loss alone (with no
    perturbation exactly L: the clean loss is not added on top); SMART is L + lambda_s * R_s + mu * D,
    with D = 0 on the first step (the teacher starts as the model)."""
    batch = _batch(name, data, tokenizer)
    plain = MultiTaskModel(encoder_factory(), [get_task(name)])
    plain.eval()  # no dropout; eval mode also turns the adversarial branch off, so train the others
    clean = plain(name, batch)[1].item()

    def trained(kind: str, weight: float, options=None) -> MultiTaskModel:
        model = MultiTaskModel(
            encoder_factory(), [get_task(name)], adversarial=kind, adversarial_weight=weight,
            adversarial_options=options,
        )  # fmt: skip
        model.load_state_dict(plain.state_dict(), strict=False)  # SMART's teacher: built from the same seed
        return _without_dropout(model).train()

    r3f = trained("r3f", 2.0)
    total = _loss(r3f, name, batch).item()
    assert r3f.adversarial_terms["task"].item() == pytest.approx(clean, abs=1e-6)
    term = r3f.adversarial_terms["smoothness"].item()
    assert 0.0 <= term < 1e-3
    assert total == pytest.approx(clean + 2.0 * term, abs=1e-6)

    still = trained("freelb", 1.0, FreeLBOptions(adv_init_mag=0.0, adv_lr=0.0))
    assert _loss(still, name, batch).item() == pytest.approx(clean, abs=1e-6)  # not 2x: no clean loss added
    freelb = trained("freelb", 1.0)
    assert _loss(freelb, name, batch).item() > clean  # the ascent climbs from the clean loss

    smart = trained("smart", 2.0, SmartOptions(mu=0.5))
    assert all(torch.equal(getattr(smart.smart_teacher, k), smart.state_dict()[n])
               for n, k in smart.smart_teacher.keys.items()), "the teacher starts as the model"  # fmt: skip
    total = _loss(smart, name, batch).item()
    terms = {k: v.item() for k, v in smart.adversarial_terms.items()}
    assert terms["proximal"] == 0.0
    assert terms["task"] == pytest.approx(clean, abs=1e-6)
    assert total == pytest.approx(clean + 2.0 * terms["smoothness"], abs=1e-6)


def test_smart_teacher_follows_the_parameters_and_its_proximal_term_matches_by_hand(
    data, tokenizer, encoder_factory
):
    """After an optimizer step theta_0 -> theta_1 the teacher is (1 - beta) theta_1 + beta theta_0, and
    the proximal term is the symmetric KL between the model's and the teacher's outputs."""
    batch = _batch("mnli", data, tokenizer)
    options = SmartOptions(mu=1.0)
    model = _without_dropout(
        MultiTaskModel(
            encoder_factory(), [get_task("mnli")], adversarial="smart", adversarial_options=options
        )
    ).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    _loss(model, "mnli", batch).backward()
    optimizer.step()
    model.optimizer_stepped(1, 10)  # step 1 of 10: within the first 10%, beta = 0.99
    after = dict(model.named_parameters())
    for name, key in model.smart_teacher.keys.items():
        expected = 0.99 * before[name] + 0.01 * after[name].detach()
        assert torch.allclose(getattr(model.smart_teacher, key), expected, atol=1e-7), name

    teacher = _without_dropout(MultiTaskModel(encoder_factory(), [get_task("mnli")])).eval()
    teacher.load_state_dict({n: getattr(model.smart_teacher, k) for n, k in model.smart_teacher.keys.items()})
    with torch.no_grad():
        expected = _kl_by_hand(model.eval()("mnli", batch)[0], teacher("mnli", batch)[0])
    model.train()
    _loss(model, "mnli", batch)
    proximal = model.adversarial_terms["proximal"]
    assert proximal.item() > 0
    assert proximal.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-9)


def test_smart_momentum_schedule_is_the_papers():
    options = SmartOptions()
    assert [teacher_momentum(options, t, 100) for t in (1, 10, 11, 100)] == [0.99, 0.99, 0.999, 0.999]


def test_smart_teacher_is_model_state_but_not_part_of_the_saved_model(tmp_path, encoder_factory):
    task = get_task("mnli")
    model = MultiTaskModel(encoder_factory(), [task], adversarial="smart")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    teacher_keys = [k for k in model.state_dict() if k.startswith("smart_teacher.")]
    assert sum(model.state_dict()[k].numel() for k in teacher_keys) == trainable  # one copy, no more
    assert sorted(model._ddp_params_and_buffers_to_ignore) == sorted(teacher_keys)  # DDP never broadcasts it
    assert not any("teacher" in n for n, _ in model.named_parameters())  # nothing for the optimizer

    model.save(tmp_path / "model")
    from safetensors.torch import load_file

    saved = [
        *load_file(str(tmp_path / "model" / HEADS_WEIGHTS)),
        *load_file(str(tmp_path / "model" / "model.safetensors")),
    ]
    assert saved and not any("teacher" in k for k in saved)
    loaded = MultiTaskModel.load(tmp_path / "model", [task])
    assert not any(k.startswith("smart_teacher.") for k in loaded.state_dict())

    without = MultiTaskModel(
        encoder_factory(), [task], adversarial="smart", adversarial_options=SmartOptions(mu=0)
    )
    assert getattr(without, "smart_teacher", None) is None  # mu = 0: no proximal term, no copy


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
    for kind in KINDS:
        model = MultiTaskModel(encoder_factory(), [get_task("mnli")], adversarial=kind)
        model.load_state_dict(copy.deepcopy(plain.state_dict()), strict=False)
        model.eval()
        assert model("mnli", batch)[1].item() == plain("mnli", batch)[1].item()


def test_unknown_kinds_and_mismatched_options_are_rejected(encoder_factory):
    with pytest.raises(ValueError, match="adversarial must be one of"):
        MultiTaskModel(encoder_factory(), [get_task("mnli")], adversarial="vat")
    with pytest.raises(TypeError, match="SmartOptions"):
        MultiTaskModel(
            encoder_factory(), [get_task("mnli")], adversarial="smart", adversarial_options=FreeLBOptions()
        )


def test_smart_teacher_refuses_partitioned_parameters(data, tokenizer, encoder_factory):
    """DeepSpeed ZeRO stage 3 leaves each process a shard of every parameter; the teacher says so."""
    batch = _batch("mnli", data, tokenizer)
    model = MultiTaskModel(encoder_factory(), [get_task("mnli")], adversarial="smart").train()
    embeddings = model.encoder.get_input_embeddings()
    embeddings.weight = torch.nn.Parameter(embeddings.weight.detach()[:0])  # what a shard looks like
    with pytest.raises(RuntimeError, match="ZeRO stage 3"):
        model.optimizer_stepped(1, 10)
    with pytest.raises(RuntimeError, match="ZeRO stage 3"):
        model("mnli", batch)
