"""Property-based tests of the data layer: random, possibly malformed frames and files.

The property (API.md, "Data"): ``finar.load``, ``clean_bars`` and ``clean_trades`` either raise a
:class:`finar.FinarError` subclass or return every input row, unchanged and in order, on a
sorted ``DatetimeIndex`` named ``time`` with no NaN price; never another exception, a silent
NaN or a silently dropped row. Frames are generated together with the defects put into them, so
the tests also check that a clean frame is accepted and that a single defect gets its own error
class.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import finar
from finar.data.validate import clean_bars, clean_trades, normalize_columns
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    FinarError,
    InvalidTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    UnsortedIndexError,
)

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# one error class per defect; None where the "defect" is legal (trades share timestamps)
EXPECTED = {
    "unsorted": UnsortedIndexError,
    "duplicate": DuplicateTimestampError,
    "bad_time": InvalidTimestampError,
    "mixed_tz": MixedTimeZoneError,
    "missing_time": MissingColumnsError,
    "missing_price": MissingColumnsError,
    "non_positive": NonPositivePriceError,
    "non_finite": NonFiniteValueError,
    "bad_side": DataError,
    "negative_volume": NonPositivePriceError,
}

PRICE_NAMES = ("open", "high", "low", "close", "adj_close", "price")
SPELLINGS = {
    "open": ["open", "Open", "OPEN", "o"], "high": ["high", "High", "H"],
    "low": ["low", "Low", "LOW"], "close": ["close", "Close", "CLOSE", "Last"],
    "adj_close": ["Adj Close", "adj_close", "AdjClose", "Adjusted Close"],
    "volume": ["Volume", "volume", "Vol"], "price": ["Price", "price", "PX", "Trade Price"],
    "size": ["Size", "Qty", "quantity", "SIZE"], "side": ["Side", "side", "Aggressor"],
}
TIME_SPELLINGS = ["Date", "date", "time", "Time", "TIMESTAMP", "Datetime", "ts"]
TICKERS = ["SPY", "AAPL", "msft", "Brk.B", "sp500", "Value"]
SIDES = ["B", "S", "buy", "sell", "Buy", "SELL", 1, -1]
SIDE_VALUE = {"b": 1, "buy": 1, "1": 1, "s": -1, "sell": -1, "-1": -1}
BAD_TIMES = ["not a time", "2020-13-45", "yesterday", None, "", "12:00 noon"]
BAD_NUMBERS = [np.nan, np.inf, -np.inf, "n/a", "abc", None]


@dataclass
class Case:
    raw: pd.DataFrame
    kind: str  # "bars" or "trades"
    sink: str  # "direct", "csv", "csv.gz", "parquet"
    defects: set[str]
    expected: dict[str, list[float]]  # output column -> values
    times: list[pd.Timestamp]
    aware: bool
    load_kwargs: dict = field(default_factory=dict)


def _time_text(t: pd.Timestamp, offset: str | None) -> str:
    return t.isoformat() + (offset or "")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["ohlcv", "single", "panel", "trades"]))
    sink = draw(st.sampled_from(["direct", "csv", "csv.gz", "parquet"]))
    defect = st.sampled_from(sorted(EXPECTED))
    wanted = draw(st.just(set()) | st.sets(defect, min_size=1, max_size=1)
                  | st.sets(defect, min_size=2, max_size=2))
    defects: set[str] = set()

    # --- timestamps: strictly increasing, then perhaps spoiled
    steps = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))
    unit = draw(st.sampled_from(["s", "ms", "us"]))
    base = pd.Timestamp("1999-12-31")
    times = [base + pd.Timedelta(int(s), unit=unit) for s in itertools.accumulate(steps)]
    if "duplicate" in wanted and n >= 2:
        i = draw(st.integers(0, n - 2))
        times[i + 1] = times[i]
        defects.add("duplicate")
    if "unsorted" in wanted:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if times[i] != times[j]]
        if pairs:
            i, j = draw(st.sampled_from(pairs))
            times[i], times[j] = times[j], times[i]
            defects.add("unsorted")
    if kind == "trades":
        defects.discard("duplicate")  # several trades may share a timestamp

    text_only = {"bad_time", "mixed_tz"} & wanted
    form = draw(st.sampled_from(["text", "offset", "objects", "index", "aware_index"]
                                if not text_only else ["text", "offset"]))
    offset = draw(st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"])) if form == "offset" else None
    aware = form in ("offset", "aware_index")
    if form in ("text", "offset"):
        stamps: list[object] = [_time_text(t, offset) for t in times]
        expected_times = [pd.Timestamp(s) for s in stamps]
    elif form == "objects":
        stamps = list(times)
        expected_times = list(times)
    else:
        zone = "Asia/Tokyo" if form == "aware_index" else None
        expected_times = [t.tz_localize(zone) if zone else t for t in times]
        stamps = expected_times
    if "mixed_tz" in wanted and n >= 2:
        # one row naive among aware ones, or in another zone (no generated offset is +01:00)
        i = draw(st.integers(0, n - 1))
        stamps[i] = _time_text(times[i], draw(st.sampled_from([None, "+01:00"])) if offset
                               else "+01:00")
        defects.add("mixed_tz")
    if "bad_time" in wanted:
        stamps[draw(st.integers(0, n - 1))] = draw(st.sampled_from(BAD_TIMES))
        defects.add("bad_time")

    # --- values
    price = st.floats(1e-3, 1e6, allow_nan=False)
    expected: dict[str, list[float]] = {}
    columns: dict[str, list[object]] = {}
    if kind == "ohlcv":
        fields = draw(st.lists(st.sampled_from(["open", "high", "low", "close", "adj_close"]),
                               min_size=1, max_size=5, unique=True))
        for f in fields:
            columns[f] = draw(st.lists(price, min_size=n, max_size=n))
        if draw(st.booleans()):
            columns["volume"] = draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n))
        prices = fields
    elif kind == "single":
        name = draw(st.sampled_from([*TICKERS, "close", "price"]))
        columns[name] = draw(st.lists(price, min_size=n, max_size=n))
        prices = [name]
    elif kind == "panel":
        names = draw(st.lists(st.sampled_from(TICKERS), min_size=2, max_size=3, unique=True))
        for name in names:
            columns[name] = draw(st.lists(price, min_size=n, max_size=n))
        prices = names
    else:
        columns["price"] = draw(st.lists(price, min_size=n, max_size=n))
        columns["size"] = draw(st.lists(st.floats(1e-3, 1e9) | st.integers(1, 10**9),
                                        min_size=n, max_size=n))
        if draw(st.booleans()):
            columns["side"] = draw(st.lists(st.sampled_from(SIDES), min_size=n, max_size=n))
        prices = ["price", "size"]

    target = draw(st.sampled_from(prices))
    if "non_positive" in wanted:
        columns[target][draw(st.integers(0, n - 1))] = draw(st.sampled_from([0, 0.0, -1.5, -1e6]))
        defects.add("non_positive")
    if "non_finite" in wanted:
        columns[target][draw(st.integers(0, n - 1))] = draw(st.sampled_from(BAD_NUMBERS))
        defects.add("non_finite")
    if "negative_volume" in wanted and "volume" in columns:
        columns["volume"][draw(st.integers(0, n - 1))] = -draw(st.integers(1, 100))
        defects.add("negative_volume")
    if "bad_side" in wanted and "side" in columns:
        columns["side"][draw(st.integers(0, n - 1))] = draw(st.sampled_from(["X", 0, 2, "hold"]))
        defects.add("bad_side")
    if "missing_price" in wanted:
        drop = ["price", "size"][: draw(st.integers(1, 2))] if kind == "trades" else prices
        if kind == "trades" and draw(st.booleans()):
            drop = ["size"]
        for name in drop:
            columns.pop(name)
        defects.add("missing_price")
        defects -= {"non_positive", "non_finite"} if target in drop else set()

    # expected output: canonical names; a lone asset column is "close", trades keep "price"
    canonical = {name: normalize_columns(pd.DataFrame(columns=[name])).columns[0]
                 for name in columns}
    if kind == "single" and prices[0] in canonical:
        canonical[prices[0]] = "close"
    for name, values in columns.items():
        if name == "side":
            expected["side"] = [SIDE_VALUE.get(str(v).lower(), np.nan) for v in values]
        else:
            expected[canonical[name]] = list(pd.to_numeric(pd.Series(values, dtype=object),
                                                           errors="coerce").astype(float))

    # --- spelling of column names
    spelled = {name: draw(st.sampled_from(SPELLINGS.get(name, [name]))) for name in columns}
    raw = pd.DataFrame({spelled[k]: pd.Series(v, dtype=object) for k, v in columns.items()},
                       index=range(n))
    if "missing_time" in wanted:
        defects.add("missing_time")
    elif form in ("index", "aware_index"):
        raw.index = pd.DatetimeIndex(stamps, name=draw(st.sampled_from([None, "Date", "time"])))
    else:
        raw.insert(draw(st.integers(0, raw.shape[1])), draw(st.sampled_from(TIME_SPELLINGS)),
                   pd.Series(stamps, dtype=object))
    raw = raw.infer_objects()

    load_kwargs: dict = {}
    if kind == "trades" and "missing_price" in defects:
        load_kwargs["kind"] = "trades"  # else a file without size is read as bars (correctly)
    return Case(raw, "trades" if kind == "trades" else "bars", sink, defects, expected,
                expected_times, aware, load_kwargs)


def run(case: Case, directory: Path) -> pd.DataFrame:
    """Feed ``case.raw`` to finar the way the case says, as a user would."""
    if case.sink == "direct":
        clean = clean_trades if case.kind == "trades" else clean_bars
        return clean(case.raw.copy())
    path = directory / f"data.{case.sink}"
    with_index = isinstance(case.raw.index, pd.DatetimeIndex)
    if case.sink == "parquet":
        try:
            case.raw.to_parquet(path, index=with_index)
        except Exception:  # pyarrow refuses object columns mixing numbers and text
            case.raw.astype({c: str for c in case.raw.columns
                             if case.raw[c].dtype == object}).to_parquet(path, index=with_index)
    else:
        case.raw.to_csv(path, index=with_index)
    return finar.load(path, **case.load_kwargs)


def check_result(case: Case, out: pd.DataFrame) -> None:
    n = len(case.raw)
    assert len(out) == n, "rows were dropped or added"
    assert isinstance(out.index, pd.DatetimeIndex)
    assert out.index.name == "time"
    steps = np.diff(out.index.asi8)
    assert (steps > 0).all() if case.kind == "bars" else (steps >= 0).all()
    assert (out.index.tz is not None) == case.aware
    assert list(out.index) == case.times
    assert sorted(out.columns) == sorted(case.expected)
    for col, values in case.expected.items():
        got = out[col].to_numpy(dtype=float)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, values, rtol=1e-15, atol=0)
    if case.kind == "bars" and n >= 2:
        for col in out.columns:
            if col != "volume":
                r = finar.returns(out[col])
                assert len(r) == n - 1
                assert np.isfinite(r.to_numpy()).all()


@SETTINGS
@given(case=cases())
def test_clean_input_is_accepted_and_bad_input_names_its_problem(case):
    with TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("error")  # a pandas warning on user data is a bug too
        try:
            out = run(case, Path(tmp))
        except FinarError as err:
            assert case.defects, f"clean input refused: {type(err).__name__}: {err}"
            if len(case.defects) == 1:
                (defect,) = case.defects
                assert type(err) is EXPECTED[defect], f"{defect}: {type(err).__name__}: {err}"
            assert str(err)  # a message, not an empty error
            return
    assert not case.defects, f"defects {case.defects} were accepted"
    check_result(case, out)


# --- free-form fuzzing: anything at all in the cells ----------------------------------------------

ANY_CELL = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["2020-01-01", "2020-01-02T10:00:00+01:00", "2020-01-03Z", "1/2/2020",
                     "20200104", "1e5", "inf", "-0", "nan", "NaT", "B", "sell"]),
    st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2100-01-01").to_pydatetime()),
)
ANY_NAME = st.one_of(
    st.sampled_from(["Close", "Adj Close", "open", "high", "SPY", "AAPL", "volume", "c", "Price",
                     "Qty", "Side", "size", "px", "Trade Price", "timestamp"]),
    st.text(min_size=1, max_size=6),
)


@st.composite
def any_frames(draw: st.DrawFn) -> pd.DataFrame:
    # mostly plausible cells, so that many frames pass and the result checks get exercised
    n = draw(st.integers(1, 5))
    steps = draw(st.lists(st.integers(1, 10**12), min_size=n, max_size=n))
    times = [pd.Timestamp("1990-01-01") + pd.Timedelta(int(s), unit="ms")
             for s in itertools.accumulate(steps)]
    stamps = [times[i].isoformat() if draw(st.integers(0, 7))
              else draw(st.one_of(st.just(times[i]), ANY_CELL)) for i in range(n)]
    names = draw(st.sampled_from([[], ["Price", "Qty"]]))
    names += draw(st.lists(ANY_NAME.filter(lambda x: x not in names), min_size=0 if names else 1,
                           max_size=2, unique=True))
    data = {name: pd.Series([draw(st.floats(1e-6, 1e9)) if draw(st.integers(0, 9)) else
                             draw(ANY_CELL) for _ in range(n)], dtype=object)
            for name in names}
    frame = pd.DataFrame(data, index=range(n))
    where = draw(st.sampled_from(["column"] * 7 + ["index"] * 2 + ["none"]))
    if where == "column":
        name = draw(st.sampled_from(TIME_SPELLINGS) if draw(st.integers(0, 9)) else ANY_NAME)
        if name not in frame.columns:
            frame.insert(draw(st.integers(0, frame.shape[1])), name, pd.Series(stamps, dtype=object))
    elif where == "index":
        frame.index = pd.DatetimeIndex(times, name=draw(st.sampled_from([None, "Date", "x"])))
    return frame.infer_objects()


def _price_columns(out: pd.DataFrame) -> list[str]:
    known = [c for c in out.columns if c in PRICE_NAMES]
    return known or [c for c in out.columns if c not in ("volume", "size", "side")]


def check_any(raw: pd.DataFrame, out: pd.DataFrame, kind: str) -> None:
    assert len(out) == len(raw)
    assert isinstance(out.index, pd.DatetimeIndex) and out.index.name == "time"
    steps = np.diff(out.index.asi8)
    assert (steps > 0).all() if kind == "bars" else (steps >= 0).all()
    prices = ["price", "size"] if kind == "trades" else _price_columns(out)
    for col in prices:
        assert np.isfinite(out[col].to_numpy(dtype=float)).all()
        assert (out[col].to_numpy(dtype=float) > 0).all()
    if kind == "bars" and len(out) >= 2:
        r = finar.returns(out[prices[0]], scale=1)
        assert len(r) == len(out) - 1 and np.isfinite(r.to_numpy()).all()


@SETTINGS
@given(raw=any_frames(), kind=st.sampled_from(["bars", "trades"]))
def test_any_frame_gives_a_finar_error_or_a_valid_result(raw, kind):
    clean = clean_trades if kind == "trades" else clean_bars
    try:
        out = clean(raw.copy())
    except FinarError:
        return
    check_any(raw, out, kind)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw=any_frames(), sink=st.sampled_from(["csv", "parquet"]))
def test_any_file_gives_a_finar_error_or_a_valid_result(raw, sink):
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{sink}"
        with_index = isinstance(raw.index, pd.DatetimeIndex)
        if sink == "csv":
            raw.to_csv(path, index=with_index)
        else:
            try:
                raw.to_parquet(path, index=with_index)
            except Exception:  # pyarrow cannot store every mix of Python objects
                assume(False)
        try:
            out = finar.load(path)
        except FinarError:
            return
    kind = "trades" if {"price", "size"} <= set(out.columns) else "bars"
    assert len(out) == len(raw)
    check_any(raw, out, kind)


# --- returns and windows of valid prices -------------------------------------------------------


@SETTINGS
@given(values=st.lists(st.floats(min_value=5e-324, max_value=1.7e308), min_size=1, max_size=30),
       kind=st.sampled_from(["log", "simple"]), scale=st.sampled_from([1.0, 100.0]),
       periods=st.integers(1, 3))
def test_returns_are_finite_or_refused(values, kind, scale, periods):
    prices = pd.Series(values, index=pd.date_range("2020-01-01", periods=len(values)))
    x = np.asarray(values)
    with np.errstate(over="ignore"):
        overflows = kind == "simple" and not np.isfinite(scale * (x[periods:] / x[:-periods] - 1)).all()
    try:
        r = finar.returns(prices, kind, scale, periods=periods)
    except FinarError as err:
        # refused only for a reason: too few prices, or a simple return beyond float64; a log
        # return of positive finite prices always exists, so a returns() refusing everything fails
        if len(values) <= periods:
            assert isinstance(err, finar.errors.SeriesTooShortError)
        else:
            assert isinstance(err, NonFiniteValueError) and overflows, f"valid prices refused: {err}"
        return
    assert len(values) > periods and not overflows
    assert len(r) == len(values) - periods
    assert np.isfinite(r.to_numpy()).all()
    assert r.index.equals(prices.index[periods:])


@SETTINGS
@given(n=st.integers(1, 40), k=st.integers(1, 3), length=st.integers(1, 12),
       stride=st.integers(1, 5))
def test_windows_cover_the_series_in_order(n, k, length, stride):
    x = np.arange(n * k, dtype=float).reshape(n, k)
    if n < length:
        with pytest.raises(finar.errors.SeriesTooShortError):
            finar.windows(x, length, stride=stride)
        return
    w = finar.windows(x, length, stride=stride)
    assert w.shape == ((n - length) // stride + 1, length, k)
    for i in range(w.shape[0]):
        np.testing.assert_array_equal(w[i], x[i * stride: i * stride + length])


# --- sort=True and drop_duplicates: reordering and dropping only when asked ------------------------


@SETTINGS
@given(days=st.lists(st.integers(0, 8), min_size=1, max_size=12),
       keep=st.sampled_from([False, "first", "last"]), sink=st.sampled_from(["direct", "csv"]))
def test_sort_and_drop_duplicates_do_what_they_say(days, keep, sink):
    stamps = [pd.Timestamp("2020-01-01") + pd.Timedelta(days=d) for d in days]
    prices = [float(i + 1) for i in range(len(days))]  # row number + 1: tells rows apart
    raw = pd.DataFrame({"Date": [s.isoformat() for s in stamps], "Close": prices})
    try:
        if sink == "direct":
            out = clean_bars(raw, sort=True, drop_duplicates=keep)
        else:
            with TemporaryDirectory() as tmp:
                raw.to_csv(Path(tmp) / "p.csv", index=False)
                out = finar.load(Path(tmp) / "p.csv", sort=True, drop_duplicates=keep)
    except DuplicateTimestampError:
        assert not keep and len(set(days)) < len(days)
        return
    # expected: a stable sort by time, then the first or last row of each timestamp
    order = sorted(range(len(days)), key=lambda i: days[i])
    chosen: dict[int, int] = {}
    for i in order:
        if keep == "last" or days[i] not in chosen:
            chosen[days[i]] = i
    assert list(out.index) == [stamps[chosen[d]] for d in sorted(chosen)]
    assert out["close"].tolist() == [prices[chosen[d]] for d in sorted(chosen)]
    assert out.index.is_unique and out.index.is_monotonic_increasing
