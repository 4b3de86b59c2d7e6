"""Extractive-QA span decoding across doc-stride windows (numpy only); the training labels are made by
`xstilts.data.labels.char_span_to_token_positions`.

Decoding follows Hugging Face's ``postprocess_qa_predictions`` (SQuAD v1 path): per window, the top
``n_best`` start and end logits are paired; a pair is valid when both tokens are context tokens,
start <= end and the span has at most ``max_answer_length`` tokens; its score is start + end logit. The
best valid span over all windows of an example is mapped back to the context through the offsets.

Deviations from the HF function, all deliberate:
- an example with no valid span gets "" (HF writes the literal text "empty"; both score 0);
- equal logits are ranked by ascending token index (stable sort; HF's ``argsort()[::-1]`` leaves that
  order to numpy's quicksort), and among equal span scores the first window, then the first pair wins;
- answers are sliced from the original context through character offsets instead of jiant/XTREME's
  ``get_final_text`` whitespace-token projection.

Feature format: ``{"example_id": str, "offsets": [(start_char, end_char) | None, ...]}``. A token is a
context token when its offset is not None, not (0, 0) and not negative (e.g. (-1, -1)): set question and
special tokens to one of those, as HF's ``prepare_validation_features`` does with None.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.data.labels import Offset


def is_context_offset(offset: Offset) -> bool:
    """True for a token inside the context: None, (0, 0) and negative offsets mark everything else."""
    if offset is None or len(offset) != 2:
        return False
    start, end = int(offset[0]), int(offset[1])
    return start >= 0 and end >= 0 and (start, end) != (0, 0)


def _top_indices(logits: np.ndarray, n: int) -> list[int]:
    return [int(i) for i in np.argsort(-logits, kind="stable")[:n]]


def best_span_in_window(
    offsets: Sequence[Offset],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[float, int, int] | None:
    """Best valid (score, start_char, end_char) among the n-best start/end pairs of one window, or None.

    Logits may be longer than ``offsets`` (padding); those positions are never valid.
    """
    start = np.asarray(start_logits, dtype=np.float64)
    end = np.asarray(end_logits, dtype=np.float64)
    valid = [i < len(offsets) and is_context_offset(offsets[i]) for i in range(max(len(start), len(end)))]
    best: tuple[float, int, int] | None = None
    for s in _top_indices(start, n_best):
        if not valid[s]:
            continue
        for e in _top_indices(end, n_best):
            if not valid[e] or e < s or e - s + 1 > max_answer_length:
                continue
            score = float(start[s] + end[e])
            if best is None or score > best[0]:
                start_offset, end_offset = offsets[s], offsets[e]
                assert start_offset is not None and end_offset is not None
                best = (score, int(start_offset[0]), int(end_offset[1]))
    return best


def decode_qa(
    features: Sequence[Mapping[str, Any]],
    start_logits: np.ndarray | Sequence[np.ndarray],
    end_logits: np.ndarray | Sequence[np.ndarray],
    contexts: Mapping[str, str],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Answer text per example id (every id in ``contexts``; "" where no window offers a valid span).

    ``start_logits``/``end_logits`` are [n_features, seq_len] (or one 1-D array per feature), aligned
    with ``features``.
    """
    if not len(features) == len(start_logits) == len(end_logits):
        raise ValueError(
            f"{len(features)} features but {len(start_logits)} start and {len(end_logits)} end logit rows"
        )
    windows: dict[str, list[int]] = defaultdict(list)
    for i, feature in enumerate(features):
        windows[feature["example_id"]].append(i)
    unknown = set(windows) - set(contexts)
    if unknown:
        raise ValueError(f"features refer to example ids without a context: {sorted(unknown)[:5]}")

    predictions: dict[str, str] = {}
    for example_id, context in contexts.items():
        best: tuple[float, int, int] | None = None
        for i in windows.get(example_id, []):
            span = best_span_in_window(
                features[i]["offsets"], start_logits[i], end_logits[i], n_best, max_answer_length
            )
            if span is not None and (best is None or span[0] > best[0]):
                best = span
        predictions[example_id] = "" if best is None else context[best[1] : best[2]]
    return predictions
