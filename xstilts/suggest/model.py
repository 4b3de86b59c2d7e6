"""The prediction: a ridge regression from pair features to observed transfer gain, with leave-one-out
residuals for its interval, and the ranking metrics of its honest evaluation (NDCG@3, Spearman)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Row = dict[str, float | None]
RIDGE = 1.0  # on standardised features
Z95 = 1.96
MIN_ROWS = 3  # observed gains needed before the regression is fitted


@dataclass
class Prediction:
    value: float
    low: float | None
    high: float | None
    contributions: list[tuple[str, float]]  # feature -> its share of (value - mean gain), largest first


class GainModel:
    """Ridge regression on standardised features; a feature missing in a row takes its training mean."""

    def __init__(self, rows: Sequence[Row], gains: Sequence[float]):
        names = sorted({k for r in rows for k, v in r.items() if v is not None})
        columns = {n: [r.get(n) for r in rows] for n in names}
        self.mean = {n: float(np.mean([v for v in c if v is not None])) for n, c in columns.items()}
        matrix = np.array([[_or(r.get(n), self.mean[n]) for n in names] for r in rows], dtype=float)
        std = matrix.std(axis=0) if len(rows) else np.zeros(len(names))
        keep = [j for j in range(len(names)) if std[j] > 1e-12]
        self.names = [names[j] for j in keep]
        self.std = {names[j]: float(std[j]) for j in keep}
        x = (matrix[:, keep] - [self.mean[n] for n in self.names]) / [self.std[n] for n in self.names]
        y = np.asarray(gains, dtype=float)
        self.intercept = float(y.mean())
        a = x.T @ x + RIDGE * np.eye(len(self.names))
        self.coef = np.linalg.solve(a, x.T @ (y - self.intercept)) if self.names else np.zeros(0)
        # Leave-one-out residuals of the ridge fit (hat-matrix shortcut), for the interval.
        hat = x @ np.linalg.solve(a, x.T) if self.names else np.zeros((len(y), len(y)))
        leverage = np.diag(hat) + 1.0 / len(y)
        residual = y - (self.intercept + x @ self.coef)
        loo = residual / np.clip(1.0 - leverage, 1e-6, None)
        self.sigma = float(np.sqrt(np.mean(loo**2))) if len(y) > 1 else None

    def predict(self, row: Row) -> Prediction:
        z = np.array([(_or(row.get(n), self.mean[n]) - self.mean[n]) / self.std[n] for n in self.names])
        parts = z * self.coef if self.names else np.zeros(0)
        value = self.intercept + float(parts.sum())
        contributions = sorted(zip(self.names, map(float, parts), strict=True), key=lambda c: -abs(c[1]))
        if self.sigma is None:
            return Prediction(value, None, None, contributions)
        return Prediction(value, value - Z95 * self.sigma, value + Z95 * self.sigma, contributions)


def _or(value: float | None, default: float) -> float:
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


# ---- ranking metrics ---------------------------------------------------------------------------------


def ndcg_at(order: Sequence[str], gains: dict[str, float], k: int = 3) -> float:
    """NDCG@k of a ranking, with relevance = gain minus the smallest gain among the candidates (so the
    worst candidate is worth 0 and negative gains are comparable)."""
    floor = min(gains.values())
    rel = {t: g - floor for t, g in gains.items()}
    dcg = sum(rel[t] / math.log2(i + 2) for i, t in enumerate(order[:k]))
    ideal = sorted(rel.values(), reverse=True)
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal[:k]))
    return dcg / idcg if idcg > 0 else 1.0


def _ranks(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    order = array.argsort(kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(len(array), dtype=float)
    for value in np.unique(array):  # ties share their mean rank
        tied = array == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(predicted: Sequence[float], observed: Sequence[float]) -> float:
    a, b = _ranks(predicted), _ranks(observed)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _orders(items: list[str], first: str | None, samples: int = 2000, seed: int = 0):
    """Every ordering of `items` (with `first` fixed at the top when given), or seeded samples of them."""
    rest = [t for t in items if t != first]
    head = [first] if first in items else []
    if len(rest) <= 6:
        for perm in itertools.permutations(rest):
            yield head + list(perm)
        return
    rng = random.Random(seed)
    for _ in range(samples):
        yield head + rng.sample(rest, len(rest))


def expected_scores(gains: dict[str, float], first: str | None = None) -> tuple[float, float]:
    """(NDCG@3, Spearman) of a random ranking, averaged over orderings; with `first`, that task always
    ranked first and the rest at random (the "always MNLI" baseline)."""
    ndcg, rho, count = 0.0, 0.0, 0
    names = sorted(gains)
    for order in _orders(names, first):
        position = {t: len(order) - i for i, t in enumerate(order)}
        ndcg += ndcg_at(order, gains)
        rho += spearman([position[t] for t in names], [gains[t] for t in names])
        count += 1
    return ndcg / count, rho / count
