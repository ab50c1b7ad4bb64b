"""Where data comes from: bundled datasets, the user's files and Yahoo Finance.

``finar.load(name_or_path)`` is the one entry point; ``finar.datasets()`` lists what ships.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from finar.data.validate import TIME_NAMES, clean_bars, clean_trades, normalize_columns
from finar.errors import DataError, MixedTimeZoneError, UnknownDatasetError

__all__ = ["DATASET_NAMES", "datasets", "load", "read_file"]


@dataclass(frozen=True)
class _Dataset:
    name: str
    description: str
    frequency: str
    source: str
    license: str
    reader: Callable[[], pd.DataFrame]


def _arch(module: str) -> Callable[[], pd.DataFrame]:
    def read() -> pd.DataFrame:
        import importlib

        return importlib.import_module(f"arch.data.{module}").load()

    return read


def _bundled_csv(*names: str) -> pd.DataFrame:
    root = resources.files("finar.data") / "bundled"
    frames = []
    for name in names:
        with resources.as_file(root / name) as path:
            frames.append(pd.read_csv(path, index_col=0, parse_dates=True))
    return pd.concat(frames, axis=1)


def _sp500_stocks() -> pd.DataFrame:
    return _bundled_csv("sp500_dataset.csv.gz", "sp500_index.csv.gz")


def _one_column(module: str, column: str) -> Callable[[], pd.DataFrame]:
    # FRED-style series carry a row with no value on each market holiday; those rows hold no
    # price, so the bundled reader removes them (documented in the dataset's description).
    def read() -> pd.DataFrame:
        return _arch(module)().rename(columns={column: "close"}).dropna()

    return read


_ARCH_LICENSE = "NCSA (University of Illinois/NCSA Open Source License), via the arch package"
_DATASETS = {
    d.name: d
    for d in [
        _Dataset("sp500", "S&P 500 index daily OHLC, adjusted close and volume", "B",
                 "arch.data.sp500 (Yahoo Finance copy shipped with arch)", _ARCH_LICENSE,
                 _arch("sp500")),
        _Dataset("nasdaq", "NASDAQ Composite daily OHLC, adjusted close and volume", "B",
                 "arch.data.nasdaq (Yahoo Finance copy shipped with arch)", _ARCH_LICENSE,
                 _arch("nasdaq")),
        _Dataset("vix", "CBOE VIX index daily close (column close)", "B",
                 "arch.data.vix (shipped with arch); holiday rows without a value removed",
                 _ARCH_LICENSE, _one_column("vix", "vix")),
        _Dataset("wti", "WTI crude oil spot price, daily (column close)", "B",
                 "arch.data.wti (FRED series DCOILWTICO, shipped with arch); holiday rows "
                 "without a value removed", _ARCH_LICENSE,
                 _one_column("wti", "DCOILWTICO")),
        _Dataset("sp500-stocks",
                 "20 large US stocks and the S&P 500 index (column SP500), daily adjusted closes",
                 "B", "skfolio 1.12.2 datasets, vendored in finar/data/bundled",
                 "BSD-3-Clause (finar/data/bundled/LICENSE)", _sp500_stocks),
    ]
}
#: the names ``load`` reads as bundled datasets
DATASET_NAMES = frozenset(_DATASETS)


def datasets() -> pd.DataFrame:
    """List the datasets that ship with finar and load offline.

    Returns
    -------
    DataFrame
        One row per dataset with ``name, description, frequency, start, end, rows, columns,
        source, license``.

    Examples
    --------
    >>> import finar
    >>> "sp500" in finar.datasets()["name"].tolist()
    True
    """
    rows = []
    for d in _DATASETS.values():
        frame = _load_bundled(d.name)
        rows.append({
            "name": d.name, "description": d.description, "frequency": d.frequency,
            "start": frame.index[0].date(), "end": frame.index[-1].date(), "rows": len(frame),
            "columns": ", ".join(map(str, frame.columns)), "source": d.source,
            "license": d.license,
        })
    return pd.DataFrame(rows)


def _load_bundled(name: str) -> pd.DataFrame:
    d = _DATASETS[name]
    return clean_bars(d.reader(), source=name)


def read_file(path: str | os.PathLike[str], *, kind: str = "auto", time_column: str | None = None,
              sort: bool = False, drop_duplicates: str | bool = False,
              **read_kwargs: Any) -> pd.DataFrame:
    """Read a user's CSV or Parquet file of price bars or trades.

    Parameters
    ----------
    path : path-like
        ``.csv`` (optionally compressed, e.g. ``.csv.gz``) or ``.parquet``/``.pq``.
    kind : {'auto', 'bars', 'trades'}
        ``auto`` reads trades when the file has ``price`` and ``size`` columns (after name
        normalisation), bars otherwise.
    time_column, sort, drop_duplicates
        As in :func:`finar.data.validate.clean_bars`. Trades keep equal timestamps.
    **read_kwargs
        Passed to :func:`pandas.read_csv` or :func:`pandas.read_parquet`.

    Notes
    -----
    A CSV written by ``DataFrame.to_csv`` with an unnamed time index (first header field
    empty) is read with that column as the time. Rows with more fields than the header and
    repeated header names are refused rather than shifted or renamed.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {str(p)!r}")
    suffixes = [s.lower() for s in p.suffixes]
    try:
        if suffixes and suffixes[-1] in {".parquet", ".pq"}:
            raw = pd.read_parquet(p, **read_kwargs)
            if isinstance(raw.index, pd.DatetimeIndex):
                raw = raw.reset_index(names=raw.index.name or "time")
        elif ".csv" in suffixes or ".txt" in suffixes:
            raw = _read_csv(p, read_kwargs)
            if "index_col" in read_kwargs and raw.index.name is None:
                raw.index.name = "time"  # an unnamed index the user chose is the time
            if raw.columns.size and str(raw.columns[0]) == "Unnamed: 0" and not (
                    set(normalize_columns(raw.head(0)).columns) & set(TIME_NAMES)):
                # DataFrame.to_csv writes an unnamed DatetimeIndex under an empty header
                raw = raw.rename(columns={raw.columns[0]: "time"})
            if "index_col" not in read_kwargs and not isinstance(raw.index, pd.RangeIndex):
                # pandas silently moves the first field(s) into the index when rows have more
                # fields than the header, shifting every value one column to the right
                raise DataError(
                    f"{str(p)!r}: rows have more fields than the header "
                    f"({raw.shape[1]} names: {list(raw.columns)}); fix the header, or pass "
                    "index_col=0 if the first column is an unnamed time index"
                )
            names = [str(c) for c in raw.columns]
            mangled = [c for c in names if re.fullmatch(r".+\.\d+", c) and c.rsplit(".", 1)[0] in names]
            if mangled:  # pandas renames a repeated header "close" to "close.1"
                raise DataError(
                    f"{str(p)!r}: the header repeats column names (read as {mangled}); rename "
                    "or drop the repeated columns"
                )
        else:
            raise DataError(f"{str(p)!r}: unknown file type; use .csv or .parquet")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"could not read {str(p)!r}: {exc}") from exc
    if kind not in {"auto", "bars", "trades"}:
        raise DataError(f"kind must be 'auto', 'bars' or 'trades', got {kind!r}")
    if kind == "auto":
        cols = set(normalize_columns(raw.head(0)).columns)
        kind = "trades" if {"price", "size"} <= cols else "bars"
    if kind == "trades":
        if drop_duplicates:
            raise DataError(
                f"{str(p)!r}: drop_duplicates does not apply to trades (several trades may share "
                "a timestamp and are all kept); pass kind='bars' to read bars"
            )
        return clean_trades(raw, time_column=time_column, sort=sort, source=str(p))
    return clean_bars(raw, time_column=time_column, sort=sort, drop_duplicates=drop_duplicates,
                      source=str(p))


#: delimiters tried, in order, when a CSV read with commas comes out as one column
_OTHER_DELIMITERS = (";", "\t", "|")


def _read_csv(path: Path, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    """``pd.read_csv``, telling the delimiter when none is given: a file that read with commas as
    one column whose header holds ``;``, a tab or ``|`` is read again with that delimiter (and
    with decimal commas when its ``;``-separated numbers use them, as European exports do)."""
    if {"sep", "delimiter"} & set(read_kwargs):
        return pd.read_csv(path, **read_kwargs)
    head = pd.read_csv(path, nrows=0, **{k: v for k, v in read_kwargs.items() if k != "nrows"})
    names = [str(c) for c in head.columns]
    sep = next((d for d in _OTHER_DELIMITERS if len(names) == 1 and d in names[0]), None)
    if sep is None:
        return pd.read_csv(path, **read_kwargs)
    raw = pd.read_csv(path, sep=sep, **read_kwargs)
    if sep == ";" and "decimal" not in read_kwargs and _decimal_commas(raw):
        raw = pd.read_csv(path, sep=sep, decimal=",", **read_kwargs)
    return raw


def _decimal_commas(raw: pd.DataFrame) -> bool:
    """Whether some text column holds numbers written with a decimal comma (``1234,5``) only."""
    for col in raw.columns:
        values = raw[col].dropna()
        if not pd.api.types.is_numeric_dtype(values) and len(values):
            text = values.astype(str).str.strip()
            if text.str.fullmatch(r"[+-]?\d+(,\d+)?").all() and text.str.contains(",").any():
                return True
    return False


def load(name: str | os.PathLike[str], start: Any = None, end: Any = None,
         **kwargs: Any) -> pd.DataFrame:
    """Load prices or trades by dataset name, file path or ``yahoo:TICKER``.

    Parameters
    ----------
    name : str or path-like
        A bundled dataset (see :func:`datasets`), ``"yahoo:SPY"`` (downloaded with yfinance and
        cached on disk), or a path to a ``.csv``/``.parquet`` file of bars or trades.
    start, end : date-like, optional
        Keep rows with ``start <= time <= end`` (both inclusive, like ``DataFrame.loc``).
    **kwargs
        Passed on to :func:`read_file` or :func:`finar.data.yahoo.load_yahoo`.

    Returns
    -------
    DataFrame
        Lower-case columns, a sorted unique ``DatetimeIndex`` named ``time``.

    Examples
    --------
    >>> import finar
    >>> px = finar.load("sp500", start="2010-01-01", end="2010-12-31")
    >>> px.columns.tolist()
    ['open', 'high', 'low', 'close', 'adj_close', 'volume']
    """
    text = os.fspath(name)
    if isinstance(name, str) and name.lower().startswith("yahoo:"):
        from finar.data.yahoo import load_yahoo

        ticker = name.split(":", 1)[1]
        # load_yahoo's end is exclusive (as Yahoo's); finar.load's is inclusive
        stop = None if end is None else _timestamp(end, "end") + pd.Timedelta(days=1)
        return _slice(load_yahoo(ticker, start=start, end=stop, **kwargs), start, end)
    if isinstance(name, str) and name.lower() in _DATASETS:
        if kwargs:
            raise DataError(f"bundled dataset {name!r} takes no options, got {sorted(kwargs)}")
        frame = _load_bundled(name.lower())
    elif Path(text).suffix or Path(text).exists():
        frame = read_file(text, **kwargs)
    else:
        raise UnknownDatasetError(
            f"unknown dataset {text!r}; bundled datasets are {sorted(_DATASETS)} (see "
            "finar.datasets()), or pass a .csv/.parquet path or 'yahoo:TICKER'"
        )
    return _slice(frame, start, end)


def _slice(frame: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    if start is None and end is None:
        return frame
    lo = _timestamp(start, "start") if start is not None else None
    hi = _timestamp(end, "end") if end is not None else None
    tz = getattr(frame.index, "tz", None)
    # a date without a zone means that date in the data's own zone, as pandas' .loc reads
    # date strings; a zone-aware bound on zone-naive data has no such reading
    try:
        lo, hi = (b if b is None or tz is None or b.tz is not None else b.tz_localize(tz)
                  for b in (lo, hi))
    except (ValueError, TypeError) as exc:  # e.g. a local time that does not exist (DST)
        raise DataError(f"start/end {start!r}, {end!r} cannot be placed in zone {tz}: {exc}") from exc
    if tz is None and any(b is not None and b.tz is not None for b in (lo, hi)):
        raise MixedTimeZoneError(
            f"start/end {start!r}, {end!r} carry a time zone but the data's timestamps have none; "
            "pass dates without a zone"
        )
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"start {lo} is after end {hi}")
    return frame.loc[lo:hi]


def _timestamp(value: Any, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what} must be a date, got {value!r}") from exc
    if stamp is pd.NaT:  # "" and NaN read as NaT, which would silently select no rows
        raise DataError(f"{what} must be a date, got {value!r}")
    return stamp
