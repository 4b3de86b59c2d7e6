"""Raw Hugging Face rows -> canonical examples (see `xstilts.tasks.base`). One small function per schema."""

from __future__ import annotations

from typing import Any

from xstilts.tasks.base import Row

NLI_LABELS = ("entailment", "neutral", "contradiction")


def glue_pair(first: str, second: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"text_a": row[first], "text_b": row[second], "label": int(row["label"])}

    return adapt


def glue_single(field: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"text_a": row[field], "text_b": None, "label": int(row["label"])}

    return adapt


def xnli(row: Row) -> dict[str, Any]:
    return {"text_a": row["sentence1"], "text_b": row["sentence2"], "label": NLI_LABELS.index(row["gold_label"])}


def pawsx(row: Row) -> dict[str, Any]:
    # PAWS-X stores its label as the string "0" / "1" in google/xtreme.
    return {"text_a": row["sentence1"], "text_b": row["sentence2"], "label": int(row["label"])}


def squad(row: Row) -> dict[str, Any]:
    answers = row["answers"]
    return {
        "id": str(row["id"]),
        "context": row["context"],
        "question": row["question"],
        "answers": {"text": list(answers["text"]), "answer_start": [int(s) for s in answers["answer_start"]]},
    }


def tagging(tag_field: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"tokens": list(row["tokens"]), "tags": [int(t) for t in row[tag_field]]}

    return adapt


def hellaswag(row: Row) -> dict[str, Any]:
    # The label is a string in Rowan/hellaswag ("" on the unlabelled test split).
    return {"context": row["ctx"], "choices": list(row["endings"]), "label": int(row["label"])}


def tatoeba(row: Row) -> dict[str, Any]:
    return {
        "source": row["source_sentence"],
        "target": row["target_sentence"],
        "source_id": str(row.get("source_lang", "")),
        "target_id": str(row.get("target_lang", "")),
    }


def has_label(row: Row, _lang: str) -> bool:
    label = row.get("label")
    return label not in (None, "", -1, "-1")


def language_is(row: Row, lang: str) -> bool:
    return row["language"] == lang
