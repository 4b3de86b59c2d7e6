"""Every XTREME and XTREME-R task scored with its official protocol, on hand-worked cases: the number the
official scripts (google-research/xtreme evaluate.py, third_party/evaluate_retrieval.py, utils_retrieve.py,
evaluate_squad.py, evaluate_mlqa.py, utils_mewslix.py, utils_lareqa.py) give, and the per-example stats the
report's bootstrap resamples summing to it. `HAND_WORKED` maps each benchmark task to its test."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.conftest import example_config
from xstilts.evaluate import metrics as m
from xstilts.evaluate.chunking import legacy_chunks, sentence_counts, seqeval_chunks
from xstilts.evaluate.scoring import score
from xstilts.evaluate.statistics import ExampleStats, metric_kind
from xstilts.phases.evaluate import evaluate_bucc, evaluate_tatoeba, ranked_retrieval, retrieval_protocol
from xstilts.plan.configs import parse_config
from xstilts.tasks import benchmark_targets, get_task

# task -> the test below that hand-works its official number
HAND_WORKED = {
    "xnli": "test_classification_accuracy_and_its_stats",
    "pawsx": "test_classification_accuracy_and_its_stats",
    "xcopa": "test_classification_accuracy_and_its_stats",
    "udpos": "test_udpos_reads_raw_upos_tags_as_seqeval_0_0_12",
    "panx": "test_panx_stays_on_current_seqeval_which_both_versions_agree_on",
    "xquad": "test_squad_style_qa_unanswered_questions_score_zero",
    "tydiqa": "test_squad_style_qa_unanswered_questions_score_zero",
    "mlqa": "test_mlqa_normalises_by_answer_language",
    "bucc": "test_bucc_drops_repeated_sentences_and_reuses_the_sample_threshold",
    "tatoeba": "test_tatoeba_direction_english_queries_foreign_index",
    "mewsli-x": "test_mewsli_x_query_whose_gold_is_not_in_the_pool_scores_zero",
    "lareqa": "test_ranking_in_prediction_files_is_the_one_the_metric_scored",
}


def test_every_benchmark_task_has_a_hand_worked_case() -> None:
    tasks = set(benchmark_targets("xtreme")) | set(benchmark_targets("xtreme-r"))
    assert tasks == set(HAND_WORKED)
    assert all(name in globals() for name in HAND_WORKED.values())


def _stats_score(metric: str, records: list[dict], units: int | None = None) -> float:
    kind = metric_kind(metric)
    assert kind is not None, metric
    return ExampleStats.from_records(kind, records, units).score()


def _table(vectors: dict[str, list[float]]):
    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[t] for t in texts], dtype=float)

    return embed


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize("name", ["xnli", "pawsx", "xcopa"])
def test_classification_accuracy_and_its_stats(name: str) -> None:
    task = get_task(name)
    examples = [{"label": 0}, {"label": 1}, {"label": 1}, {"label": 0}]
    metrics, records = score(task, examples, [], [0, 1, 0, 0])
    assert metrics["accuracy"] == metrics["score"] == 75.0 and metrics["units"] == 4
    assert [r["stats"]["score"] for r in records] == [1, 1, 0, 1]
    assert _stats_score(task.metric, records) == 75.0


# --------------------------------------------------------------------------- tagging


def _tag(task_name: str, gold: list[list[str]], pred: list[list[str]]) -> tuple[dict, list[dict]]:
    """Score through the task's own scoring path: one sub-word per word, so token = word."""
    task = get_task(task_name)
    index = {tag: i for i, tag in enumerate(task.labels)}
    examples = [{"tokens": [f"w{i}" for i in range(len(g))], "tags": [index[t] for t in g]} for g in gold]
    features = [{"word_ids": [None, *range(len(g)), None]} for g in gold]
    outputs = [[0, *(index[t] for t in p), 0] for p in pred]
    return score(task, examples, features, outputs)


def test_udpos_reads_raw_upos_tags_as_seqeval_0_0_12() -> None:
    # gold [CCONJ, SCONJ] -> chunks (CCONJ 0-0), (SCONJ 1-1); pred [SCONJ, SCONJ] -> (SCONJ 0-0),
    # (SCONJ 1-1): one of two right both ways -> P = R = F1 = 50. seqeval 1.x reads both types as "CONJ",
    # loses gold's first chunk (SCONJ's S restarts the chunk) and scores P 1/2, R 1/1 -> 66.7.
    metrics, records = _tag("udpos", [["CCONJ", "SCONJ"]], [["SCONJ", "SCONJ"]])
    assert get_task("udpos").metric == "udpos_f1"
    assert metrics["f1"] == metrics["score"] == pytest.approx(50.0)
    assert m.tagging_f1([["CCONJ", "SCONJ"]], [["SCONJ", "SCONJ"]])["f1"] == pytest.approx(200 / 3)
    assert records[0]["stats"] == {"correct": 1, "predicted": 2, "gold": 2}
    # X keeps its own type; seqeval 1.x reads it like the sentence separator O and finds no chunk (0)
    assert m.udpos_f1([["X"]], [["X"]])["f1"] == 100.0 and m.tagging_f1([["X"]], [["X"]])["f1"] == 0.0
    # a run of one tag is ONE chunk: gold NOUN NOUN VERB = (NOUN 0-1), (VERB 2); pred NOUN VERB VERB =
    # (NOUN 0), (VERB 1-2): nothing matches -> 0 although two of three tokens are right
    assert m.udpos_f1([["NOUN", "NOUN", "VERB"]], [["NOUN", "VERB", "VERB"]])["f1"] == 0.0
    # SYM and SCONJ start with S: single-token chunks. gold (SYM 0), (SYM 1); pred (SYM 0), (NOUN 1) -> 50
    assert m.udpos_f1([["SYM", "SYM"]], [["SYM", "NOUN"]])["f1"] == pytest.approx(50.0)
    # INTJ reads as an I tag: INTJ INTJ is one chunk (INTJ 0-1)
    assert legacy_chunks(["INTJ", "INTJ"]) == [("INTJ", 0, 1)]
    # two sentences (chunks never cross them; the corpus counts are the sums of the sentences'), and the
    # record stats re-score to the headline
    metrics, records = _tag("udpos", [["NOUN"], ["ADJ", "NOUN"]], [["NOUN"], ["NOUN", "NOUN"]])
    # s1: (NOUN) right; s2: gold (ADJ 0), (NOUN 1), pred (NOUN 0-1): 0 right -> correct 1, pred 2, gold 3
    assert metrics["f1"] == pytest.approx(100 * 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert _stats_score("udpos_f1", records) == pytest.approx(metrics["f1"])


def test_panx_stays_on_current_seqeval_which_both_versions_agree_on() -> None:
    # gold PER(0-1), LOC(3); pred PER(0-1), ORG(3): P = R = F1 = 50
    metrics, records = _tag("panx", [["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert get_task("panx").metric == "seqeval_f1"
    assert metrics["f1"] == pytest.approx(50.0) and _stats_score("seqeval_f1", records) == pytest.approx(50.0)
    rng = random.Random(3)
    tags = get_task("panx").labels
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 9))] for _ in range(300)]
    pred = [[rng.choice(tags) for _ in g] for g in gold]
    for g, p in zip(gold, pred, strict=True):
        assert legacy_chunks(g) == seqeval_chunks(g) and legacy_chunks(p) == seqeval_chunks(p)
    totals = np.sum([sentence_counts(g, p, "seqeval") for g, p in zip(gold, pred, strict=True)], axis=0)
    corpus = m.tagging_f1(gold, pred)["f1"]
    assert 100 * 2 * totals[0] / (totals[1] + totals[2]) == pytest.approx(corpus)


# --------------------------------------------------------------------------- QA


@pytest.mark.parametrize("name", ["xquad", "tydiqa"])
def test_squad_style_qa_unanswered_questions_score_zero(name: str) -> None:
    assert get_task(name).metric == "squad"
    refs = {"q1": ["the Big Cat"], "q2": ["red apple", "apple"], "q3": ["blue"]}
    # q1 exact after normalisation (article, case); q2 "apple pie" vs best gold "apple": P 1/2, R 1 -> 2/3;
    # q3 has no prediction: 0 (evaluate_squad's "Unanswered question ... will receive score 0")
    per_question = m.squad_example_scores({"q1": "big cat!", "q2": "apple pie"}, refs)
    assert per_question["q3"] == {"exact_match": 0.0, "f1": 0.0}
    totals = m.qa_totals(per_question)
    assert totals["exact_match"] == pytest.approx(100 / 3)
    assert totals["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    records = [{"unit": q, "stats": s} for q, s in per_question.items()]
    assert _stats_score("squad", records) == pytest.approx((totals["exact_match"] + totals["f1"]) / 2)


def test_mlqa_normalises_by_answer_language() -> None:
    # de: "die" is an article and "Katze," loses its comma -> exact; zh: per character, 3 of 4 shared
    refs = {"q1": ["Katze"], "q2": ["北京大学"], "q3": ["x"]}
    de = m.mlqa_example_scores({"q1": "die Katze,"}, {"q1": refs["q1"]}, "de")
    assert de["q1"] == {"exact_match": 1.0, "f1": 1.0}
    zh = m.mlqa_example_scores({"q2": "北京大"}, {"q2": refs["q2"]}, "zh")
    assert zh["q2"]["exact_match"] == 0.0 and zh["q2"]["f1"] == pytest.approx(2 * 1 * 0.75 / 1.75)
    totals = m.mlqa_scores({"q1": "die Katze,"}, {"q1": refs["q1"], "q3": refs["q3"]}, "de")
    assert totals == {"exact_match": 50.0, "f1": 50.0}  # the unanswered q3 counts with 0


# --------------------------------------------------------------------------- BUCC


def test_bucc_drops_repeated_sentences_and_reuses_the_sample_threshold() -> None:
    # Sources s1 "A", s2 "B", s3 "B" (s2's text again), s4 "C"; targets t1 "a", t2 "b", t3 "x"; gold
    # (s1, t1), (s2, t2). One-hot embeddings: A = a, B = b, C and x orthogonal to all. With 3 unique rows
    # a side, k = 3: each side's kNN mean is 1/3 for A, a, B, b, so (A, a) and (B, b) score
    # 1 / ((1/3 + 1/3) / 2) = 3; C and x match nothing (score 0, never mined).
    # duplicates: drop (XTREME's read_sent2id): "B" repeats, so (s2|s3, t2) is discarded -> extracted
    # {(s1, t1)}: P 1, R 1/2, F1 66.7. The sample (dev) split is the same data; its best cut keeps the
    # one candidate (threshold 3), reused on test.
    rows = [
        {"source": "A", "target": "a", "source_id": "s1", "target_id": "t1"},
        {"source": "B", "target": "b", "source_id": "s2", "target_id": "t2"},
        {"source": "B", "target": "", "source_id": "s3", "target_id": ""},
        {"source": "C", "target": "", "source_id": "s4", "target_id": ""},
        {"source": "", "target": "x", "source_id": "", "target_id": "t3"},
    ]
    embed = _table({"A": [1, 0, 0, 0], "a": [1, 0, 0, 0], "B": [0, 1, 0, 0], "b": [0, 1, 0, 0],
                    "C": [0, 0, 1, 0], "x": [0, 0, 0, 1]})  # fmt: skip
    metrics, records = evaluate_bucc(rows, rows, embed)
    assert metrics["threshold"] == pytest.approx(3.0)
    assert metrics["precision"] == 100.0 and metrics["recall"] == 50.0
    assert metrics["f1"] == pytest.approx(200 / 3) and metrics["units"] == 4
    assert _stats_score("bucc_f1", records, metrics["units"]) == pytest.approx(metrics["f1"])
    assert {(r["source_id"], r["extracted"], r["gold"]) for r in records} == {
        ("s1", True, True), ("s2", False, True),
    }  # fmt: skip
    # duplicates: all (jiant) maps "B" to both ids: P 2/3, R 1 -> F1 80
    metrics, _ = evaluate_bucc(rows, rows, embed, duplicates="all")
    assert metrics["f1"] == pytest.approx(80.0)


def evaluate_config(**fields):
    return parse_config("evaluate", example_config("evaluate", **fields))


def test_bucc_without_the_files_is_labelled_gold_only() -> None:
    task, protocol = retrieval_protocol(
        get_task("bucc"), evaluate_config(bucc={"pairs": "gold_only", "duplicates": "drop"})
    )
    assert task.metric == "bucc_f1_gold_only" and protocol["pairs"] == "gold_only"
    assert task.evaluate is not None and task.evaluate.config == "bucc18.{lang}"
    mined, protocol = retrieval_protocol(
        get_task("bucc"), evaluate_config(bucc={"pairs": "mining", "duplicates": "drop"})
    )
    assert mined.metric == "bucc_f1" and mined.evaluate is not None and mined.evaluate.reader is not None


# --------------------------------------------------------------------------- Tatoeba


def test_tatoeba_direction_english_queries_foreign_index() -> None:
    # English e0 = (1, 0), e1 = (0, 1); foreign f0 = (1, .2), f1 = (1, .3), row i translating row i.
    # en-xx (XTREME: similarity_search(x=foreign, y=english)): e0 -> f0 (cos .981 > .958), e1 -> f1
    # (.287 > .196): 100. xx-en: f0 -> e0 (.981 > .196), f1 -> e0 (.958 > .287): 50.
    examples = [{"source": "f0", "target": "e0"}, {"source": "f1", "target": "e1"}]
    embed = _table({"e0": [1, 0], "e1": [0, 1], "f0": [1, 0.2], "f1": [1, 0.3]})
    metrics, records = evaluate_tatoeba(examples, embed)
    assert metrics["accuracy"] == 100.0 and [r["query"] for r in records] == ["e0", "e1"]
    metrics, records = evaluate_tatoeba(examples, embed, "xx-en")
    assert metrics["accuracy"] == 50.0 and [r["prediction"] for r in records] == ["e0", "e0"]
    assert _stats_score("tatoeba_accuracy", records) == 50.0
    task, protocol = retrieval_protocol(get_task("tatoeba"), evaluate_config(direction="en-xx", languages=[]))
    assert protocol["direction"] == "en-xx"


# --------------------------------------------------------------------------- Mewsli-X, LAReQA


def test_mewsli_x_query_whose_gold_is_not_in_the_pool_scores_zero() -> None:
    # q1's entity Q1 is retrieved first (RR 1); q2's Q9 is not in the pool: 0, counted -> MRR@20 = 50
    pool = {("*", "Q1"): {"text": "e1", "groups": ["Q1"]}, ("*", "Q2"): {"text": "e2", "groups": ["Q2"]}}
    queries = {"de": [{"id": "1", "text": "m1", "group": "Q1"}, {"id": "2", "text": "m2", "group": "Q9"}]}
    embed = _table({"e1": [1, 0], "e2": [0, 1], "m1": [1, 0.1], "m2": [0.1, 1]})
    per_lang, records = ranked_retrieval(queries, pool, embed)
    assert per_lang["de"]["map@20"] == pytest.approx(50.0)
    assert per_lang["de"]["queries"] == 2 and per_lang["de"]["queries_without_gold"] == 1
    assert [r["stats"]["score"] for r in records["de"]] == [1.0, 0.0]


def test_ranking_in_prediction_files_is_the_one_the_metric_scored() -> None:
    # c0 and c1 are the same sentence (a tie); the gold is c1: ties rank by index, so c0, c1 -> AP 1/2
    pool = {("de", "c0"): {"text": "s", "groups": []}, ("de", "c1"): {"text": "s", "groups": ["g"]}}
    queries = {"de": [{"id": "q", "text": "s", "group": "g"}]}
    per_lang, records = ranked_retrieval(queries, pool, _table({"s": [1.0, 0.0]}))
    assert per_lang["de"]["score"] == pytest.approx(50.0)
    assert records["de"][0]["predictions"] == ["de:c0", "de:c1"]
    # many ties: every record's ranking re-scores to its stats, and they average to the metric
    rng = random.Random(5)
    words = [f"w{i}" for i in range(30)]
    vectors = {w: [float(rng.randint(0, 1)), float(rng.randint(0, 1)), 1.0] for w in words}
    pool = {("en", w): {"text": w, "groups": [f"g{i % 7}"]} for i, w in enumerate(words)}
    queries = {"en": [{"id": str(i), "text": words[i], "group": f"g{i % 7}"} for i in range(20)]}
    per_lang, records = ranked_retrieval(queries, pool, _table(vectors))
    relevant = {f"g{k}": {f"en:{w}" for i, w in enumerate(words) if i % 7 == k} for k in range(7)}
    recomputed = [m.average_precision_at_k(r["predictions"], relevant[r["gold"]], 20) for r in records["en"]]
    assert recomputed == pytest.approx([r["stats"]["score"] for r in records["en"]])
    assert 100 * np.mean(recomputed) == pytest.approx(per_lang["en"]["score"])
