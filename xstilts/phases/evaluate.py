"""Zero-shot evaluation in every language of a target task (one process, all languages), and retrieval
evaluation straight from an encoder-bearing phase: Tatoeba (nearest English neighbour, accuracy), BUCC
(margin mining, threshold from the dev/sample split reused on test, P/R/F1) and ranked retrieval with
mAP@20 (LAReQA: every language's questions against the answer sentences of all evaluated languages;
Mewsli-X: mentions against the shared entity descriptions). Embeddings: mean over non-padding tokens of
the configurable hidden layer (`retrieval_layer`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from xstilts.data.cache import cached_features
from xstilts.data.features import featurize, retrieval
from xstilts.data.load import load_examples, resolve_labels
from xstilts.errors import ConfigError
from xstilts.evaluate.robustness import Robustness
from xstilts.phases.context import PhaseContext
from xstilts.tasks import Format, TaskDef, get_task

# Hidden-states index for retrieval embeddings by encoder depth (DESIGN.md section 4): XLM-R Large 14,
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


def _summary(task: TaskDef, per_lang: dict[str, dict[str, float]]) -> dict[str, Any]:
    scores = {lang: m["score"] for lang, m in per_lang.items()}
    non_en = [s for lang, s in scores.items() if lang != "en"]
    return {
        "task": task.name,
        "metric": task.metric,
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
    task = resolve_labels(task, config["data"])
    model_dir = ctx.upstream_model("model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The target phase may have trained another task's head on the same data (MLQA uses XQuAD's).
    trained_as = ctx.upstream("model").config.get("task", task.name)
    if trained_as == task.name:
        model = MultiTaskModel.load(model_dir, [task])
    else:
        model = MultiTaskModel.load(model_dir, [resolve_labels(get_task(trained_as), config["data"])])
        model.rename_head(trained_as, task.name)
    robustness = Robustness(task, config.get("perturbations"), config["data"])

    def evaluate(
        examples: list[dict[str, Any]], lang: str, perturbation: str | None = None
    ) -> tuple[dict[str, Any], list[dict]]:
        # Every evaluate phase of a target reads the same data with the same tokenizer: tokenize once per
        # store (the key covers the tokenizer's files, data, limit, lengths and the perturbation's spec).
        features = cached_features(
            ctx.store,
            model_dir,
            task.name,
            "evaluate",
            lang,
            config["data"],
            config["max_length"],
            config["doc_stride"],
            lambda: featurize(task, tokenizer, examples, config["max_length"], config["doc_stride"]),
            limit=config.get("max_eval_examples"),
            extra={"perturbation": robustness.specs[perturbation]} if perturbation else None,
            on_event=ctx.progress.event,
        )
        outputs = predict(model, task, features, tokenizer.pad_token_id)
        return score(task, examples, features, outputs, lang)

    per_lang = {}
    for lang in config["languages"]:
        examples = load_examples(
            task, "evaluate", config["data"], lang, limit=config.get("max_eval_examples")
        )
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
    examples: list[dict[str, Any]], embed_texts: Embed
) -> tuple[dict[str, float], list[dict]]:
    """Nearest English neighbour of each sentence; rows are gold-aligned, so the English side is sorted
    first and position carries no signal."""
    from xstilts.evaluate import metrics as m

    english = sorted(range(len(examples)), key=lambda i: (examples[i]["target"], i))
    gold = [english.index(i) for i in range(len(examples))]
    src = embed_texts([e["source"] for e in examples])
    tgt = embed_texts([examples[i]["target"] for i in english])
    predicted = m.tatoeba_predictions(src, tgt)
    accuracy = m.accuracy(predicted, gold)
    records = [
        {"source": e["source"], "prediction": examples[english[p]]["target"], "target": e["target"]}
        for e, p in zip(examples, predicted, strict=True)
    ]
    return {"accuracy": accuracy, "score": accuracy}, records


def bitext_sides(
    examples: list[dict[str, Any]],
) -> tuple[dict[str, str], dict[str, str], set[tuple[str, str]]]:
    """(source id -> text, target id -> text, gold id pairs) of BUCC rows. Rows whose ids are missing or
    not unique on a side (the hub's gold-only rows may carry language codes) get row-number ids."""
    source_ids = [e["source_id"] for e in examples if e["source"]]
    target_ids = [e["target_id"] for e in examples if e["target"]]
    usable_src = all(source_ids) and len(set(source_ids)) == len(source_ids)
    usable_tgt = all(target_ids) and len(set(target_ids)) == len(target_ids)
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


def bucc_mine(examples: list[dict[str, Any]], embed_texts: Embed) -> tuple[list, set[tuple[str, str]]]:
    """Ratio-margin candidates (k=4 each way, duplicate texts share one row) and the gold pairs."""
    from xstilts.evaluate import metrics as m

    src, tgt, gold = bitext_sides(examples)
    src_ids, tgt_ids = list(src), list(tgt)
    src_texts, tgt_texts = [src[i] for i in src_ids], [tgt[i] for i in tgt_ids]
    candidates = m.bucc_candidates(
        embed_texts(src_texts), embed_texts(tgt_texts), src_ids, tgt_ids, src_texts, tgt_texts, k=4
    )
    return candidates, gold


def evaluate_bucc(
    dev: list[dict[str, Any]], test: list[dict[str, Any]], embed_texts: Embed
) -> tuple[dict[str, float], list[dict]]:
    """Threshold tuned for F1 on the dev (sample) split, P/R/F1 on the test (training) split with it."""
    from xstilts.evaluate import metrics as m

    dev_candidates, dev_gold = bucc_mine(dev, embed_texts)
    threshold = m.bucc_optimize_threshold(dev_candidates, dev_gold)
    test_candidates, test_gold = bucc_mine(test, embed_texts)
    metrics = m.bucc_scores(test_candidates, test_gold, threshold)
    metrics["score"] = metrics["f1"]
    records = [
        {"source_id": s, "target_id": t, "margin": score, "gold": (s, t) in test_gold}
        for score, s, t in test_candidates
        if score >= threshold
    ]
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
    """mAP@20 per query language against the whole pool (cosine similarity); queries whose group has no
    candidate in the pool are left out and counted."""
    keys = list(pool)
    by_group: dict[str, set[int]] = {}
    for index, key in enumerate(keys):
        for group in pool[key]["groups"]:
            by_group.setdefault(group, set()).add(index)
    candidates = _unit(embed_texts([pool[k]["text"] for k in keys]))
    ids = [cid if lang == "*" else f"{lang}:{cid}" for lang, cid in keys]  # "*": the shared pool (Mewsli-X)
    per_lang, records = {}, {}
    for lang, lang_queries in queries.items():
        answerable = [q for q in lang_queries if by_group.get(q["group"])]
        value, records[lang] = _map_at_k(answerable, embed_texts, candidates, ids, by_group)
        per_lang[lang] = {
            "map@20": value,
            "score": value,
            "queries": len(answerable),
            "queries_without_gold": len(lang_queries) - len(answerable),
            "candidates": len(keys),
        }
    return per_lang, records


def _map_at_k(
    queries: list[dict[str, Any]],
    embed_texts: Embed,
    candidates: np.ndarray,
    ids: list[str],
    by_group: dict[str, set[int]],
) -> tuple[float, list[dict[str, Any]]]:
    """mAP@20 of `queries` (scored in blocks of rows) and each query's top-20 candidate ids."""
    from xstilts.evaluate import metrics as m

    vectors = _unit(embed_texts([q["text"] for q in queries]))
    rows = max(1, SCORE_BLOCK // max(1, len(ids)))
    total, out = 0.0, []
    for lo in range(0, len(queries), rows):
        block_queries = queries[lo : lo + rows]
        block = vectors[lo : lo + rows] @ candidates.T
        relevant = [by_group[q["group"]] for q in block_queries]
        total += m.mean_average_precision_at_k(block, relevant, k=MAP_AT) * len(relevant)
        for q, top in zip(block_queries, _top_k(block, MAP_AT), strict=True):
            out.append({"id": q["id"], "gold": q["group"], "predictions": [ids[i] for i in top]})
    return (total / len(queries) if queries else 0.0), out


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def run_retrieval(ctx: PhaseContext, task: TaskDef) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.modeling.model import load_encoder

    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, ctx.config.get("retrieval_layer"))
    embed_texts = make_embedder(encoder, tokenizer, layer, ctx.config["max_length"])
    per_lang = retrieval_scores(ctx, task, embed_texts)
    robustness = Robustness(task, ctx.config.get("perturbations"), ctx.config["data"])
    for name in robustness.labels:
        perturb = partial(robustness.perturb, name)
        for lang, metrics in retrieval_scores(ctx, task, embed_texts, perturb, name).items():
            robustness.record(name, lang, metrics, per_lang[lang]["score"])
    return {**_summary(task, per_lang), "layer": layer, **robustness.summary()}


# (lang, examples) -> the perturbed examples, or None where the perturbation does not apply.
Perturb = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]] | None]


def retrieval_scores(
    ctx: PhaseContext,
    task: TaskDef,
    embed_texts: Embed,
    perturb: Perturb | None = None,
    perturbation: str | None = None,
) -> dict[str, dict[str, float]]:
    """Per-language metrics of a retrieval task (writes the predictions, reports progress). With
    `perturb`, the non-English side (bitext sources, ranking queries; the candidate pool stays clean) is
    perturbed and the predictions go to `<lang>.<perturbation>.jsonl`."""
    config = ctx.config
    data, limit = config["data"], config.get("max_eval_examples")
    languages = [lang for lang in config["languages"] if lang != "en" or task.metric == "map@20"]
    suffix = f".{perturbation}" if perturbation else ""
    extra = {"perturbation": perturbation} if perturbation else {}
    if task.metric == "map@20":
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
        dev = load_examples(task, "dev", data, lang) if task.metric == "bucc_f1" else []
        if perturb is not None:
            perturbed, perturbed_dev = perturb(lang, examples), perturb(lang, dev) if dev else []
            if perturbed is None or perturbed_dev is None:
                continue
            examples, dev = perturbed, perturbed_dev
        if task.metric == "bucc_f1":
            metrics, records = evaluate_bucc(dev, examples, embed_texts)
        else:
            metrics, records = evaluate_tatoeba(examples, embed_texts)
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
    task = get_task(ctx.config["task"])
    if not ctx.config["languages"]:
        raise ConfigError(
            f"evaluate/{task.name} has no languages to evaluate", field="languages",
            fix="plan with xstilts.tasks.fixture_languages(task, languages) when data.source is fixtures "
            "(XCOPA's fixtures stand in for et, it and ta)",
        )  # fmt: skip
    if task.format is Format.RETRIEVAL:
        return run_retrieval(ctx, task)
    return run_trained(ctx, task)
