"""Length-grouped batching and dynamic padding.

Batches group examples of similar length (sorted inside shuffled mega-batches, as the HF Trainer's
`group_by_length`), so padding is small; each batch is padded only to its own longest example.
Everything is a deterministic function of the seed, so a resumed run sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from xstilts.data.features import Feature, feature_length

LABEL_KEYS = ("labels", "start_positions", "end_positions")


def mega_batch_factor(examples: int, batch_size: int) -> int:
    """Batches per length-sorted mega-batch: at most 50, and at least four mega-batches an epoch (the rule
    of transformers' LengthGroupedSampler), so a small training set is not sorted whole. Grouping still
    converges more slowly than random batches on the training benchmark (docs/benchmarks.md); the
    sweep's `training.batching: random` turns it off."""
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
