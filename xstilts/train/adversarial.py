"""Embedding-space adversarial regularisers: R3F (Aghajanyan et al., 2020), FreeLB (Zhu et al., 2020) and
SMART's smoothness-inducing adversarial regulariser (Jiang et al., 2020).

All are generic over a function of ``(inputs_embeds, attention_mask)``, where ``inputs_embeds`` is what
the encoder's embedding lookup returned (``[B, T, H]``, or ``[B, K, T, H]`` for multiple choice: an
example's norm then spans all its choices) and ``attention_mask`` has the same shape without ``H``.
Padding positions (mask 0) never receive a perturbation. Outputs (logits) may be

- per example, ``[B, C]`` (classification, or multiple choice with ``C`` = number of choices);
- per token, ``[B, T, C]`` with ``[B, T] == attention_mask.shape`` (padding positions are left out of
  the divergence; pass ``logits_mask`` to choose other positions, e.g. first sub-words only);
- anything else ``[..., C]``: flattened to ``[N, C]`` and averaged.

A ``divergence(a, b)`` may replace the symmetric KL (e.g. a squared error for regression outputs).

Dropout: in training mode every forward pass draws its own dropout masks, which R3F and SMART then also
penalise (as fairseq and mt-dnn do); FreeLB replays one set of masks across its ascent steps, as its
paper does. Noise is drawn from ``generator`` when given, else from torch's global RNG, so
``torch.manual_seed`` makes every loss reproducible (a ``generator`` must live on the same device as
``inputs_embeds``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

ForwardFn = Callable[[Tensor, Tensor], Tensor]  # (inputs_embeds, attention_mask) -> logits or a loss
Divergence = Callable[[Tensor, Tensor], Tensor]  # (output a, output b) -> scalar
Norm = Literal["l2", "linf"]


def embedding_mask(attention_mask: Tensor, inputs_embeds: Tensor) -> Tensor:
    """The attention mask as a float tensor broadcastable over ``inputs_embeds`` (a trailing 1 for H)."""
    if attention_mask.shape != inputs_embeds.shape[:-1]:
        raise ValueError(
            f"attention_mask {tuple(attention_mask.shape)} must match inputs_embeds "
            f"{tuple(inputs_embeds.shape)} without its last (hidden) dimension"
        )
    return attention_mask.to(inputs_embeds.dtype).unsqueeze(-1)


def _random_like(x: Tensor, kind: Literal["uniform", "normal"], generator: torch.Generator | None) -> Tensor:
    if kind == "uniform":
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
    if kind == "normal":
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    raise ValueError(f"noise must be 'uniform' or 'normal', got {kind!r}")


def _positions_mask(logits: Tensor, attention_mask: Tensor, logits_mask: Tensor | None) -> Tensor | None:
    """Which rows of ``logits`` (all dims but the last) count; None means all of them."""
    if logits_mask is not None:
        if logits_mask.shape != logits.shape[:-1]:
            raise ValueError(
                f"logits_mask {tuple(logits_mask.shape)} must match logits {tuple(logits.shape)[:-1]}"
            )
        return logits_mask
    if logits.dim() >= 3 and logits.shape[:-1] == attention_mask.shape:
        return attention_mask
    return None


def symmetric_kl(logits_p: Tensor, logits_q: Tensor, mask: Tensor | None = None) -> Tensor:
    """``KL(p||q) + KL(q||p)`` over the last dimension, averaged over the (masked) remaining positions.

    Computed in float32 at least. With a mask that selects nothing the result is a zero that still has a
    graph.
    """
    dtype = torch.promote_types(torch.promote_types(logits_p.dtype, logits_q.dtype), torch.float32)
    log_p = F.log_softmax(logits_p.to(dtype), dim=-1)
    log_q = F.log_softmax(logits_q.to(dtype), dim=-1)
    per_position = ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1)
    if mask is None:
        return per_position.mean()
    weights = mask.to(per_position.dtype)
    return (per_position * weights).sum() / weights.sum().clamp_min(1.0)


def _divergence(
    divergence: Divergence | None, reference: Tensor, attention_mask: Tensor, logits_mask: Tensor | None
) -> Divergence:
    if divergence is not None:
        return divergence
    mask = _positions_mask(reference, attention_mask, logits_mask)
    return lambda a, b: symmetric_kl(a, b, mask)


def _check_same_shape(perturbed: Tensor, clean: Tensor) -> None:
    if perturbed.shape != clean.shape:
        raise ValueError(f"perturbed logits {tuple(perturbed.shape)} != clean logits {tuple(clean.shape)}")


# --------------------------------------------------------------------------- R3F


def r3f_loss(
    forward_fn: ForwardFn,
    inputs_embeds: Tensor,
    attention_mask: Tensor,
    clean_logits: Tensor,
    *,
    eps: float = 1e-5,
    noise: Literal["uniform", "normal"] = "uniform",
    lambda_: float = 1.0,
    logits_mask: Tensor | None = None,
    divergence: Divergence | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """R3F: ``lambda_ * symmetric_KL(f(x), f(x + z))`` with ``z ~ U(-eps, eps)`` or ``N(0, eps^2)``.

    Add the result to the task loss computed from ``clean_logits`` (the logits of the same
    ``inputs_embeds`` without noise). As in fairseq, the noised pass starts from the embeddings
    *detached* from the lookup: its gradient reaches every parameter but the embedding table, which
    learns from the clean pass only.
    """
    z = _random_like(inputs_embeds, noise, generator) * eps * embedding_mask(attention_mask, inputs_embeds)
    noised_logits = forward_fn(inputs_embeds.detach() + z, attention_mask)
    _check_same_shape(noised_logits, clean_logits)
    div = _divergence(divergence, clean_logits, attention_mask, logits_mask)
    return lambda_ * div(clean_logits, noised_logits)


# --------------------------------------------------------------------------- perturbation geometry


def _per_example_norm(x: Tensor, norm: Norm) -> Tensor:
    """The L2 or L-infinity norm of each example (first dimension), shaped to broadcast over ``x``."""
    flat = x.reshape(x.shape[0], -1).float()
    if norm == "l2":
        values = flat.norm(p=2, dim=1)
    elif norm == "linf":
        values = flat.abs().amax(dim=1)
    else:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    return values.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def _project(delta: Tensor, bound: float, norm: Norm) -> Tensor:
    """Back into each example's ball of radius ``bound`` (none when ``bound <= 0``)."""
    if bound <= 0:
        return delta
    if norm == "linf":
        return delta.clamp(-bound, bound)
    norms = _per_example_norm(delta, "l2")
    return delta * torch.where(norms > bound, bound / norms.clamp_min(1e-12), torch.ones_like(norms))


def _ascent_step(
    delta: Tensor, grad: Tensor, mask: Tensor, step: float, bound: float, norm: Norm, floor: float = 1e-8
) -> Tensor:
    """``delta + step * grad / max(||grad||, floor)`` (per example, in ``norm``), projected onto the ball."""
    grad = grad * mask
    delta = delta + step * grad / _per_example_norm(grad, norm).clamp_min(floor)
    return _project(delta, bound, norm) * mask


# --------------------------------------------------------------------------- FreeLB


def _initial_delta(
    inputs_embeds: Tensor, mask: Tensor, adv_init_mag: float, norm: Norm, generator: torch.Generator | None
) -> Tensor:
    """FreeLB's random start: ``U(-1, 1)`` on real tokens, scaled by ``mag / sqrt(n_tokens * H)`` (L2:
    an expected norm of about ``mag / sqrt(3)``), or ``U(-mag, mag)`` (L-infinity)."""
    if adv_init_mag <= 0:
        return torch.zeros_like(inputs_embeds)
    delta = _random_like(inputs_embeds, "uniform", generator) * mask
    if norm == "linf":
        return delta * adv_init_mag
    dims = mask.reshape(mask.shape[0], -1).sum(dim=1) * inputs_embeds.shape[-1]
    scale = adv_init_mag / dims.clamp_min(1.0).sqrt()
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


class _ReplayRng:
    """The RNG state (CPU, and the CUDA device of ``device``) at construction, to restore before each
    of FreeLB's forward passes so that they all draw the same dropout masks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def freelb_loss(
    task_loss: ForwardFn,
    inputs_embeds: Tensor,
    attention_mask: Tensor,
    *,
    adv_steps: int = 2,
    adv_lr: float = 1e-1,
    adv_init_mag: float = 1e-1,
    max_norm: float = 3e-1,
    norm: Norm = "l2",
    same_dropout: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """FreeLB: ``1/K * sum_{t<K} L(x + delta_t)``, the task loss averaged over ``K = adv_steps``
    perturbations of the embeddings. Use the result *instead of* the clean task loss.

    ``delta_0`` is a random start (``adv_init_mag``); ``delta_{t+1}`` takes a step of size ``adv_lr``
    along the gradient of ``L(x + delta_t)`` w.r.t. ``delta``, normalised per example in ``norm``, and
    is projected back into the per-example ``norm`` ball of radius ``max_norm`` (0: unbounded).
    ``task_loss(inputs_embeds, attention_mask)`` returns the task loss of one forward pass. With
    ``same_dropout`` every pass replays the RNG state of the first, so all K draw the same dropout masks.

    The original implementation calls ``backward()`` once per step to accumulate ("free") parameter
    gradients; here the per-step losses are averaged and returned, and ``delta`` is detached between
    steps, so one ``backward()`` on the result yields the same parameter gradients (at the cost of
    keeping ``adv_steps`` graphs alive until then).
    """
    if adv_steps < 1:
        raise ValueError(f"adv_steps must be >= 1, got {adv_steps}")
    mask = embedding_mask(attention_mask, inputs_embeds)
    delta = _initial_delta(inputs_embeds, mask, adv_init_mag, norm, generator)
    replay = _ReplayRng(inputs_embeds.device) if same_dropout and adv_steps > 1 else None
    losses = []
    for step in range(adv_steps):
        if replay is not None and step > 0:
            replay.restore()
        delta = delta.detach().requires_grad_(True)
        loss = task_loss(inputs_embeds + delta, attention_mask)
        losses.append(loss)
        if step < adv_steps - 1:
            (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
            delta = _ascent_step(delta.detach(), grad, mask, adv_lr, max_norm, norm)
    return torch.stack(losses).mean()


# --------------------------------------------------------------------------- SMART


def smart_loss(
    forward_fn: ForwardFn,
    inputs_embeds: Tensor,
    attention_mask: Tensor,
    clean_logits: Tensor,
    *,
    adv_steps: int = 1,
    step_size: float = 1e-3,
    eps: float = 1e-5,
    noise_std: float = 1e-5,
    norm: Norm = "linf",
    logits_mask: Tensor | None = None,
    divergence: Divergence | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SMART's smoothness-inducing adversarial regulariser ``R_s = l_s(f(x), f(x~))`` (unweighted: the
    caller multiplies by ``lambda_s``), with ``l_s`` the symmetric KL (or ``divergence``).

    ``x~ = x + delta``: ``delta_0 ~ N(0, noise_std^2)`` on real tokens, then ``adv_steps`` projected
    ascent steps ``delta <- Proj_eps(delta + step_size * g / ||g||)``, with ``g`` the gradient of
    ``l_s(f(x + delta), f(x))`` w.r.t. ``delta`` (``f(x)`` held fixed), normalised per example in
    ``norm`` and projected onto the per-example ``norm`` ball of radius ``eps`` (Jiang et al. 2020,
    Algorithm 1, lines 6-10). The returned divergence has gradients through both ``clean_logits`` and
    the perturbed pass; as in mt-dnn, the perturbed passes start from embeddings detached from the lookup.
    """
    if adv_steps < 1:
        raise ValueError(f"adv_steps must be >= 1, got {adv_steps}")
    mask = embedding_mask(attention_mask, inputs_embeds)
    base = inputs_embeds.detach()
    div = _divergence(divergence, clean_logits, attention_mask, logits_mask)
    target = clean_logits.detach()
    delta = _random_like(base, "normal", generator) * noise_std * mask
    for _ in range(adv_steps):
        delta = delta.detach().requires_grad_(True)
        perturbed = forward_fn(base + delta, attention_mask)
        _check_same_shape(perturbed, clean_logits)
        (grad,) = torch.autograd.grad(div(perturbed, target), delta)
        # Near x the divergence is flat (its gradient scales with delta, ~1e-5): normalise with no floor
        # but the one that avoids 0 / 0, not FreeLB's 1e-8 (or mt-dnn's 1e-6), which would damp the step.
        delta = _ascent_step(
            delta.detach(), grad, mask, step_size, eps, norm, floor=torch.finfo(grad.dtype).tiny
        )
    return div(clean_logits, forward_fn(base + delta, attention_mask))
