"""The report's pages: a Markdown summary and a self-contained HTML page (figures inlined)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Section:
    """One part of the report: a title, paragraphs, tables (caption -> table) and figures."""

    title: str
    text: list[str]
    tables: dict[str, pd.DataFrame]
    figures: list[Path]
    bullets: list[str] = field(default_factory=list)


def ratio_text(ratio: float, reached: bool, bound: float) -> str:
    """``1.33x``; ``> 2.00x`` where the baseline never got there (its largest budget over the
    strategy's); ``–`` where undefined."""
    if not reached and np.isfinite(bound):
        return f"> {bound:.2f}x"
    if ratio is None or not np.isfinite(ratio):
        return "–"
    return f"{ratio:.2f}x"


def times(value: float, unit: str = "x") -> str:
    """``1.33x``; ``never`` for inf; ``–`` for NaN."""
    if pd.isna(value):
        return "–"
    return "never" if np.isinf(value) else f"{value:.2f}{unit}"


def interval_text(value: float, low: float, high: float, unit: str = "x") -> str:
    """``1.33x [1.10x, 1.60x]``: a value and its interval; the value alone where the interval
    is NaN (fewer than two seeds)."""
    if pd.isna(low) or pd.isna(high):
        return times(value, unit)
    return f"{times(value, unit)} [{times(low, unit)}, {times(high, unit)}]"


def efficiency_text(row: object, column: str = "ratio") -> str:
    """An `analyses.efficiency` row's ``ratio`` (or ``marginal``) with its 95% seed-bootstrap
    interval: ``undetermined`` where the baseline is flat within its noise at the target;
    ``> 2.00x`` (ratio) or ``never`` (marginal) where the baseline never got there."""
    if getattr(row, "undetermined", False):
        return "undetermined"
    low, high = getattr(row, f"{column}_low", np.nan), getattr(row, f"{column}_high", np.nan)
    if row.reached:
        head = times(getattr(row, column))
    else:
        head = f"> {row.bound:.2f}x" if column == "ratio" and np.isfinite(row.bound) else "never"
    if pd.isna(low) or pd.isna(high):
        return head
    return f"{head} [{times(low)}, {times(high)}]"


def spread_text(median: float, low: float, high: float, pairs: float) -> str:
    """``1.20x [0.90, 1.50] (3 seeds)``; a seed whose baseline never got there counts as
    infinitely efficient and shows as ``never``."""
    if pd.isna(pairs) or pairs == 0:
        return "–"
    show = lambda v: "never" if np.isinf(v) else f"{v:.2f}x"  # noqa: E731
    return f"{show(median)} [{show(low)}, {show(high)}] ({int(pairs)} seed{'s' * (pairs != 1)})"


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (``|`` in values escaped)."""
    if table.empty:
        return "_(none)_"
    cells = table.astype(object).where(table.notna(), "–").map(_cell)
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(row) + " |" for row in cells.to_numpy().tolist()]
    return "\n".join([header, rule, *rows])


def _text(value: object) -> str:
    """A table cell's text: floats to 3 decimals (small ones, p-values, in 2 significant
    digits), NaN and infinities as a dash."""
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return f"{value:.2g}" if 0 < abs(value) < 0.001 else f"{value:.3f}"
    return str(value)


def _cell(value: object) -> str:
    """A Markdown table cell."""
    return _text(value).replace("|", "\\|").replace("\n", " ")


def markdown(title: str, header: list[str], sections: list[Section]) -> str:
    """The report as Markdown, figures linked by file name (they sit next to it)."""
    parts = [f"# {title}", ""]
    parts += [line for text in header for line in (text, "")]
    for section in sections:
        parts += [f"## {section.title}", ""]
        parts += [line for text in section.text for line in (text, "")]
        if section.bullets:
            parts += [*(f"- {_cell(line)}" for line in section.bullets), ""]
        for caption, table in section.tables.items():
            parts += [f"**{caption}**", "", markdown_table(table), ""]
        parts += [f"![{figure.stem}]({figure.name})" for figure in section.figures]
        parts.append("")
    return "\n".join(parts)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #8a4b00; } caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
"""


def html_page(title: str, header: list[str], sections: list[Section]) -> str:
    """One HTML file with everything inlined (figures as data URIs): open it anywhere."""
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(line)}</p>" for line in header)]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in section.text]
        if section.bullets:
            items = "".join(f"<li>{html.escape(line)}</li>" for line in section.bullets)
            body.append(f'<ul class="note">{items}</ul>')
        for caption, table in section.tables.items():
            body.append(_html_table(caption, table))
        for figure in section.figures:
            data = base64.b64encode(figure.read_bytes()).decode("ascii")
            body.append(
                f'<img src="data:image/png;base64,{data}" alt="{html.escape(figure.stem)}">'
            )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>\n{chr(10).join(body)}\n</body></html>\n"
    )


def _html_table(caption: str, table: pd.DataFrame) -> str:
    if table.empty:
        return f"<p><b>{html.escape(caption)}</b>: none</p>"
    cells = table.astype(object).where(table.notna(), "–").map(_text)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    rows = "".join(
        "<tr>"
        + "".join(
            ('<td class="num">' if num else "<td>") + f"{html.escape(v)}</td>"
            for v, num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in cells.to_numpy().tolist()
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
