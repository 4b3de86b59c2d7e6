"""The domain-alignment analysis phase: how close each intermediate dataset is to each target dataset.

For every (intermediate task, target task) pair, over up to `max_examples` English training examples of
each (targets without training data, the retrieval tasks, use their English evaluation side):

- `vocabulary_overlap`: Jaccard index of the two sub-word vocabularies (the encoder's tokenizer);
- `weighted_vocabulary_overlap`: the same on relative frequencies (Ruzicka);
- `js_divergence`: Jensen-Shannon divergence (base 2) of the sub-word distributions;
- `embedding_cosine`: cosine of the two datasets' mean sentence embeddings, mean-pooled over the
  non-padding tokens of the encoder's retrieval layer (`xstilts.evaluate.predict.embed`).

`metrics.json` holds one row per pair under `pairs`; the report joins them to the transfer gain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.load import load_examples, load_training_stages
from xstilts.phases.context import PhaseContext
from xstilts.tasks import Format, TaskDef, get_task
from xstilts.tasks.registry import fixture_languages

EMBED_MAX_LENGTH = 128  # tokens per text for the mean embeddings


def example_text(task: TaskDef, example: dict[str, Any]) -> str:
    """The text of one canonical example, fields joined by spaces (English side for bitext)."""
    if task.format is Format.TAGGING:
        return " ".join(example["tokens"])
    if task.format is Format.MULTIPLE_CHOICE:
        return " ".join([example["context"], *example["choices"]])
    if task.format is Format.SPAN_QA:
        return f"{example['question']} {example['context']}"
    if task.format is Format.RETRIEVAL:
        return str(example["text"] if "text" in example else example["target"])
    return " ".join(t for t in (example["text_a"], example.get("text_b")) if t)


def english_texts(task: TaskDef, data: dict[str, Any], limit: int) -> list[str]:
    """Up to `limit` English texts of a task: its training data (the last stage of a staged task), or
    for retrieval tasks the English side of the evaluation data."""
    if task.training_sources():
        examples = load_training_stages(task, data, limit)[-1]
    else:
        langs = list(task.languages)
        if data.get("source") == "fixtures":
            langs = fixture_languages(task, langs)
        lang = "en" if "en" in langs else langs[0]  # bitext: the English side of the first language
        examples = load_examples(task, "evaluate", data, lang, limit=limit)
    texts = [example_text(task, e) for e in examples[:limit]]
    return [t for t in texts if t.strip()]


def run(ctx: PhaseContext) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.analysis.alignment import alignment_measures
    from xstilts.data.features import retrieval
    from xstilts.evaluate.predict import embed
    from xstilts.modeling.model import load_encoder
    from xstilts.phases.evaluate import retrieval_layer

    config = ctx.config
    data, limit = config["data"], int(config["max_examples"])
    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, config.get("retrieval_layer"))

    tokens: dict[str, list[str]] = {}  # task -> its texts as space-joined sub-words
    embeddings: dict[str, np.ndarray] = {}
    for name in dict.fromkeys([*config["intermediate_tasks"], *config["targets"]]):
        texts = english_texts(get_task(name), data, limit)
        tokens[name] = [" ".join(tokenizer.tokenize(t)) for t in texts]
        features = retrieval(tokenizer, texts, EMBED_MAX_LENGTH)
        embeddings[name] = embed(encoder, features, tokenizer.pad_token_id, layer)
        ctx.progress.event("data", task=name, examples=len(texts))

    pairs = []
    for intermediate in config["intermediate_tasks"]:
        for target in config["targets"]:
            measures = alignment_measures(
                tokens[intermediate], tokens[target], str.split, embeddings[intermediate], embeddings[target]
            )
            pairs.append({"intermediate": intermediate, "target": target, **measures})
            ctx.progress.event("aligned", intermediate=intermediate, target=target, **measures)
    return {
        "task": config.get("task", "domain-alignment"),
        "layer": layer,
        "examples": {name: len(texts) for name, texts in tokens.items()},
        "pairs": pairs,
    }
