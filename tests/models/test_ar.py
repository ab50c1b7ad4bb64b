"""AR(p) against statsmodels: identical likelihood, recovered parameters, order selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
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


# ---- covariates: x_{t-1} in the mean of r_t ----------------------------------------------------

def simulate_arx(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """r_t = 0.1 + 0.3 r_{t-1} + 0.8 x1_{t-1} - 0.5 x2_{t-1} + N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.1 + 0.3 * y[t - 1] + 0.8 * x[t - 1, 0] - 0.5 * x[t - 1, 1] + rng.normal()
    idx = pd.bdate_range("2001-01-01", periods=n, name="time")
    return pd.Series(y, index=idx, name="y"), pd.DataFrame(x, index=idx, columns=["x1", "x2"])


@pytest.mark.parametrize("order", [0, 1, 2])
def test_exog_log_prob_is_the_hand_written_recursion(order):
    y, x = simulate_arx(3000, seed=5)
    m = finar.models.AR(order=order).fit(y, exog=x)
    s = m.states_["y"]
    assert m.min_context == max(order, 1)
    lp = m.log_prob(y, exog=x).to_numpy()
    v, xv, k = y.to_numpy(), x.to_numpy(), max(order, 1)
    mu = np.full(len(v), np.nan)
    for t in range(k, len(v)):
        ar = sum(s["coefs"][i] * v[t - 1 - i] for i in range(order))
        mu[t] = s["const"] + ar + xv[t - 1] @ s["exog_coefs"]
    np.testing.assert_allclose(lp[k:], stats.norm.logpdf(v[k:], mu[k:], np.sqrt(s["sigma2"])), rtol=1e-12)
    assert np.isnan(lp[:k]).all()
    # the fit is statsmodels' AutoReg with the covariates lagged one day and the first day held back
    lagged = np.vstack([np.zeros((1, 2)), xv[:-1]])
    ref = AutoReg(v, lags=order, exog=lagged, hold_back=k).fit()
    assert lp[k:].sum() == pytest.approx(ref.llf, rel=1e-10)
    if order:
        assert s["coefs"][0] == pytest.approx(0.3, abs=0.05)
    np.testing.assert_allclose(s["exog_coefs"], [0.8, -0.5], atol=0.05)


def test_exog_conditions_the_next_day_only():
    y, x = simulate_arx(400, seed=6)
    m = finar.models.AR(order=1).fit(y, exog=x)
    lp = m.log_prob(y, exog=x).to_numpy()
    bumped = x.copy()
    bumped.iloc[200] += 3.0
    lp2 = m.log_prob(y, exog=bumped).to_numpy()
    changed = np.flatnonzero(~np.isclose(lp, lp2, equal_nan=True))
    assert changed.tolist() == [201]
    pr = m.predictive(y, exog=x)
    np.testing.assert_allclose(pr.log_prob(y.to_numpy())[1:], lp[1:], rtol=1e-12)
    with pytest.raises(DataError, match="fitted with exog"):
        m.log_prob(y)
    with pytest.raises(DataError, match="exactly the rows"):
        m.log_prob(y, exog=x.iloc[1:])
    with pytest.raises(DataError, match="without exog"):
        finar.models.AR(order=1).fit(y).log_prob(y, exog=x)


def test_exog_order_selection_and_sampling_with_future_rows():
    y, x = simulate_arx(3000, seed=7)
    m = finar.models.AR(order="bic", max_order=4).fit(y, exog=x)
    s = m.states_["y"]
    assert s["order"] == 1
    future = pd.DataFrame([[1.0, 0.0], [0.0, 2.0]], columns=["x1", "x2"])
    sc = m.sample(y, horizon=3, n_paths=40_000, seed=0, exog=x, exog_future=future)
    c, phi, beta = s["const"], s["coefs"][0], np.asarray(s["exog_coefs"])
    m1 = c + phi * y.iloc[-1] + x.iloc[-1].to_numpy() @ beta  # day 1: the context's last row
    m2 = c + phi * m1 + future.iloc[0].to_numpy() @ beta  # days 2, 3: exog_future rows 0, 1
    m3 = c + phi * m2 + future.iloc[1].to_numpy() @ beta
    np.testing.assert_allclose(sc.paths[:, :, 0].mean(axis=0), [m1, m2, m3], atol=0.03)
    with pytest.raises(DataError, match="exog_future"):
        m.sample(y, horizon=3, n_paths=10, seed=0, exog=x)
    one = m.sample(y, horizon=1, n_paths=10, seed=0, exog=x)  # one day needs no future rows
    assert one.paths.shape == (10, 1, 1)
