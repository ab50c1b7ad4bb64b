"""A one-page HTML report of scenario fans: one fan chart per model, and a VaR/ES table.

The page is a single self-contained file: plotly.js is embedded once in ``<head>`` (no CDN, so
it opens offline) and each chart is a plotly ``<div>``. Every string that can come from a user
(title, model names, series names) is escaped with :func:`html.escape` and never placed inside
a figure's JSON. The output holds no timestamp or random id, so the same inputs give the same
bytes.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from finar._io import atomic_write_text, check_target
from finar._version import __version__
from finar.data.transforms import as_frame
from finar.data.validate import check_positive_finite
from finar.errors import DataError
from finar.models.scenarios import Scenarios
from finar.reporting.page import document
from finar.reporting.tables import RISK_LEVELS, tail_risk

__all__ = ["QUANTILES", "RISK_LEVELS", "fan_chart", "scenario_page"]

#: quantiles drawn as the fan: the outer band 5-95%, the inner band 25-75%, the median
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

_BAND_OUTER = "rgba(31, 119, 180, 0.18)"
_BAND_INNER = "rgba(31, 119, 180, 0.38)"
_LINE = "rgb(31, 119, 180)"


def _anchor_and_history(history: pd.Series, sc: Scenarios, kind: str) -> tuple[float, pd.Series]:
    """The fan's starting value and the history in the fan's units.

    For prices both are price levels. For returns the history becomes the cumulative return
    up to the last date, rebased so that the last date is 0 (where the fan starts), in the
    scenarios' units and kind.
    """
    if kind == "price":
        return float(history.iloc[-1]), history
    x = history.to_numpy(dtype=float) / sc.scale
    if sc.kind == "log":
        level = np.cumsum(x)
        rebased = sc.scale * (level - level[-1])
    else:
        growth = np.cumprod(1.0 + x)
        rebased = sc.scale * (growth / growth[-1] - 1.0)
    return 0.0, pd.Series(rebased, index=history.index, name=history.name)


def fan_chart(sc: Scenarios, history: pd.Series, column: str, *,
              kind: Literal["price", "returns"] = "price", window: int = 250) -> go.Figure:
    """A fan chart: the last ``window`` observations of ``history`` and the scenario quantiles.

    Parameters
    ----------
    sc : Scenarios
        Paths that start after the last date of ``history``.
    history : Series
        Prices (``kind='price'``) or returns in the units of ``sc`` (``kind='returns'``).
    column : str
        The series of ``sc`` to draw.
    kind : {'price', 'returns'}
        Draw price levels from the last price, or cumulative returns from 0.
    window : int, default 250
        Observations of history shown (about a year of trading days).

    Returns
    -------
    plotly Figure
        Without a title: headings belong to the page, where they are escaped.
    """
    if column not in sc.columns:
        raise DataError(f"column {column!r} is not among the scenario columns {sc.columns}")
    j = sc.columns.index(column)
    anchor, hist = _anchor_and_history(history, sc, kind)
    hist = hist.iloc[-window:]
    if kind == "price":
        q = np.quantile(sc.to_prices(anchor)[:, :, j], QUANTILES, axis=0)  # (n_q, horizon)
    else:
        qf = sc.quantile(list(QUANTILES), cumulative=True)
        q = np.stack([qf[(level, column)].to_numpy() for level in QUANTILES])
    q = np.column_stack([np.full(len(QUANTILES), anchor), q])   # every band starts at the anchor
    x = [hist.index[-1], *sc.index]

    def band(lo: int, hi: int, color: str, name: str) -> list[go.Scatter]:
        return [go.Scatter(x=x, y=q[lo], mode="lines", line={"width": 0}, showlegend=False,
                           hoverinfo="skip"),
                go.Scatter(x=x, y=q[hi], mode="lines", line={"width": 0}, fill="tonexty",
                           fillcolor=color, name=name, hoverinfo="skip")]

    fig = go.Figure([
        go.Scatter(x=hist.index, y=hist.to_numpy(), mode="lines", name="history",
                   line={"color": "rgb(60, 60, 60)", "width": 1.2}),
        *band(0, 4, _BAND_OUTER, "5-95%"),
        *band(1, 3, _BAND_INNER, "25-75%"),
        go.Scatter(x=x, y=q[2], mode="lines", name="median", line={"color": _LINE, "width": 1.6}),
    ])
    y_title = "price" if kind == "price" else (
        f"cumulative {sc.kind} return" + (" (%)" if sc.scale == 100 else f" (x{sc.scale:g})"))
    fig.update_layout(template="plotly_white", height=420, margin={"l": 60, "r": 20, "t": 20, "b": 40},
                      yaxis_title=y_title, hovermode="x unified",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def _histories(history: pd.Series | pd.DataFrame, scenarios: Mapping[str, Scenarios],
               kind: str) -> dict[str, pd.Series]:
    """History per scenario column, checked against every model's columns."""
    if not isinstance(history, pd.Series | pd.DataFrame) or len(history) == 0:
        raise DataError("history must be a non-empty pandas Series or DataFrame")
    frame = as_frame(history, name="series")
    if kind == "price":
        check_positive_finite(frame, frame.columns, what="history price")
    elif not np.isfinite(frame.to_numpy(dtype=float)).all():
        raise DataError("history returns must be finite")
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        key = str(col)
        for name, sc in scenarios.items():
            if key not in sc.columns and not (frame.shape[1] == 1 and len(sc.columns) == 1):
                raise DataError(f"history column {key!r} is not among model {name!r}'s scenario "
                                f"columns {sc.columns}")
        out[key] = frame[col]
    last = frame.index[-1]
    for name, sc in scenarios.items():
        if isinstance(last, pd.Timestamp) and isinstance(sc.index, pd.DatetimeIndex) \
                and sc.index[0] <= last:
            raise DataError(f"model {name!r}'s scenarios start on {sc.index[0].date()}, not after "
                            f"the last history date {last.date()}; pass the history they follow")
    return out


def _column_of(sc: Scenarios, key: str) -> str:
    return key if key in sc.columns else sc.columns[0]


def _fmt_date(x: object) -> str:
    return str(x.date()) if isinstance(x, pd.Timestamp) and x == x.normalize() else str(x)


def _risk_table(scenarios: Mapping[str, Scenarios], keys: list[str]) -> str:
    e = html.escape
    head = ["model", "series", "from", "to", "horizon", "paths", "seed"]
    for a in RISK_LEVELS:
        head += [f"VaR {a:.0%}", f"ES {a:.0%}"]
    rows = []
    for name, sc in scenarios.items():
        risk = tail_risk(sc, RISK_LEVELS)
        for key in keys:
            row = risk.loc[str(_column_of(sc, key))]
            cells = [name, key, _fmt_date(sc.index[0]), _fmt_date(sc.index[-1]), sc.horizon,
                     sc.n_paths, "none" if sc.seed is None else sc.seed]
            cells += [f"{float(v):.2f}" for v in row]
            tds = "".join(f"<td{' class=num' if i >= 4 else ''}>{e(str(c))}</td>"
                          for i, c in enumerate(cells))
            rows.append(f"<tr>{tds}</tr>")
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_MIXED = object()


def _common(scenarios: Mapping[str, Scenarios], attr: str) -> object:
    """The value of ``attr`` shared by every model, or ``_MIXED``."""
    values = {getattr(sc, attr) for sc in scenarios.values()}
    return values.pop() if len(values) == 1 else _MIXED


def _say(value: object) -> str:
    if value is _MIXED:
        return "differs by model (see the table)"
    if value is None:
        return "none"
    return f"{value:,}" if isinstance(value, int) else str(value)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #555; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { color: #888; font-size: 0.8rem; margin-top: 2rem; }
"""


def scenario_page(scenarios: Mapping[str, Scenarios], history: pd.Series | pd.DataFrame,
                  title: str, path: str | os.PathLike[str], *,
                  kind: Literal["price", "returns"] = "price", window: int = 250,
                  overwrite: bool = False) -> Path:
    """Write a self-contained HTML page of scenario fans, one per model, and their tail risk.

    Parameters
    ----------
    scenarios : mapping of str to Scenarios
        Model name -> scenarios starting after the last date of ``history``.
    history : Series or DataFrame
        The data the scenarios follow: prices by default, or returns with
        ``kind='returns'``. A DataFrame gives one fan per model and column.
    title : str
        Page title (escaped, so any text is safe).
    path : path-like
        Where to write the page; written atomically, parent folders created.
    kind : {'price', 'returns'}
        Fans of price levels from the last price, or of cumulative returns from 0.
    window : int, default 250
        Observations of history drawn before each fan.
    overwrite : bool, default False
        Replace an existing file at ``path``; without it
        :class:`~finar.errors.FileExistsFinarError` is raised before any work.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    The table gives VaR and ES (positive losses, :meth:`Scenarios.var`/:meth:`Scenarios.es`) of
    the return accumulated over the whole horizon, at 1% and 5%, in the scenarios' units
    (percent log returns for returns from :func:`finar.returns`).

    Examples
    --------
    >>> import finar
    >>> from finar.reporting import scenario_page
    >>> px = finar.load("sp500", end="2017-12-31")["adj_close"]
    >>> r = finar.returns(px)
    >>> sc = finar.models.GARCH().fit(r).sample(r, horizon=20, n_paths=500, seed=0)
    >>> scenario_page({"GARCH": sc}, px, "S&P 500", "reports/sp500.html")  # doctest: +SKIP
    """
    check_target(path, overwrite=overwrite)
    if not scenarios or not all(isinstance(s, Scenarios) for s in scenarios.values()):
        raise DataError("scenarios must be a non-empty dict of model name -> finar.Scenarios")
    if kind not in ("price", "returns"):
        raise DataError(f"kind must be 'price' or 'returns', got {kind!r}")
    if int(window) != window or window < 1:
        raise DataError(f"window must be a positive integer, got {window!r}")
    scenarios = {str(k): v for k, v in scenarios.items()}
    hists = _histories(history, scenarios, kind)
    e = html.escape

    first = next(iter(hists.values()))
    span = f"{_fmt_date(first.index[0])} to {_fmt_date(first.index[-1])}"
    meta = [f"Data: {span}, {len(first):,} observations of {', '.join(hists)}."]
    h, n, seed = (_common(scenarios, a) for a in ("horizon", "n_paths", "seed"))
    meta.append(f"Horizon: {_say(h)} steps; paths: {_say(n)}; seed: {_say(seed)}.")
    meta.append("Fans show the 5%, 25%, 50%, 75% and 95% quantiles across paths, "
                + ("of the price implied by each path." if kind == "price"
                   else "of the cumulative return from the last date."))

    charts = []
    for i, (name, sc) in enumerate(scenarios.items()):
        for j, (key, hist) in enumerate(hists.items()):
            fig = fan_chart(sc, hist, _column_of(sc, key), kind=kind, window=int(window))
            div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fan-{i}-{j}",
                              default_height="420px", config={"displaylogo": False,
                                                              "responsive": True})
            charts.append(f"<h2>{e(name)}: {e(key)}</h2>\n{div}")

    units = ("percent log return" if _common(scenarios, "scale") == 100.0
             and _common(scenarios, "kind") == "log" else "the scenarios' units")
    risk_note = ("Value at risk and expected shortfall of the cumulative return from the first to "
                 f"the last scenario date, as positive losses in {units}.")
    meta_html = "\n".join(f'<p class="meta">{e(m)}</p>' for m in meta)
    charts_html = "\n".join(charts)
    page = document(title, _CSS, f"""<h1>{e(title)}</h1>
{meta_html}
<h2>Tail risk of the return over the horizon</h2>
<p class="meta">{e(risk_note)}</p>
{_risk_table(scenarios, list(hists))}
{charts_html}
<footer>Generated by finar {e(__version__)}.</footer>""")
    atomic_write_text(path, page, overwrite=overwrite)
    return Path(path)
