"""Batched inference: sorted-by-length batches, no grad, bf16 autocast on GPU, one pass per split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xstilts.data.batching import collate, sorted_batches
from xstilts.data.features import Feature, feature_length
from xstilts.tasks import Format, TaskDef


def _autocast(device: torch.device):
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


# Outputs stay on the device for this many batches before they are copied to the host: a copy to the
# host waits for the device, so copying every batch would stall the host once per batch.
DRAIN_EVERY = 16


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without a host sync on CUDA (pinned memory, non-blocking); a no-op on CPU."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@torch.no_grad()
def predict(
    model, task: TaskDef, features: list[Feature], pad_token_id: int, batch_size: int = 64
) -> list[Any]:
    """Raw model outputs per feature, in feature order: class id / label ids / (start, end) logits."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs: list[Any] = [None] * len(features)
    labels = ("labels", "start_positions", "end_positions")
    pending: list[tuple[list[int], torch.Tensor]] = []

    def drain() -> None:
        for batch_idx, logits in pending:
            array = logits.float().cpu().numpy()
            for row, i in enumerate(batch_idx):
                outputs[i] = _per_feature(task.format, array[row], features[i])
        pending.clear()

    for batch_idx in sorted_batches([feature_length(f) for f in features], batch_size):
        batch_features = [{k: v for k, v in features[i].items() if k not in labels} for i in batch_idx]
        batch = {k: _to_device(v, device) for k, v in collate(batch_features, pad_token_id).items()}
        with _autocast(device):
            logits, _ = model(task.name, batch)
        pending.append((batch_idx, logits))
        if len(pending) >= DRAIN_EVERY:
            drain()
    drain()
    model.train(was_training)
    return outputs


def _per_feature(fmt: Format, logits: np.ndarray, feature: Feature) -> Any:
    if fmt is Format.REGRESSION:
        return float(logits[0])
    if fmt in (Format.CLASSIFICATION, Format.MULTIPLE_CHOICE):
        return int(np.argmax(logits))
    length = len(feature["input_ids"])
    if fmt is Format.TAGGING:
        return [int(x) for x in np.argmax(logits[:length], axis=-1)]
    if fmt is Format.SPAN_QA:
        return (logits[:length, 0], logits[:length, 1])
    raise ValueError(fmt)


@torch.no_grad()
def embed(
    encoder, features: list[Feature], pad_token_id: int, layer: int, batch_size: int = 64
) -> np.ndarray:
    """Sentence embeddings: mean over non-padding tokens of hidden_states[layer] (0 = embedding output)."""
    device = next(encoder.parameters()).device
    encoder.eval()
    out = np.zeros((len(features), encoder.config.hidden_size), dtype=np.float32)
    pending: list[tuple[list[int], torch.Tensor]] = []

    def drain() -> None:
        for batch_idx, pooled in pending:
            out[batch_idx] = pooled.float().cpu().numpy()
        pending.clear()

    for batch_idx in sorted_batches([feature_length(f) for f in features], batch_size):
        batch = collate([features[i] for i in batch_idx], pad_token_id)
        ids, mask = _to_device(batch["input_ids"], device), _to_device(batch["attention_mask"], device)
        with _autocast(device):
            hidden = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[
                layer
            ]
        mask_f = mask.unsqueeze(-1).to(hidden.dtype)
        pending.append((batch_idx, (hidden * mask_f).sum(1) / mask_f.sum(1).clamp(min=1)))
        if len(pending) >= DRAIN_EVERY:
            drain()
    drain()
    return out
