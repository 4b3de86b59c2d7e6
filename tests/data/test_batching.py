"""Length-grouped batches, split batches, loss units and dynamic padding (xstilts.data.batching)."""

from __future__ import annotations

import random

import pytest
import torch

from xstilts.data.batching import (
    collate,
    length_grouped_batches,
    loss_units,
    mega_batch_factor,
    sorted_batches,
    split_by_length,
)


def lengths_of(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(5, 256) for _ in range(n)]


@pytest.mark.parametrize(("n", "batch"), [(960, 32), (100, 8), (7, 32), (5000, 16)])
def test_every_example_once_per_epoch_in_full_batches(n: int, batch: int) -> None:
    batches = length_grouped_batches(lengths_of(n), batch, seed=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))
    assert sum(len(b) < batch for b in batches) <= -(-n // (batch * mega_batch_factor(n, batch)))


def test_same_seed_same_batches_and_another_seed_others() -> None:
    lengths = lengths_of(500)
    assert length_grouped_batches(lengths, 16, seed=1) == length_grouped_batches(lengths, 16, seed=1)
    assert length_grouped_batches(lengths, 16, seed=1) != length_grouped_batches(lengths, 16, seed=2)


def test_mega_batch_factor_follows_the_trainers_rule() -> None:
    assert mega_batch_factor(960, 32) == 7  # 960 // 128: at least four mega-batches an epoch
    assert mega_batch_factor(393_000, 32) == 50  # capped at 50 batches
    assert mega_batch_factor(10, 32) == 1


def test_batches_group_similar_lengths_and_pad_less_than_random_batches() -> None:
    lengths = lengths_of(4000, seed=5)
    batch = 32

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = length_grouped_batches(lengths, batch, seed=1)
    order = list(range(len(lengths)))
    random.Random(1).shuffle(order)
    shuffled = [order[i : i + batch] for i in range(0, len(order), batch)]
    assert padded(grouped) < 0.75 * padded(shuffled)
    # each mega-batch (factor batches) is sorted longest first before it is cut
    factor = mega_batch_factor(len(lengths), batch)
    unshuffled = length_grouped_batches(lengths, batch, seed=1, shuffle=False)
    for start in range(0, len(unshuffled), factor):
        seq = [lengths[i] for b in unshuffled[start : start + factor] for i in b]
        assert seq == sorted(seq, reverse=True)


def test_small_training_sets_are_not_sorted_whole() -> None:
    """With 960 examples and batch 32 the data falls into 5 mega-batches of 7 batches: a batch's lengths
    span more than when the whole set is sorted (factor 50 covers it all)."""
    lengths = lengths_of(960, seed=2)

    def mean_span(batches: list[list[int]]) -> float:
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    assert mean_span(length_grouped_batches(lengths, 32, seed=1)) > 2 * mean_span(
        length_grouped_batches(lengths, 32, seed=1, factor=50)
    )


def test_sorted_batches_longest_first() -> None:
    lengths = [3, 9, 1, 7, 5]
    assert sorted_batches(lengths, 2) == [[1, 3], [4, 0], [2]]


def test_collate_pads_to_the_batch_maximum() -> None:
    batch = collate(
        [{"input_ids": [0, 5, 2], "labels": 1}, {"input_ids": [0, 6, 7, 8, 2], "labels": 0}], pad_token_id=1
    )
    assert batch["input_ids"].tolist() == [[0, 5, 2, 1, 1], [0, 6, 7, 8, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]


def test_collate_token_labels_and_multiple_choice() -> None:
    tagged = collate(
        [{"input_ids": [0, 4, 2], "labels": [-100, 3, -100]}, {"input_ids": [0, 2], "labels": [-100, -100]}],
        pad_token_id=1,
    )
    assert tagged["labels"].tolist() == [[-100, 3, -100], [-100, -100, -100]]
    choices = collate([{"input_ids": [[0, 4, 2], [0, 2]], "labels": 1}], pad_token_id=1)
    assert choices["input_ids"].shape == (1, 2, 3)
    assert choices["input_ids"].tolist() == [[[0, 4, 2], [0, 2, 1]]]
    assert choices["attention_mask"].tolist() == [[[1, 1, 1], [1, 1, 0]]]


# -- split batching: a random batch cut into length-sorted parts ---------------------------------------


def padded(lengths: list[int], parts: list[tuple[int, ...]]) -> int:
    return sum(len(p) * max(lengths[i] for i in p) for p in parts)


def test_split_cuts_where_padding_is_least() -> None:
    """The cut points are optimal: checked against every way of cutting the sorted batch."""
    import itertools

    rng = random.Random(4)
    for _ in range(150):
        n = rng.randint(1, 9)
        parts = rng.randint(1, n)
        lengths = [rng.randint(1, 60) for _ in range(n)]
        got = split_by_length(lengths, range(n), parts)
        assert len(got) == parts and sorted(i for p in got for i in p) == list(range(n))
        order = sorted(range(n), key=lambda i: -lengths[i])
        best = min(
            sum((b - a) * lengths[order[a]] for a, b in zip((0, *cuts), (*cuts, n), strict=True))
            for cuts in itertools.combinations(range(1, n), parts - 1)
        )
        assert padded(lengths, got) == best


def test_split_pads_far_less_than_the_random_batch_and_keeps_its_examples() -> None:
    lengths = lengths_of(32, seed=7)
    parts = split_by_length(lengths, range(32), 4)
    assert sorted(i for p in parts for i in p) == list(range(32))
    assert [max(lengths[i] for i in p) for p in parts] == sorted(
        (max(lengths[i] for i in p) for p in parts), reverse=True
    )
    assert padded(lengths, parts) < 0.8 * 32 * max(lengths)
    assert sum(lengths) / padded(lengths, parts) > 0.8  # a random batch of these: about 0.5


def test_split_respects_the_padded_token_cap() -> None:
    lengths = [60] * 10 + [50] * 22
    assert [len(p) for p in split_by_length(lengths, range(32), 2)] == [10, 22]  # 600 + 1100 tokens
    capped = split_by_length(lengths, range(32), 2, max_padded=1000)
    assert [len(p) for p in capped] == [12, 20]  # the cheapest cut with both parts under the cap
    with pytest.raises(ValueError, match="cannot cut 3 examples into 4 parts"):
        split_by_length(lengths, range(3), 4)
    with pytest.raises(ValueError, match="under 500 tokens"):
        split_by_length(lengths, range(32), 2, max_padded=500)


def test_loss_units_count_what_each_loss_averages() -> None:
    assert loss_units([{"input_ids": [0, 2], "labels": 1}] * 3) == 3  # classification: examples
    assert loss_units([{"input_ids": [[0, 2], [0, 3]], "labels": 1}] * 2) == 2  # multiple choice
    assert loss_units([{"input_ids": [0, 5, 2], "start_positions": 1, "end_positions": 1}]) == 1  # span QA
    tagged = [
        {"input_ids": [0, 4, 5, 2], "labels": [-100, 3, 4, -100]},
        {"input_ids": [0, 2], "labels": [-100, 1]},
    ]
    assert loss_units(tagged) == 3  # tagging and MLM: labelled tokens
