"""The report's statistics on constructed cases with known answers (scipy, installed with seqeval's
scikit-learn, is used only as an oracle here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from xstilts.evaluate.statistics import (
    ExampleStats,
    align,
    correlation_test,
    estimate,
    kendall_tau,
    paired_bootstrap,
    score_from_sums,
    seed_summary,
    sign_flip_test,
    spearman_rho,
    stratum_replicates,
    t_quantile_975,
)


def _accuracy_stats(
    correct: list[int], units: int | None = None, ids: list[str] | None = None
) -> ExampleStats:
    records = [{"unit": ids[i] if ids else i, "stats": {"score": c}} for i, c in enumerate(correct)]
    return ExampleStats.from_records("mean", records, units)


def test_paired_bootstrap_of_a_known_difference() -> None:
    # 100 examples: A is right and B wrong on 30 of them, they agree on the other 70. The observed delta
    # is 30 points, and a resample's delta is 100 * (# of those 30 drawn) / 100: Binomial(100, 0.3), whose
    # 2.5% / 97.5% quantiles are 21 / 39 and sd sqrt(21) = 4.58.
    a = _accuracy_stats([1] * 30 + [1] * 50 + [0] * 20)
    b = _accuracy_stats([0] * 30 + [1] * 50 + [0] * 20)
    observed, reps = stratum_replicates(align([a], [b]), 4000, np.random.default_rng(1))
    assert observed == pytest.approx(30.0)
    low, high = scipy_stats.binom.ppf([0.025, 0.975], 100, 0.3)
    found = estimate(observed, reps)
    assert abs(found.low - low) <= 1 and abs(found.high - high) <= 1
    assert reps.mean() == pytest.approx(30.0, abs=0.3) and reps.std() == pytest.approx(
        math.sqrt(21), abs=0.25
    )
    assert found.significant and found.p == pytest.approx(2 / 4001)


def test_identical_systems_have_a_zero_interval_and_p_one() -> None:
    a = _accuracy_stats([1, 0, 1, 1, 0])
    observed, reps = stratum_replicates(align([a, a], [a, a]), 500, np.random.default_rng(0))
    found = estimate(observed, reps)
    assert (found.value, found.low, found.high, found.p, found.significant) == (0.0, 0.0, 0.0, 1.0, False)


def test_unlisted_zero_units_resample_like_listed_zeros() -> None:
    # BUCC lists only source sentences with a pair; the others count (units) with all-zero stats.
    kind = "f1"
    listed = [{"unit": f"s{i}", "stats": {"correct": i % 2, "predicted": 1, "gold": 1}} for i in range(20)]
    other = [{"unit": f"s{i}", "stats": {"correct": 1, "predicted": 1, "gold": 1}} for i in range(20)]
    zeros = [{"unit": f"z{i}", "stats": {"correct": 0, "predicted": 0, "gold": 0}} for i in range(80)]
    short = align(
        [ExampleStats.from_records(kind, other, 100)], [ExampleStats.from_records(kind, listed, 100)]
    )
    full = align(
        [ExampleStats.from_records(kind, other + zeros)], [ExampleStats.from_records(kind, listed + zeros)]
    )
    assert short.listed == 20 and full.listed == 100 and short.units == full.units == 100
    o1, r1 = stratum_replicates(short, 4000, np.random.default_rng(2))
    o2, r2 = stratum_replicates(full, 4000, np.random.default_rng(3))
    assert o1 == o2 == pytest.approx(50.0)  # F1 100 vs 50
    assert r1.mean() == pytest.approx(r2.mean(), abs=0.5) and r1.std() == pytest.approx(r2.std(), rel=0.1)


def test_bootstrap_is_seeded_and_strata_are_independent() -> None:
    a, b = _accuracy_stats([1, 1, 0, 1, 0, 1]), _accuracy_stats([0, 1, 0, 0, 0, 1])
    strata = {"de": align([a], [b]), "es": align([a], [b])}
    first = paired_bootstrap(strata, replicates=200, seed=7)
    again = paired_bootstrap(strata, replicates=200, seed=7)
    assert all(np.array_equal(first[1][k], again[1][k]) for k in strata)
    assert not np.array_equal(first[1]["de"], first[1]["es"])  # each stratum draws its own examples
    other = paired_bootstrap(strata, replicates=200, seed=8)
    assert not np.array_equal(first[1]["de"], other[1]["de"])


def test_align_pairs_units_by_id_and_refuses_different_data() -> None:
    a = _accuracy_stats([1, 0], ids=["x", "y"])
    b = _accuracy_stats([1, 1], ids=["y", "x"])  # same units, other order
    stratum = align([a], [b])
    assert stratum.a[0][:, 0].tolist() == [1, 0] and stratum.b[0][:, 0].tolist() == [1, 1]
    with pytest.raises(ValueError):
        align([a], [_accuracy_stats([1, 0, 1])])


def test_scores_from_sums_for_every_kind() -> None:
    assert score_from_sums("mean", np.array([3.0]), 4) == 75.0
    assert score_from_sums("qa", np.array([1.0, 1.5]), 2) == pytest.approx(62.5)
    assert score_from_sums("f1", np.array([1.0, 2.0, 2.0]), 9) == pytest.approx(50.0)
    assert score_from_sums("f1", np.array([0.0, 0.0, 2.0]), 9) == 0.0
    assert score_from_sums("ratio", np.array([3.0, 4.0]), 1) == 75.0


def test_seed_summary_t_interval() -> None:
    found = seed_summary([1.0, 2.0, 3.0])
    assert (found.mean, found.std, found.n) == (2.0, 1.0, 3)
    half = 4.302653 / math.sqrt(3)
    assert found.ci_low == pytest.approx(2 - half) and found.ci_high == pytest.approx(2 + half)
    assert seed_summary([5.0]).ci_low is None
    for df in [*range(1, 40), 50, 75, 100, 300, 1000]:
        assert t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-5), df


def test_sign_flip_permutation_test_over_seeds() -> None:
    assert sign_flip_test([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)  # 3 seeds: the smallest possible p
    assert sign_flip_test([1.0, -1.0]) == 1.0
    assert sign_flip_test([0.5] * 5) == pytest.approx(2 / 32)
    # |2 -1 1 3| = 7 with all signs as observed; negating magnitudes summing to S gives |7 - 2S| >= 5 only for
    # S <= 1 ({}, {1}, {1'}) or S >= 6 (their complements): 6 of 16
    assert sign_flip_test([2.0, -1.0, 1.0, 3.0]) == pytest.approx(6 / 16)


def test_rank_correlations_match_scipy_with_ties() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        x, y = rng.integers(0, 5, size=12).astype(float), rng.integers(0, 5, size=12).astype(float)
        assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic)
        assert spearman_rho(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_correlation_test_exact_permutations_and_intervals() -> None:
    # a perfect rank order of 5 pairs: |rho| = 1 for 2 of the 120 orderings -> p = 1/60
    found = correlation_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10], seed=0)
    assert found.n == 5 and found.spearman == pytest.approx(1.0) and found.kendall == pytest.approx(1.0)
    assert found.spearman_p == pytest.approx(1 / 60) and found.kendall_p == pytest.approx(1 / 60)
    assert found.spearman_low <= 1.0 and found.spearman_high == pytest.approx(1.0)
    again = correlation_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10], seed=0)
    assert again == found
    assert math.isnan(correlation_test([1, 2], [1, 2]).spearman_p)  # fewer than 3 pairs
    rng = np.random.default_rng(9)
    x = rng.normal(size=40)
    noisy = correlation_test(x, x + rng.normal(scale=0.3, size=40), seed=1)
    assert noisy.spearman_p < 0.01 and 0 < noisy.spearman_low < noisy.spearman < noisy.spearman_high
