"""Span ("chunk") extraction for tagging F1, and the per-sentence counts the bootstrap resamples.

Two readings of a tag sequence are in use:

- ``legacy``: the chunking rules of seqeval 0.0.12, the version XTREME's published UD-POS numbers (and
  its ``evaluate_test.py`` expectation of 70.21746 on the mock data) were produced with. A tag's first
  character is its chunk tag and the text after the LAST ``-`` (the whole tag when there is none) is
  its type. So raw UPOS tags keep their own types: ``CCONJ`` and ``SCONJ`` differ, ``X`` is not the
  sentence separator ``O``. Tags that start with ``S`` (SCONJ, SYM) are single-token chunks, ``INTJ``
  behaves as an ``I`` tag, and a run of another identical tag (``NOUN NOUN``) is ONE chunk.
- ``seqeval``: the current seqeval (1.x) default mode, used for PAN-X (IOB2 tags, where both readings
  agree). It reads the type as everything after the first character (``CCONJ`` -> ``CONJ``, ``X`` ->
  ``_`` like ``O``); applied to raw UPOS it merges types the official numbers keep apart.

Both treat a list of sentences as one sequence with an ``O`` after every sentence, so no chunk crosses a
sentence and corpus counts are the sums of per-sentence counts (which is what the bootstrap resamples).
Reimplemented from the rules, so the unmaintained 0.0.12 release is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Chunk = tuple[str, int, int]  # (type, first index, last index)
Reading = Literal["legacy", "seqeval"]


def _legacy_parts(tag: str) -> tuple[str, str]:
    return tag[0], tag.split("-")[-1]


def _ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def legacy_chunks(tags: Sequence[str]) -> list[Chunk]:
    """seqeval 0.0.12's ``get_entities`` (prefix mode) of ONE sentence."""
    chunks: list[Chunk] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, label in enumerate([*tags, "O"]):
        tag, type_ = _legacy_parts(label)
        if _ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def seqeval_chunks(tags: Sequence[str]) -> list[Chunk]:
    """The installed seqeval's ``get_entities`` (default mode) of ONE sentence."""
    import warnings

    from seqeval.metrics.sequence_labeling import get_entities  # imports sklearn: keep it lazy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "NOUN seems not to be NE tag": expected for raw tags
        return [tuple(chunk) for chunk in get_entities(list(tags))]  # type: ignore[misc]


def chunks(tags: Sequence[str], reading: Reading) -> list[Chunk]:
    if reading == "legacy":
        return legacy_chunks(tags)
    if reading == "seqeval":
        return seqeval_chunks(tags)
    raise ValueError(f"unknown chunk reading {reading!r}; expected 'legacy' or 'seqeval'")


def sentence_counts(gold: Sequence[str], pred: Sequence[str], reading: Reading) -> tuple[int, int, int]:
    """(correct chunks, predicted chunks, gold chunks) of one sentence."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold tags but {len(pred)} predicted tags")
    gold_chunks, pred_chunks = set(chunks(gold, reading)), set(chunks(pred, reading))
    return len(gold_chunks & pred_chunks), len(pred_chunks), len(gold_chunks)


def prf_from_counts(correct: int, predicted: int, gold: int) -> dict[str, float]:
    """P/R/F1 (x100) with seqeval's arithmetic: p = correct / predicted (0 if none), r likewise,
    F1 = 2pr / (p + r) (0 if both are 0)."""
    p = correct / predicted if predicted > 0 else 0.0
    r = correct / gold if gold > 0 else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * p, "recall": 100.0 * r}
