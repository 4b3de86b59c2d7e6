"""Paired bootstrap intervals and p-values for the report's deltas vs baseline.

A delta compares an intermediate setting with the same encoder's baseline on the SAME evaluation
examples, seed by seed (a baseline phase that every seed shares pairs with each of them). Each language
of each target is a stratum; a replicate resamples its units (examples, questions, sentences, BUCC
source sentences) with replacement, the same draw for both systems and every seed, and recomputes both
scores from the per-example stats in the prediction files. A target's average, the zero-shot average
and the benchmark average are means of the stratum replicates, so they are resampled consistently.
With at least 3 paired seeds, a sign-flip permutation test over seeds is reported beside it.

Seeded (`REPORT_SEED` and each stratum's name), so the same results give the same report. numpy is
imported only when the report has per-example stats to resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from xstilts.plan.expand import BASELINE
from xstilts.report.collect import RunResult
from xstilts.report.model import Delta

__all__ = ["Delta", "RunSource", "Significance", "TargetDeltas"]


class RunSource(Protocol):
    """What the significance tests read from the report's grid (`xstilts.report.grid.Grid`): a cell's runs."""

    def runs(self, encoder: str, setting: str, target: str) -> list[RunResult]: ...


REPORT_SEED = 0
MIN_SEEDS_FOR_PERMUTATION = 3


@dataclass
class TargetDeltas:
    languages: dict[str, Delta]
    average: Delta
    zero_shot: Delta | None
    replicates: Any  # np.ndarray: the target average's bootstrap deltas
    observed: float
    seed_differences: dict[int, float]  # seed -> setting avg minus baseline avg


def _pairs(
    setting_runs: Sequence[RunResult], baseline_runs: Sequence[RunResult]
) -> list[tuple[RunResult, RunResult]]:
    """(setting run, baseline run) per seed; each setting seed once (seeds sharing a phase: one run)."""
    baseline = {run.seed: run for run in baseline_runs}
    shared = baseline_runs[0] if len({r.evaluate for r in baseline_runs}) == 1 else None
    pairs, seen = [], set()
    for run in sorted(setting_runs, key=lambda r: r.seed):
        partner = baseline.get(run.seed, shared)
        if partner is None or run.evaluate in seen:
            continue
        seen.add(run.evaluate)
        pairs.append((run, partner))
    return pairs


def _delta(observed: float, replicates: Any, seed_p: float | None = None) -> Delta:
    from xstilts.evaluate.statistics import estimate

    return estimate(observed, replicates, seed_p)


def _seed_p(differences: Sequence[float]) -> float | None:
    from xstilts.evaluate.statistics import sign_flip_test

    return sign_flip_test(differences) if len(differences) >= MIN_SEEDS_FOR_PERMUTATION else None


class Significance:
    """Bootstrap deltas of a grid, computed on demand and cached."""

    def __init__(self, grid: RunSource, replicates: int | None = None, seed: int = REPORT_SEED):
        self.grid = grid
        self.replicates = replicates  # None: statistics.BOOTSTRAP_REPLICATES (numpy only when resampling)
        self.seed = seed
        self._targets: dict[tuple[str, str, str], TargetDeltas | None] = {}

    def target(self, encoder: str, setting: str, target: str) -> TargetDeltas | None:
        key = (encoder, setting, target)
        if key not in self._targets:
            self._targets[key] = self._compute(encoder, setting, target)
        return self._targets[key]

    def _compute(self, encoder: str, setting: str, target: str) -> TargetDeltas | None:
        if setting == BASELINE:
            return None
        runs, base = self.grid.runs(encoder, setting, target), self.grid.runs(encoder, BASELINE, target)
        pairs = _pairs(runs, base) if runs and base else []
        langs = sorted({lang for run, _ in pairs for lang in run.scores})
        usable = pairs and all(
            set(run.examples) >= set(langs) and set(partner.examples) >= set(langs)
            and set(run.scores) == set(langs) == set(partner.scores)
            for run, partner in pairs
        )  # fmt: skip
        if not usable:
            return None
        from xstilts.evaluate.statistics import BOOTSTRAP_REPLICATES, align, paired_bootstrap

        try:
            strata = {
                f"{encoder}|{setting}|{target}|{lang}": align(
                    [run.examples[lang] for run, _ in pairs], [partner.examples[lang] for _, partner in pairs]
                )
                for lang in langs
            }
        except ValueError:  # not the same evaluation examples: no paired interval
            return None
        replicates = self.replicates or BOOTSTRAP_REPLICATES
        observed, draws = paired_bootstrap(strata, replicates=replicates, seed=self.seed)
        per_lang = {lang: (observed[k], draws[k]) for lang, k in zip(langs, strata, strict=True)}
        differences = {
            run.seed: sum(run.scores.values()) / len(run.scores)
            - sum(partner.scores.values()) / len(partner.scores)
            for run, partner in pairs
        }
        average_observed = sum(o for o, _ in per_lang.values()) / len(per_lang)
        average_draws = sum(d for _, d in per_lang.values()) / len(per_lang)
        zero = [lang for lang in langs if lang != "en"]
        zero_shot = None
        if zero and len(zero) < len(langs):
            zero_shot = _delta(
                sum(per_lang[lang][0] for lang in zero) / len(zero),
                sum(per_lang[lang][1] for lang in zero) / len(zero),
            )
        elif zero:
            zero_shot = _delta(average_observed, average_draws)
        return TargetDeltas(
            languages={lang: _delta(o, d) for lang, (o, d) in per_lang.items()},
            average=_delta(average_observed, average_draws, _seed_p(list(differences.values()))),
            zero_shot=zero_shot,
            replicates=average_draws,
            observed=average_observed,
            seed_differences=differences,
        )

    def combined(self, encoder: str, settings: dict[str, str]) -> Delta | None:
        """The mean over targets of each target's delta (target -> setting), e.g. the benchmark average
        of one setting, or of the best-per-target choices; None unless every target has an interval."""
        found = [self.target(encoder, setting, target) for target, setting in settings.items()]
        if not found or any(f is None for f in found):
            return None
        deltas = [f for f in found if f is not None]
        seeds = set.intersection(*(set(d.seed_differences) for d in deltas))
        differences = [sum(d.seed_differences[s] for d in deltas) / len(deltas) for s in sorted(seeds)]
        return _delta(
            sum(d.observed for d in deltas) / len(deltas),
            sum(d.replicates for d in deltas) / len(deltas),
            _seed_p(differences),
        )
