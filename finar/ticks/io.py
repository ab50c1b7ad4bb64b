"""Trades in: reading, cleaning with a per-rule report, tick size, trade signs, sessions, bars.

A trades frame has a ``DatetimeIndex`` named ``time`` (several trades may share a timestamp),
columns ``price``, ``size`` and ``side`` (+1 buyer-initiated, -1 seller-initiated; by the tick
rule where the file does not say). :func:`read_trades` reads vendor files as they come (layouts
in :mod:`finar.ticks.vendors`); :func:`clean` repairs what can be repaired and counts every row
it touches, rule by rule, so nothing is dropped silently; what cannot be read at all (no price
column, unparseable times, binary junk) raises a :class:`finar.FinarError` naming the problem.
The result passes :func:`finar.data.validate.clean_trades`, which every finar trades frame
satisfies.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from finar.data.validate import (
    TIME_NAMES,
    _canonical,
    _is_real_dtype,
    _numbers,
    _parse_side,
    _trade_size,
    _with_time_index,
    clean_trades,
    spellings_text,
)
from finar.errors import DataError, MissingColumnsError
from finar.ticks.vendors import read_table, to_trades_frame

__all__ = ["clean", "read_trades", "infer_tick_size", "tick_rule", "session_ids", "to_bars"]

RULES = ("bad_price", "bad_size", "bad_side", "nonpositive_size", "out_of_order", "duplicates",
         "outside_band", "side_inferred")
_BUY_SELL = ("b", "buy", "bid", "+1", "1", "1.0", "s", "sell", "ask", "-1", "-1.0")
_UNKNOWN_SIDE = ("0", "0.0", "n", "none", "unknown", "", "nan", "<na>", "none specified")


def _report(counts: dict[str, int], actions: dict[str, str], n_in: int, n_out: int) -> pd.DataFrame:
    rows = [{"rule": r, "rows": int(counts.get(r, 0)), "action": actions[r]} for r in RULES]
    rows.append({"rule": "total", "rows": n_in - n_out, "action": f"{n_in} rows in, {n_out} out"})
    return pd.DataFrame(rows)


def _check_columns(frame: pd.DataFrame, time_column: str | None, source: str) -> None:
    """Refuse, in one message, a frame without the time, price or size columns of trades."""
    names = {_canonical(c) for c in frame.columns}
    missing = [f for f in ("price", "size") if f not in names and not (f == "size" and "volume" in names)]
    index_name = frame.index.name
    has_time = (time_column is not None or isinstance(frame.index, pd.DatetimeIndex)
                or bool(names & set(TIME_NAMES))
                or (index_name is not None and _canonical(index_name) in TIME_NAMES))
    if not has_time and missing:  # with a time column, validate names what is wrong with it
        missing.insert(0, "time")
    if missing:
        raise MissingColumnsError(
            f"{source}: trades need columns 'price' and 'size' (and a time); missing {missing}; columns "
            f"found: {[str(c) for c in frame.columns]}; accepted spellings (any case): {spellings_text()}")


def _side_kinds(side: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Which sides are unknown (empty, 0, N, none) and which are readable at all (buy, sell, unknown)."""
    if _is_real_dtype(side.dtype):  # numbers: no pass over strings
        v = side.to_numpy(dtype=float)
        unknown = np.isnan(v) | (v == 0)
        return unknown, unknown | np.isin(v, (-1.0, 1.0))
    words = side.astype(str).str.strip().str.lower()
    unknown = (words.isin(_UNKNOWN_SIDE) | side.isna()).to_numpy()
    return unknown, words.isin(_BUY_SELL).to_numpy() | unknown


def clean(frame: pd.DataFrame, *, time_column: str | None = None, out_of_order: str = "sort",
          drop_duplicates: bool = False, band: float = 0.01, band_window: int = 51,
          source: str = "trades") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean raw trades and report, rule by rule, how many rows each rule touched.

    Rules, in order: prices that are not positive finite numbers (text, NaN, <= 0) and sizes
    that are not numbers are dropped (``bad_price``, ``bad_size``); sides that are not buy/sell
    or unknown are dropped (``bad_side``); zero or negative sizes are dropped
    (``nonpositive_size``); rows whose time goes back are sorted into place, dropped, or refused
    (``out_of_order``); rows repeating the previous row exactly (time, price, size, side) are
    counted and, with ``drop_duplicates``, dropped (``duplicates``; a sweep may print identical
    fills, so they are kept by default); prints further than ``band`` (relative) from the
    centred rolling median of ``band_window`` trades are dropped (``outside_band``). Last, trades
    without a side (no side column, or an unknown side: empty, ``0``, ``N``, ``none``) are signed
    by the tick rule over the cleaned prices (``side_inferred``; :func:`tick_rule`), so every
    trade leaves with ``side`` +1 or -1.

    Parameters
    ----------
    frame : DataFrame
        Time as a column (``time``, ``timestamp``...) or ``DatetimeIndex``; ``price``,
        ``size`` and optionally ``side`` (vendor spellings such as ``Qty`` or ``Volume`` are
        understood: :func:`finar.data.validate.trade_spellings`).
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
        Without a price or size column (the message lists the columns found and the spellings
        accepted).
    InvalidTimestampError
        If a timestamp cannot be parsed (rows named).

    Examples
    --------
    >>> raw = pd.DataFrame({"time": ["2024-01-02 09:30:01", "2024-01-02 09:30:00",
    ...                              "2024-01-02 09:30:02"], "price": [100.0, "oops", 100.5],
    ...                     "Volume": [1, 2, 3]})
    >>> trades, report = clean(raw)
    >>> len(trades), int(report.set_index("rule").loc["bad_price", "rows"]), trades["side"].tolist()
    (2, 1, [1, 1])
    """
    if out_of_order not in ("sort", "drop", "raise"):
        raise DataError(f"out_of_order must be 'sort', 'drop' or 'raise', got {out_of_order!r}")
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise DataError(f"{source}: expected a non-empty DataFrame of trades")
    _check_columns(frame, time_column, source)
    frame = _trade_size(_with_time_index(frame, time_column))
    n_in, counts = len(frame), {}
    price, size = _numbers(frame["price"]), _numbers(frame["size"])
    bad = ~(np.isfinite(price) & (price > 0))
    counts["bad_price"] = int(bad.sum())
    bad_size = ~np.isfinite(size) & ~bad
    counts["bad_size"] = int(bad_size.sum())
    frame = frame.assign(price=price, size=size)[~(bad | bad_size).to_numpy()]
    had_side = "side" in frame.columns
    if had_side:
        unknown, ok = _side_kinds(frame["side"])
        counts["bad_side"] = int((~ok).sum())
        frame, unknown = frame[ok], unknown[ok]
        side = np.zeros(len(frame), np.int8)  # 0: unknown until the tick rule signs it
        side[~unknown] = _parse_side(frame["side"][~unknown], source).to_numpy()
        frame = frame.assign(side=side)
    else:
        frame = frame.assign(side=np.zeros(len(frame), np.int8))
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
    same = np.r_[False, np.diff(frame.index.as_unit("ns").asi8) == 0]
    for c in ("price", "size", "side"):
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
    side = frame["side"].to_numpy()
    unsigned = side == 0
    counts["side_inferred"] = int(unsigned.sum())
    if unsigned.any():  # over the cleaned prices: a dropped bad print must not flip a sign
        signed = np.where(unsigned, tick_rule(frame["price"].to_numpy()), side)
        frame = frame.assign(side=signed.astype(np.int8))
    actions = {"bad_price": "dropped", "bad_size": "dropped", "bad_side": "dropped",
               "nonpositive_size": "dropped",
               "out_of_order": "dropped" if out_of_order == "drop" else "sorted",
               "duplicates": "dropped" if drop_duplicates else "kept (counted only)",
               "outside_band": "dropped" if math.isfinite(band) else "rule off",
               "side_inferred": ("unknown sides signed by the tick rule" if had_side
                                 else "no side column: signed by the tick rule")}
    trades = clean_trades(frame, source=source)
    return trades, _report(counts, actions, n_in, len(trades))


def read_trades(path: str | os.PathLike[str] | pd.DataFrame, *, layout: str = "auto", date: Any = None,
                symbol: str | None = None, **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Read a trades file as it comes (CSV or Parquet, a vendor's layout) and :func:`clean` it.

    The layout is recognised from the file (:mod:`finar.ticks.vendors`): a header in any of the
    vendors' spellings (such as the E-mini file's ``DateTime, Price, Volume``), Databento trades
    CSV, Binance aggTrades or trades, LOBSTER message files. The delimiter (``,`` ``;`` tab),
    a decimal comma, a header line and gzip/zip/bz2/xz compression are sniffed. Trades the file
    does not sign (no side column, Databento's ``N``, LOBSTER's hidden executions) are signed by
    the tick rule, and the report says how many.

    Parameters
    ----------
    path : path-like or DataFrame
        The file (or a frame already in memory, in any of the layouts with a header).
    layout : {'auto', 'columns', 'databento', 'binance', 'lobster'}, default 'auto'
        Recognised from the file; another value is checked against it.
    date : date-like, optional
        The trading day of a LOBSTER message file (by default read from LOBSTER's file name
        ``TICKER_YYYY-MM-DD_...``); LOBSTER times are seconds after midnight, exchange time.
    symbol : str, optional
        The instrument to read from a file of several (a ``symbol``/``instrument_id`` column);
        such a file is refused without it.
    **kwargs
        Passed to :func:`clean` (``out_of_order``, ``drop_duplicates``, ``band``, ...).

    Returns
    -------
    (trades, report)
        Trades with columns ``price``, ``size``, ``side``; the report of :func:`clean` with two
        rows first, ``layout`` (rows read, and how they were read) and ``not_a_trade`` (rows
        that are order-book messages, skipped), and ``total`` counting from the rows read.

    Raises
    ------
    DataError
        A missing, empty, binary or corrupt file; an unknown layout (the message lists the
        columns found and the spellings accepted); a LOBSTER file without a date.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "es.csv").write_text("DateTime;Price;Volume\n2013-09-01 17:00:00.083;1640,25;8\n"
    ...                               "2013-09-01 17:00:00.090;1640,50;1\n")
    >>> trades, report = read_trades(d / "es.csv")
    >>> trades[["price", "size", "side"]].to_numpy().tolist()
    [[1640.25, 8.0, 1.0], [1640.5, 1.0, 1.0]]
    >>> int(report.set_index("rule").loc["side_inferred", "rows"])
    2
    """
    if isinstance(path, pd.DataFrame):
        # a frame read without a header (columns 0, 1, ...) may be one of the headerless layouts
        header = list(path.columns) != list(range(path.shape[1]))
        raw, source, name = path, kwargs.pop("source", "trades"), None
    elif isinstance(path, str | os.PathLike):
        raw, header = read_table(path)
        name = os.fspath(path)
        source = kwargs.pop("source", name)
    else:
        raise DataError(f"path must be a file path or a DataFrame of trades, got {type(path).__name__}")
    parsed = to_trades_frame(raw, header=header, layout=layout, source=source, date=date, symbol=symbol,
                             file_name=name)
    if parsed.layout != "columns" and kwargs.get("time_column") is not None:
        raise DataError(f"{source}: time_column= applies to files with a header of their own, not to the "
                        f"{parsed.layout} layout, whose time column finar knows")
    trades, report = clean(parsed.frame, source=source, **kwargs)
    body = report[report["rule"] != "total"].copy()
    if parsed.side_note:
        inferred = body["rule"] == "side_inferred"
        body.loc[inferred, "action"] = f"{parsed.side_note}: signed by the tick rule"
    head = pd.DataFrame([{"rule": "layout", "rows": parsed.n_rows, "action": parsed.description},
                         {"rule": "not_a_trade", "rows": parsed.skipped, "action": parsed.skipped_action}])
    total = pd.DataFrame([{"rule": "total", "rows": parsed.n_rows - len(trades),
                           "action": f"{parsed.n_rows} rows in, {len(trades)} out"}])
    return trades, pd.concat([head, body, total], ignore_index=True)


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
