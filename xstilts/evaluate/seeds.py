"""Mean, standard deviation and the 95% t-interval of a cell's values over seeds. Standard library only, so
report tables need no numpy for them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.13145, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.04523, 2.042272,
)  # fmt: skip
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (a table to 30 degrees of freedom, a Cornish-Fisher expansion beyond,
    within 1e-5 of the exact value)."""
    if df < 1:
        raise ValueError("need at least 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )  # fmt: skip


@dataclass(frozen=True)
class SeedSummary:
    """Mean over ``n`` seeds, sample standard deviation and the 95% t-interval of the mean (n >= 2)."""

    mean: float
    std: float | None
    n: int
    ci_low: float | None
    ci_high: float | None


def seed_summary(values: Sequence[float]) -> SeedSummary:
    if not values:
        raise ValueError("no values to summarise")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return SeedSummary(mean, None, n, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return SeedSummary(mean, std, n, mean - half, mean + half)
