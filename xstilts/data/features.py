"""Canonical examples -> model features, one function per format. Features are plain dicts of Python
lists (no padding: batches are padded dynamically by `xstilts.data.batching`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xstilts.data.labels import char_span_to_token_positions, first_subword_labels
from xstilts.data.mlm import tokenize_lines
from xstilts.tasks import Format, TaskDef

Feature = dict[str, Any]


def classification(tokenizer, examples: list[dict], max_length: int, **_: Any) -> list[Feature]:
    first = [e["text_a"] for e in examples]
    second = [e["text_b"] for e in examples]
    has_pair = any(s is not None for s in second)
    enc = tokenizer(first, second if has_pair else None, truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "labels": e["label"], "example_index": i}
        for i, (ids, e) in enumerate(zip(enc["input_ids"], examples, strict=True))
    ]


def multiple_choice(tokenizer, examples: list[dict], max_length: int, **_: Any) -> list[Feature]:
    out = []
    for i, e in enumerate(examples):
        enc = tokenizer(
            [e["context"]] * len(e["choices"]), e["choices"], truncation=True, max_length=max_length
        )
        out.append({"input_ids": enc["input_ids"], "labels": e["label"], "example_index": i})
    return out


def tagging(tokenizer, examples: list[dict], max_length: int, **_: Any) -> list[Feature]:
    enc = tokenizer(
        [e["tokens"] for e in examples], is_split_into_words=True, truncation=True, max_length=max_length
    )
    out = []
    for i, e in enumerate(examples):
        word_ids = enc.word_ids(i)
        out.append({
            "input_ids": enc["input_ids"][i],
            "labels": first_subword_labels(word_ids, e["tags"]),
            "word_ids": word_ids,
            "example_index": i,
        })  # fmt: skip
    return out


def span_qa(
    tokenizer, examples: list[dict], max_length: int, doc_stride: int = 128, **_: Any
) -> list[Feature]:
    """Question + context windows (doc stride over the context). Each window keeps the context offsets
    (None elsewhere) for decoding, and start/end token labels (0, 0 = CLS when the answer is outside)."""
    enc = tokenizer(
        [e["question"] for e in examples],
        [e["context"] for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=min(doc_stride, max_length // 2),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    out = []
    for w, ids in enumerate(enc["input_ids"]):
        i = enc["overflow_to_sample_mapping"][w]
        sequence_ids = enc.sequence_ids(w)
        offsets = [
            tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][w], sequence_ids, strict=True)
        ]
        answers = examples[i]["answers"]
        start, end = 0, 0
        if answers["text"]:
            start, end = char_span_to_token_positions(
                enc["offset_mapping"][w], sequence_ids, answers["answer_start"][0], answers["text"][0]
            )
        out.append(
            {
                "input_ids": ids,
                "start_positions": start,
                "end_positions": end,
                "offsets": offsets,
                "example_id": examples[i]["id"],
                "example_index": i,
            }
        )
    return out


def retrieval(tokenizer, texts: list[str], max_length: int, **_: Any) -> list[Feature]:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return [{"input_ids": ids, "example_index": i} for i, ids in enumerate(enc["input_ids"])]


FEATURIZERS: dict[Format, Callable[..., list[Feature]]] = {
    Format.CLASSIFICATION: classification,
    Format.REGRESSION: classification,
    Format.MULTIPLE_CHOICE: multiple_choice,
    Format.TAGGING: tagging,
    Format.SPAN_QA: span_qa,
    Format.MLM: tokenize_lines,
}


def featurize(
    task: TaskDef, tokenizer, examples: list[dict], max_length: int, doc_stride: int = 128
) -> list[Feature]:
    return FEATURIZERS[task.format](tokenizer, examples, max_length=max_length, doc_stride=doc_stride)


def feature_length(feature: Feature) -> int:
    ids = feature["input_ids"]
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def real_tokens(feature: Feature) -> int:
    ids = feature["input_ids"]
    return sum(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)
