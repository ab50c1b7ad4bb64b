"""Returns, alignment and training windows (finar/data/transforms.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import finar
from finar.data.transforms import align, check_length, returns, windows
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    MixedTimeZoneError,
    NonFiniteValueError,
    NonPositivePriceError,
    SeriesTooShortError,
    UnsortedIndexError,
)
from tests.conftest import raises_exactly as raises

INDEX = pd.date_range("2020-01-01", periods=4, freq="D", name="time")
PRICES = pd.Series([100.0, 110.0, 99.0, 99.0], index=INDEX, name="close")


# --- returns --------------------------------------------------------------------------------


def test_log_returns_in_percent_by_default():
    r = finar.returns(PRICES)
    expected = [100 * math.log(110 / 100), 100 * math.log(99 / 110), 0.0]
    np.testing.assert_allclose(r.to_numpy(), expected, rtol=1e-14, atol=1e-14)
    assert r.index.equals(INDEX[1:])
    assert r.name == "close"


def test_log_returns_as_fractions():
    r = returns(PRICES, "log", scale=1)
    np.testing.assert_allclose(r.to_numpy(), [0.09531017980432493, -0.10536051565782628, 0.0],
                               rtol=1e-14)


def test_simple_returns_in_percent_and_fractions():
    np.testing.assert_allclose(returns(PRICES, "simple").to_numpy(), [10.0, -10.0, 0.0],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(returns(PRICES, kind="simple", scale=1.0).to_numpy(),
                               [0.1, -0.1, 0.0], rtol=1e-12, atol=1e-15)


def test_periods():
    r = returns(PRICES, "simple", scale=1, periods=2)
    np.testing.assert_allclose(r.to_numpy(), [99 / 100 - 1, 99 / 110 - 1], rtol=1e-12)
    assert r.index.equals(INDEX[2:])
    r = returns(PRICES, periods=3)
    assert r.to_numpy() == pytest.approx([100 * math.log(0.99)])


def test_panel_returns_keep_columns():
    panel = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [10.0, 5.0, 5.0]}, index=INDEX[:3])
    r = returns(panel, "log", scale=1)
    assert isinstance(r, pd.DataFrame)
    assert r.columns.tolist() == ["a", "b"]
    np.testing.assert_allclose(r.to_numpy(), [[math.log(2), math.log(0.5)], [math.log(2), 0.0]])


def test_log_and_simple_agree():
    log = returns(PRICES, "log", scale=1)
    simple = returns(PRICES, "simple", scale=1)
    np.testing.assert_allclose(np.expm1(log), simple, rtol=1e-12, atol=1e-15)


def test_nan_price_is_refused_not_dropped():
    prices = PRICES.copy()
    prices.iloc[2] = np.nan
    with raises(NonFiniteValueError, match=r"price column 'close' has 1 missing, non-numeric or "
                                           r"infinite value\(s\) at 2020-01-03 00:00:00"):
        returns(prices)


def test_non_positive_price():
    prices = PRICES.copy()
    prices.iloc[1] = 0.0
    with raises(NonPositivePriceError, match=r"at 2020-01-02 00:00:00 \(first 0.0\); log returns"):
        returns(prices)


def test_unsorted_and_duplicate_timestamps():
    with raises(UnsortedIndexError, match=r"first at row 1"):
        returns(PRICES.iloc[[1, 0, 2, 3]])
    with raises(DuplicateTimestampError, match=r"at rows 0 and 1"):
        returns(PRICES.iloc[[0, 0, 2, 3]])


def test_one_price_is_too_short():
    with raises(SeriesTooShortError, match=r"returns needs at least 2 observations, got 1"):
        returns(PRICES.iloc[:1])
    with raises(SeriesTooShortError, match=r"returns needs at least 4 observations, got 3"):
        returns(PRICES.iloc[:3], periods=3)


def test_overflowing_simple_returns_are_refused():
    prices = pd.Series([1e-300, 1e300], index=INDEX[:2])
    with raises(NonFiniteValueError, match=r"returns overflow to infinity at 2020-01-02"):
        returns(prices, "simple")
    assert np.isfinite(returns(prices, "log")).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "pct"}, r"kind must be 'log' or 'simple', got 'pct'"),
    ({"scale": 0}, r"scale must be a positive number, got 0"),
    ({"scale": float("nan")}, r"scale must be a positive number, got nan"),
    ({"scale": "100"}, r"scale must be a positive number, got '100'"),
    ({"periods": 0}, r"periods must be a positive integer, got 0"),
    ({"periods": 1.5}, r"periods must be a positive integer, got 1.5"),
])
def test_bad_arguments(kwargs, message):
    with raises(DataError, match=message):
        returns(PRICES, **kwargs)


def test_repeated_column_names():
    panel = pd.DataFrame([[1.0, 2.0], [2.0, 3.0]], columns=["a", "a"], index=INDEX[:2])
    with raises(DataError, match=r"returns: column names repeat: \['a'\]"):
        returns(panel)


def test_not_a_series():
    with raises(DataError, match=r"expected a pandas Series or DataFrame, got list"):
        returns([1.0, 2.0])


def test_check_length():
    check_length(np.zeros(5), 5, what="AR(4)")
    with raises(SeriesTooShortError, match=r"AR\(4\) needs at least 6 observations, got 5"):
        check_length(np.zeros(5), 6, what="AR(4)")


# --- align ----------------------------------------------------------------------------------


A = pd.Series([1.0, 2.0, 3.0], index=INDEX[:3], name="a")
B = pd.Series([20.0, 30.0, 40.0], index=INDEX[1:], name="b")


def test_align_inner():
    out = align(A, B)
    assert out.index.equals(INDEX[1:3])
    assert out.columns.tolist() == ["a", "b"]
    assert out.to_numpy().tolist() == [[2.0, 20.0], [3.0, 30.0]]
    assert out.attrs["dropped"] == {"a": 1, "b": 1}


def test_align_outer_leaves_nan_for_the_caller():
    out = align(A, B, how="outer")
    assert out.index.equals(INDEX)
    assert np.isnan(out.loc[INDEX[0], "b"]) and np.isnan(out.loc[INDEX[3], "a"])
    assert out.attrs["dropped"] == {"a": 0, "b": 0}


def test_align_dropped_counts_rows_not_nans():
    a = A.copy()
    a.iloc[1] = np.nan  # a gap the input already had: kept, and not a dropped row
    out = align(a, B, how="outer")
    assert out.attrs["dropped"] == {"a": 0, "b": 0}
    assert np.isnan(out.loc[INDEX[1], "a"])
    assert align(a, B).attrs["dropped"] == {"a": 1, "b": 1}


def test_align_names_and_frames():
    out = align(A, B, names=["x", "y"])
    assert out.columns.tolist() == ["x", "y"]
    panel = align(pd.DataFrame({"p": A, "q": A}), B)
    assert panel.columns.tolist() == ["p", "q", "b"]


def test_align_bad_input():
    with raises(DataError, match=r"column names repeat across inputs: \['a'\]; pass names="):
        align(A, A)
    with raises(DataError, match=r"names= has 1 name\(s\) for 2 series"):
        align(A, B, names=["x"])
    with raises(DataError, match=r"how must be 'inner' or 'outer', got 'left'"):
        align(A, B, how="left")
    with raises(DataError, match=r"align needs at least one series"):
        align()


def test_align_refuses_repeated_or_unsorted_timestamps():
    with raises(DuplicateTimestampError, match=r"at rows 0 and 1"):
        align(A.iloc[[0, 0, 1]], B)
    with raises(UnsortedIndexError, match=r"first at row 1"):
        align(A.iloc[[1, 0, 2]], B)


def test_align_refuses_aware_with_naive():
    with raises(MixedTimeZoneError, match=r"some inputs have zone-aware timestamps"):
        align(A, B.tz_localize("UTC"))


# --- windows --------------------------------------------------------------------------------


def test_windows_shape_content_and_dtype():
    x = pd.Series(np.arange(6.0), index=pd.date_range("2020-01-01", periods=6))
    w = windows(x, 3)
    assert w.shape == (4, 3, 1)
    assert w.dtype == np.float32
    assert w[:, :, 0].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert w.flags["C_CONTIGUOUS"]


def test_windows_of_a_panel():
    x = pd.DataFrame({"a": np.arange(5.0), "b": 10 + np.arange(5.0)})
    w = windows(x, 2, stride=2)
    assert w.shape == (2, 2, 2)
    assert w[1].tolist() == [[2, 12], [3, 13]]


def test_windows_stride():
    w = windows(np.arange(7.0), 3, stride=2)
    assert w[:, :, 0].tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert windows(np.arange(8.0), 3, stride=2).shape == (3, 3, 1)  # row 7 is in no window


def test_windows_are_a_copy():
    x = np.arange(4.0)
    w = windows(x, 2)
    w[0, 0, 0] = 99
    assert x[0] == 0


def test_windows_exactly_as_long_as_the_series():
    assert windows(np.arange(3.0), 3).shape == (1, 3, 1)


def test_windows_too_short():
    with raises(SeriesTooShortError, match=r"windows of length 5 needs at least 5 observations, "
                                           r"got 4"):
        windows(np.arange(4.0), 5)


def test_windows_refuse_non_finite_values():
    with raises(NonFiniteValueError, match=r"windows: non-finite values at rows 1, 3"):
        windows(np.array([1.0, np.nan, 2.0, np.inf]), 2)
    with raises(NonFiniteValueError, match=r"beyond float32's range at rows 0"):
        windows(np.array([1e39, 1.0]), 1)


@pytest.mark.parametrize(("args", "message"), [
    ((np.zeros((2, 2, 2)), 1), r"1-D or 2-D data, got shape \(2, 2, 2\)"),
    ((np.arange(3.0), 0), r"length and stride must be positive integers, got 0, 1"),
    ((np.arange(3.0), float("nan")), r"positive integers, got nan, 1"),
    ((np.array(["a", "b"]), 1), r"windows needs numbers"),
])
def test_windows_bad_arguments(args, message):
    with raises(DataError, match=message):
        windows(*args)
