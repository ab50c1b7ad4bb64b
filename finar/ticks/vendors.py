"""Trades files as vendors write them: reading a file as it comes, and the layouts finar knows.

:func:`read_table` reads a CSV or Parquet file by its content, not only its name: Parquet by its
magic bytes, gzip / zip / bz2 / xz compression likewise, the delimiter (``,`` ``;`` tab ``|``) and
a decimal comma from the first lines, a header when no field of the first line is a number.
Binary junk and corrupt Parquet are refused with a :class:`finar.errors.DataError` naming the
problem.

:func:`to_trades_frame` then recognises the layout and turns it into columns ``time``, ``price``,
``size`` and ``side`` (+1 buyer-initiated, -1 seller-initiated, 0 unknown: signed later by the tick
rule in :func:`finar.ticks.clean`):

============  ===================================================================================
layout        what it reads
============  ===================================================================================
columns       any header naming a time, a price and a size column in a vendor spelling, e.g. the
              E-mini file ``DateTime, Price, Volume`` (:func:`finar.data.validate.trade_spellings`)
databento     Databento CSV/Parquet of the trades (or TBBO, MBP) schema: ``ts_event`` (ns since
              1970 or ISO 8601, UTC), ``price`` (display price, or integer units of 1e-9),
              ``size``, ``side`` ``A``/``B``/``N``; rows whose ``action`` is not ``T`` are skipped
binance       Binance aggTrades or trades files, with or without a header: quantity, a millisecond
              (microsecond for spot data from 2025) timestamp, the buyer-is-maker flag
lobster       LOBSTER message files (no header): seconds after midnight, event type, order id,
              size, price x 10,000, direction; executions (types 4, 5) are the trades
============  ===================================================================================

Sides, from each vendor's documentation:

- Databento: ``side`` is the aggressor: ``A`` (ask) a sell aggressor -> -1, ``B`` (bid) a buy
  aggressor -> +1, ``N`` none specified -> tick rule.
- Binance: the buyer is the maker, so the seller took liquidity -> -1; otherwise +1.
- LOBSTER: ``direction`` is the side of the resting limit order that was executed, so the
  aggressor is its opposite (a sell limit order executed is a buyer-initiated trade). For hidden
  executions (type 5) NASDAQ TotalView masks the direction (LOBSTER writes 1 for all), so their
  side is unknown -> tick rule.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from finar.data.validate import TIME_NAMES, _canonical, spellings_text
from finar.errors import DataError, format_rows

__all__ = ["LAYOUTS", "Parsed", "read_table", "to_trades_frame"]

LAYOUTS = ("columns", "databento", "binance", "lobster")
_MAGIC = ((b"PAR1", "parquet"), (b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"BZh", "bz2"),
          (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_HEAD_BYTES = 1 << 16
_DELIMITERS = ("\t", ";", ",", "|")  # on a tie the first wins: ';' files often hold decimal commas
_UNDEF_PRICE = np.iinfo(np.int64).max  # Databento's null price
_BOOL = ("true", "false")
_SAMPLE = 1000  # rows a layout is recognised by; conversions then name or count any bad row


@dataclass(frozen=True)
class Parsed:
    """A vendor file turned into trade columns, with what the report says about it.

    ``frame`` has ``time``, ``price``, ``size`` and maybe ``side`` (``columns`` layout: the
    frame as given, normalised later by :func:`finar.ticks.clean`); ``n_rows`` rows were read,
    ``skipped`` of them are not trades (order-book messages) as ``skipped_action`` says, and
    ``side_note`` says why sides are unknown where they are.
    """

    layout: str
    description: str
    frame: pd.DataFrame
    n_rows: int
    skipped: int = 0
    skipped_action: str = "none: every row is a trade"
    side_note: str = ""


# --- reading a file as it comes -------------------------------------------------------------------


def _compression(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise DataError(f"{str(path)!r} is empty")
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def _head_bytes(path: Path, kind: str | None) -> bytes:
    source = repr(str(path))
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise DataError(f"{source} is a zip archive of {len(names)} files {names[:5]}; "
                                    "pandas reads one: extract the trades file first")
                with z.open(names[0]) as f:
                    return f.read(_HEAD_BYTES)
        opener = {None: open, "gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind]
        with opener(path, "rb") as f:
            return f.read(_HEAD_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataError(f"{source} looks {kind}-compressed but cannot be decompressed ({exc}); "
                        "the file is truncated or corrupt: download or export it again") from exc


def _decode(data: bytes, source: str) -> tuple[str, str]:
    """The text of a file's first bytes and its encoding; binary content is refused."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{source} is not a text (CSV) file: it holds binary data (a NUL byte at byte "
                        f"{nul}); finar reads CSV text, optionally gzip/zip/bz2/xz-compressed, or Parquet")
    try:
        return data.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[:exc.start].decode("utf-8-sig"), "utf-8-sig"  # a character cut at the end
        text = data.decode("latin-1")
    control = sum(ch < " " and ch not in "\t\r\n" for ch in text)
    if control > 0.01 * max(len(text), 1):
        raise DataError(f"{source} is not a text (CSV) file: {control} of its first {len(text)} bytes are "
                        "control characters (binary data); finar reads CSV text or Parquet")
    return text, "latin-1"


def _is_number(field: str, decimal: str) -> bool:
    text = field.strip().replace(decimal, ".") if decimal != "." else field.strip()
    if not text or text.lower() in ("nan", "inf", "-inf", "infinity"):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sniff(text: str, truncated: bool, source: str) -> tuple[str, str, bool]:
    """Delimiter, decimal mark and whether the first line is a header."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line of the head may be cut
    lines = lines[:50]
    if not lines:
        raise DataError(f"{source} has no lines of text")
    best: tuple[int, str] | None = None
    for sep in _DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=sep)]
        width = max(set(widths), key=widths.count)
        if width > 1 and widths.count(width) >= 0.8 * len(widths) and (best is None or width > best[0]):
            best = (width, sep)
    if best is None:
        raise DataError(f"{source}: cannot tell the delimiter: none of ',', ';', tab, '|' splits its first "
                        f"lines into the same number of fields (first line {lines[0][:100]!r})")
    sep = best[1]
    rows = list(csv.reader(lines, delimiter=sep))
    fields = [f.strip() for row in rows[1:] for f in row]
    comma = sep != "," and any(re.fullmatch(r"[+-]?\d+,\d+", f) for f in fields) and not any(
        re.fullmatch(r"[+-]?\d+\.\d+", f) for f in fields)
    decimal = "," if comma else "."
    header = not any(_is_number(f, decimal) for f in rows[0])
    return sep, decimal, header


def _check_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    if not isinstance(raw.index, pd.RangeIndex):
        # pandas moves the first field(s) into the index when rows have more fields than the header
        raise DataError(f"{source}: rows have more fields than the header ({raw.shape[1]} names: "
                        f"{list(raw.columns)}); fix the header line")
    names = [str(c) for c in raw.columns]
    mangled = [c for c in names if re.fullmatch(r".+\.\d+", c) and c.rsplit(".", 1)[0] in names]
    if mangled:  # pandas renames a repeated header "price" to "price.1"
        raise DataError(f"{source}: the header repeats column names (read as {mangled}); rename or drop "
                        "the repeated columns")
    if names and names[0] == "Unnamed: 0" and not {_canonical(c) for c in names} & set(TIME_NAMES):
        raw = raw.rename(columns={raw.columns[0]: "time"})  # DataFrame.to_csv's unnamed time index
    return raw


def read_table(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, bool]:
    """Read a trades file as it comes: ``(raw frame, has_header)``.

    The first field of a headerless file is read as text, so that no digit of a LOBSTER time
    (seconds after midnight, to the nanosecond) is lost to floating point.

    Raises
    ------
    DataError
        A missing or empty file, binary junk, a corrupt archive or Parquet file, or text whose
        delimiter cannot be told.
    """
    p = Path(path)
    source = repr(str(p))
    if not p.is_file():
        raise DataError(f"file not found: {source}")
    kind = _compression(p)
    if p.suffix.lower() in (".parquet", ".pq") and kind != "parquet":
        raise DataError(f"{source} is named Parquet but does not start with Parquet's magic bytes 'PAR1': "
                        "the file is corrupt or not Parquet")
    if kind == "parquet":
        try:
            raw = pd.read_parquet(p)
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"{source} is not a readable Parquet file ({exc}); it is truncated or corrupt: "
                            "download or export it again") from exc
        if isinstance(raw.index, pd.DatetimeIndex):
            raw = raw.reset_index(names=raw.index.name or "time")
        return raw.reset_index(drop=True), True
    if kind == "zstd":
        raise DataError(f"{source} is zstd-compressed; decompress it first (zstd -d)")
    data = _head_bytes(p, kind)
    text, encoding = _decode(data, source)
    sep, decimal, header = _sniff(text, len(data) == _HEAD_BYTES, source)
    try:
        raw = pd.read_csv(p, sep=sep, decimal=decimal, header=0 if header else None,
                          dtype=None if header else {0: str}, compression=kind, encoding=encoding,
                          skipinitialspace=True, low_memory=False)
    except (ValueError, OSError, EOFError, pd.errors.ParserError, zipfile.BadZipFile) as exc:
        raise DataError(f"could not read {source} as {sep!r}-delimited text: {exc}") from exc
    if len(raw) == 0:
        raise DataError(f"{source} has a header but no rows")
    return _check_columns(raw, source), header


# --- layouts --------------------------------------------------------------------------------------


def _key(name: object) -> str:
    return re.sub(r"[\s\-./]+", "_", str(name).strip().lower()).strip("_")


def _keys(raw: pd.DataFrame) -> dict[str, object]:
    return {_key(c): c for c in raw.columns}


def _text(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def _all(values: pd.Series, pattern: str) -> bool:
    """Whether (nearly) every value matches: a few garbled rows must not hide the layout, whose
    conversion then names or counts them."""
    return bool(len(values)) and float(_text(values).str.fullmatch(pattern).mean()) >= 0.9


def _binance_kind(raw: pd.DataFrame, header: bool) -> str | None:
    """'agg' or 'trades' for a Binance file, else None."""
    if header:
        keys = _keys(raw)
        if "is_buyer_maker" not in keys and "isbuyermaker" not in keys:
            return None
        return "agg" if "agg_trade_id" in keys or "transact_time" in keys else "trades"
    n, cols = raw.shape[1], list(raw.columns)

    def flag(i: int) -> bool:
        return float(_text(raw[cols[i]]).str.lower().isin(_BOOL).mean()) >= 0.9

    if n in (7, 8) and flag(6) and all(_all(raw[cols[i]], r"\d+") for i in (0, 3, 4, 5)):
        return "agg"
    if n in (6, 7) and flag(5) and _all(raw[cols[0]], r"\d+") and _all(raw[cols[4]], r"\d+"):
        return "trades"
    return None


def _is_lobster(raw: pd.DataFrame) -> bool:
    if raw.shape[1] != 6:
        return False
    c = list(raw.columns)
    return (_all(raw[c[0]], r"\d+(\.\d+)?") and _all(raw[c[1]], r"[1-7]") and _all(raw[c[3]], r"\d+")
            and _all(raw[c[4]], r"-?\d+") and _all(raw[c[5]], r"-?1"))


def detect(raw: pd.DataFrame, header: bool) -> str | None:
    """The layout of a raw frame (recognised by its first rows), or None when finar does not know it."""
    keys, sample = _keys(raw), raw.head(_SAMPLE)
    if header and ("ts_event" in keys or {"ts_recv", "rtype"} <= keys.keys()):
        return "databento"
    if _binance_kind(sample, header):
        return "binance"
    if header:
        return "columns"
    return "lobster" if _is_lobster(sample) else None


def _one_instrument(raw: pd.DataFrame, keys: dict[str, object], names: tuple[str, ...],
                    symbol: str | None, source: str) -> pd.DataFrame:
    """The rows of one instrument: ``symbol`` when given, refusing a file of several without it."""
    col = next((keys[k] for k in names if k in keys), None)
    if col is None:
        if symbol is not None:
            raise DataError(f"{source}: symbol={symbol!r} given but the file has no instrument column "
                            f"({', '.join(names)})")
        return raw
    values = _text(raw[col])
    if symbol is not None:
        keep = (values == str(symbol)).to_numpy()
        if not keep.any():
            raise DataError(f"{source}: no rows of symbol={symbol!r}; the {col!r} column holds "
                            f"{format_rows(values.unique().tolist(), 10)}")
        return raw[keep]
    counts = values.value_counts()
    if len(counts) > 1:
        shown = [f"{k} ({v} rows)" for k, v in counts.items()]
        raise DataError(f"{source}: the file holds trades of {len(counts)} instruments in column {col!r}: "
                        f"{format_rows(shown, 8)}; pass symbol= to read one of them")
    return raw


def _epoch(values: pd.Series, unit: str) -> pd.Series:
    """Integers since 1970 as UTC times, in ``unit`` ``'ns'``, or ``'ms|us'`` told apart row by row.

    Binance spot files switched from milliseconds to microseconds on 2025-01-01; a millisecond
    stamp of any date before the year 5000 is below 1e14, a microsecond one after 1973 above it.
    Integers stay integers: a float holds a nanosecond stamp only to the nearest 256 ns.
    """
    v = pd.to_numeric(values, errors="coerce")
    if unit == "ms|us":
        v = v.where(v >= 1e14, v * 1_000) * 1_000  # milliseconds -> microseconds -> nanoseconds
    return pd.Series(pd.to_datetime(v, unit="ns", utc=True), index=values.index)


def _sides(words: pd.Series, mapping: dict[str, int], original: pd.Series) -> np.ndarray | pd.Series:
    """Vendor side codes as +1 / -1 / 0 (unknown); a code not in ``mapping`` stays as written, and
    :func:`finar.ticks.clean` counts it as ``bad_side``."""
    codes = words.map(mapping)
    if codes.notna().all():
        return codes.to_numpy(np.int8)
    return codes.astype(object).where(codes.notna(), original)


def _databento(raw: pd.DataFrame, source: str, symbol: str | None) -> Parsed:
    n_rows, keys = len(raw), _keys(raw)
    raw = _one_instrument(raw, keys, ("symbol", "instrument_id"), symbol, source)
    skipped = 0
    if "action" in keys:
        trade = (_text(raw[keys["action"]]).str.upper() == "T").to_numpy()
        skipped = n_rows - int(trade.sum())
        raw = raw[trade]
    missing = [k for k in ("price", "size") if k not in keys]
    if missing:
        raise DataError(f"{source}: a Databento file needs columns 'price' and 'size'; missing {missing}")
    tcol = keys.get("ts_event", keys.get("ts_recv"))
    time = raw[tcol]
    stamps = "ISO 8601"
    if pd.api.types.is_integer_dtype(time.dtype):
        time, stamps = _epoch(time, "ns"), "ns since 1970"
    price = raw[keys["price"]]
    units = "display prices"
    if pd.api.types.is_integer_dtype(price.dtype):  # fixed point: 1 unit = 1e-9
        price, units = price.where(price != _UNDEF_PRICE).astype(float) / 1e9, "integer units of 1e-9"
    frame = pd.DataFrame({"time": time, "price": price, "size": raw[keys["size"]]})
    if "side" in keys:
        side = raw[keys["side"]]
        frame["side"] = _sides(_text(side).str.upper(), {"A": -1, "B": 1, "N": 0}, side)
    desc = (f"Databento CSV: {tcol} ({stamps}, UTC) -> time, price ({units}) -> price, size -> size, "
            "side A (sell aggressor) -> -1, B (buy aggressor) -> +1, N -> tick rule")
    return Parsed("databento", desc, frame.reset_index(drop=True), n_rows, skipped,
                  "skipped: records whose action is not T (trade)" if skipped else Parsed.skipped_action,
                  "side N (none specified by the venue)")


def _binance(raw: pd.DataFrame, header: bool) -> Parsed:
    kind = _binance_kind(raw.head(_SAMPLE), header)
    if header:
        keys = _keys(raw)
        pick = {f: keys[next(k for k in names if k in keys)] for f, names in (
            ("price", ("price",)), ("size", ("quantity", "qty")), ("time", ("transact_time", "time")),
            ("maker", ("is_buyer_maker", "isbuyermaker")))}
    else:
        c = list(raw.columns)
        pick = dict(zip(("price", "size", "time", "maker"),
                        (c[1], c[2], c[5], c[6]) if kind == "agg" else (c[1], c[2], c[4], c[5]), strict=True))
    maker = raw[pick["maker"]]
    if pd.api.types.is_bool_dtype(maker.dtype):
        side = np.where(maker.to_numpy(), -1, 1).astype(np.int8)
    else:
        side = _sides(_text(maker).str.lower(), {"true": -1, "false": 1}, maker)
    frame = pd.DataFrame({"time": _epoch(raw[pick["time"]], "ms|us"), "price": raw[pick["price"]],
                          "size": raw[pick["size"]], "side": side})
    what = "aggTrades" if kind == "agg" else "trades"
    desc = (f"Binance {what} CSV: timestamp (ms, or us from 2025, UTC) -> time, price, quantity -> size, "
            "buyer is maker -> side -1 (seller-initiated), else +1")
    return Parsed("binance", desc, frame.reset_index(drop=True), len(raw))


def _lobster_day(date: object, file_name: str | None, source: str) -> pd.Timestamp:
    named = None
    if file_name:
        m = re.match(r"[^_]+_(\d{4}-\d{2}-\d{2})_", Path(file_name).name)
        named = pd.Timestamp(m.group(1)) if m else None
    if date is None:
        if named is None:
            raise DataError(f"{source}: a LOBSTER message file holds seconds after midnight but not the "
                            "date; pass date='YYYY-MM-DD', or keep LOBSTER's file name "
                            "TICKER_YYYY-MM-DD_..._message_N.csv")
        return named
    try:
        day = pd.Timestamp(date)
    except (ValueError, TypeError) as exc:
        raise DataError(f"date must be a calendar day such as '2012-06-21', got {date!r}") from exc
    if day != day.normalize() or day.tz is not None:
        raise DataError(f"date must be a calendar day such as '2012-06-21' (no time, no zone), got {date!r}")
    if named is not None and named != day:
        raise DataError(f"{source}: date={date!r} but the file name says {named.date()}; pass the file's "
                        "own date or rename the file")
    return day


def _lobster(raw: pd.DataFrame, source: str, date: object, file_name: str | None) -> Parsed:
    day = _lobster_day(date, file_name, source)
    c = list(raw.columns)
    event = pd.to_numeric(raw[c[1]], errors="coerce").to_numpy()
    unknown = ~np.isin(event, (1, 2, 3, 4, 5, 6, 7))
    if unknown.any():
        rows = np.flatnonzero(unknown)
        example = str(raw[c[1]].iloc[rows[0]])
        raise DataError(f"{source}: LOBSTER event types are 1 to 7; {rows.size} row(s) have others, at rows "
                        f"{format_rows(rows.tolist())} (counting from 0), e.g. {example!r}")
    keep = np.isin(event, (4, 5))
    n = {k: int((event == k).sum()) for k in (1, 2, 3, 6, 7)}
    skipped_action = (f"skipped: order-book messages ({n[1]} submissions, {n[2]} cancellations, {n[3]} "
                      f"deletions), {n[6]} cross trades (type 6), {n[7]} trading-halt messages (type 7)")
    rows = raw[keep]
    # seconds as text, whole and fraction apart: no nanosecond is lost (below 2**53 ns a float is exact)
    seconds = _text(rows[c[0]]).str.partition(".")
    frac = seconds[2].str.ljust(9, "0").str[:9].where(seconds[2].str.fullmatch(r"\d*"))
    ns = (pd.to_numeric(seconds[0], errors="coerce").to_numpy(float) * 1e9
          + pd.to_numeric(frac.replace("", "0"), errors="coerce").to_numpy(float))
    direction = pd.to_numeric(rows[c[5]], errors="coerce").to_numpy()
    bad = ~np.isin(direction, (-1, 1))
    if bad.any():
        at = rows.index[bad]
        raise DataError(f"{source}: a LOBSTER direction is -1 (sell limit order) or 1 (buy); {bad.sum()} "
                        f"execution(s) have others, at rows {format_rows(at.tolist())} (counting from 0), "
                        f"e.g. {str(rows[c[5]].iloc[np.flatnonzero(bad)[0]])!r}")
    # the aggressor is the resting order's opposite; hidden executions (type 5) have their
    # direction masked: 0, signed by the tick rule in clean()
    aggressor = np.where(event[keep] == 5, 0, -direction).astype(np.int8)
    frame = pd.DataFrame({"time": day + pd.to_timedelta(ns, unit="ns"),
                          "price": pd.to_numeric(rows[c[4]], errors="coerce").to_numpy() / 10_000,
                          "size": rows[c[3]].to_numpy(), "side": aggressor})
    desc = (f"LOBSTER message file of {day.date()}: seconds after midnight (exchange time) -> time, "
            "executions (types 4 visible, 5 hidden) -> trades, price / 10,000, size, "
            "side = -direction (the resting order's opposite)")
    return Parsed("lobster", desc, frame, len(raw), int((~keep).sum()), skipped_action,
                  "hidden executions (type 5; LOBSTER's direction is masked)")


def _columns(raw: pd.DataFrame, symbol: str | None, source: str) -> Parsed:
    keys = {_canonical(c): c for c in raw.columns}
    raw = _one_instrument(raw, {_key(c): c for c in raw.columns}, ("symbol", "ticker", "instrument"),
                          symbol, source)
    fields = {"price": "price", "size": "size", "side": "side"}
    if "size" not in keys and "volume" in keys:
        fields["volume"] = "size"
    mapped = [f"{keys[k]} -> time" for k in keys if k in TIME_NAMES]
    mapped += [f"{keys[k]} -> {f}" for k, f in fields.items() if k in keys]
    desc = "columns: " + ", ".join(str(m) for m in mapped) if mapped else "columns"
    if "side" not in keys:
        desc += "; no side column (signed by the tick rule)"
    return Parsed("columns", desc, raw, len(raw))


def to_trades_frame(raw: pd.DataFrame, *, header: bool = True, layout: str = "auto", source: str = "trades",
                    date: object = None, symbol: str | None = None, file_name: str | None = None) -> Parsed:
    """Recognise a raw frame's vendor layout and turn it into trade columns.

    Parameters
    ----------
    raw : DataFrame
        As :func:`read_table` returns it (or a user's frame, then ``header=True``).
    header : bool
        Whether the file had a header line.
    layout : {'auto', 'columns', 'databento', 'binance', 'lobster'}
        ``auto`` recognises it; any other value is checked against what the file looks like.
    date : date-like, optional
        The trading day of a LOBSTER message file (else read from its file name).
    symbol : str, optional
        The instrument to keep from a file of several (a ``symbol``/``instrument_id`` column).
    file_name : str, optional
        The file's name, for the LOBSTER date.

    Raises
    ------
    DataError
        An unknown layout (naming what was found and what finar reads), a layout other than the
        one asked for, or ``date=`` for a file that is not LOBSTER.
    """
    if layout != "auto" and layout not in LAYOUTS:
        raise DataError(f"layout must be 'auto' or one of {list(LAYOUTS)}, got {layout!r}")
    found = detect(raw, header)
    if found is None:
        first = [str(v) for v in raw.iloc[0].tolist()]
        raise DataError(
            f"{source}: no header line, and not a headerless layout finar knows (Binance aggTrades: 7-8 "
            "fields ending in a True/False buyer-is-maker flag; Binance trades: 6-7 fields; LOBSTER "
            "message file: 6 fields: seconds after midnight, event type 1-7, order id, size, price x 10000, "
            f"direction -1/1); its {raw.shape[1]} fields start {first}. Add a header line naming the "
            f"columns; accepted spellings (any case): {spellings_text()}")
    if layout not in ("auto", found):
        raise DataError(f"{source}: layout={layout!r} asked for, but the file looks like {found!r} "
                        f"(columns {[str(c) for c in raw.columns][:12]})")
    if date is not None and found != "lobster":
        raise DataError(f"{source}: date= applies to LOBSTER message files only; this file is {found!r} and "
                        "carries its own dates")
    if found == "databento":
        return _databento(raw, source, symbol)
    if symbol is not None and found in ("binance", "lobster"):
        raise DataError(f"{source}: symbol= does not apply: a {found} file holds one instrument")
    if found == "binance":
        return _binance(raw, header)
    if found == "lobster":
        return _lobster(raw, source, date, file_name)
    return _columns(raw, symbol, source)
