"""MarginalCopula: any forecasters' marginals under a copula. With GARCH(1,1)-t marginals it is
DCC itself (density, paths, stress draws); the copula's uniforms drive each marginal's exact
quantile path; one-pass next-day scenarios equal day-by-day sampling; warm refits; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finar
from finar.errors import DataError
from finar.evaluation.joint import joint_backtest
from finar.models import AR, DCC, GARCH, MarginalCopula, NeuralDCC, Transformer
from finar.models.marginal_copula import next_predictive, tails

COLS = ["SP500", "JPM", "XOM"]
TINY = Transformer._tiny_params()[0]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2008":"2012"]


@pytest.fixture(scope="module")
def pair(r) -> tuple[DCC, MarginalCopula]:
    return (DCC(family="t").fit(r),
            MarginalCopula(GARCH(dist="t", vol="garch"), DCC(family="t")).fit(r))


@pytest.fixture(scope="module")
def neural(r) -> MarginalCopula:
    return MarginalCopula(Transformer(**TINY), DCC(family="t")).fit(r)


def test_garch_t_marginals_under_dcc_are_dcc(r, pair):
    dcc, mc = pair
    assert mc.copula_.a_ == pytest.approx(dcc.a_, rel=1e-4)
    assert mc.copula_.nu_ == pytest.approx(dcc.nu_, rel=1e-4)
    np.testing.assert_allclose(mc.log_prob(r).to_numpy(), dcc.log_prob(r).to_numpy(), atol=1e-4)
    np.testing.assert_allclose(mc.conditional_log_prob(r, ["SP500"]), dcc.conditional_log_prob(r, ["SP500"]),
                               atol=1e-4)
    np.testing.assert_allclose(mc.conditional_cdf(r, ["SP500"]), dcc.conditional_cdf(r, ["SP500"]), atol=1e-5)
    # the same seed draws the same copula scores, and GARCH's quantiles turn them into DCC's paths
    a = mc.sample(r, horizon=4, n_paths=300, seed=3)
    b = dcc.sample(r, horizon=4, n_paths=300, seed=3)
    assert a.joint
    np.testing.assert_allclose(a.paths, b.paths, rtol=1e-4, atol=1e-4)
    g_a = mc.sample(r, horizon=3, n_paths=300, seed=1, given={"SP500": [-5.0, 1.0]})
    g_b = dcc.sample(r, horizon=3, n_paths=300, seed=1, given={"SP500": [-5.0, 1.0]})
    assert (g_a.paths[:, :2, 0] == [-5.0, 1.0]).all()
    np.testing.assert_allclose(g_a.paths, g_b.paths, rtol=1e-3, atol=1e-3)  # fits equal to ~1e-5


def test_log_prob_is_marginals_plus_the_copula(r, neural):
    lp = neural.log_prob(r)
    C = neural.min_context
    assert lp.iloc[:C].isna().all().all() and np.isfinite(lp.iloc[C:].to_numpy()).all()
    marg = pd.concat({c: m.log_prob(r[c]) for c, m in neural.marginals_.items()}, axis=1)
    # the first column is its marginal; the copula's terms are the joint's excess over the marginals
    np.testing.assert_allclose(lp["SP500"].iloc[C:], marg["SP500"].iloc[C:], atol=1e-9)
    u = np.column_stack([neural.marginals_[c].cdf(r[c]).to_numpy()[C:] for c in COLS])
    p, sign = tails(u)
    cop = neural.copula_
    x = cop._scores(p, sign, cop.nu_)
    corr, _ = cop._correlations(x, np.asarray(cop.qbar_), cop.a_, cop.b_)
    mv = [stats.multivariate_t(np.zeros(3), corr[t], df=cop.nu_).logpdf(x[t]) for t in (0, 10, 400)]
    uni = [stats.t(cop.nu_).logpdf(x[t]).sum() for t in (0, 10, 400)]
    got = (lp - marg).iloc[C:].sum(axis=1).to_numpy()[[0, 10, 400]]
    np.testing.assert_allclose(got, np.subtract(mv, uni), rtol=1e-8, atol=1e-8)


def test_uniforms_drive_each_marginal_by_its_exact_quantiles(r, neural):
    m = neural.marginals_["JPM"]
    u = np.random.default_rng(0).uniform(0.001, 0.999, size=(5, 3))
    paths = m.sample(r["JPM"], horizon=3, n_paths=5, uniforms=u).paths[:, :, 0]
    for i in range(5):  # step h is the quantile at u[:, h] of the law given the path so far
        ctx = r["JPM"]
        for h in range(3):
            want = next_predictive(m, ctx).ppf(np.array([[u[i, h]]]))[0, 0]
            assert paths[i, h] == pytest.approx(want, rel=1e-5, abs=1e-5)
            ctx = pd.concat([ctx, pd.Series([paths[i, h]], index=[ctx.index[-1] + pd.offsets.BDay()])])
    g = GARCH(vol="gjr", dist="skewt").fit(r["XOM"])
    gp = g.sample(r["XOM"], horizon=1, n_paths=5, uniforms=u[:, :1]).paths[:, 0, 0]
    np.testing.assert_allclose(gp, next_predictive(g, r["XOM"]).ppf(u[:, :1])[:, 0], rtol=1e-8)


def test_next_day_scenarios_equal_sampling_day_by_day(r):
    mc = MarginalCopula(GARCH(vol="gjr", dist="t"), NeuralDCC(max_iter=3)).fit(r.iloc[:800])
    days = [850, 900, 1000]
    got = mc.next_day_scenarios(r, days, 200, [7, 8, 9])
    for k, t in enumerate(days):
        want = mc.sample(r.iloc[:t], horizon=1, n_paths=200, seed=7 + k).paths[:, 0]
        np.testing.assert_allclose(got[k], want, rtol=1e-9, atol=1e-9)
    bt = joint_backtest(mc, r, r.index[1000], refit_every=None, n_paths=100, horizon=5, fitted=True)
    assert np.isfinite(bt.daily["energy_1"]).all() and len(bt.origins)


def test_refits_fine_tune_the_previous_fits(r):
    mc = MarginalCopula(Transformer(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1}}),
                        NeuralDCC(max_iter=2, warm_iter=1, warm_start=True))
    assert mc.warm_start
    mc.fit(r.iloc[:600])
    first, net = mc.marginals_["JPM"], mc.copula_
    mc.fit(r.iloc[:700])
    assert mc.marginals_["JPM"] is first and mc.copula_ is net  # fine-tuned in place
    assert not MarginalCopula(GARCH(), DCC()).warm_start


def test_save_load_round_trip(tmp_path, r, neural):
    path = neural.save(tmp_path / "mc.pt")
    back = finar.models.load(path)
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), neural.log_prob(r).to_numpy(), equal_nan=True)


def test_errors(r, pair):
    with pytest.raises(DataError, match="univariate"):
        MarginalCopula(DCC(), DCC()).fit(r)
    with pytest.raises(DataError, match="copula must be"):
        MarginalCopula(GARCH(), GARCH()).fit(r)
    ar = MarginalCopula(AR(order=1), DCC()).fit(r)
    assert ar.sample(r, horizon=1, n_paths=10, seed=0).paths.shape == (10, 1, 3)  # any predictive law
    with pytest.raises(DataError, match="only horizon=1"):
        ar.sample(r, horizon=2, n_paths=10, seed=0)
    with pytest.raises(DataError, match="uniforms"):
        AR(order=1).fit(r["JPM"]).sample(r["JPM"], horizon=2, n_paths=3, uniforms=np.full((3, 2), 0.5))
    with pytest.raises(DataError, match="shape"):
        GARCH().fit(r["JPM"]).sample(r["JPM"], horizon=2, n_paths=3, uniforms=np.full((3, 3), 0.5))
    with pytest.raises(DataError, match="columns"):
        pair[1].log_prob(r[["JPM", "SP500", "XOM"]])
    with pytest.raises(DataError, match="given"):
        pair[1].sample(r, horizon=1, n_paths=5, given={"AAPL": -5.0})


def test_conditional_laws_equal_dccs_with_garch_t_marginals(r, pair):
    dcc, mc = pair
    for given in ("others", "left"):
        a, b = mc.conditional_predictive(r, given=given), dcc.conditional_predictive(r, given=given)
        for c in COLS:
            y = r[c].to_numpy()
            np.testing.assert_allclose(a[c].log_prob(y), b[c].log_prob(y), atol=1e-4)
            np.testing.assert_allclose(a[c].cdf(y), b[c].cdf(y), atol=1e-4)
            np.testing.assert_allclose(a[c].ppf(0.01), b[c].ppf(0.01), atol=1e-3)  # fits agree to ~1e-5
        first = slice(0, 40)
        np.testing.assert_allclose(a["JPM"].take(first).es(0.05), b["JPM"].take(first).es(0.05), rtol=1e-3)
    left = mc.conditional_predictive(r, given="left")  # 'left' is the chain rule: log_prob's cells
    np.testing.assert_allclose(np.column_stack([left[c].log_prob(r[c].to_numpy()) for c in COLS]),
                               mc.log_prob(r).to_numpy(), atol=1e-9)


def test_conditional_laws_of_network_marginals_and_the_detector(r, neural):
    C = neural.min_context
    cp = neural.conditional_predictive(r, given="others")["JPM"]
    y = r["JPM"].to_numpy()
    assert np.isnan(cp.cdf(y)[:C]).all() and np.isnan(cp.ppf(0.5)[:C]).all()
    days = cp.take(slice(C, C + 5))
    q = days.ppf(np.array([0.1, 0.5, 0.9])[:, None])
    for k, level in enumerate((0.1, 0.5, 0.9)):
        np.testing.assert_allclose(days.cdf(q[k]), level, atol=1e-5)
    out = finar.AnomalyDetector(neural, level=0.01, given="others").fit(r.iloc[:900]).score(
        r.iloc[900:], context=r.iloc[:900])
    assert out["p_value"].between(0, 1).all() and len(out) == 3 * (len(r) - 900)
