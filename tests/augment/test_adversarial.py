"""R3F and FreeLB on a tiny embedding + linear model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xstilts.train.adversarial import freelb_loss, r3f_loss, symmetric_kl

VOCAB, HIDDEN, CLASSES = 11, 8, 3


class TinyClassifier(nn.Module):
    """Embedding lookup, then a masked mean-pool (sequence) or per-token linear head."""

    def __init__(self, per_token: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.mix = nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)
        self.per_token = per_token

    def forward_embeds(self, inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = torch.tanh(self.mix(inputs_embeds))
        if self.per_token:
            return self.head(hidden)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(-2) / weights.sum(-2).clamp_min(1.0)
        return self.head(pooled)


def batch() -> tuple[Tensor, Tensor, Tensor]:
    input_ids = torch.tensor([[1, 2, 3, 4, 0, 0], [5, 6, 7, 8, 9, 10]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    labels = torch.tensor([0, 2])
    return input_ids, attention_mask, labels


def model_and_inputs(per_token: bool = False, seed: int = 0) -> tuple[TinyClassifier, Tensor, Tensor, Tensor]:
    torch.manual_seed(seed)
    model = TinyClassifier(per_token)
    input_ids, attention_mask, labels = batch()
    return model, model.embed(input_ids), attention_mask, labels


def recording(forward_fn):
    """Wrap forward_fn to keep every inputs_embeds it is called with."""
    seen: list[Tensor] = []

    def wrapped(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        seen.append(inputs_embeds.detach().clone())
        return forward_fn(inputs_embeds, attention_mask)

    return wrapped, seen


def value(t: Tensor) -> float:
    return t.detach().item()


def grad_norm(model: nn.Module) -> float:
    return sum(float(p.grad.norm()) for p in model.parameters() if p.grad is not None)


# --------------------------------------------------------------------------- symmetric KL


def test_symmetric_kl_hand_worked() -> None:
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.9, 0.1]]))
    # (0.5-0.9)*ln(0.5/0.9) + (0.5-0.1)*ln(0.5/0.1) = 0.4*ln(1.8) + 0.4*ln(5)
    expected = 0.4 * torch.log(torch.tensor(1.8)) + 0.4 * torch.log(torch.tensor(5.0))
    assert torch.allclose(symmetric_kl(p, q), expected)
    assert torch.allclose(symmetric_kl(p, q), symmetric_kl(q, p))
    assert float(symmetric_kl(p, p)) == 0.0


def test_symmetric_kl_mask_averages_over_selected_positions() -> None:
    p = torch.zeros(1, 3, 2)
    q = torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]])
    one = symmetric_kl(p[:, 1], q[:, 1])
    masked = symmetric_kl(p, q, mask=torch.tensor([[1, 1, 0]]))
    assert torch.allclose(masked, one / 2)


# --------------------------------------------------------------------------- R3F


def test_r3f_is_zero_without_noise_and_positive_with_it() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    assert value(r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.0)) == 0.0
    tiny = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=1e-5)
    assert 0.0 <= value(tiny) < 1e-6
    for noise in ("uniform", "normal"):
        big = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=1.0, noise=noise)
        assert value(big) > 1e-4


def test_r3f_lambda_scales_the_loss() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    losses = []
    for lam in (1.0, 3.0):
        torch.manual_seed(5)
        losses.append(r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.5, lambda_=lam))
    assert torch.allclose(losses[1], 3 * losses[0])


def test_r3f_gradients_reach_every_parameter() -> None:
    model, embeds, mask, labels = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    loss = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.5)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and float(param.grad.abs().sum()) > 0, name


def test_r3f_is_deterministic_under_a_fixed_seed_and_with_a_generator() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)

    def run(seed: int) -> Tensor:
        torch.manual_seed(seed)
        return r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.5)

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    gen = [torch.Generator().manual_seed(9) for _ in range(2)]
    a, b = (r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.5, generator=g) for g in gen)
    assert torch.equal(a, b)


def test_r3f_leaves_padding_positions_unperturbed() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    wrapped, seen = recording(model.forward_embeds)
    r3f_loss(wrapped, embeds, mask, clean, eps=1.0)
    (noised,) = seen
    pad = mask == 0
    assert torch.equal(noised[pad], embeds.detach()[pad])
    assert (noised[~pad] != embeds.detach()[~pad]).all()


def test_r3f_per_token_logits_ignore_padding_positions() -> None:
    model, embeds, mask, _ = model_and_inputs(per_token=True)
    clean = model.forward_embeds(embeds, mask)
    assert clean.shape == (2, 6, CLASSES)
    torch.manual_seed(0)
    auto = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=1.0)
    torch.manual_seed(0)
    explicit = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=1.0, logits_mask=mask)
    torch.manual_seed(0)
    everything = r3f_loss(
        model.forward_embeds, embeds, mask, clean, eps=1.0, logits_mask=torch.ones_like(mask)
    )
    assert torch.equal(auto, explicit)
    assert not torch.equal(auto, everything)  # padding rows have zero divergence but would dilute the mean


def test_r3f_multiple_choice_shapes() -> None:
    torch.manual_seed(0)
    model = TinyClassifier()
    ids = torch.randint(1, VOCAB, (2, 4, 5))  # [batch, choices, tokens]
    mask = torch.ones_like(ids)
    mask[:, :, -1] = 0

    def choice_scores(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return model.forward_embeds(inputs_embeds, attention_mask)[..., 0]  # [B, K]: softmax over choices

    embeds = model.embed(ids)
    clean = choice_scores(embeds, mask)
    assert clean.shape == (2, 4)
    loss = r3f_loss(choice_scores, embeds, mask, clean, eps=1.0)
    assert value(loss) > 0
    loss.backward()
    assert model.embed.weight.grad is not None


def test_r3f_rejects_mismatched_shapes_and_noise_kinds() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    with pytest.raises(ValueError, match="attention_mask"):
        r3f_loss(model.forward_embeds, embeds, mask[:, :3], clean)
    with pytest.raises(ValueError, match="noise"):
        r3f_loss(model.forward_embeds, embeds, mask, clean, noise="laplace")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- FreeLB


def test_freelb_without_perturbation_equals_the_clean_loss() -> None:
    model, embeds, mask, labels = model_and_inputs()
    clean = F.cross_entropy(model.forward_embeds(embeds, mask), labels)
    adv = freelb_loss(
        model.forward_embeds, embeds, mask, labels, F.cross_entropy, adv_init_mag=0.0, adv_lr=0.0
    )
    assert torch.allclose(adv, clean)
    one_step = freelb_loss(
        model.forward_embeds, embeds, mask, labels, F.cross_entropy, adv_steps=1, adv_init_mag=0
    )
    assert torch.allclose(one_step, clean)


def test_freelb_ascent_raises_the_loss_and_only_on_real_tokens() -> None:
    model, embeds, mask, labels = model_and_inputs()
    clean = value(F.cross_entropy(model.forward_embeds(embeds, mask), labels))
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(0)
    adv = freelb_loss(wrapped, embeds, mask, labels, F.cross_entropy, adv_steps=3, adv_lr=0.5)
    assert value(adv) > clean
    assert len(seen) == 3
    step_losses = [value(F.cross_entropy(model.forward_embeds(x, mask), labels)) for x in seen]
    assert step_losses[0] < step_losses[1] < step_losses[2]
    pad = mask == 0
    for x in seen:
        assert torch.equal(x[pad], embeds.detach()[pad])
        assert not torch.equal(x[~pad], embeds.detach()[~pad])


def test_freelb_max_norm_projects_each_example() -> None:
    model, embeds, mask, labels = model_and_inputs()
    wrapped, seen = recording(model.forward_embeds)
    freelb_loss(wrapped, embeds, mask, labels, F.cross_entropy, adv_steps=3, adv_lr=5.0, max_norm=0.25)
    for x in seen[1:]:
        norms = (x - embeds.detach()).reshape(2, -1).norm(dim=1)
        assert (norms <= 0.25 + 1e-5).all()
        assert torch.allclose(norms, torch.full_like(norms, 0.25), atol=1e-5)


def test_freelb_initial_delta_has_the_documented_scale() -> None:
    model, embeds, mask, labels = model_and_inputs()
    wrapped, seen = recording(model.forward_embeds)
    freelb_loss(wrapped, embeds, mask, labels, F.cross_entropy, adv_steps=1, adv_init_mag=0.1)
    delta = seen[0] - embeds.detach()
    per_element_bound = 0.1 / torch.sqrt(mask.sum(1).float() * HIDDEN)  # U(-1, 1) * mag / sqrt(n * H)
    assert (delta.abs().amax(dim=(1, 2)) <= per_element_bound + 1e-7).all()


def test_freelb_gradients_match_the_per_step_backward_of_the_original() -> None:
    model, embeds, mask, labels = model_and_inputs()
    torch.manual_seed(3)
    freelb_loss(model.forward_embeds, embeds, mask, labels, F.cross_entropy, adv_steps=3).backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters()}

    # The reference loop: backward each step's loss / K, accumulating into the parameters.
    model.zero_grad()
    input_ids, _, _ = batch()
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(3)
    freelb_loss(wrapped, model.embed(input_ids), mask, labels, F.cross_entropy, adv_steps=3)
    model.zero_grad()
    for x in seen:
        delta = (x - model.embed(input_ids)).detach()
        (F.cross_entropy(model.forward_embeds(model.embed(input_ids) + delta, mask), labels) / 3).backward()
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, ours[name], atol=1e-6), name


def test_freelb_is_deterministic_and_handles_token_logits() -> None:
    model, embeds, mask, _ = model_and_inputs(per_token=True)
    token_labels = torch.tensor([[0, 1, 2, 1, -100, -100], [2, 2, 1, 0, 0, 1]])

    def token_ce(logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, CLASSES), labels.reshape(-1), ignore_index=-100)

    def run() -> Tensor:
        torch.manual_seed(11)
        return freelb_loss(model.forward_embeds, embeds, mask, token_labels, token_ce)

    first = run()
    assert torch.equal(first, run())
    first.backward()
    assert grad_norm(model) > 0


def test_freelb_rejects_zero_steps() -> None:
    model, embeds, mask, labels = model_and_inputs()
    with pytest.raises(ValueError, match="adv_steps"):
        freelb_loss(model.forward_embeds, embeds, mask, labels, F.cross_entropy, adv_steps=0)
