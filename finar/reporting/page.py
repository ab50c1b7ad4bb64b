"""HTML pieces of the report: sections, tables, figure divs, and the page around them.

Everything a user can name (dataset, file, column, model, title) reaches the page through
:func:`html.escape` here; section functions hand over plain text and numbers, never markup.
The page embeds plotly.js once in ``<head>`` so it opens offline, and holds no timestamp or
random id: the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["Cell", "Section", "fmt", "table_html"]

e = html.escape
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
_ZONE_CLASS = {"green": "tl-green", "yellow": "tl-yellow", "red": "tl-red"}


@dataclass
class Cell:
    """A table cell: text (escaped on output) and an optional CSS class (``num``, ``good``, ...)."""

    text: str
    css: str = ""


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for tables: fixed digits, thousands separators, blank for missing."""
    if value is None or (isinstance(value, float | np.floating) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{value:,.{digits}f}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)


def p_value_cell(p: Any) -> Cell:
    """A p-value, shaded when the test rejects at 5% (``bad``) or 1% (``worse``)."""
    if p is None or not np.isfinite(p):
        return Cell("", "num")
    return Cell(f"{p:.3f}", "num " + ("worse" if p < 0.01 else "bad" if p < 0.05 else ""))


def zone_cell(zone: Any) -> Cell:
    """A Basel traffic-light zone as a coloured cell."""
    z = "" if zone is None or (isinstance(zone, float) and math.isnan(zone)) else str(zone)
    return Cell(z, _ZONE_CLASS.get(z, ""))


def table_html(head: Sequence[str], rows: Iterable[Sequence[Cell | Any]], *, caption: str = "") -> str:
    """An HTML table; plain values are formatted with :func:`fmt`, numbers right-aligned."""
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    body = []
    for row in rows:
        tds = []
        for v in row:
            cell = v if isinstance(v, Cell) else Cell(
                fmt(v), "num" if isinstance(v, int | float | np.number) and not isinstance(v, bool) else "")
            cls = f' class="{e(cell.css.strip())}"' if cell.css.strip() else ""
            tds.append(f"<td{cls}>{e(cell.text)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table>{cap}<thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def frame_html(frame: pd.DataFrame, *, index: bool = True, digits: int = 4) -> str:
    """Any DataFrame as an escaped table (for results whose columns finar does not fix)."""
    head = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for key, rec in zip(frame.index, frame.itertuples(index=False), strict=True):
        vals = [fmt(v, digits) if not isinstance(v, str) else v for v in rec]
        rows.append(([Cell(fmt(key))] if index else []) + [Cell(v, "num") for v in vals])
    return table_html(head, rows)


@dataclass
class Section:
    """One section of the report: a heading, notes on data span, settings and seeds, and content.

    ``parts`` holds HTML already escaped (built with :func:`table_html` and :meth:`figure`);
    ``notes`` and ``title`` are plain text, escaped when the page is written.
    """

    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    figures: int = 0
    available: bool = True
    reason: str = ""
    results: dict[str, Any] = field(default_factory=dict)  # finar objects behind the numbers shown
    seconds: float = 0.0

    def note(self, text: str) -> None:
        self.notes.append(text)

    def text(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{e(text)}</p>")

    def heading(self, text: str) -> None:
        self.parts.append(f"<h3>{e(text)}</h3>")

    def table(self, head: Sequence[str], rows: Iterable[Sequence[Cell | Any]], caption: str = "") -> None:
        self.parts.append(table_html(head, rows, caption=caption))

    def figure(self, fig: go.Figure, caption: str = "", *, height: int | None = None) -> None:
        """A plotly figure as a div with a stable id; ``caption`` is plain text."""
        self.figures += 1
        div_id = f"{self.key}-{self.figures}"
        h = height or fig.layout.height or 400
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          default_height=f"{h}px", config=PLOTLY_CONFIG)
        cap = f'<figcaption>{e(caption)}</figcaption>' if caption else ""
        self.parts.append(f'<figure class="chart">{div}{cap}</figure>')

    def grid(self, build: Callable[[], None]) -> None:
        """Run ``build`` (which adds figures) so that its figures sit side by side, two a row."""
        start = len(self.parts)
        build()
        inner = "".join(self.parts[start:])
        del self.parts[start:]
        self.parts.append(f'<div class="grid">{inner}</div>')

    def unavailable(self, reason: str) -> None:
        self.available, self.reason = False, reason
        self.parts.append(f'<p class="unavailable">Not available: {e(reason)}</p>')

    def to_html(self) -> str:
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        notes_html = f'<ul class="notes">{notes}</ul>' if notes else ""
        return (f'<section id="{e(self.key)}"><h2>{e(self.title)}</h2>{notes_html}'
                f'{"".join(self.parts)}</section>')


CSS = """
:root { --ink: #1d2330; --muted: #5b6472; --line: #dde2ea; --accent: #1f4e8c; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: var(--ink);
       background: #f5f7fa; }
header.top { background: #14233c; color: #fff; padding: 1.4rem 2rem 1rem; }
header.top h1 { margin: 0 0 0.3rem; font-size: 1.55rem; font-weight: 600; }
header.top p { margin: 0.15rem 0; color: #c9d3e3; font-size: 0.92rem; }
nav.toc { background: #fff; border-bottom: 1px solid var(--line); padding: 0.5rem 2rem; font-size: 0.9rem;
          position: sticky; top: 0; z-index: 10; }
nav.toc a { color: var(--accent); margin-right: 1.1rem; text-decoration: none; }
main { max-width: 1280px; margin: 0 auto; padding: 0.5rem 1.5rem 2rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem 1.4rem 1.2rem;
          margin: 1.2rem 0; }
h2 { font-size: 1.2rem; margin: 0.3rem 0 0.4rem; color: #14233c; }
h3 { font-size: 1rem; margin: 1.1rem 0 0.3rem; }
ul.notes { color: var(--muted); font-size: 0.86rem; margin: 0 0 0.6rem; padding-left: 1.1rem; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.84rem; margin: 0.4rem 0 0.8rem; }
caption { text-align: left; color: var(--muted); font-size: 0.82rem; padding-bottom: 0.2rem; }
th { background: #eef2f7; font-weight: 600; }
th, td { padding: 0.28rem 0.6rem; border-bottom: 1px solid var(--line); text-align: left; }
th { vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { background: #fde9d9; } td.worse { background: #f8c9c4; }
td.best { background: #d8f0dc; font-weight: 600; }
td.tl-green { background: #2e9d4a; color: #fff; text-align: center; font-weight: 600; }
td.tl-yellow { background: #f2c230; color: #222; text-align: center; font-weight: 600; }
td.tl-red { background: #cc3b33; color: #fff; text-align: center; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.6rem 1.2rem; }
figure.chart { margin: 0.3rem 0; }
figcaption { color: var(--muted); font-size: 0.82rem; margin-top: 0.1rem; }
p.unavailable { color: #8a5a00; background: #fff6e0; border-left: 4px solid #f2c230; padding: 0.5rem 0.8rem; }
p.small, footer { color: var(--muted); font-size: 0.82rem; }
footer { text-align: center; padding: 1rem; }
"""


def document(title: str, css: str, body: str) -> str:
    """A complete HTML document around ``body`` (already escaped HTML) with plotly.js embedded once."""
    import plotly.offline

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{css}</style>
<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
{body}
</body>
</html>
"""


def page_html(title: str, subtitle: Sequence[str], sections: Sequence[Section], footer: str) -> str:
    """The whole report page: a header, a table of contents and the sections."""
    toc = "".join(f'<a href="#{e(s.key)}">{e(s.title)}</a>' for s in sections)
    sub = "".join(f"<p>{e(line)}</p>" for line in subtitle)
    body = "\n".join(s.to_html() for s in sections)
    return document(title, CSS, f"""<header class="top"><h1>{e(title)}</h1>{sub}</header>
<nav class="toc">{toc}</nav>
<main>
{body}
</main>
<footer>{e(footer)}</footer>""")
