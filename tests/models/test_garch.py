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
