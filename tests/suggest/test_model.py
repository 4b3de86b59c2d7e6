"""The ranking maths of `xstilts suggest`: ridge fit, intervals, NDCG@3, Spearman and the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.suggest.model import GainModel, expected_scores, ndcg_at, spearman
from xstilts.suggest.observe import Gain
from xstilts.suggest.rank import REGRESSION, SIMILARITY, evaluate, rank


def test_ndcg_spearman_and_random_expectations():
    gains = {"a": 3.0, "b": 1.0, "c": 0.0, "d": -1.0}
    assert ndcg_at(["a", "b", "c", "d"], gains) == pytest.approx(1.0)
    assert ndcg_at(["d", "c", "b", "a"], gains) < 0.5
    assert spearman([4, 3, 2, 1], [3.0, 1.0, 0.0, -1.0]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [3.0, 1.0, 0.0, -1.0]) == pytest.approx(-1.0)
    random_ndcg, random_rho = expected_scores(gains)
    assert 0 < random_ndcg < 1 and random_rho == pytest.approx(0.0, abs=1e-9)
    first_ndcg, first_rho = expected_scores(gains, first="a")  # the best task always first
    assert first_ndcg > random_ndcg and first_rho > 0


def test_ridge_recovers_a_linear_relation_with_an_interval():
    rng = np.random.default_rng(0)
    rows = [
        {"x": float(v), "noise": float(n)}
        for v, n in zip(rng.normal(size=40), rng.normal(size=40), strict=True)
    ]
    gains = [2.0 * r["x"] + 0.05 * rng.normal() for r in rows]
    model = GainModel(rows, gains)
    prediction = model.predict({"x": 1.0, "noise": 0.0})
    assert prediction.value == pytest.approx(2.0, abs=0.2)
    assert prediction.low < prediction.value < prediction.high
    assert prediction.contributions[0][0] == "x"  # the top feature is the one that matters
    assert model.predict({"x": None, "noise": None}).value == pytest.approx(np.mean(gains))


def _embedding(vector):
    v = np.asarray(vector, dtype=float)
    return {"text": v, "task": v}


def test_rank_uses_results_on_other_targets_and_falls_back_to_similarity():
    embeddings = {
        "good": _embedding([1, 0, 0]),
        "bad": _embedding([0, 1, 0]),
        "t1": _embedding([1, 0.1, 0]),
        "t2": _embedding([0.9, 0.2, 0]),
        "t3": _embedding([1, 0.3, 0]),
    }
    method, ranked = rank("t1", ["good", "bad"], [], embeddings, {})
    assert method == SIMILARITY and [c.task for c in ranked] == ["good", "bad"]
    assert ranked[0].predicted_gain is None

    gains = [
        Gain("e", "good", "t2", 5.0),
        Gain("e", "bad", "t2", -1.0),
        Gain("e", "good", "t3", 4.0),
        Gain("e", "bad", "t3", 0.0),
        Gain("e", "good", "t1", 6.0),
        Gain("e", "bad", "t1", -2.0),
    ]
    method, ranked = rank("t1", ["bad", "good"], gains, embeddings, {})
    assert method == REGRESSION and [c.task for c in ranked] == ["good", "bad"]
    assert ranked[0].predicted_gain > ranked[1].predicted_gain and ranked[0].observed == 6.0
    assert ranked[0].why  # the top features

    evaluation = evaluate(gains, embeddings, {})
    assert [r["target"] for r in evaluation.rows] == ["t1", "t2", "t3"]
    assert all(r["ndcg3"] == pytest.approx(1.0) for r in evaluation.rows)
    assert all(r["predicted_best"] == r["observed_best"] == "good" for r in evaluation.rows)
    assert evaluation.mean("random_ndcg3") < 1.0
