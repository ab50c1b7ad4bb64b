"""Realized GARCH: likelihoods equal hand-written loops, parameters are recovered, no look-ahead,
bad measures are refused, and scenarios simulate their own measure."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finar
from finar.errors import DataError
from finar.models.realized import RealizedGARCH

NAMES = ["mu", "omega", "beta", "gamma", "xi", "phi", "tau1", "tau2", "sigma_u"]


@pytest.fixture(scope="module")
def data():
    px = finar.load("sp500").loc["2009-05":"2013"]
    r = finar.returns(px["adj_close"])
    x = finar.data.parkinson(px).loc[r.index].to_frame()
    return r, x


@pytest.fixture(scope="module")
def fitted(data):
    r, x = data
    return {d: RealizedGARCH(dist=d).fit(r, exog=x) for d in ("normal", "t")}


def _hand_loglik(theta, y, x, log_h0, log_x0, dist):
    """A plain loop over days: the returns' log density and the Gaussian density of log x_t."""
    mu, omega, beta, gamma, xi, phi, tau1, tau2, sigma_u = theta[:9]
    ll_r, ll_x, lh_prev, lx_prev = [], [], log_h0, log_x0
    for t in range(len(y)):
        lh = omega + beta * lh_prev + gamma * lx_prev
        h, e = math.exp(lh), y[t] - mu
        if dist == "normal":
            ll_r.append(-0.5 * (math.log(2 * math.pi) + lh + e * e / h))
        else:
            nu = theta[9]
            sd = math.sqrt(h * (nu - 2) / nu)  # scale of the t with variance h
            ll_r.append(stats.t.logpdf(e / sd, nu) - math.log(sd))
        z, lx = e / math.sqrt(h), math.log(x[t])
        u = lx - xi - phi * lh - tau1 * z - tau2 * (z * z - 1)
        ll_x.append(-0.5 * (math.log(2 * math.pi) + 2 * math.log(sigma_u) + (u / sigma_u) ** 2))
        lh_prev, lx_prev = lh, lx
    return np.array(ll_r), np.array(ll_x)


def _stationary_log_x(theta, dist):
    """Mean and std of log x_t implied by the parameters (``E z^3 = 0``; ``Var z^2`` of the law)."""
    _, omega, beta, gamma, xi, phi, tau1, tau2, sigma_u = theta[:9]
    pi = beta + phi * gamma
    var_z2 = 2.0 if dist == "normal" else 3 * (theta[9] - 2) / (theta[9] - 4) - 1
    var_w = tau1**2 + tau2**2 * var_z2 + sigma_u**2  # the shock of log x given log h
    mean_lh = (omega + gamma * xi) / (1 - pi)
    var_lh = gamma**2 * var_w / (1 - pi**2)
    return xi + phi * mean_lh, math.sqrt(phi**2 * var_lh + var_w)


@pytest.mark.parametrize("dist", ["normal", "t"])
def test_log_prob_and_joint_likelihood_equal_hand_loop(data, fitted, dist):
    r, x = data
    m = fitted[dist]
    st = m.states_[r.name]
    assert st["params"]["names"] == NAMES + (["nu"] if dist == "t" else [])
    ll_r, ll_x = _hand_loglik(st["params"]["values"], r.to_numpy(), x.iloc[:, 0].to_numpy(), st["log_h0"],
                              st["log_x0"], dist)
    lp = m.log_prob(r, exog=x)
    np.testing.assert_allclose(lp.to_numpy(), ll_r, rtol=1e-10, atol=1e-12)
    joint = m.joint_loglikelihood(r, exog=x).to_numpy()
    np.testing.assert_allclose(joint, ll_r + ll_x, rtol=1e-10, atol=1e-12)
    assert lp.sum() == pytest.approx(st["loglikelihood"], rel=1e-10)
    assert (ll_r + ll_x).sum() == pytest.approx(st["joint_loglikelihood"], rel=1e-10)
    pred = m.predictive(r, exog=x)
    np.testing.assert_allclose(pred.log_prob(r.to_numpy()), ll_r, rtol=1e-10)
    np.testing.assert_array_equal(m.conditional_volatility(r, exog=x).to_numpy(), pred.std())


def test_fit_is_a_maximum_of_the_joint_likelihood(data, fitted):
    """Moving any parameter a little from the fit lowers the joint likelihood (within the constraints)."""
    r, x = data
    m = fitted["t"]
    st = m.states_[r.name]
    theta = np.asarray(st["params"]["values"])
    y, lx = r.to_numpy(), np.log(x.iloc[:, 0].to_numpy())

    def joint(th):
        ll_r, ll_x, _ = m._parts(th, y, lx, st["log_h0"], st["log_x0"])
        return ll_r.sum() + ll_x.sum()

    best = joint(theta)
    assert best == pytest.approx(st["joint_loglikelihood"], rel=1e-12)
    for i in range(len(theta)):
        for step in (-1e-3, 1e-3):
            th = theta.copy()
            th[i] += step * max(abs(th[i]), 0.1)
            assert joint(th) <= best + 1e-6, NAMES[i] if i < 9 else "nu"
    assert abs(theta[2] + theta[5] * theta[3]) < 1


def simulate_realized(n, theta, dist, seed, burn=500):
    """Realized GARCH returns and measures, plain numpy, started at the stationary mean of log h."""
    mu, omega, beta, gamma, xi, phi, tau1, tau2, sigma_u = theta[:9]
    rng = np.random.default_rng(seed)
    m = n + burn
    if dist == "normal":
        z = rng.standard_normal(m)
    else:
        nu = theta[9]
        z = rng.standard_t(nu, m) / math.sqrt(nu / (nu - 2))
    u = rng.normal(0, sigma_u, m)
    r, lx = np.empty(m), np.empty(m)
    lh = (omega + gamma * xi) / (1 - beta - gamma * phi)
    for t in range(m):
        r[t] = mu + math.exp(lh / 2) * z[t]
        lx[t] = xi + phi * lh + tau1 * z[t] + tau2 * (z[t] ** 2 - 1) + u[t]
        lh = omega + beta * lh + gamma * lx[t]
    idx = pd.bdate_range("2001-01-01", periods=n, name="time")
    return pd.Series(r[burn:], idx, name="sim"), pd.DataFrame({"rv": np.exp(lx[burn:])}, index=idx)


TRUE = {"mu": 0.03, "omega": 0.105, "beta": 0.6, "gamma": 0.35, "xi": -0.3, "phi": 1.0, "tau1": -0.08,
        "tau2": 0.1, "sigma_u": 0.4, "nu": 8.0}
# four to five standard errors of the estimates at 4,000 days (30 simulations of each law)
TOL = {"mu": 0.06, "omega": 0.05, "beta": 0.07, "gamma": 0.08, "xi": 0.15, "phi": 0.13, "tau1": 0.03,
       "tau2": 0.025, "sigma_u": 0.025, "nu": 4.0}


@pytest.mark.parametrize("dist", ["normal", "t"])
def test_parameter_recovery(dist):
    names = NAMES + (["nu"] if dist == "t" else [])
    theta = [TRUE[k] for k in names]
    r, x = simulate_realized(4000, theta, dist, seed=3)
    m = RealizedGARCH(dist=dist).fit(r, exog=x)
    got = dict(zip(names, m.states_["sim"]["params"]["values"], strict=True))
    for k in names:
        assert got[k] == pytest.approx(TRUE[k], abs=TOL[k]), (k, got[k])


def test_causal_in_returns_and_measures(data, fitted):
    r, x = data
    m = fitted["t"]
    lp = m.log_prob(r, exog=x)
    cut = 300
    r2, x2 = r.copy(), x.copy()
    r2.iloc[cut + 1:] = 5.0
    x2.iloc[cut:] = 50.0  # the measure of day `cut` conditions day cut + 1 only
    lp2 = m.log_prob(r2, exog=x2)
    np.testing.assert_array_equal(lp.iloc[:cut + 1].to_numpy(), lp2.iloc[:cut + 1].to_numpy())
    assert lp.iloc[cut + 1] != lp2.iloc[cut + 1]
    # the predictive of day t does not use r_t (nor later returns): the variance is driven by x alone
    r3 = r.copy()
    r3.iloc[cut:] *= 3
    np.testing.assert_array_equal(m.predictive(r3, exog=x).std(), m.predictive(r, exog=x).std())


def test_bad_measures_are_refused(data):
    r, x = data
    zero = x.copy()
    zero.iloc[[7, 9]] = 0.0
    with pytest.raises(DataError, match=rf"2 of {len(x)} rows.*{x.index[7].date()}.*{x.index[9].date()}"
                                        r".*high == low"):
        RealizedGARCH().fit(r, exog=zero)
    neg = x.copy()
    neg.iloc[12] = -1.0
    with pytest.raises(DataError, match=f"1 of {len(x)} rows.*{x.index[12].date()}"):
        RealizedGARCH().fit(r, exog=neg)
    nan = x.copy()
    nan.iloc[5] = np.nan
    with pytest.raises(DataError, match=str(x.index[5].date())):
        RealizedGARCH().fit(r, exog=nan)
    with pytest.raises(DataError, match="realized measure"):
        RealizedGARCH().fit(r)
    with pytest.raises(DataError, match="one realized measure"):
        RealizedGARCH().fit(r, exog=pd.concat([x, x.rename(columns={"parkinson": "p2"})], axis=1))
    with pytest.raises(DataError, match="dist"):
        RealizedGARCH(dist="skewt").fit(r, exog=x)


def test_bad_measures_are_refused_when_scoring(data, fitted):
    r, x = data
    m = fitted["normal"]
    zero = x.copy()
    zero.iloc[20] = 0.0
    with pytest.raises(DataError, match=f"log_prob exog.*{x.index[20].date()}"):
        m.log_prob(r, exog=zero)
    with pytest.raises(DataError, match="exog"):
        m.log_prob(r)
    with pytest.raises(DataError, match="exog"):
        m.sample(r, horizon=5, n_paths=10, seed=0)


def test_sample_needs_no_future_measures(data, fitted):
    r, x = data
    m = fitted["t"]
    a = m.sample(r, horizon=250, n_paths=1000, seed=1, exog=x)
    b = m.sample(r, horizon=250, n_paths=1000, seed=1, exog=x)
    c = m.sample(r, horizon=250, n_paths=1000, seed=2, exog=x)
    assert a.paths.shape == (1000, 250, 1) and np.isfinite(a.paths).all()
    assert a.index[0] > r.index[-1]
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.allclose(a.paths, c.paths)
    fut = pd.DataFrame({"parkinson": [0.5] * 249})
    with pytest.raises(DataError, match="exog_future"):
        m.sample(r, horizon=250, n_paths=10, seed=1, exog=x, exog_future=fut)


def test_first_simulated_day_follows_the_filtered_variance(data, fitted):
    """Day 1 after the context has variance exp(omega + beta log h_T + gamma log x_T), by hand."""
    r, x = data
    m = fitted["normal"]
    st = m.states_[r.name]
    mu, omega, beta, gamma = st["params"]["values"][:4]
    lh = st["log_h0"]
    lx = [st["log_x0"], *np.log(x.iloc[:, 0].to_numpy())]
    for t in range(len(r) + 1):
        lh = omega + beta * lh + gamma * lx[t]
    day1 = m.sample(r, horizon=3, n_paths=40_000, seed=0, exog=x).paths[:, 0, 0]
    sd = math.exp(lh / 2)
    assert day1.mean() == pytest.approx(mu, abs=4 * sd / 200)
    assert day1.std() == pytest.approx(sd, rel=0.02)


@pytest.mark.parametrize("dist", ["normal", "t"])
def test_simulated_measure_has_the_implied_moments(data, fitted, dist):
    r, x = data
    m = fitted[dist]
    st = m.states_[r.name]
    theta = st["params"]["values"]
    if dist == "t":
        assert theta[9] > 4  # else log x has no variance to compare with
    _, lx = m._simulate(st, r.to_numpy(), x.to_numpy(), 20_000, 4, np.random.default_rng(0))
    lx = lx[:, 1000:]  # forget the context
    mean, std = _stationary_log_x(theta, dist)
    assert lx.mean() == pytest.approx(mean, abs=0.06)
    assert lx.std() == pytest.approx(std, rel=0.05)


def test_registered_and_tagged():
    assert finar.models.registry()["realgarch"] is RealizedGARCH
    assert {"predictive", "exog", "needs_exog", "simulates_exog"} <= RealizedGARCH.tags
    assert finar.models.RealizedGARCH is RealizedGARCH


def test_backtest_with_the_range(data):
    """finar.backtest refits it with the covariate and its look-ahead check passes."""
    r, x = data
    bt = finar.backtest(RealizedGARCH(dist="t"), r, start="2013-07-01", refit_every=60, seed=0, exog=x,
                        progress=False)
    s = bt.summary()
    assert s["n_days"] == len(r.loc["2013-07-01":]) and np.isfinite(s["log_score"])


def test_multi_step_backtest_and_ensembles_need_no_future_measures(data, fitted):
    """Because it simulates its own measure, h-day backtests with the range run (a model that
    needs future covariates is refused), and an Ensemble beside GARCH-X passes exog_future to
    GARCH-X only."""
    r, x = data
    bt = finar.backtest(RealizedGARCH(dist="t"), r, start="2013-11-01", refit_every=None, horizon=5,
                        n_paths=200, seed=0, exog=x, progress=False)
    assert bt.summary()["n_days"] > 0 and np.isfinite(bt.daily["crps"]).all()
    with pytest.raises(DataError, match="covariates of the days"):
        finar.backtest(finar.models.GARCHX(), r, start="2013-11-01", horizon=5, exog=x, progress=False)
    ens = finar.models.Ensemble([finar.models.GARCHX(vol="garch"), RealizedGARCH(dist="t")]).fit(r, exog=x)
    fut = pd.DataFrame({"parkinson": [float(x.iloc[-1, 0])] * 9})
    sc = ens.sample(r, horizon=10, n_paths=50, seed=0, exog=x, exog_future=fut)
    assert sc.paths.shape == (50, 10, 1) and np.isfinite(sc.paths).all()
