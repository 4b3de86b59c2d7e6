"""Plain-text rendering of a suggestion and of its leave-one-target-out evaluation (CLI and report)."""

from __future__ import annotations

from xstilts.suggest.rank import Evaluation, Suggestion


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def suggestion_lines(s: Suggestion, top: int | None = None) -> list[str]:
    lines = [f"Intermediate tasks for target {s.target} (encoder {s.encoder}; {s.method}): {s.note}", ""]
    lines.append(
        f"{'rank':>4}  {'task':<16} {'predicted gain':>14}  {'95% interval':<17} {'observed':>8}  why"
    )
    for i, c in enumerate(s.candidates[:top] if top else s.candidates, 1):
        interval = f"[{_num(c.low, True)}, {_num(c.high, True)}]" if c.low is not None else "-"
        predicted = _num(c.predicted_gain, True) if c.predicted_gain is not None else f"sim {c.score:.3f}"
        why = ", ".join(f"{k} {v:+.3f}" for k, v in c.why) or "-"
        lines.append(
            f"{i:>4}  {c.task:<16} {predicted:>14}  {interval:<17} {_num(c.observed, True):>8}  {why}"
        )
    return lines + ["", *evaluation_lines(s.evaluation)]


def evaluation_lines(e: Evaluation) -> list[str]:
    if not e.rows:
        return [
            "Leave-one-target-out evaluation: none possible (needs finished results for two or more "
            "intermediate tasks on at least one target)."
        ]
    lines = [
        "Leave-one-target-out evaluation (each target's gains predicted from the other targets' results):",
        f"{'target':<12} {'n':>3} {'method':<10} {'NDCG@3':>7} {'Spearman':>8} {'random NDCG@3':>13} "
        f"{'random rho':>10} {'MNLI NDCG@3':>11} {'MNLI rho':>8}  best (predicted / observed)",
    ]
    for r in e.rows:
        lines.append(
            f"{r['target']:<12} {r['candidates']:>3} {r['method']:<10} {_num(r['ndcg3']):>7} "
            f"{_num(r['spearman'], True):>8} {_num(r['random_ndcg3']):>13} "
            f"{_num(r['random_spearman'], True):>10} "
            f"{_num(r['mnli_ndcg3']):>11} {_num(r['mnli_spearman'], True):>8}  "
            f"{r['predicted_best']} / {r['observed_best']}"
        )
    lines.append(
        f"{'mean':<12} {'':>3} {'':<10} {_num(e.mean('ndcg3')):>7} {_num(e.mean('spearman'), True):>8} "
        f"{_num(e.mean('random_ndcg3')):>13} {_num(e.mean('random_spearman'), True):>10} "
        f"{_num(e.mean('mnli_ndcg3')):>11} {_num(e.mean('mnli_spearman'), True):>8}"
    )
    return lines


def evaluation_markdown(e: Evaluation) -> str:
    """The evaluation as a report section (markdown)."""
    head = "## Suggesting intermediate tasks: leave-one-target-out\n\n"
    if not e.rows:
        return head + "Not enough finished results (two or more intermediate tasks on a target).\n"
    cols = ["target", "candidates", "method", "ndcg3", "spearman", "random_ndcg3", "random_spearman",
            "mnli_ndcg3", "mnli_spearman", "predicted_best", "observed_best"]  # fmt: skip
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in e.rows:
        rows.append("| " + " | ".join("-" if r[c] is None else str(r[c]) for c in cols) + " |")
    means = {c: e.mean(c) for c in cols[3:9]}
    rows.append("| mean | | | " + " | ".join(_num(means[c]) for c in cols[3:9]) + " | | |")
    return (
        head + "Each target's observed gains are predicted from the other targets' results only (`xstilts "
        'suggest`); random and "always MNLI" (MNLI first, the rest at random) are expectations.\n\n'
        + "\n".join(rows)
        + "\n"
    )
