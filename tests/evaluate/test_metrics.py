"""Hand-worked cases for xstilts.evaluate.metrics; every expected number is derived in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xstilts.data.labels import first_subword_labels
from xstilts.evaluate.metrics import (
    accuracy,
    bucc_candidates,
    bucc_optimize_threshold,
    bucc_scores,
    mean_average_precision_at_k,
    mixed_segmentation,
    mlqa_scores,
    nearest_neighbours,
    normalize_mlqa_answer,
    normalize_squad_answer,
    squad_scores,
    tagging_f1,
    tatoeba_predictions,
    words_from_first_subwords,
    xtreme_average,
)

# ----------------------------------------------------------------------------- accuracy / average


def test_accuracy_counts_exact_matches_on_0_100_scale() -> None:
    # matches at positions 0 and 2 -> 2/4 = 50 %
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == pytest.approx(50.0)
    assert accuracy(["entailment", "neutral"], ["entailment", "neutral"]) == pytest.approx(100.0)


def test_accuracy_rejects_mismatched_or_empty_inputs() -> None:
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError):
        accuracy([], [])


def test_xtreme_average_is_plain_mean() -> None:
    # (80 + 90 + 70) / 3 = 80
    assert xtreme_average({"xnli": 80.0, "pawsx": 90.0, "panx": 70.0}) == pytest.approx(80.0)
    with pytest.raises(ValueError):
        xtreme_average({})


# ----------------------------------------------------------------------------- tagging


def test_tagging_f1_entity_spans() -> None:
    # gold chunks: PER(0-1), LOC(3); pred chunks: PER(0-1), ORG(3) -> 1 correct of 2 and 2
    # P = 1/2, R = 1/2, F1 = 1/2
    scores = tagging_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert scores == pytest.approx({"f1": 50.0, "precision": 50.0, "recall": 50.0})


def test_tagging_f1_default_mode_accepts_i_without_b() -> None:
    # seqeval default (conlleval) mode: I-PER after O opens a PER chunk -> chunk PER(0-1) on both sides
    assert tagging_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == pytest.approx(100.0)


def test_tagging_f1_raw_upos_tags_merge_runs_into_one_chunk() -> None:
    # seqeval 1.2.2 reads "NOUN" as tag "N" + type "OUN"; a run of equal raw tags is ONE chunk.
    # gold NOUN NOUN VERB -> chunks (OUN, 0-1), (ERB, 2); pred NOUN VERB VERB -> (OUN, 0), (ERB, 1-2)
    # no chunk matches exactly -> F1 = 0 although 2 of 3 tokens are right.
    scores = tagging_f1([["NOUN", "NOUN", "VERB"]], [["NOUN", "VERB", "VERB"]])
    assert scores == pytest.approx({"f1": 0.0, "precision": 0.0, "recall": 0.0})
    # Identical sequences still score 100.
    assert tagging_f1([["NOUN", "VERB", "NOUN"]], [["NOUN", "VERB", "NOUN"]])["f1"] == pytest.approx(100.0)


def test_tagging_f1_raw_upos_cconj_and_sconj_share_a_type() -> None:
    # seqeval 1.x, which is why UD-POS is not scored with it (udpos_f1, tests/evaluate/test_protocols.py):
    # "CCONJ" -> type "CONJ", "SCONJ" -> tag "S" (single-token chunk) + type "CONJ": same chunk (CONJ, 0)
    assert tagging_f1([["SCONJ"]], [["CCONJ"]])["f1"] == pytest.approx(100.0)


def test_tagging_f1_does_not_merge_across_sentences() -> None:
    # gold: (OUN, s1), (OUN, s2) -- two chunks; pred: (OUN, s1), (ERB, s2) -> 1 correct, P = R = 1/2
    scores = tagging_f1([["NOUN"], ["NOUN"]], [["NOUN"], ["VERB"]])
    assert scores == pytest.approx({"f1": 50.0, "precision": 50.0, "recall": 50.0})


def test_tagging_f1_rejects_ragged_input() -> None:
    with pytest.raises(ValueError):
        tagging_f1([["O", "O"]], [["O"]])


def test_words_from_first_subwords_reads_first_piece_and_fills_truncated_words() -> None:
    # word 0 has pieces at 1-2 (predictions 4, 8 -> take 4), word 1 at 3 (6); word 2 was truncated away.
    word_ids = [None, 0, 0, 1, None]
    token_predictions = [9, 4, 8, 6, 9]
    assert words_from_first_subwords(word_ids, token_predictions, num_words=3, fallback=0) == [4, 6, 0]
    assert words_from_first_subwords(word_ids, token_predictions, num_words=3, fallback=7) == [4, 6, 7]
    # Without num_words only the words seen in the window are returned.
    assert words_from_first_subwords(word_ids, token_predictions) == [4, 6]


def test_subword_round_trip() -> None:
    word_ids = [None, 0, 1, 1, 1, 2, 3, 3, None]
    labels = first_subword_labels(word_ids, [1, 2, 3, 4])
    assert words_from_first_subwords(word_ids, labels) == [1, 2, 3, 4]


# ----------------------------------------------------------------------------- SQuAD


def test_normalize_squad_answer() -> None:
    # lowercase, ASCII punctuation out, a/an/the out (whole words only), whitespace collapsed
    assert normalize_squad_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_squad_answer("an ant") == "ant"
    # Unicode guillemets are not ASCII punctuation: SQuAD keeps them
    assert normalize_squad_answer("«Paris»") == "«paris»"


def test_squad_scores_max_over_golds_and_missing_predictions() -> None:
    references = {
        "q1": ["Eiffel Tower"],
        "q2": ["Paris", "city of Paris"],
        "q3": ["1889"],
    }
    predictions = {"q1": "The Eiffel Tower!", "q2": "in the city of Paris", "unused": "x"}
    # q1: exact after normalisation -> EM 1, F1 1
    # q2: pred -> "in city of paris" (4 tokens)
    #     vs "paris": 1 common -> P 1/4, R 1 -> F1 0.4
    #     vs "city of paris": 3 common -> P 3/4, R 1 -> F1 = 1.5 / 1.75 = 6/7   (max)
    # q3: unanswered -> 0
    # EM = 1/3 * 100 = 33.33..., F1 = (1 + 6/7) / 3 * 100 = 13/21 * 100 = 61.904...
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * 13 / 21)


def test_squad_scores_rejects_bare_string_reference() -> None:
    with pytest.raises(ValueError):
        squad_scores({"q": "a"}, {"q": "a"})  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- MLQA


def test_mlqa_zh_is_scored_per_character() -> None:
    references = {"z1": ["北京"], "z2": ["iPhone"]}
    predictions = {"z1": "北京大学", "z2": "“iPhone”手机"}
    # z1: pred chars 北 京 大 学 (4), gold 北 京 (2): 2 common -> P 1/2, R 1 -> F1 2/3, EM 0
    # z2: lower + strip “ ” -> "iphone手机" -> ["iphone", "手", "机"]; gold ["iphone"]
    #     1 common -> P 1/3, R 1 -> F1 = (2/3) / (4/3) = 1/2, EM 0
    # F1 = (2/3 + 1/2) / 2 * 100 = 7/12 * 100 = 58.33...
    scores = mlqa_scores(predictions, references, "zh")
    assert scores["exact_match"] == pytest.approx(0.0)
    assert scores["f1"] == pytest.approx(100 * 7 / 12)


def test_mlqa_mixed_segmentation() -> None:
    # CJK chars alone, latin runs kept together and split on whitespace
    assert mixed_segmentation("abc北京def ghi") == ["abc", "北", "京", "def", "ghi"]
    assert normalize_mlqa_answer("北京 大学。", "zh") == "北 京 大 学"
    # U+9FA6 is outside the script's [\u4e00-\u9fa5] range: treated like a latin run, not split
    assert normalize_mlqa_answer("\u9fa6\u9fa6", "zh") == "\u9fa6\u9fa6"


def test_mlqa_spanish_articles() -> None:
    # "El Real Madrid." -> "el real madrid" -> article "el" removed -> "real madrid"
    assert normalize_mlqa_answer("El Real Madrid.", "es") == "real madrid"
    # "la" inside a word is not an article (word boundaries)
    assert normalize_mlqa_answer("¡Málaga!", "es") == "málaga"
    assert mlqa_scores({"q": "El Real Madrid."}, {"q": ["Real Madrid"]}, "es")["exact_match"] == 100.0
    # SQuAD normalisation knows only English articles: EM 0 there
    assert squad_scores({"q": "El Real Madrid."}, {"q": ["Real Madrid"]})["exact_match"] == 0.0


def test_mlqa_german_articles() -> None:
    # der/die removed as words; the "die" ending of "Studie" stays
    assert normalize_mlqa_answer("Der Bundestag, die Studie", "de") == "bundestag studie"
    assert normalize_mlqa_answer("einem Haus", "de") == "haus"


def test_mlqa_arabic_al_is_removed_everywhere() -> None:
    # The official regex '\sال^|ال' replaces EVERY "ال" with a space, not only the prefix.
    assert normalize_mlqa_answer("الكتاب", "ar") == "كتاب"
    assert normalize_mlqa_answer("مال", "ar") == "م"  # "ma-al": the trailing "ال" goes too
    assert mlqa_scores({"q": "الكتاب"}, {"q": ["كتاب"]}, "ar")["exact_match"] == 100.0


def test_mlqa_vietnamese_hindi_english() -> None:
    assert normalize_mlqa_answer("của Việt Nam", "vi") == "việt nam"
    assert normalize_mlqa_answer("the Taj", "hi") == "the taj"  # no article removal for hi
    # Unicode punctuation (guillemets, em dash) is stripped; dots vanish without a space
    assert normalize_mlqa_answer("«The U.S.A.» — now", "en") == "usa now"
    assert normalize_mlqa_answer("well-known", "en") == "wellknown"


def test_mlqa_f1_whitespace_language() -> None:
    # de: pred "die neue Regierung" -> "neue regierung"; gold "Regierung" -> "regierung"
    # 1 common -> P 1/2, R 1 -> F1 2/3; EM 0
    scores = mlqa_scores({"q": "die neue Regierung"}, {"q": ["Regierung"]}, "de")
    assert scores == pytest.approx({"exact_match": 0.0, "f1": 100 * 2 / 3})


def test_mlqa_unknown_language() -> None:
    with pytest.raises(ValueError):
        mlqa_scores({"q": "x"}, {"q": ["x"]}, "fr")


# ----------------------------------------------------------------------------- BUCC

# Three source and three target sentences in 3-D, k = 2 neighbours each way:
#   x0 = (1,0,0)  x1 = (0,1,0)  x2 = (0,0,1)
#   y0 = (1,0,0)  y1 = (0,1,0)  y2 = (0,.6,.8)
# cosines: x0: [1, 0, 0]   x1: [0, 1, .6]   x2: [0, 0, .8]
# forward 2-NN means:  x0 (1+0)/2 = .5   x1 (1+.6)/2 = .8   x2 (.8+0)/2 = .4
# backward 2-NN means: y0 (1+0)/2 = .5   y1 (1+0)/2 = .5    y2 (.8+.6)/2 = .7
# margins: (x0,y0) = 1 / ((.5+.5)/2) = 2
#          (x1,y1) = 1 / ((.8+.5)/2) = 1/.65 = 1.53846...
#          (x1,y2) = .6 / ((.8+.7)/2) = .8
#          (x2,y2) = .8 / ((.4+.7)/2) = .8/.55 = 1.45454...
# forward and backward best matches agree: (x0,y0), (x1,y1), (x2,y2); gold holds only the first two.
SRC = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
TGT = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0.6, 0.8]])
SRC_IDS = ["de-0", "de-1", "de-2"]
TGT_IDS = ["en-0", "en-1", "en-2"]
GOLD = {("de-0", "en-0"), ("de-1", "en-1")}
S00, S11, S22 = 2.0, 1 / 0.65, 0.8 / 0.55


def _as_tuples(candidates: list[tuple[float, str, str]]) -> list[tuple[str, str]]:
    return [(s, t) for _, s, t in candidates]


def test_bucc_candidates_ratio_margin() -> None:
    candidates = bucc_candidates(SRC, TGT, SRC_IDS, TGT_IDS, k=2)
    assert _as_tuples(candidates) == [("de-0", "en-0"), ("de-1", "en-1"), ("de-2", "en-2")]
    assert [c[0] for c in candidates] == pytest.approx([S00, S11, S22])


def test_bucc_candidates_normalise_embeddings() -> None:
    # scaling rows changes nothing: cosine
    scaled = bucc_candidates(SRC * np.array([[3.0], [0.5], [7.0]]), TGT * 2.0, SRC_IDS, TGT_IDS, k=2)
    assert [c[0] for c in scaled] == pytest.approx([S00, S11, S22])


def test_bucc_threshold_excludes_the_wrong_pair() -> None:
    candidates = bucc_candidates(SRC, TGT, SRC_IDS, TGT_IDS, k=2)
    # ranked: (x0,y0) gold -> P 1, R 1/2, F1 2/3; (x1,y1) gold -> P 1, R 1, F1 1 (best);
    # (x2,y2) wrong -> P 2/3, R 1, F1 .8. Best cut after the 2nd: threshold = (S11 + S22) / 2
    threshold = bucc_optimize_threshold(candidates, GOLD)
    assert threshold == pytest.approx((S11 + S22) / 2)
    assert bucc_scores(candidates, GOLD, threshold) == pytest.approx(
        {"precision": 100.0, "recall": 100.0, "f1": 100.0, "threshold": threshold}
    )
    # No threshold: all three kept -> P 2/3, R 1, F1 = 2*(2/3)/(5/3) = .8
    assert bucc_scores(candidates, GOLD, 0.0) == pytest.approx(
        {"precision": 200 / 3, "recall": 100.0, "f1": 80.0, "threshold": 0.0}
    )


def test_bucc_dev_threshold_reused_on_test() -> None:
    dev_threshold = (S11 + S22) / 2  # ~1.4965
    test_candidates = [(1.6, "a", "b"), (1.5, "c", "d"), (1.2, "e", "f")]
    test_gold = {("a", "b"), ("e", "f"), ("g", "h")}
    # kept: (a,b) gold, (c,d) wrong -> P 1/2, R 1/3, F1 = 2*(1/6)/(5/6) = .4
    scores = bucc_scores(test_candidates, test_gold, dev_threshold)
    assert scores == pytest.approx(
        {"precision": 50.0, "recall": 100 / 3, "f1": 40.0, "threshold": dev_threshold}
    )


def test_bucc_optimize_best_cut_after_last_candidate() -> None:
    # both candidates gold: F1 peaks at the last one; the script would index past the end. Threshold = 2.0
    candidates = [(3.0, "a", "b"), (2.0, "c", "d")]
    gold = {("a", "b"), ("c", "d")}
    threshold = bucc_optimize_threshold(candidates, gold)
    assert threshold == pytest.approx(2.0)
    assert bucc_scores(candidates, gold, threshold)["f1"] == pytest.approx(100.0)


def test_bucc_optimize_without_any_gold_candidate_returns_zero() -> None:
    assert bucc_optimize_threshold([(3.0, "a", "b")], {("x", "y")}) == 0.0
    assert bucc_scores([(3.0, "a", "b")], {("x", "y")}, 0.0)["f1"] == 0.0


def test_bucc_duplicate_texts_share_one_embedding_and_map_to_every_id() -> None:
    # de-3 repeats de-1's sentence. Collapsed, the unique rows are exactly SRC, so the scores are those
    # above, and the mined (x1,y1) pair is reported for both ids carrying the text.
    src = np.vstack([SRC, SRC[1:2]])
    src_ids = [*SRC_IDS, "de-3"]
    src_texts = ["A", "B", "C", "B "]  # stripped before comparison
    tgt_texts = ["a", "b", "c"]
    candidates = bucc_candidates(src, TGT, src_ids, TGT_IDS, src_texts, tgt_texts, k=2, duplicates="all")
    assert _as_tuples(candidates) == [
        ("de-0", "en-0"), ("de-1", "en-1"), ("de-3", "en-1"), ("de-2", "en-2"),
    ]  # fmt: skip
    assert [c[0] for c in candidates] == pytest.approx([S00, S11, S11, S22])
    # xtreme's read_sent2id (the default) instead drops sentences that occur more than once
    dropped = bucc_candidates(src, TGT, src_ids, TGT_IDS, src_texts, tgt_texts, k=2)
    assert _as_tuples(dropped) == [("de-0", "en-0"), ("de-2", "en-2")]


def test_bucc_without_texts_duplicates_distort_the_margin() -> None:
    # Same data, no texts: x3 = x1 is a separate row. Backward 2-NN mean of y1 becomes (1+1)/2 = 1, so
    # (x1,y1) = 1 / ((.8+1)/2) = 1/.9; x1 and x3 tie for y1, the lower index (x1) wins, x3 is left out.
    # Others unchanged: (x0,y0) = 2, (x2,y2) = .8/.55 (y2's 2-NN are still x2 .8 and x1 .6).
    src = np.vstack([SRC, SRC[1:2]])
    candidates = bucc_candidates(src, TGT, [*SRC_IDS, "de-3"], TGT_IDS, k=2)
    assert _as_tuples(candidates) == [("de-0", "en-0"), ("de-2", "en-2"), ("de-1", "en-1")]
    assert [c[0] for c in candidates] == pytest.approx([2.0, S22, 1 / 0.9])


def test_bucc_greedy_max_keeps_each_target_once() -> None:
    # 2-D, default k=4 -> 2 forward neighbours (2 targets), 3 backward (3 sources):
    #   x0 = (1,0), x1 = (0,1), x2 = (1/2, r) with r = sqrt(3)/2;  y0 = (1,0), y1 = (0,1)
    # forward means: x0 .5, x1 .5, x2 (1/2 + r)/2;  backward means: y0 (1+0+1/2)/3 = .5, y1 (0+1+r)/3
    # (x1,y1) = 1 / ((.5 + (1+r)/3)/2); (x2,y1) = r / (((1/2+r)/2 + (1+r)/3)/2) ~ 1.327 is x2's best,
    # but y1 is already taken by the higher-scoring (x1,y1) ~ 1.783, so x2 is not paired.
    r = math.sqrt(3) / 2
    src = np.array([[1.0, 0], [0, 1], [0.5, r]])
    tgt = np.array([[1.0, 0], [0, 1]])
    candidates = bucc_candidates(src, tgt, ["s0", "s1", "s2"], ["t0", "t1"])
    assert _as_tuples(candidates) == [("s0", "t0"), ("s1", "t1")]
    assert [c[0] for c in candidates] == pytest.approx([2.0, 1 / ((0.5 + (1 + r) / 3) / 2)])


# ----------------------------------------------------------------------------- Tatoeba


def test_nearest_neighbour_with_ties_to_lowest_index() -> None:
    # targets: t0 = (0,3) (long vector), t1 = t2 = (1,0) (exact tie), t3 = (1,1)
    tgt = np.array([[0.0, 3.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # s0 = (5,0): cos 1 with t1 and t2 -> lowest index 1 (gold 2: wrong)
    # s1 = (0,.1): cos 1 with t0 -> 0 (right)
    # s2 = (1,1): cos 1 with t3 -> 3 (right)
    # s3 = (1,.9): cos t3 = 1.9/(sqrt2*sqrt1.81) = .9986, cos t1 = 1/sqrt1.81 = .743,
    #     cos t0 = .9/sqrt1.81 = .669
    #     -> 3 (gold 1: wrong). A raw dot product would pick t0 (2.7 > 1.9): normalisation matters.
    src = np.array([[5.0, 0.0], [0.0, 0.1], [1.0, 1.0], [1.0, 0.9]])
    assert nearest_neighbours(src, tgt) == [1, 0, 3, 3]
    assert accuracy(nearest_neighbours(src, tgt), [2, 0, 3, 1]) == pytest.approx(50.0)
    # xx-en: the rows above are the foreign side querying the English one
    assert tatoeba_predictions(src, tgt, "xx-en") == [1, 0, 3, 3]


# ----------------------------------------------------------------------------- mAP@k


def test_map_at_k_with_ties_broken_by_lowest_index() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.8, 0.3, 0.8],  # ranking 0, 2, 4 (2 and 4 tie: 2 first), 3, 1
            [0.1, 0.2, 0.3, 0.4, 0.5],  # ranking 4, 3, 2, 1, 0
        ]
    )
    # q0, relevant {2, 3}, k = 3: top-3 = [0, 2, 4]; hit at rank 2 -> 1/2; divisor min(2, 3) = 2 -> AP .25
    #     (had 4 come before 2 the hit would be at rank 3 -> AP 1/6)
    # q1, relevant {4}: hit at rank 1 -> AP 1
    # mAP = (.25 + 1) / 2 = .625 -> 62.5
    assert mean_average_precision_at_k(scores, [{2, 3}, {4}], k=3) == pytest.approx(62.5)


def test_map_at_k_cutoff_and_divisor() -> None:
    # relevant beyond the cut-off earns nothing: candidate 0 ranks 5th in the second row above
    assert mean_average_precision_at_k(np.array([[0.1, 0.2, 0.3, 0.4, 0.5]]), [{0}], k=3) == 0.0
    # 3 relevant, k = 2: hits at ranks 1 and 2 -> (1/1 + 2/2) / min(3, 2) = 1 -> 100
    assert mean_average_precision_at_k(np.array([[3.0, 2.0, 1.0]]), [{0, 1, 2}], k=2) == pytest.approx(100.0)
    # Mewsli-X: one gold entity at rank 2 -> reciprocal rank 1/2 -> 50
    assert mean_average_precision_at_k(np.array([[0.2, 0.9, 0.5]]), [{2}]) == pytest.approx(50.0)


def test_map_at_k_query_without_relevant_candidate_scores_zero() -> None:
    # Mewsli-X: a gold entity missing from the pool is never retrieved, so that query scores 0 (counted)
    scores = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert mean_average_precision_at_k(scores, [set(), {0}]) == pytest.approx(50.0)


def test_device_knn_matches_the_exact_search_with_ties() -> None:
    import torch

    from xstilts.evaluate.knn import device_knn
    from xstilts.evaluate.metrics import exact_knn

    rng = np.random.default_rng(0)
    # small integer vectors: many exact ties, some of them across the fetched candidates
    queries = rng.integers(0, 2, size=(50, 3)).astype(np.float32)
    database = rng.integers(0, 2, size=(40, 3)).astype(np.float32)
    for k in (1, 4, 40):
        sims, inds = device_knn(torch.device("cpu"))(queries, database, k)
        ref_sims, ref_inds = exact_knn(queries, database, k)
        assert np.array_equal(inds, ref_inds) and np.allclose(sims, ref_sims), k
