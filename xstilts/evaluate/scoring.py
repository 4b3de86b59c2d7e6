"""Model outputs -> predictions and metrics, per format, with the official metric of each task.

Metric names (`TaskDef.metric`): accuracy, accuracy_f1 ((acc + F1) / 2, QQP / MRPC), mcc (CoLA),
pearson_spearman (STS-B), seqeval_f1 (PAN-X), udpos_f1 (UD-POS as XTREME scores it), token_accuracy
(CCG, jiant), squad, squad_v2, mlqa. Retrieval metrics (tatoeba_accuracy, bucc_f1, map@20) are computed
from embeddings in `xstilts.phases.evaluate`.

Every prediction record carries `unit` and `stats` (`xstilts.evaluate.statistics`): what the report's
paired bootstrap resamples, summing to the headline metric; metrics carry `units`, the number of units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.data.features import Feature
from xstilts.evaluate import metrics as m
from xstilts.evaluate.chunking import sentence_counts
from xstilts.evaluate.qa_decode import best_span_in_window, decode_qa
from xstilts.tasks import TaskDef

Scored = tuple[dict[str, float], list[dict[str, Any]]]
# (task, examples, features, model outputs, language) -> (metrics with a headline `score`, records)
Scorer = Callable[[TaskDef, list[dict], list[Feature], list[Any], str], Scored]


def score(
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any], lang: str = "en"
) -> Scored:
    """(metrics with a headline `score`, one prediction record per example), by the task's metric."""
    scorer = SCORERS.get(task.metric)
    if scorer is None:
        raise ValueError(f"metric {task.metric!r} of {task.name} is not scored from model outputs")
    return scorer(task, examples, features, outputs, lang)


# ---- classification, multiple choice, regression -------------------------------------------------


def _score_classes(
    task: TaskDef, examples: list[dict], outputs: list[Any], headline: Callable[[list[int], list[int]], dict]
) -> tuple[dict[str, float], list[dict]]:
    preds = [int(outputs[i]) for i in range(len(examples))]
    gold = [int(e["label"]) for e in examples]
    metrics = {"accuracy": m.accuracy(preds, gold), **headline(preds, gold)}
    metrics.setdefault("score", metrics["accuracy"])
    names = task.labels

    def name(index: int) -> str | int:
        return names[index] if 0 <= index < len(names) else index  # SIQA's 3 choices under XCOPA's names

    metrics["units"] = len(gold)
    records = [
        {"unit": i, "prediction": name(p), "label": name(g), "stats": {"score": int(p == g)}}
        for i, (p, g) in enumerate(zip(preds, gold, strict=True))
    ]
    return metrics, records


def _score_regression(examples: list[dict], outputs: list[Any]) -> tuple[dict[str, float], list[dict]]:
    preds = np.array(outputs[: len(examples)], dtype=float)
    gold = np.array([e["label"] for e in examples], dtype=float)
    pearson, spearman = pearson_r(preds, gold), pearson_r(_ranks(preds), _ranks(gold))
    metrics = {"pearson": pearson, "spearman": spearman, "score": (pearson + spearman) / 2}
    return metrics, [{"prediction": float(p), "label": float(g)} for p, g in zip(preds, gold, strict=True)]


def _accuracy_f1(preds: list[int], gold: list[int]) -> dict[str, float]:
    f1 = _binary_f1(preds, gold)
    return {"f1": f1, "score": (m.accuracy(preds, gold) + f1) / 2}


def _mcc(preds: list[int], gold: list[int]) -> dict[str, float]:
    mcc = matthews_corrcoef(preds, gold)
    return {"mcc": mcc, "score": mcc}


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
    task: TaskDef, examples: list[dict], features: list[Feature], outputs: list[Any], span_f1: bool = True
) -> tuple[dict[str, float], list[dict]]:
    names = task.labels
    gold_tags, pred_tags = [], []
    for e, f, out in zip(examples, features, outputs, strict=True):
        words = m.words_from_first_subwords(f["word_ids"], out, num_words=len(e["tokens"]))
        gold_tags.append([names[t] for t in e["tags"]])
        pred_tags.append([names[t] for t in words])
    if not span_f1:  # token accuracy (CCG)
        flat_pred = [t for seq in pred_tags for t in seq]
        flat_gold = [t for seq in gold_tags for t in seq]
        metrics = {"accuracy": m.accuracy(flat_pred, flat_gold)}
        metrics["score"] = metrics["accuracy"]
        per_sentence = [
            {"correct": sum(p == g for p, g in zip(ps, gs, strict=True)), "total": len(gs)}
            for ps, gs in zip(pred_tags, gold_tags, strict=True)
        ]
    else:
        metrics = m.tagging_scores(task.metric, gold_tags, pred_tags)
        metrics["score"] = metrics["f1"]
        reading = m.TAGGING_READINGS[task.metric]
        per_sentence = []
        for gs, ps in zip(gold_tags, pred_tags, strict=True):
            correct, predicted, gold = sentence_counts(gs, ps, reading)
            per_sentence.append({"correct": correct, "predicted": predicted, "gold": gold})
    metrics["units"] = len(examples)
    records = [
        {"unit": i, "tokens": e["tokens"], "prediction": p, "label": g, "stats": stats}
        for i, (e, p, g, stats) in enumerate(zip(examples, pred_tags, gold_tags, per_sentence, strict=True))
    ]
    return metrics, records


# ---- span QA -------------------------------------------------------------------------------------


def _score_qa(
    examples: list[dict],
    features: list[Feature],
    outputs: list[Any],
    lang: str,
    *,
    unanswerable: bool = False,
    mlqa: bool = False,
) -> tuple[dict[str, float], list[dict]]:
    """`unanswerable`: SQuAD v2 (an empty answer may win); `mlqa`: MLQA's per-language normalisation."""
    contexts = {e["id"]: e["context"] for e in examples}
    qa_features = [{"example_id": f["example_id"], "offsets": f["offsets"]} for f in features]
    starts, ends = [o[0] for o in outputs], [o[1] for o in outputs]
    refs = {e["id"]: e["answers"]["text"] for e in examples}
    if unanswerable:
        predictions = decode_qa_with_null(qa_features, starts, ends, contexts)
        per_question = squad_v2_example_scores(predictions, refs)
        metrics = squad_v2_scores(predictions, refs)
    else:
        predictions = decode_qa(qa_features, starts, ends, contexts)
        per_question = (
            m.mlqa_example_scores(predictions, refs, lang)
            if mlqa
            else m.squad_example_scores(predictions, refs)
        )
        metrics = m.qa_totals(per_question)
    metrics["score"] = (metrics["f1"] + metrics["exact_match"]) / 2
    metrics["units"] = len(refs)
    records = [
        {"unit": e["id"], "id": e["id"], "prediction": predictions.get(e["id"], ""),
         "answers": e["answers"]["text"], "stats": per_question[e["id"]]}
        for e in examples
    ]  # fmt: skip
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


def squad_v2_example_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Per question EM (0/1) and F1 (0..1) of SQuAD v2.0 (see `squad_v2_scores`)."""
    out = {}
    for qid, golds in references.items():
        gold_norms = [m.normalize_squad_answer(g) for g in golds if m.normalize_squad_answer(g)] or [""]
        pred = m.normalize_squad_answer(predictions.get(qid, ""))
        out[qid] = {
            "exact_match": max(float(pred == g) for g in gold_norms),
            "f1": max(_v2_token_f1(pred.split(), g.split()) for g in gold_norms),
        }
    return out


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


# One scorer per metric name a task entry may give (`TaskDef.metric`); retrieval metrics are in
# `xstilts.phases.evaluate.RETRIEVAL`, and `mlm_loss` is a training loss, never scored here.
SCORERS: dict[str, Scorer] = {
    "accuracy": lambda t, e, f, o, lang: _score_classes(t, e, o, lambda p, g: {}),
    "accuracy_f1": lambda t, e, f, o, lang: _score_classes(t, e, o, _accuracy_f1),
    "mcc": lambda t, e, f, o, lang: _score_classes(t, e, o, _mcc),
    "pearson_spearman": lambda t, e, f, o, lang: _score_regression(e, o),
    "seqeval_f1": lambda t, e, f, o, lang: _score_tagging(t, e, f, o),
    "udpos_f1": lambda t, e, f, o, lang: _score_tagging(t, e, f, o),
    "token_accuracy": lambda t, e, f, o, lang: _score_tagging(t, e, f, o, span_f1=False),
    "squad": lambda t, e, f, o, lang: _score_qa(e, f, o, lang),
    "mlqa": lambda t, e, f, o, lang: _score_qa(e, f, o, lang, mlqa=True),
    "squad_v2": lambda t, e, f, o, lang: _score_qa(e, f, o, lang, unanswerable=True),
}
