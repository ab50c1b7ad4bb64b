"""Range-based variance estimators from OHLC bars, in the units of :func:`finar.returns`.

The day's high and low carry much more information about its variance than the close-to-close
return alone (Parkinson 1980: about five times as efficient for a driftless Brownian motion).
With ``o = ln(O_t / C_{t-1})`` (overnight), ``u = ln(H_t / O_t)``, ``d = ln(L_t / O_t)`` and
``c = ln(C_t / O_t)``, the daily estimators of the variance of the log return are

- Parkinson (1980): ``(ln H/L)^2 / (4 ln 2)``;
- Garman and Klass (1980): ``0.5 (ln H/L)^2 - (2 ln 2 - 1) c^2``;
- Rogers and Satchell (1991), unbiased under drift: ``u (u - c) + d (d - c)``;
- Yang and Zhang (2000), over a rolling window of ``n`` days, robust to drift and opening
  jumps: ``V_o + k V_c + (1 - k) V_RS`` with ``V_o`` and ``V_c`` the sample variances of the
  overnight and open-to-close returns, ``V_RS`` the mean Rogers-Satchell term and
  ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``.

The first three measure the trading session only (open to close); Yang-Zhang includes the
overnight gap. Values are variances of log returns times ``scale**2`` (``scale=100``: percent
squared, the units in which finar models returns), indexed by the bar's day. A value for day
``t`` uses that day's bar, so it is known at the close of day ``t``: as a covariate (``exog``)
it conditions the return of day ``t + 1``, as the contract requires.

Examples
--------
>>> import finar
>>> bars = finar.load("sp500")
>>> pk = finar.data.parkinson(bars)
>>> round(float(pk.loc["2008-10-10"]), 2)
42.72
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from finar.errors import (
    DataError,
    DuplicateTimestampError,
    MissingColumnsError,
    NonFiniteValueError,
    NonPositivePriceError,
    UnsortedIndexError,
    format_rows,
)

__all__ = ["parkinson", "garman_klass", "rogers_satchell", "yang_zhang", "range_measures",
           "RANGE_ESTIMATORS"]

_OHLC = ("open", "high", "low", "close")


def _scale(scale: float) -> float:
    """``scale`` as a positive finite float (0 or NaN would give zero or NaN variances silently)."""
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating) or not (
            math.isfinite(scale) and scale > 0):
        raise DataError(f"scale must be a positive number (100 for percent), got {scale!r}")
    return float(scale)


def _bars(bars: pd.DataFrame, needed: tuple[str, ...]) -> pd.DataFrame:
    """The ``needed`` columns of ``bars`` as floats, checked: present, finite, positive, consistent."""
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"range measures need a DataFrame of OHLC bars, got {type(bars).__name__}")
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise MissingColumnsError(f"range measures need bars with columns {list(needed)}; missing {missing} "
                                  f"(found {[str(c) for c in bars.columns]}). Close-only data has no range: "
                                  "use squared returns instead")
    frame = bars[list(needed)].apply(pd.to_numeric, errors="coerce").astype(float)
    if not frame.index.is_monotonic_increasing:
        raise UnsortedIndexError("bars must be sorted by time (use sort_index())")
    if frame.index.has_duplicates:
        twice = frame.index[frame.index.duplicated()]
        raise DuplicateTimestampError(f"bars repeat the days {format_rows(twice)}; each day must appear once")
    bad = ~np.isfinite(frame.to_numpy()).all(axis=1)
    if bad.any():
        raise NonFiniteValueError(f"bars have missing or non-numeric prices at "
                                  f"{format_rows(frame.index[bad])}")
    nonpos = (frame <= 0).any(axis=1)
    if nonpos.any():
        raise NonPositivePriceError(f"bars have non-positive prices at {format_rows(frame.index[nonpos])}")
    hi, lo = frame["high"], frame["low"]
    bad = hi < lo
    if bad.any():
        raise DataError(f"inconsistent bars: high < low at {format_rows(frame.index[bad])}")
    for col in ("open", "close"):
        if col in frame:
            bad = (frame[col] > hi) | (frame[col] < lo)
            if bad.any():
                raise DataError(f"inconsistent bars: {col} outside [low, high] at "
                                f"{format_rows(frame.index[bad])}")
    return frame


def parkinson(bars: pd.DataFrame, *, scale: float = 100.0) -> pd.Series:
    """Parkinson's variance ``(ln H/L)^2 / (4 ln 2)`` per day, times ``scale**2``."""
    scale = _scale(scale)
    b = _bars(bars, ("high", "low"))
    hl = np.log(b["high"] / b["low"])
    return (hl**2 / (4 * math.log(2)) * scale**2).rename("parkinson")


def garman_klass(bars: pd.DataFrame, *, scale: float = 100.0) -> pd.Series:
    """Garman-Klass variance ``0.5 (ln H/L)^2 - (2 ln 2 - 1) (ln C/O)^2`` per day, times ``scale**2``."""
    scale = _scale(scale)
    b = _bars(bars, _OHLC)
    hl, co = np.log(b["high"] / b["low"]), np.log(b["close"] / b["open"])
    return ((0.5 * hl**2 - (2 * math.log(2) - 1) * co**2) * scale**2).rename("garman_klass")


def rogers_satchell(bars: pd.DataFrame, *, scale: float = 100.0) -> pd.Series:
    """Rogers-Satchell variance ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)`` per day, times ``scale**2``."""
    scale = _scale(scale)
    b = _bars(bars, _OHLC)
    h, lo, c = np.log(b["high"] / b["open"]), np.log(b["low"] / b["open"]), np.log(b["close"] / b["open"])
    return ((h * (h - c) + lo * (lo - c)) * scale**2).rename("rogers_satchell")


def yang_zhang(bars: pd.DataFrame, window: int = 20, *, scale: float = 100.0) -> pd.Series:
    """Yang-Zhang variance over the ``window`` days ending at each day, times ``scale**2``.

    NaN for the first ``window`` days (the first overnight return needs the previous close).
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 2:
        raise DataError(f"window must be an integer >= 2, got {window!r}")
    scale = _scale(scale)
    b = _bars(bars, _OHLC)
    o = np.log(b["open"] / b["close"].shift(1))
    c = np.log(b["close"] / b["open"])
    rs = rogers_satchell(b, scale=1.0)
    n = int(window)
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    v_o = o.rolling(n).var(ddof=1)
    v_c = c.rolling(n).var(ddof=1)
    v_rs = rs.rolling(n).mean()
    return ((v_o + k * v_c + (1 - k) * v_rs) * scale**2).rename("yang_zhang")


RANGE_ESTIMATORS = {"parkinson": parkinson, "garman_klass": garman_klass, "rogers_satchell": rogers_satchell,
                    "yang_zhang": yang_zhang}


def range_measures(bars: pd.DataFrame, which: str | list[str] = "parkinson", *, scale: float = 100.0,
                   log: bool = False) -> pd.DataFrame:
    """Several range measures as covariate columns (``exog``), one per estimator.

    Parameters
    ----------
    bars : DataFrame
        OHLC bars (``finar.load`` output).
    which : str or list of str
        Names in :data:`RANGE_ESTIMATORS`.
    log : bool, default False
        Return ``log(variance + 1e-4)``-transformed values, a scale on which networks and
        linear regressions behave (the range is heavy-tailed).
    """
    names = [which] if isinstance(which, str) else list(which)
    unknown = [n for n in names if n not in RANGE_ESTIMATORS]
    if unknown:
        raise DataError(f"unknown range measure(s) {unknown}; choose from {sorted(RANGE_ESTIMATORS)}")
    out = pd.concat([RANGE_ESTIMATORS[n](bars, scale=scale) for n in names], axis=1)
    if log:
        out = np.log(out.clip(lower=0) + 1e-4).add_prefix("log_")
    return out
