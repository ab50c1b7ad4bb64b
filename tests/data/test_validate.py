"""Column normalisation and validation of bars and trades (finar/data/validate.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finar.data.validate import clean_bars, clean_trades, normalize_columns, parse_time_index
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    InvalidTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    UnsortedIndexError,
)
from tests.conftest import raises_exactly as raises

DAYS = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]


def bars(**columns: object) -> pd.DataFrame:
    return pd.DataFrame({"date": DAYS[: len(next(iter(columns.values())))], **columns})


# --- column names -------------------------------------------------------------------------


def test_vendor_column_names_are_normalised():
    raw = pd.DataFrame({
        "Date": DAYS[:2], "Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.5],
        "Close": [1.5, 2.5], "Adj Close": [1.4, 2.4], "Volume": [10, 20],
    })
    out = clean_bars(raw)
    assert out.columns.tolist() == ["open", "high", "low", "close", "adj_close", "volume"]
    assert out.index.name == "time"
    assert out.index.tolist() == [pd.Timestamp(d) for d in DAYS[:2]]
    assert out["adj_close"].tolist() == [1.4, 2.4]


@pytest.mark.parametrize(("given", "expected"), [
    ("Adj Close", "adj_close"), ("adj-close", "adj_close"), ("AdjClose", "adj_close"),
    ("Adjusted Close", "adj_close"), (" VOL ", "volume"), ("Last", "close"), ("Qty", "size"),
    ("Quantity", "size"), ("Trade Price", "price"), ("PX", "price"), ("Aggressor Side", "side"),
    ("Time.Stamp", "timestamp"), ("BRK-B", "BRK-B"), (" AAPL ", "AAPL"),
])
def test_normalize_columns_maps_vendor_spellings(given, expected):
    assert normalize_columns(pd.DataFrame(columns=[given])).columns.tolist() == [expected]


def test_two_columns_with_one_meaning_are_refused():
    raw = pd.DataFrame({"date": DAYS[:2], "Close": [1.0, 2.0], "close": [1.0, 2.0]})
    with raises(DataError, match=r"columns 'Close' and 'close' both mean 'close'"):
        clean_bars(raw)


@pytest.mark.parametrize("time_name", ["Date", "Timestamp", "DateTime", "TIME", "dt"])
def test_time_column_names_are_recognised(time_name):
    out = clean_bars(pd.DataFrame({time_name: DAYS[:2], "close": [1.0, 2.0]}))
    assert out.index.name == "time"
    assert isinstance(out.index, pd.DatetimeIndex)
    assert time_name.lower() not in out.columns


def test_named_index_is_used_as_time():
    raw = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.Index(DAYS[:2], name="Date"))
    out = clean_bars(raw)
    assert out.index.tolist() == [pd.Timestamp(d) for d in DAYS[:2]]
    assert out.columns.tolist() == ["close"]


def test_time_column_argument():
    raw = pd.DataFrame({"When": DAYS[:2], "close": [1.0, 2.0]})
    assert clean_bars(raw, time_column="When").index.name == "time"
    with raises(MissingColumnsError, match=r"time column 'Moment' not found; columns are"):
        clean_bars(raw, time_column="Moment")


def test_single_unnamed_price_column_becomes_close():
    out = clean_bars(pd.DataFrame({"Date": DAYS[:3], "SPY": [1.0, 2.0, 3.0]}))
    assert out.columns.tolist() == ["close"]
    assert out["close"].tolist() == [1.0, 2.0, 3.0]


def test_single_price_column_next_to_volume_becomes_close():
    out = clean_bars(pd.DataFrame({"Date": DAYS[:2], "SPY": [1.0, 2.0], "Volume": [5, 6]}))
    assert out.columns.tolist() == ["close", "volume"]


def test_price_column_of_bars_becomes_close():
    out = clean_bars(pd.DataFrame({"Date": DAYS[:2], "Price": [1.0, 2.0]}))
    assert out.columns.tolist() == ["close"]


def test_panel_of_closes_keeps_asset_names():
    raw = pd.DataFrame({"Date": DAYS[:3], "AAPL": [1.0, 2, 3], "MSFT": [4.0, 5, 6],
                        "SP500": [7.0, 8, 9]})
    out = clean_bars(raw)
    assert out.columns.tolist() == ["AAPL", "MSFT", "SP500"]
    assert out["MSFT"].tolist() == [4.0, 5.0, 6.0]


def test_numbers_written_as_text_become_numbers():
    out = clean_bars(bars(close=["1.5", "2.5"], volume=["10", "0"]))
    assert pd.api.types.is_numeric_dtype(out["close"])
    assert out["close"].tolist() == [1.5, 2.5]
    assert out["volume"].tolist() == [10, 0]


# --- missing columns ------------------------------------------------------------------------


def test_missing_time_column():
    with raises(MissingColumnsError, match=r"no time column.*columns are \['close'\]"):
        clean_bars(pd.DataFrame({"close": [1.0, 2.0]}))


def test_missing_price_column():
    with raises(MissingColumnsError, match=r"no price column.*columns are \['volume'\]"):
        clean_bars(bars(volume=[1, 2]))


def test_trades_missing_size():
    raw = pd.DataFrame({"time": DAYS[:2], "price": [1.0, 2.0]})
    with raises(MissingColumnsError, match=r"trades need columns 'price' and 'size'; "
                                           r"missing \['size'\]"):
        clean_trades(raw)


def test_missing_columns_error_is_also_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError) as info:
        clean_bars(pd.DataFrame({"close": [1.0]}))
    assert str(info.value).startswith("no time column")


def test_separate_date_and_time_of_day_columns_are_refused():
    raw = pd.DataFrame({"Date": ["2020-01-02"] * 2, "Time": ["09:30", "09:31"], "close": [1, 2]})
    with raises(DataError, match=r"several time columns \['time', 'date'\]; pass time_column="):
        clean_bars(raw)


@pytest.mark.parametrize("raw", [
    pd.DataFrame({"date": [], "close": []}),
    pd.DataFrame(index=pd.DatetimeIndex([], name="time")),
])
def test_no_rows(raw):
    with raises(DataError, match=r"prices.csv: no rows"):
        clean_bars(raw, source="prices.csv")


def test_not_a_frame():
    with raises(DataError, match=r"expected a pandas DataFrame, got Series"):
        clean_bars(pd.Series([1.0]))


# --- order of timestamps ---------------------------------------------------------------------


def test_unsorted_timestamps_name_the_rows():
    raw = pd.DataFrame({"date": ["2020-01-03", "2020-01-02", "2020-01-06", "2020-01-05"],
                        "close": [1.0, 2.0, 3.0, 4.0]})
    with raises(UnsortedIndexError, match=r"2 row\(s\) go back in time, first at row 1 "
                                          r"\(2020-01-02 00:00:00 after 2020-01-03.*rows 1, 3"):
        clean_bars(raw)


def test_sort_true_sorts_and_keeps_every_row():
    raw = pd.DataFrame({"date": ["2020-01-03", "2020-01-02", "2020-01-06"], "close": [1.0, 2, 3]})
    out = clean_bars(raw, sort=True)
    assert out.index.is_monotonic_increasing
    assert out["close"].tolist() == [2.0, 1.0, 3.0]


def test_duplicate_timestamps_name_the_rows():
    raw = pd.DataFrame({"date": ["2020-01-02", "2020-01-03", "2020-01-03"], "close": [1.0, 2, 3]})
    with raises(DuplicateTimestampError, match=r"1 duplicate timestamp\(s\), first "
                                               r"2020-01-03 00:00:00 at rows 1 and 2"):
        clean_bars(raw)


@pytest.mark.parametrize(("keep", "value"), [("first", 2.0), ("last", 3.0)])
def test_drop_duplicates_keeps_the_chosen_row(keep, value):
    raw = pd.DataFrame({"date": ["2020-01-02", "2020-01-03", "2020-01-03"], "close": [1.0, 2, 3]})
    out = clean_bars(raw, drop_duplicates=keep)
    assert out["close"].tolist() == [1.0, value]
    assert out.index.is_unique


def test_drop_duplicates_bad_value():
    raw = pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "close": [1.0, 2]})
    with raises(DataError, match=r"drop_duplicates must be 'first', 'last' or False, got 'any'"):
        clean_bars(raw, drop_duplicates="any")


def test_sort_and_drop_duplicates_together():
    raw = pd.DataFrame({"date": ["2020-01-06", "2020-01-02", "2020-01-06"], "close": [3.0, 1, 4]})
    out = clean_bars(raw, sort=True, drop_duplicates="last")
    assert out["close"].tolist() == [1.0, 4.0]


def test_unsorted_datetime_index_is_refused():
    raw = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.to_datetime(["2020-01-03", "2020-01-02"]))
    with raises(UnsortedIndexError, match=r"first at row 1"):
        clean_bars(raw)


# --- timestamps ----------------------------------------------------------------------------


def test_unparseable_timestamp_names_row_and_value():
    with raises(InvalidTimestampError, match=r"1 missing or unparseable value\(s\) at rows "
                                             r"1 \('not a date'\)"):
        clean_bars(bars(date=["2020-01-02", "not a date"], close=[1.0, 2.0]))


def test_missing_timestamp_names_the_row():
    with raises(InvalidTimestampError, match=r"1 missing or unparseable value\(s\) at rows 2 \(nan\)"):
        clean_bars(bars(date=["2020-01-02", "2020-01-03", None], close=[1.0, 2.0, 3.0]))


def test_missing_timestamp_in_a_datetime_index_is_not_called_unsorted():
    raw = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.to_datetime(["2020-01-02", None]))
    with raises(InvalidTimestampError, match=r"at rows 1 \(NaT\)"):
        clean_bars(raw)


def test_numbers_are_not_read_as_nanoseconds_since_1970():
    with raises(InvalidTimestampError, match=r"at rows 0 \(1\), 1 \(2\)"):
        clean_bars(bars(date=[1, 2], close=[1.0, 2.0]))
    with raises(InvalidTimestampError, match=r"at rows 1 \(5\)"):
        clean_bars(bars(date=["2020-01-02", 5], close=[1.0, 2.0]))


def test_whole_numbers_in_yyyymmdd_layout_are_dates():
    out = clean_bars(bars(date=[20200102, 20200103], close=[1.0, 2.0]))
    assert out.index.tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]


def test_one_inferred_format_for_every_row():
    # per-row guessing would read 1/2/2020 as 2 January and 13/2/2020 as 13 February
    with raises(InvalidTimestampError, match=r"at rows 1 \('13/2/2020'\).*dayfirst=True"):
        clean_bars(bars(date=["1/2/2020", "13/2/2020"], close=[1.0, 2.0]))
    out = clean_bars(bars(date=["Jan 2, 2020", "Jan 13, 2020"], close=[1.0, 2.0]))
    assert out.index.tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


@pytest.mark.parametrize("stamps", [
    ["2020-01-02T10:00:00+00:00", "2020-01-03T10:00:00+01:00", "2020-01-06T10:00:00+01:00"],
    ["2020-01-02T10:00:00Z", "2020-01-03T10:00:00", "2020-01-06T10:00:00"],
])
def test_mixed_time_zones_name_the_rows(stamps):
    with raises(MixedTimeZoneError, match=r"mixes time zones \('\+00:00' in row 0 but not in "
                                          r"rows 1 .*, 2 .*convert all timestamps to one zone"):
        clean_bars(bars(date=stamps, close=[1.0, 2.0, 3.0]))


def test_mixed_zone_objects_are_refused():
    stamps = [pd.Timestamp("2020-01-02", tz="UTC"), pd.Timestamp("2020-01-03", tz="Asia/Tokyo")]
    with raises(MixedTimeZoneError, match=r"in rows 1 \('\+09:00'\)"):
        clean_bars(bars(date=stamps, close=[1.0, 2.0]))


def test_one_offset_spelled_differently_is_one_zone():
    out = parse_time_index(["2020-01-02T00:00Z", "2020-01-03T00:00+00:00", "2020-01-06T00:00+0000"])
    assert str(out.tz) == "UTC"


def test_consistent_zone_is_accepted_and_kept():
    raw = bars(date=["2020-01-02T15:30:00-05:00", "2020-01-03T15:30:00-05:00"], close=[1.0, 2.0])
    out = clean_bars(raw)
    assert out.index.tz is not None
    assert out.index[0] == pd.Timestamp("2020-01-02T20:30:00", tz="UTC")
    assert out.index[0].utcoffset() == pd.Timedelta(hours=-5)


def test_aware_datetime_index_is_kept():
    index = pd.date_range("2020-03-06", periods=4, freq="D", tz="America/New_York")  # spans DST
    out = clean_bars(pd.DataFrame({"close": [1.0, 2, 3, 4]}, index=index))
    assert str(out.index.tz) == "America/New_York"
    assert out.index.equals(index.rename("time"))


# --- prices ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -3.5])
def test_non_positive_price_names_row_and_value(bad):
    with raises(NonPositivePriceError, match=rf"price column 'close' has 1 zero or negative "
                                             rf"value\(s\) at 2020-01-03 00:00:00 \(first {bad}\)"):
        clean_bars(bars(close=[1.0, bad, 2.0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "n/a"])
def test_non_finite_price_names_the_rows(bad):
    with raises(NonFiniteValueError, match=r"prices.csv: price column 'open' has 1 missing, "
                                           r"non-numeric or infinite value\(s\) at 2020-01-06"):
        clean_bars(bars(open=[1.0, 2.0, bad], close=[1.0, 2.0, 3.0]), source="prices.csv")


def test_non_finite_message_lists_many_rows_briefly():
    raw = pd.DataFrame({"close": [np.nan] * 8},
                       index=pd.date_range("2020-01-01", periods=8, name="time"))
    with raises(NonFiniteValueError, match=r"8 missing.*2020-01-05 00:00:00 \(and 3 more\)"):
        clean_bars(raw)


def test_negative_volume_is_refused_but_zero_volume_is_fine():
    assert clean_bars(bars(close=[1.0, 2.0], volume=[0, 5]))["volume"].tolist() == [0, 5]
    with raises(NonPositivePriceError, match=r"volume column 'volume' has 1 negative value\(s\) "
                                             r"at 2020-01-03 00:00:00 \(first -5.0\)$"):
        clean_bars(bars(close=[1.0, 2.0], volume=[0, -5]))


def test_non_numeric_asset_in_a_panel_is_named():
    raw = bars(aapl=[1.0, 2.0], ticker=["AAPL", "AAPL"])
    with raises(NonFiniteValueError, match=r"price column 'ticker' has 2"):
        clean_bars(raw)


@pytest.mark.parametrize("column", [
    pd.to_datetime(["2020-01-01", "2020-01-02"]),  # to_numeric would give nanoseconds
    [True, True],
    [1.5, True],
    [1 + 2j, 2.0],
])
def test_dates_booleans_and_complex_numbers_are_not_prices(column):
    with raises(NonFiniteValueError, match=r"price column 'close' has [12] missing, non-numeric"):
        clean_bars(bars(close=list(column)))


def test_price_next_to_close_stays_a_validated_column():
    out = clean_bars(bars(close=[1.0, 2.0], price=[3.0, 4.0]))
    assert out.columns.tolist() == ["close", "price"]
    with raises(NonFiniteValueError, match=r"price column 'price' has 1"):
        clean_bars(bars(close=[1.0, 2.0], price=[3.0, np.nan]))


def test_nothing_is_dropped_or_reordered():
    raw = bars(close=[3.0, 1.0, 2.0, 5.0])
    out = clean_bars(raw)
    assert len(out) == len(raw)
    assert out["close"].tolist() == [3.0, 1.0, 2.0, 5.0]
    assert raw.columns.tolist() == ["date", "close"]  # the input is not modified


# --- trades ----------------------------------------------------------------------------------


def trades(**extra: object) -> pd.DataFrame:
    base = {"Timestamp": ["2020-01-02 09:30:00.001", "2020-01-02 09:30:00.001",
                          "2020-01-02 09:30:00.250"],
            "Price": [10.0, 10.01, 10.02], "Qty": [100, 50, 7]}
    return pd.DataFrame({**base, **extra})


def test_trades_are_normalised_and_keep_equal_timestamps():
    out = clean_trades(trades())
    assert out.columns.tolist() == ["price", "size"]
    assert out.index.name == "time"
    assert len(out) == 3
    assert out.index[0] == out.index[1] == pd.Timestamp("2020-01-02 09:30:00.001")
    assert out["size"].tolist() == [100.0, 50.0, 7.0]
    assert out["price"].dtype == float


def test_trades_going_back_in_time_are_refused():
    raw = trades()
    raw.loc[2, "Timestamp"] = "2020-01-02 09:29:59"
    with raises(UnsortedIndexError, match=r"1 row\(s\) go back in time, first at row 2"):
        clean_trades(raw)
    assert clean_trades(raw, sort=True)["price"].tolist() == [10.02, 10.0, 10.01]


@pytest.mark.parametrize("sides", [["B", "S", "b"], ["buy", "SELL", " Buy "], [1, -1, 1],
                                   [1.0, -1.0, 1.0], ["+1", "-1", "1.0"], ["bid", "ask", "bid"]])
def test_side_spellings(sides):
    out = clean_trades(trades(Side=sides))
    assert out["side"].tolist() == [1, -1, 1]
    assert out["side"].dtype == np.int8
    assert out.columns.tolist() == ["price", "size", "side"]


@pytest.mark.parametrize(("sides", "shown"), [
    (["B", "X", "S"], "'X'"), ([1, 0, -1], "0"), ([1, np.nan, -1], "nan"), ([1, 2, -1], "2"),
])
def test_side_garbage_is_refused(sides, shown):
    with raises(DataError, match=rf"side has 1 value\(s\) that are not buy/sell .* at "
                                 rf"2020-01-02 09:30:00.001000, e.g. {shown}"):
        clean_trades(trades(Aggressor=sides))


def test_side_of_booleans_is_ambiguous():
    with raises(DataError, match=r"side has 3 value\(s\)"):
        clean_trades(trades(side=[True, False, True]))


def test_zero_trade_size_is_refused():
    with raises(NonPositivePriceError, match=r"size column 'size' has 1 zero or negative"):
        clean_trades(trades(Qty=[1, 0, 2]))


def test_non_finite_trade_price():
    with raises(NonFiniteValueError, match=r"price column 'price' has 1 .* at 2020-01-02 "
                                           r"09:30:00.250"):
        clean_trades(trades(Price=[10.0, 10.0, np.inf]))
