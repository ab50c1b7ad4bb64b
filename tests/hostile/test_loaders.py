"""Loaders on hostile input: ``finar.load`` (names, CSV, Parquet), ``finar.returns`` and
``finar.ticks.read_trades``; and properties that demand valid input loads and round-trips, so a
loader that refused everything would fail them."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import finar
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    InvalidTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    SeriesTooShortError,
    UnknownDatasetError,
    UnsortedIndexError,
)
from tests.hostile.conftest import raises_exactly

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _csv(tmp_path: Path, text: str, name: str = "px.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "time,close\n2020-01-01,10\n2020-01-02,11\n2020-01-03,12.5\n"


# ---- finar.load: names and files ------------------------------------------------------------------------
def test_an_unknown_dataset_lists_the_known_ones():
    with raises_exactly(UnknownDatasetError, "sp500"):
        finar.load("sp501")


def test_a_bundled_dataset_takes_no_options():
    with raises_exactly(DataError, "takes no options"):
        finar.load("sp500", sep=";")


def test_a_missing_file(tmp_path):
    with raises_exactly(DataError, "file not found"):
        finar.load(tmp_path / "none.csv")


def test_an_unknown_file_type(tmp_path):
    with raises_exactly(DataError, "unknown file type"):
        finar.load(_csv(tmp_path, GOOD, "px.xlsx"))


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "could not read"),
    ("time,close\n", "no rows|empty|at least"),
])
def test_an_empty_csv(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        finar.load(_csv(tmp_path, text))
    assert isinstance(info.value, finar.FinarError)


CSV_DEFECTS = [
    ("no time column", "date_of_day,close\nx,1\ny,2\n", MissingColumnsError, "no time column"),
    ("no column but time", "time\n2020-01-01\n2020-01-02\n", MissingColumnsError, "price|column"),
    ("unsorted", "time,close\n2020-01-02,1\n2020-01-01,2\n", UnsortedIndexError, "2020-01-01"),
    ("repeated day", "time,close\n2020-01-01,1\n2020-01-01,2\n", DuplicateTimestampError, "2020-01-01"),
    ("bad date", "time,close\n2020-01-01,1\nnot a date,2\n", InvalidTimestampError, "not a date"),
    ("negative price", "time,close\n2020-01-01,1\n2020-01-02,-2\n", NonPositivePriceError, "close"),
    ("zero price", "time,close\n2020-01-01,0\n2020-01-02,2\n", NonPositivePriceError, "close"),
    ("missing price", "time,close\n2020-01-01,1\n2020-01-02,\n", NonFiniteValueError, "2020-01-02"),
    ("text price", "time,close\n2020-01-01,1\n2020-01-02,abc\n", NonFiniteValueError, "non-numeric"),
    ("mixed zones", "time,close\n2020-01-01T10:00+01:00,1\n2020-01-02T10:00,2\n", MixedTimeZoneError,
     "mixes time zones"),
    ("repeated header", "time,close,close\n2020-01-01,1,2\n2020-01-02,2,3\n", DataError, "repeats"),
    ("more fields than header", "time,close\n2020-01-01,1,7\n2020-01-02,2,8\n", DataError, "more fields"),
]


@pytest.mark.parametrize(("text", "error", "fragment"), [c[1:] for c in CSV_DEFECTS],
                         ids=[c[0] for c in CSV_DEFECTS])
def test_a_defective_csv_names_its_problem(tmp_path, text, error, fragment):
    with raises_exactly(error, fragment):
        finar.load(_csv(tmp_path, text))


@pytest.mark.parametrize(("text", "sep"), [
    ("time;close\n2020-01-01;10\n2020-01-02;11\n2020-01-03;12.5\n", ";"),
    ("time;close\n2020-01-01;10\n2020-01-02;11\n2020-01-03;12,5\n", "; with decimal commas"),
    ("time\tclose\n2020-01-01\t10\n2020-01-02\t11\n2020-01-03\t12.5\n", "tab"),
    ("time|close\n2020-01-01|10\n2020-01-02|11\n2020-01-03|12.5\n", "|"),
    (GOOD, ","),
], ids=["semicolon", "decimal-comma", "tab", "pipe", "comma"])
def test_other_delimiters_are_read(tmp_path, text, sep):
    px = finar.load(_csv(tmp_path, text))
    assert px["close"].tolist() == [10.0, 11.0, 12.5]
    assert px.index.equals(pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-03"], name="time"))


def test_a_gzipped_semicolon_csv(tmp_path):
    path = tmp_path / "px.csv.gz"
    path.write_bytes(gzip.compress(GOOD.replace(",", ";").encode()))
    assert finar.load(path)["close"].tolist() == [10.0, 11.0, 12.5]


@pytest.mark.parametrize("content", [b"PAR1garbagePAR1", b"PAR1", b"\x00" * 64, GOOD.encode()],
                         ids=["garbage", "magic-only", "zeros", "csv-named-parquet"])
def test_a_corrupt_parquet_file(tmp_path, content):
    path = tmp_path / "px.parquet"
    path.write_bytes(content)
    with raises_exactly(DataError, "could not read"):
        finar.load(path)


def test_a_truncated_parquet_file(tmp_path):
    path = tmp_path / "px.parquet"
    finar.load("sp500").iloc[:50].to_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    with raises_exactly(DataError, "could not read"):
        finar.load(path)


@pytest.mark.parametrize(("start", "end", "fragment"), [
    ("notadate", None, "start must be a date"), (None, "2020-13-45", "end must be a date"),
    ("2018-01-01", "2017-01-01", "after end"), ("", None, "start must be a date"),
])
def test_bad_start_or_end(start, end, fragment):
    with raises_exactly(DataError, fragment):
        finar.load("sp500", start=start, end=end)


# ---- finar.returns --------------------------------------------------------------------------------------
def _prices(values, start="2020-01-01") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values), name="time"), dtype=float)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"kind": "arith"}, "kind"), ({"scale": 0}, "scale"), ({"scale": -100}, "scale"),
    ({"scale": float("nan")}, "scale"), ({"periods": 0}, "periods"), ({"periods": 1.5}, "periods"),
])
def test_returns_refuses_bad_arguments(kwargs, fragment):
    with raises_exactly(DataError, fragment):
        finar.returns(_prices([1.0, 2.0, 3.0]), **kwargs)


def test_returns_refuses_a_zero_price():
    with raises_exactly(NonPositivePriceError, "price"):
        finar.returns(_prices([1.0, 0.0, 3.0]))


def test_returns_refuses_a_nan_price():
    with raises_exactly(NonFiniteValueError, "price"):
        finar.returns(_prices([1.0, np.nan, 3.0]))


def test_returns_refuses_a_repeated_day():
    px = _prices([1.0, 2.0, 3.0])
    px.index = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-02"], name="time")
    with raises_exactly(DuplicateTimestampError, "2020-01-02"):
        finar.returns(px)


def test_returns_refuses_a_single_price():
    with raises_exactly(SeriesTooShortError, "at least 2"):
        finar.returns(_prices([1.0]))


def test_returns_refuses_a_simple_return_that_overflows():
    with raises_exactly(NonFiniteValueError, "overflow"):
        finar.returns(_prices([1e-300, 1e300]), kind="simple")


def test_returns_refuses_repeated_column_names():
    frame = pd.concat([_prices([1.0, 2.0]), _prices([1.0, 3.0])], axis=1)
    frame.columns = ["a", "a"]
    with raises_exactly(DataError, "repeat"):
        finar.returns(frame)


# ---- read_trades ----------------------------------------------------------------------------------------
TRADES = "time,price,size,side\n2024-03-04 10:00:00,100.0,2,B\n2024-03-04 10:00:01,100.5,1,S\n"


@pytest.mark.parametrize("content", [b"PAR1garbagePAR1", b"PAR1" + b"\x00" * 100, b"\x00" * 64],
                         ids=["garbage", "zeros-after-magic", "zeros"])
def test_read_trades_on_a_corrupt_parquet_file(tmp_path, content):
    path = tmp_path / "t.parquet"
    path.write_bytes(content)
    with raises_exactly(DataError, "Parquet"):
        finar.ticks.read_trades(path)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"", "no lines|empty"), (bytes(range(256)) * 8, "not a text"), (b"price\n", "no rows|delimiter|layout"),
], ids=["empty", "binary", "header-only"])
def test_read_trades_on_a_file_that_is_not_trades(tmp_path, content, fragment):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=fragment) as info:
        finar.ticks.read_trades(path)
    assert isinstance(info.value, finar.FinarError)


def test_read_trades_on_a_missing_file(tmp_path):
    with raises_exactly(DataError, "not found"):
        finar.ticks.read_trades(tmp_path / "none.csv")


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_read_trades_reads_any_delimiter(tmp_path, sep):
    trades, _ = finar.ticks.read_trades(_csv(tmp_path, TRADES.replace(",", sep), "t.csv"))
    assert trades["price"].tolist() == [100.0, 100.5] and trades["side"].tolist() == [1, -1]


def test_read_trades_refuses_a_frame_without_prices():
    with pytest.raises(DataError, match="price") as info:
        finar.ticks.read_trades(pd.DataFrame({"time": ["2024-03-04 10:00"], "qty": [1]}))
    assert isinstance(info.value, finar.FinarError)


# ---- properties: valid input must load, and round-trip ---------------------------------------------------
@st.composite
def price_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(2, 30))
    days = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    index = pd.DatetimeIndex(pd.Timestamp("2001-01-01") + pd.to_timedelta(np.cumsum(days), unit="D"),
                             name="time")
    cols = draw(st.sampled_from([["close"], ["open", "high", "low", "close", "volume"],
                                 ["adj_close", "close"]]))
    values = {c: draw(st.lists(st.floats(1e-3, 1e6, allow_nan=False), min_size=n, max_size=n)) for c in cols}
    return pd.DataFrame(values, index=index)


@PROPERTY
@given(frame=price_frames(), sink=st.sampled_from(["csv", "csv;", "parquet", "csv.gz"]))
def test_valid_price_files_load_and_round_trip(frame, sink):
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / ("px." + sink.rstrip(";"))
        if sink == "parquet":
            frame.to_parquet(path)
        else:
            frame.to_csv(path, sep=";" if sink.endswith(";") else ",")
        out = finar.load(path)
    pd.testing.assert_frame_equal(out, frame, check_freq=False, check_dtype=False, check_like=True,
                                  rtol=1e-12)


@PROPERTY
@given(frame=price_frames())
def test_returns_of_valid_prices_exist_and_rebuild_the_prices(frame):
    px = frame.iloc[:, 0]
    r = finar.returns(px)
    assert len(r) == len(px) - 1 and np.isfinite(r).all() and r.index.equals(px.index[1:])
    rebuilt = px.iloc[0] * np.exp(np.r_[0.0, np.cumsum(r.to_numpy()) / 100])
    np.testing.assert_allclose(rebuilt, px.to_numpy(), rtol=1e-9)


@st.composite
def trade_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    gaps = draw(st.lists(st.integers(0, 5_000), min_size=n, max_size=n))  # ms; equal stamps allowed
    time = pd.Timestamp("2024-03-04 10:00") + pd.to_timedelta(np.cumsum(gaps), unit="ms")
    ticks = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    return pd.DataFrame({"time": time, "price": 100.0 + 0.25 * np.cumsum(ticks),
                         "size": draw(st.lists(st.integers(1, 500), min_size=n, max_size=n)),
                         "side": draw(st.lists(st.sampled_from(["B", "S"]), min_size=n, max_size=n))})


@PROPERTY
@given(raw=trade_frames(), sink=st.sampled_from(["csv", "csv;", "parquet"]))
def test_valid_trade_files_load_and_round_trip(raw, sink):
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / ("t." + sink.rstrip(";"))
        if sink == "parquet":
            raw.to_parquet(path, index=False)
        else:
            raw.to_csv(path, sep=";" if sink.endswith(";") else ",", index=False)
        trades, _ = finar.ticks.read_trades(path, band=math.inf)  # no print is an outlier here
    assert len(trades) == len(raw)
    np.testing.assert_allclose(trades["price"].to_numpy(), raw["price"].to_numpy())
    np.testing.assert_allclose(trades["size"].to_numpy(), raw["size"].to_numpy())
    assert trades["side"].tolist() == [1 if s == "B" else -1 for s in raw["side"]]
    assert (trades.index.as_unit("ms").asi8 == pd.DatetimeIndex(raw["time"]).as_unit("ms").asi8).all()
