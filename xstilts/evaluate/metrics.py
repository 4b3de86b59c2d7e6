"""Metrics equal to the official XTREME / XTREME-R evaluation (numpy + seqeval; no torch).

References followed line by line:
- classification / PAN-X / BUCC F1: google-research/xtreme ``evaluate.py``; UD-POS: the same F1 with
  seqeval 0.0.12's chunking of raw UPOS tags (``xstilts.evaluate.chunking``), as XTREME's numbers were made;
- SQuAD-style QA (XQuAD, TyDiQA-GoldP): the official SQuAD v1.1 script
  (xtreme ``third_party/evaluate_squad.py``);
- MLQA: facebookresearch/MLQA ``mlqa_evaluation_v1.py``;
- BUCC mining: xtreme ``third_party/utils_retrieve.py`` (``mine_bitext`` in "max" mode with the ratio margin,
  ``bucc_optimize``, ``bucc_extract``) and jiant's ``Bucc2018EvaluationScheme`` (duplicate texts);
- mAP@k (LAReQA; Mewsli-X, where one gold entity makes it MRR@20): xtreme ``third_party/utils_lareqa.py``
  and ``utils_mewslix.py``;
- Tatoeba: xtreme ``similarity_search`` (each English sentence queries the indexed foreign ones).

Every score is on the 0..100 scale, as XTREME reports them (the BUCC threshold is a raw margin score).
Deliberate deviations are listed in the docstring of the function concerned.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence, Sized
from functools import cache
from typing import Literal

import numpy as np

from xstilts.evaluate.chunking import Reading, prf_from_counts, sentence_counts

Candidate = tuple[float, str, str]  # (margin score, source id, target id)


# --------------------------------------------------------------------------- classification and tagging


def accuracy(predictions: Sequence[int | str], labels: Sequence[int | str]) -> float:
    """Percentage of exact matches (XNLI, PAWS-X, XCOPA, Tatoeba)."""
    _check_lengths(predictions, labels, "predictions", "labels")
    correct = sum(int(pred == gold) for pred, gold in zip(predictions, labels, strict=True))
    return 100.0 * correct / len(labels)


def tagging_f1(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Micro span P/R/F1 (x100) of the installed seqeval's default mode, as xtreme ``evaluate.py`` scores
    PAN-X (IOB2 tags, read the same by every seqeval version).

    Not for UD-POS: seqeval 1.x reads a raw UPOS tag's type as everything after its first letter, so
    CCONJ and SCONJ become one type and X reads like the sentence separator; XTREME's published UD-POS
    numbers were produced by seqeval 0.0.12, whose reading is `udpos_f1`.
    """
    _check_tagging(gold, pred)
    from seqeval.metrics import f1_score, precision_score, recall_score  # imports sklearn: keep it lazy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 warnings on empty predictions: expected
        scores = {
            "f1": f1_score(gold, pred),
            "precision": precision_score(gold, pred),
            "recall": recall_score(gold, pred),
        }
    return {name: 100.0 * float(value) for name, value in scores.items()}


def udpos_f1(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """UD-POS P/R/F1 (x100) exactly as XTREME's published numbers: seqeval 0.0.12's chunking of the raw
    UPOS tags (`xstilts.evaluate.chunking`), micro-averaged over the sentences. E.g. gold [CCONJ, SCONJ]
    vs predicted [SCONJ, SCONJ] is 50.0 (seqeval 1.x: 66.7); a run of identical tags such as
    [NOUN, NOUN] is one chunk."""
    _check_tagging(gold, pred)
    totals = [0, 0, 0]
    for gold_seq, pred_seq in zip(gold, pred, strict=True):
        for i, count in enumerate(sentence_counts(gold_seq, pred_seq, "legacy")):
            totals[i] += count
    return prf_from_counts(*totals)


# Tagging metric name -> how its chunks are read (`xstilts.evaluate.chunking`).
TAGGING_READINGS: dict[str, Reading] = {"seqeval_f1": "seqeval", "udpos_f1": "legacy"}


def tagging_scores(metric: str, gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    if metric == "udpos_f1":
        return udpos_f1(gold, pred)
    if metric == "seqeval_f1":
        return tagging_f1(gold, pred)
    raise ValueError(f"{metric!r} is not a span-F1 tagging metric ({', '.join(TAGGING_READINGS)})")


def _check_tagging(gold: list[list[str]], pred: list[list[str]]) -> None:
    _check_lengths(gold, pred, "gold", "pred")
    for i, (gold_seq, pred_seq) in enumerate(zip(gold, pred, strict=True)):
        if len(gold_seq) != len(pred_seq):
            raise ValueError(f"sentence {i}: {len(gold_seq)} gold tags but {len(pred_seq)} predicted tags")


def words_from_first_subwords(
    word_ids: Sequence[int | None],
    token_predictions: Sequence[int],
    num_words: int | None = None,
    fallback: int = 0,
) -> list[int]:
    """One prediction per word, read from its first sub-word (the inverse of ``first_subword_labels``).

    Words with no sub-word in the window (truncated away) get ``fallback``. Pass ``num_words`` (the
    sentence length in words) so trailing truncated words are counted; by default it is max(word_id) + 1.
    """
    if len(word_ids) != len(token_predictions):
        raise ValueError(f"{len(word_ids)} word ids but {len(token_predictions)} token predictions")
    present = [w for w in word_ids if w is not None]
    n_words = num_words if num_words is not None else (max(present) + 1 if present else 0)
    words: list[int | None] = [None] * n_words
    for word_id, prediction in zip(word_ids, token_predictions, strict=True):
        if word_id is not None and word_id < n_words and words[word_id] is None:
            words[word_id] = int(prediction)
    return [fallback if w is None else w for w in words]


# --------------------------------------------------------------------------- extractive QA

_SQUAD_PUNCT = frozenset(string.punctuation)


def normalize_squad_answer(text: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Official SQuAD v1.1 EM/F1 (x100), max over gold answers; unanswered questions score 0."""
    return qa_totals(squad_example_scores(predictions, references))


def squad_example_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Per question: {"exact_match": 0 or 1, "f1": 0..1} (SQuAD v1.1); a question with no prediction
    scores 0 on both (the script's "Unanswered question ... will receive score 0")."""
    return _qa_example_scores(predictions, references, normalize_squad_answer, str.split)


def qa_totals(per_question: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """EM/F1 (x100): the means over every reference question of its per-question scores."""
    if not per_question:
        raise ValueError("no reference questions to score")
    n = len(per_question)
    return {
        "exact_match": 100.0 * sum(q["exact_match"] for q in per_question.values()) / n,
        "f1": 100.0 * sum(q["f1"] for q in per_question.values()) / n,
    }


@cache
def _mlqa_punct() -> frozenset[str]:
    # Every Unicode P* character (over range(sys.maxunicode), as the script) plus ASCII string.punctuation.
    unicode_punct = (chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P"))
    return frozenset(unicode_punct) | frozenset(string.punctuation)


# None: the language has no articles to remove. Arabic: the official pattern's first branch can never
# match, so every occurrence of "ال" (not only the prefix) becomes a space; kept verbatim.
_MLQA_ARTICLES: dict[str, str | None] = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "hi": None,
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "zh": None,
}
MLQA_LANGUAGES = tuple(_MLQA_ARTICLES)
_CJK_CHAR = re.compile(r"[\u4e00-\u9fa5]")  # the official script's (narrow) CJK range


def mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokeniser: each CJK character or punctuation mark alone, other runs split on whitespace."""
    punct = _mlqa_punct()
    tokens: list[str] = []
    run = ""
    for ch in text:
        if _CJK_CHAR.match(ch) or ch in punct:
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


def normalize_mlqa_answer(text: str, lang: str) -> str:
    """MLQA normalisation: lowercase, strip punctuation, per-language articles, whitespace/zh segmentation."""
    if lang not in _MLQA_ARTICLES:
        raise ValueError(f"unknown MLQA language {lang!r}; expected one of {', '.join(MLQA_LANGUAGES)}")
    punct = _mlqa_punct()
    text = "".join(ch for ch in text.lower() if ch not in punct)
    pattern = _MLQA_ARTICLES[lang]
    if pattern is not None:
        text = re.sub(pattern, " ", text)
    tokens = mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str
) -> dict[str, float]:
    """Official MLQA EM/F1 (x100) for answer language ``lang``; unanswered questions score 0."""
    return qa_totals(mlqa_example_scores(predictions, references, lang))


def mlqa_example_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str
) -> dict[str, dict[str, float]]:
    """Per question EM (0/1) and F1 (0..1) with MLQA's normalisation for answer language ``lang``."""
    if lang not in _MLQA_ARTICLES:
        raise ValueError(f"unknown MLQA language {lang!r}; expected one of {', '.join(MLQA_LANGUAGES)}")
    return _qa_example_scores(
        predictions, references, lambda text: normalize_mlqa_answer(text, lang), str.split
    )


def _token_f1(pred_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _qa_example_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    normalize: Callable[[str], str],
    tokenize: Callable[[str], list[str]],
) -> dict[str, dict[str, float]]:
    if not references:
        raise ValueError("no reference questions to score")
    out: dict[str, dict[str, float]] = {}
    for qid, golds in references.items():
        if isinstance(golds, str) or not golds:
            raise ValueError(f"question {qid!r}: references must be a non-empty sequence of answer strings")
        if qid not in predictions:
            out[qid] = {"exact_match": 0.0, "f1": 0.0}
            continue
        pred_norm = normalize(predictions[qid])
        gold_norms = [normalize(gold) for gold in golds]
        out[qid] = {
            "exact_match": max(float(pred_norm == gold) for gold in gold_norms),
            "f1": max(_token_f1(tokenize(pred_norm), tokenize(gold)) for gold in gold_norms),
        }
    return out


# --------------------------------------------------------------------------- retrieval


def _l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (rows x dim), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0.0, 1.0, norms)


def top_k_indices(block: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest values per row, sorted descending; ties go to the lower index."""
    if k >= block.shape[1]:
        return np.argsort(-block, axis=1, kind="stable")
    n = block.shape[1]
    kth = np.partition(block, n - k, axis=1)[:, n - k : n - k + 1]  # k-th largest value per row
    out = np.empty((block.shape[0], k), dtype=np.int64)
    for row, mask in enumerate(block >= kth):
        candidates = np.flatnonzero(mask)  # ascending indices, at least k of them
        out[row] = candidates[np.argsort(-block[row, candidates], kind="stable")[:k]]
    return out


# (queries, database, k) -> (similarities [n, k] float64, indices [n, k] int64), best first, ties to the
# lower database index.
Knn = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def exact_knn(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product kNN in row blocks, deterministic on ties.

    Products are float32, as faiss ``IndexFlatIP`` (and twice as fast as float64 on BUCC-sized inputs);
    the returned similarities are float64 for the margin arithmetic.
    """
    k = min(k, database.shape[0])
    queries32 = np.ascontiguousarray(queries, dtype=np.float32)
    database32_t = np.ascontiguousarray(np.asarray(database, dtype=np.float32).T)
    sims = np.empty((queries.shape[0], k))
    inds = np.empty((queries.shape[0], k), dtype=np.int64)
    block_rows = max(1, min(4096, 2**24 // max(1, database.shape[0])))
    for lo in range(0, queries.shape[0], block_rows):
        block = queries32[lo : lo + block_rows] @ database32_t
        idx = top_k_indices(block, k)
        inds[lo : lo + block.shape[0]] = idx
        sims[lo : lo + block.shape[0]] = np.take_along_axis(block, idx, axis=1)
    return sims, inds


def _unify(
    embeddings: np.ndarray, ids: Sequence[str], texts: Sequence[str] | None
) -> tuple[np.ndarray, list[list[str]]]:
    """Collapse identical (stripped) texts to one row; returns unique rows and the ids behind each row.

    As xtreme's ``unique_embeddings``, a unique text keeps the embedding of its LAST occurrence.
    """
    embeddings = np.asarray(embeddings)
    if len(embeddings) != len(ids):
        raise ValueError(f"{len(embeddings)} embeddings but {len(ids)} ids")
    if texts is None:
        return embeddings, [[sid] for sid in ids]
    if len(texts) != len(ids):
        raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
    unique_of: dict[str, int] = {}
    groups: list[list[str]] = []
    last_row: list[int] = []
    for row, (sid, text) in enumerate(zip(ids, texts, strict=True)):
        u = unique_of.setdefault(text.strip(), len(groups))
        if u == len(groups):
            groups.append([])
            last_row.append(row)
        groups[u].append(sid)
        last_row[u] = row
    return embeddings[last_row], groups


def _margin_best(
    sims: np.ndarray, inds: np.ndarray, own_mean: np.ndarray, other_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio-margin scores of the kNN candidates; returns (best candidate index, best score) per row."""
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 -> NaN, dropped later as by the script
        scores = sims / ((own_mean[:, None] + other_mean[inds]) / 2)
    best_pos = scores.argmax(axis=1)
    rows = np.arange(len(scores))
    return inds[rows, best_pos], scores[rows, best_pos]


def bucc_candidates(
    src_emb: np.ndarray,
    tgt_emb: np.ndarray,
    src_ids: Sequence[str],
    tgt_ids: Sequence[str],
    src_texts: Sequence[str] | None = None,
    tgt_texts: Sequence[str] | None = None,
    k: int = 4,
    duplicates: Literal["all", "drop"] = "drop",
    knn: Knn | None = None,
) -> list[Candidate]:
    """Mine candidate pairs as xtreme's ``mine_bitext`` (mode "mine", retrieval "max", margin "ratio").

    Embeddings are L2-normalised here. score(x, y) = cos(x, y) / ((mean kNN-sim(x) + mean kNN-sim(y)) / 2)
    over min(k, n) neighbours. The forward and backward best matches are pooled, sorted by score, and a
    pair is kept only if neither its source nor its target was used by a higher-scoring pair; pairs with
    score <= 0 are dropped (the script's default ``threshold=0``). Returned best first.

    With texts, identical (stripped) sentences share one row. ``duplicates="drop"`` (the default, xtreme's
    ``read_sent2id``) discards pairs whose source or target text is repeated on its side, after the
    greedy matching (a repeated sentence still takes its partner out of the pool, as in the script);
    ``"all"`` maps a mined row to every id carrying that text (jiant's ``create_ids_map``).
    Deviations: exact numpy brute force instead of faiss (same float32 products), and ties are broken
    deterministically (lower index first; forward matches before backward ones) where faiss/quicksort
    leave the order unspecified.
    """
    if duplicates not in ("all", "drop"):
        raise ValueError(f"duplicates must be 'all' or 'drop', got {duplicates!r}")
    x_raw, src_groups = _unify(src_emb, src_ids, src_texts)
    y_raw, tgt_groups = _unify(tgt_emb, tgt_ids, tgt_texts)
    x, y = _l2_normalize(x_raw), _l2_normalize(y_raw)
    search = knn or exact_knn
    fwd_sim, fwd_ind = search(x, y, k)
    bwd_sim, bwd_ind = search(y, x, k)
    fwd_mean, bwd_mean = fwd_sim.mean(axis=1), bwd_sim.mean(axis=1)
    fwd_best, fwd_score = _margin_best(fwd_sim, fwd_ind, fwd_mean, bwd_mean)
    bwd_best, bwd_score = _margin_best(bwd_sim, bwd_ind, bwd_mean, fwd_mean)

    src_rows = np.concatenate([np.arange(len(x)), bwd_best])
    tgt_rows = np.concatenate([fwd_best, np.arange(len(y))])
    scores = np.concatenate([fwd_score, bwd_score])
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    out: list[Candidate] = []
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src_rows[i]), int(tgt_rows[i])
        if s in seen_src or t in seen_tgt:
            continue
        seen_src.add(s)
        seen_tgt.add(t)
        if not scores[i] > 0:  # the script's `score > threshold` with threshold 0: also drops NaN (0/0)
            continue
        if duplicates == "drop" and (len(src_groups[s]) > 1 or len(tgt_groups[t]) > 1):
            continue
        out.extend((float(scores[i]), sid, tid) for sid in src_groups[s] for tid in tgt_groups[t])
    return out


def _best_score_per_pair(candidates: Sequence[Candidate]) -> dict[tuple[str, str], float]:
    best: dict[tuple[str, str], float] = {}
    for score, sid, tid in candidates:
        best[(sid, tid)] = max(score, best.get((sid, tid), score))
    return best


def bucc_optimize_threshold(
    candidates: Sequence[Candidate], gold_pairs: Collection[tuple[str, str]]
) -> float:
    """xtreme's ``bucc_optimize``: the margin threshold maximising F1 against gold (tune on dev/"sample").

    Walks candidates best first; when F1 improves, the threshold becomes the midpoint between this score
    and the next one. Deviation: when the best cut is after the LAST candidate (the script would raise
    IndexError) the threshold is that candidate's score, so ``bucc_scores`` (score >= threshold) keeps it.
    Returns 0.0 when no candidate is gold, as the script.
    """
    gold = set(gold_pairs)
    ranked = sorted(_best_score_per_pair(candidates).items(), key=lambda item: -item[1])
    n_correct = 0
    best_f1 = 0.0
    threshold = 0.0
    for n_extract, (pair, score) in enumerate(ranked, start=1):
        n_correct += int(pair in gold)
        if n_correct == 0:
            continue
        f1 = _f1(n_correct / n_extract, n_correct / len(gold))
        if f1 > best_f1:
            best_f1 = f1
            next_score = ranked[n_extract][1] if n_extract < len(ranked) else score
            threshold = (score + next_score) / 2
    return threshold


def bucc_scores(
    candidates: Sequence[Candidate], gold_pairs: Collection[tuple[str, str]], threshold: float
) -> dict[str, float]:
    """P/R/F1 (x100) of the candidates scoring >= ``threshold`` (xtreme ``bucc_extract`` + ``bucc_f1``).

    Protocol: ``t = bucc_optimize_threshold(dev_candidates, dev_gold)``, then ``bucc_scores(test..., t)``.
    """
    gold = set(gold_pairs)
    extracted = {pair for pair, score in _best_score_per_pair(candidates).items() if score >= threshold}
    n_correct = len(gold & extracted)
    if n_correct == 0:
        precision = recall = f1 = 0.0
    else:
        precision, recall = n_correct / len(extracted), n_correct / len(gold)
        f1 = _f1(precision, recall)
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1, "threshold": threshold}


def bucc_extracted(candidates: Sequence[Candidate], threshold: float) -> set[tuple[str, str]]:
    """The (source id, target id) pairs scoring >= ``threshold`` (xtreme ``bucc_extract``)."""
    return {pair for pair, score in _best_score_per_pair(candidates).items() if score >= threshold}


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall)


TatoebaDirection = Literal["en-xx", "xx-en"]
TATOEBA_DIRECTIONS: tuple[str, ...] = ("en-xx", "xx-en")


def nearest_neighbours(queries: np.ndarray, index: np.ndarray) -> list[int]:
    """Row of ``index`` most cosine-similar to each query row; ties go to the LOWEST index row.

    Same ranking as xtreme's faiss ``IndexFlatL2`` on L2-normalised vectors (L2^2 = 2 - 2 cos), whose
    exhaustive scan also keeps the first of equally distant rows.
    """
    _, inds = exact_knn(_l2_normalize(queries), _l2_normalize(index), 1)
    return [int(i) for i in inds[:, 0]]


def tatoeba_predictions(
    foreign_emb: np.ndarray, english_emb: np.ndarray, direction: TatoebaDirection = "en-xx"
) -> list[int]:
    """Tatoeba retrieval on gold-aligned rows (foreign row i translates English row i).

    ``en-xx`` (XTREME's ``similarity_search(x=foreign, y=english)``, the default): the foreign sentences
    are indexed and each ENGLISH sentence queries them; returns, per English row, the foreign row it
    retrieves. ``xx-en`` (LASER's and jiant's direction): each foreign row retrieves an English row.
    """
    if direction == "en-xx":
        return nearest_neighbours(english_emb, foreign_emb)
    if direction == "xx-en":
        return nearest_neighbours(foreign_emb, english_emb)
    raise ValueError(
        f"unknown Tatoeba direction {direction!r}; expected one of {', '.join(TATOEBA_DIRECTIONS)}"
    )


def rank_candidates(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` candidate columns per query row, best first; equal scores rank by ascending index.

    The one ranking both the metric and the prediction files use.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be 2-D (queries x candidates), got shape {matrix.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return top_k_indices(matrix, min(k, matrix.shape[1]))


def average_precision_at_k(ranked: Sequence[object], relevant: Collection[object], k: int = 20) -> float:
    """AP@k in [0, 1] as xtreme's ``average_precision_at_k``: sum over the hits in the first k of
    (hits so far / rank), divided by min(|relevant|, k). A repeated prediction counts once. A query with
    no relevant candidate in the pool scores 0 (Mewsli-X's evaluation: its gold never matches)."""
    if not relevant:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for rank, candidate in enumerate(list(ranked)[:k], start=1):
        if candidate in relevant and candidate not in seen:
            hits += 1
            total += hits / rank
        seen.add(candidate)
    return total / min(len(relevant), k)


def mean_average_precision_at_k(
    scores: np.ndarray, relevant: Sequence[Collection[int]], k: int = 20
) -> float:
    """mAP@k (x100) as xtreme's ``mean_avg_prec_at_k`` (LAReQA); with one gold entity it is Mewsli-X's
    MRR@20. Rankings from `rank_candidates` (ties: ascending index, where the script's
    ``argsort()[::-1]`` leaves them to numpy's unstable sort). A query whose relevant set is empty (its
    gold is not in the pool) counts with 0, as Mewsli-X's official evaluation scores it."""
    ranked = rank_candidates(scores, k)
    _check_lengths(ranked, relevant, "score rows", "relevant sets")
    values = [
        average_precision_at_k([int(c) for c in row], targets, k)
        for row, targets in zip(ranked, relevant, strict=True)
    ]
    return 100.0 * float(np.mean(values))


# --------------------------------------------------------------------------- aggregation


def xtreme_average(task_scores: Mapping[str, float]) -> float:
    """Plain mean of per-task scores (each task already averaged over its languages)."""
    if not task_scores:
        raise ValueError("no task scores to average")
    return sum(task_scores.values()) / len(task_scores)


def _check_lengths(a: Sized, b: Sized, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} {name_a} but {len(b)} {name_b}")
    if len(a) == 0:
        raise ValueError(f"no {name_a} to score")
