"""Ranking candidate intermediate tasks for a target, and the leave-one-target-out evaluation.

Features of a pair (intermediate i, target t): the cosine of their TextEmbs and of their TaskEmbs, the
domain-alignment measures where an analysis phase computed them, and `prior_gain`, the mean observed
gain of i on the other targets (the "MNLI helps most things" effect). With at least MIN_ROWS observed
gains on other targets, a ridge regression from these features to gain predicts each candidate's gain
with an interval; with fewer, candidates are ranked by embedding similarity alone (and it says so)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

import numpy as np

from xstilts.suggest.embeddings import cosine
from xstilts.suggest.model import MIN_ROWS, GainModel, Row, expected_scores, ndcg_at, spearman
from xstilts.suggest.observe import Gain

Embeddings = dict[str, dict[str, np.ndarray | None]]  # task -> {"text": ..., "task": ...}
REGRESSION, SIMILARITY = "regression", "similarity"
REFERENCE = "mnli"  # the "always MNLI" baseline of the evaluation


@dataclass
class Candidate:
    task: str
    score: float  # the ranking key: predicted gain (regression) or similarity
    predicted_gain: float | None
    low: float | None
    high: float | None
    features: Row
    why: list[tuple[str, float]]
    observed: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "score": round(self.score, 4),
            "predicted_gain": _round(self.predicted_gain),
            "interval": [_round(self.low), _round(self.high)] if self.low is not None else None,
            "observed_gain": _round(self.observed),
            "features": {k: _round(v) for k, v in self.features.items()},
            "why": [{"feature": k, "contribution": round(v, 4)} for k, v in self.why],
        }


@dataclass
class Evaluation:
    """Leave-one-target-out: per held-out target, NDCG@3 and Spearman of the predicted ranking against
    the observed gains, beside a random ranking's expectation and "always MNLI"'s."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def mean(self, key: str) -> float | None:
        values = [r[key] for r in self.rows if r.get(key) is not None]
        return mean(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        keys = ("ndcg3", "spearman", "random_ndcg3", "random_spearman", "mnli_ndcg3", "mnli_spearman")
        return {"targets": self.rows, "mean": {k: _round(self.mean(k)) for k in keys}}


@dataclass
class Suggestion:
    target: str
    encoder: str
    method: str
    note: str
    candidates: list[Candidate]
    evaluation: Evaluation
    observed_gains: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "encoder": self.encoder,
            "method": self.method,
            "note": self.note,
            "observed_gains": self.observed_gains,
            "candidates": [c.as_dict() for c in self.candidates],
            "evaluation": self.evaluation.as_dict(),
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def pair_features(
    intermediate: str,
    target: str,
    embeddings: Embeddings,
    alignment: dict[tuple[str, str], dict[str, float]],
    prior: float | None,
) -> Row:
    a, b = embeddings.get(intermediate, {}), embeddings.get(target, {})
    row: Row = {
        "text_cosine": cosine(a.get("text"), b.get("text")),
        "task_cosine": cosine(a.get("task"), b.get("task")),
        "prior_gain": prior,
    }
    row.update(alignment.get((intermediate, target), {}))
    return row


def similarity(row: Row) -> float:
    """Mean of the available embedding cosines (TaskEmb and TextEmb); 0 when neither is known."""
    values = [v for v in (row.get("task_cosine"), row.get("text_cosine")) if v is not None]
    return float(mean(values)) if values else 0.0


def _prior(gains: list[Gain], intermediate: str, excluded: set[str]) -> float | None:
    values = [g.gain for g in gains if g.intermediate == intermediate and g.target not in excluded]
    return mean(values) if values else None


def rank(
    target: str,
    pool: list[str],
    gains: list[Gain],
    embeddings: Embeddings,
    alignment: dict[tuple[str, str], dict[str, float]],
) -> tuple[str, list[Candidate]]:
    """Candidates of `pool` for `target`, best first, from the gains observed on OTHER targets."""
    training = [g for g in gains if g.target != target]
    rows = [
        pair_features(
            g.intermediate, g.target, embeddings, alignment, _prior(training, g.intermediate, {g.target})
        )
        for g in training
    ]
    observed = {g.intermediate: g.gain for g in gains if g.target == target}
    model = GainModel(rows, [g.gain for g in training]) if len(training) >= MIN_ROWS else None
    candidates = []
    for task in pool:
        row = pair_features(task, target, embeddings, alignment, _prior(training, task, {target}))
        if model is None:
            row = {k: v for k, v in row.items() if k != "prior_gain"}
            sim = similarity(row)
            why = sorted(((k, float(v)) for k, v in row.items() if v is not None), key=lambda kv: -abs(kv[1]))
            candidates.append(Candidate(task, sim, None, None, None, row, why[:3], observed.get(task)))
            continue
        prediction = model.predict(row)
        candidates.append(
            Candidate(task, prediction.value, prediction.value, prediction.low, prediction.high, row,
                      prediction.contributions[:3], observed.get(task))
        )  # fmt: skip
    candidates.sort(key=lambda c: (-c.score, c.task))
    return (REGRESSION if model is not None else SIMILARITY), candidates


def evaluate(
    gains: list[Gain], embeddings: Embeddings, alignment: dict[tuple[str, str], dict[str, float]]
) -> Evaluation:
    """Leave-one-target-out over the targets with at least two observed candidates."""
    by_target: dict[str, dict[str, float]] = defaultdict(dict)
    for g in gains:
        by_target[g.target][g.intermediate] = g.gain
    evaluation = Evaluation()
    for target, observed in sorted(by_target.items()):
        if len(observed) < 2:
            continue
        method, candidates = rank(target, sorted(observed), gains, embeddings, alignment)
        order = [c.task for c in candidates]
        names = sorted(observed)
        scores = {c.task: c.score for c in candidates}
        random_ndcg, random_rho = expected_scores(observed)
        row: dict[str, Any] = {
            "target": target,
            "candidates": len(observed),
            "method": method,
            "ndcg3": round(ndcg_at(order, observed), 4),
            "spearman": round(spearman([scores[t] for t in names], [observed[t] for t in names]), 4),
            "random_ndcg3": round(random_ndcg, 4),
            "random_spearman": round(random_rho, 4),
            "mnli_ndcg3": None,
            "mnli_spearman": None,
            "predicted_best": order[0],
            "observed_best": max(names, key=lambda t: observed[t]),
        }
        if REFERENCE in observed:
            mnli_ndcg, mnli_rho = expected_scores(observed, first=REFERENCE)
            row["mnli_ndcg3"], row["mnli_spearman"] = round(mnli_ndcg, 4), round(mnli_rho, 4)
        evaluation.rows.append(row)
    return evaluation


def suggest(
    target: str,
    encoder: str,
    pool: list[str],
    gains: list[Gain],
    embeddings: Embeddings,
    alignment: dict[tuple[str, str], dict[str, float]],
) -> Suggestion:
    method, candidates = rank(target, pool, gains, embeddings, alignment)
    others = sum(g.target != target for g in gains)
    if method == SIMILARITY:
        note = (
            f"only {others} finished result(s) on other targets in the store (a regression needs "
            f"{MIN_ROWS}): "
            "ranked by embedding similarity alone (TaskEmb and TextEmb cosine); no predicted gains"
        )
    else:
        note = (
            f"ridge regression on {others} observed gain(s) on other targets; intervals: 95% from "
            "leave-one-out residuals"
        )
    return Suggestion(
        target, encoder, method, note, candidates, evaluate(gains, embeddings, alignment), len(gains)
    )
