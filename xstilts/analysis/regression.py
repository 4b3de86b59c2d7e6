"""Least-squares regression with intervals, numpy only: the trend tests and the difficulty regression of
the report. Each coefficient gets the classical 95% t-interval (from the residual variance) and a 95%
percentile interval from a pairs bootstrap (rows resampled with replacement, seeded), which does not
assume equal error variance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.evaluate.seeds import t_quantile_975

BOOTSTRAP_REPLICATES = 1000


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    se: float  # NaN without residual degrees of freedom
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float


@dataclass(frozen=True)
class Fit:
    n: int
    r2: float
    coefficients: list[Coefficient]

    def coefficient(self, name: str) -> Coefficient:
        return next(c for c in self.coefficients if c.name == name)


def _solve(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coefficients


def ols(
    columns: dict[str, Sequence[float]],
    y: Sequence[float],
    *,
    intercept: bool = True,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> Fit:
    """y ~ [1 +] columns by least squares. A rank-deficient design (a constant column, fewer rows than
    coefficients) gives NaN standard errors and intervals for what it cannot identify."""
    names = (["intercept"] if intercept else []) + list(columns)
    target = np.asarray(y, dtype=float)
    parts = ([np.ones(len(target))] if intercept else []) + [
        np.asarray(v, dtype=float) for v in columns.values()
    ]
    design = np.column_stack(parts) if parts else np.zeros((len(target), 0))
    n, k = design.shape
    estimates = _solve(design, target) if n else np.full(k, np.nan)
    residuals = target - design @ estimates
    dof = n - k
    rank = np.linalg.matrix_rank(design) if n else 0
    se = np.full(k, np.nan)
    if dof > 0 and rank == k:
        sigma2 = float(residuals @ residuals) / dof
        se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    total = float(((target - target.mean()) ** 2).sum()) if n else 0.0
    r2 = 1 - float(residuals @ residuals) / total if total > 0 else float("nan")
    boot = np.full((0, k), np.nan)
    if n > k and rank == k:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(replicates):
            pick = rng.integers(0, n, n)
            if np.linalg.matrix_rank(design[pick]) == k:
                draws.append(_solve(design[pick], target[pick]))
        boot = np.array(draws) if draws else boot
    quantile = t_quantile_975(dof) if dof > 0 else math.nan
    coefficients = []
    for j, name in enumerate(names):
        low, high = np.percentile(boot[:, j], [2.5, 97.5]) if len(boot) else (math.nan, math.nan)
        value, error = float(estimates[j]), float(se[j])
        half = quantile * error
        coefficients.append(
            Coefficient(name, value, error, value - half, value + half, float(low), float(high))
        )
    return Fit(n=n, r2=r2, coefficients=coefficients)


def slope(x: Sequence[float], y: Sequence[float], seed: int = 0) -> Coefficient:
    """The least-squares slope of y on x with its intervals (a trend test: 0 outside the interval)."""
    return ols({"slope": x}, y, seed=seed).coefficient("slope")
