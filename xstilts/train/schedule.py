"""The deterministic order of micro-batches for a (multi-task) training run.

The whole schedule is a pure function of the tasks' feature lengths, batch size, epochs and seed, so a
resumed run regenerates it and skips to its saved position: the data position is just the step count.

Batching (`training.batching`):
- `grouped`: micro-batches of similar lengths (length-grouped mega-batches): least padding, but each
  batch holds examples of one length, which trains differently from random batches;
- `random`: random micro-batches, padded to their longest (what jiant and the Trainer do);
- `split`: each optimizer step takes a random batch of `micro x parts` examples and cuts it, sorted by
  length, into its `parts` micro-batches at the cuts that pad least; weighted by their loss units
  (`xstilts.data.batching.loss_units`), the parts' gradients add up to the random batch's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.data.batching import length_grouped_batches, split_by_length


def sampling_weights(
    sizes: Mapping[str, int], strategy: str, temperature: float = 2.0, cap: int | None = None
) -> dict[str, float]:
    """proportional: n_t / N; temperature: n_t^(1/T) normalised (T=1 is proportional); uniform: 1/K.
    `cap` (jiant's examples_cap, T5's limit K): each n_t counts as min(n_t, cap)."""
    if cap is not None:
        sizes = {n: min(size, cap) for n, size in sizes.items()}
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


def _task_batches(
    passes: _Passes, task: str, batch_size: int, seed: int, grouped: bool
) -> Iterator[list[int]]:
    """Endless batches of one task, reshuffled every pass: length-grouped, or random (mega-batches of one
    batch)."""
    epoch = 0
    lengths = passes.lengths[task]
    while True:
        indices = passes.indices(task, epoch)
        local = [lengths[i] for i in indices]
        for batch in length_grouped_batches(
            local, batch_size, seed * 1_000_003 + epoch, factor=None if grouped else 1
        ):
            yield [indices[i] for i in batch]
        epoch += 1


def _split_steps(
    passes: _Passes, task: str, batch_size: int, parts: int, seed: int, max_padded: int
) -> Iterator[list[tuple[int, ...]]]:
    """Endless steps of one task: random batches of `batch_size` from a stream of shuffled passes (a
    batch may span two passes, so every batch is whole), each cut into `parts` micro-batches."""
    stream: list[int] = []
    epoch = 0
    lengths = passes.lengths[task]
    while True:
        while len(stream) < batch_size:
            order = passes.indices(task, epoch)
            random.Random(seed * 1_000_003 + epoch).shuffle(order)
            stream += order
            epoch += 1
        batch, stream = stream[:batch_size], stream[batch_size:]
        yield split_by_length(lengths, batch, parts, max_padded)


def build_schedule(
    lengths: Mapping[str, Sequence[int]],
    micro_batch_size: int,
    epochs: float,
    seed: int,
    strategy: str = "proportional",
    temperature: float = 2.0,
    max_micro_batches: int | None = None,
    batching: str = "split",
    parts: int = 1,
    *,
    total_steps: int | None = None,
    examples_cap: int | None = None,
    views: Mapping[str, int] | None = None,
    epoch_sizes: Mapping[str, int] | None = None,
) -> list[MicroBatch]:
    """Micro-batches for the whole run. An epoch is as many micro-batches as one pass over every task;
    with several tasks each micro-batch's task is drawn from the sampling weights. `parts` (`split`
    only): micro-batches per optimizer step, all processes together; the schedule then holds whole
    steps, one task each.

    Controls: `total_steps` fixes the number of steps (micro-batches / `parts`) whatever the epochs;
    `examples_cap` caps each task's size in the sampling weights; `views[task] = V` says the task's
    features are V re-sampled versions of the same n examples, one after the other (code-switching drawn
    anew per pass: pass e reads version e mod V), so a pass, the epoch and the weights count n; and
    `epoch_sizes[task]` counts an epoch (and the weights) as that many examples instead of the features'
    number (augmented copies that must not add steps: `match_steps`)."""
    if batching not in ("grouped", "random", "split"):
        raise ValueError(f"unknown batching {batching!r}")
    sizes = _epoch_sizes(lengths, views, epoch_sizes)
    passes = _Passes(lengths, views)
    if batching == "split":
        return _split_schedule(lengths, micro_batch_size, parts, epochs, seed, strategy, temperature,
                               max_micro_batches, total_steps, examples_cap, sizes, passes)  # fmt: skip
    names = sorted(lengths)
    per_epoch = sum(math.ceil(sizes[n] / micro_batch_size) for n in names)
    total = max(1, round(per_epoch * epochs)) if total_steps is None else total_steps * parts
    if max_micro_batches is not None:
        total = min(total, max_micro_batches)
    grouped = batching == "grouped"
    iters = {n: _task_batches(passes, n, micro_batch_size, seed + i, grouped) for i, n in enumerate(names)}
    choices = _task_choices(sizes, total, seed, strategy, temperature, examples_cap)
    return [MicroBatch(task, tuple(next(iters[task]))) for task in choices]


def _epoch_sizes(
    lengths: Mapping[str, Sequence[int]],
    views: Mapping[str, int] | None,
    epoch_sizes: Mapping[str, int] | None,
) -> dict[str, int]:
    sizes = {}
    for name, values in lengths.items():
        count = (views or {}).get(name, 1)
        if len(values) % count:
            raise ValueError(f"task {name}: {len(values)} features are not {count} equal views")
        sizes[name] = (epoch_sizes or {}).get(name, len(values) // count)
    return sizes


class _Passes:
    """The feature indices of each pass over a task: all of them, or with views the n indices of the
    pass's version (pass e: version e mod V)."""

    def __init__(self, lengths: Mapping[str, Sequence[int]], views: Mapping[str, int] | None):
        self.lengths, self.views = lengths, views or {}

    def indices(self, task: str, epoch: int) -> list[int]:
        count = self.views.get(task, 1)
        n = len(self.lengths[task]) // count
        offset = (epoch % count) * n
        return list(range(offset, offset + n))


def _split_schedule(
    lengths: Mapping[str, Sequence[int]],
    micro_batch_size: int,
    parts: int,
    epochs: float,
    seed: int,
    strategy: str,
    temperature: float,
    max_micro_batches: int | None,
    total_steps: int | None,
    examples_cap: int | None,
    sizes: Mapping[str, int],
    passes: _Passes,
) -> list[MicroBatch]:
    batch_size = micro_batch_size * parts
    per_epoch = sum(math.ceil(size / batch_size) for size in sizes.values())
    steps = max(1, round(per_epoch * epochs)) if total_steps is None else total_steps
    if max_micro_batches is not None:
        steps = min(steps, max(1, max_micro_batches // parts))
    names = sorted(lengths)
    # A part may pad to as many tokens as a full micro-batch of the task's longest example.
    iters = {
        n: _split_steps(passes, n, batch_size, parts, seed + i, micro_batch_size * max(lengths[n]))
        for i, n in enumerate(names)
    }
    return [
        MicroBatch(task, indices)
        for task in _task_choices(sizes, steps, seed, strategy, temperature, examples_cap)
        for indices in next(iters[task])
    ]


def _task_choices(
    sizes: Mapping[str, int], total: int, seed: int, strategy: str, temperature: float, cap: int | None = None
) -> list[str]:
    names = sorted(sizes)
    if len(names) == 1:
        return [names[0]] * total
    weights = sampling_weights({n: sizes[n] for n in names}, strategy, temperature, cap)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(names), size=total, p=[weights[n] for n in names])
    return [names[i] for i in picks]
