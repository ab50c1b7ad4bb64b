"""Column normalisation and validation of price bars and trades.

Every adapter (bundled data, user files, Yahoo Finance) ends in :func:`clean_bars` or
:func:`clean_trades`, so all data reaching a model has lower-case column names, a sorted,
unique, tz-consistent ``DatetimeIndex`` named ``time``, and finite positive prices. Nothing is
dropped or reordered unless an argument asks for it: bad input raises a
:class:`finar.FinarError` subclass that names the problem and the rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from finar.errors import (
    DataError,
    DuplicateTimestampError,
    InvalidTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    UnsortedIndexError,
    format_rows,
)

__all__ = [
    "BAR_COLUMNS",
    "TRADE_COLUMNS",
    "normalize_columns",
    "parse_time_index",
    "check_index",
    "check_positive_finite",
    "clean_bars",
    "clean_trades",
]

BAR_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
TRADE_COLUMNS = ("price", "size", "side")
TIME_NAMES = ("time", "date", "datetime", "timestamp", "ts", "dt")

# Common spellings in vendor files, after lower-casing and turning separators into "_".
_ALIASES = {
    "adj_close": "adj_close", "adjclose": "adj_close", "adjusted_close": "adj_close",
    "adj": "adj_close", "adjusted": "adj_close",
    "o": "open", "h": "high", "l": "low", "c": "close", "last": "close",
    "vol": "volume", "v": "volume",
    "px": "price", "trade_price": "price",
    "qty": "size", "quantity": "size", "amount": "size", "trade_size": "size", "volume_traded": "size",
    "aggressor": "side", "aggressor_side": "side", "direction": "side",
}
_SIDES = {
    "b": 1, "buy": 1, "bid": 1, "+1": 1, "1": 1,
    "s": -1, "sell": -1, "ask": -1, "-1": -1,
}
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})\s*$")


def _canonical(name: object) -> str:
    key = re.sub(r"[\s\-./]+", "_", str(name).strip().lower()).strip("_")
    return _ALIASES.get(key, key)


def normalize_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case column names, unify separators and map vendor spellings.

    ``"Adj Close"`` becomes ``adj_close``, ``"Vol"`` becomes ``volume``, ``"Qty"`` becomes
    ``size``. Two columns that map to one name raise :class:`finar.errors.DataError`.
    """
    names = [_canonical(c) for c in frame.columns]
    seen: dict[str, object] = {}
    for original, name in zip(frame.columns, names, strict=True):
        if name in seen:
            raise DataError(
                f"columns {seen[name]!r} and {original!r} both mean {name!r}; rename or drop one"
            )
        seen[name] = original
    out = frame.copy()
    out.columns = names
    return out


def _offsets(values: pd.Series) -> pd.Series:
    return values.astype(str).str.extract(_TZ_SUFFIX, expand=False).fillna("naive")


def parse_time_index(values: Iterable[object], *, name: str = "time") -> pd.DatetimeIndex:
    """Parse timestamps into a ``DatetimeIndex`` named ``time``, refusing mixed time zones.

    Raises
    ------
    InvalidTimestampError
        If a value cannot be parsed or is missing (the rows are named).
    MixedTimeZoneError
        If values mix offsets, or mix zone-aware and naive values (convert them first).
    """
    if isinstance(values, pd.DatetimeIndex):
        return values.rename(name)
    raw = pd.Series(list(values) if not isinstance(values, pd.Series | pd.Index) else values)
    raw = raw.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = raw
    else:
        if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
            kinds = _offsets(raw[raw.notna()])
            if kinds.nunique() > 1:
                first = kinds.iloc[0]
                bad = kinds.index[kinds != first]
                raise MixedTimeZoneError(
                    f"{name} mixes time zones ({first!r} in row {kinds.index[0]} but "
                    f"{kinds[bad[0]]!r} in rows {format_rows(bad)}); convert all timestamps "
                    "to one zone (e.g. UTC) first"
                )
        try:
            parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        if not isinstance(parsed.dtype, pd.DatetimeTZDtype) and parsed.dtype == object:
            raise MixedTimeZoneError(f"{name} mixes time zones; convert to one zone first")
        unparsed = parsed.isna() & raw.notna()
        if unparsed.any():
            # ISO8601 may refuse a consistent non-ISO format that 'mixed' parses
            retry = pd.to_datetime(raw, errors="coerce", format="mixed")
            if retry.notna().sum() > parsed.notna().sum():
                parsed = retry
    missing = parsed.isna()
    if missing.any():
        rows = list(np.flatnonzero(missing.to_numpy()))
        shown = [f"{r} ({raw.iloc[r]!r})" for r in rows[:5]]
        raise InvalidTimestampError(
            f"{name} has {len(rows)} missing or unparseable value(s) at rows "
            f"{format_rows(shown + ['...'] * max(0, len(rows) - 5), 5)}; fix or remove them"
        )
    return pd.DatetimeIndex(parsed, name=name)


def check_index(index: pd.DatetimeIndex, *, allow_equal: bool = False) -> None:
    """Refuse unsorted (and, unless ``allow_equal``, duplicate) timestamps, naming the rows."""
    values = index.asi8
    steps = np.diff(values)
    back = np.flatnonzero(steps < 0) + 1
    if back.size:
        raise UnsortedIndexError(
            f"timestamps are not sorted: {back.size} row(s) go back in time, first at row "
            f"{back[0]} ({index[back[0]]} after {index[back[0] - 1]}); rows "
            f"{format_rows(back)}. Sort them (pass sort=True to finar.load) if the order is "
            "a mistake of the file"
        )
    if not allow_equal:
        dup = np.flatnonzero(steps == 0) + 1
        if dup.size:
            raise DuplicateTimestampError(
                f"{dup.size} duplicate timestamp(s), first {index[dup[0]]} at rows "
                f"{dup[0] - 1} and {dup[0]}; duplicated rows {format_rows(dup)}. Remove them "
                "(pass drop_duplicates='first' or 'last' to finar.load) or aggregate them"
            )


def check_positive_finite(frame: pd.DataFrame, columns: Iterable[str], *, what: str = "price",
                          allow_zero: bool = False) -> None:
    """Refuse non-finite and non-positive values in ``columns``, naming the rows."""
    for col in columns:
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = frame.index[bad]
            raise NonFiniteValueError(
                f"{what} column {col!r} has {bad.sum()} missing, non-numeric or infinite "
                f"value(s) at {format_rows(rows)}; fill or remove them explicitly"
            )
        bad = values < 0 if allow_zero else values <= 0
        if bad.any():
            rows = frame.index[bad]
            sign = "negative" if allow_zero else "zero or negative"
            raise NonPositivePriceError(
                f"{what} column {col!r} has {bad.sum()} {sign} value(s) at "
                f"{format_rows(rows)} (first {values[bad][0]!r}); log returns need positive "
                "prices"
            )


def _with_time_index(frame: pd.DataFrame, time_column: str | None) -> pd.DataFrame:
    frame = normalize_columns(frame)
    if time_column is not None:
        key = _canonical(time_column)
        if key not in frame.columns:
            raise MissingColumnsError(
                f"time column {time_column!r} not found; columns are {list(frame.columns)}"
            )
    elif isinstance(frame.index, pd.DatetimeIndex):
        key = None
    else:
        found = [c for c in TIME_NAMES if c in frame.columns]
        if not found and frame.index.name is not None and _canonical(frame.index.name) in TIME_NAMES:
            frame = frame.reset_index()
            frame.columns = [_canonical(c) for c in frame.columns]
            found = [_canonical(frame.columns[0])]
        if not found:
            raise MissingColumnsError(
                "no time column: expected one of "
                f"{list(TIME_NAMES)} or a DatetimeIndex; columns are {list(frame.columns)}"
            )
        key = found[0]
    if key is None:
        index = frame.index.rename("time")
    else:
        index = parse_time_index(frame[key], name="time")
        frame = frame.drop(columns=[key])
    frame.index = index
    return frame


def _order(frame: pd.DataFrame, *, sort: bool, drop_duplicates: str | bool,
           allow_equal: bool) -> pd.DataFrame:
    if sort:
        frame = frame.sort_index(kind="stable")
    if drop_duplicates:
        if drop_duplicates not in ("first", "last"):
            raise DataError(f"drop_duplicates must be 'first', 'last' or False, got {drop_duplicates!r}")
        frame = frame[~frame.index.duplicated(keep=drop_duplicates)]
    check_index(frame.index, allow_equal=allow_equal)
    return frame


def clean_bars(frame: pd.DataFrame, *, time_column: str | None = None, sort: bool = False,
               drop_duplicates: str | bool = False, source: str = "data") -> pd.DataFrame:
    """Normalise and validate price bars: OHLCV, or a single price column.

    A frame with one numeric column that is not a known bar field (e.g. ``SPY``) is read as
    closing prices and renamed ``close``; several such columns are a panel of closes, one
    column per asset, and keep their names.

    Parameters
    ----------
    frame : DataFrame
        Time as a ``DatetimeIndex`` or a column (``time``, ``date``, ``timestamp``...).
    time_column : str, optional
        Name of the time column when it is not one of the usual names.
    sort : bool, default False
        Sort rows by time instead of raising :class:`UnsortedIndexError`.
    drop_duplicates : {'first', 'last', False}, default False
        Keep one row per timestamp instead of raising :class:`DuplicateTimestampError`.
    source : str
        Where the data came from, used in messages.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Date": ["2020-01-02", "2020-01-03"], "Adj Close": [10.0, 10.5]})
    >>> clean_bars(raw).columns.tolist()
    ['adj_close']
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise DataError(f"{source}: no rows")
    frame = _with_time_index(frame, time_column)
    price_cols = [c for c in ("open", "high", "low", "close", "adj_close", "price") if c in frame]
    if not price_cols:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        if not numeric:
            raise MissingColumnsError(
                f"{source}: no price column; expected 'close' (or open/high/low/adj_close, or a "
                f"single column of prices); columns are {list(frame.columns)}"
            )
        if len(numeric) == 1 and frame.shape[1] == 1:
            frame = frame.rename(columns={numeric[0]: "close"})
            price_cols = ["close"]
        else:
            price_cols = list(frame.columns)
    elif "price" in price_cols:
        frame = frame.rename(columns={"price": "close"})
        price_cols = [("close" if c == "price" else c) for c in price_cols]
    frame = _order(frame, sort=sort, drop_duplicates=drop_duplicates, allow_equal=False)
    for col in frame.columns:
        if col in price_cols or col == "volume":
            if frame[col].dtype == object:
                frame[col] = pd.to_numeric(frame[col], errors="coerce")
    check_positive_finite(frame, price_cols, what=f"{source}: price")
    check_positive_finite(frame, ["volume"], what=f"{source}: volume", allow_zero=True)
    ordered = [c for c in BAR_COLUMNS if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def _parse_side(side: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(side.dtype):
        values = side.to_numpy(dtype=float)
        mapped = pd.Series(np.where(np.isin(values, (-1.0, 1.0)), values, np.nan), index=side.index)
    else:
        mapped = side.astype(str).str.strip().str.lower().map(_SIDES)
    bad = mapped.isna().to_numpy()
    if bad.any():
        rows = side.index[bad]
        raise DataError(
            f"{source}: side has {bad.sum()} value(s) that are not buy/sell (+1/-1, 'b'/'s', "
            f"'buy'/'sell') at {format_rows(rows)}, e.g. {side[bad].iloc[0]!r}; drop the "
            "column to infer signs by the tick rule"
        )
    return mapped.astype("int8")


def clean_trades(frame: pd.DataFrame, *, time_column: str | None = None, sort: bool = False,
                 source: str = "trades") -> pd.DataFrame:
    """Normalise and validate trades: time, price, size and an optional side (+1 buy, -1 sell).

    Several trades may share a timestamp (one order sweeping several resting orders), so equal
    timestamps are kept; timestamps going back in time raise unless ``sort=True``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise DataError(f"{source}: no rows")
    frame = _with_time_index(frame, time_column)
    missing = [c for c in ("price", "size") if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{source}: trades need columns 'price' and 'size'; missing {missing}; columns are "
            f"{list(frame.columns)}"
        )
    frame = _order(frame, sort=sort, drop_duplicates=False, allow_equal=True)
    check_positive_finite(frame, ["price"], what=f"{source}: price")
    check_positive_finite(frame, ["size"], what=f"{source}: size")
    frame["price"] = frame["price"].astype(float)
    frame["size"] = frame["size"].astype(float)
    if "side" in frame.columns:
        frame["side"] = _parse_side(frame["side"], source)
    ordered = [c for c in TRADE_COLUMNS if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]
