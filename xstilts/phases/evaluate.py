"""Zero-shot evaluation in every language of a target task (one process, all languages), and retrieval
evaluation (Tatoeba, BUCC) straight from an encoder-bearing phase."""

from __future__ import annotations

import json
from typing import Any

from xstilts.data.features import featurize, retrieval
from xstilts.data.load import load_examples
from xstilts.phases.context import PhaseContext
from xstilts.tasks import Format, TaskDef, get_task

# Hidden-states index for retrieval embeddings by encoder depth (DESIGN.md section 4): XLM-R Large 14,
# mBERT 8. Other depths use the same relative position (about 60% of the way up).
RETRIEVAL_LAYER_BY_DEPTH = {24: 14, 12: 8}


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
        "average": sum(scores.values()) / len(scores),
        "average_zero_shot": sum(non_en) / len(non_en) if non_en else None,
    }


def run_trained(ctx: PhaseContext, task: TaskDef) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.evaluate.predict import predict
    from xstilts.evaluate.scoring import score
    from xstilts.modeling.model import MultiTaskModel

    model_dir = ctx.upstream_model("model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = MultiTaskModel.load(model_dir, [task])
    config = ctx.config
    per_lang = {}
    for lang in config["languages"]:
        examples = load_examples(task, "evaluate", config["data"], lang, limit=config.get("max_eval_examples"))
        features = featurize(task, tokenizer, examples, config["max_length"], config["doc_stride"])
        outputs = predict(model, task, features, tokenizer.pad_token_id)
        metrics, records = score(task, examples, features, outputs, lang)
        per_lang[lang] = metrics
        _write_predictions(ctx, lang, records)
        ctx.progress.event("evaluated", task=task.name, language=lang, examples=len(examples), score=metrics["score"])
    return _summary(task, per_lang)


def run_retrieval(ctx: PhaseContext, task: TaskDef) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from xstilts.evaluate import metrics as m
    from xstilts.evaluate.predict import embed
    from xstilts.modeling.model import load_encoder

    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, ctx.config.get("retrieval_layer"))
    config = ctx.config
    per_lang = {}
    for lang in config["languages"]:
        if lang == "en":
            continue
        examples = load_examples(task, "evaluate", config["data"], lang, limit=config.get("max_eval_examples"))
        # Rows are gold-aligned: sort the English side so that position carries no signal.
        english = sorted(range(len(examples)), key=lambda i: (examples[i]["target"], i))
        gold = [english.index(i) for i in range(len(examples))]
        src = embed(encoder, retrieval(tokenizer, [e["source"] for e in examples], config["max_length"]),
                    tokenizer.pad_token_id, layer)
        tgt = embed(encoder, retrieval(tokenizer, [examples[i]["target"] for i in english], config["max_length"]),
                    tokenizer.pad_token_id, layer)  # fmt: skip
        predicted = m.tatoeba_predictions(src, tgt)
        accuracy = m.tatoeba_accuracy(src, tgt, gold)
        per_lang[lang] = {"accuracy": accuracy, "score": accuracy}
        _write_predictions(ctx, lang, [
            {"source": e["source"], "prediction": examples[english[p]]["target"], "target": e["target"]}
            for e, p in zip(examples, predicted, strict=True)
        ])  # fmt: skip
        ctx.progress.event("evaluated", task=task.name, language=lang, examples=len(examples), score=accuracy)
    summary = _summary(task, per_lang)
    summary["layer"] = layer
    return summary


def run(ctx: PhaseContext) -> dict[str, Any]:
    task = get_task(ctx.config["task"])
    if task.format is Format.RETRIEVAL:
        return run_retrieval(ctx, task)
    return run_trained(ctx, task)
