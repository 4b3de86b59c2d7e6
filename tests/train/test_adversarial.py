"""R3F, FreeLB and SMART's smoothness term on a tiny embedding + linear model, each checked against a
hand-written computation of its paper's formula for one step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xstilts.train.adversarial import freelb_loss, r3f_loss, smart_loss, symmetric_kl

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


def cross_entropy_of(forward_fn, labels: Tensor):
    """FreeLB's task loss: (inputs_embeds, attention_mask) -> cross-entropy of the logits."""
    return lambda inputs_embeds, attention_mask: F.cross_entropy(
        forward_fn(inputs_embeds, attention_mask), labels
    )


def kl_by_hand(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p||q) + KL(q||p) per example, from the definition, averaged over examples."""
    p, q = logits_p.softmax(-1), logits_q.softmax(-1)
    return ((p * (p.log() - q.log())).sum(-1) + (q * (q.log() - p.log())).sum(-1)).mean()


def per_example(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


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


@pytest.mark.parametrize("noise", ["uniform", "normal"])
def test_r3f_matches_the_formula_by_hand(noise: str) -> None:
    """lambda * (KL(f(x)||f(x+z)) + KL(f(x+z)||f(x))), z ~ U(-eps, eps) or N(0, eps^2) on real tokens."""
    model, embeds, mask, _ = model_and_inputs()
    eps, lam = 1.5, 0.7
    clean = model.forward_embeds(embeds, mask)
    torch.manual_seed(21)
    draw = torch.rand(embeds.shape) * 2 - 1 if noise == "uniform" else torch.randn(embeds.shape)
    z = draw * eps * mask.unsqueeze(-1)
    expected = lam * kl_by_hand(clean, model.forward_embeds(embeds + z, mask))
    torch.manual_seed(21)
    loss = r3f_loss(model.forward_embeds, embeds, mask, clean, eps=eps, noise=noise, lambda_=lam)  # type: ignore[arg-type]
    assert value(expected) > 1e-3
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-7)


def test_r3f_noised_pass_is_detached_from_the_embedding_lookup() -> None:
    """As fairseq: the noised pass starts from detached embeddings, so with the clean logits held fixed
    the term trains every parameter but the embedding table."""
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask).detach()
    r3f_loss(model.forward_embeds, embeds, mask, clean, eps=0.5).backward()
    assert model.embed.weight.grad is None
    assert model.mix.weight.grad is not None and float(model.mix.weight.grad.abs().sum()) > 0


def test_r3f_rejects_mismatched_shapes_and_noise_kinds() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    with pytest.raises(ValueError, match="attention_mask"):
        r3f_loss(model.forward_embeds, embeds, mask[:, :3], clean)
    with pytest.raises(ValueError, match="noise"):
        r3f_loss(model.forward_embeds, embeds, mask, clean, noise="laplace")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- FreeLB


def freelb_by_hand(
    model: TinyClassifier,
    embeds: Tensor,
    mask: Tensor,
    labels: Tensor,
    *,
    steps: int,
    lr: float,
    mag: float,
    bound: float,
    norm: str,
    seed: int,
) -> Tensor:
    """Zhu et al. 2020, Algorithm 1: delta_0 random, delta_{t+1} = Proj(delta_t + lr * g_t / ||g_t||),
    loss = 1/K sum_t L(x + delta_t); per example, written out without the library's helpers."""
    x = embeds.detach()
    m = mask.unsqueeze(-1).float()
    torch.manual_seed(seed)
    u = (torch.rand(x.shape) * 2 - 1) * m
    if norm == "l2":
        scale = mag / torch.sqrt(mask.sum(1).float() * HIDDEN)
        delta = u * scale.view(-1, 1, 1)
    else:
        delta = u * mag
    losses = []
    for t in range(steps):
        d = delta.clone().requires_grad_(True)
        loss = F.cross_entropy(model.forward_embeds(x + d, mask), labels)
        losses.append(loss)
        if t == steps - 1:
            break
        (g,) = torch.autograd.grad(loss, d)
        rows = []
        for i in range(x.shape[0]):
            gi = g[i] * m[i]
            size = gi.norm() if norm == "l2" else gi.abs().max()
            di = delta[i] + lr * gi / size
            if norm == "l2" and di.norm() > bound:
                di = di * bound / di.norm()
            if norm == "linf":
                di = di.clamp(-bound, bound)
            rows.append(di * m[i])
        delta = torch.stack(rows)
    return sum(losses) / steps


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_freelb_matches_the_formula_by_hand(norm: str) -> None:
    """The mean adversarial loss over K steps, and nothing else: no clean loss on top."""
    model, embeds, mask, labels = model_and_inputs()
    settings = {"l2": dict(lr=0.5, mag=0.4, bound=0.45), "linf": dict(lr=0.3, mag=0.1, bound=0.2)}[norm]
    expected = freelb_by_hand(model, embeds, mask, labels, steps=2, norm=norm, seed=4, **settings)
    torch.manual_seed(4)
    loss = freelb_loss(
        cross_entropy_of(model.forward_embeds, labels), embeds, mask, adv_steps=2, adv_lr=settings["lr"],
        adv_init_mag=settings["mag"], max_norm=settings["bound"], norm=norm,  # type: ignore[arg-type]
    )  # fmt: skip
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-7)


def test_freelb_without_perturbation_equals_the_clean_loss() -> None:
    model, embeds, mask, labels = model_and_inputs()
    task_loss = cross_entropy_of(model.forward_embeds, labels)
    clean = task_loss(embeds, mask)
    adv = freelb_loss(task_loss, embeds, mask, adv_init_mag=0.0, adv_lr=0.0)
    assert torch.allclose(adv, clean)
    one_step = freelb_loss(task_loss, embeds, mask, adv_steps=1, adv_init_mag=0)
    assert torch.allclose(one_step, clean)


def test_freelb_ascent_raises_the_loss_and_only_on_real_tokens() -> None:
    model, embeds, mask, labels = model_and_inputs()
    clean = value(F.cross_entropy(model.forward_embeds(embeds, mask), labels))
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(0)
    adv = freelb_loss(cross_entropy_of(wrapped, labels), embeds, mask, adv_steps=3, adv_lr=0.5, max_norm=0)
    assert value(adv) > clean
    assert len(seen) == 3
    step_losses = [value(F.cross_entropy(model.forward_embeds(x, mask), labels)) for x in seen]
    assert step_losses[0] < step_losses[1] < step_losses[2]
    pad = mask == 0
    for x in seen:
        assert torch.equal(x[pad], embeds.detach()[pad])
        assert not torch.equal(x[~pad], embeds.detach()[~pad])


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_freelb_max_norm_projects_each_example(norm: str) -> None:
    model, embeds, mask, labels = model_and_inputs()
    wrapped, seen = recording(model.forward_embeds)
    freelb_loss(
        cross_entropy_of(wrapped, labels),
        embeds,
        mask,
        adv_steps=3,
        adv_lr=5.0,
        max_norm=0.25,
        norm=norm,  # type: ignore[arg-type]
    )
    for x in seen[1:]:
        delta = (x - embeds.detach()).reshape(2, -1)
        norms = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
        assert (norms <= 0.25 + 1e-5).all()
        assert torch.allclose(norms, torch.full_like(norms, 0.25), atol=1e-5)


def test_freelb_initial_delta_has_the_documented_scale() -> None:
    model, embeds, mask, labels = model_and_inputs()
    wrapped, seen = recording(model.forward_embeds)
    freelb_loss(cross_entropy_of(wrapped, labels), embeds, mask, adv_steps=1, adv_init_mag=0.1)
    delta = seen[0] - embeds.detach()
    per_element_bound = 0.1 / torch.sqrt(mask.sum(1).float() * HIDDEN)  # U(-1, 1) * mag / sqrt(n * H)
    assert (delta.abs().amax(dim=(1, 2)) <= per_element_bound + 1e-7).all()


def test_freelb_gradients_match_the_per_step_backward_of_the_original() -> None:
    model, embeds, mask, labels = model_and_inputs()
    torch.manual_seed(3)
    freelb_loss(cross_entropy_of(model.forward_embeds, labels), embeds, mask, adv_steps=3).backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters()}

    # The reference loop: backward each step's loss / K, accumulating into the parameters.
    model.zero_grad()
    input_ids, _, _ = batch()
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(3)
    freelb_loss(cross_entropy_of(wrapped, labels), model.embed(input_ids), mask, adv_steps=3)
    model.zero_grad()
    for x in seen:
        delta = (x - model.embed(input_ids)).detach()
        (F.cross_entropy(model.forward_embeds(model.embed(input_ids) + delta, mask), labels) / 3).backward()
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, ours[name], atol=1e-6), name


def test_freelb_replays_one_dropout_mask_across_its_steps() -> None:
    """With same_dropout (the paper's choice) the K passes draw identical dropout masks: at zero
    perturbation every step then has the same loss; without it they differ."""
    model, embeds, mask, labels = model_and_inputs()
    dropout = nn.Dropout(0.5)
    losses: list[float] = []

    def task_loss(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        loss = F.cross_entropy(model.forward_embeds(dropout(inputs_embeds), attention_mask), labels)
        losses.append(value(loss))
        return loss

    for same in (True, False):
        losses.clear()
        torch.manual_seed(8)
        freelb_loss(task_loss, embeds, mask, adv_steps=3, adv_lr=0.0, adv_init_mag=0.0, same_dropout=same)
        assert (len(set(losses)) == 1) is same, losses
    torch.manual_seed(8)
    freelb_loss(task_loss, embeds, mask, adv_steps=3, adv_init_mag=0.0)
    after_freelb = torch.get_rng_state()
    torch.manual_seed(8)
    dropout(embeds)
    assert torch.equal(after_freelb, torch.get_rng_state()), "the RNG ends where one pass leaves it"


def test_freelb_is_deterministic_and_handles_token_logits() -> None:
    model, embeds, mask, _ = model_and_inputs(per_token=True)
    token_labels = torch.tensor([[0, 1, 2, 1, -100, -100], [2, 2, 1, 0, 0, 1]])

    def token_ce(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        logits = model.forward_embeds(inputs_embeds, attention_mask)
        return F.cross_entropy(logits.reshape(-1, CLASSES), token_labels.reshape(-1), ignore_index=-100)

    def run() -> Tensor:
        torch.manual_seed(11)
        return freelb_loss(token_ce, embeds, mask)

    first = run()
    assert torch.equal(first, run())
    first.backward()
    assert grad_norm(model) > 0


def test_freelb_rejects_zero_steps_and_unknown_norms() -> None:
    model, embeds, mask, labels = model_and_inputs()
    with pytest.raises(ValueError, match="adv_steps"):
        freelb_loss(cross_entropy_of(model.forward_embeds, labels), embeds, mask, adv_steps=0)
    with pytest.raises(ValueError, match="norm"):
        freelb_loss(cross_entropy_of(model.forward_embeds, labels), embeds, mask, norm="l1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- SMART


def smart_by_hand(
    model: TinyClassifier,
    embeds: Tensor,
    mask: Tensor,
    *,
    eta: float,
    eps: float,
    sigma: float,
    norm: str,
    seed: int,
) -> Tensor:
    """Jiang et al. 2020, Algorithm 1 with T_x = 1: x~ = x + nu, nu ~ N(0, sigma^2 I);
    g = grad_x~ l_s(f(x), f(x~)) / ||.||; x~ <- Proj_{||x~ - x|| <= eps}(x~ + eta g);
    R_s = l_s(f(x), f(x~)) with l_s the symmetric KL. Per example, without the library's helpers."""
    x = embeds.detach()
    m = mask.unsqueeze(-1).float()
    clean = model.forward_embeds(embeds, mask)
    torch.manual_seed(seed)
    nu = (torch.randn(x.shape) * sigma * m).requires_grad_(True)
    (g,) = torch.autograd.grad(kl_by_hand(model.forward_embeds(x + nu, mask), clean.detach()), nu)
    rows = []
    for i in range(x.shape[0]):
        gi = g[i] * m[i]
        step = nu[i].detach() + eta * gi / (gi.abs().max() if norm == "linf" else gi.norm())
        if norm == "linf":
            step = step.clamp(-eps, eps)
        elif step.norm() > eps:
            step = step * eps / step.norm()
        rows.append(step * m[i])
    return kl_by_hand(clean, model.forward_embeds(x + torch.stack(rows), mask))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_smart_smoothness_term_matches_the_formula_by_hand(norm: str) -> None:
    model, embeds, mask, _ = model_and_inputs()
    # Large enough that the projection clips some coordinates (linf) or examples (l2), not all.
    settings = {"linf": dict(eta=0.2, eps=0.15, sigma=0.1), "l2": dict(eta=0.5, eps=0.6, sigma=0.1)}[norm]
    expected = smart_by_hand(model, embeds, mask, norm=norm, seed=6, **settings)
    clean = model.forward_embeds(embeds, mask)
    torch.manual_seed(6)
    loss = smart_loss(
        model.forward_embeds, embeds, mask, clean, step_size=settings["eta"], eps=settings["eps"],
        noise_std=settings["sigma"], norm=norm,  # type: ignore[arg-type]
    )  # fmt: skip
    assert value(expected) > 1e-3
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-7)


def test_smart_perturbation_stays_in_the_ball_on_real_tokens_and_ascends() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(2)
    smart_loss(wrapped, embeds, mask, clean, adv_steps=2, step_size=0.1, eps=0.05, noise_std=0.01)
    assert len(seen) == 3  # two ascent passes, then the returned one
    deltas = [x - embeds.detach() for x in seen]
    pad = mask == 0
    for delta in deltas:
        assert float(delta.abs().max()) <= 0.05 + 1e-7
        assert float(delta[pad].abs().max()) == 0.0
    divergences = [value(kl_by_hand(clean, model.forward_embeds(embeds.detach() + d, mask))) for d in deltas]
    assert divergences[0] < divergences[-1]  # the adversarial neighbour is worse than the random one


def test_smart_gradients_reach_both_passes_but_not_the_lookup_through_the_perturbed_one() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)
    smart_loss(model.forward_embeds, embeds, mask, clean.detach(), eps=0.1, step_size=0.1).backward()
    assert model.embed.weight.grad is None  # perturbed passes start from detached embeddings (mt-dnn)
    assert float(model.head.weight.grad.abs().sum()) > 0
    model.zero_grad()
    smart_loss(model.forward_embeds, embeds, mask, clean, eps=0.1, step_size=0.1).backward()
    assert float(model.embed.weight.grad.abs().sum()) > 0  # through the clean logits


def test_smart_takes_a_divergence_for_regression_outputs() -> None:
    model, embeds, mask, _ = model_and_inputs()
    clean = model.forward_embeds(embeds, mask)[:, :1]  # one output per example: regression

    def squared(a: Tensor, b: Tensor) -> Tensor:
        return (a - b).pow(2).mean()

    def score(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return model.forward_embeds(inputs_embeds, attention_mask)[:, :1]

    loss = smart_loss(score, embeds, mask, clean, eps=0.1, step_size=0.1, divergence=squared)
    assert value(loss) > 0
    with pytest.raises(ValueError, match="adv_steps"):
        smart_loss(score, embeds, mask, clean, adv_steps=0)


def test_smart_ascent_reaches_the_bound_however_flat_the_divergence() -> None:
    """g / ||g||_inf has norm 1 whatever the scale of g: with the paper's eta = 1e-3 >> eps = 1e-5 one
    step saturates the eps-ball even where the gradient is ~1e-13 (a floor like FreeLB's 1e-8 under the
    norm would shrink that step 1e5-fold). The random start is kept well inside the ball."""
    model, _, mask, _ = model_and_inputs()
    model.double()  # float64, so that gradients of ~1e-13 are still represented
    with torch.no_grad():
        model.head.weight.mul_(1e-2)  # nearly uniform outputs: a very flat divergence
    embeds = model.embed(batch()[0])
    clean = model.forward_embeds(embeds, mask)
    wrapped, seen = recording(model.forward_embeds)
    torch.manual_seed(0)
    smart_loss(wrapped, embeds, mask, clean, noise_std=1e-6)
    start, final = ((x - embeds.detach()).reshape(2, -1).abs().amax(dim=1) for x in (seen[0], seen[-1]))
    assert (start < 5e-6).all()
    assert torch.allclose(final, torch.full_like(final, 1e-5), rtol=1e-3)
