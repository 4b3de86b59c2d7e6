"""Model outputs -> predictions and metrics, per format, with the official metric of each task."""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.features import Feature
from xstilts.evaluate import metrics as m
from xstilts.evaluate.qa_decode import decode_qa
from xstilts.tasks import Format, TaskDef


def _qa_metric(task: TaskDef, preds: dict[str, str], refs: dict[str, list[str]], lang: str) -> dict[str, float]:
    if task.metric == "mlqa":
        return m.mlqa_scores(preds, refs, lang)
    return m.squad_scores(preds, refs)


def score(
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any], lang: str = "en"
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics with a headline `score`, one prediction record per example)."""
    fmt = task.format
    if fmt in (Format.CLASSIFICATION, Format.MULTIPLE_CHOICE):
        preds = [outputs[i] for i in range(len(examples))]
        gold = [e["label"] for e in examples]
        metrics = {"accuracy": m.accuracy(preds, gold)}
        if task.metric == "accuracy_f1":
            metrics["f1"] = _binary_f1(preds, gold)
            metrics["score"] = (metrics["accuracy"] + metrics["f1"]) / 2
        else:
            metrics["score"] = metrics["accuracy"]
        label_names = task.labels or None
        records = [
            {"prediction": label_names[p] if label_names else p, "label": label_names[g] if label_names else g}
            for p, g in zip(preds, gold, strict=True)
        ]
        return metrics, records
    if fmt is Format.REGRESSION:
        preds_f = np.array(outputs[: len(examples)], dtype=float)
        gold_f = np.array([e["label"] for e in examples], dtype=float)
        corr = float(np.corrcoef(preds_f, gold_f)[0, 1]) * 100 if len(examples) > 1 else 0.0
        return {"pearson": corr, "score": corr}, [{"prediction": p, "label": g} for p, g in zip(preds_f, gold_f, strict=True)]
    if fmt is Format.TAGGING:
        names = task.labels
        gold_tags, pred_tags, records = [], [], []
        for e, f, out in zip(examples, features, outputs, strict=True):
            words = m.words_from_first_subwords(f["word_ids"], out, num_words=len(e["tokens"]))
            gold_tags.append([names[t] for t in e["tags"]])
            pred_tags.append([names[t] for t in words])
            records.append({"tokens": e["tokens"], "prediction": pred_tags[-1], "label": gold_tags[-1]})
        metrics = m.tagging_f1(gold_tags, pred_tags)
        metrics["score"] = metrics["f1"]
        return metrics, records
    if fmt is Format.SPAN_QA:
        contexts = {e["id"]: e["context"] for e in examples}
        qa_features = [{"example_id": f["example_id"], "offsets": f["offsets"]} for f in features]
        predictions = decode_qa(qa_features, [o[0] for o in outputs], [o[1] for o in outputs], contexts)
        refs = {e["id"]: e["answers"]["text"] for e in examples}
        metrics = _qa_metric(task, predictions, refs, lang)
        metrics["score"] = (metrics["f1"] + metrics["exact_match"]) / 2
        records = [{"id": e["id"], "prediction": predictions[e["id"]], "answers": e["answers"]["text"]} for e in examples]
        return metrics, records
    raise ValueError(f"format {fmt.value} is not scored from model outputs")


def _binary_f1(preds: list[int], gold: list[int]) -> float:
    tp = sum(1 for p, g in zip(preds, gold, strict=True) if p == g == 1)
    fp = sum(1 for p, g in zip(preds, gold, strict=True) if p == 1 and g != 1)
    fn = sum(1 for p, g in zip(preds, gold, strict=True) if p != 1 and g == 1)
    return 200.0 * tp / (2 * tp + fp + fn) if tp else 0.0
