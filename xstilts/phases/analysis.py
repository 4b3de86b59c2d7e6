"""The domain-alignment analysis phase: how close each intermediate dataset is to each target dataset.

Texts are seeded random samples (`seed`) of up to `max_examples` examples, never the first rows (SQuAD
is ordered by article). Each intermediate task's English training text is compared with each target's

- English training text (`reference: train`; targets without training data, the retrieval tasks, use
  their English evaluation side), and
- evaluation text in each of the sweep's languages for the target (`reference: eval`, `language`),

by
- `vocabulary_overlap`: Jaccard index of the two sub-word vocabularies (the encoder's tokenizer);
- `weighted_vocabulary_overlap`: the same on relative frequencies (Ruzicka);
- `js_divergence`: Jensen-Shannon divergence (base 2) of the sub-word distributions;
- `embedding_cosine`: cosine of the two datasets' mean sentence embeddings, mean-pooled over the
  non-padding tokens of the encoder's retrieval layer (`xstilts.evaluate.predict.embed`).

Where examples are paired, `cka` is the linear CKA of their embeddings: a target's parallel evaluation
sets (the same examples translated: XNLI, PAWS-X, XQuAD) in English and the language, or the two sides
of a bitext task's pairs (Tatoeba, BUCC). It describes the encoder's cross-lingual alignment of the
target's language, the same for every intermediate task.

Pairs whose intermediate and target data come from one corpus (MNLI and XNLI, SQuAD and XQuAD or MLQA)
are flagged `same_corpus` (and left out with `same_corpus: exclude`): their closeness is by
construction. `sizes` gives each intermediate task's training-set size, for the report's partial
correlation controlling for it. `metrics.json` holds one row per comparison under `pairs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.load import count_examples, load_examples, load_training_stages
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


# Tasks built on one corpus: their alignment is high by construction (XNLI extends MultiNLI's
# collection to other languages; XQuAD and MLQA are SQuAD-style over Wikipedia, XQuAD from SQuAD's dev set).
CORPUS_FAMILIES = {"mnli": "multinli", "xnli": "multinli", "squad": "squad", "xquad": "squad",
                   "mlqa": "squad"}  # fmt: skip
PARALLEL_EVALUATION = frozenset({"xnli", "pawsx", "xquad"})  # evaluation sets aligned by position


def same_corpus(intermediate: str, target: str) -> bool:
    family = CORPUS_FAMILIES.get(intermediate)
    return family is not None and family == CORPUS_FAMILIES.get(target)


def english_texts(task: TaskDef, data: dict[str, Any], limit: int, seed: int = 0) -> list[str]:
    """Up to `limit` English texts of a task, a seeded random sample: its training data (the last stage
    of a staged task), or for retrieval tasks the English side of the evaluation data."""
    if task.training_sources():
        examples = load_training_stages(task, data, limit, sample_seed=seed)[-1]
    else:
        langs = list(task.languages)
        if data.get("source") == "fixtures":
            langs = fixture_languages(task, langs)
        lang = "en" if "en" in langs else langs[0]  # bitext: the English side of the first language
        examples = load_examples(task, "evaluate", data, lang, limit=limit, sample_seed=seed)
    texts = [example_text(task, e) for e in examples[:limit]]
    return [t for t in texts if t.strip()]


def evaluation_texts(
    task: TaskDef, data: dict[str, Any], lang: str, limit: int, seed: int = 0
) -> tuple[list[str], list[str] | None]:
    """A seeded random sample of `lang` evaluation texts (the non-English side of bitext), and for bitext
    the English side of the same pairs (None otherwise)."""
    examples = load_examples(task, "evaluate", data, lang, limit=limit, sample_seed=seed)[:limit]
    if task.format is Format.RETRIEVAL and examples and "source" in examples[0]:
        kept = [e for e in examples if str(e.get("source", "")).strip() and str(e.get("target", "")).strip()]
        return [str(e["source"]) for e in kept], [str(e["target"]) for e in kept]
    texts = [example_text(task, e) for e in examples]
    return [t for t in texts if t.strip()], None


def run(ctx: PhaseContext) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.analysis.alignment import alignment_measures, linear_cka
    from xstilts.data.features import retrieval
    from xstilts.evaluate.predict import embed
    from xstilts.modeling.model import load_encoder
    from xstilts.phases.evaluate import retrieval_layer

    config = ctx.config
    data, limit, seed = config.data, int(config.max_examples), config.seed or 0
    exclude = config.same_corpus == "exclude"
    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, config.retrieval_layer)

    def encode(texts: list[str]) -> tuple[list[str], np.ndarray]:
        tokens = [" ".join(tokenizer.tokenize(t)) for t in texts]
        return tokens, embed(
            encoder, retrieval(tokenizer, texts, EMBED_MAX_LENGTH), tokenizer.pad_token_id, layer
        )

    tokens: dict[str, list[str]] = {}  # task -> its texts as space-joined sub-words
    embeddings: dict[str, np.ndarray] = {}
    for name in dict.fromkeys([*config.intermediate_tasks, *config.targets]):
        tokens[name], embeddings[name] = encode(english_texts(get_task(name), data, limit, seed))
        ctx.progress.event("data", task=name, examples=len(tokens[name]))

    evaluation: dict[tuple[str, str], tuple[list[str], np.ndarray, float | None]] = {}
    for target in config.targets:
        task = get_task(target)
        english = None
        for lang in (config.languages or {}).get(target, []):
            texts, other_side = evaluation_texts(task, data, lang, limit, seed)
            if not texts:
                continue
            lang_tokens, lang_embeddings = encode(texts)
            cka = None
            if other_side is not None:
                cka = linear_cka(lang_embeddings, encode(other_side)[1]) if len(texts) > 1 else None
            elif target in PARALLEL_EVALUATION and lang != "en":
                if english is None:
                    english = encode(evaluation_texts(task, data, "en", limit, seed)[0])[1]
                cka = linear_cka(lang_embeddings, english) if len(english) == len(lang_embeddings) else None
            evaluation[(target, lang)] = (lang_tokens, lang_embeddings, cka)
            ctx.progress.event("data", task=target, language=lang, examples=len(texts), cka=cka)

    pairs = []
    for intermediate in config.intermediate_tasks:
        for target in config.targets:
            flagged = same_corpus(intermediate, target)
            if flagged and exclude:
                continue
            common = {"intermediate": intermediate, "target": target, "same_corpus": flagged}
            measures = alignment_measures(
                tokens[intermediate], tokens[target], str.split, embeddings[intermediate], embeddings[target]
            )
            pairs.append({**common, "reference": "train", "language": "en", **measures})
            ctx.progress.event("aligned", intermediate=intermediate, target=target, **measures)
            for (name, lang), (lang_tokens, lang_embeddings, cka) in evaluation.items():
                if name != target:
                    continue
                measures = alignment_measures(
                    tokens[intermediate], lang_tokens, str.split, embeddings[intermediate], lang_embeddings
                )
                pairs.append({**common, "reference": "eval", "language": lang, **measures, "cka": cka})
    sizes = {}
    for name in config.intermediate_tasks:
        task = get_task(name)
        sizes[name] = count_examples(task, data) if task.training_sources() else None
    return {
        "task": config.task,
        "layer": layer,
        "seed": seed,
        "examples": {name: len(texts) for name, texts in tokens.items()},
        "sizes": sizes,
        "pairs": pairs,
    }
