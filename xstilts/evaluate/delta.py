"""A delta vs baseline with its uncertainty: what the statistics compute and the report shows. Kept
free of numpy so the report's table model imports without it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delta:
    """A delta vs baseline: `value`, its 95% paired-bootstrap interval [`low`, `high`], the bootstrap
    p-value and, with >= 3 seeds, the permutation p-value over seeds (`seed_p`)."""

    value: float
    low: float
    high: float
    p: float
    seed_p: float | None = None

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0."""
        return self.low > 0 or self.high < 0
