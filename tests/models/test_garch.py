"""GARCH against arch: identical likelihoods, recovered parameters, correct simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from arch.univariate import GARCH as ArchGARCH
from arch.univariate import ConstantMean, StudentsT

import finar
from finar.errors import DataError
from tests.models.test_contract import simulate_garch_t

SPECS = [
    dict(vol="garch", dist="normal"),
    dict(vol="garch", dist="t"),
    dict(vol="gjr", dist="t"),
    dict(vol="gjr", dist="skewt"),
    dict(vol="egarch", dist="t"),
    dict(mean="zero", vol="garch", dist="t"),
    dict(mean="ar", lags=1, vol="gjr", dist="t"),
    dict(mean="ar", lags=3, vol="garch", dist="normal"),
]


@pytest.fixture(scope="module")
def sp500() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2008":"2014"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(f"{v}" for v in s.values()))
def test_log_prob_sums_to_arch_loglikelihood(spec, sp500):
    m = finar.models.GARCH(**spec).fit(sp500)
    lp = m.log_prob(sp500)
    res = m.results_[sp500.name]
    assert lp.sum() == pytest.approx(res.loglikelihood, rel=1e-8)
    # per observation too, against an independent arch model with the same fitted parameters
    am = arch_model(sp500.to_numpy(), mean={"constant": "Constant", "zero": "Zero", "ar": "AR"}[
        spec.get("mean", "constant")], lags=spec.get("lags", 0), vol="EGARCH" if spec["vol"] == "egarch"
        else "GARCH", o=0 if spec["vol"] == "garch" else 1, dist=spec["dist"], rescale=False)
    ref = am.fit(disp="off")
    np.testing.assert_allclose(ref.params.to_numpy(), res.params.to_numpy(), rtol=1e-6)
    k = m.min_context
    sigma = m.conditional_volatility(sp500).iloc[k:].to_numpy()
    np.testing.assert_allclose(sigma, res.conditional_volatility[k:], rtol=1e-10)


def test_acceptance_example(sp500):
    """The issue's own line: GARCH(vol='garch', dist='t').fit(r).log_prob(r) sums to arch's."""
    r = sp500
    ll = finar.models.GARCH(vol="garch", dist="t").fit(r).log_prob(r).sum()
    ref = arch_model(r, vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    assert ll == pytest.approx(ref.loglikelihood, rel=1e-8)


def _simulate_arch(n: int, seed: int, params: dict) -> pd.Series:
    am = ConstantMean(volatility=ArchGARCH(p=1, o=1 if "gamma[1]" in params else 0, q=1),
                      distribution=StudentsT(seed=np.random.default_rng(seed)))
    sim = am.simulate(list(params.values()), n, burn=500)
    return pd.Series(sim["data"].to_numpy(), index=pd.bdate_range("2000-01-03", periods=n), name="x")


@pytest.mark.parametrize("seed", [0, 1])
def test_parameter_recovery_gjr_t(seed):
    true = {"mu": 0.05, "omega": 0.02, "alpha[1]": 0.04, "gamma[1]": 0.10, "beta[1]": 0.88, "nu": 6.0}
    y = _simulate_arch(8000, seed, true)
    m = finar.models.GARCH(vol="gjr", dist="t").fit(y)
    est = m.results_["x"].params
    se = m.results_["x"].std_err
    for name, value in true.items():
        assert abs(est[name] - value) < 4 * se[name], (name, est[name], value, se[name])


def test_one_step_simulation_matches_conditional_variance():
    y = simulate_garch_t(2000, seed=3)
    m = finar.models.GARCH(dist="t").fit(y)
    sc = m.sample(y, horizon=1, n_paths=40_000, seed=0)
    res = m.results_[y.name]
    fc = res.forecast(horizon=1, reindex=False)
    # the fixed training backcast and arch's agree on the last variance to high precision
    np.testing.assert_allclose(sc.paths[:, 0, 0].mean(), fc.mean.iloc[-1, 0], atol=0.02)
    np.testing.assert_allclose(sc.paths[:, 0, 0].var(), fc.variance.iloc[-1, 0], rtol=0.05)


def test_multi_step_variance_matches_analytic_forecast():
    y = simulate_garch_t(2000, seed=4)
    m = finar.models.GARCH(dist="normal").fit(y)
    sc = m.sample(y, horizon=10, n_paths=40_000, seed=1)
    fc = m.results_[y.name].forecast(horizon=10, reindex=False)
    np.testing.assert_allclose(sc.paths[:, :, 0].var(axis=0), fc.variance.iloc[-1].to_numpy(), rtol=0.06)


def test_bad_arguments():
    y = simulate_garch_t(300, seed=0)
    with pytest.raises(DataError, match="vol must be one of"):
        finar.models.GARCH(vol="figarch").fit(y)
    with pytest.raises(DataError, match="dist must be one of"):
        finar.models.GARCH(dist="cauchy").fit(y)
    with pytest.raises(DataError, match="p must be a positive integer"):
        finar.models.GARCH(p=0).fit(y)


# ---- covariates in the mean: gamma' x_{t-1} -----------------------------------------------------

def simulate_garch_x(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """GARCH(1,1)-t noise around 0.05 + 0.5 x_{t-1}."""
    rng = np.random.default_rng(seed)
    noise = simulate_garch_t(n, seed=seed) - 0.05
    x = pd.DataFrame({"signal": rng.normal(size=n)}, index=noise.index)
    y = 0.05 + noise + 0.5 * np.concatenate([[0.0], x["signal"].to_numpy()[:-1]])
    return y.rename("x"), x


@pytest.mark.parametrize("spec", [dict(dist="t"), dict(mean="zero", vol="gjr", dist="skewt"),
                                  dict(mean="ar", lags=2, dist="normal")], ids=["const", "zero", "ar2"])
def test_exog_mean_matches_arch(spec):
    from arch.univariate import ARX, LS

    y, x = simulate_garch_x(3000, seed=8)
    m = finar.models.GARCH(**spec).fit(y, exog=x)
    res = m.results_["x"]
    k = max(spec.get("lags", 0), 1)
    assert m.min_context == k
    lp = m.log_prob(y, exog=x)
    assert lp.iloc[:k].isna().all() and lp.iloc[k:].notna().all()
    assert lp.sum() == pytest.approx(res.loglikelihood, rel=1e-8)
    assert abs(res.params["x0"] - 0.5) < 4 * res.std_err["x0"]
    # an independent arch model: its mean regresses on the covariates of the day before
    lagged = np.vstack([[0.0], x.to_numpy()[:-1]])
    vol = ArchGARCH(1, 0 if spec.get("vol", "garch") == "garch" else 1, 1)
    dist = {"t": StudentsT, "normal": finar.models.garch.Normal, "skewt": finar.models.garch.SkewStudent}
    kw = dict(volatility=vol, distribution=dist[spec["dist"]](), rescale=False)
    am = ARX(y.to_numpy(), lagged, lags=2, hold_back=2, **kw) if spec.get("mean") == "ar" else \
        LS(y.to_numpy(), lagged, constant=spec.get("mean") != "zero", hold_back=1, **kw)
    ref = am.fit(disp="off")
    np.testing.assert_allclose(ref.params.to_numpy(), res.params.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(m.conditional_volatility(y, exog=x).iloc[k:], ref.conditional_volatility[k:],
                               rtol=1e-6)
    # the predictive mean is the regression on r_{t-1..t-p} and x_{t-1}
    pr = m.predictive(y, exog=x)
    p = res.params
    mu = (p.get("Const", 0.0) + p["x0"] * x["signal"].to_numpy()[k - 1:-1]
          + sum(p[f"y[{i}]"] * y.to_numpy()[k - i:len(y) - i] for i in range(1, spec.get("lags", 0) + 1)))
    np.testing.assert_allclose(pr.loc[k:], mu, rtol=1e-10)
    np.testing.assert_allclose(pr.log_prob(y.to_numpy()), lp.to_numpy(), rtol=1e-12)


def test_exog_is_causal_and_drives_the_simulated_mean():
    y, x = simulate_garch_x(1500, seed=9)
    m = finar.models.GARCH(dist="t").fit(y, exog=x)
    lp = m.log_prob(y, exog=x).to_numpy()
    bumped = x.copy()
    bumped.iloc[700] += 5.0
    lp2 = m.log_prob(y, exog=bumped).to_numpy()
    changed = np.flatnonzero(~np.isclose(lp, lp2, equal_nan=True, rtol=1e-12))
    assert changed[0] == 701  # the mean of day 701, then the variance recursion after it
    p = m.results_["x"].params
    future = pd.DataFrame({"signal": [4.0]})
    sc = m.sample(y, horizon=2, n_paths=40_000, seed=0, exog=x, exog_future=future)
    means = sc.paths[:, :, 0].mean(axis=0)
    assert means[0] == pytest.approx(p["Const"] + p["x0"] * x["signal"].iloc[-1], abs=0.03)
    assert means[1] == pytest.approx(p["Const"] + p["x0"] * 4.0, abs=0.03)
    with pytest.raises(DataError, match="fitted with exog"):
        m.predictive(y)



def test_a_diverged_fit_restarts_from_textbook_values():
    """On the bundled RRC series up to 2018-04-05 arch's own start sends SLSQP to a mean of 27,000
    (flag 4) and the paths of that fit overflow: the fit restarts from textbook values, converges,
    and its paths stay finite."""
    r = finar.returns(finar.load("sp500-stocks", end="2018-04-05")["RRC"].dropna())
    m = finar.models.GARCH(vol="gjr", dist="skewt")
    am = m._arch(r.to_numpy())
    first = am.fit(disp="off")
    assert first.convergence_flag != 0 and abs(first.params["mu"]) > 100  # the failure, as arch gives it
    m.fit(r)
    res = m.results_["RRC"]
    assert res.convergence_flag == 0 and abs(res.params["mu"]) < 1 and res.loglikelihood > first.loglikelihood
    assert np.isfinite(m.sample(r, horizon=60, n_paths=200, seed=0).paths).all()
