"""Writers of the report's tables: Markdown (rounded for reading) and CSV (full precision)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from xstilts.report.model import Cell, ColumnFormat, Delta, Stat, Table

EMPTY = "—"


def _format_duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_cell(value: Cell, fmt: ColumnFormat) -> str:
    """A cell as Markdown: numbers with 1 decimal (deltas signed), hours 2, fractions 3, H:MM:SS durations."""
    if value is None:
        return EMPTY
    if isinstance(value, Stat):
        text = format_cell(value.mean, fmt)
        if value.std is None:
            return text
        text = f"{text} ± {value.std:.1f}"
        if value.ci_low is not None and value.ci_high is not None:
            text += f" [{value.ci_low:.1f}, {value.ci_high:.1f}]"
        return text
    if isinstance(value, Delta):
        mark = "*" if value.significant else ""
        return f"{value.value:+.1f}{mark} [{value.low:+.1f}, {value.high:+.1f}]"
    if fmt == "p" and isinstance(value, int | float):
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if fmt == "integer" or isinstance(value, bool):
        return str(value)
    number = float(value)
    if fmt == "duration":
        return _format_duration(number)
    if fmt == "hours":
        return f"{number:.2f}"
    if fmt == "fraction":
        return f"{number:.3f}"
    if fmt == "signed":
        return f"{number:+.1f}"
    if fmt == "text":
        return str(value)
    return f"{number:.1f}"


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (text columns left-aligned, numbers right-aligned)."""
    header = "| " + " | ".join(c.header.replace("|", "\\|") for c in table.columns) + " |"
    align = "|" + "|".join(":---" if c.fmt == "text" else "---:" for c in table.columns) + "|"
    lines = [header, align]
    for row in table.rows:
        cells = (format_cell(v, c.fmt) for v, c in zip(row, table.columns, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _stat_columns(table: Table) -> set[str]:
    return {c.key for i, c in enumerate(table.columns) if any(isinstance(row[i], Stat) for row in table.rows)}


def _delta_columns(table: Table) -> set[str]:
    return {
        c.key for i, c in enumerate(table.columns) if any(isinstance(row[i], Delta) for row in table.rows)
    }


STAT_SUFFIXES = ("std", "ci_low", "ci_high")
DELTA_SUFFIXES = ("ci_low", "ci_high", "p")


def _csv_value(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value  # type: ignore[return-value]


def to_csv(table: Table) -> str:
    """CSV with full precision. A column of mean ± std cells becomes `<key>`, `<key>_std`, `<key>_ci_low`
    and `<key>_ci_high`; a column of deltas with intervals `<key>`, `<key>_ci_low`, `<key>_ci_high`,
    `<key>_p`."""
    stats, deltas = _stat_columns(table), _delta_columns(table)
    header: list[str] = []
    for column in table.columns:
        header.append(column.key)
        if column.key in stats:
            header += [f"{column.key}_{suffix}" for suffix in STAT_SUFFIXES]
        elif column.key in deltas:
            header += [f"{column.key}_{suffix}" for suffix in DELTA_SUFFIXES]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out: list[str | int | float] = []
        for value, column in zip(row, table.columns, strict=True):
            if column.key in stats:
                if isinstance(value, Stat):
                    out += [_csv_value(v) for v in (value.mean, value.std, value.ci_low, value.ci_high)]
                else:
                    out += [_csv_value(value), "", "", ""]
            elif column.key in deltas:
                if isinstance(value, Delta):
                    out += [_csv_value(v) for v in (value.value, value.low, value.high, value.p)]
                else:
                    out += [_csv_value(value), "", "", ""]
            else:
                out.append(_csv_value(value))
        writer.writerow(out)
    return buffer.getvalue()


def write_csv(table: Table, path: Path) -> Path:
    path.write_text(to_csv(table), encoding="utf-8")
    return path


def rows_to_csv(rows: list[dict]) -> str:
    """Long-format rows (dicts, possibly with different metric fields) as CSV; columns in first-seen order."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()
