"""Uncertainty for the report: seed summaries, paired bootstrap over evaluation examples, a paired
permutation test over seeds, and rank-correlation tests. numpy only (no torch, no scipy); every random
draw comes from a generator seeded by the caller, so a report is reproducible.

Per-example statistics. Every prediction record carries ``unit`` (what the bootstrap resamples: an
example, a question, a sentence, a BUCC source sentence) and ``stats``, the additive quantities its
metric is computed from. A metric's *kind* says which:

=========  =======================================  ===============================================
kind       stats per unit                           score from the sums over N units
=========  =======================================  ===============================================
``mean``   ``score`` (correct 0/1, or AP@20 0..1)   100 * sum(score) / N
``qa``     ``exact_match`` (0/1), ``f1`` (0..1)     100 * (sum(exact_match) + sum(f1)) / (2 N)
``f1``     ``correct``, ``predicted``, ``gold``     seqeval's F1 of the summed chunk / pair counts
``ratio``  ``correct``, ``total``                   100 * sum(correct) / sum(total)
=========  =======================================  ===============================================

``N`` is the number of units (``units`` in metrics.json); units with all-zero stats may be left out of
the prediction file (BUCC lists only the source sentences with an extracted or a gold pair).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.evaluate.delta import Delta
from xstilts.evaluate.seeds import SeedSummary, seed_summary, t_quantile_975

__all__ = ["Delta", "SeedSummary", "seed_summary", "t_quantile_975"]  # re-exported: numpy-free, beside

STAT_FIELDS: dict[str, tuple[str, ...]] = {
    "mean": ("score",),
    "qa": ("exact_match", "f1"),
    "f1": ("correct", "predicted", "gold"),
    "ratio": ("correct", "total"),
}
METRIC_KINDS: dict[str, str] = {
    "accuracy": "mean",
    "tatoeba_accuracy": "mean",
    "map@20": "mean",
    "squad": "qa",
    "squad_v2": "qa",
    "mlqa": "qa",
    "seqeval_f1": "f1",
    "udpos_f1": "f1",
    "bucc_f1": "f1",
    "bucc_f1_gold_only": "f1",
    "token_accuracy": "ratio",
}
BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95
EXACT_SIGN_FLIPS = 16  # up to this many seeds every sign assignment is enumerated
EXACT_PERMUTATIONS = 7  # up to this many pairs every permutation is enumerated


def metric_kind(metric: str) -> str | None:
    """The stats kind of a metric, or None when it is not resampled (regression, MCC: intermediate
    tasks only, never a report's target)."""
    return METRIC_KINDS.get(metric)


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (not on Python's salted ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


# --------------------------------------------------------------------------- scores from stats


def score_from_sums(kind: str, sums: np.ndarray, units: int) -> np.ndarray:
    """Scores (x100) from summed stats: ``sums[..., j]`` is the sum of field j of `STAT_FIELDS[kind]`
    over a (re)sample of ``units`` units. Vectorised over the leading axes."""
    sums = np.asarray(sums, dtype=np.float64)
    if kind == "mean":
        return 100.0 * sums[..., 0] / units
    if kind == "qa":
        return 100.0 * (sums[..., 0] + sums[..., 1]) / (2 * units)
    if kind == "f1":
        correct, predicted, gold = sums[..., 0], sums[..., 1], sums[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(predicted > 0, correct / np.where(predicted > 0, predicted, 1), 0.0)
            r = np.where(gold > 0, correct / np.where(gold > 0, gold, 1), 0.0)
            f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
        return 100.0 * f1
    if kind == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                sums[..., 1] > 0, 100.0 * sums[..., 0] / np.where(sums[..., 1] > 0, sums[..., 1], 1), 0.0
            )
    raise ValueError(f"unknown stats kind {kind!r}; expected one of {', '.join(STAT_FIELDS)}")


@dataclass(frozen=True)
class ExampleStats:
    """One run's per-unit stats in one language: ``values[i]`` are the `STAT_FIELDS[kind]` of unit
    ``ids[i]``; ``units`` counts every unit, listed or not."""

    kind: str
    units: int
    ids: tuple[str, ...]
    values: np.ndarray

    @classmethod
    def from_records(cls, kind: str, records: Sequence[Mapping], units: int | None = None) -> ExampleStats:
        """From prediction records (``unit`` and ``stats``); records of one unit are summed."""
        fields = STAT_FIELDS[kind]
        index: dict[str, int] = {}
        rows: list[list[float]] = []
        for position, record in enumerate(records):
            stats = record.get("stats")
            if not isinstance(stats, Mapping):
                raise ValueError(f"record {position} has no per-example stats")
            unit = str(record.get("unit", position))
            row = index.setdefault(unit, len(rows))
            if row == len(rows):
                rows.append([0.0] * len(fields))
            for j, name in enumerate(fields):
                rows[row][j] += float(stats[name])
        total = len(rows) if units is None else int(units)
        if total < len(rows):
            raise ValueError(f"{len(rows)} units listed but only {total} counted")
        values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(fields))
        return cls(kind, total, tuple(index), values)

    def score(self) -> float:
        return float(score_from_sums(self.kind, self.values.sum(axis=0), self.units))


# --------------------------------------------------------------------------- over seeds


def sign_flip_test(differences: Sequence[float], *, seed: int = 0, samples: int = 20000) -> float:
    """Two-sided paired permutation test of mean(differences) == 0 (one difference per seed): the share
    of sign assignments whose |mean| is at least the observed one. Exact up to `EXACT_SIGN_FLIPS`
    differences (with 3 seeds the smallest possible p is 2/8 = 0.25), sampled beyond."""
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError("need a 1-D, non-empty sequence of differences")
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    if len(d) <= EXACT_SIGN_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        means = np.abs(signs @ d) / len(d)
        return float(np.mean(means >= observed - tolerance))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(samples, len(d)))
    hits = int(np.sum(np.abs(signs @ d) / len(d) >= observed - tolerance))
    return (hits + 1) / (samples + 1)


# --------------------------------------------------------------------------- paired bootstrap


@dataclass(frozen=True)
class PairedStratum:
    """One language of one target: per seed, the stats of system A (a setting) and system B (its
    baseline) on the SAME units, rows aligned (``a[s][i]`` and ``b[s][i]`` are unit i)."""

    kind: str
    units: int
    a: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]

    @property
    def listed(self) -> int:
        return int(self.a[0].shape[0])


def align(setting: Sequence[ExampleStats], baseline: Sequence[ExampleStats]) -> PairedStratum:
    """Pair per-seed stats of a setting and its baseline on the union of their units. Raises ValueError
    when they were not computed on the same evaluation data (different kinds or unit counts)."""
    runs = [*setting, *baseline]
    if not setting or len(setting) != len(baseline):
        raise ValueError("need one baseline run per setting run (paired by seed)")
    kinds, totals = {r.kind for r in runs}, {r.units for r in runs}
    if len(kinds) != 1 or len(totals) != 1:
        raise ValueError(f"runs are not on the same evaluation data (kinds {kinds}, units {totals})")
    order = list(dict.fromkeys(unit for run in runs for unit in run.ids))
    where = {unit: i for i, unit in enumerate(order)}
    if len(order) > next(iter(totals)):
        raise ValueError("runs list different units: not the same evaluation examples")

    def expand(run: ExampleStats) -> np.ndarray:
        out = np.zeros((len(order), run.values.shape[1]))
        out[[where[u] for u in run.ids]] = run.values
        return out

    kind = next(iter(kinds))
    return PairedStratum(kind, next(iter(totals)), tuple(map(expand, setting)), tuple(map(expand, baseline)))


def _delta(stratum: PairedStratum, counts: np.ndarray) -> np.ndarray:
    """Mean over seeds of score(A) - score(B) for each row of resampling counts."""
    total = np.zeros(counts.shape[0])
    for a, b in zip(stratum.a, stratum.b, strict=True):
        total += score_from_sums(stratum.kind, counts @ a, stratum.units)
        total -= score_from_sums(stratum.kind, counts @ b, stratum.units)
    return total / len(stratum.a)


def stratum_replicates(
    stratum: PairedStratum, replicates: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """(observed delta, ``replicates`` bootstrap deltas): each replicate draws ``units`` units with
    replacement (the same draw for both systems and every seed) and recomputes both scores."""
    m, n = stratum.listed, stratum.units
    observed = float(_delta(stratum, np.ones((1, m)))[0])
    pvals = np.full(m + 1, 1.0 / n)
    pvals[m] = max(0.0, 1.0 - m / n)
    out = np.empty(replicates)
    block = max(1, min(replicates, 2**22 // max(1, m + 1)))
    for lo in range(0, replicates, block):
        size = min(block, replicates - lo)
        if m == n:  # every unit listed: draw indices and count them (faster than a multinomial)
            draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
            counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        else:  # the unlisted units (all-zero stats) are the last category
            counts = rng.multinomial(n, pvals, size=size)[:, :m].astype(np.float64)
        out[lo : lo + size] = _delta(stratum, counts)
    return observed, out


def estimate(observed: float, replicates: np.ndarray, seed_p: float | None = None) -> Delta:
    reps = np.asarray(replicates, dtype=np.float64)
    alpha = (1 - CONFIDENCE) / 2
    low, high = (float(v) for v in np.quantile(reps, [alpha, 1 - alpha]))
    below, above = int(np.sum(reps <= 0)), int(np.sum(reps >= 0))
    p = min(1.0, 2 * (min(below, above) + 1) / (len(reps) + 1))
    return Delta(observed, low, high, p, seed_p)


def paired_bootstrap(
    strata: Mapping[str, PairedStratum], *, replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Stratified paired bootstrap: (observed delta, replicate deltas) per stratum, each stratum with
    its own generator seeded from (``seed``, its key). Means of strata (a target's average over its
    languages, the XTREME average over targets) are means of these arrays, replicate by replicate."""
    observed: dict[str, float] = {}
    draws: dict[str, np.ndarray] = {}
    for key, stratum in strata.items():
        rng = np.random.default_rng(stable_seed(seed, key))
        observed[key], draws[key] = stratum_replicates(stratum, replicates, rng)
    return observed, draws


# --------------------------------------------------------------------------- rank correlation


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the average of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(da @ da) * float(db @ db))
    return float(np.clip(da @ db / denom, -1.0, 1.0)) if denom else float("nan")


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return _pearson(_ranks(a), _ranks(b))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either variable corrected, as scipy's default); NaN if a side is
    constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    concordance = float(np.sum(da * db))
    pairs_a, pairs_b = float(np.sum(da != 0)), float(np.sum(db != 0))
    if pairs_a == 0 or pairs_b == 0:
        return float("nan")
    return concordance / math.sqrt(pairs_a * pairs_b)


@dataclass(frozen=True)
class CorrelationTest:
    """Spearman's rho and Kendall's tau of ``n`` pairs, each with a two-sided permutation p-value and a
    95% percentile bootstrap interval (NaN where undefined)."""

    n: int
    spearman: float
    spearman_p: float
    spearman_low: float
    spearman_high: float
    kendall: float
    kendall_p: float
    kendall_low: float
    kendall_high: float


def correlation_test(
    x: Sequence[float], y: Sequence[float], *, seed: int = 0, permutations: int = 2000, replicates: int = 1000
) -> CorrelationTest:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("x and y must be 1-D and the same length")
    n = len(a)
    nan = float("nan")
    if n < 3:
        return CorrelationTest(n, nan, nan, nan, nan, nan, nan, nan, nan)
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    for name, fn in (("spearman", spearman_rho), ("kendall", kendall_tau)):
        observed = fn(a, b)
        out[name] = observed
        out[f"{name}_p"] = _permutation_p(fn, a, b, observed, rng, permutations)
        out[f"{name}_low"], out[f"{name}_high"] = _bootstrap_interval(fn, a, b, rng, replicates)
    return CorrelationTest(n=n, **out)


def _permutation_p(fn, a: np.ndarray, b: np.ndarray, observed: float, rng, samples: int) -> float:
    if math.isnan(observed):
        return float("nan")
    tolerance = 1e-12
    if len(a) <= EXACT_PERMUTATIONS:
        values = [fn(a, b[list(p)]) for p in itertools.permutations(range(len(b)))]
        return float(np.mean([abs(v) >= abs(observed) - tolerance for v in values if not math.isnan(v)]))
    hits = sum(abs(fn(a, rng.permutation(b))) >= abs(observed) - tolerance for _ in range(samples))
    return (hits + 1) / (samples + 1)


def _bootstrap_interval(fn, a: np.ndarray, b: np.ndarray, rng, replicates: int) -> tuple[float, float]:
    values = []
    for _ in range(replicates):
        rows = rng.integers(0, len(a), size=len(a))
        value = fn(a[rows], b[rows])
        if not math.isnan(value):
            values.append(value)
    if len(values) < replicates // 2:  # mostly degenerate resamples (constant sides): no interval
        return float("nan"), float("nan")
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)
