"""Embedding-space adversarial regularisers: R3F (Aghajanyan et al., 2020) and FreeLB (Zhu et al., 2020).

Both are generic over ``forward_fn(inputs_embeds, attention_mask) -> logits``, where ``inputs_embeds``
is what the encoder's embedding lookup returned (``[B, T, H]``, or ``[B, K, T, H]`` for multiple choice)
and ``attention_mask`` has the same shape without ``H``. Padding positions (mask 0) never receive a
perturbation. Logits may be

- per example, ``[B, C]`` (classification, or multiple choice with ``C`` = number of choices);
- per token, ``[B, T, C]`` with ``[B, T] == attention_mask.shape`` (padding positions are left out of
  the R3F divergence; pass ``logits_mask`` to choose other positions, e.g. first sub-words only);
- anything else ``[..., C]``: flattened to ``[N, C]`` and averaged.

Dropout: in training mode the clean and noised forward passes draw different dropout masks, which R3F
then also penalises (as in fairseq's implementation). Noise is drawn from ``generator`` when given,
else from torch's global RNG, so ``torch.manual_seed`` makes both losses reproducible (a ``generator``
must live on the same device as ``inputs_embeds``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

ForwardFn = Callable[[Tensor, Tensor], Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


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

    Computed in float32. With a mask that selects nothing the result is a zero that still has a graph.
    """
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    per_position = ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1)
    if mask is None:
        return per_position.mean()
    weights = mask.to(per_position.dtype)
    return (per_position * weights).sum() / weights.sum().clamp_min(1.0)


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
    generator: torch.Generator | None = None,
) -> Tensor:
    """R3F: ``lambda_ * symmetric_KL(f(x), f(x + z))`` with ``z ~ U(-eps, eps)`` or ``N(0, eps^2)``.

    Add the result to the task loss computed from ``clean_logits`` (the logits of the same
    ``inputs_embeds`` without noise). Gradients flow through both passes, as in fairseq.
    """
    z = _random_like(inputs_embeds, noise, generator) * eps * embedding_mask(attention_mask, inputs_embeds)
    noised_logits = forward_fn(inputs_embeds + z, attention_mask)
    if noised_logits.shape != clean_logits.shape:
        raise ValueError(
            f"noised logits {tuple(noised_logits.shape)} != clean logits {tuple(clean_logits.shape)}"
        )
    mask = _positions_mask(clean_logits, attention_mask, logits_mask)
    return lambda_ * symmetric_kl(clean_logits, noised_logits, mask)


def _per_example_norm(x: Tensor) -> Tensor:
    """L2 norm of each example (first dimension), shaped to broadcast back over ``x``."""
    norms = x.reshape(x.shape[0], -1).float().norm(p=2, dim=1).to(x.dtype)
    return norms.view(-1, *([1] * (x.dim() - 1)))


def _initial_delta(
    inputs_embeds: Tensor, mask: Tensor, adv_init_mag: float, generator: torch.Generator | None
) -> Tensor:
    """FreeLB's L2 initialisation: ``U(-1, 1)`` on real tokens, scaled by ``mag / sqrt(n_tokens * H)``."""
    if adv_init_mag <= 0:
        return torch.zeros_like(inputs_embeds)
    delta = _random_like(inputs_embeds, "uniform", generator) * mask
    dims = mask.reshape(mask.shape[0], -1).sum(dim=1) * inputs_embeds.shape[-1]
    scale = adv_init_mag / dims.clamp_min(1.0).sqrt()
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


def _ascent_step(delta: Tensor, grad: Tensor, mask: Tensor, adv_lr: float, max_norm: float) -> Tensor:
    """One normalised gradient-ascent step on ``delta``, then per-example projection onto the L2 ball."""
    grad = grad * mask
    delta = delta + adv_lr * grad / _per_example_norm(grad).clamp_min(1e-8)
    if max_norm > 0:
        norms = _per_example_norm(delta)
        delta = delta * torch.where(
            norms > max_norm, max_norm / norms.clamp_min(1e-12), torch.ones_like(norms)
        )
    return delta * mask


def freelb_loss(
    forward_fn: ForwardFn,
    inputs_embeds: Tensor,
    attention_mask: Tensor,
    labels: Tensor,
    loss_fn: LossFn,
    *,
    adv_steps: int = 2,
    adv_lr: float = 1e-1,
    adv_init_mag: float = 1e-2,
    max_norm: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """FreeLB: the task loss averaged over ``adv_steps`` adversarial perturbations of the embeddings.

    ``delta_0`` is a small random start (``adv_init_mag``); each next ``delta`` takes a step of size
    ``adv_lr`` along the normalised gradient of the loss w.r.t. ``delta`` and, if ``max_norm > 0``, is
    projected back into a per-example L2 ball. Use the returned loss *instead of* the clean task loss.

    The original implementation calls ``backward()`` once per step to accumulate ("free") parameter
    gradients; here the per-step losses are averaged and returned, and ``delta`` is detached between
    steps, so one ``backward()`` on the result yields the same parameter gradients (at the cost of
    keeping ``adv_steps`` graphs alive until then).
    """
    if adv_steps < 1:
        raise ValueError(f"adv_steps must be >= 1, got {adv_steps}")
    mask = embedding_mask(attention_mask, inputs_embeds)
    delta = _initial_delta(inputs_embeds, mask, adv_init_mag, generator)
    losses = []
    for step in range(adv_steps):
        delta = delta.detach().requires_grad_(True)
        loss = loss_fn(forward_fn(inputs_embeds + delta, attention_mask), labels)
        losses.append(loss)
        if step < adv_steps - 1:
            (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
            delta = _ascent_step(delta.detach(), grad, mask, adv_lr, max_norm)
    return torch.stack(losses).mean()
