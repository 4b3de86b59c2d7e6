"""Length-aware batching and dynamic padding.

Two ways to pad little: `length_grouped_batches` groups examples of similar length into batches (sorted
inside shuffled mega-batches, as the HF Trainer's `group_by_length`), which changes what a batch holds;
`split_by_length` keeps a random batch and cuts it, sorted, into micro-batches whose gradients add up to
the batch's. Each batch is padded only to its own longest example. Everything is a deterministic
function of the seed, so a resumed run sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xstilts.data.features import Feature, feature_length

LABEL_KEYS = ("labels", "start_positions", "end_positions")


def mega_batch_factor(examples: int, batch_size: int) -> int:
    """Batches per length-sorted mega-batch: at most 50, and at least four mega-batches an epoch (the rule
    of transformers' LengthGroupedSampler), so a small training set is not sorted whole. Grouping
    converged more slowly than random batches on the training benchmark (docs/benchmarks.md), which is
    why `training.batching` defaults to `split`."""
    return max(1, min(examples // (batch_size * 4), 50))


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, *, factor: int | None = None, shuffle: bool = True
) -> list[list[int]]:
    """Index batches: shuffle, sort mega-batches (`factor` batches, default `mega_batch_factor`) by length,
    cut into batches, shuffle the batches."""
    indices = list(range(len(lengths)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(indices)
    mega = batch_size * (factor or mega_batch_factor(len(lengths), batch_size))
    batches = []
    for start in range(0, len(indices), mega):
        chunk = sorted(indices[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches


def split_by_length(
    lengths: Sequence[int], indices: Sequence[int], parts: int, max_padded: int | None = None
) -> list[tuple[int, ...]]:
    """Cut one batch into `parts` micro-batches (longest first) that pad as little as possible.

    The batch is sorted by length and cut at the points that minimise the padded tokens (each part pads
    to its own longest example), an exact dynamic programme over the cut points; a part may hold at
    most `max_padded` padded tokens (examples x its longest), so memory stays bounded. Parts differ in
    size: long examples go in small parts, short ones in large parts."""
    if not 1 <= parts <= len(indices):
        raise ValueError(f"cannot cut {len(indices)} examples into {parts} parts")
    order = sorted(indices, key=lambda i: -lengths[i])
    n = len(order)
    longest = np.array([lengths[i] for i in order], dtype=np.float64)
    start = np.arange(n)[:, None]
    end = np.arange(n + 1)[None, :]
    cost = (end - start) * longest[:, None]  # cost[p, i]: a part of examples p..i-1, padded to longest[p]
    cost[end <= start] = np.inf
    if max_padded is not None:
        cost[cost > max_padded] = np.inf
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cuts = []
    for _ in range(parts):
        total = best[:n, None] + cost
        cuts.append(total.argmin(axis=0))
        best = total.min(axis=0)
        best[0] = np.inf
    if not np.isfinite(best[n]):
        raise ValueError(f"no cut of {n} examples into {parts} parts keeps each under {max_padded} tokens")
    bounds = [n]
    for cut in reversed(cuts):
        bounds.append(int(cut[bounds[-1]]))
    bounds.reverse()
    return [tuple(order[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def loss_units(features: Sequence[Feature]) -> int:
    """What a batch's loss averages over: labelled tokens for token-level labels (tagging, MLM), else
    examples. Parts of a split batch are weighted by these so their gradients sum to the batch's."""
    labels = features[0].get("labels") if features else None
    if isinstance(labels, list) and not (labels and isinstance(labels[0], list)):
        return sum(1 for f in features for label in f["labels"] if label != -100)
    return len(features)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation: longest first, so memory peaks early and padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(features: list[Feature], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad input_ids (2-D, or 3-D for multiple choice) to the batch maximum; labels padded with -100."""
    first = features[0]["input_ids"]
    multi = bool(first) and isinstance(first[0], list)
    width = max(feature_length(f) for f in features)
    if multi:
        rows = [[seq + [pad_token_id] * (width - len(seq)) for seq in f["input_ids"]] for f in features]
        masks = [[[1] * len(seq) + [0] * (width - len(seq)) for seq in f["input_ids"]] for f in features]
    else:
        rows = [f["input_ids"] + [pad_token_id] * (width - len(f["input_ids"])) for f in features]
        masks = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
    batch: dict[str, Any] = {
        "input_ids": torch.tensor(rows, dtype=torch.long),
        "attention_mask": torch.tensor(masks, dtype=torch.long),
    }
    for key in LABEL_KEYS:
        if key not in features[0]:
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], list):
            values = [v + [-100] * (width - len(v)) for v in values]
        dtype = torch.float if isinstance(values[0], float) else torch.long
        batch[key] = torch.tensor(values, dtype=dtype)
    return batch
