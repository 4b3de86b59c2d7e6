"""Robustness evaluation: each language's evaluation examples perturbed (`config["perturbations"]`, the
sweep's `robustness` list) and scored beside the clean ones.

The evaluate phase writes `predictions/<lang>.<label>.jsonl` per perturbation and, in `metrics.json`:

- `perturbed[label][lang]`: the perturbed data's metrics (with `score`) and `gap`;
- `robustness_gap[label][lang]`: clean score minus perturbed score (positive: the perturbation hurts);
- `robustness_gap_average[label]`: the mean gap over the languages it applied to;
- `perturbations_skipped[label][lang]`: why a perturbation did not apply (code-mixing English, a
  language without a dictionary, a token-count-changing perturbation of a tagging task).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from xstilts.augment.examples import Example, SpecLike, label, perturb_for_evaluation
from xstilts.tasks import TaskDef


class Robustness:
    """Perturbed variants of a task's evaluation data, and what they scored."""

    def __init__(self, task: TaskDef, specs: Sequence[SpecLike] | None, data: dict[str, Any]):
        self.task, self.data = task, data
        self.specs = {label(spec): spec for spec in specs or ()}
        self.perturbed: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.specs}
        self.skipped: dict[str, dict[str, str]] = {}

    def __bool__(self) -> bool:
        return bool(self.specs)

    @property
    def labels(self) -> list[str]:
        return list(self.specs)

    def perturb(self, name: str, lang: str, examples: Sequence[Example]) -> list[Example] | None:
        """`lang` examples perturbed by perturbation `name`, or None (and the reason kept) if it does not
        apply to them."""
        perturbed, why = perturb_for_evaluation(self.task, examples, self.specs[name], self.data, lang)
        if perturbed is None:
            self.skipped.setdefault(name, {})[lang] = str(why)
        return perturbed

    def variants(self, lang: str, examples: Sequence[Example]) -> Iterator[tuple[str, list[Example]]]:
        for name in self.specs:
            perturbed = self.perturb(name, lang, examples)
            if perturbed is not None:
                yield name, perturbed

    def record(self, name: str, lang: str, metrics: dict[str, Any], clean_score: float) -> None:
        self.perturbed[name][lang] = {**metrics, "gap": clean_score - metrics["score"]}

    def summary(self) -> dict[str, Any]:
        """The metrics.json keys (none when the phase has no perturbations)."""
        if not self.specs:
            return {}
        gaps = {name: {lang: m["gap"] for lang, m in found.items()} for name, found in self.perturbed.items()}
        averages = {name: sum(g.values()) / len(g) if g else None for name, g in gaps.items()}
        return {
            "perturbed": self.perturbed,
            "robustness_gap": gaps,
            "robustness_gap_average": averages,
            "perturbations_skipped": self.skipped,
        }
