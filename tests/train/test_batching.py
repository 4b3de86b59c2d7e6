"""Length-grouped batches, the training schedule and dynamic padding."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from xstilts.data.batching import collate, length_grouped_batches, mega_batch_factor, sorted_batches
from xstilts.train.schedule import build_schedule, sampling_weights


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


def test_schedule_is_a_pure_function_of_its_inputs() -> None:
    lengths = {"mnli": lengths_of(300, 1), "squad": lengths_of(100, 2)}
    first = build_schedule(lengths, 16, 2.0, seed=4)
    assert first == build_schedule(lengths, 16, 2.0, seed=4)
    assert first != build_schedule(lengths, 16, 2.0, seed=5)
    assert len(first) == 2 * (19 + 7)
    counts = Counter(m.task for m in first)
    assert counts["mnli"] > 2 * counts["squad"]  # proportional sampling, 3:1 in sizes
    assert len(build_schedule(lengths, 16, 2.0, seed=4, max_micro_batches=10)) == 10


def test_single_task_epochs_cover_every_example() -> None:
    lengths = {"pawsx": lengths_of(64)}
    schedule = build_schedule(lengths, 16, 3.0, seed=1)
    assert len(schedule) == 12
    seen = Counter(i for m in schedule for i in m.indices)
    assert set(seen.values()) == {3} and len(seen) == 64


def test_sampling_weights() -> None:
    sizes = {"a": 900, "b": 100}
    assert sampling_weights(sizes, "proportional") == pytest.approx({"a": 0.9, "b": 0.1})
    assert sampling_weights(sizes, "uniform") == {"a": 0.5, "b": 0.5}
    assert sampling_weights(sizes, "temperature", 2.0) == pytest.approx({"a": 0.75, "b": 0.25})
    with pytest.raises(ValueError, match="unknown sampling"):
        sampling_weights(sizes, "greedy")


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


def test_random_batching_mixes_lengths_and_still_covers_every_example() -> None:
    lengths = {"mnli": lengths_of(640, 9)}
    grouped = build_schedule(lengths, 32, 1.0, seed=2)
    random_ = build_schedule(lengths, 32, 1.0, seed=2, batching="random")
    assert sorted(i for m in random_ for i in m.indices) == list(range(640))

    def mean_span(schedule: list) -> float:
        spans = [max(lengths["mnli"][i] for i in m.indices) - min(lengths["mnli"][i] for i in m.indices)
                 for m in schedule]  # fmt: skip
        return sum(spans) / len(spans)

    assert mean_span(random_) > 3 * mean_span(grouped)
    with pytest.raises(ValueError, match="unknown batching"):
        build_schedule(lengths, 32, 1.0, seed=2, batching="sorted")


def test_batching_is_a_training_setting_with_a_clear_error() -> None:
    from xstilts.errors import ConfigError
    from xstilts.spec import parse_sweep

    base = {"name": "t", "data": {"source": "fixtures"}, "encoders": [{"name": "tiny", "model": "tiny"}],
            "targets": ["pawsx"]}  # fmt: skip
    sweep = parse_sweep({**base, "training": {"batching": "random"}}, "t.yaml")
    assert sweep.training.batching == "random"
    with pytest.raises(ConfigError) as error:
        parse_sweep({**base, "training": {"batching": "sorted"}}, "t.yaml")
    assert "t.yaml" in str(error.value) and "training.batching" in str(error.value)
