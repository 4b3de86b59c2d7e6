"""Model outputs -> predictions and metrics, per format, with the official metric of each task.

Metric names (`TaskDef.metric`): accuracy, accuracy_f1 ((acc + F1) / 2, QQP / MRPC), mcc (CoLA),
pearson_spearman (STS-B), seqeval_f1, token_accuracy (CCG, jiant), squad, squad_v2, mlqa. Retrieval
metrics (tatoeba_accuracy, bucc_f1, map@20) are computed from embeddings in `xstilts.phases.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.data.features import Feature
from xstilts.evaluate import metrics as m
from xstilts.evaluate.qa_decode import best_span_in_window, decode_qa
from xstilts.tasks import Format, TaskDef


def score(
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any], lang: str = "en"
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics with a headline `score`, one prediction record per example)."""
    fmt = task.format
    if fmt in (Format.CLASSIFICATION, Format.MULTIPLE_CHOICE):
        return _score_classes(task, examples, outputs)
    if fmt is Format.REGRESSION:
        return _score_regression(examples, outputs)
    if fmt is Format.TAGGING:
        return _score_tagging(task, examples, features, outputs)
    if fmt is Format.SPAN_QA:
        return _score_qa(task, examples, features, outputs, lang)
    raise ValueError(f"format {fmt.value} is not scored from model outputs")


# ---- classification, multiple choice, regression -------------------------------------------------


def _score_classes(
    task: TaskDef, examples: list[dict], outputs: list[Any]
) -> tuple[dict[str, float], list[dict]]:
    preds = [int(outputs[i]) for i in range(len(examples))]
    gold = [int(e["label"]) for e in examples]
    metrics = {"accuracy": m.accuracy(preds, gold)}
    if task.metric == "accuracy_f1":
        metrics["f1"] = _binary_f1(preds, gold)
        metrics["score"] = (metrics["accuracy"] + metrics["f1"]) / 2
    elif task.metric == "mcc":
        metrics["mcc"] = matthews_corrcoef(preds, gold)
        metrics["score"] = metrics["mcc"]
    else:
        metrics["score"] = metrics["accuracy"]
    names = task.labels

    def name(index: int) -> str | int:
        return names[index] if 0 <= index < len(names) else index  # SIQA's 3 choices under XCOPA's names

    records = [{"prediction": name(p), "label": name(g)} for p, g in zip(preds, gold, strict=True)]
    return metrics, records


def _score_regression(examples: list[dict], outputs: list[Any]) -> tuple[dict[str, float], list[dict]]:
    preds = np.array(outputs[: len(examples)], dtype=float)
    gold = np.array([e["label"] for e in examples], dtype=float)
    pearson, spearman = pearson_r(preds, gold), pearson_r(_ranks(preds), _ranks(gold))
    metrics = {"pearson": pearson, "spearman": spearman, "score": (pearson + spearman) / 2}
    return metrics, [{"prediction": float(p), "label": float(g)} for p, g in zip(preds, gold, strict=True)]


def _binary_f1(preds: list[int], gold: list[int]) -> float:
    tp = sum(1 for p, g in zip(preds, gold, strict=True) if p == g == 1)
    fp = sum(1 for p, g in zip(preds, gold, strict=True) if p == 1 and g != 1)
    fn = sum(1 for p, g in zip(preds, gold, strict=True) if p != 1 and g == 1)
    return 200.0 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_corrcoef(preds: Sequence[int], gold: Sequence[int]) -> float:
    """Matthews correlation (x100), the multi-class form sklearn computes; 0 when undefined."""
    classes = sorted(set(preds) | set(gold))
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)))
    for p, g in zip(preds, gold, strict=True):
        confusion[index[g], index[p]] += 1
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    total, correct = confusion.sum(), np.trace(confusion)
    numerator = correct * total - pred_counts @ true_counts
    denominator = np.sqrt((total**2 - pred_counts @ pred_counts) * (total**2 - true_counts @ true_counts))
    return float(100.0 * numerator / denominator) if denominator else 0.0


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (x100); 0 when either side is constant or there are fewer than 2 values."""
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1]) * 100


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (what Spearman's rho correlates)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


# ---- tagging -------------------------------------------------------------------------------------


def _score_tagging(
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any]
) -> tuple[dict[str, float], list[dict]]:
    names = task.labels
    gold_tags, pred_tags, records = [], [], []
    for e, f, out in zip(examples, features, outputs, strict=True):
        words = m.words_from_first_subwords(f["word_ids"], out, num_words=len(e["tokens"]))
        gold_tags.append([names[t] for t in e["tags"]])
        pred_tags.append([names[t] for t in words])
        records.append({"tokens": e["tokens"], "prediction": pred_tags[-1], "label": gold_tags[-1]})
    if task.metric == "token_accuracy":
        flat_pred = [t for seq in pred_tags for t in seq]
        flat_gold = [t for seq in gold_tags for t in seq]
        metrics = {"accuracy": m.accuracy(flat_pred, flat_gold)}
        metrics["score"] = metrics["accuracy"]
        return metrics, records
    metrics = m.tagging_f1(gold_tags, pred_tags)
    metrics["score"] = metrics["f1"]
    return metrics, records


# ---- span QA -------------------------------------------------------------------------------------


def _score_qa(
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any], lang: str
) -> tuple[dict[str, float], list[dict]]:
    contexts = {e["id"]: e["context"] for e in examples}
    qa_features = [{"example_id": f["example_id"], "offsets": f["offsets"]} for f in features]
    starts, ends = [o[0] for o in outputs], [o[1] for o in outputs]
    refs = {e["id"]: e["answers"]["text"] for e in examples}
    if task.metric == "squad_v2":
        predictions = decode_qa_with_null(qa_features, starts, ends, contexts)
        metrics = squad_v2_scores(predictions, refs)
    else:
        predictions = decode_qa(qa_features, starts, ends, contexts)
        metrics = (
            m.mlqa_scores(predictions, refs, lang)
            if task.metric == "mlqa"
            else m.squad_scores(predictions, refs)
        )
    metrics["score"] = (metrics["f1"] + metrics["exact_match"]) / 2
    records = [
        {"id": e["id"], "prediction": predictions[e["id"]], "answers": e["answers"]["text"]} for e in examples
    ]
    return metrics, records


def decode_qa_with_null(
    features: Sequence[Mapping[str, Any]],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    contexts: Mapping[str, str],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """SQuAD v2 decoding (HF `postprocess_qa_predictions` with `version_2_with_negative`, threshold 0):
    the best span over all windows, or "" when the null score (CLS start + end logit, the minimum over the
    example's windows) beats it."""
    best: dict[str, tuple[float, int, int]] = {}
    null: dict[str, float] = {}
    for feature, start, end in zip(features, start_logits, end_logits, strict=True):
        example_id = feature["example_id"]
        null_score = float(start[0] + end[0])
        null[example_id] = min(null_score, null.get(example_id, null_score))
        span = best_span_in_window(feature["offsets"], start, end, n_best, max_answer_length)
        if span is not None and (example_id not in best or span[0] > best[example_id][0]):
            best[example_id] = span
    predictions = {}
    for example_id, context in contexts.items():
        span = best.get(example_id)
        answerable = span is not None and span[0] >= null.get(example_id, float("-inf"))
        predictions[example_id] = context[span[1] : span[2]] if answerable and span else ""
    return predictions


def squad_v2_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Official SQuAD v2.0 EM/F1 (x100): a question without gold answers expects the empty string, and
    an empty side scores F1 1 only when both are empty. Also HasAns / NoAns exact match."""
    exact, f1, has_ans, no_ans = [], [], [], []
    for qid, golds in references.items():
        gold_norms = [m.normalize_squad_answer(g) for g in golds if m.normalize_squad_answer(g)] or [""]
        pred = m.normalize_squad_answer(predictions.get(qid, ""))
        em = max(float(pred == g) for g in gold_norms)
        exact.append(em)
        f1.append(max(_v2_token_f1(pred.split(), g.split()) for g in gold_norms))
        (has_ans if gold_norms != [""] else no_ans).append(em)
    out = {"exact_match": 100.0 * float(np.mean(exact)), "f1": 100.0 * float(np.mean(f1))}
    if has_ans:
        out["has_ans_exact"] = 100.0 * float(np.mean(has_ans))
    if no_ans:
        out["no_ans_exact"] = 100.0 * float(np.mean(no_ans))
    return out


def _v2_token_f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    common = sum(min(pred.count(t), gold.count(t)) for t in set(pred) & set(gold))
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)
