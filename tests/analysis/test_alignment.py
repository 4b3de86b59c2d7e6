"""Domain-alignment measures and rank correlations, against hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xstilts.analysis.alignment import (
    alignment_measures,
    alignment_report,
    embedding_cosine,
    js_divergence,
    pearson,
    rankdata,
    spearman,
    token_counts,
    vocabulary_overlap,
    weighted_vocabulary_overlap,
)


def test_token_counts_use_the_given_tokenizer() -> None:
    assert token_counts(["a b a", "b c"]) == {"a": 2, "b": 2, "c": 1}
    assert token_counts(["ab"], tokenize=list) == {"a": 1, "b": 1}


def test_vocabulary_overlap_is_jaccard_of_types() -> None:
    # {a, b, c} vs {b, c, d}: 2 shared of 4
    assert vocabulary_overlap(["a b c"], ["b c d"]) == 0.5
    assert vocabulary_overlap(["a a a b"], ["b"]) == 0.5  # counts do not matter
    assert vocabulary_overlap(["x y"], ["y x"]) == 1.0
    assert vocabulary_overlap(["x"], ["y"]) == 0.0


def test_weighted_overlap_uses_relative_frequencies() -> None:
    # p = {a: 3/4, b: 1/4}, q = {b: 1}: sum min = 1/4, sum max = 3/4 + 1 = 7/4
    assert weighted_vocabulary_overlap(["a a a b"], ["b"]) == pytest.approx(1 / 7)
    # the same distribution at ten times the size is a perfect match
    assert weighted_vocabulary_overlap(["a b"], ["a b"] * 10) == pytest.approx(1.0)


def test_js_divergence_bounds_and_a_hand_worked_value() -> None:
    assert js_divergence(["a b"], ["c d"]) == pytest.approx(1.0)
    assert js_divergence(["a b a"], ["a a b"]) == pytest.approx(0.0)
    # p = (1/2, 1/2, 0), q = (1/2, 0, 1/2), m = (1/2, 1/4, 1/4):
    # KL(p||m) = 1/2 log2(1) + 1/2 log2(2) = 1/2, likewise KL(q||m); JSD = 1/2
    assert js_divergence(["a b"], ["a c"]) == pytest.approx(0.5)
    assert js_divergence(["a b"], ["a c"]) == js_divergence(["a c"], ["a b"])


def test_empty_texts_are_rejected() -> None:
    with pytest.raises(ValueError, match="texts_b contain no tokens"):
        js_divergence(["a"], ["", "   "])
    with pytest.raises(ValueError, match="texts_a"):
        vocabulary_overlap([], ["a"])


def test_embedding_cosine_of_means() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])  # mean (0.5, 0.5)
    b = np.array([[2.0, 2.0]])
    assert embedding_cosine(a, b) == pytest.approx(1.0)
    assert embedding_cosine(np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])) == pytest.approx(0.0)
    assert embedding_cosine(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="same D"):
        embedding_cosine(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="zero vector"):
        embedding_cosine(np.array([[1.0, 0.0], [-1.0, 0.0]]), b)


def test_rankdata_averages_ties() -> None:
    assert rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rankdata([3, 1, 2]).tolist() == [3.0, 1.0, 2.0]
    assert rankdata([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]


def test_pearson_hand_worked() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x - mean = (-1, 0, 1), y - mean = (-1/3, -1/3, 2/3): r = 1 / sqrt(2 * 2/3) = sqrt(3)/2
    assert pearson([1, 2, 3], [1, 1, 2]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_spearman_with_ties() -> None:
    assert spearman([1, 2, 3, 4], [10, 100, 1000, 10000]) == pytest.approx(1.0)
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4): deviations (-1.5, 0, 0, 1.5) and (-1.5, -.5, .5, 1.5)
    # sum xy = 4.5, sum x^2 = 4.5, sum y^2 = 5: rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)


def test_correlations_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least two"):
        pearson([1], [1])
    with pytest.raises(ValueError, match="finite"):
        pearson([1, float("nan")], [1, 2])


def test_alignment_measures_for_one_pair() -> None:
    measures = alignment_measures(["a b"], ["a c"])
    assert measures == {
        "vocabulary_overlap": pytest.approx(1 / 3),
        "weighted_vocabulary_overlap": pytest.approx(1 / 3),  # min sum 1/2, max sum 3/2
        "js_divergence": pytest.approx(0.5),
    }
    with_emb = alignment_measures(["a"], ["a"], emb_a=np.ones((1, 2)), emb_b=np.ones((3, 2)))
    assert with_emb["embedding_cosine"] == pytest.approx(1.0)


PAIRS = [
    {"intermediate": "mnli", "target": "xnli", "js_divergence": 0.2, "vocabulary_overlap": 0.6, "gain": 2.0},
    {"intermediate": "squad", "target": "xnli", "js_divergence": 0.5, "vocabulary_overlap": 0.3, "gain": 0.5},
    {"intermediate": "ccg", "target": "xnli", "js_divergence": 0.9, "vocabulary_overlap": 0.1, "gain": -1.0},
    {"intermediate": "mnli", "target": "xquad", "js_divergence": 0.6, "vocabulary_overlap": 0.2, "gain": 0.1},
    {
        "intermediate": "squad",
        "target": "xquad",
        "js_divergence": 0.1,
        "vocabulary_overlap": 0.7,
        "gain": 3.0,
    },
]


def test_alignment_report_correlates_each_measure_with_gain() -> None:
    rows = alignment_report(PAIRS)
    assert [(r["measure"], r["group"], r["n"]) for r in rows] == [
        ("js_divergence", "*", 5),
        ("vocabulary_overlap", "*", 5),
    ]
    by_measure = {r["measure"]: r for r in rows}
    # gain ranks (4, 3, 1, 2, 5); JSD ranks (2, 3, 5, 4, 1) are their exact reverse
    assert by_measure["js_divergence"]["spearman"] == pytest.approx(-1.0)
    assert by_measure["vocabulary_overlap"]["spearman"] == pytest.approx(1.0)
    assert by_measure["js_divergence"]["pearson"] == pytest.approx(
        pearson([p["js_divergence"] for p in PAIRS], [p["gain"] for p in PAIRS])
    )


def test_alignment_report_groups_and_skips_missing_values() -> None:
    pairs = [*PAIRS, {"intermediate": "qqp", "target": "xquad", "gain": 1.0}]  # no measures
    rows = alignment_report(pairs, measures=["js_divergence"], group_by="target")
    assert [(r["group"], r["n"]) for r in rows] == [("*", 5), ("xnli", 3), ("xquad", 2)]
    assert rows[1]["spearman"] == pytest.approx(-1.0)
    lonely = alignment_report(PAIRS[:1], measures=["js_divergence"])
    assert lonely[0]["n"] == 1 and math.isnan(lonely[0]["spearman"])


def test_linear_cka_matches_its_definition_and_invariances() -> None:
    from xstilts.analysis.alignment import linear_cka

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, 3.0 * x @ rotation + 1.0) == pytest.approx(1.0)
    y = rng.normal(size=(30, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    hsic = lambda a, b: np.trace(a @ a.T @ b @ b.T)  # noqa: E731 (the kernel form of the definition)
    expected = hsic(xc, yc) / np.sqrt(hsic(xc, xc) * hsic(yc, yc))
    assert linear_cka(x, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="paired"):
        linear_cka(x, y[:10])


def test_partial_correlation_removes_what_the_control_explains() -> None:
    from xstilts.analysis.alignment import partial_correlation, partial_report, pearson, rankdata

    size = np.arange(1.0, 13.0)
    noise = 4 * np.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.2, -0.1, 0.3, -0.4, 0.1, 0.2, -0.3])
    measure = size + noise  # both follow the size: correlated, but not once it is held fixed
    gain = 2 * size + noise[::-1]
    assert pearson(rankdata(measure), rankdata(gain)) > 0.7
    ranks = [rankdata(v) for v in (measure, gain, size)]
    resid = [r - np.polyval(np.polyfit(ranks[2], r, 1), ranks[2]) for r in ranks[:2]]
    assert partial_correlation(measure, gain, size) == pytest.approx(pearson(*resid))
    assert abs(partial_correlation(measure, gain, size)) < 0.9
    pairs = [{"m": m, "gain": g, "train_size": s} for m, g, s in zip(measure, gain, size, strict=True)]
    (row,) = partial_report(pairs, ["m"])
    assert row["n"] == 12 and row["low"] <= row["partial"] <= row["high"]
    (few,) = partial_report(pairs[:3], ["m"])
    assert math.isnan(few["partial"])


def test_same_corpus_pairs_are_named() -> None:
    from xstilts.phases.analysis import same_corpus

    assert same_corpus("mnli", "xnli") and same_corpus("squad", "xquad") and same_corpus("squad", "mlqa")
    assert not same_corpus("mnli", "pawsx") and not same_corpus("anli-r1", "xnli")
