"""Hand-worked cases for xstilts.data.labels: the training labels of tagging and extractive QA."""

from __future__ import annotations

import pytest

from xstilts.data.labels import IGNORE_INDEX, char_span_to_token_positions, first_subword_labels

# "Bob moved to Rome in 2001"
#  0123456789012345678901234
CONTEXT = "Bob moved to Rome in 2001"


def test_first_subword_labels_marks_only_first_piece() -> None:
    # <s> Wash ##ing ton is here </s>  with words 0: "Washington" (3 pieces), 1: "is", 2: "here"
    word_ids = [None, 0, 0, 0, 1, 2, None]
    assert first_subword_labels(word_ids, [5, 3, 0]) == [
        IGNORE_INDEX, 5, IGNORE_INDEX, IGNORE_INDEX, 3, 0, IGNORE_INDEX,
    ]  # fmt: skip
    assert first_subword_labels([None, 0, 1], [4, 2], ignore_index=-1) == [-1, 4, 2]


# XLM-R pair layout: <s> question </s></s> context </s>; this window holds the context from char 10:
#   index:    0       1      2      3       4       5        6        7        8
#   offsets: (0,0)  (0,5)  (6,9)  (0,0)  (0,0)  (10,12)  (13,17)  (18,20)  (0,0)
#   seq ids:  None    0      0     None   None     1        1        1      None
OFFSETS = [(0, 0), (0, 5), (6, 9), (0, 0), (0, 0), (10, 12), (13, 17), (18, 20), (0, 0)]
SEQ_IDS = [None, 0, 0, None, None, 1, 1, 1, None]


@pytest.mark.parametrize(
    ("start_char", "text", "expected"),
    [
        (13, "Rome", (6, 6)),  # one token
        (10, "to Rome", (5, 6)),  # two tokens
        (18, "in", (7, 7)),  # last context token
        (14, "ome", (6, 6)),  # starts mid-token: the token containing it
        (4, "moved", (0, 0)),  # before the window -> CLS
        (18, "in 2001", (0, 0)),  # runs past the window's end -> CLS
    ],
)
def test_char_span_to_token_positions(start_char: int, text: str, expected: tuple[int, int]) -> None:
    assert CONTEXT[start_char : start_char + len(text)] == text
    assert char_span_to_token_positions(OFFSETS, SEQ_IDS, start_char, text) == expected


def test_char_span_ignores_question_tokens_and_honours_cls_index() -> None:
    # the question tokens (0,5) and (6,9) overlap chars 4..9 but are sequence 0: "moved" is still outside
    assert char_span_to_token_positions(OFFSETS, SEQ_IDS, 4, "moved", cls_index=8) == (8, 8)
    # question-first is sequence 0 when the context comes first
    flipped = [None if s is None else 1 - s for s in SEQ_IDS]
    assert char_span_to_token_positions(OFFSETS, flipped, 13, "Rome", context_sequence_id=0) == (6, 6)
