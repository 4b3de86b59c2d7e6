"""The training schedule: sampling between tasks, epochs, grouped, random and split batching
(xstilts.train.schedule)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.data.test_batching import lengths_of
from xstilts.train.schedule import build_schedule, sampling_weights


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


def test_random_batching_mixes_lengths_and_still_covers_every_example() -> None:
    lengths = {"mnli": lengths_of(640, 9)}
    grouped = build_schedule(lengths, 32, 1.0, seed=2, batching="grouped")
    random_ = build_schedule(lengths, 32, 1.0, seed=2, batching="random")
    assert sorted(i for m in random_ for i in m.indices) == list(range(640))

    def mean_span(schedule: list) -> float:
        spans = [max(lengths["mnli"][i] for i in m.indices) - min(lengths["mnli"][i] for i in m.indices)
                 for m in schedule]  # fmt: skip
        return sum(spans) / len(spans)

    assert mean_span(random_) > 3 * mean_span(grouped)
    with pytest.raises(ValueError, match="unknown batching"):
        build_schedule(lengths, 32, 1.0, seed=2, batching="sorted")


def test_split_schedule_takes_whole_random_batches_one_task_per_step() -> None:
    lengths = {"mnli": lengths_of(320, 1), "udpos": lengths_of(160, 2)}
    parts = 4
    schedule = build_schedule(lengths, 8, 1.0, seed=3, batching="split", parts=parts)
    assert len(schedule) == (10 + 5) * parts  # steps of 32 examples per task pass
    assert schedule == build_schedule(lengths, 8, 1.0, seed=3, batching="split", parts=parts)
    steps = [schedule[s : s + parts] for s in range(0, len(schedule), parts)]
    for step in steps:
        assert len({mb.task for mb in step}) == 1
        indices = [i for mb in step for i in mb.indices]
        assert len(indices) == len(set(indices)) == 32
        longest = [max(lengths[step[0].task][i] for i in mb.indices) for mb in step]
        assert longest == sorted(longest, reverse=True)
    single = build_schedule({"mnli": lengths["mnli"]}, 8, 1.0, seed=3, batching="split", parts=parts)
    assert sorted(i for mb in single for i in mb.indices) == list(range(320))  # one pass: each once
    # the batches are random, not length-grouped: a step spans lengths as a random batch does
    spans = []
    for k in range(0, len(single), parts):
        step_lengths = [lengths["mnli"][i] for mb in single[k : k + parts] for i in mb.indices]
        spans.append(max(step_lengths) - min(step_lengths))
    assert sum(spans) / len(spans) > 150


def test_split_batches_cross_pass_boundaries_whole() -> None:
    schedule = build_schedule({"pawsx": lengths_of(40, 3)}, 4, 2.0, seed=1, batching="split", parts=4)
    assert len(schedule) == 6 * 4  # ceil(40 / 16) steps a pass, two passes
    assert all(sum(len(mb.indices) for mb in schedule[s : s + 4]) == 16 for s in range(0, 24, 4))
    seen = Counter(i for mb in schedule for i in mb.indices)
    assert len(seen) == 40 and set(seen.values()) <= {2, 3}  # 96 draws from a stream of whole passes
