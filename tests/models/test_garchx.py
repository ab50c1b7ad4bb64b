"""GARCH-X / GJR-X: the likelihood equals a hand-written recursion and arch's at delta = 0."""

import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from scipy import stats

import finar
from finar.errors import DataError
from finar.models.garchx import GARCHX


@pytest.fixture(scope="module")
def data():
    px = finar.load("sp500").loc["2009-05":"2013"]
    r = finar.returns(px["adj_close"])
    x = finar.data.parkinson(px).loc[r.index].to_frame()
    return r, x


@pytest.fixture(scope="module")
def fitted(data):
    r, x = data
    return GARCHX(vol="gjr", dist="t").fit(r, exog=x)


def _hand_loglik(theta, y, x, backcast, x_backcast):
    """A plain loop over days: GJR-X variance and the standardised Student-t density."""
    mu, omega, alpha, gamma, beta, delta, nu = theta
    out, s2_prev, e2_prev, neg_prev, x_prev = [], backcast, backcast, 0.5, x_backcast
    for t in range(len(y)):
        s2 = omega + (alpha + gamma * neg_prev) * e2_prev + beta * s2_prev + delta * x_prev
        e = y[t] - mu
        sd = math.sqrt(s2 * (nu - 2) / nu)  # scale of the t with unit variance
        out.append(stats.t.logpdf(e / sd, nu) - math.log(sd))
        s2_prev, e2_prev, neg_prev, x_prev = s2, e * e, float(e < 0), x[t]
    return np.array(out)


def test_log_prob_equals_hand_recursion(data, fitted):
    r, x = data
    st = fitted.states_[r.name]
    theta = st["params"]["values"]
    assert st["params"]["names"] == ["mu", "omega", "alpha", "gamma", "beta", "delta[0]", "nu"]
    ref = _hand_loglik(theta, r.to_numpy(), x.iloc[:, 0].to_numpy(), st["backcast"], st["x_backcast"][0])
    np.testing.assert_allclose(fitted.log_prob(r, exog=x).to_numpy(), ref, rtol=1e-10, atol=1e-10)
    assert fitted.log_prob(r, exog=x).sum() == pytest.approx(st["loglikelihood"], rel=1e-10)


def test_without_covariates_matches_arch(data):
    r, _ = data
    m = GARCHX(vol="gjr", dist="t").fit(r)
    res = arch_model(r.to_numpy(), vol="GARCH", o=1, dist="t", rescale=False).fit(disp="off")
    # same likelihood at arch's parameters, and our optimum is at least as good
    st = m.states_[r.name]
    theta = np.asarray(res.params, dtype=float)
    ll = m._loglik(theta, r.to_numpy(), None, st["backcast"], np.zeros(0))
    assert ll.sum() == pytest.approx(res.loglikelihood, rel=1e-9)
    assert st["loglikelihood"] >= res.loglikelihood - 1e-3


def test_range_covariate_improves_the_fit(data, fitted):
    r, _ = data
    plain = GARCHX(vol="gjr", dist="t").fit(r)
    assert fitted.states_[r.name]["loglikelihood"] > plain.states_[r.name]["loglikelihood"] + 2
    delta = fitted.states_[r.name]["params"]["values"][5]
    assert delta > 0


def test_causal_in_returns_and_covariates(data, fitted):
    r, x = data
    lp = fitted.log_prob(r, exog=x)
    cut = 300
    r2, x2 = r.copy(), x.copy()
    r2.iloc[cut + 1:] = 5.0
    x2.iloc[cut:] = 50.0  # the covariate of day `cut` conditions day cut + 1 only
    lp2 = fitted.log_prob(r2, exog=x2)
    np.testing.assert_array_equal(lp.iloc[:cut + 1].to_numpy(), lp2.iloc[:cut + 1].to_numpy())
    assert lp.iloc[cut + 1] != lp2.iloc[cut + 1]


def test_sample_uses_future_covariates_and_seeds(data, fitted):
    r, x = data
    fut = pd.DataFrame({x.columns[0]: [0.1] * 9})
    calm = fitted.sample(r, horizon=10, n_paths=2000, seed=1, exog=x, exog_future=fut)
    wild = fitted.sample(r, horizon=10, n_paths=2000, seed=1, exog=x, exog_future=fut * 100)
    again = fitted.sample(r, horizon=10, n_paths=2000, seed=1, exog=x, exog_future=fut)
    np.testing.assert_array_equal(calm.paths, again.paths)
    np.testing.assert_array_equal(calm.paths[:, 0], wild.paths[:, 0])  # day 1 uses the context only
    assert wild.paths[:, -1].std() > 2 * calm.paths[:, -1].std()
    with pytest.raises(DataError, match="exog_future"):
        fitted.sample(r, horizon=10, n_paths=10, seed=1, exog=x)


def test_predictive_matches_log_prob(data, fitted):
    r, x = data
    pred = fitted.predictive(r, exog=x)
    np.testing.assert_allclose(pred.log_prob(r.to_numpy()), fitted.log_prob(r, exog=x).to_numpy(), rtol=1e-10)


def test_bad_covariates(data):
    r, x = data
    with pytest.raises(DataError, match=">= 0"):
        GARCHX().fit(r, exog=-x)
    with pytest.raises(DataError, match="rows"):
        GARCHX().fit(r, exog=x.iloc[1:])
    with pytest.raises(DataError, match="vol"):
        GARCHX(vol="egarch").fit(r)
