"""Column normalisation and validation of price bars and trades.

Every adapter (bundled data, user files, Yahoo Finance) ends in :func:`clean_bars` or
:func:`clean_trades`, so all data reaching a model has lower-case column names, a sorted,
unique, tz-consistent ``DatetimeIndex`` named ``time``, and finite positive prices. Nothing is
dropped or reordered unless an argument asks for it: bad input raises a
:class:`finar.FinarError` subclass that names the problem and the rows.
"""

from __future__ import annotations

import decimal
import numbers
import re
import warnings
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
    "trade_spellings",
    "spellings_text",
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
    "px": "price", "trade_price": "price", "last_price": "price", "trade_px": "price",
    "qty": "size", "quantity": "size", "amount": "size", "trade_size": "size", "volume_traded": "size",
    "trade_qty": "size", "trade_quantity": "size", "last_size": "size", "last_qty": "size", "shares": "size",
    "time_stamp": "timestamp", "date_time": "datetime", "trade_time": "time",
    "aggressor": "side", "aggressor_side": "side", "direction": "side", "taker_side": "side",
}
_SIDES = {
    "b": 1, "buy": 1, "bid": 1, "+1": 1, "1": 1,
    "s": -1, "sell": -1, "ask": -1, "-1": -1,
}
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})\s*$")


_FIELDS = frozenset((*BAR_COLUMNS, *TRADE_COLUMNS, *TIME_NAMES, *_ALIASES.values()))


def _canonical(name: object) -> str:
    """The field a column name means (``"Adj Close"`` -> ``adj_close``), or the name as given.

    Only field names are normalised; anything else (an asset such as ``AAPL``, ``BRK-B``)
    keeps its spelling, stripped of surrounding spaces.
    """
    key = re.sub(r"[\s\-./]+", "_", str(name).strip().lower()).strip("_")
    key = _ALIASES.get(key, key)
    return key if key in _FIELDS else str(name).strip()


def normalize_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case field names, unify separators and map vendor spellings.

    ``"Adj Close"`` becomes ``adj_close``, ``"Vol"`` becomes ``volume``, ``"Qty"`` becomes
    ``size``; other names (assets of a panel, e.g. ``AAPL``) keep their spelling. Two columns
    that map to one name raise :class:`finar.errors.DataError`.
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
    # one spelling per offset, so that "Z", "+00:00" and "+0000" count as the same zone
    found = values.astype(str).str.extract(_TZ_SUFFIX, expand=False)
    found = found.str.replace("Z", "+00:00", regex=False).str.replace(
        r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)
    return found.fillna("naive")


def _show(value: object) -> str:
    """``repr`` of a value as the user wrote it (``2.0``, not ``np.float64(2.0)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _is_real_dtype(dtype: object) -> bool:
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def _is_real_value(value: object) -> bool:
    return (isinstance(value, str | bytes | numbers.Real | decimal.Decimal)
            and not isinstance(value, bool | np.bool_))


def _numbers(values: pd.Series) -> pd.Series:
    """``values`` as float64, with NaN for anything that is not a real number or its text.

    pandas' own ``to_numeric`` would turn dates into nanoseconds since 1970 and ``True`` into
    1; neither is a price.
    """
    if _is_real_dtype(values.dtype):
        return values.astype(float)
    if isinstance(values.dtype, pd.StringDtype):
        keep = values.notna()
    elif values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
        keep = values.map(_is_real_value).astype(bool)
    else:  # dates, durations, booleans, complex numbers...
        return pd.Series(np.nan, index=values.index)
    out = pd.to_numeric(values.where(keep), errors="coerce")
    if not _is_real_dtype(out.dtype):
        return pd.Series(np.nan, index=values.index)
    return out.astype(float)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number | np.bool_) and not pd.isna(value)


def _parse_numbers(raw: pd.Series) -> pd.Series:
    # A number is not a timestamp: read as nanoseconds since 1970 it would turn 20200102 into
    # a moment in 1970. Whole numbers that read as YYYYMMDD (a common vendor layout) are the
    # one unambiguous reading; anything else is left unparsed and named in the error.
    values = pd.to_numeric(raw, errors="coerce")
    whole = values.notna() & (values == values.round()) & values.between(1_000_01_01, 9999_12_31)
    text = values.where(whole).astype("Int64").astype("string")
    return pd.to_datetime(text, errors="coerce", format="%Y%m%d")


def _parse_text(raw: pd.Series) -> pd.Series:
    # ISO 8601 first (what to_csv and most vendors write); else one format inferred from the
    # first value and applied to every row, never a per-row guess that could read 1/2/2020
    # as January and 13/2/2020 as February in the same column.
    if raw.dtype == object:  # a number among text is not a timestamp (named below)
        numbers = raw.map(_is_number).astype(bool)
        if numbers.any():
            raw = raw.where(~numbers)
    parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    if (parsed.isna() & raw.notna()).any():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            retry = pd.to_datetime(raw, errors="coerce")
        per_row = any("infer format" in str(w.message) for w in caught)
        if not per_row and retry.notna().sum() > parsed.notna().sum():
            parsed = retry
    return parsed


def parse_time_index(values: Iterable[object], *, name: str = "time") -> pd.DatetimeIndex:
    """Parse timestamps into a ``DatetimeIndex`` named ``time``, refusing mixed time zones.

    Text is read as ISO 8601, or else in one format inferred from the first value and applied
    to all rows. Numbers are refused (nanoseconds since 1970 is never what a file means),
    except whole numbers that read as ``YYYYMMDD``.

    Raises
    ------
    InvalidTimestampError
        If a value cannot be parsed or is missing (the rows are named).
    MixedTimeZoneError
        If values mix offsets, or mix zone-aware and naive values (convert them first).
    """
    if isinstance(values, pd.DatetimeIndex):
        if not values.hasnans:
            return values.rename(name)
        raw = parsed = pd.Series(values)
    else:
        raw = pd.Series(list(values) if not isinstance(values, pd.Series | pd.Index) else values)
        raw = raw.reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            parsed = raw
        elif _is_real_dtype(raw.dtype):
            parsed = _parse_numbers(raw)
        elif pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_complex_dtype(raw.dtype):
            parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        else:
            kinds = _offsets(raw[raw.notna()])
            if kinds.nunique() > 1:
                # only the zones of values that are timestamps at all: the others are named as
                # unparseable below rather than counted as naive here
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    probe = pd.to_datetime(raw[kinds.index], errors="coerce", utc=True,
                                           format="ISO8601")
                kinds = kinds[probe.notna()]
            if kinds.nunique() > 1:
                first = kinds.iloc[0]
                bad = kinds.index[kinds != first]
                shown = [f"{r} ({kinds[r]!r})" for r in bad[:5]]
                raise MixedTimeZoneError(
                    f"{name} mixes time zones ({first!r} in row {kinds.index[0]} but not in rows "
                    f"{format_rows(shown + ['...'] * max(0, len(bad) - 5), 5)}); convert all "
                    "timestamps to one zone (e.g. UTC) first"
                )
            try:
                parsed = _parse_text(raw)
            except ValueError as exc:  # pandas refuses offsets it finds mixed after parsing
                raise MixedTimeZoneError(
                    f"{name} mixes time zones ({exc}); convert all timestamps to one zone "
                    "(e.g. UTC) first") from exc
            if parsed.dtype == object:
                raise MixedTimeZoneError(f"{name} mixes time zones; convert to one zone first")
    missing = parsed.isna()
    if missing.any():
        rows = list(np.flatnonzero(missing.to_numpy()))
        shown = [f"{r} ({_show(raw.iloc[r])})" for r in rows[:5]]
        raise InvalidTimestampError(
            f"{name} has {len(rows)} missing or unparseable value(s) at rows "
            f"{format_rows(shown + ['...'] * max(0, len(rows) - 5), 5)}; fix or remove them "
            "(ISO 8601 such as 2020-01-31 or 2020-01-31T15:30:00+00:00 always works; for other "
            "layouts parse the column yourself, e.g. read_csv(..., parse_dates=[col], dayfirst=True))"
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
        values = _numbers(frame[col]).to_numpy(dtype=float)
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
                f"{format_rows(rows)} (first {_show(values[bad][0])})"
                + ("; log returns need positive prices" if "price" in what else "")
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
        if len(found) > 1:
            # e.g. separate "date" and "time" (of day) columns: guessing one would silently
            # put every row on the wrong day
            raise DataError(
                f"several time columns {found}; pass time_column= to choose one (combine "
                "separate date and time-of-day columns into one first)"
            )
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
        index = parse_time_index(frame.index, name="time")
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

    A frame whose only price-like column is not a known bar field (e.g. ``SPY``, next to at
    most a ``volume``) is read as closing prices and renamed ``close``; several such columns
    are a panel of closes, one column per asset, and keep their (lower-cased) names. Numbers
    stored as text are converted; text that is not a number, dates and booleans are refused.

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
    if len(frame) == 0:
        raise DataError(f"{source}: no rows")
    frame = _with_time_index(frame, time_column)
    price_cols = [c for c in ("open", "high", "low", "close", "adj_close", "price") if c in frame]
    if not price_cols:
        # volume, size and side are never prices, whatever else is missing
        assets = [c for c in frame.columns if c not in ("volume", "size", "side")]
        if not assets:
            raise MissingColumnsError(
                f"{source}: no price column; expected 'close' (or open/high/low/adj_close, or a "
                f"single column of prices); columns are {list(frame.columns)}"
            )
        if len(assets) == 1:
            frame = frame.rename(columns={assets[0]: "close"})
            price_cols = ["close"]
        else:
            price_cols = assets
    elif "price" in price_cols and "close" not in price_cols:
        frame = frame.rename(columns={"price": "close"})
        price_cols = [("close" if c == "price" else c) for c in price_cols]
    frame = _order(frame, sort=sort, drop_duplicates=drop_duplicates, allow_equal=False)
    for col in frame.columns:
        # text columns (object, or pandas' str dtype) of numbers become numbers; text that is
        # not a number becomes NaN here and is named by check_positive_finite below
        if (col in price_cols or col == "volume") and not _is_real_dtype(frame[col].dtype):
            frame[col] = _numbers(frame[col])
    check_positive_finite(frame, price_cols, what=f"{source}: price")
    check_positive_finite(frame, ["volume"], what=f"{source}: volume", allow_zero=True)
    ordered = [c for c in BAR_COLUMNS if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def trade_spellings() -> dict[str, list[str]]:
    """The column names read as each field of a trades file, after lower-casing (spaces, ``-``,
    ``.`` and ``/`` read as ``_``).

    A trades file's ``volume`` (or ``vol``) is its trade size when it has no ``size`` column: the
    E-mini layout ``DateTime, Price, Volume`` is read as time, price and size.

    Examples
    --------
    >>> "volume" in trade_spellings()["size"]
    True
    """
    def aliases(field: str) -> list[str]:
        return sorted(k for k, v in _ALIASES.items() if v == field)

    return {"time": [*TIME_NAMES, *sorted(k for k, v in _ALIASES.items() if v in TIME_NAMES)],
            "price": ["price", *aliases("price")],
            "size": ["size", *aliases("size"), "volume", *aliases("volume")],
            "side": ["side", *aliases("side")]}


def spellings_text() -> str:
    """The accepted trades spellings as one line for error messages."""
    return "; ".join(f"{field}{' (optional)' if field == 'side' else ''}: {', '.join(names)}"
                     for field, names in trade_spellings().items())


def _trade_size(frame: pd.DataFrame) -> pd.DataFrame:
    """A trades frame whose size column is spelled ``volume`` (after normalisation), renamed ``size``.

    Trades have no bar volume, so a ``volume`` column next to a price is the size of each trade.
    """
    if "size" not in frame.columns and "volume" in frame.columns:
        frame = frame.rename(columns={"volume": "size"})
    return frame


def _parse_side(side: pd.Series, source: str) -> pd.Series:
    if _is_real_dtype(side.dtype):  # the common case, without a pass over strings
        values = side.to_numpy(dtype=float)
        if np.isin(values, (-1.0, 1.0)).all():
            return pd.Series(values.astype("int8"), index=side.index, name=side.name)
    if pd.api.types.is_bool_dtype(side.dtype):
        mapped = pd.Series(np.nan, index=side.index)  # is True a buy or "is buyer the maker"?
    else:
        words = side.astype(str).str.strip().str.lower().map(_SIDES)
        numbers = _numbers(side)  # also "1.0" from text
        mapped = words.where(words.notna(), numbers.where(numbers.isin((-1, 1))))
    bad = mapped.isna().to_numpy()
    if bad.any():
        rows = side.index[bad]
        raise DataError(
            f"{source}: side has {bad.sum()} value(s) that are not buy/sell (+1/-1, 'b'/'s', "
            f"'buy'/'sell') at {format_rows(rows)}, e.g. {_show(side[bad].iloc[0])}; drop the "
            "column to infer signs by the tick rule"
        )
    return mapped.astype("int8")


def clean_trades(frame: pd.DataFrame, *, time_column: str | None = None, sort: bool = False,
                 source: str = "trades") -> pd.DataFrame:
    """Normalise and validate trades: time, price, size and an optional side (+1 buy, -1 sell).

    Several trades may share a timestamp (one order sweeping several resting orders), so equal
    timestamps are kept; timestamps going back in time raise unless ``sort=True``. The size may be
    spelled as vendors do (``Volume``, ``Qty``, ``Quantity``, ``Amount``, ``Size``, any case; see
    :func:`trade_spellings`).

    Examples
    --------
    >>> raw = pd.DataFrame({"DateTime": ["2013-09-01 17:00:00.083", "2013-09-01 17:00:00.083"],
    ...                     "Price": [1640.25, 1640.25], "Volume": [8, 1]})
    >>> clean_trades(raw).columns.tolist()
    ['price', 'size']
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise DataError(f"{source}: no rows")
    frame = _trade_size(_with_time_index(frame, time_column))
    missing = [c for c in ("price", "size") if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{source}: trades need columns 'price' and 'size'; missing {missing}; columns are "
            f"{list(frame.columns)}; accepted spellings (any case): {spellings_text()}"
        )
    frame = _order(frame, sort=sort, drop_duplicates=False, allow_equal=True)
    check_positive_finite(frame, ["price"], what=f"{source}: price")
    check_positive_finite(frame, ["size"], what=f"{source}: size")
    frame["price"] = _numbers(frame["price"])
    frame["size"] = _numbers(frame["size"])
    if "side" in frame.columns:
        frame["side"] = _parse_side(frame["side"], source)
    ordered = [c for c in TRADE_COLUMNS if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]
