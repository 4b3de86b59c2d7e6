"""Robustness evaluation: each language's evaluation examples perturbed (`config["perturbations"]`, the
sweep's `robustness` list) and scored beside the clean ones.

The evaluate phase writes `predictions/<lang>.<label>.jsonl` per perturbation and, in `metrics.json`:

- `perturbed[label][lang]`: the perturbed data's metrics (with `score`) and `gap`;
- `robustness_gap[label][lang]`: clean score minus perturbed score (positive: the perturbation hurts);
- `robustness_gap_average[label]`: the mean gap over the languages it applied to;
- `perturbations_skipped[label][lang]`: why a perturbation did not apply (code-mixing English, a
  language without a dictionary, a token-count-changing perturbation of a tagging task);
- `robustness_seeds[label][lang]`: with several perturbation seeds (`seeds`), the gap under each seed
  (each seed is also its own `<label>@seed<s>` above), their mean and the relative gap (gap / clean);
- `adversarial_search[label][lang]`: what the adversarial code-mixing search did (substitutions made,
  examples changed, forward passes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from xstilts.augment.dictionaries import into_english
from xstilts.augment.examples import Example, SpecLike, label, perturb_for_evaluation
from xstilts.tasks import TaskDef

SEED_MARK = "@seed"
ADVERSARIAL = "code_mixed_adversarial"
# (examples, dictionary, spec) -> (the searched examples, the search's statistics)
Searcher = Callable[[Sequence[Example], Any, SpecLike], tuple[list[Example], dict[str, Any]]]


def base_label(name: str) -> str:
    """`char_noise-0.1` for `char_noise-0.1@seed2` (one perturbation seed of several)."""
    return name.split(SEED_MARK, 1)[0]


def expand_seeds(specs: Sequence[SpecLike] | None) -> dict[str, SpecLike]:
    """label -> spec, a spec with several `seeds` once per seed (`<label>@seed<s>`, with that seed)."""
    out: dict[str, SpecLike] = {}
    for spec in specs or ():
        seeds = spec.get("seeds")
        if seeds and len(seeds) > 1:
            for seed in seeds:
                out[f"{label(spec)}{SEED_MARK}{seed}"] = {**spec, "seed": int(seed)}
        else:
            out[label(spec)] = {**spec, "seed": int(seeds[0])} if seeds else spec
    return out


class Robustness:
    """Perturbed variants of a task's evaluation data, and what they scored. `searcher` runs the
    adversarial code-mixing search against the phase's model (None: the phase has no model to search)."""

    def __init__(
        self,
        task: TaskDef,
        specs: Sequence[SpecLike] | None,
        data: dict[str, Any],
        searcher: Searcher | None = None,
    ):
        self.task, self.data, self.searcher = task, data, searcher
        self.specs = expand_seeds(specs)
        self.perturbed: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.specs}
        self.skipped: dict[str, dict[str, str]] = {}
        self.searched: dict[str, dict[str, dict[str, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self.specs)

    @property
    def labels(self) -> list[str]:
        return list(self.specs)

    def perturb(self, name: str, lang: str, examples: Sequence[Example]) -> list[Example] | None:
        """`lang` examples perturbed by perturbation `name`, or None (and the reason kept) if it does not
        apply to them."""
        spec = self.specs[name]
        if spec["name"] == ADVERSARIAL:
            perturbed, why = self._search(name, spec, lang, examples)
        else:
            perturbed, why = perturb_for_evaluation(self.task, examples, spec, self.data, lang)
        if perturbed is None:
            self.skipped.setdefault(name, {})[lang] = str(why)
        return perturbed

    def _search(
        self, name: str, spec: SpecLike, lang: str, examples: Sequence[Example]
    ) -> tuple[list[Example] | None, str | None]:
        from xstilts.evaluate.adversarial_mixing import SEARCHABLE

        if self.searcher is None or self.task.format not in SEARCHABLE:
            return None, "the adversarial search needs a classification model"
        if lang == "en":
            return None, "no code-mixing of English text with English"
        dictionary = into_english(spec["dictionary"], self.data, lang)
        if dictionary is None:
            return None, f"no dictionary for {lang} ({spec['dictionary'].replace('{lang}', lang)})"
        searched, stats = self.searcher(examples, dictionary, spec)
        self.searched.setdefault(name, {})[lang] = stats
        return searched, None

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
        out: dict[str, Any] = {
            "perturbed": self.perturbed,
            "robustness_gap": gaps,
            "robustness_gap_average": averages,
            "perturbations_skipped": self.skipped,
        }
        seeded: dict[str, dict[str, dict[str, Any]]] = {}
        for name, found in self.perturbed.items():
            if SEED_MARK not in name:
                continue
            for lang, metrics in found.items():
                entry = seeded.setdefault(base_label(name), {}).setdefault(lang, {"gaps": [], "relative": []})
                clean = metrics["score"] + metrics["gap"]
                entry["gaps"].append(metrics["gap"])
                entry["relative"].append(metrics["gap"] / clean if clean else None)
        for per_lang in seeded.values():
            for entry in per_lang.values():
                entry["mean"] = sum(entry["gaps"]) / len(entry["gaps"])
        if seeded:
            out["robustness_seeds"] = seeded
        if self.searched:
            out["adversarial_search"] = self.searched
        return out
