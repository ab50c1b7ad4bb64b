"""Plotly figure builders of the report: one function per picture, no HTML around them.

Every figure takes finar's own results (returns, :class:`finar.BacktestResult` daily frames,
:class:`finar.StylizedFacts` curves, scenarios) and draws them; nothing here computes a score
or a test. Figures carry no titles: headings belong to the page, where they are escaped. Text
that can come from a user (model and series names) is passed through :func:`label`, because
plotly renders a few HTML tags inside trace names.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy import stats

__all__ = ["anomaly_timeline", "band_figure", "bar_closes", "colors", "label", "pit_histogram",
           "prices_figure", "qq_figure", "returns_and_volatility", "score_difference", "tail_figure",
           "var_exceedances"]

REAL_COLOR = "rgb(40, 40, 40)"
HIT_COLOR = "rgb(214, 39, 40)"
ANNUALISE = 252  # trading days a year: rolling volatility in annualised percent
_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
           "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
           "font": {"size": 12}}


def label(text: object) -> str:
    """Text for a figure, with ``<``, ``>`` and ``&`` escaped (plotly renders some HTML tags)."""
    return html.escape(str(text), quote=False)


def colors(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per name, in order (real data is always dark grey)."""
    palette = qualitative.D3
    out, i = {}, 0
    for name in names:
        if name == "real":
            out[name] = REAL_COLOR
            continue
        out[name] = palette[i % len(palette)]
        i += 1
    return out


def _layout(fig: go.Figure, height: int, **kw: object) -> go.Figure:
    fig.update_layout(**_LAYOUT, height=height, **kw)
    return fig


def prices_figure(prices: pd.Series, name: str) -> go.Figure:
    """The price series on a log axis."""
    fig = go.Figure(go.Scatter(x=prices.index, y=prices.to_numpy(), mode="lines", name=label(name),
                               line={"color": REAL_COLOR, "width": 1.1}))
    return _layout(fig, 320, yaxis_type="log", yaxis_title="price (log scale)", showlegend=False)


def returns_and_volatility(r: pd.Series, windows: Sequence[int] = (20, 60)) -> go.Figure:
    """Daily returns (top) and their rolling standard deviation, annualised (bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.55, 0.45])
    fig.add_trace(go.Scatter(x=r.index, y=r.to_numpy(), mode="lines", name="daily return",
                             line={"color": REAL_COLOR, "width": 0.7}), row=1, col=1)
    for w, color in zip(windows, qualitative.D3, strict=False):
        vol = r.rolling(w).std() * np.sqrt(ANNUALISE)
        fig.add_trace(go.Scatter(x=vol.index, y=vol.to_numpy(), mode="lines", name=f"{w}-day volatility",
                                 line={"color": color, "width": 1.1}), row=2, col=1)
    fig.update_yaxes(title_text="return (%)", row=1, col=1)
    fig.update_yaxes(title_text="annualised vol (%)", row=2, col=1)
    return _layout(fig, 460)


def score_difference(daily: Mapping[str, pd.Series], baseline: str) -> go.Figure:
    """Cumulative daily log score of each model minus the baseline's (up = better than it)."""
    palette = colors(list(daily))
    base = daily[baseline]
    fig = go.Figure()
    curves = {name: (s - base).cumsum() for name, s in daily.items() if name != baseline}
    for name, diff in curves.items():
        fig.add_trace(go.Scatter(x=diff.index, y=diff.to_numpy(), mode="lines", name=label(name),
                                 line={"color": palette[name], "width": 1.4}))
    fig.add_hline(y=0, line={"color": "rgb(150,150,150)", "width": 1, "dash": "dot"})
    # a far worse model would flatten the others into the zero line: keep it off scale, and say so
    reach = {n: float(c.abs().max()) for n, c in curves.items()}
    typical = max(float(np.median(list(reach.values()))), 1.0) if curves else 1.0
    off = [n for n, v in reach.items() if v > 5 * typical]
    if off and len(off) < len(curves):
        kept = pd.concat([c for n, c in curves.items() if n not in off])
        lo, hi = min(float(kept.min()), 0.0), max(float(kept.max()), 0.0)
        pad = 0.1 * max(hi - lo, 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
        text = "; ".join(f"{label(n)} off scale (ends at {float(curves[n].iloc[-1]):.0f})" for n in off)
        fig.add_annotation(text=text + "; double-click to rescale", xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="bottom", showarrow=False, font={"size": 11})
    return _layout(fig, 360, yaxis_title=f"cum. log score minus {label(baseline)} (nats)",
                   hovermode="x unified")


def pit_histogram(pit: pd.Series | np.ndarray, color: str, bins: int = 20) -> go.Figure:
    """PIT histogram as a density, with the uniform line and its 95% binomial band per bin."""
    u = np.asarray(pit, dtype=float)
    u = u[np.isfinite(u)]
    counts, edges = np.histogram(u, bins=bins, range=(0.0, 1.0))
    n, width = max(len(u), 1), 1.0 / bins
    lo, hi = (stats.binom.ppf(q, n, 1.0 / bins) / (n * width) for q in (0.025, 0.975))
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure([
        go.Bar(x=centers, y=counts / (n * width), width=width * 0.92, marker_color=color, name="PIT",
               showlegend=False),
        go.Scatter(x=[0, 1], y=[hi, hi], mode="lines", name="95% band (uniform)",
                   line={"color": "rgb(120,120,120)", "dash": "dot", "width": 1}),
        go.Scatter(x=[0, 1], y=[lo, lo], mode="lines", showlegend=False, hoverinfo="skip",
                   line={"color": "rgb(120,120,120)", "dash": "dot", "width": 1}),
        go.Scatter(x=[0, 1], y=[1, 1], mode="lines", name="uniform", line={"color": REAL_COLOR, "width": 1}),
    ])
    return _layout(fig, 300, xaxis_title="PIT", yaxis_title="density", bargap=0.0)


def var_exceedances(daily: pd.DataFrame, tag: str, color: str) -> go.Figure:
    """Realised returns against the forecast VaR (as a return, ``-VaR``), exceedances in red."""
    hit = daily[f"hit_{tag}"].to_numpy(dtype=bool)
    y = daily["y"]
    fig = go.Figure([
        go.Scatter(x=y.index, y=y.to_numpy(), mode="markers", name="realised return",
                   marker={"color": "rgba(80,80,80,0.45)", "size": 3}),
        go.Scatter(x=y.index, y=-daily[f"var_{tag}"].to_numpy(), mode="lines", name=f"-VaR {tag}%",
                   line={"color": color, "width": 1.3}),
        go.Scatter(x=y.index[hit], y=y.to_numpy()[hit], mode="markers", name=f"exceedances ({hit.sum()})",
                   marker={"color": HIT_COLOR, "size": 7, "symbol": "x"}),
    ])
    return _layout(fig, 300, yaxis_title="return (%)")


def band_figure(curves: pd.DataFrame, y_title: str, palette: Mapping[str, str], *,
                bands: Sequence[str] = ()) -> go.Figure:
    """Curves by lag from :attr:`StylizedFacts.curves` (``model lag mean q05 q95``), one per model.

    Models named in ``bands`` also get their 5-95% band across paths.
    """
    fig = go.Figure()
    for name, c in curves.groupby("model", sort=False):
        color = palette.get(str(name), REAL_COLOR)
        if name in bands and c["q05"].notna().all():
            fig.add_trace(go.Scatter(x=c["lag"], y=c["q95"], mode="lines", line={"width": 0},
                                     showlegend=False, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=c["lag"], y=c["q05"], mode="lines", line={"width": 0}, fill="tonexty",
                                     fillcolor=_translucent(color), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=c["lag"], y=c["mean"], mode="lines", name=label(name),
                                 line={"color": color, "width": 2.2 if name == "real" else 1.3}))
    return _layout(fig, 340, xaxis_title="lag (days)", yaxis_title=y_title)


def _translucent(color: str, alpha: float = 0.15) -> str:
    if color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{alpha})"
    return color.replace("rgb(", "rgba(").replace(")", f",{alpha})")


def tail_figure(tails: pd.DataFrame, side: str, palette: Mapping[str, str]) -> go.Figure:
    """Log-log plot of the empirical tail: ``P(loss > x)`` against ``x`` (``side`` left or right)."""
    fig = go.Figure()
    for name, c in tails[tails["side"] == side].groupby("model", sort=False):
        fig.add_trace(go.Scatter(x=c["value"], y=c["ccdf"], mode="lines", name=label(name),
                                 line={"color": palette.get(str(name), REAL_COLOR),
                                       "width": 2.2 if name == "real" else 1.3}))
    what = "loss" if side == "left" else "gain"
    return _layout(fig, 340, xaxis_type="log", yaxis_type="log", xaxis_title=f"daily {what} x (%)",
                   yaxis_title=f"P({what} > x)")


def qq_figure(qq: pd.DataFrame, palette: Mapping[str, str]) -> go.Figure:
    """Quantiles of each generator against the real series' quantiles, with the 45-degree line."""
    fig = go.Figure()
    lo, hi = float(qq[["real", "generated"]].min().min()), float(qq[["real", "generated"]].max().max())
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="real = generated",
                             line={"color": REAL_COLOR, "dash": "dot", "width": 1}))
    for name, c in qq.groupby("model", sort=False):
        fig.add_trace(go.Scatter(x=c["real"], y=c["generated"], mode="markers", name=label(name),
                                 marker={"color": palette.get(str(name), REAL_COLOR), "size": 4}))
    return _layout(fig, 340, xaxis_title="real quantile (%)", yaxis_title="generated quantile (%)")


def bar_closes(closes: Mapping[str, pd.Series]) -> go.Figure:
    """Bar closes of several trade streams against the bar number (their clocks differ)."""
    palette = colors(list(closes))
    fig = go.Figure([go.Scatter(x=np.arange(len(c)), y=c.to_numpy(), mode="lines", name=label(name),
                                line={"color": palette[name], "width": 1.1}) for name, c in closes.items()])
    return _layout(fig, 320, xaxis_title="bar (minute)", yaxis_title="price")


def anomaly_timeline(r: pd.Series, flags: pd.DataFrame) -> go.Figure:
    """Returns with flagged days marked (top) and the anomaly score ``-log p`` (bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.6, 0.4])
    rr = r.reindex(flags.index)
    flagged = flags["flag"].to_numpy(dtype=bool)
    fig.add_trace(go.Scatter(x=rr.index, y=rr.to_numpy(), mode="lines", name="daily return",
                             line={"color": REAL_COLOR, "width": 0.7}), row=1, col=1)
    fig.add_trace(go.Scatter(x=rr.index[flagged], y=rr.to_numpy()[flagged], mode="markers",
                             name=f"flagged ({int(flagged.sum())})",
                             marker={"color": HIT_COLOR, "size": 7, "symbol": "x"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=flags.index, y=flags["score"].to_numpy(), mode="lines", name="score (-log p)",
                             line={"color": qualitative.D3[0], "width": 0.9}), row=2, col=1)
    fig.update_yaxes(title_text="return (%)", row=1, col=1)
    fig.update_yaxes(title_text="-log p (nats)", row=2, col=1)
    return _layout(fig, 440)
