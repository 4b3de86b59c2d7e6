"""Robustness evaluation of retrieval targets: the non-English side perturbed (bitext sources, ranking
queries), predictions beside the clean ones, gaps per language, and code-mixing skipped for English."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest

from tests.conftest import example_config
from tests.phases.test_task_phases import MAX_LENGTH, quiet_progress
from xstilts.evaluate.robustness import Robustness
from xstilts.plan.configs import parse_config
from xstilts.tasks import get_task
from xstilts.tasks.registry import fixture_languages

SPECS = [
    {"name": "char_noise", "rate": 0.3, "seed": 0},
    {"name": "code_mixed", "rate": 1.0, "seed": 0, "dictionary": "fixtures:dictionaries/{lang}-en.txt"},
]


@pytest.mark.parametrize("name", ["tatoeba", "bucc", "lareqa"])
def test_retrieval_targets_are_evaluated_perturbed(name, data, tokenizer, encoder_factory, tmp_path):
    from xstilts.phases.evaluate import make_embedder, retrieval_scores

    task = get_task(name)
    languages = fixture_languages(task)
    config = example_config("evaluate", languages=languages, data=data, max_eval_examples=30)
    ctx = SimpleNamespace(config=parse_config("evaluate", config),
                          out=tmp_path, progress=quiet_progress(name))  # fmt: skip
    embed = make_embedder(encoder_factory(), tokenizer, layer=1, max_length=MAX_LENGTH)
    clean = retrieval_scores(ctx, task, embed)  # type: ignore[arg-type]
    robustness = Robustness(task, SPECS, data)
    for label in robustness.labels:
        scores = retrieval_scores(ctx, task, embed, partial(robustness.perturb, label), label)  # type: ignore[arg-type]
        for lang, metrics in scores.items():
            robustness.record(label, lang, metrics, clean[lang]["score"])
            assert (tmp_path / "predictions" / f"{lang}.{label}.jsonl").is_file()
    summary = robustness.summary()
    assert sorted(summary["robustness_gap"]["char_noise-0.3"]) == sorted(clean)
    mixed = summary["robustness_gap"]["code_mixed-1"]
    assert sorted(mixed) == sorted(lang for lang in clean if lang != "en")
    if "en" in clean:
        assert "en" in summary["perturbations_skipped"]["code_mixed-1"]
    for gaps in summary["robustness_gap"].values():
        assert all(-100.0 <= gap <= 100.0 for gap in gaps.values())
