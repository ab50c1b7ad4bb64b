"""Trades in: reading, cleaning with a per-rule report, tick size, trade signs, sessions, bars.

A trades frame has a ``DatetimeIndex`` named ``time`` (several trades may share a timestamp),
columns ``price`` and ``size`` and optionally ``side`` (+1 buyer-initiated, -1 seller-initiated).
:func:`clean` repairs what can be repaired and counts every row it touches, rule by rule, so
nothing is dropped silently; what cannot be read at all (no price column, unparseable times)
raises a :class:`finar.FinarError` naming the problem. The result passes
:func:`finar.data.validate.clean_trades`, which every finar trades frame satisfies.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from finar.data.sources import read_file
from finar.data.validate import _numbers, _parse_side, _with_time_index, clean_trades
from finar.errors import DataError, MissingColumnsError

__all__ = ["clean", "read_trades", "infer_tick_size", "tick_rule", "session_ids", "to_bars"]

RULES = ("bad_price", "bad_size", "bad_side", "nonpositive_size", "out_of_order", "duplicates",
         "outside_band")


def _report(counts: dict[str, int], actions: dict[str, str], n_in: int, n_out: int) -> pd.DataFrame:
    rows = [{"rule": r, "rows": int(counts.get(r, 0)), "action": actions[r]} for r in RULES]
    rows.append({"rule": "total", "rows": n_in - n_out, "action": f"{n_in} rows in, {n_out} out"})
    return pd.DataFrame(rows)


def clean(frame: pd.DataFrame, *, time_column: str | None = None, out_of_order: str = "sort",
          drop_duplicates: bool = False, band: float = 0.01, band_window: int = 51,
          source: str = "trades") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean raw trades and report, rule by rule, how many rows each rule touched.

    Rules, in order: prices that are not positive finite numbers (text, NaN, <= 0) and sizes
    that are not numbers are dropped (``bad_price``, ``bad_size``); sides that are not buy/sell
    are dropped (``bad_side``); zero or negative sizes are dropped (``nonpositive_size``);
    rows whose time goes back are sorted into place, dropped, or refused (``out_of_order``);
    rows repeating the previous row exactly (time, price, size, side) are counted and, with
    ``drop_duplicates``, dropped (``duplicates``; a sweep may print identical fills, so they
    are kept by default); prints further than ``band`` (relative) from the centred rolling
    median of ``band_window`` trades are dropped (``outside_band``).

    Parameters
    ----------
    frame : DataFrame
        Time as a column (``time``, ``timestamp``...) or ``DatetimeIndex``; ``price``,
        ``size`` and optionally ``side`` (vendor spellings such as ``qty`` are understood).
    out_of_order : {'sort', 'drop', 'raise'}
    drop_duplicates : bool, default False
    band : float, default 0.01
        Relative half-width of the rolling band; ``math.inf`` disables the rule.
    band_window : int, default 51

    Returns
    -------
    (trades, report)
        The cleaned trades and a DataFrame with columns ``rule``, ``rows``, ``action``.

    Raises
    ------
    MissingColumnsError
        Without a price or size column.
    InvalidTimestampError
        If a timestamp cannot be parsed (rows named).

    Examples
    --------
    >>> raw = pd.DataFrame({"time": ["2024-01-02 09:30:01", "2024-01-02 09:30:00",
    ...                              "2024-01-02 09:30:02"], "price": [100.0, "oops", 100.5],
    ...                     "size": [1, 2, 3]})
    >>> trades, report = clean(raw)
    >>> len(trades), int(report.set_index("rule").loc["bad_price", "rows"])
    (2, 1)
    """
    if out_of_order not in ("sort", "drop", "raise"):
        raise DataError(f"out_of_order must be 'sort', 'drop' or 'raise', got {out_of_order!r}")
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise DataError(f"{source}: expected a non-empty DataFrame of trades")
    frame = _with_time_index(frame, time_column)
    missing = [c for c in ("price", "size") if c not in frame.columns]
    if missing:
        raise MissingColumnsError(f"{source}: trades need columns 'price' and 'size'; missing {missing}; "
                                  f"columns are {list(frame.columns)}")
    n_in, counts = len(frame), {}
    price, size = _numbers(frame["price"]), _numbers(frame["size"])
    bad = ~(np.isfinite(price) & (price > 0))
    counts["bad_price"] = int(bad.sum())
    bad_size = ~np.isfinite(size) & ~bad
    counts["bad_size"] = int(bad_size.sum())
    frame = frame.assign(price=price, size=size)[~(bad | bad_size).to_numpy()]
    if "side" in frame.columns:
        words = frame["side"].astype(str).str.strip().str.lower()
        ok = words.isin(("b", "buy", "bid", "+1", "1", "1.0", "s", "sell", "ask", "-1", "-1.0"))
        counts["bad_side"] = int((~ok).sum())
        frame = frame[ok.to_numpy()]
        frame["side"] = _parse_side(frame["side"], source)
    nonpos = (frame["size"] <= 0).to_numpy()
    counts["nonpositive_size"] = int(nonpos.sum())
    frame = frame[~nonpos]
    back = np.diff(frame.index.as_unit("ns").asi8) < 0
    counts["out_of_order"] = int(back.sum())
    if back.any():
        if out_of_order == "raise":
            clean_trades(frame, source=source)  # raises UnsortedIndexError naming the rows
        if out_of_order == "drop":  # keep the running maximum: rows that go back are dropped
            t = frame.index.as_unit("ns").asi8
            frame = frame[t >= np.maximum.accumulate(t)]
        else:
            frame = frame.sort_index(kind="stable")
    cols = [c for c in ("price", "size", "side") if c in frame.columns]
    same = np.r_[False, np.diff(frame.index.as_unit("ns").asi8) == 0]
    for c in cols:
        v = frame[c].to_numpy()
        same &= np.r_[False, v[1:] == v[:-1]]
    counts["duplicates"] = int(same.sum())
    if drop_duplicates:
        frame = frame[~same]
    if math.isfinite(band) and len(frame) > 2:
        med = frame["price"].rolling(int(band_window), center=True, min_periods=1).median()
        out = (np.abs(frame["price"] / med - 1) > band).to_numpy()
        counts["outside_band"] = int(out.sum())
        frame = frame[~out]
    if len(frame) == 0:
        raise DataError(f"{source}: no valid trades left after cleaning ({n_in} rows in)")
    actions = {"bad_price": "dropped", "bad_size": "dropped", "bad_side": "dropped",
               "nonpositive_size": "dropped",
               "out_of_order": "dropped" if out_of_order == "drop" else "sorted",
               "duplicates": "dropped" if drop_duplicates else "kept (counted only)",
               "outside_band": "dropped" if math.isfinite(band) else "rule off"}
    trades = clean_trades(frame, source=source)
    return trades, _report(counts, actions, n_in, len(trades))


def read_trades(path: str | os.PathLike[str] | pd.DataFrame,
                **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a CSV/Parquet trades file (or take a frame) and :func:`clean` it.

    ``kwargs`` go to :func:`clean`. Returns ``(trades, report)``.
    """
    if isinstance(path, pd.DataFrame):
        return clean(path, **kwargs)
    p = os.fspath(path)
    lower = p.lower()
    if lower.endswith((".parquet", ".pq")):
        raw = pd.read_parquet(p) if os.path.exists(p) else read_file(p)  # read_file names a missing file
    else:
        if not os.path.exists(p):
            read_file(p)  # raises a DataError naming the file
        try:
            raw = pd.read_csv(p)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise DataError(f"could not read {p!r}: {exc}") from exc
    return clean(raw, source=p, **kwargs)


def infer_tick_size(prices: Any, *, max_divisor: int = 100) -> float:
    """The tick size: the largest ``d`` such that all price differences are multiples of it.

    Candidates are the smallest non-zero absolute difference divided by ``1..max_divisor``;
    differences are rounded to 10 significant decimals first so that float noise does not matter.

    Examples
    --------
    >>> infer_tick_size([100.0, 100.25, 100.75, 100.5])
    0.25
    """
    p = np.asarray(prices, dtype=float)
    d = np.unique(np.round(np.abs(np.diff(p)), 10))
    d = d[d > 0]
    if d.size == 0:
        raise DataError("cannot infer a tick size: all prices are equal; pass tick_size=")
    for k in range(1, max_divisor + 1):
        tick = d[0] / k
        ratio = d / tick
        if np.all(np.abs(ratio - np.round(ratio)) < 1e-6 * np.maximum(1, ratio)):
            return float(np.round(tick, 10))
    return float(d[0])


def tick_rule(prices: Any) -> np.ndarray:
    """Trade signs by the tick rule: +1 on an up-tick, -1 on a down-tick, the previous sign on a
    zero tick (+1 before the first non-zero tick).

    Examples
    --------
    >>> tick_rule([10.0, 10.1, 10.1, 10.0]).tolist()
    [1, 1, 1, -1]
    """
    p = np.asarray(prices, dtype=float)
    s = np.sign(np.r_[0.0, np.diff(p)])
    idx = np.where(s != 0, np.arange(len(s)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = s[idx]
    out[out == 0] = 1
    return out.astype(np.int8)


def session_ids(index: pd.DatetimeIndex, *, gap: str | pd.Timedelta = "30min") -> np.ndarray:
    """Session number of each trade: a new session starts on a new calendar day or after a
    pause longer than ``gap`` (a halt, an overnight break in a 24-hour market).

    Examples
    --------
    >>> t = pd.DatetimeIndex(["2024-01-02 10:00", "2024-01-02 10:01", "2024-01-03 10:00"])
    >>> session_ids(t).tolist()
    [0, 0, 1]
    """
    t = index.as_unit("ns").asi8
    day = index.normalize().as_unit("ns").asi8
    new = np.r_[True, (np.diff(t) > pd.Timedelta(gap).value) | (np.diff(day) != 0)]
    return np.cumsum(new) - 1


def to_bars(trades: pd.DataFrame, rule: str = "1min", *, kind: str = "time",
            threshold: float | None = None) -> pd.DataFrame:
    """OHLCV bars from trades: time bars (``rule``), or volume / dollar bars (``threshold``).

    Time bars are labelled by their start and only intervals with trades are kept. A volume
    (dollar) bar closes once its traded size (price times size) reaches ``threshold``; it is
    labelled by the time of its last trade. Columns: ``open high low close volume n_trades vwap``.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=2_000, seed=0)
    >>> to_bars(t, "1min").columns.tolist()
    ['open', 'high', 'low', 'close', 'volume', 'n_trades', 'vwap']
    """
    if kind not in ("time", "volume", "dollar"):
        raise DataError(f"kind must be 'time', 'volume' or 'dollar', got {kind!r}")
    t = clean_trades(trades, source="to_bars")
    value = t["price"] * t["size"]
    if kind == "time":
        try:
            key: Any = pd.Grouper(freq=rule)
            groups = t.assign(value=value).groupby(key)
        except ValueError as exc:
            raise DataError(f"rule {rule!r} is not a pandas frequency such as '1min' or '5s'") from exc
    else:
        if threshold is None or not threshold > 0:
            raise DataError(f"{kind} bars need threshold > 0, got {threshold!r}")
        amount = (t["size"] if kind == "volume" else value).to_numpy(dtype=float)
        bar, k, acc = np.empty(len(amount), np.int64), 0, 0.0
        for i, a in enumerate(amount.tolist()):  # the running sum resets when a bar closes
            bar[i] = k
            acc += a
            if acc >= threshold:
                k, acc = k + 1, 0.0
        groups = t.assign(value=value, bar=bar).groupby("bar")
    out = groups.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                     close=("price", "last"), volume=("size", "sum"), n_trades=("price", "size"),
                     value=("value", "sum"))
    if kind != "time":
        out.index = pd.DatetimeIndex(t.index.to_series().groupby(bar).last().to_numpy(), name="time")
    out = out[out["n_trades"] > 0]
    out["vwap"] = out.pop("value") / out["volume"]
    out["n_trades"] = out["n_trades"].astype(np.int64)
    return out
