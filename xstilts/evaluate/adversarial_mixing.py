"""Adversarial code-mixing (in the spirit of PolyGloss / Bumblebee, Tan & Joty 2021): for each evaluation
example, a greedy search for the word substitutions (target-language words swapped for their English
dictionary translations) that lower the model's probability of the gold label most, within a budget.

Each step tries, for every example still searching, up to `candidates` substitutions it has not made
(positions and translations drawn with the spec's seed), scores them all in one batched forward pass,
and keeps the one that lowers the gold probability most; an example stops when no candidate lowers
it, when its prediction is wrong, or after `budget` substitutions. Classification formats only (one
label per example; text pairs); the random `code_mixed` perturbation covers the others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.augment.text import Dictionary, example_seed, match_case, split_affixes, split_whitespace
from xstilts.data.features import feature_length, featurize
from xstilts.tasks import Format, TaskDef

Example = dict[str, Any]
# examples -> per example: the probability of its gold label and whether the prediction is right
GoldScorer = Callable[[list[Example]], tuple[np.ndarray, np.ndarray]]
FIELDS = ("text_a", "text_b")
SEARCHABLE = frozenset({Format.CLASSIFICATION})


def substitutions(example: Example, dictionary: Dictionary) -> list[tuple[str, int, str]]:
    """Every (field, word index, English translation) the dictionary allows in the example."""
    found = []
    for field in FIELDS:
        text = example.get(field)
        if not text:
            continue
        words = [chunk for is_space, chunk in split_whitespace(text) if not is_space]
        for index, word in enumerate(words):
            _, core, _ = split_affixes(word)
            entry = dictionary.get(core) or dictionary.get(core.lower()) if core else None
            for translation in (entry or {}).get("en", ()):
                if translation and not any(c.isspace() for c in translation):
                    found.append((field, index, translation))
    return found


def substitute(example: Example, field: str, index: int, translation: str) -> Example:
    """The example with word `index` of `field` replaced (punctuation and case kept)."""
    runs = split_whitespace(example[field])
    position = -1
    out = []
    for is_space, chunk in runs:
        if not is_space:
            position += 1
            if position == index:
                prefix, core, suffix = split_affixes(chunk)
                chunk = prefix + match_case(translation, core) + suffix
        out.append(chunk)
    return {**example, field: "".join(out)}


def adversarial_code_mixing(
    task: TaskDef,
    examples: Sequence[Example],
    dictionary: Dictionary,
    scorer: GoldScorer,
    *,
    budget: int = 3,
    candidates: int = 16,
    seed: int = 0,
) -> tuple[list[Example], dict[str, Any]]:
    """The examples after the greedy search, and its statistics (substitutions made, model calls)."""
    if task.format not in SEARCHABLE:
        raise ValueError(f"adversarial code-mixing searches classification tasks, not {task.format.value}")
    current = [dict(e) for e in examples]
    options = [substitutions(e, dictionary) for e in current]
    made = [0] * len(current)
    probability, correct = scorer(current)
    active = [i for i in range(len(current)) if options[i] and correct[i]]
    calls, scored = 1, len(current)
    for _ in range(budget):
        trials: list[tuple[int, tuple[str, int, str]]] = []
        for i in active:
            rng = random.Random(
                example_seed(seed, str(examples[i].get("text_a", "")), "adversarial", str(made[i]))
            )
            pool = list(options[i])
            rng.shuffle(pool)
            trials += [(i, option) for option in pool[:candidates]]
        if not trials:
            break
        tried = [substitute(current[i], *option) for i, option in trials]
        trial_probability, trial_correct = scorer(tried)
        calls, scored = calls + 1, scored + len(tried)
        best: dict[int, int] = {}
        for k, (i, _) in enumerate(trials):
            if trial_probability[k] < probability[i] and (
                i not in best or trial_probability[k] < trial_probability[best[i]]
            ):
                best[i] = k
        for i, k in best.items():
            field, index, _ = trials[k][1]
            current[i] = tried[k]
            probability[i], correct[i] = trial_probability[k], trial_correct[k]
            options[i] = [o for o in options[i] if (o[0], o[1]) != (field, index)]
            made[i] += 1
        active = [i for i in best if options[i] and correct[i]]
    stats = {"substitutions": int(sum(made)), "examples_changed": int(sum(m > 0 for m in made)),
             "forward_passes": calls, "examples_scored": scored}  # fmt: skip
    return current, stats


def gold_scorer(model, task: TaskDef, tokenizer, max_length: int) -> GoldScorer:
    """Scores examples with the model: softmax probability of the gold label, and argmax == gold."""
    import torch

    from xstilts.data.batching import collate, sorted_batches

    device = next(model.parameters()).device

    def score(items: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        features = featurize(task, tokenizer, items, max_length)
        probability = np.zeros(len(features))
        correct = np.zeros(len(features), dtype=bool)
        model.eval()
        for batch_idx in sorted_batches([feature_length(f) for f in features], 64):
            rows = [{k: v for k, v in features[i].items() if k != "labels"} for i in batch_idx]
            batch = {k: v.to(device) for k, v in collate(rows, tokenizer.pad_token_id).items()}
            with torch.no_grad():
                logits, _ = model(task.name, batch)
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, i in enumerate(batch_idx):
                gold = int(features[i]["labels"])
                probability[i], correct[i] = probs[row, gold], int(probs[row].argmax()) == gold
        return probability, correct

    return score


def search_params(spec: Mapping[str, Any]) -> dict[str, int]:
    return {"budget": int(spec.get("budget", 3)), "candidates": int(spec.get("candidates", 16)),
            "seed": int(spec.get("seed", 0))}  # fmt: skip
