"""Adversarial code-mixing: the greedy search picks the substitutions that lower the gold probability
most, within its budget; robustness perturbations with several seeds; least squares with intervals."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.analysis.regression import ols, slope
from xstilts.evaluate.adversarial_mixing import adversarial_code_mixing, substitutions
from xstilts.evaluate.robustness import Robustness, base_label, expand_seeds
from xstilts.tasks import get_task

DICTIONARY = {"hund": {"en": ["dog"]}, "katze": {"en": ["cat"]}, "groß": {"en": ["big"]}}
HARM = {
    "dog": 0.3,
    "cat": 0.1,
    "big": 0.05,
}  # how much each English word lowers the toy model's gold probability


def toy_scorer(calls: list[int]):
    def score(examples):
        calls.append(len(examples))
        probability = np.array([1.0 - sum(HARM.get(w.strip(".").lower(), 0) for w in e["text_a"].split())
                                for e in examples])  # fmt: skip
        return probability, probability > 0.5

    return score


def test_the_search_takes_the_most_harmful_substitution_first_and_keeps_the_budget() -> None:
    task = get_task("pawsx")
    example = {"text_a": "der Hund und die Katze sind groß .", "text_b": "", "label": 1}
    assert {o[2] for o in substitutions(example, DICTIONARY)} == {"dog", "cat", "big"}
    calls: list[int] = []
    (one,), stats = adversarial_code_mixing(task, [example], DICTIONARY, toy_scorer(calls), budget=1)
    assert one["text_a"] == "der Dog und die Katze sind groß ." and stats["substitutions"] == 1
    (two,), _ = adversarial_code_mixing(task, [example], DICTIONARY, toy_scorer([]), budget=2)
    assert two["text_a"] == "der Dog und die Cat sind groß ."
    # each substitution lowers it and the prediction (right above 0.5) never flips: all three are made
    (three,), stats = adversarial_code_mixing(task, [example], DICTIONARY, toy_scorer([]), budget=5)
    assert three["text_a"] == "der Dog und die Cat sind big ." and stats["substitutions"] == 3
    (limited,), _ = adversarial_code_mixing(
        task, [example], DICTIONARY, toy_scorer([]), budget=1, candidates=1
    )
    assert limited != example and limited["label"] == 1, (
        "one candidate tried: some substitution, not the search"
    )
    with pytest.raises(ValueError, match="classification"):
        adversarial_code_mixing(get_task("squad"), [], DICTIONARY, toy_scorer([]))


def test_several_perturbation_seeds_are_several_labels_of_one_perturbation() -> None:
    spec = {"name": "char_noise", "rate": 0.1, "seeds": [3, 4]}
    specs = expand_seeds([spec, {"name": "word_perturb", "rate": 0.2, "seed": 7}])
    assert list(specs) == ["char_noise-0.1@seed3", "char_noise-0.1@seed4", "word_perturb-0.2"]
    assert (
        specs["char_noise-0.1@seed4"]["seed"] == 4 and base_label("char_noise-0.1@seed4") == "char_noise-0.1"
    )
    robustness = Robustness(get_task("pawsx"), [spec], {"source": "fixtures"})
    examples = [{"text_a": "the big dog chases the cat in paris", "text_b": "a cat", "label": 0}] * 3
    first, second = (robustness.perturb(name, "de", examples) for name in robustness.labels)
    assert first != second, "each seed its own noise"
    robustness.record("char_noise-0.1@seed3", "de", {"score": 70.0}, 80.0)
    robustness.record("char_noise-0.1@seed4", "de", {"score": 60.0}, 80.0)
    seeded = robustness.summary()["robustness_seeds"]["char_noise-0.1"]["de"]
    assert seeded["gaps"] == [10.0, 20.0] and seeded["mean"] == 15.0 and seeded["relative"] == [0.125, 0.25]
    adversarial = Robustness(get_task("pawsx"), [{"name": "code_mixed_adversarial", "dictionary": "x"}], {})
    assert adversarial.perturb("code_mixed_adversarial-b3", "de", examples) is None
    assert "classification model" in adversarial.skipped["code_mixed_adversarial-b3"]["de"]


def test_least_squares_matches_numpy_and_the_textbook_interval() -> None:
    rng = np.random.default_rng(1)
    x = np.arange(10.0)
    z = rng.normal(size=10)
    y = 2.0 - 0.5 * x + 0.3 * z + rng.normal(scale=0.1, size=10)
    fit = ols({"x": x, "z": z}, y)
    design = np.column_stack([np.ones(10), x, z])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    assert [c.estimate for c in fit.coefficients] == pytest.approx(expected)
    residual = y - design @ expected
    se = np.sqrt(np.diag(residual @ residual / 7 * np.linalg.inv(design.T @ design)))
    coefficient = fit.coefficient("x")
    assert coefficient.se == pytest.approx(se[1])
    assert coefficient.t_high - coefficient.estimate == pytest.approx(2.364624 * se[1], rel=1e-5)  # t(7)
    assert coefficient.boot_low < -0.5 < coefficient.boot_high
    trend = slope([0, 1, 1, 2], [9, 6, 7, 3])
    assert trend.estimate == pytest.approx(-3.0) and trend.t_low < -3.0 < trend.t_high
    assert np.isnan(slope([0, 1], [1, 2]).se), "no residual degrees of freedom"
