"""The deterministic order of micro-batches for a (multi-task) training run.

The whole schedule is a pure function of the tasks' feature lengths, batch size, epochs and seed, so a
resumed run regenerates it and skips to its saved position: the data position is just the step count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.data.batching import length_grouped_batches


def sampling_weights(sizes: Mapping[str, int], strategy: str, temperature: float = 2.0) -> dict[str, float]:
    """proportional: n_t / N; temperature: n_t^(1/T) normalised (T=1 is proportional); uniform: 1/K."""
    names = list(sizes)
    if strategy == "uniform":
        raw = [1.0] * len(names)
    elif strategy == "temperature":
        raw = [sizes[n] ** (1.0 / temperature) for n in names]
    elif strategy == "proportional":
        raw = [float(sizes[n]) for n in names]
    else:
        raise ValueError(f"unknown sampling strategy {strategy!r}")
    total = sum(raw)
    return {n: r / total for n, r in zip(names, raw, strict=True)}


@dataclass(frozen=True)
class MicroBatch:
    task: str
    indices: tuple[int, ...]


def _task_batches(lengths: Sequence[int], batch_size: int, seed: int, grouped: bool) -> Iterator[list[int]]:
    """Endless batches of one task, reshuffled every pass: length-grouped, or random (mega-batches of one
    batch)."""
    epoch = 0
    while True:
        yield from length_grouped_batches(
            lengths, batch_size, seed * 1_000_003 + epoch, factor=None if grouped else 1
        )
        epoch += 1


def build_schedule(
    lengths: Mapping[str, Sequence[int]],
    micro_batch_size: int,
    epochs: float,
    seed: int,
    strategy: str = "proportional",
    temperature: float = 2.0,
    max_micro_batches: int | None = None,
    batching: str = "grouped",
) -> list[MicroBatch]:
    """Micro-batches for the whole run. An epoch is as many micro-batches as one pass over every task;
    with several tasks each micro-batch's task is drawn from the sampling weights."""
    per_epoch = sum(math.ceil(len(v) / micro_batch_size) for v in lengths.values())
    total = max(1, round(per_epoch * epochs))
    if max_micro_batches is not None:
        total = min(total, max_micro_batches)
    names = sorted(lengths)
    if batching not in ("grouped", "random"):
        raise ValueError(f"unknown batching {batching!r}")
    grouped = batching == "grouped"
    iters = {n: _task_batches(lengths[n], micro_batch_size, seed + i, grouped) for i, n in enumerate(names)}
    if len(names) == 1:
        choices = [names[0]] * total
    else:
        weights = sampling_weights({n: len(lengths[n]) for n in names}, strategy, temperature)
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(names), size=total, p=[weights[n] for n in names])
        choices = [names[i] for i in picks]
    return [MicroBatch(task, tuple(next(iters[task]))) for task in choices]
