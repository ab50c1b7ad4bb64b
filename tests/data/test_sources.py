"""finar.load, finar.datasets and the user's CSV and Parquet files (finar/data/sources.py)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    InvalidTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    UnknownDatasetError,
    UnsortedIndexError,
)
from tests.conftest import raises_exactly as raises

YAHOO_CSV = """Date,Open,High,Low,Close,Adj Close,Volume
2020-01-02,3244.67,3258.14,3235.53,3257.85,3257.85,3459930000
2020-01-03,3226.36,3246.15,3222.34,3234.85,3234.85,3484700000
2020-01-06,3217.55,3246.84,3214.64,3246.28,3246.28,3702460000
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def parquet(tmp_path: Path, frame: pd.DataFrame, name: str = "data.parquet") -> Path:
    path = tmp_path / name
    frame.to_parquet(path)
    return path


def assert_clean(frame: pd.DataFrame) -> None:
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "time"
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique
    from finar.data.validate import BAR_COLUMNS

    # field names are lower-case; asset names (a panel's columns) keep their spelling
    assert all(c in BAR_COLUMNS or c.isupper() for c in frame.columns)


# --- bundled datasets -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "columns"), [
    ("sp500", (5031, 6), ["open", "high", "low", "close", "adj_close", "volume"]),
    ("nasdaq", (5031, 6), ["open", "high", "low", "close", "adj_close", "volume"]),
    ("vix", None, ["close"]),
    ("wti", None, ["close"]),
    ("sp500-stocks", (8313, 21), None),
])
def test_bundled_datasets(name, shape, columns):
    px = finar.load(name)
    assert_clean(px)
    if shape is not None:
        assert px.shape == shape
    if columns is not None:
        assert px.columns.tolist() == columns
    assert np.isfinite(px.to_numpy(dtype=float)).all()
    assert (px.drop(columns=["volume"], errors="ignore").to_numpy() > 0).all()


def test_sp500_stocks_columns():
    px = finar.load("sp500-stocks")
    assert {"AAPL", "MSFT", "XOM", "SP500"} <= set(px.columns)
    assert px.index[0] == pd.Timestamp("1990-01-02")


def test_dataset_names_ignore_case():
    assert finar.load("SP500").shape == (5031, 6)


def test_bundled_data_gives_nan_free_returns():
    r = finar.returns(finar.load("sp500")["adj_close"])
    assert len(r) == 5030
    assert np.isfinite(r).all()


def test_load_works_offline_from_a_fresh_interpreter():
    no_network = ("import socket\n"
                  "def refuse(*args, **kwargs): raise OSError('network disabled by the test')\n"
                  "socket.socket.connect = refuse; socket.create_connection = refuse\n")
    code = no_network + (
        "import finar; print(finar.load('sp500').shape, finar.load('sp500-stocks').shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(5031, 6) (8313, 21)"


def test_datasets_table():
    table = finar.datasets()
    assert table.columns.tolist() == ["name", "description", "frequency", "start", "end",
                                      "rows", "columns", "source", "license"]
    assert table["name"].tolist() == ["sp500", "nasdaq", "vix", "wti", "sp500-stocks"]
    row = table.set_index("name").loc["sp500"]
    assert row["rows"] == 5031
    assert str(row["start"]) == "1999-01-04"
    assert row["columns"] == "open, high, low, close, adj_close, volume"
    for name, rows in zip(table["name"], table["rows"], strict=True):
        assert len(finar.load(name)) == rows
    assert table["license"].str.len().gt(0).all()


def test_unknown_dataset():
    with raises(UnknownDatasetError, match=r"unknown dataset 'sp5000'; bundled datasets are "
                                           r"\['nasdaq', 'sp500', 'sp500-stocks', 'vix', 'wti'\]"):
        finar.load("sp5000")


def test_unknown_dataset_is_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError) as info:
        finar.load("nope")
    assert str(info.value).startswith("unknown dataset 'nope'")


def test_bundled_dataset_takes_no_file_options():
    with raises(DataError, match=r"bundled dataset 'sp500' takes no options, got \['sort'\]"):
        finar.load("sp500", sort=True)


# --- start / end ----------------------------------------------------------------------------


def test_start_end_are_inclusive():
    px = finar.load("sp500", start="2010-01-04", end="2010-01-08")
    assert px.index[0] == pd.Timestamp("2010-01-04")
    assert px.index[-1] == pd.Timestamp("2010-01-08")
    assert len(px) == 5


def test_open_ended_slices():
    assert finar.load("sp500", start="2018-12-31").index.tolist() == [pd.Timestamp("2018-12-31")]
    assert finar.load("sp500", end="1999-01-04").index.tolist() == [pd.Timestamp("1999-01-04")]


def test_start_after_end():
    with raises(DataError, match=r"start 2011-01-01 00:00:00 is after end 2010-01-01"):
        finar.load("sp500", start="2011-01-01", end="2010-01-01")


def test_start_that_is_not_a_date():
    with raises(DataError, match=r"start must be a date, got 'soon'"):
        finar.load("sp500", start="soon")


def test_naive_bounds_on_zone_aware_data_mean_the_data_zone(tmp_path):
    index = pd.date_range("2020-01-02 09:30", periods=4, freq="D", tz="America/New_York",
                          name="time")
    path = parquet(tmp_path, pd.DataFrame({"close": [1.0, 2, 3, 4]}, index=index))
    px = finar.load(path, start="2020-01-03", end="2020-01-04 09:30")
    assert px["close"].tolist() == [2.0, 3.0]
    assert str(px.index.tz) == "America/New_York"


def test_aware_bounds_on_naive_data():
    with raises(MixedTimeZoneError, match=r"carry a time zone but the data's timestamps have none"):
        finar.load("sp500", start="2010-01-04T00:00:00+00:00")


# --- CSV files ------------------------------------------------------------------------------


def test_yahoo_style_csv(tmp_path):
    px = finar.load(write(tmp_path, "spy.csv", YAHOO_CSV))
    assert_clean(px)
    assert px.columns.tolist() == ["open", "high", "low", "close", "adj_close", "volume"]
    assert px["close"].tolist() == [3257.85, 3234.85, 3246.28]
    assert px.index.tolist() == [pd.Timestamp(d) for d in ("2020-01-02", "2020-01-03", "2020-01-06")]


def test_load_accepts_path_objects_and_strings(tmp_path):
    path = write(tmp_path, "spy.csv", YAHOO_CSV)
    pd.testing.assert_frame_equal(finar.load(path), finar.load(str(path)))


def test_compressed_csv(tmp_path):
    path = tmp_path / "spy.csv.gz"
    path.write_bytes(gzip.compress(YAHOO_CSV.encode()))
    pd.testing.assert_frame_equal(finar.load(path), finar.load(write(tmp_path, "s.csv", YAHOO_CSV)))


def test_single_price_column_csv(tmp_path):
    px = finar.load(write(tmp_path, "spy.csv", "Date,SPY\n2020-01-02,1.5\n2020-01-03,2.5\n"))
    assert px.columns.tolist() == ["close"]
    assert px["close"].tolist() == [1.5, 2.5]


def test_panel_csv_keeps_names(tmp_path):
    px = finar.load(write(tmp_path, "p.csv", "Date,AAPL,MSFT\n2020-01-02,1,2\n2020-01-03,3,4\n"))
    assert px.columns.tolist() == ["AAPL", "MSFT"]


def test_read_kwargs_reach_pandas(tmp_path):
    px = finar.load(write(tmp_path, "semi.csv", "Date;Close\n2020-01-02;1\n2020-01-03;2\n"), sep=";")
    assert px["close"].tolist() == [1, 2]


def test_day_first_dates_parsed_by_pandas_are_kept(tmp_path):
    path = write(tmp_path, "eu.csv", "Date,Close\n02/01/2020,1\n13/01/2020,2\n")
    px = finar.load(path, parse_dates=["Date"], dayfirst=True)
    assert px.index.tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


def test_unsorted_csv(tmp_path):
    text = "Date,Close\n2020-01-03,1\n2020-01-02,2\n2020-01-06,3\n"
    path = write(tmp_path, "u.csv", text)
    with raises(UnsortedIndexError, match=r"first at row 1 \(2020-01-02 00:00:00 after "
                                          r"2020-01-03 00:00:00\).*pass sort=True"):
        finar.load(path)
    px = finar.load(path, sort=True)
    assert px["close"].tolist() == [2, 1, 3]


def test_duplicate_timestamps_csv(tmp_path):
    path = write(tmp_path, "d.csv", "Date,Close\n2020-01-02,1\n2020-01-03,2\n2020-01-03,3\n")
    with raises(DuplicateTimestampError, match=r"first 2020-01-03 00:00:00 at rows 1 and 2"):
        finar.load(path)
    assert finar.load(path, drop_duplicates="first")["close"].tolist() == [1, 2]
    assert finar.load(path, drop_duplicates="last")["close"].tolist() == [1, 3]


@pytest.mark.parametrize(("cell", "cls", "message"), [
    ("", NonFiniteValueError, r"price column 'close' has 1 missing.* at 2020-01-03 00:00:00"),
    ("inf", NonFiniteValueError, r"price column 'close' has 1 missing.* at 2020-01-03 00:00:00"),
    ("n/a2", NonFiniteValueError, r"non-numeric .* at 2020-01-03 00:00:00"),
    ("0", NonPositivePriceError, r"zero or negative value\(s\) at 2020-01-03 00:00:00 \(first 0.0\)"),
    ("-1.5", NonPositivePriceError, r"at 2020-01-03 00:00:00 \(first -1.5\)"),
])
def test_bad_prices_in_csv(tmp_path, cell, cls, message):
    path = write(tmp_path, "p.csv", f"Date,Close\n2020-01-02,1\n2020-01-03,{cell}\n2020-01-06,3\n")
    with raises(cls, match=message) as info:
        finar.load(path)
    assert str(path) in str(info.value)  # the message says which file


def test_missing_columns_csv(tmp_path):
    with raises(MissingColumnsError, match=r"no time column.*columns are \['close'\]"):
        finar.load(write(tmp_path, "n.csv", "Close\n1\n2\n"))


def test_missing_price_column_csv(tmp_path):
    with raises(MissingColumnsError, match=r"no price column.*columns are \['volume'\]"):
        finar.load(write(tmp_path, "v.csv", "Date,Volume\n2020-01-02,1\n2020-01-03,2\n"))


def test_mixed_time_zones_csv(tmp_path):
    text = "time,close\n2020-01-02T10:00:00+01:00,1\n2020-01-03T10:00:00+02:00,2\n"
    with raises(MixedTimeZoneError, match=r"'\+01:00' in row 0 but not in rows 1 \('\+02:00'\)"):
        finar.load(write(tmp_path, "tz.csv", text))


def test_consistent_zone_csv_is_kept(tmp_path):
    text = "time,close\n2020-01-02T10:00:00+01:00,1\n2020-01-03T10:00:00+01:00,2\n"
    px = finar.load(write(tmp_path, "tz.csv", text))
    assert px.index[0].utcoffset() == pd.Timedelta(hours=1)
    assert px.index[0] == pd.Timestamp("2020-01-02T09:00:00Z")
    assert finar.load(write(tmp_path, "tz.csv", text), start="2020-01-03").shape == (1, 1)


def test_unparseable_timestamp_csv(tmp_path):
    text = "Date,Close\n2020-01-02,1\n2020-13-45,2\n"
    with raises(InvalidTimestampError, match=r"at rows 1 \('2020-13-45'\)"):
        finar.load(write(tmp_path, "t.csv", text))


def test_rows_longer_than_the_header_are_refused(tmp_path):
    # pandas would quietly move the first field into the index and shift every value
    text = "time,close\n2020-01-02,1,5\n2020-01-03,2\n"
    with raises(DataError, match=r"rows have more fields than the header"):
        finar.load(write(tmp_path, "r.csv", text))


def test_unnamed_first_column_as_index(tmp_path):
    px = finar.load(write(tmp_path, "i.csv", "close\n2020-01-02,1\n2020-01-03,2\n"), index_col=0)
    assert px["close"].tolist() == [1, 2]


def test_repeated_header_names_are_refused(tmp_path):
    text = "Date,Close,Close\n2020-01-02,1,2\n2020-01-03,2,3\n"
    with raises(DataError, match=r"the header repeats column names \(read as \['Close.1'\]\)"):
        finar.load(write(tmp_path, "h.csv", text))


def test_empty_and_header_only_files(tmp_path):
    with raises(DataError, match=r"could not read .*empty.csv"):
        finar.load(write(tmp_path, "empty.csv", ""))
    with raises(DataError, match=r"header.csv: no rows"):
        finar.load(write(tmp_path, "header.csv", "Date,Close\n"))


def test_malformed_csv(tmp_path):
    text = "Date,Close\n2020-01-02,1\n2020-01-03,2,3,4\n"
    with raises(DataError, match=r"could not read .*bad.csv.*Expected 2 fields in line 3"):
        finar.load(write(tmp_path, "bad.csv", text))


def test_missing_file_and_unknown_type(tmp_path):
    with raises(DataError, match=r"file not found: '.*nothere.csv'"):
        finar.load(tmp_path / "nothere.csv")
    with raises(DataError, match=r"unknown file type; use .csv or .parquet"):
        finar.load(write(tmp_path, "x.json", "{}"))


# --- trades files ---------------------------------------------------------------------------


TRADES_CSV = """Timestamp,Price,Qty,Side
2020-01-02 09:30:00.001,10.00,100,B
2020-01-02 09:30:00.001,10.01,50,S
2020-01-02 09:30:00.250,10.02,7,buy
"""


def test_trades_are_detected_and_keep_equal_timestamps(tmp_path):
    t = finar.load(write(tmp_path, "t.csv", TRADES_CSV))
    assert t.columns.tolist() == ["price", "size", "side"]
    assert len(t) == 3
    assert t.index.is_monotonic_increasing and not t.index.is_unique
    assert t["side"].tolist() == [1, -1, 1]
    assert t["size"].tolist() == [100.0, 50.0, 7.0]


def test_trades_read_as_bars_refuse_equal_timestamps(tmp_path):
    with raises(DuplicateTimestampError, match=r"at rows 0 and 1"):
        finar.load(write(tmp_path, "t.csv", TRADES_CSV), kind="bars")


def test_trades_going_back_in_time(tmp_path):
    text = TRADES_CSV.replace("09:30:00.250", "09:29:00.000")
    path = write(tmp_path, "t.csv", text)
    with raises(UnsortedIndexError, match=r"first at row 2"):
        finar.load(path)
    assert finar.load(path, sort=True)["price"].tolist() == [10.02, 10.0, 10.01]


def test_trades_refuse_drop_duplicates(tmp_path):
    with raises(DataError, match=r"drop_duplicates does not apply to trades"):
        finar.load(write(tmp_path, "t.csv", TRADES_CSV), drop_duplicates="first")


def test_trades_side_garbage(tmp_path):
    with raises(DataError, match=r"side has 1 value\(s\) that are not buy/sell .* e.g. 'maybe'"):
        finar.load(write(tmp_path, "t.csv", TRADES_CSV.replace(",buy", ",maybe")))


def test_trades_without_size_are_bars_unless_asked(tmp_path):
    text = "time,price\n2020-01-02,10\n2020-01-03,11\n"
    assert finar.load(write(tmp_path, "p.csv", text)).columns.tolist() == ["close"]
    with raises(MissingColumnsError, match=r"missing \['size'\]"):
        finar.load(write(tmp_path, "p.csv", text), kind="trades")


def test_bad_kind(tmp_path):
    with raises(DataError, match=r"kind must be 'auto', 'bars' or 'trades', got 'ticks'"):
        finar.load(write(tmp_path, "t.csv", TRADES_CSV), kind="ticks")


# --- Parquet files --------------------------------------------------------------------------


def test_parquet_with_datetime_index(tmp_path):
    frame = pd.DataFrame({"Close": [1.0, 2.0], "Volume": [3, 4]},
                         index=pd.DatetimeIndex(["2020-01-02", "2020-01-03"], name="Date"))
    px = finar.load(parquet(tmp_path, frame))
    assert_clean(px)
    assert px.columns.tolist() == ["close", "volume"]
    assert px["close"].tolist() == [1.0, 2.0]


def test_parquet_with_unnamed_datetime_index(tmp_path):
    frame = pd.DataFrame({"SPY": [1.0, 2.0]}, index=pd.DatetimeIndex(["2020-01-02", "2020-01-03"]))
    px = finar.load(parquet(tmp_path, frame, "x.pq"))
    assert px.index.name == "time"
    assert px.columns.tolist() == ["close"]


def test_parquet_with_time_column_and_zone(tmp_path):
    times = pd.date_range("2020-03-06 15:00", periods=3, freq="D", tz="America/New_York")
    frame = pd.DataFrame({"Timestamp": times, "Price": [1.0, 2.0, 3.0], "Qty": [1, 2, 3]})
    t = finar.load(parquet(tmp_path, frame))
    assert t.columns.tolist() == ["price", "size"]
    assert str(t.index.tz) == "America/New_York"  # kept across the DST change on 2020-03-08
    assert t.index.equals(pd.DatetimeIndex(times, name="time"))


@pytest.mark.parametrize(("columns", "cls", "message"), [
    ({"date": ["2020-01-02", "2020-01-03"], "close": [1.0, np.nan]}, NonFiniteValueError,
     r"price column 'close' has 1 missing.* at 2020-01-03"),
    ({"date": ["2020-01-02", "2020-01-03"], "close": [1.0, -2.0]}, NonPositivePriceError,
     r"at 2020-01-03 00:00:00 \(first -2.0\)"),
    ({"date": ["2020-01-03", "2020-01-02"], "close": [1.0, 2.0]}, UnsortedIndexError,
     r"first at row 1"),
    ({"date": ["2020-01-02", "2020-01-02"], "close": [1.0, 2.0]}, DuplicateTimestampError,
     r"first 2020-01-02 00:00:00 at rows 0 and 1"),
    ({"date": ["2020-01-03", None], "close": [1.0, 2.0]}, InvalidTimestampError, r"at rows 1"),
    ({"date": ["2020-01-02T00:00Z", "2020-01-03T00:00-05:00"], "close": [1.0, 2.0]},
     MixedTimeZoneError, r"'\+00:00' in row 0 but not in rows 1 \('-05:00'\)"),
    ({"date": ["2020-01-02", "2020-01-03"], "volume": [1, 2]}, MissingColumnsError,
     r"no price column"),
    ({"close": [1.0, 2.0]}, MissingColumnsError, r"no time column"),
])
def test_parquet_bad_values(tmp_path, columns, cls, message):
    with raises(cls, match=message):
        finar.load(parquet(tmp_path, pd.DataFrame(columns)))


def test_corrupt_parquet(tmp_path):
    with raises(DataError, match=r"could not read .*broken.parquet"):
        finar.load(write(tmp_path, "broken.parquet", "not parquet"))


@pytest.mark.parametrize("start", ["", float("nan")])
def test_empty_start_does_not_select_nothing(start):
    with raises(DataError, match=r"start must be a date, got"):
        finar.load("sp500", start=start)
