"""Zero-shot evaluation in every language of a target task (one process, all languages), and retrieval
evaluation straight from an encoder-bearing phase, with XTREME's protocols:

- Tatoeba: direction `en-xx` by default (the foreign sentences are indexed and each English sentence
  queries them, as xtreme's `similarity_search(x=foreign, y=english)`), `xx-en` on request; accuracy;
- BUCC: ratio-margin mining over every sentence of the original BUCC 2018 files, sentences repeated on a
  side dropped (`duplicates: drop`), threshold tuned on the sample split and reused on the training
  (test) split; with only the hub's gold-pair configs the F1 is `bucc_f1_gold_only`;
- ranked retrieval, mAP@20 (LAReQA: every language's questions against the answer sentences of all
  evaluated languages; Mewsli-X: mentions against the shared entity descriptions); a query whose gold is
  not in the pool scores 0 (counted, not dropped), and the ranking in the prediction files is the one
  the metric scored.

metrics.json names the protocol (`protocol`), and every prediction record carries its `unit` and `stats`
for the report's bootstrap. Embeddings: mean over non-padding tokens of the configurable hidden layer
(`retrieval_layer`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from xstilts.data.cache import cached_features
from xstilts.data.features import featurize, retrieval
from xstilts.data.load import load_examples, resolve_labels
from xstilts.errors import ConfigError
from xstilts.evaluate.robustness import ADVERSARIAL, Robustness, Searcher
from xstilts.phases.context import PhaseContext
from xstilts.plan.configs import EvaluateConfig
from xstilts.tasks import Format, TaskDef, get_task

# Hidden-states index for retrieval embeddings by encoder depth (docs/defaults.md): XLM-R Large 14,
# mBERT 8. Other depths use the same relative position (about 60% of the way up).
RETRIEVAL_LAYER_BY_DEPTH = {24: 14, 12: 8}
MAP_AT = 20  # LAReQA and Mewsli-X report mAP@20
SCORE_BLOCK = 2**25  # query x candidate scores held at once (the Mewsli-X pool has ~1M entities)

Embed = Callable[[list[str]], np.ndarray]


def retrieval_layer(num_layers: int, configured: int | None) -> int:
    if configured is not None:
        return min(configured, num_layers)
    return RETRIEVAL_LAYER_BY_DEPTH.get(num_layers, max(1, round(num_layers * 0.6)))


def _write_predictions(ctx: PhaseContext, lang: str, records: list[dict[str, Any]]) -> None:
    path = ctx.out / "predictions" / f"{lang}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _searcher(model, task: TaskDef, tokenizer, max_length: int) -> Searcher:
    """The adversarial code-mixing search against this phase's model (xstilts.evaluate.adversarial_mixing)."""

    def search(examples, dictionary, spec):
        from xstilts.evaluate.adversarial_mixing import adversarial_code_mixing, gold_scorer, search_params

        scorer = gold_scorer(model, task, tokenizer, max_length)
        return adversarial_code_mixing(task, list(examples), dictionary, scorer, **search_params(spec))

    return search


def _summary(
    task: TaskDef, per_lang: dict[str, dict[str, float]], protocol: dict[str, Any] | None = None
) -> dict[str, Any]:
    scores = {lang: m["score"] for lang, m in per_lang.items()}
    non_en = [s for lang, s in scores.items() if lang != "en"]
    return {
        "task": task.name,
        "metric": task.metric,
        **({"protocol": protocol} if protocol else {}),
        "languages": per_lang,
        "average": sum(scores.values()) / len(scores) if scores else None,
        "average_zero_shot": sum(non_en) / len(non_en) if non_en else None,
    }


def run_trained(ctx: PhaseContext, task: TaskDef) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.evaluate.predict import predict
    from xstilts.evaluate.scoring import score
    from xstilts.modeling.model import MultiTaskModel

    config = ctx.config
    task = resolve_labels(task, config.data)
    model_dir = ctx.upstream_model("model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The target phase may have trained another task's head on the same data (MLQA uses XQuAD's).
    trained_as = getattr(ctx.upstream("model").config, "task", task.name)
    if trained_as == task.name:
        model = MultiTaskModel.load(model_dir, [task])
    else:
        model = MultiTaskModel.load(model_dir, [resolve_labels(get_task(trained_as), config.data)])
        model.rename_head(trained_as, task.name)
    robustness = Robustness(
        task,
        config.perturbations,
        config.data,
        _searcher(model, task, tokenizer, config.max_length),
    )

    def evaluate(
        examples: list[dict[str, Any]], lang: str, perturbation: str | None = None
    ) -> tuple[dict[str, Any], list[dict]]:
        # Every evaluate phase of a target reads the same data with the same tokenizer: tokenize once per
        # store (the key covers the tokenizer's files, data, limit, lengths and the perturbation's spec).
        # Not the adversarial search's examples: they depend on the model.
        searched = perturbation is not None and robustness.specs[perturbation]["name"] == ADVERSARIAL
        features = cached_features(
            None if searched else ctx.store,
            model_dir,
            task.name,
            "evaluate",
            lang,
            config.data,
            config.max_length,
            config.doc_stride,
            lambda: featurize(task, tokenizer, examples, config.max_length, config.doc_stride),
            limit=config.max_eval_examples,
            extra={"perturbation": robustness.specs[perturbation]} if perturbation else None,
            on_event=ctx.progress.event,
        )
        outputs = predict(model, task, features, tokenizer.pad_token_id)
        return score(task, examples, features, outputs, lang)

    per_lang = {}
    for lang in config.languages:
        examples = load_examples(task, "evaluate", config.data, lang, limit=config.max_eval_examples)
        metrics, records = evaluate(examples, lang)
        per_lang[lang] = metrics
        _write_predictions(ctx, lang, records)
        ctx.progress.event(
            "evaluated", task=task.name, language=lang, examples=len(examples), score=metrics["score"]
        )
        for name, perturbed in robustness.variants(lang, examples):
            perturbed_metrics, records = evaluate(perturbed, lang, name)
            robustness.record(name, lang, perturbed_metrics, metrics["score"])
            _write_predictions(ctx, f"{lang}.{name}", records)
            ctx.progress.event("evaluated", task=task.name, language=lang, perturbation=name,
                               score=perturbed_metrics["score"])  # fmt: skip
    return {**_summary(task, per_lang), **robustness.summary()}


# ---- retrieval straight from an encoder ------------------------------------------------------------


def make_embedder(encoder, tokenizer, layer: int, max_length: int, chunk: int = 8192) -> Embed:
    """texts -> [n, hidden] mean-pooled embeddings of hidden_states[layer] (not normalised), tokenized and
    embedded `chunk` texts at a time (the Mewsli-X entity pool has about a million descriptions)."""
    from xstilts.evaluate.predict import embed

    def run(texts: list[str]) -> np.ndarray:
        parts = [np.zeros((0, encoder.config.hidden_size), dtype=np.float32)]
        for lo in range(0, len(texts), chunk):
            features = retrieval(tokenizer, texts[lo : lo + chunk], max_length)
            parts.append(embed(encoder, features, tokenizer.pad_token_id, layer))
        return np.concatenate(parts)

    return run


def evaluate_tatoeba(
    examples: list[dict[str, Any]], embed_texts: Embed, direction: str = "en-xx"
) -> tuple[dict[str, float], list[dict]]:
    """Tatoeba on gold-aligned rows (row i's foreign sentence translates its English one). `en-xx`: each
    English sentence retrieves among the foreign ones (XTREME); `xx-en`: the reverse. Ties go to the
    lowest row, as faiss's flat index scan keeps the first of equal distances."""
    from xstilts.evaluate import metrics as m

    foreign = embed_texts([e["source"] for e in examples])
    english = embed_texts([e["target"] for e in examples])
    predicted = m.tatoeba_predictions(foreign, english, direction)  # type: ignore[arg-type]
    accuracy = m.accuracy(predicted, list(range(len(examples))))
    query, answer = ("target", "source") if direction == "en-xx" else ("source", "target")
    records = [
        {"unit": i, "query": e[query], "prediction": examples[p][answer], "gold": e[answer],
         "stats": {"score": int(p == i)}}
        for i, (e, p) in enumerate(zip(examples, predicted, strict=True))
    ]  # fmt: skip
    return {"accuracy": accuracy, "score": accuracy, "units": len(examples)}, records


def _consistent_ids(pairs: list[tuple[str, str]]) -> bool:
    """Every id is present and names one text (an id may repeat: a sentence in two gold pairs)."""
    texts: dict[str, str] = {}
    return all(sid and texts.setdefault(sid, text) == text for sid, text in pairs)


def bitext_sides(
    examples: list[dict[str, Any]],
) -> tuple[dict[str, str], dict[str, str], set[tuple[str, str]]]:
    """(source id -> text, target id -> text, gold id pairs) of BUCC rows. Rows whose ids are missing or
    name different texts on a side (the hub's gold-only rows may carry language codes) get row-number
    ids."""
    usable_src = _consistent_ids([(e["source_id"], e["source"]) for e in examples if e["source"]])
    usable_tgt = _consistent_ids([(e["target_id"], e["target"]) for e in examples if e["target"]])
    src: dict[str, str] = {}
    tgt: dict[str, str] = {}
    gold: set[tuple[str, str]] = set()
    for row, e in enumerate(examples):
        sid = (e["source_id"] if usable_src else f"src-{row}") if e["source"] else ""
        tid = (e["target_id"] if usable_tgt else f"tgt-{row}") if e["target"] else ""
        if sid:
            src[sid] = e["source"]
        if tid:
            tgt[tid] = e["target"]
        if sid and tid:
            gold.add((sid, tid))
    return src, tgt, gold


def bucc_mine(
    examples: list[dict[str, Any]], embed_texts: Embed, duplicates: str = "drop", knn=None
) -> tuple[list, set[tuple[str, str]], int]:
    """Ratio-margin candidates (k=4 each way, duplicate texts share one row), the gold pairs and the
    number of source sentences."""
    from xstilts.evaluate import metrics as m

    src, tgt, gold = bitext_sides(examples)
    src_ids, tgt_ids = list(src), list(tgt)
    src_texts, tgt_texts = [src[i] for i in src_ids], [tgt[i] for i in tgt_ids]
    candidates = m.bucc_candidates(
        embed_texts(src_texts), embed_texts(tgt_texts), src_ids, tgt_ids, src_texts, tgt_texts, k=4,
        duplicates=duplicates, knn=knn,  # type: ignore[arg-type]
    )  # fmt: skip
    return candidates, gold, len(src_ids)


def accelerator_knn():
    """Exact kNN on the GPU when there is one (BUCC's sides have ~400k sentences), else None (numpy)."""
    import torch

    from xstilts.evaluate.knn import device_knn

    return device_knn(torch.device("cuda")) if torch.cuda.is_available() else None


def evaluate_bucc(
    dev: list[dict[str, Any]],
    test: list[dict[str, Any]],
    embed_texts: Embed,
    duplicates: str = "drop",
    knn=None,
) -> tuple[dict[str, float], list[dict]]:
    """Threshold tuned for F1 on the dev (sample) split, P/R/F1 on the test (training) split with it.

    Records: every extracted pair and every missed gold pair, keyed (`unit`) by its source sentence,
    with (correct, predicted, gold) counts; `units` counts the test split's source sentences."""
    from xstilts.evaluate import metrics as m

    dev_candidates, dev_gold, _ = bucc_mine(dev, embed_texts, duplicates, knn)
    threshold = m.bucc_optimize_threshold(dev_candidates, dev_gold)
    dev_metrics = m.bucc_scores(dev_candidates, dev_gold, threshold)
    test_candidates, test_gold, sources = bucc_mine(test, embed_texts, duplicates, knn)
    metrics = m.bucc_scores(test_candidates, test_gold, threshold)
    metrics.update(score=metrics["f1"], units=sources, dev_f1=dev_metrics["f1"])
    best = {(s, t): score for score, s, t in test_candidates}
    extracted = m.bucc_extracted(test_candidates, threshold)
    records = []
    for pair in sorted(extracted | test_gold, key=lambda p: (-best.get(p, float("-inf")), p)):
        found, is_gold = pair in extracted, pair in test_gold
        records.append({
            "unit": pair[0], "source_id": pair[0], "target_id": pair[1], "margin": best.get(pair),
            "gold": is_gold, "extracted": found,
            "stats": {"correct": int(found and is_gold), "predicted": int(found), "gold": int(is_gold)},
        })  # fmt: skip
    return metrics, records


def _merge_candidates(
    records: list[dict[str, Any]], pool: dict[tuple[str, str], dict[str, Any]], lang: str
) -> None:
    """Add a language's candidates to the pool keyed by (language, id); a candidate seen again (another
    question on the same paragraph) gains that question's groups."""
    for record in records:
        key = (lang, record["id"])
        if key in pool:
            pool[key]["groups"] = sorted(set(pool[key]["groups"]) | set(record["groups"]))
        else:
            pool[key] = {"text": record["text"], "groups": list(record["groups"])}


def ranked_retrieval(
    queries: dict[str, list[dict[str, Any]]], pool: dict[tuple[str, str], dict[str, Any]], embed_texts: Embed
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    """mAP@20 per query language against the whole pool (cosine similarity). A query whose group has no
    candidate in the pool scores 0 and is counted (`queries_without_gold`), as Mewsli-X's official
    evaluation scores a gold entity it never retrieves."""
    keys = list(pool)
    by_group: dict[str, set[int]] = {}
    for index, key in enumerate(keys):
        for group in pool[key]["groups"]:
            by_group.setdefault(group, set()).add(index)
    candidates = _unit(embed_texts([pool[k]["text"] for k in keys]))
    ids = [cid if lang == "*" else f"{lang}:{cid}" for lang, cid in keys]  # "*": the shared pool (Mewsli-X)
    per_lang, records = {}, {}
    for lang, lang_queries in queries.items():
        value, records[lang] = _map_at_k(lang_queries, embed_texts, candidates, ids, by_group)
        without = sum(1 for q in lang_queries if not by_group.get(q["group"]))
        per_lang[lang] = {
            "map@20": value,
            "score": value,
            "queries": len(lang_queries),
            "queries_without_gold": without,
            "candidates": len(keys),
            "units": len(lang_queries),
        }
    return per_lang, records


def _map_at_k(
    queries: list[dict[str, Any]],
    embed_texts: Embed,
    candidates: np.ndarray,
    ids: list[str],
    by_group: dict[str, set[int]],
) -> tuple[float, list[dict[str, Any]]]:
    """mAP@20 of `queries` (scored in blocks of rows) and each query's top-20 candidate ids: the same
    ranking (`rank_candidates`, ties to the lower index) scores the query and goes to its record."""
    from xstilts.evaluate import metrics as m

    if not queries:
        return 0.0, []
    vectors = _unit(embed_texts([q["text"] for q in queries]))
    rows = max(1, SCORE_BLOCK // max(1, len(ids)))
    total, out = 0.0, []
    for lo in range(0, len(queries), rows):
        block_queries = queries[lo : lo + rows]
        ranked = m.rank_candidates(vectors[lo : lo + rows] @ candidates.T, MAP_AT)
        for q, top in zip(block_queries, ranked, strict=True):
            ap = m.average_precision_at_k([int(i) for i in top], by_group.get(q["group"], set()), MAP_AT)
            total += ap
            predictions = [ids[i] for i in top]
            out.append({"unit": q["id"], "id": q["id"], "gold": q["group"], "predictions": predictions,
                        "stats": {"score": ap}})  # fmt: skip
    return 100.0 * total / len(queries), out


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def run_retrieval(ctx: PhaseContext, task: TaskDef) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.modeling.model import load_encoder

    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, ctx.config.retrieval_layer)
    embed_texts = make_embedder(encoder, tokenizer, layer, ctx.config.max_length)
    task, protocol = retrieval_protocol(task, ctx.config)
    per_lang = retrieval_scores(ctx, task, embed_texts, protocol=protocol)
    robustness = Robustness(task, ctx.config.perturbations, ctx.config.data)
    for name in robustness.labels:
        perturb = partial(robustness.perturb, name)
        for lang, metrics in retrieval_scores(ctx, task, embed_texts, perturb, name, protocol).items():
            robustness.record(name, lang, metrics, per_lang[lang]["score"])
    summary = {**_summary(task, per_lang, protocol), "layer": layer, **robustness.summary()}
    if RETRIEVAL[task.metric].tunes_threshold:  # the sample split's F1 selects settings in the report
        dev = {lang: metrics["dev_f1"] for lang, metrics in per_lang.items()}
        summary["dev"] = {"score": sum(dev.values()) / len(dev), "split": "sample", "languages": dev}
    return summary


def retrieval_protocol(task: TaskDef, config: EvaluateConfig) -> tuple[TaskDef, dict[str, Any]]:
    """The task as this phase scores it (BUCC on the hub's gold pairs: their sources, metric
    `bucc_f1_gold_only`) and the protocol metrics.json records."""
    return RETRIEVAL[task.metric].protocol(task, config)


def _tatoeba_protocol(task: TaskDef, config: EvaluateConfig) -> tuple[TaskDef, dict[str, Any]]:
    direction = config.direction or "en-xx"
    queries = "English sentences query the foreign ones" if direction == "en-xx" else (
        "foreign sentences query the English ones")  # fmt: skip
    return task, {"direction": direction, "description": queries}


def _bucc_protocol(task: TaskDef, config: EvaluateConfig) -> tuple[TaskDef, dict[str, Any]]:
    pairs, duplicates = (config.bucc.pairs, config.bucc.duplicates) if config.bucc else ("mining", "drop")
    protocol = {"pairs": pairs, "duplicates": duplicates, "threshold": "tuned on sample, reused on test"}
    if pairs == "gold_only":
        if task.gold_only is None:
            raise ConfigError(f"{task.name} has no gold-only sources", field="bucc.pairs", fix="use mining")
        dev, evaluate = task.gold_only
        task = dataclasses.replace(task, dev=dev, evaluate=evaluate, metric=f"{task.metric}_gold_only")
    return task, protocol


def _no_protocol(task: TaskDef, config: EvaluateConfig) -> tuple[TaskDef, dict[str, Any]]:
    return task, {}


@dataclasses.dataclass(frozen=True)
class RetrievalMetric:
    """How a retrieval metric is evaluated from the encoder's embeddings."""

    ranking: bool = False  # queries ranked against a candidate pool (English queries too); else bitext
    tunes_threshold: bool = False  # a dev split tunes the mining threshold, reused on the test split
    protocol: Callable[[TaskDef, EvaluateConfig], tuple[TaskDef, dict[str, Any]]] = _no_protocol


# One entry per retrieval metric a task entry may give (`TaskDef.metric`); the trained formats' metrics
# are `xstilts.evaluate.scoring.SCORERS`.
RETRIEVAL: dict[str, RetrievalMetric] = {
    "tatoeba_accuracy": RetrievalMetric(protocol=_tatoeba_protocol),
    "bucc_f1": RetrievalMetric(tunes_threshold=True, protocol=_bucc_protocol),
    "bucc_f1_gold_only": RetrievalMetric(tunes_threshold=True),
    "map@20": RetrievalMetric(ranking=True),
}


# (lang, examples) -> the perturbed examples, or None where the perturbation does not apply.
Perturb = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]] | None]


def retrieval_scores(
    ctx: PhaseContext,
    task: TaskDef,
    embed_texts: Embed,
    perturb: Perturb | None = None,
    perturbation: str | None = None,
    protocol: dict[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-language metrics of a retrieval task (writes the predictions, reports progress). With
    `perturb`, the non-English side (bitext sources, ranking queries; the candidate pool stays clean) is
    perturbed and the predictions go to `<lang>.<perturbation>.jsonl`."""
    config = ctx.config
    data, limit = config.data, config.max_eval_examples
    how = RETRIEVAL[task.metric]
    languages = [lang for lang in config.languages if lang != "en" or how.ranking]
    suffix = f".{perturbation}" if perturbation else ""
    extra = {"perturbation": perturbation} if perturbation else {}
    if how.ranking:
        loaded = {lang: load_examples(task, "evaluate", data, lang, limit=limit) for lang in languages}
        shared = load_examples(task, "candidates", data) if task.candidates is not None else []
        queries, pool = _ranking_inputs(loaded, shared)
        if perturb is not None:
            changed = {lang: perturb(lang, queries[lang]) for lang in languages}
            queries = {lang: q for lang, q in changed.items() if q is not None}
        per_lang, records = ranked_retrieval(queries, pool, embed_texts)
        for lang in queries:
            _write_predictions(ctx, f"{lang}{suffix}", records[lang])
            score = per_lang[lang]["score"]
            ctx.progress.event("evaluated", task=task.name, language=lang, score=score, **extra)
        return per_lang
    per_lang = {}
    for lang in languages:
        examples = load_examples(task, "evaluate", data, lang, limit=limit)
        bucc = how.tunes_threshold
        dev = load_examples(task, "dev", data, lang) if bucc else []
        if perturb is not None:
            perturbed, perturbed_dev = perturb(lang, examples), perturb(lang, dev) if dev else []
            if perturbed is None or perturbed_dev is None:
                continue
            examples, dev = perturbed, perturbed_dev
        protocol = protocol or {}
        if bucc:
            duplicates = protocol.get("duplicates", "drop")
            metrics, records = evaluate_bucc(dev, examples, embed_texts, duplicates, accelerator_knn())
        else:
            metrics, records = evaluate_tatoeba(examples, embed_texts, protocol.get("direction", "en-xx"))
        per_lang[lang] = metrics
        _write_predictions(ctx, f"{lang}{suffix}", records)
        ctx.progress.event("evaluated", task=task.name, language=lang, examples=len(examples),
                           score=metrics["score"], **extra)  # fmt: skip
    return per_lang


def _ranking_inputs(
    loaded: dict[str, list[dict[str, Any]]], shared: list[dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], dict[str, Any]]]:
    queries = {lang: [r for r in records if r["kind"] == "query"] for lang, records in loaded.items()}
    pool: dict[tuple[str, str], dict[str, Any]] = {}
    _merge_candidates(shared, pool, "*")
    for lang, records in loaded.items():
        _merge_candidates([r for r in records if r["kind"] == "candidate"], pool, lang)
    return queries, pool


def run(ctx: PhaseContext) -> dict[str, Any]:
    task = get_task(ctx.config.task)
    if not ctx.config.languages:
        raise ConfigError(
            f"evaluate/{task.name} has no languages to evaluate", field="languages",
            fix="plan with xstilts.tasks.fixture_languages(task, languages) when data.source is fixtures "
            "(XCOPA's fixtures stand in for et, it and ta)",
        )  # fmt: skip
    if task.format is Format.RETRIEVAL:
        return run_retrieval(ctx, task)
    return run_trained(ctx, task)
