"""Embedding-space adversarial training inside `MultiTaskModel.forward` (`TrainingConfig.adversarial`).

The whole adversarial objective is computed in one forward call of the model, so the training loop,
DDP and DeepSpeed see an ordinary `model(task, batch) -> (logits, loss)` and one backward per
micro-batch. The word embeddings are looked up once (`encoder.get_input_embeddings()`), and every pass
feeds `inputs_embeds` to the encoder, so the clean and the perturbed passes differ only by the noise.

- `r3f`: loss = task loss + weight * symmetric KL(clean, noised) (R3F, Aghajanyan et al. 2020);
- `freelb`: loss = task loss + weight * FreeLB's adversarial task loss (Zhu et al. 2020), i.e. the mean
  task loss over its ascent steps in an L2 ball around the embeddings.

Noise comes from torch's global RNG, which checkpoints save and restore, so resumed runs stay exact;
with `adversarial: none` nothing here runs and no random number is drawn.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from xstilts.tasks import Format
from xstilts.train.adversarial import freelb_loss, r3f_loss

LABEL_KEYS = ("labels", "start_positions", "end_positions")
ADVERSARIAL_KINDS = ("none", "r3f", "freelb")


def _without_labels(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if k not in LABEL_KEYS}


def _r3f_view(fmt: Format, logits: Tensor) -> Tensor:
    """Logits with the distribution R3F compares on the last axis: span QA's start and end logits are
    each a distribution over positions ([B, T, 2] -> [B, 2, T])."""
    return logits.transpose(-1, -2) if fmt is Format.SPAN_QA else logits


def _r3f_mask(fmt: Format, batch: dict[str, Tensor]) -> Tensor | None:
    if fmt is Format.TAGGING and "labels" in batch:
        return batch["labels"] != -100  # the first sub-word of each word: the positions that are scored
    if fmt is Format.SPAN_QA:
        return torch.ones(batch["attention_mask"].shape[0], 2, device=batch["attention_mask"].device)
    return None


def adversarial_forward(
    model: Any, task: str, batch: dict[str, Tensor], kind: str, weight: float
) -> tuple[Tensor, Tensor]:
    """(clean logits, task loss + weight * adversarial term) for one training micro-batch of `task`."""
    fmt = model.formats[task]
    head = model.heads[task]
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    if fmt is Format.MULTIPLE_CHOICE:
        input_ids, mask = input_ids.flatten(0, 1), mask.flatten(0, 1)
    embeds = model.encoder.get_input_embeddings()(input_ids)
    unlabelled = _without_labels(batch)

    def hidden(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return model.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    logits, loss = head(hidden(embeds, mask), batch)
    if loss is None:
        raise ValueError(f"adversarial training needs labels in the batch of task '{task}'")
    if kind == "r3f":
        if model.num_labels.get(task) == 1:  # regression: squared difference instead of a divergence

            def noised_output(e: Tensor, m: Tensor) -> Tensor:
                return head(hidden(e, m), unlabelled)[0]

            z = (torch.rand_like(embeds) * 2 - 1) * 1e-5 * mask.unsqueeze(-1).to(embeds.dtype)
            term = (noised_output(embeds + z, mask) - logits).float().pow(2).mean()
        else:

            def forward_fn(e: Tensor, m: Tensor) -> Tensor:
                return _r3f_view(fmt, head(hidden(e, m), unlabelled)[0])

            clean = _r3f_view(fmt, logits)
            term = r3f_loss(forward_fn, embeds, mask, clean, logits_mask=_r3f_mask(fmt, batch))
    elif kind == "freelb":

        def task_loss(e: Tensor, m: Tensor) -> Tensor:
            return head(hidden(e, m), batch)[1]

        term = freelb_loss(task_loss, embeds, mask, labels=mask, loss_fn=lambda value, _unused: value)
    else:
        raise ValueError(f"adversarial must be one of {', '.join(ADVERSARIAL_KINDS)}, got {kind!r}")
    return logits, loss + weight * term
