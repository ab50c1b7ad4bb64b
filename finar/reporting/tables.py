"""The tables of finar's results as DataFrames: built once, rendered by the report and the CLI.

Each function takes finar's own results (log scores, :class:`finar.Scenarios`, backtests,
anomaly flags, tick realism) and returns a plain DataFrame of numbers. The report renders
them as HTML (:mod:`finar.reporting.sections`, :mod:`finar.reporting.scenarios`), the
``finar`` command as rich tables (:mod:`finar.cli`); neither computes a figure of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from finar.evaluation.backtesting import BacktestResult
from finar.evaluation.comparison import compare
from finar.models.scenarios import Scenarios
from finar.reporting.pipeline import SectionUnavailable

__all__ = ["PRINT_QUANTILES", "RISK_LEVELS", "comparison_table", "portfolio_risk", "realism_table",
           "risk_table", "score_table", "tail_risk", "top_anomalies"]

#: VaR/ES levels of the risk tables
RISK_LEVELS = (0.01, 0.05)
#: quantiles of the cumulative return in :func:`risk_table`
PRINT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: the row of :func:`score_table` with the joint score of several series
ALL_SERIES = "all (sum)"


def score_table(lp: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Observations, total log-likelihood and mean log score (nats per day) of each series.

    Parameters
    ----------
    lp : Series or DataFrame
        Log scores from ``log_prob`` (NaN where a model has too little context).

    Returns
    -------
    DataFrame
        Index ``series``; columns ``obs``, ``log_likelihood``, ``mean_log_score``. Several
        series get a last row :data:`ALL_SERIES` over the days every series is scored: their
        summed (joint) daily score.

    Examples
    --------
    >>> score_table(pd.Series([-1.0, -2.0, None], name="x")).to_dict("index")
    {'x': {'obs': 2, 'log_likelihood': -3.0, 'mean_log_score': -1.5}}
    """
    frame = lp.to_frame() if isinstance(lp, pd.Series) else lp
    series = {str(col): frame[col] for col in frame.columns}
    if frame.shape[1] > 1:
        series[ALL_SERIES] = frame.sum(axis=1, min_count=frame.shape[1])
    rows = {}
    for name, s in series.items():
        v = s.dropna()
        rows[name] = (len(v), float(v.sum()), float(v.mean()) if len(v) else float("nan"))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["obs", "log_likelihood", "mean_log_score"])
    out.index.name = "series"
    return out


def tail_risk(sc: Scenarios, levels: Sequence[float] = RISK_LEVELS) -> pd.DataFrame:
    """VaR and ES (positive losses) of the return accumulated over the whole horizon.

    Returns
    -------
    DataFrame
        One row per series of ``sc``; columns ``VaR 1%``, ``ES 1%``, ``VaR 5%``, ``ES 5%`` (for
        the default ``levels``), in the scenarios' units.
    """
    cols = {}
    for a in levels:
        cols[f"VaR {a:.0%}"] = sc.var(a, cumulative=True).iloc[-1]
        cols[f"ES {a:.0%}"] = sc.es(a, cumulative=True).iloc[-1]
    out = pd.DataFrame(cols).astype(float)
    out.index = pd.Index([str(c) for c in sc.columns], name="series")
    return out


def portfolio_risk(scenarios: Mapping[tuple[str, str], Scenarios],
                   levels: Sequence[float] = RISK_LEVELS) -> pd.DataFrame:
    """VaR and ES (positive losses) of one-column scenarios on the first day and over the horizon.

    Parameters
    ----------
    scenarios : mapping
        ``(model, scenario) -> Scenarios`` of one column each (a portfolio,
        :meth:`finar.Scenarios.portfolio`), e.g. ``("DCC-t", "unconditional")``.
    levels : sequence of float
        VaR/ES levels.

    Returns
    -------
    DataFrame
        Index ``(model, scenario)``; columns ``VaR 1% 1-day``, ``ES 1% 1-day``, ... for the
        first day, then ``VaR 1% horizon``, ... for the return accumulated over every day, in
        the scenarios' units.

    Examples
    --------
    >>> import numpy as np
    >>> sc = Scenarios(np.linspace(-1, 1, 201)[:, None, None].repeat(2, axis=1), range(2), ["p"])
    >>> portfolio_risk({("m", "u"): sc}, levels=(0.05,)).round(2).to_dict("records")
    [{'VaR 5% 1-day': 0.9, 'ES 5% 1-day': 0.95, 'VaR 5% horizon': 1.8, 'ES 5% horizon': 1.9}]
    """
    rows = {}
    for key, sc in scenarios.items():
        if sc.paths.shape[2] != 1:
            raise SectionUnavailable(f"portfolio_risk takes one-column scenarios; {key} has {sc.columns}")
        row = {}
        for tag, step in (("1-day", 0), ("horizon", sc.horizon - 1)):
            for a in levels:
                row[f"VaR {a:.0%} {tag}"] = float(sc.var(a, cumulative=True).iloc[step, 0])
                row[f"ES {a:.0%} {tag}"] = float(sc.es(a, cumulative=True).iloc[step, 0])
        rows[tuple(key)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(list(rows), names=["model", "scenario"])
    return out


def risk_table(sc: Scenarios, quantiles: Sequence[float] = PRINT_QUANTILES,
               levels: Sequence[float] = RISK_LEVELS) -> pd.DataFrame:
    """Quantiles, mean, VaR and ES of the return accumulated over the whole horizon.

    Returns
    -------
    DataFrame
        Index ``statistic`` (``quantile 1%`` ... ``mean``, ``VaR 1%``, ``ES 1%``, ...); one
        column per series of ``sc``.
    """
    qs = sc.quantile(list(quantiles), cumulative=True).iloc[-1]
    rows = {f"quantile {q:.0%}": [float(qs[(q, c)]) for c in sc.columns] for q in quantiles}
    rows["mean"] = [float(v) for v in sc.mean(cumulative=True).iloc[-1]]
    tails = tail_risk(sc, levels)
    for key in tails.columns:
        rows[key] = tails[key].tolist()
    out = pd.DataFrame.from_dict(rows, orient="index", columns=[str(c) for c in sc.columns])
    out.index.name = "statistic"
    return out


def comparison_table(results: Mapping[str, BacktestResult] | Iterable[BacktestResult], *,
                     baseline: int | str = 0, seed: int = 0) -> pd.DataFrame:
    """:func:`finar.compare` of the backtests, with the counts of VaR exceedances beside the rates.

    Returns
    -------
    DataFrame
        One row per model: every column of :func:`finar.compare` (scores, Diebold-Mariano
        against ``baseline``, VaR and ES tests, traffic light) and ``hits_1``, ``hits_5``: the
        number of 1% and 5% VaR exceedances.
    """
    bts = list(results.values()) if isinstance(results, Mapping) else list(results)
    table = compare(bts, baseline=baseline, seed=seed)
    for tag in ("1", "5"):
        table[f"hits_{tag}"] = [int(b.daily[f"hit_{tag}"].sum()) for b in bts]
    return table


def top_anomalies(flags: pd.DataFrame, r: pd.Series, n: int = 10) -> pd.DataFrame:
    """The ``n`` most anomalous flagged days, by the detector's ranking statistic.

    Parameters
    ----------
    flags : DataFrame
        :meth:`finar.AnomalyDetector.score` output (``score``, ``p_value``, ``flag``, and
        ``stat`` where the detector ranks by it).
    r : Series
        The scored returns.

    Returns
    -------
    DataFrame
        Index ``day``; columns ``return``, ``score`` (-log p), ``p_value``.
    """
    rank = "stat" if "stat" in flags else "score"
    top = flags[flags["flag"].astype(bool)].sort_values(rank, ascending=False).head(n)
    out = pd.DataFrame({"return": r.reindex(top.index).astype(float), "score": top["score"].astype(float),
                        "p_value": top["p_value"].astype(float)}, index=top.index)
    out.index.name = "day"
    return out


def realism_table(res: Any) -> pd.DataFrame:
    """:func:`finar.ticks.realism`'s result as a table (its ``table()``), real beside synthetic.

    Raises
    ------
    SectionUnavailable
        A result of a kind finar cannot show as a table.
    """
    if isinstance(res, pd.DataFrame):
        return res
    if isinstance(res, pd.Series):
        return res.to_frame("value")
    if hasattr(res, "table"):
        return realism_table(res.table())
    if isinstance(res, dict):
        return pd.Series(res, name="value").to_frame()
    raise SectionUnavailable(f"finar.ticks.realism returned {type(res).__name__}, which finar cannot show "
                             "as a table")
