"""AR(p) against statsmodels: identical likelihood, recovered parameters, order selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.ar_model import AutoReg

import finar
from finar.errors import DataError


def simulate_ar(phi: list[float], c: float, sigma: float, n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    p, burn = len(phi), 500
    y = np.zeros(n + burn)
    e = rng.normal(0, sigma, n + burn)
    for t in range(p, n + burn):
        y[t] = c + sum(phi[i] * y[t - 1 - i] for i in range(p)) + e[t]
    return pd.Series(y[burn:], index=pd.bdate_range("2000-01-03", periods=n, name="time"), name="y")


@pytest.fixture(scope="module")
def sp500() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"])


@pytest.mark.parametrize("order", [0, 1, 3, 7])
@pytest.mark.parametrize("trend", ["c", "n"])
def test_log_prob_sums_to_statsmodels_llf(order, trend, sp500):
    m = finar.models.AR(order=order, trend=trend).fit(sp500)
    lp = m.log_prob(sp500)
    ref = AutoReg(sp500.to_numpy(), lags=order, trend=trend).fit()
    assert lp.sum() == pytest.approx(ref.llf, rel=1e-8)
    assert lp.iloc[:order].isna().all() and lp.iloc[order:].notna().all()


def test_parameter_recovery():
    y = simulate_ar([0.5, -0.3], c=0.1, sigma=1.5, n=20_000, seed=0)
    m = finar.models.AR(order=2).fit(y)
    s = m.states_["y"]
    np.testing.assert_allclose(s["coefs"], [0.5, -0.3], atol=0.02)
    assert s["const"] == pytest.approx(0.1, abs=0.03)
    assert np.sqrt(s["sigma2"]) == pytest.approx(1.5, rel=0.02)


@pytest.mark.parametrize("ic", ["aic", "bic"])
def test_order_selection_finds_true_order(ic):
    y = simulate_ar([0.4, 0.0, -0.3], c=0.0, sigma=1.0, n=5000, seed=1)
    m = finar.models.AR(order=ic, max_order=8).fit(y)
    assert m.states_["y"]["order"] == 3 and m.min_context == 3


def test_sample_mean_matches_analytic_forecast():
    y = simulate_ar([0.6], c=0.2, sigma=1.0, n=3000, seed=2)
    m = finar.models.AR(order=1).fit(y)
    sc = m.sample(y, horizon=5, n_paths=50_000, seed=0)
    ref = AutoReg(y.to_numpy(), lags=1).fit()
    expected = ref.predict(start=len(y), end=len(y) + 4)
    np.testing.assert_allclose(sc.mean().iloc[:, 0].to_numpy(), expected, atol=0.02)
    # the h-step variance of an AR(1) is sigma2 * (1 - phi^(2h)) / (1 - phi^2)
    phi, s2 = m.states_["y"]["coefs"][0], m.states_["y"]["sigma2"]
    h = np.arange(1, 6)
    np.testing.assert_allclose(sc.paths[:, :, 0].var(axis=0), s2 * (1 - phi ** (2 * h)) / (1 - phi**2),
                               rtol=0.03)


def test_bootstrap_draws_fitted_residuals():
    y = simulate_ar([0.3], c=0.0, sigma=1.0, n=500, seed=3)
    m = finar.models.AR(order=1, innovations="bootstrap").fit(y)
    sc = m.sample(y, horizon=1, n_paths=200, seed=0)
    s = m.states_["y"]
    shocks = sc.paths[:, 0, 0] - (s["const"] + s["coefs"][0] * y.iloc[-1])
    resid = np.asarray(s["resid"])
    assert np.isin(np.round(shocks, 10), np.round(resid, 10)).all()


def test_bad_arguments():
    y = simulate_ar([0.3], 0.0, 1.0, 200, 0)
    with pytest.raises(DataError, match="order must be"):
        finar.models.AR(order="hqic").fit(y)
    with pytest.raises(DataError, match="order must be"):
        finar.models.AR(order=-1).fit(y)
    with pytest.raises(DataError, match="innovations"):
        finar.models.AR(innovations="student").fit(y)
