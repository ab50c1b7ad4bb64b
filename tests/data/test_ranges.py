"""Range-based variance estimators: hand computation, Monte Carlo unbiasedness, bad bars."""

import math

import numpy as np
import pandas as pd
import pytest

import finar
from finar.data import garman_klass, parkinson, range_measures, rogers_satchell, yang_zhang
from finar.errors import DataError, MissingColumnsError, NonPositivePriceError


@pytest.fixture
def bars():
    idx = pd.date_range("2020-01-01", periods=3, freq="D", name="time")
    return pd.DataFrame({"open": [100.0, 101.0, 99.0], "high": [102.0, 103.0, 100.0],
                         "low": [99.0, 100.0, 97.0], "close": [101.0, 100.5, 98.0]}, index=idx)


def test_daily_estimators_match_hand_computation(bars):
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    pk = np.log(h / lo) ** 2 / (4 * math.log(2)) * 1e4
    gk = (0.5 * np.log(h / lo) ** 2 - (2 * math.log(2) - 1) * np.log(c / o) ** 2) * 1e4
    rs = (np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)) * 1e4
    np.testing.assert_allclose(parkinson(bars).to_numpy(), pk, rtol=1e-12)
    np.testing.assert_allclose(garman_klass(bars).to_numpy(), gk, rtol=1e-12)
    np.testing.assert_allclose(rogers_satchell(bars).to_numpy(), rs, rtol=1e-12)
    assert parkinson(bars, scale=1.0).iloc[0] == pytest.approx(pk[0] / 1e4)


def test_yang_zhang_window_by_hand(bars):
    yz = yang_zhang(bars, window=2)
    assert yz.iloc[:2].isna().all()
    o = np.log(bars["open"] / bars["close"].shift(1)).to_numpy()[1:]
    c = np.log(bars["close"] / bars["open"]).to_numpy()[1:]
    rs = rogers_satchell(bars, scale=1.0).to_numpy()[1:]
    k = 0.34 / (1.34 + 3 / 1)
    expected = (np.var(o, ddof=1) + k * np.var(c, ddof=1) + (1 - k) * rs.mean()) * 1e4
    assert yz.iloc[2] == pytest.approx(expected, rel=1e-12)


def test_estimators_unbiased_for_brownian_motion():
    """Bars from a finely simulated driftless Brownian motion: each estimator's mean is sigma^2."""
    rng = np.random.default_rng(0)
    n_days, steps, sigma = 3000, 2000, 0.01
    paths = np.cumsum(rng.normal(0, sigma / math.sqrt(steps), (n_days, steps)), axis=1)
    logp = np.concatenate([np.zeros((n_days, 1)), paths], axis=1)
    idx = pd.date_range("2000-01-01", periods=n_days, freq="D")
    bars = pd.DataFrame({"open": np.exp(logp[:, 0]), "high": np.exp(logp.max(1)), "low": np.exp(logp.min(1)),
                         "close": np.exp(logp[:, -1])}, index=idx)
    for f in (parkinson, garman_klass, rogers_satchell):
        # discrete monitoring biases the range down by a few percent (about 3% at 2,000 steps)
        assert f(bars, scale=1.0).mean() == pytest.approx(sigma**2, rel=0.06), f.__name__


def test_bad_bars_name_the_rows(bars):
    bad = bars.copy()
    bad.loc[bad.index[1], "high"] = 99.0  # below the low of 100
    with pytest.raises(DataError, match=r"high < low at .*2020-01-02"):
        parkinson(bad)
    bad = bars.copy()
    bad.loc[bad.index[2], "close"] = 105.0
    with pytest.raises(DataError, match="close outside"):
        garman_klass(bad)
    bad = bars.copy()
    bad.loc[bad.index[0], "low"] = -1.0
    with pytest.raises(NonPositivePriceError):
        rogers_satchell(bad)
    with pytest.raises(MissingColumnsError, match="missing \\['high', 'low'\\]"):
        parkinson(bars[["open", "close"]])
    with pytest.raises(DataError, match="unknown range measure"):
        range_measures(bars, "atr")
    with pytest.raises(DataError, match="window"):
        yang_zhang(bars, window=1)


def test_range_measures_on_bundled_data():
    px = finar.load("sp500")
    x = range_measures(px, ["parkinson", "garman_klass"], log=True)
    assert list(x.columns) == ["log_parkinson", "log_garman_klass"]
    assert x.index.equals(px.index) and np.isfinite(x.to_numpy()).all()
