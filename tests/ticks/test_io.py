"""Trades in: cleaning with its report, malformed files, tick size, signs, sessions, bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, MissingColumnsError, UnsortedIndexError
from finar.ticks import clean, infer_tick_size, read_trades, session_ids, tick_rule, to_bars
from tests.conftest import raises_exactly


def _raw(n: int = 50) -> pd.DataFrame:
    t = pd.date_range("2024-01-02 09:30", periods=n, freq="1s")
    rng = np.random.default_rng(0)
    price = 1000 + 0.25 * np.cumsum(rng.choice([-1, 0, 1], n))
    return pd.DataFrame({"timestamp": t.astype(str), "price": price, "qty": rng.integers(1, 5, n)})


def _rows(report: pd.DataFrame) -> dict[str, int]:
    return report.set_index("rule")["rows"].to_dict()


def test_missing_column_file_raises_clear_error(tmp_path):
    path = tmp_path / "trades.csv"
    _raw().drop(columns="qty").to_csv(path, index=False)
    with raises_exactly(MissingColumnsError, "missing \\['size'\\]"):
        read_trades(path)


def test_text_in_price_column_is_dropped_and_counted(tmp_path):
    raw = _raw().astype({"price": object})
    raw.loc[[3, 7], "price"] = ["n/a", "1000,25"]
    path = tmp_path / "trades.csv"
    raw.to_csv(path, index=False)
    trades, report = read_trades(path)
    assert len(trades) == len(raw) - 2 and _rows(report)["bad_price"] == 2
    assert _rows(report)["total"] == 2
    assert trades["price"].dtype == float


def test_unsorted_times_are_sorted_and_counted_or_refused(tmp_path):
    raw = _raw()
    raw.iloc[[10, 11]] = raw.iloc[[11, 10]].to_numpy()
    path = tmp_path / "trades.csv"
    raw.to_csv(path, index=False)
    trades, report = read_trades(path)
    assert trades.index.is_monotonic_increasing and len(trades) == len(raw)
    assert _rows(report)["out_of_order"] == 1
    dropped, rep = read_trades(path, out_of_order="drop")
    assert len(dropped) == len(raw) - 1 and _rows(rep)["out_of_order"] == 1
    with raises_exactly(UnsortedIndexError, "not sorted"):
        read_trades(path, out_of_order="raise")


def test_other_rules_count_rows():
    raw = _raw()
    raw.loc[5, "qty"] = 0
    raw.loc[9, "price"] = 1500.0 # a bad print, far outside the rolling band
    raw = pd.concat([raw, raw.iloc[[20]]]).sort_values("timestamp", kind="stable").reset_index(drop=True)
    raw["side"] = "buy"
    raw.loc[30, "side"] = "??"
    trades, report = clean(raw)
    r = _rows(report)
    assert (r["nonpositive_size"], r["outside_band"], r["duplicates"], r["bad_side"]) == (1, 1, 1, 1)
    assert len(trades) == len(raw) - 3  # duplicates are counted, not dropped, by default
    assert len(clean(raw, drop_duplicates=True)[0]) == len(raw) - 4


def test_tick_size_signs_and_sessions():
    assert infer_tick_size([10.0, 10.05, 10.15, 10.1]) == 0.05
    assert infer_tick_size([4500.0, 4500.25, 4501.0]) == 0.25
    assert tick_rule([5.0, 5.0, 4.9, 4.9, 5.1]).tolist() == [1, 1, -1, -1, 1]
    t = pd.DatetimeIndex(["2024-01-02 10:00", "2024-01-02 10:20", "2024-01-02 11:00", "2024-01-03 09:30"])
    assert session_ids(t).tolist() == [0, 0, 1, 2]


def test_bars_time_volume_and_dollar():
    t = finar.ticks.simulate(n_events=5_000, seed=0)
    bars = to_bars(t, "1min")
    assert bars["volume"].sum() == t["size"].sum() and bars["n_trades"].sum() == len(t)
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    vol = to_bars(t, kind="volume", threshold=500)
    assert vol["volume"].sum() == t["size"].sum()
    assert (vol["volume"].iloc[:-1] >= 500).mean() > 0.9  # every full bar reaches the threshold
    dollar = to_bars(t, kind="dollar", threshold=1e6)
    assert np.isclose((dollar["vwap"] * dollar["volume"]).sum(), (t["price"] * t["size"]).sum())
    with pytest.raises(finar.FinarError, match="threshold"):
        to_bars(t, kind="volume")


# --- read_trades: spellings, delimiters, sides, unknown layouts -------------------------------------

EMINI_ROWS = ("2013-09-01 17:00:00.083,1640.25,8\n2013-09-01 17:00:00.083,1640.25,1\n"
              "2013-09-01 17:00:00.090,1640.5,2\n2013-09-01 17:00:01.250,1640.25,3\n")


@pytest.mark.parametrize("size", ["Volume", "Qty", "Quantity", "Amount", "Size", "VOLUME", "qty", "sIzE"])
@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_size_spellings_and_delimiters(tmp_path, size, sep):
    path = tmp_path / "trades.csv"
    path.write_text(f"DateTime,Price,{size}\n{EMINI_ROWS}".replace(",", sep))
    trades, report = read_trades(path)
    assert trades["size"].tolist() == [8, 1, 2, 3]
    assert trades["price"].tolist() == [1640.25, 1640.25, 1640.5, 1640.25]
    assert trades["side"].tolist() == [1, 1, 1, -1]
    assert f"{size} -> size" in report.set_index("rule").loc["layout", "action"]


def test_decimal_comma_with_semicolons(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("Time;Price;Quantity\n2020-01-02 09:00:00;101,5;3\n2020-01-02 09:00:01;101,25;1\n")
    trades, _ = read_trades(path)
    assert trades["price"].tolist() == [101.5, 101.25]


def test_unknown_header_lists_columns_found_and_spellings_accepted(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("when,how_much,what\n2020-01-02,1,2\n")
    with raises_exactly(MissingColumnsError, r"missing \['time', 'price', 'size'\]; columns found: "
                                             r"\['when', 'how_much', 'what'\]; accepted spellings \(any "
                                             r"case\): time: time, date.*price: price.*size: size.*volume"):
        read_trades(path)


def test_headerless_file_of_an_unknown_layout(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text(EMINI_ROWS)
    with raises_exactly(DataError, r"no header line, and not a headerless layout finar knows.*"
                                                r"its 3 fields start \['2013-09-01 17:00:00.083', '1640.25', "
                                                r"'8'\]. Add a header line.*accepted spellings"):
        read_trades(path)


def test_unknown_sides_are_signed_by_the_tick_rule_and_counted():
    raw = _raw(6).assign(side=["buy", "N", "", "sell", "0", "junk"])
    raw["price"] = [100.0, 100.25, 100.0, 100.0, 100.5, 100.5]
    trades, report = clean(raw)
    assert trades["side"].tolist() == [1, 1, -1, -1, 1]
    r = _rows(report)
    assert (r["side_inferred"], r["bad_side"]) == (3, 1)
    assert report.set_index("rule").loc["side_inferred", "action"] == "unknown sides signed by the tick rule"


def test_tick_rule_runs_after_bad_prints_are_dropped():
    raw = _raw(5)
    raw["price"] = [100.0, 100.25, 150.0, 100.25, 100.25]  # 150 is a bad print
    trades, report = clean(raw)
    assert _rows(report)["outside_band"] == 1
    assert trades["side"].tolist() == [1, 1, 1, 1]  # not -1 after the 150 print


def test_frames_and_vendor_layouts_refuse_time_column(tmp_path):
    trades, report = read_trades(_raw())
    assert len(trades) == 50 and "qty -> size" in report.set_index("rule").loc["layout", "action"]
    path = tmp_path / "BTCUSDT-aggTrades-2024-01-02.csv"
    path.write_text("1,42301.5,0.01,1,1,1704153600012,True,True\n2,42301.6,0.02,2,2,1704153600015,False,True\n")
    with raises_exactly(DataError, "time_column= applies to files with a header of their own"):
        read_trades(path, time_column="when")
