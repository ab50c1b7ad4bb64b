"""The steps the report and the CLI share: columns, data, periods, model specs, runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, MissingColumnsError
from finar.reporting.pipeline import (
    ConfigError,
    ModelSpec,
    SectionUnavailable,
    anomaly_split,
    backtest_period,
    default_test_period,
    load_data,
    pick_columns,
    run_backtest,
)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    index = pd.bdate_range("2020-01-01", periods=50, name="time")
    price = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 50)))
    return pd.DataFrame({"close": price, "adj_close": price * 0.9, "AAPL": price * 2}, index=index)


@pytest.mark.parametrize(("columns", "prefer", "expected"), [
    (None, None, ["adj_close"]),                   # the default: adjusted close
    (["Adj Close"], None, ["adj_close"]),          # spelled like a file header
    (["aapl"], None, ["AAPL"]),                    # an asset name, any case
    ("close", None, ["close"]),                    # one name as a string
    (["AAPL", "aapl"], None, ["AAPL"]),            # asked twice, taken once
    (None, ["AAPL"], ["AAPL"]),                    # a saved model's columns
    (None, ["MSFT"], ["adj_close"]),               # ... only when the data has them
])
def test_pick_columns(bars: pd.DataFrame, columns, prefer, expected) -> None:
    assert pick_columns(bars, columns, prefer=prefer).columns.tolist() == expected


def test_pick_columns_falls_back_to_close_then_every_column(bars: pd.DataFrame) -> None:
    assert pick_columns(bars.drop(columns="adj_close")).columns.tolist() == ["close"]
    panel = bars[["AAPL"]].assign(MSFT=bars["close"])
    assert pick_columns(panel).columns.tolist() == ["AAPL", "MSFT"]


def test_pick_columns_errors(bars: pd.DataFrame) -> None:
    with pytest.raises(MissingColumnsError, match=r"mine has no column\(s\) \['nothere'\].*'adj_close'"):
        pick_columns(bars, ["nothere"], source="mine")
    trades = pd.DataFrame({"price": [1.0], "size": [1.0]}, index=bars.index[:1])
    with pytest.raises(DataError, match="holds trades"):
        pick_columns(trades)


def test_load_data_labels_and_one_series(bars: pd.DataFrame) -> None:
    d = load_data("sp500", end="2017-12-31")
    assert d.label == "sp500[adj_close]" and d.returns.name == "adj_close"
    expected = finar.returns(finar.load("sp500", end="2017-12-31")["adj_close"])
    pd.testing.assert_series_equal(d.returns, expected)
    panel = load_data(bars[["AAPL"]].assign(B=1.0, C=1.0, D=1.0, E=1.0), start="2020-01-10")
    assert panel.label == "prices[5 columns]" and panel.returns.index[0] > pd.Timestamp("2020-01-10")
    with pytest.raises(DataError, match=r"backtest takes one price series; prices gives 5 columns.*--column"):
        panel.one_series("backtest")


def test_backtest_periods() -> None:
    r = load_data("sp500").returns
    assert default_test_period(r.index) == (pd.Timestamp("2015-01-01"), pd.Timestamp("2018-12-31"))
    short = r.loc["2018-01-01":]
    assert default_test_period(short.index)[0] == short.index[int(len(short) * 0.75)]  # the last quarter
    assert backtest_period(r.index, "2018-06-01", "2018-06-30") == (pd.Timestamp("2018-06-01"),
                                                                pd.Timestamp("2018-06-30"))
    with pytest.raises(SectionUnavailable, match="no test days between 2019-01-01"):
        backtest_period(r.index, "2019-01-01")
    with pytest.raises(SectionUnavailable, match="too few"):
        default_test_period(r.index[:1])


def test_anomaly_split() -> None:
    r = load_data("sp500", start="2012-01-01").returns
    train, test = anomaly_split(r, train_end="2017-12-31")
    assert train.index[-1] == pd.Timestamp("2017-12-29") and test.index[0] == pd.Timestamp("2018-01-02")
    assert len(train) + len(test) == len(r)
    train, test = anomaly_split(r)  # the days before P1's test period, then the period
    assert train.index[-1] < pd.Timestamp("2015-01-01") <= test.index[0]
    with pytest.raises(DataError, match="no days to score"):
        anomaly_split(r, train_end="2030-01-01")


def test_model_spec_names_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['foo'\].*dist='t'"):
        ModelSpec("g", "garch", {"foo": 1}).create()
    with pytest.raises(finar.FinarError, match="unknown model 'nope'"):
        ModelSpec("n", "nope").create()
    with pytest.raises(ConfigError, match="not a forecaster"):
        ModelSpec("h", "hawkes").create()


def test_run_backtest_is_finar_backtest() -> None:
    r = load_data("sp500", start="2016-01-01").returns
    spec = ModelSpec("GARCH-t", "garch", {"dist": "t"})
    bt = run_backtest(r, spec, "2018-10-01", None, refit_every=200, n_paths=50, seed=0)
    ref = finar.backtest(finar.models.GARCH(dist="t"), r, "2018-10-01", refit_every=200, n_paths=50, seed=0,
                         progress=False)
    assert bt.name == "GARCH-t"
    pd.testing.assert_frame_equal(bt.daily, ref.daily)
