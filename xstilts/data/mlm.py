"""Masked-language-model features: corpus lines tokenized once (cacheable), then masked per phase and
seed (BERT's scheme), for the MLM phase and for MLM as a task in an intermediate mixture."""

from __future__ import annotations

import random
from typing import Any

from xstilts.data.labels import IGNORE_INDEX

Feature = dict[str, Any]


def tokenize_lines(tokenizer, examples: list[dict], max_length: int, **_: Any) -> list[Feature]:
    """{"input_ids", "example_index"} per corpus line (no labels yet: `mask_features` adds them)."""
    enc = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length)
    return [{"input_ids": ids, "example_index": i} for i, ids in enumerate(enc["input_ids"])]


def mask_tokens(
    input_ids: list[int], tokenizer, probability: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """BERT masking of non-special tokens: each is chosen with `probability`; a chosen token becomes
    <mask> (80%), a random token (10%) or stays (10%), and is the only place with a label (-100
    elsewhere). A line with no token chosen gets one (its first non-special token), so every example
    has a label and no micro-batch has an undefined (0/0) loss."""
    special = set(tokenizer.all_special_ids)
    ids, labels = list(input_ids), [IGNORE_INDEX] * len(input_ids)
    candidates = [i for i, token in enumerate(input_ids) if token not in special]
    chosen = [i for i in candidates if rng.random() < probability]
    if not chosen and candidates:
        chosen = [candidates[0]]
    for i in chosen:
        labels[i] = input_ids[i]
        roll = rng.random()
        if roll < 0.8:
            ids[i] = tokenizer.mask_token_id
        elif roll < 0.9:
            ids[i] = rng.randrange(len(tokenizer))
    return ids, labels


def mask_features(features: list[Feature], tokenizer, probability: float, seed: int) -> list[Feature]:
    """Statically masked copies of tokenized lines (`tokenize_lines`), deterministic in `seed`."""
    rng = random.Random(seed)
    out = []
    for feature in features:
        masked, labels = mask_tokens(feature["input_ids"], tokenizer, probability, rng)
        out.append({**feature, "input_ids": masked, "labels": labels})
    return out
