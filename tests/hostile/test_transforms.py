"""Transforms and range measures of :mod:`finar.data` on hostile input, and their exact values on
inputs small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import finar
from finar.data import align, garman_klass, parkinson, range_measures, rogers_satchell, windows, yang_zhang
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    MissingColumnsError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    SeriesTooShortError,
    UnsortedIndexError,
)
from tests.hostile.conftest import business_days, raises_exactly

MEASURES = {"parkinson": parkinson, "garman_klass": garman_klass, "rogers_satchell": rogers_satchell,
            "yang_zhang": lambda b, **kw: yang_zhang(b, window=2, **kw)}


def _bars(n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=business_days(n))


# ---- range measures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MEASURES))
def test_range_measure_needs_the_range(name):
    with raises_exactly(MissingColumnsError, "high"):
        MEASURES[name](_bars()[["close"]])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_range_measure_refuses_high_below_low(name):
    bars = _bars()
    bars.iloc[2, bars.columns.get_loc("high")] = bars["low"].iloc[2] * 0.9
    with raises_exactly(DataError, "high < low"):
        MEASURES[name](bars)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_range_measure_refuses_a_non_positive_price(name):
    bars = _bars()
    bars.iloc[1, bars.columns.get_loc("low")] = 0.0
    with raises_exactly(NonPositivePriceError, "non-positive"):
        MEASURES[name](bars)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_range_measure_refuses_a_missing_price(name):
    bars = _bars()
    bars.iloc[3, bars.columns.get_loc("high")] = np.nan
    with raises_exactly(NonFiniteValueError, str(bars.index[3].date())):
        MEASURES[name](bars)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_range_measure_refuses_unsorted_and_repeated_days(name):
    bars = _bars()
    with raises_exactly(UnsortedIndexError, "sorted"):
        MEASURES[name](bars.iloc[::-1])
    with raises_exactly(DuplicateTimestampError, str(bars.index[1].date())):
        MEASURES[name](pd.concat([bars.iloc[:2], bars.iloc[1:]]))


@pytest.mark.parametrize("name", sorted(MEASURES))
@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), "100"])
def test_range_measure_refuses_a_bad_scale(name, scale):
    with raises_exactly(DataError, "scale"):
        MEASURES[name](_bars(), scale=scale)


def test_range_measures_refuse_an_unknown_name():
    with raises_exactly(DataError, "unknown range measure"):
        range_measures(_bars(), "atr")


@pytest.mark.parametrize("window", [1, 0, 2.5, True])
def test_yang_zhang_refuses_a_bad_window(window):
    with raises_exactly(DataError, "window"):
        yang_zhang(_bars(), window=window)


def test_range_measure_refuses_a_series():
    with raises_exactly(DataError, "DataFrame"):
        parkinson(_bars()["close"])


def test_range_measures_match_their_formulas():
    bars = pd.DataFrame({"open": [100.0], "high": [110.0], "low": [95.0], "close": [105.0]},
                        index=business_days(1))
    hl, co = math.log(110 / 95), math.log(105 / 100)
    assert parkinson(bars).iloc[0] == pytest.approx(1e4 * hl**2 / (4 * math.log(2)))
    assert garman_klass(bars).iloc[0] == pytest.approx(1e4 * (0.5 * hl**2 - (2 * math.log(2) - 1) * co**2))
    h, lo = math.log(110 / 100), math.log(95 / 100)
    assert rogers_satchell(bars, scale=1).iloc[0] == pytest.approx(h * (h - co) + lo * (lo - co))


def test_a_day_without_range_has_zero_variance():
    flat = pd.DataFrame(10.0, index=business_days(2), columns=["open", "high", "low", "close"])
    assert (parkinson(flat) == 0).all() and (garman_klass(flat) == 0).all()


# ---- align and windows ------------------------------------------------------------------------------
def test_align_refuses_an_unknown_join():
    with raises_exactly(DataError, "how"):
        align(pd.Series([1.0], index=business_days(1)), how="left")


def test_align_refuses_aware_with_naive_timestamps():
    naive = pd.Series([1.0, 2.0], index=business_days(2))
    aware = pd.Series([1.0, 2.0], index=business_days(2).tz_localize("UTC"))
    with raises_exactly(MixedTimeZoneError, "zone"):
        align(naive, aware)


def test_align_refuses_repeated_names():
    s = pd.Series([1.0, 2.0], index=business_days(2), name="x")
    with raises_exactly(DataError, "repeat"):
        align(s, s)


def test_align_counts_what_inner_drops():
    a = pd.Series([1.0, 2.0, 3.0], index=business_days(3), name="a")
    b = pd.Series([5.0, 6.0], index=business_days(2, "2010-01-04"), name="b")
    out = align(a, b)
    assert out.index.equals(business_days(2, "2010-01-04")) and out.attrs["dropped"] == {"a": 1, "b": 0}


@pytest.mark.parametrize(("length", "stride"), [(0, 1), (3, 0), (-1, 1), (2.5, 1)])
def test_windows_refuse_bad_sizes(length, stride):
    with raises_exactly(DataError, "positive integers"):
        windows(np.arange(10.0), length, stride=stride)


def test_windows_refuse_a_series_shorter_than_a_window():
    with raises_exactly(SeriesTooShortError, "at least 11"):
        windows(np.arange(10.0), 11)


def test_windows_refuse_nan_and_float32_overflow():
    with raises_exactly(NonFiniteValueError, "rows 2"):
        windows(np.array([1.0, 2.0, np.nan]), 2)
    with raises_exactly(NonFiniteValueError, "float32"):
        windows(np.array([1.0, 1e39]), 1)


def test_windows_refuse_text():
    with raises_exactly(DataError, "numbers"):
        windows(np.array(["a", "b"]), 1)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_range_measures_of_valid_bars_are_finite_and_non_negative(n, seed):
    """Valid bars always give a value per day (never a refusal): Parkinson >= 0, Garman-Klass and
    Rogers-Satchell finite; a loader that refused everything fails here."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * np.exp(rng.exponential(0.01, n))
    low = np.minimum(open_, close) * np.exp(-rng.exponential(0.01, n))
    bars = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=business_days(n))
    out = range_measures(bars, ["parkinson", "garman_klass", "rogers_satchell"])
    assert out.shape == (n, 3) and np.isfinite(out.to_numpy()).all()
    assert (out["parkinson"] >= 0).all() and (out["rogers_satchell"] >= -1e-12).all()
    assert finar.returns(bars["close"]).shape == (n - 1,)
