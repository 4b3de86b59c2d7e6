"""Domain alignment between two datasets (e.g. an intermediate task and a target task), and its
rank correlation with transfer gain. numpy only: no torch, no scipy.

Text measures work on token counts from ``tokenize`` (``str.split`` by default; pass the model's
tokenizer for sub-word vocabularies). Embedding measures take ``[N, D]`` arrays of sentence embeddings
produced by the same encoder for both datasets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Tokenize = Callable[[str], Iterable[str]]


def token_counts(texts: Iterable[str], tokenize: Tokenize = str.split) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def _nonempty_counts(texts: Iterable[str], tokenize: Tokenize, which: str) -> Counter[str]:
    counts = token_counts(texts, tokenize)
    if not counts:
        raise ValueError(f"texts_{which} contain no tokens")
    return counts


def vocabulary_overlap(
    texts_a: Iterable[str], texts_b: Iterable[str], tokenize: Tokenize = str.split
) -> float:
    """Jaccard index of the two vocabularies (token types): ``|A & B| / |A | B|``."""
    vocab_a = set(_nonempty_counts(texts_a, tokenize, "a"))
    vocab_b = set(_nonempty_counts(texts_b, tokenize, "b"))
    return len(vocab_a & vocab_b) / len(vocab_a | vocab_b)


def _distributions(
    texts_a: Iterable[str], texts_b: Iterable[str], tokenize: Tokenize
) -> tuple[np.ndarray, np.ndarray]:
    """Unigram probabilities of both datasets over their joint vocabulary (same order)."""
    counts_a = _nonempty_counts(texts_a, tokenize, "a")
    counts_b = _nonempty_counts(texts_b, tokenize, "b")
    vocab = sorted(counts_a.keys() | counts_b.keys())
    p = np.array([counts_a[w] for w in vocab], dtype=float)
    q = np.array([counts_b[w] for w in vocab], dtype=float)
    return p / p.sum(), q / q.sum()


def weighted_vocabulary_overlap(
    texts_a: Iterable[str], texts_b: Iterable[str], tokenize: Tokenize = str.split
) -> float:
    """Weighted Jaccard (Ruzicka) of the unigram distributions: ``sum min(p, q) / sum max(p, q)``.

    Relative frequencies rather than raw counts, so a dataset ten times larger is not ten times heavier.
    """
    p, q = _distributions(texts_a, texts_b, tokenize)
    return float(np.minimum(p, q).sum() / np.maximum(p, q).sum())


def js_divergence(texts_a: Iterable[str], texts_b: Iterable[str], tokenize: Tokenize = str.split) -> float:
    """Jensen-Shannon divergence (base 2, so in [0, 1]) of the two unigram token distributions."""
    p, q = _distributions(texts_a, texts_b, tokenize)
    m = (p + q) / 2
    value = (_kl_base2(p, m) + _kl_base2(q, m)) / 2
    return float(min(1.0, max(0.0, value)))


def _kl_base2(p: np.ndarray, q: np.ndarray) -> float:
    support = p > 0
    return float(np.sum(p[support] * np.log2(p[support] / q[support])))


def embedding_cosine(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Cosine similarity of the mean embeddings of two ``[N, D]`` sets (``N`` may differ)."""
    a, b = np.asarray(emb_a, dtype=float), np.asarray(emb_b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"expected two non-empty [N, D] arrays with the same D, got {a.shape} and {b.shape}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    norms = np.linalg.norm(mean_a) * np.linalg.norm(mean_b)
    if norms == 0:
        raise ValueError("a mean embedding is the zero vector; cosine is undefined")
    return float(mean_a @ mean_b / norms)


def linear_cka(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two ``[N, D]`` and ``[N, D']`` sets
    whose rows are paired (the same examples in two languages): ``||B^T A||_F^2 / (||A^T A||_F
    ||B^T B||_F)`` on column-centred A and B; 1 for representations equal up to rotation and scale."""
    a, b = np.asarray(emb_a, dtype=float), np.asarray(emb_b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b) or len(a) < 2:
        raise ValueError(
            f"expected two [N, D] arrays with the same N >= 2 (paired rows), got {a.shape}, {b.shape}"
        )
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    norms = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    if norms == 0:
        raise ValueError("a constant representation; CKA is undefined")
    return float(cross / norms)


# --------------------------------------------------------------------------- correlation


def _paired(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"x and y must be 1-D and the same length, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError("need at least two pairs for a correlation")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x and y must be finite")
    return a, b


def rankdata(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the average of the ranks they span (scipy's 'average')."""
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="stable")
    sorted_values = a[order]
    ranks = np.empty(len(a), dtype=float)
    start = 0
    while start < len(a):
        end = start
        while end + 1 < len(a) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r; NaN when either input is constant (as scipy does)."""
    a, b = _paired(x, y)
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(da @ da) * float(db @ db))
    if denom == 0:
        return float("nan")
    return float(np.clip(da @ db / denom, -1.0, 1.0))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the average ranks (correct with ties); NaN for constant input."""
    a, b = _paired(x, y)
    return pearson(rankdata(a), rankdata(b))


def _residuals(values: np.ndarray, control: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(control)), control])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def partial_correlation(
    x: Sequence[float], y: Sequence[float], control: Sequence[float], rank: bool = True
) -> float:
    """The correlation of x and y with `control` held fixed: Pearson's r of the residuals of x and of y
    after a least-squares line on `control`; with `rank` (the default) on the average ranks of all three
    (partial Spearman). NaN when a residual is constant (e.g. x determined by the control)."""
    a, b = _paired(x, y)
    c, _ = _paired(control, y)
    if rank:
        a, b, c = rankdata(a), rankdata(b), rankdata(c)
    ra, rb = _residuals(a, c), _residuals(b, c)
    if np.allclose(ra, 0) or np.allclose(rb, 0):
        return float("nan")
    return pearson(ra, rb)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (tie-corrected, scipy's default); NaN for constant input."""
    from xstilts.evaluate.statistics import kendall_tau as tau

    a, b = _paired(x, y)
    return tau(a, b)


# --------------------------------------------------------------------------- reports


def alignment_measures(
    texts_a: Sequence[str],
    texts_b: Sequence[str],
    tokenize: Tokenize = str.split,
    emb_a: np.ndarray | None = None,
    emb_b: np.ndarray | None = None,
) -> dict[str, float]:
    """All alignment measures for one dataset pair; ``embedding_cosine`` only if both embeddings are given."""
    measures = {
        "vocabulary_overlap": vocabulary_overlap(texts_a, texts_b, tokenize),
        "weighted_vocabulary_overlap": weighted_vocabulary_overlap(texts_a, texts_b, tokenize),
        "js_divergence": js_divergence(texts_a, texts_b, tokenize),
    }
    if emb_a is not None and emb_b is not None:
        measures["embedding_cosine"] = embedding_cosine(emb_a, emb_b)
    return measures


def partial_report(
    pairs: Sequence[Mapping[str, Any]],
    measures: Sequence[str],
    *,
    control: str = "train_size",
    gain_key: str = "gain",
    replicates: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Partial Spearman correlation of each measure with the gain, controlling for `control` (the
    intermediate data size, on a log scale before ranking, which ranks leave unchanged), with a 95%
    percentile bootstrap interval over the pairs. Rows ``{"measure", "n", "partial", "low", "high"}``;
    NaN with fewer than four usable pairs."""
    rows = []
    for offset, name in enumerate(measures):
        usable = [p for p in pairs if all(_is_finite(p.get(k)) for k in (name, gain_key, control))]
        x = np.array([float(p[name]) for p in usable])
        y = np.array([float(p[gain_key]) for p in usable])
        c = np.array([float(p[control]) for p in usable])
        value = low = high = float("nan")
        if len(usable) >= 4:
            value = partial_correlation(x, y, c)
            rng = np.random.default_rng(seed + offset)
            draws = []
            for _ in range(replicates):
                pick = rng.integers(0, len(usable), len(usable))
                found = partial_correlation(x[pick], y[pick], c[pick]) if len(set(pick)) > 3 else float("nan")
                if math.isfinite(found):
                    draws.append(found)
            if draws:
                low, high = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
        rows.append({"measure": name, "n": len(usable), "partial": value, "low": low, "high": high})
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(float(value))


def _measure_names(pairs: Sequence[Mapping[str, Any]], gain_key: str, group_by: str | None) -> list[str]:
    names = {k for pair in pairs for k, v in pair.items() if _is_number(v)}
    return sorted(names - {gain_key, group_by or ""})


def alignment_report(
    pairs: Sequence[Mapping[str, Any]],
    *,
    measures: Sequence[str] | None = None,
    gain_key: str = "gain",
    group_by: str | None = None,
) -> list[dict[str, Any]]:
    """Correlate each alignment measure with transfer gain across dataset pairs.

    ``pairs`` are dicts such as ``{"intermediate": "mnli", "target": "xnli", "js_divergence": 0.41,
    "vocabulary_overlap": 0.22, "gain": 1.3}`` (the gain of intermediate training over the baseline).
    ``measures`` defaults to every numeric key except ``gain_key``. With ``group_by`` (e.g. ``"target"``)
    there is one row per group and measure as well as the overall one (group ``"*"``), since gains on
    different targets are on different scales.

    Returns rows ``{"measure", "group", "n", "spearman", "pearson", "kendall", "spearman_p",
    "kendall_p", "spearman_low", "spearman_high", "kendall_low", "kendall_high"}`` (tau-b; two-sided
    permutation p-values; 95% bootstrap intervals over the pairs, seeded by measure and group); a pair
    missing the measure or the gain is skipped, a group with fewer than two usable pairs gets NaN
    correlations, and fewer than three NaN p-values and intervals.
    """
    from xstilts.evaluate.statistics import correlation_test, stable_seed

    names = list(measures) if measures is not None else _measure_names(pairs, gain_key, group_by)
    groups: dict[str, list[Mapping[str, Any]]] = {"*": list(pairs)}
    if group_by is not None:
        for pair in pairs:
            groups.setdefault(str(pair.get(group_by)), []).append(pair)
    rows = []
    for name in names:
        for group, members in groups.items():
            usable = [p for p in members if _is_finite(p.get(name)) and _is_finite(p.get(gain_key))]
            x = [float(p[name]) for p in usable]
            y = [float(p[gain_key]) for p in usable]
            enough = len(usable) >= 2
            test = correlation_test(x, y, seed=stable_seed(name, group))
            rows.append(
                {
                    "measure": name,
                    "group": group,
                    "n": len(usable),
                    "spearman": spearman(x, y) if enough else float("nan"),
                    "pearson": pearson(x, y) if enough else float("nan"),
                    "kendall": kendall_tau(x, y) if enough else float("nan"),
                    "spearman_p": test.spearman_p,
                    "spearman_low": test.spearman_low,
                    "spearman_high": test.spearman_high,
                    "kendall_p": test.kendall_p,
                    "kendall_low": test.kendall_low,
                    "kendall_high": test.kendall_high,
                }
            )
    return rows
