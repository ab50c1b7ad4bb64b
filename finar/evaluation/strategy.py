"""What a volatility forecast is worth to an investor: a volatility-targeting backtest.

A forecast of tomorrow's volatility ``sigma_t`` (made with information up to day ``t-1``) sets
the day-``t`` exposure to the asset so that the portfolio runs at a target annual volatility:

.. math::

    w_t = \\min\\left(\\frac{\\sigma^*}{\\sqrt{P}\\, \\sigma_t}, L\\right), \\qquad
    R_t = w_t (e^{r_t / 100} - 1) - c\\, |w_t - w_{t-1}|, \\quad w_0 = 0

with ``r_t`` the day's log return in percent, ``sigma*`` the annual target in percent, ``P``
periods per year, ``L`` the leverage cap and ``c`` the cost per unit of turnover. Better
forecasts give a steadier realised volatility and a higher Sharpe ratio (Moreira & Muir 2017).

Returns are treated as excess returns: a risk-free rate only enters the Sharpe ratio. Index
alignment is never done silently; the forecast must be indexed by the day it applies to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finar.errors import DataError, NonFiniteValueError, SeriesTooShortError, format_rows

__all__ = ["StrategyResult", "vol_target", "buy_and_hold", "realised_vol_forecast",
           "realised_vol_rule", "compare_strategies", "max_drawdown"]


def max_drawdown(equity: pd.Series | np.ndarray) -> float:
    """Largest peak-to-trough fall of an equity curve, as a positive fraction.

    ``max_t (1 - E_t / max_{s <= t} E_s)``, with a starting value of 1 counted as the first
    peak, so a loss on the first day is a drawdown.

    Examples
    --------
    >>> max_drawdown(np.array([1.1, 0.88, 1.2, 0.9, 1.3]))
    0.25
    """
    values = np.concatenate([[1.0], np.asarray(equity, dtype=float)])
    peaks = np.maximum.accumulate(values)
    return float(np.max(1.0 - values / peaks))


@dataclass(frozen=True)
class StrategyResult:
    """Daily record of a strategy backtest.

    Attributes
    ----------
    name : str
    returns : pd.Series
        Daily simple returns of the strategy after costs, as fractions (0.01 = 1%).
    positions : pd.Series
        Exposure ``w_t`` held over each day (1 = fully invested, 2 = twice levered).
    turnover : pd.Series
        ``|w_t - w_{t-1}|``, with ``w_0 = 0`` before the first day.
    periods_per_year : int
    risk_free : float
        Annual risk-free rate in percent, subtracted (as ``risk_free / 100 / P`` per day) only
        in the Sharpe ratio.

    Examples
    --------
    >>> r = pd.Series([1.0, -2.0, 0.5], index=pd.date_range("2024-01-01", periods=3))
    >>> res = buy_and_hold(r, cost_bps=0.0)
    >>> round(float(res.equity.iloc[-1]), 6) == round(float(np.exp(r.sum() / 100)), 6)
    True
    """

    name: str
    returns: pd.Series
    positions: pd.Series
    turnover: pd.Series
    periods_per_year: int = 252
    risk_free: float = 0.0

    @property
    def equity(self) -> pd.Series:
        """Value of 1 invested before the first day, after each day: ``prod (1 + R_t)``."""
        return (1.0 + self.returns).cumprod().rename("equity")

    def summary(self) -> pd.Series:
        """Annualised figures.

        - ``annual_return_pct``: geometric, ``100 (E_T^{P/T} - 1)`` (-100 if equity hit zero);
        - ``annual_vol_pct``: ``100 sqrt(P) std(R_t)``;
        - ``sharpe``: ``sqrt(P) mean(R_t - rf) / std(R_t - rf)`` (NaN if returns are constant);
        - ``max_drawdown_pct``: :func:`max_drawdown` in percent;
        - ``annual_turnover``: ``P mean |w_t - w_{t-1}|`` (capital traded per year, 1 = 100%);
        - ``mean_position``, ``n_days``, ``start``, ``end``.
        """
        p, n = self.periods_per_year, len(self.returns)
        final = float(self.equity.iloc[-1])
        excess = self.returns - self.risk_free / 100.0 / p
        sd = float(excess.std(ddof=1))
        return pd.Series({
            "annual_return_pct": 100.0 * (final ** (p / n) - 1.0) if final > 0 else -100.0,
            "annual_vol_pct": 100.0 * np.sqrt(p) * float(self.returns.std(ddof=1)),
            "sharpe": np.sqrt(p) * float(excess.mean()) / sd if sd > 0 else np.nan,
            "max_drawdown_pct": 100.0 * max_drawdown(self.equity),
            "annual_turnover": p * float(self.turnover.mean()),
            "mean_position": float(self.positions.mean()),
            "n_days": n,
            "start": self.returns.index[0],
            "end": self.returns.index[-1],
        }, name=self.name, dtype=object)


# --- input checks ---------------------------------------------------------------------------

def _series(x: pd.Series | np.ndarray, name: str) -> pd.Series:
    if isinstance(x, pd.DataFrame):
        if x.shape[1] != 1:
            raise DataError(f"{name} must be one series, got a DataFrame with {x.shape[1]} columns")
        x = x.iloc[:, 0]
    s = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x))
    if s.ndim != 1:
        raise DataError(f"{name} must be one-dimensional")
    try:
        s = s.astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    bad = ~np.isfinite(s.to_numpy())
    if bad.any():
        raise NonFiniteValueError(f"{name} has NaN or infinite values at {format_rows(s.index[bad])}; "
                                  "drop or fill those days explicitly before the backtest")
    if len(s) < 2:
        raise SeriesTooShortError(f"{name} has {len(s)} day(s); a backtest needs at least 2")
    if not s.index.is_unique or not s.index.is_monotonic_increasing:
        raise DataError(f"{name} must have a unique index sorted by time")
    return s


def _check_aligned(returns: pd.Series, other: pd.Series, name: str) -> None:
    if returns.index.equals(other.index):
        return
    if len(returns) != len(other):
        detail = f"{len(other)} days against {len(returns)}"
    else:
        first = int(np.flatnonzero(returns.index != other.index)[0])
        detail = f"first difference at position {first}: {other.index[first]} vs {returns.index[first]}"
    raise DataError(f"{name} is not aligned with returns ({detail}); index the forecast by the day "
                    f"it applies to and pass returns.loc[{name}.index] or {name}.reindex(returns.index)")


def _simulate(name: str, returns: pd.Series, positions: pd.Series, cost_bps: float,
              periods_per_year: int, risk_free: float) -> StrategyResult:
    if cost_bps < 0:
        raise DataError(f"cost_bps must be >= 0, got {cost_bps}")
    turnover = positions.diff().abs()
    turnover.iloc[0] = abs(positions.iloc[0])  # entering from cash on the first day
    asset = np.expm1(returns / 100.0)
    strat = positions * asset - cost_bps / 1e4 * turnover
    return StrategyResult(name, strat.rename("return"), positions.rename("position"),
                          turnover.rename("turnover"), periods_per_year, risk_free)


# --- strategies -----------------------------------------------------------------------------

def vol_target(returns: pd.Series, predicted_vol: pd.Series, target_vol: float = 10.0,
               max_leverage: float = 2.0, cost_bps: float = 1.0, periods_per_year: int = 252,
               risk_free: float = 0.0, name: str = "vol target") -> StrategyResult:
    """Volatility-targeting backtest of a one-step volatility forecast.

    Parameters
    ----------
    returns : pd.Series
        Daily log returns in percent (``100 * diff(log(price))``).
    predicted_vol : pd.Series
        Forecast of each day's volatility in percent, made with data up to the day before and
        indexed by the day it applies to (same index as ``returns``), e.g. the predictive
        standard deviation from a backtest.
    target_vol : float, default 10.0
        Annual volatility target in percent.
    max_leverage : float, default 2.0
        Cap on the position ``w_t``.
    cost_bps : float, default 1.0
        Cost in basis points per unit of turnover ``|w_t - w_{t-1}|``.
    periods_per_year : int, default 252
    risk_free : float, default 0.0
        Annual risk-free rate in percent, used in the Sharpe ratio only.

    Returns
    -------
    StrategyResult

    Examples
    --------
    >>> r = pd.Series([0.5, -1.0, 0.2], index=pd.date_range("2024-01-01", periods=3))
    >>> res = vol_target(r, pd.Series([0.5, 1.0, 0.2], index=r.index), target_vol=10.0)
    >>> [round(w, 3) for w in res.positions]  # 10 / (sqrt(252) * vol), capped at 2
    [1.26, 0.63, 2.0]
    """
    r = _series(returns, "returns")
    vol = _series(predicted_vol, "predicted_vol")
    _check_aligned(r, vol, "predicted_vol")
    if (vol <= 0).any():
        raise DataError(f"predicted_vol must be > 0, got {vol[vol <= 0].iloc[0]} at "
                        f"{format_rows(vol.index[vol <= 0])}")
    if target_vol <= 0 or max_leverage <= 0:
        raise DataError(f"target_vol and max_leverage must be > 0, got {target_vol} and {max_leverage}")
    positions = np.minimum(target_vol / (np.sqrt(periods_per_year) * vol), max_leverage)
    return _simulate(name, r, positions, cost_bps, periods_per_year, risk_free)


def buy_and_hold(returns: pd.Series, cost_bps: float = 1.0, periods_per_year: int = 252,
                 risk_free: float = 0.0, name: str = "buy and hold") -> StrategyResult:
    """Fully invested (``w_t = 1``) from the first day; pays the entry cost once."""
    r = _series(returns, "returns")
    return _simulate(name, r, pd.Series(1.0, index=r.index), cost_bps, periods_per_year, risk_free)


def realised_vol_forecast(returns: pd.Series, window: int = 20) -> pd.Series:
    """Naive volatility forecast: the standard deviation of the ``window`` previous returns.

    ``sigma_t = std(r_{t-window}, ..., r_{t-1})`` (ddof 1), strictly lagged, so day ``t``'s
    return never enters day ``t``'s forecast. The first ``window`` days have no forecast and
    are dropped.
    """
    r = _series(returns, "returns")
    if window < 2:
        raise DataError(f"window must be >= 2, got {window}")
    if len(r) <= window:
        raise SeriesTooShortError(f"returns has {len(r)} days; a {window}-day rule needs more")
    return r.rolling(window).std().shift(1).iloc[window:].rename(f"realised_vol_{window}d")


def realised_vol_rule(returns: pd.Series, window: int = 20, target_vol: float = 10.0,
                      max_leverage: float = 2.0, cost_bps: float = 1.0, periods_per_year: int = 252,
                      risk_free: float = 0.0) -> StrategyResult:
    """:func:`vol_target` driven by :func:`realised_vol_forecast`; starts on day ``window``."""
    vol = realised_vol_forecast(returns, window)
    return vol_target(_series(returns, "returns").loc[vol.index], vol, target_vol, max_leverage,
                      cost_bps, periods_per_year, risk_free, name=f"realised vol ({window}d)")


def compare_strategies(returns: pd.Series, forecasts: Mapping[str, pd.Series], window: int = 20,
                       target_vol: float = 10.0, max_leverage: float = 2.0, cost_bps: float = 1.0,
                       periods_per_year: int = 252, risk_free: float = 0.0) -> pd.DataFrame:
    """Vol-targeting with each forecast, beside buy-and-hold and the realised-vol rule.

    Every strategy is run over the same days: the forecasts' common index (they must all share
    it), or, with no forecasts, the realised-vol rule's days. ``returns`` may start earlier, and
    must cover ``window`` days before the first forecast day for the realised-vol rule.

    Returns
    -------
    pd.DataFrame
        One row per strategy (forecasts in the given order, then the two baselines) with the
        columns of :meth:`StrategyResult.summary` and a ``strategy`` column.

    Examples
    --------
    >>> r = pd.Series(np.random.default_rng(0).standard_normal(300))
    >>> table = compare_strategies(r, {"oracle": pd.Series(1.0, index=r.index[50:])})
    >>> list(table["strategy"])
    ['oracle', 'realised vol (20d)', 'buy and hold']
    """
    r = _series(returns, "returns")
    rule = realised_vol_forecast(r, window)
    baseline_names = (rule_name := f"realised vol ({window}d)", "buy and hold")
    index = rule.index
    for i, (key, vol) in enumerate(forecasts.items()):
        if key in baseline_names:
            raise DataError(f"forecast name {key!r} is taken by a baseline; rename it")
        if i == 0:
            index = _series(vol, f"forecasts[{key!r}]").index
        else:
            _check_aligned(pd.Series(0.0, index=index), _series(vol, f"forecasts[{key!r}]"),
                           f"forecasts[{key!r}]")
    missing = index.difference(r.index)
    if len(missing):
        raise DataError(f"returns lack {len(missing)} forecast day(s): {format_rows(missing)}")
    if not index.isin(rule.index).all():
        raise SeriesTooShortError(f"returns need {window} days of history before the first forecast "
                                  f"day {index[0]} for the realised-vol rule; pass a longer series")
    args = (target_vol, max_leverage, cost_bps, periods_per_year, risk_free)
    results = [vol_target(r.loc[index], vol, *args, name=key) for key, vol in forecasts.items()]
    results.append(vol_target(r.loc[index], rule.loc[index], *args, name=rule_name))
    results.append(buy_and_hold(r.loc[index], cost_bps, periods_per_year, risk_free))
    table = pd.DataFrame([res.summary() for res in results])
    table.insert(0, "strategy", [res.name for res in results])
    return table.reset_index(drop=True).infer_objects()
