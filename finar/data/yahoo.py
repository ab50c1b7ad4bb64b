"""Price bars from Yahoo Finance (through yfinance), kept in a Parquet cache on disk.

Yahoo is a free, unofficial source: it rate-limits, changes without notice and cannot be reached
offline. So every successful download is merged into a cache file, one per (ticker, interval),
and when a later download fails the cached bars are returned with a
:class:`~finar.errors.StaleCacheWarning`. Only when there is no cache does :func:`load_yahoo`
raise :class:`~finar.errors.DataSourceError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from finar._estimator import check_date
from finar._io import write_frame
from finar.data.validate import clean_bars
from finar.errors import DataError, DataSourceError, FinarWarning, StaleCacheWarning

__all__ = ["INTERVALS", "cache_path", "load_yahoo"]

INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")
_DAILY_OR_LONGER = ("1d", "5d", "1wk", "1mo", "3mo")
DEFAULT_CACHE_DIR = Path("data") / "cache"
# The [start, end) span the cached rows are known to cover (ISO strings, None = unbounded),
# kept in the Parquet file's pandas metadata through DataFrame.attrs.
_SPAN_KEY = "finar_yahoo_span"
_UNIT = "us"  # one time resolution whether bars come from Yahoo or the cache, as the bundled data
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# yfinance's error switch is process-wide; serialise finar's downloads around it.
_YF_LOCK = threading.Lock()

Bound = pd.Timestamp | None


def cache_path(ticker: str, interval: str = "1d",
               cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the cache file for ``ticker`` at ``interval``.

    The folder is ``cache_dir``, else the environment variable ``FINAR_CACHE_DIR``, else
    ``data/cache`` under the current directory. Characters other than letters, digits, ``.``,
    ``_`` and ``-`` are percent-encoded, so every Yahoo symbol gives its own portable file name.

    Examples
    --------
    >>> cache_path("^GSPC", cache_dir="cache").as_posix()
    'cache/yahoo_%5EGSPC_1d.parquet'
    """
    ticker = _check_ticker(ticker)
    if interval not in INTERVALS:
        raise DataError(f"interval {interval!r} is not one Yahoo offers; use one of {list(INTERVALS)}")
    folder = cache_dir if cache_dir is not None else os.environ.get("FINAR_CACHE_DIR") or DEFAULT_CACHE_DIR
    safe = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), ticker)
    return Path(folder) / f"yahoo_{safe}_{interval}.parquet"


def load_yahoo(ticker: str, start: str | date | None = None, end: str | date | None = None, *,
               interval: str = "1d",
               cache_dir: str | os.PathLike[str] | None = None, session: Any = None,
               refresh: bool = True) -> pd.DataFrame:
    """Download bars of ``ticker`` from Yahoo Finance in ``[start, end)``, through a disk cache.

    Parameters
    ----------
    ticker : str
        Yahoo symbol, e.g. ``"SPY"``, ``"^GSPC"``, ``"BRK-B"``, ``"EURUSD=X"`` (case-insensitive).
    start, end : str, date or Timestamp, optional
        Start (inclusive) and end (exclusive). No ``start`` means all the history Yahoo has; no
        ``end`` means up to now. Naive times are read in the exchange's time zone.
    interval : str, default "1d"
        One of :data:`INTERVALS`. Intraday data is only kept by Yahoo for recent weeks.
    cache_dir : path, optional
        Cache folder; see :func:`cache_path`.
    session : curl_cffi or requests Session, optional
        Passed to ``yfinance.Ticker`` (a proxy, or a fake one in tests).
    refresh : bool, default True
        Download even if the cache covers the request. With ``False`` a cache that covers
        ``[start, end)`` is used without touching the network (``end=None`` then means "as far
        as the cache goes"); otherwise a download is attempted as usual.

    Returns
    -------
    DataFrame
        Columns ``open high low close adj_close volume``, index ``time``. Bars of a day or longer
        are indexed by naive dates (as the bundled datasets); intraday bars keep yfinance's
        time-zone-aware exchange times.

    Raises
    ------
    DataError
        On an empty ticker, an unknown interval, an unreadable date or ``start >= end``.
    DataSourceError
        If the download fails and the cache has no rows in ``[start, end)``.

    Warns
    -----
    StaleCacheWarning
        If the download fails and cached rows are returned instead.

    Notes
    -----
    A download is merged into the cache, its rows replacing cached rows at the same times.
    ``adj_close`` is adjusted for dividends paid up to the day of its download, so a cache filled
    over many downloads can mix adjustments: download the whole span in one call, or delete the
    cache file, when adjusted closes must be consistent.

    yfinance's process-wide ``yf.config.debug.hide_exceptions`` is turned off for the length of
    a download, so that its errors (DNS, HTTP, "no data found") reach finar's messages.

    Examples
    --------
    >>> px = load_yahoo("SPY", start="2024-01-01", end="2024-02-01")  # doctest: +SKIP
    >>> px.columns.tolist()  # doctest: +SKIP
    ['open', 'high', 'low', 'close', 'adj_close', 'volume']
    """
    ticker = _check_ticker(ticker)
    path = cache_path(ticker, interval, cache_dir)
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if lo is not None and hi is not None:
        try:
            backwards = lo >= hi
        except TypeError:
            raise DataError(f"start ({lo}) and end ({hi}) must both have a time zone or both "
                            "be naive") from None
        if backwards:
            raise DataError(f"start ({lo}) must be before end ({hi})")
    if not refresh and path.exists():
        cached = _read_cache(path, ticker)
        if _covers(cached, lo, hi):
            return _clip(cached, lo, hi)
    try:
        fresh = _download(ticker, lo, hi, interval, session)
    except Exception as err:  # yfinance fails in many types: curl, HTTP, its own, empty frames
        return _fallback(path, ticker, interval, lo, hi, err)
    span = [lo, hi if hi is not None else pd.Timestamp.now("UTC")]
    span = [_align(t, fresh.index.tz) for t in span]
    merged = _merge(_read_cache(path, ticker) if path.exists() else None, fresh, span, path)
    write_frame(merged, path, overwrite=True)  # the cache, refreshed
    return _clip(merged, lo, hi)


def _check_ticker(ticker: object) -> str:
    if not isinstance(ticker, str) or not ticker.strip():
        raise DataError(f"ticker must be a non-empty string such as 'SPY', got {ticker!r}")
    return ticker.strip().upper()


def _bound(value: object, name: str) -> Bound:
    if value is None:
        return None
    return check_date(value, name)


def _align(ts: Bound, tz: Any) -> Bound:
    """``ts`` in the time zone of an index (naive indexes take the wall time)."""
    if ts is None:
        return None
    if tz is None:
        return ts.tz_localize(None) if ts.tz is not None else ts
    return ts.tz_localize(tz) if ts.tz is None else ts.tz_convert(tz)


def _show(ts: Bound) -> str:
    return "" if ts is None else str(ts.date()) if ts == ts.normalize() else str(ts)


def _clip(frame: pd.DataFrame, lo: Bound, hi: Bound) -> pd.DataFrame:
    lo, hi = _align(lo, frame.index.tz), _align(hi, frame.index.tz)
    keep = pd.Series(True, index=frame.index)
    if lo is not None:
        keep &= frame.index >= lo
    if hi is not None:
        keep &= frame.index < hi
    out = frame[keep.to_numpy()].copy()
    out.attrs = {}
    return out


@contextlib.contextmanager
def _yfinance_raising(yf: Any) -> Iterator[None]:
    # By default yfinance logs most failures and returns an empty frame, losing the cause.
    # (Releases without ``yf.config`` have no switch; their failures still end in an empty frame.)
    if getattr(yf, "config", None) is None:
        yield
        return
    debug = yf.config.debug
    hidden = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield
    finally:
        debug.hide_exceptions = hidden


def _download(ticker: str, lo: Bound, hi: Bound, interval: str, session: Any) -> pd.DataFrame:
    import yfinance as yf  # imported here: it is slow to import and only downloads need it

    # yfinance's default without a start is one month, not the whole history
    when: dict[str, Any] = {"period": "max"} if lo is None else {"start": lo}
    if hi is not None:
        when["end"] = hi
    with _YF_LOCK, _yfinance_raising(yf), warnings.catch_warnings():
        # yfinance's own deprecation notices (e.g. on pandas 3) are not the user's to act on
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        raw = yf.Ticker(ticker, session=session).history(
            interval=interval, auto_adjust=False, actions=False, repair=False, **when)
    if raw is None or raw.empty:
        raise LookupError(f"Yahoo returned no {interval} bars for {ticker}")
    if interval in _DAILY_OR_LONGER:
        raw.index = raw.index.tz_localize(None)  # midnight in the exchange's zone -> its date
    frame = clean_bars(raw, source=f"yahoo:{ticker}")
    frame.index = frame.index.as_unit(_UNIT)
    return frame


def _read_cache(path: Path, ticker: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
        attrs = dict(frame.attrs)
        frame = clean_bars(frame, source=f"yahoo cache {path}")
        frame.index = frame.index.as_unit(_UNIT)
    except Exception as err:
        raise DataSourceError(f"the Yahoo cache file {path} for {ticker} cannot be read "
                              f"({type(err).__name__}: {err}); fix or delete it") from err
    frame.attrs = attrs
    return frame


def _stored_span(frame: pd.DataFrame) -> list[Bound] | None:
    span = frame.attrs.get(_SPAN_KEY)
    if not span:
        return None
    return [_align(pd.Timestamp(t), frame.index.tz) if t else None for t in span]


def _covers(cached: pd.DataFrame, lo: Bound, hi: Bound) -> bool:
    span = _stored_span(cached) or [cached.index[0], cached.index[-1]]  # e.g. a user's file
    lo, hi = _align(lo, cached.index.tz), _align(hi, cached.index.tz)
    starts = span[0] is None if lo is None else span[0] is None or span[0] <= lo
    ends = hi is None or (span[1] is not None and hi <= span[1])
    return bool(starts and ends)


def _merge(old: pd.DataFrame | None, new: pd.DataFrame, span: list[Bound],
           path: Path) -> pd.DataFrame:
    if old is not None and (list(old.columns) != list(new.columns) or old.index.tz != new.index.tz):
        warnings.warn(FinarWarning(
            f"the cache file {path} holds columns {list(old.columns)} (time zone {old.index.tz}), "
            f"not {list(new.columns)} ({new.index.tz}) as downloaded; it is replaced by the "
            "download"), stacklevel=3)
        old = None
    if old is None:
        merged = new.copy()
    else:
        merged = pd.concat([old[~old.index.isin(new.index)], new]).sort_index()
        before = _stored_span(old)
        # A span is kept only if it joins the new one: a gap between them is not covered.
        if before is not None and _le(before[0], span[1]) and _le(span[0], before[1], upper=True):
            span = [None if None in (span[0], before[0]) else min(span[0], before[0]),
                    max(span[1], before[1])]
    merged.attrs = {_SPAN_KEY: [None if t is None else t.isoformat() for t in span]}
    return merged


def _le(a: Bound, b: Bound, *, upper: bool = False) -> bool:
    """``a <= b`` where None is minus infinity (or plus infinity for ``b`` when ``upper``)."""
    return a is None or (b is None and upper) or (b is not None and a <= b)


def _fallback(path: Path, ticker: str, interval: str, lo: Bound, hi: Bound,
              err: Exception) -> pd.DataFrame:
    reason = f"{type(err).__name__}: {err}"
    asked = f"{interval} bars from {_show(lo) or 'the start'} to {_show(hi) or 'now'}"
    failed = f"Yahoo Finance could not be reached or gave no data for {ticker} ({asked}): {reason}"
    if not path.exists():
        raise DataSourceError(
            f"{failed}. There is no cache at {path}. Connect to the internet and retry, put a "
            "Parquet file of bars (columns open high low close adj_close volume, index time) "
            "at that path, or use a bundled offline dataset (see finar.datasets(), e.g. "
            "finar.load('sp500'))") from err
    cached = _read_cache(path, ticker)
    held = f"{_show(cached.index[0])} to {_show(cached.index[-1])} ({len(cached)} rows)"
    rows = _clip(cached, lo, hi)
    if rows.empty:
        raise DataSourceError(f"{failed}; the cache {path} holds {held}, nothing in the requested "
                              "span. Connect and retry, or ask for dates the cache holds") from err
    warnings.warn(StaleCacheWarning(f"{failed}; using the cache {path}, which holds {held}"),
                  stacklevel=3)
    return rows
