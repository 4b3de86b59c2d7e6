"""Hand-worked cases for xstilts.evaluate.qa_decode."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.evaluate.qa_decode import (
    best_span_in_window,
    decode_qa,
    is_context_offset,
)

# "Bob moved to Rome in 2001"
#  0123456789012345678901234
# tokens: Bob (0,3)  moved (4,9)  to (10,12)  Rome (13,17)  in (18,20)  2001 (21,25)
CONTEXT = "Bob moved to Rome in 2001"


def test_context_offset_markers() -> None:
    assert is_context_offset((4, 9))
    assert is_context_offset((0, 3))
    assert not is_context_offset(None)
    assert not is_context_offset((0, 0))
    assert not is_context_offset((-1, -1))


def test_best_span_is_in_second_window() -> None:
    # window 1: <s> q </s> Bob moved to </s>          window 2: <s> q </s> to Rome in 2001 </s> + 1 pad
    window1 = [(0, 0), None, (0, 0), (0, 3), (4, 9), (10, 12), (0, 0)]
    window2 = [(0, 0), (-1, -1), (0, 0), (10, 12), (13, 17), (18, 20), (21, 25), (0, 0)]
    # padded to 9 logits each; positions past the offsets (padding) are never valid
    start = np.zeros((2, 9))
    end = np.zeros((2, 9))
    # window 1: CLS/question logits are huge but invalid; best valid is Bob..Bob = 2 + 1 = 3
    start[0, [0, 1, 3]] = [10.0, 9.0, 2.0]
    end[0, [0, 1, 3]] = [10.0, 9.0, 1.0]
    # window 2: Rome..Rome = 3 + 2.5 = 5.5 wins overall. start "Rome"(4) + end "to"(3) = 3 + 4 = 7 is
    # higher but end < start; "to".."to" = .5 + 4 = 4.5 and "to".."Rome" = .5 + 2.5 = 3 are lower.
    # The padding slot 8 (100) and the question token 1 (9) are ignored.
    start[1, [1, 3, 4, 8]] = [9.0, 0.5, 3.0, 100.0]
    end[1, [1, 3, 4, 8]] = [9.0, 4.0, 2.5, 100.0]
    features = [{"example_id": "q1", "offsets": window1}, {"example_id": "q1", "offsets": window2}]
    assert decode_qa(features, start, end, {"q1": CONTEXT}) == {"q1": "Rome"}


def test_max_answer_length_and_n_best() -> None:
    offsets = [(0, 0), (0, 3), (4, 9), (10, 12), (13, 17)]
    start = np.array([0.0, 5.0, 0.0, 0.0, 1.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 5.0])
    # Bob..Rome = 5 + 5 = 10 spans 4 tokens
    assert best_span_in_window(offsets, start, end, max_answer_length=4) == (10.0, 0, 17)
    # at most 3 tokens: Bob..Rome is out; Rome..Rome = 1 + 5 = 6 beats Bob..Bob = 5 + 0 = 5
    assert best_span_in_window(offsets, start, end, max_answer_length=3) == (6.0, 13, 17)
    # n_best = 1 pairs only start 1 with end 4 (too long): nothing left, like HF's n-best filter
    assert best_span_in_window(offsets, start, end, n_best=1, max_answer_length=3) is None
    features = [{"example_id": "q", "offsets": offsets}]
    assert decode_qa(features, start[None], end[None], {"q": CONTEXT}, n_best=1, max_answer_length=3) == {
        "q": ""
    }
    assert decode_qa(features, start[None], end[None], {"q": CONTEXT}, max_answer_length=3) == {"q": "Rome"}


def test_equal_scores_first_window_wins() -> None:
    # both windows score 2 + 0 = 2 on their only valid token; the first window's span is kept
    features = [
        {"example_id": "q", "offsets": [(0, 0), (0, 3)]},
        {"example_id": "q", "offsets": [(0, 0), (13, 17)]},
    ]
    start = np.array([[0.0, 2.0], [0.0, 2.0]])
    end = np.zeros((2, 2))
    assert decode_qa(features, start, end, {"q": CONTEXT}) == {"q": "Bob"}


def test_examples_without_features_get_empty_answer_and_unknown_ids_fail() -> None:
    features = [{"example_id": "q", "offsets": [(0, 0), (0, 3)]}]
    logits = [np.array([0.0, 1.0])]
    assert decode_qa(features, logits, logits, {"q": CONTEXT, "other": "x"}) == {"q": "Bob", "other": ""}
    with pytest.raises(ValueError):
        decode_qa(features, logits, logits, {"missing": CONTEXT})
    with pytest.raises(ValueError):
        decode_qa(features, logits, [], {"q": CONTEXT})
