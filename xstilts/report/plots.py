"""The report's figures, drawn with matplotlib's Agg backend. matplotlib is imported inside the functions
so that importing `xstilts.report` stays light (the controller image has no display and no torch)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xstilts.report.model import Delta, Stat, Table

HEATMAP_FILE = "heatmap.png"
DPI = 120
MIN_WIDTH, MAX_WIDTH = 6.0, 24.0  # inches
ROTATE_LABELS_OVER = 14  # languages
# No "Software"/date metadata, so the same results give the same bytes.
PNG_METADATA: dict[str, Any] = {"Software": None}


def languages_plot_file(target: str) -> str:
    return f"{safe_name(target)}_languages.png"


def safe_name(name: str) -> str:
    """A file-name-safe form of a task name ('pawsx' stays 'pawsx')."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _numeric(value: Any) -> float:
    if isinstance(value, Stat):
        return value.mean
    if isinstance(value, Delta):
        return value.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _row_label(row: list[Any], several_encoders: bool) -> str:
    return f"{row[0]}/{row[1]}" if several_encoders else str(row[1])


def heatmap(delta_table: Table, path: Path) -> Path | None:
    """Setting x target grid of average-score deltas vs baseline (`summary_delta` table): annotated cells,
    diverging colormap centred at 0. Returns None (and writes nothing) when the table has no rows."""
    if not delta_table.rows:
        return None
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    columns = [c.header for c in delta_table.columns[2:]]
    several = len({row[0] for row in delta_table.rows}) > 1
    labels = [_row_label(row, several) for row in delta_table.rows]
    values = [[_numeric(v) for v in row[2:]] for row in delta_table.rows]
    finite = [abs(v) for row in values for v in row if not math.isnan(v)]
    limit = max(finite, default=0.0) or 1.0

    fig_width = max(MIN_WIDTH, 2.0 + 1.1 * len(columns))
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH, fig_width), max(2.6, 1.6 + 0.45 * len(labels))))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    image = ax.imshow(values, cmap="RdBu", norm=norm, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=columns, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels=labels)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            text = "—" if math.isnan(value) else f"{value:+.1f}"
            dark = not math.isnan(value) and abs(value) > 0.6 * limit
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    if delta_table.columns[-1].key == "xtreme_avg" and len(columns) > 1:
        ax.axvline(len(columns) - 1.5, color="black", linewidth=1.5)
    fig.colorbar(image, ax=ax, label="Δ (points)")
    ax.set_title("Δ average score vs baseline")
    return _save(plt, fig, path)


def languages_plot(target_table: Table, path: Path) -> Path | None:
    """Grouped bars of each setting's mean score per language (and the average) for one target, with the
    seed std as error bars. Returns None when the table has no rows."""
    if not target_table.rows:
        return None
    plt = _pyplot()
    keys = [c.key for c in target_table.columns]
    value_columns = keys[keys.index("seeds") + 1 :]
    value_columns = [k for k in value_columns if k != "zero_shot_avg"]
    headers = [target_table.columns[keys.index(k)].header for k in value_columns]
    several = len({row[0] for row in target_table.rows}) > 1
    series = len(target_table.rows)
    bar_width = 0.8 / series

    fig_width = 2.5 + (0.5 + 0.12 * series) * len(headers)
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH, max(MIN_WIDTH, fig_width)), 4.0))
    for n, row in enumerate(target_table.rows):
        cells = [row[keys.index(k)] for k in value_columns]
        means = [_numeric(c) for c in cells]
        errors = [c.std if isinstance(c, Stat) and c.std is not None else 0.0 for c in cells]
        offsets = [i - 0.4 + bar_width * (n + 0.5) for i in range(len(headers))]
        yerr = errors if any(errors) else None
        ax.bar(offsets, means, bar_width, yerr=yerr, capsize=2, label=_row_label(row, several))
    rotation = 90 if len(headers) > ROTATE_LABELS_OVER else 0
    ax.set_xticks(range(len(headers)), labels=headers, rotation=rotation)
    ax.set_xlim(-0.6, len(headers) - 0.4)
    ax.set_ylabel("score")
    ax.set_title(target_table.title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(plt, fig, path)


ROBUSTNESS_FILE = "robustness_gap.png"
ALIGNMENT_FILE = "domain_alignment.png"


def robustness_plot(by_tasks: Table, path: Path) -> Path | None:
    """The robustness gap (clean minus perturbed) against the number of intermediate tasks, one line per
    (encoder,) perturbation (`robustness_by_tasks` table). None when the table has no rows."""
    if not by_tasks.rows:
        return None
    plt = _pyplot()
    encoders, names = by_tasks.column("encoder"), by_tasks.column("perturbation")
    sizes, gaps = by_tasks.column("tasks"), by_tasks.column("gap")
    several = len(set(encoders)) > 1
    fig, ax = plt.subplots(figsize=(MIN_WIDTH, 4.0))
    for series in dict.fromkeys(zip(encoders, names, strict=True)):
        points = [(n, _numeric(g)) for e, p, n, g in zip(encoders, names, sizes, gaps, strict=True)
                  if (e, p) == series]  # fmt: skip
        label = f"{series[0]}/{series[1]}" if several else series[1]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(sorted(set(sizes)))
    ax.set_xlabel("intermediate tasks in the setting (0 = baseline)")
    ax.set_ylabel("gap: clean - perturbed (points)")
    ax.set_title("Robustness gap by number of intermediate tasks")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def alignment_scatter(alignment: Table, correlation: Table, path: Path) -> Path | None:
    """One panel per alignment measure: measure (x) against transfer gain (y), a point per
    (setting, target) labelled with the setting, Spearman's rho over all pairs in the title. None when
    no pair has both a measure and a gain."""
    keys = [c.key for c in alignment.columns]
    measures = [c for c in alignment.columns if c.fmt == "fraction"]
    gains = [_numeric(v) for v in alignment.column("gain")]
    if not alignment.rows or all(math.isnan(g) for g in gains):
        return None
    plt = _pyplot()
    rho = {(row[0], row[1]): row[4] for row in correlation.rows if row[2] == "all"}
    width = min(MAX_WIDTH, 3.6 * len(measures))
    fig, axes = plt.subplots(1, len(measures), figsize=(width, 3.6), squeeze=False)
    for ax, column in zip(axes[0], measures, strict=True):
        xs = [_numeric(row[keys.index(column.key)]) for row in alignment.rows]
        for row, x, y in zip(alignment.rows, xs, gains, strict=True):
            if math.isnan(x) or math.isnan(y):
                continue
            ax.scatter([x], [y], s=24)
            ax.annotate(f"{row[1]}→{row[2]}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        values = [v for (_, measure), v in rho.items() if measure == column.key and v is not None]
        title = column.header + (f" (ρ {values[0]:+.2f})" if len(values) == 1 else "")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(column.header, fontsize=8)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("transfer gain (points)")
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png", metadata=PNG_METADATA)
    plt.close(fig)
    return path
