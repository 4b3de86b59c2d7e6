"""Training labels from annotations: a tagging example's word labels on its first sub-words, an
extractive-QA answer's character span as token positions in one doc-stride window. Feature building
(`xstilts.data.features`) calls these; evaluation reads predictions back with their inverses
(`xstilts.evaluate.metrics.words_from_first_subwords`, `xstilts.evaluate.qa_decode.decode_qa`)."""

from __future__ import annotations

from collections.abc import Sequence

IGNORE_INDEX = -100  # the label a loss ignores (PyTorch's cross-entropy default)

Offset = Sequence[int] | None


def first_subword_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int], ignore_index: int = IGNORE_INDEX
) -> list[int]:
    """Token labels for training: the word's label on its first sub-word, ``ignore_index`` elsewhere.

    ``word_ids`` is what a fast tokenizer's ``word_ids()`` returns (None on special tokens).
    """
    labels: list[int] = []
    previous: int | None = None
    for word_id in word_ids:
        if word_id is None:
            labels.append(ignore_index)
        elif word_id != previous:
            labels.append(int(word_labels[word_id]))
        else:
            labels.append(ignore_index)
        previous = word_id
    return labels


def char_span_to_token_positions(
    offsets: Sequence[Offset],
    sequence_ids: Sequence[int | None],
    answer_start_char: int,
    answer_text: str,
    context_sequence_id: int = 1,
    cls_index: int = 0,
) -> tuple[int, int]:
    """Training labels (start_token, end_token) of an answer in one window, as HF ``prepare_train_features``.

    Returns (cls_index, cls_index) when the answer is not entirely inside this window's context.
    ``sequence_ids`` is the tokenizer's ``sequence_ids()``; the context is sequence 1 when the question
    comes first (pass 0 otherwise).
    """
    if len(offsets) != len(sequence_ids):
        raise ValueError(f"{len(offsets)} offsets but {len(sequence_ids)} sequence ids")
    context: list[tuple[int, int, int]] = []  # (token index, start char, end char)
    for i, (offset, seq_id) in enumerate(zip(offsets, sequence_ids, strict=True)):
        if seq_id == context_sequence_id and offset is not None:
            context.append((i, int(offset[0]), int(offset[1])))
    start_char = answer_start_char
    end_char = answer_start_char + len(answer_text)
    if not context or not (context[0][1] <= start_char and context[-1][2] >= end_char):
        return cls_index, cls_index
    start_token = max(i for i, tok_start, _ in context if tok_start <= start_char)
    end_token = min(i for i, _, tok_end in context if tok_end >= end_char)
    return start_token, end_token
