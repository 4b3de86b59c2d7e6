"""Controlled comparisons: a capped training set is a seeded random sample, intermediate tasks can be
size-matched, and mixtures take an examples cap and a fixed number of steps."""

from __future__ import annotations

from collections import Counter

import pytest

from xstilts.data.load import count_examples, load_examples
from xstilts.phases.training import size_matched
from xstilts.plan.expand import expand
from xstilts.spec.models import Sweep
from xstilts.spec.training import TrainingConfig
from xstilts.tasks import get_task
from xstilts.train.schedule import build_schedule, sampling_weights

FIXTURES = {"source": "fixtures"}


def test_max_train_examples_is_a_seeded_random_sample_in_corpus_order() -> None:
    task = get_task("squad")  # ordered by article: the first rows are a few articles only
    everything = load_examples(task, "train", FIXTURES)
    first = load_examples(task, "train", FIXTURES, limit=40)
    sample = load_examples(task, "train", FIXTURES, limit=40, sample_seed=0)
    assert first == everything[:40]
    assert len(sample) == 40 and sample != first
    assert sample == load_examples(task, "train", FIXTURES, limit=40, sample_seed=0)
    assert sample != load_examples(task, "train", FIXTURES, limit=40, sample_seed=1)
    positions = [everything.index(e) for e in sample]
    assert positions == sorted(positions), "the sample keeps the corpus order"
    assert positions[-1] > len(everything) // 2, "drawn from the whole split, not its head"
    assert load_examples(task, "train", FIXTURES, limit=10_000, sample_seed=0) == everything


def test_size_match_smallest_caps_every_task_at_the_smallest_training_set() -> None:
    sizes = {name: count_examples(get_task(name), FIXTURES) for name in ("mnli", "anli-r1", "sst2")}
    assert sizes == {name: len(load_examples(get_task(name), "train", FIXTURES)) for name in sizes}
    config = size_matched(TrainingConfig(), ["mnli", "anli-r1", "sst2"], FIXTURES)
    assert config.max_train_examples == min(sizes.values())
    assert (
        size_matched(TrainingConfig(max_train_examples=50), ["mnli", "sst2"], FIXTURES).max_train_examples
        == 50
    )
    assert size_matched(TrainingConfig(), None, FIXTURES).max_train_examples is None


def sweep(**fields) -> Sweep:
    base = {"name": "controls", "data": {"source": "fixtures"}, "targets": ["pawsx"],
            "encoders": [{"name": "tiny", "model": "tiny"}]}  # fmt: skip
    return Sweep.model_validate({**base, **fields})


def intermediate_configs(plan) -> dict[str, dict]:
    return {p.label: p.config.dump() for p in plan.ordered() if p.kind == "intermediate"}


def test_plan_carries_the_controls_into_the_intermediate_phases() -> None:
    fixed = intermediate_configs(expand(sweep(intermediate=[{"task": "mnli"}], controls={"size_match": 100})))
    assert fixed["mnli"]["training"]["max_train_examples"] == 100
    assert fixed["mnli"]["training"]["train_sample_seed"] == 0
    smallest = expand(
        sweep(intermediate=[{"task": "mnli"}, {"task": "anli-r1"}], controls={"size_match": "smallest"})
    )
    pools = {tuple(c["size_match"]) for c in intermediate_configs(smallest).values()}
    assert pools == {("anli-r1", "mnli")}
    plain = intermediate_configs(expand(sweep(intermediate=[{"task": "mnli"}])))["mnli"]
    assert "size_match" not in plain and "total_steps" not in plain["training"]
    assert "train_sample_seed" not in plain["training"], "uncapped phases keep their addresses"
    subsets = sweep(intermediate_subsets=[{"pool": ["mnli", "sst2", "anli-r1"], "k": 1, "total_steps": 30},
                                          {"pool": ["mnli", "sst2", "anli-r1"], "k": 3, "total_steps": 30,
                                           "examples_cap": 150}])  # fmt: skip
    configs = intermediate_configs(expand(subsets))
    assert {c["training"]["total_steps"] for c in configs.values()} == {30}
    assert configs["mnli+sst2+anli-r1"]["training"]["examples_cap"] == 150
    assert "examples_cap" not in configs["mnli"]["training"]


def test_total_steps_fixes_the_number_of_steps_whatever_the_data() -> None:
    small, large = {"a": [10] * 40}, {"a": [10] * 40, "b": [10] * 400, "c": [10] * 90}
    for lengths in (small, large):
        schedule = build_schedule(lengths, 4, 1.0, seed=0, parts=2, total_steps=25)
        assert len(schedule) == 25 * 2
        grouped = build_schedule(lengths, 4, 1.0, seed=0, batching="random", total_steps=25)
        assert len(grouped) == 25


def test_examples_cap_limits_a_task_s_weight() -> None:
    sizes = {"big": 10_000, "small": 100}
    assert sampling_weights(sizes, "proportional", cap=1000) == pytest.approx(
        {"big": 1000 / 1100, "small": 100 / 1100}
    )
    assert sampling_weights(sizes, "proportional", cap=None)["big"] == pytest.approx(10_000 / 10_100)
    schedule = build_schedule(
        {"big": [8] * 2000, "small": [8] * 200}, 4, 2.0, seed=3, parts=1, examples_cap=200
    )
    counts = Counter(mb.task for mb in schedule)
    assert abs(counts["big"] - counts["small"]) < 0.2 * len(schedule), counts
