"""Joint evaluation: scoring rules against hand computations, VaR tests, the P6 loop, co-crashes
and correlation distances on panels whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, FinarError
from finar.evaluation import stattests
from finar.evaluation.joint import (
    co_crash,
    conditional_log_score,
    correlation_distance,
    energy_score,
    joint_backtest,
    joint_log_score,
    min_variance_weights,
    var_tests,
    variogram_score,
)
from finar.models.base import Forecaster
from finar.models.copula import Copula
from finar.models.dcc import DCC
from finar.models.scenarios import Scenarios

COLS = ["SP500", "JPM", "XOM"]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2005":"2009"]


def test_energy_and_variogram_scores_by_hand():
    """One case by hand: ES = mean ||x_m - y|| - mean ||x_m - x_k|| / 2, VS over ordered pairs."""
    rng = np.random.default_rng(0)
    y = np.array([0.3, -1.2, 0.5])
    x = rng.normal(size=(40, 3))
    term1 = sum(np.sqrt(sum((x[m, d] - y[d]) ** 2 for d in range(3))) for m in range(40)) / 40
    term2 = sum(np.sqrt(sum((x[m, d] - x[k, d]) ** 2 for d in range(3)))
                for m in range(40) for k in range(40)) / (2 * 40 * 40)
    assert float(energy_score(y, x)) == pytest.approx(term1 - term2, rel=1e-12)
    vs = sum((abs(y[i] - y[j]) ** 0.5 - np.mean(np.abs(x[:, i] - x[:, j]) ** 0.5)) ** 2
             for i in range(3) for j in range(3))
    assert float(variogram_score(y, x)) == pytest.approx(vs, rel=1e-12)
    # vectorised over days: (T, M, D) ensembles for (T, D) observations
    both = energy_score(np.stack([y, y]), np.stack([x, x + 1.0]))
    assert both.shape == (2,) and both[0] == pytest.approx(term1 - term2) and both[1] > both[0]
    with pytest.raises(DataError, match="shaped"):
        energy_score(y, x[:, :2])


def test_variogram_score_sees_correlation_that_energy_barely_does():
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    ys = rng.multivariate_normal([0, 0], cov, size=200)
    right = rng.multivariate_normal([0, 0], cov, size=(200, 200))
    indep = rng.normal(size=(200, 200, 2))
    assert variogram_score(ys, right).mean() < 0.8 * variogram_score(ys, indep).mean()
    assert energy_score(ys, right).mean() < energy_score(ys, indep).mean()


def test_var_tests_use_stattests():
    rng = np.random.default_rng(2)
    ret = rng.standard_t(4, size=600)
    var = np.full(600, 2.5)
    out = var_tests(pd.Series(ret), var, 0.01)
    hits = ret < -2.5
    assert out["n_hits"] == hits.sum() and out["hit_rate"] == pytest.approx(hits.mean())
    assert out["kupiec_p"] == pytest.approx(stattests.kupiec_pof(hits, 0.01).p_value)
    assert out["christoffersen_cc_p"] == pytest.approx(stattests.christoffersen_cc(hits, 0.01).p_value)
    assert out["traffic_light_last"] in ("green", "yellow", "red")
    assert "traffic_light_last" not in var_tests(ret, var, 0.05)
    with pytest.raises(DataError, match="one value per day"):
        var_tests(ret, var[:-1], 0.01)


def test_min_variance_weights(r):
    w = min_variance_weights(r)
    assert w.sum() == pytest.approx(1.0) and list(w.index) == COLS
    cov = np.cov(r.to_numpy(), rowvar=False)
    eq = np.full(3, 1 / 3)
    assert w.to_numpy() @ cov @ w.to_numpy() < eq @ cov @ eq
    for k in range(3):  # a first-order condition: no small move along a budget-neutral direction helps
        d = np.zeros(3)
        d[k], d[(k + 1) % 3] = 1e-3, -1e-3
        assert (w + d).to_numpy() @ cov @ (w + d).to_numpy() > w.to_numpy() @ cov @ w.to_numpy()


def test_log_scores(r):
    m = DCC(family="t").fit(r.loc[:"2008"])
    js = joint_log_score(m, r, start="2009-01-01")
    assert js.index[0] >= pd.Timestamp("2009-01-01") and list(js.columns) == ["joint", "per_asset"]
    np.testing.assert_allclose(js["per_asset"] * 3, js["joint"])
    cond = conditional_log_score(m, r, ["SP500"], start="2009-01-01")
    np.testing.assert_allclose(cond, m.log_prob(r).loc["2009":, ["JPM", "XOM"]].sum(axis=1), rtol=1e-10)
    ind = Copula(family="independent").fit(r.loc[:"2008"])
    # independence: conditioning on the index changes nothing
    np.testing.assert_allclose(conditional_log_score(ind, r, ["SP500"]),
                               ind.log_prob(r)[["JPM", "XOM"]].sum(axis=1), rtol=1e-12)
    assert cond.mean() > conditional_log_score(ind, r, ["SP500"], start="2009-01-01").mean()
    with pytest.raises(DataError, match="given must name"):
        conditional_log_score(m, r, ["NOPE"])


class _ChainStub(Forecaster):
    """A joint model exposing only log_prob cells (no conditional_log_prob), like PixelCNN."""

    tags = frozenset({"joint"})

    def __init__(self, inner: Forecaster | None = None) -> None:
        self.inner = inner

    @property
    def min_context(self) -> int:
        return 0

    def fit(self, r, *, exog=None):
        self.fitted_ = True
        return self

    def log_prob(self, r, *, exog=None):
        return self.inner.log_prob(r)

    def sample(self, context, horizon=1, n_paths=1000, seed=None, *, exog=None, exog_future=None):
        return self.inner.sample(context, horizon, n_paths, seed)


def test_conditional_score_of_a_chain_rule_model(r):
    inner = DCC(family="gaussian").fit(r)
    stub = _ChainStub(inner).fit(r)
    np.testing.assert_allclose(conditional_log_score(stub, r, ["SP500"]),
                               inner.conditional_log_prob(r, ["SP500"]), rtol=1e-10)
    with pytest.raises(FinarError, match="leading columns"):
        conditional_log_score(stub, r, ["XOM"])


@pytest.fixture(scope="module")
def backtests(r) -> dict:
    weights = {"equal": {"JPM": 0.5, "XOM": 0.5},
               "minvar": min_variance_weights(r.loc[:"2008", ["JPM", "XOM"]])}
    kw = dict(start="2009-01-02", end="2009-03-31", refit_every=30, n_paths=400, horizon=5, weights=weights,
              given=["SP500"], score_columns=["JPM", "XOM"], seed=3)
    return {"dcc": joint_backtest(DCC(family="t"), r, **kw),
            "independent": joint_backtest(Copula(family="independent"), r, **kw), "kw": kw}


def test_joint_backtest_scores_every_test_day(r, backtests):
    bt = backtests["dcc"]
    days = r.loc["2009-01-02":"2009-03-31"].index
    assert bt.daily.index.equals(days)
    assert {"joint", "per_asset", "conditional", "energy_1", "variogram_1", "equal_return", "equal_var_1",
            "minvar_var_5"} <= set(bt.daily.columns)
    assert len(bt.origins) == len(range(0, len(days) - 5 + 1, 5))
    assert (bt.daily["equal_var_1"] > bt.daily["equal_var_5"]).all() and (bt.daily["equal_var_5"] > 0).all()
    # the first block's log scores are those of a model fitted on the days before the test span
    m = DCC(family="t").fit(r.loc[:"2008-12-31"])
    np.testing.assert_allclose(bt.daily["joint"].iloc[:30], m.joint_log_prob(r).loc[days[:30]], rtol=1e-10)
    realised = 100 * np.log1p(0.5 * np.expm1(r.loc[days, ["JPM", "XOM"]] / 100).sum(axis=1))
    np.testing.assert_allclose(bt.daily["equal_return"], realised)
    s = bt.summary()
    assert s["joint_log_score"] == pytest.approx(bt.daily["joint"].mean())
    assert {"equal_hit_rate_1", "equal_kupiec_p_5", "minvar_christoffersen_cc_p_1", "energy_5",
            "variogram_5", "conditional_score"} <= set(s)


def test_joint_backtest_is_reproducible_and_causal(r, backtests):
    kw = {**backtests["kw"], "weights": None, "given": None}
    changed = r.copy()
    changed.loc["2009-04-01":] *= 3.0  # after the test span: nothing may move
    a = joint_backtest(Copula(family="t"), r.loc[:"2009-06-30"], **kw)
    b = joint_backtest(Copula(family="t"), changed.loc[:"2009-06-30"], **kw)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.origins, b.origins)


def test_joint_scenarios_widen_the_portfolio_var(backtests):
    """Correlated stocks: the joint model's portfolio VaR is larger than the independent one's, and
    its joint log score better."""
    dcc, ind = backtests["dcc"].daily, backtests["independent"].daily
    assert dcc["equal_var_5"].mean() > 1.1 * ind["equal_var_5"].mean()
    assert dcc["equal_var_1"].mean() > 1.1 * ind["equal_var_1"].mean()
    assert dcc["joint"].mean() > ind["joint"].mean()
    assert dcc["conditional"].mean() > ind["conditional"].mean()


def _factor_panel(n: int, n_assets: int, seed: int, loading: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.standard_t(4, size=(n, 1))
    x = loading * f + np.sqrt(1 - loading**2) * rng.standard_t(4, size=(n, n_assets))
    return pd.DataFrame(x, index=pd.bdate_range("2001-01-01", periods=n, name="time"),
                        columns=[f"s{i}" for i in range(n_assets)])


def test_co_crash_separates_joint_from_independent_paths():
    real = _factor_panel(3000, 20, seed=0, loading=0.8)
    joint = _factor_panel(250 * 40, 20, seed=1, loading=0.8).to_numpy().reshape(40, 250, 20)
    indep = np.random.default_rng(2).standard_t(4, size=(40, 250, 20))
    cj = co_crash(real, joint)
    ci = co_crash(real, Scenarios(indep, pd.RangeIndex(250), list(real.columns)))
    assert cj["co_crash_real"] > 0.005 and ci["co_crash_generated"] == 0.0
    assert cj["co_crash_boot_q05"] <= cj["co_crash_generated"] <= cj["co_crash_boot_q95"]
    assert ci["co_crash_boot_q95"] > 0  # the real panel co-crashes in most year-long windows


def test_correlation_distance_band():
    real = _factor_panel(2000, 6, seed=3, loading=0.7)
    same = _factor_panel(250 * 30, 6, seed=4, loading=0.7).to_numpy().reshape(30, 250, 6)
    weaker = _factor_panel(250 * 30, 6, seed=5, loading=0.3).to_numpy().reshape(30, 250, 6)
    ok, bad = correlation_distance(real, same), correlation_distance(real, weaker)
    assert ok["corr_within_band"] and not bad["corr_within_band"]
    assert bad["corr_distance_generated"] > 3 * ok["corr_distance_generated"]
    assert bad["mean_corr_generated"] < ok["mean_corr_generated"]
    with pytest.raises(DataError, match="shaped"):
        correlation_distance(real, same[:, :, :5])


def test_joint_backtest_without_scenarios_scores_densities_only(r, backtests):
    kw = {**backtests["kw"], "scenarios": False}
    bt = joint_backtest(DCC(family="t"), r, **kw)
    assert list(bt.daily.columns) == ["joint", "per_asset", "conditional"] and bt.origins.empty
    pd.testing.assert_series_equal(bt.daily["joint"], backtests["dcc"].daily["joint"])
    s = bt.summary()
    assert "energy_1" not in s
    assert s["joint_log_score"] == pytest.approx(backtests["dcc"].summary()["joint_log_score"])


def test_correlation_distance_leaves_out_stale_windows():
    """A column constant over a window (stale prices) has no correlation there: the distance and
    the band use the defined pairs and stay finite, as on the full panel."""
    from finar.evaluation.joint import _offdiag_distance, correlation_distance

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 3))
    x[:, 1] += 0.8 * x[:, 0]
    x[:200, 2] = 0.0  # a stale stretch
    real = pd.DataFrame(x, columns=["a", "b", "c"], index=pd.bdate_range("2000-01-03", periods=600))
    paths = rng.standard_normal((50, 20, 3))
    paths[0, :, 2] = 0.0
    d = _offdiag_distance(paths, np.corrcoef(x, rowvar=False))
    target = np.corrcoef(x, rowvar=False)
    z = paths[0, :, :2]
    np.testing.assert_allclose(d[0], abs(np.corrcoef(z, rowvar=False)[0, 1] - target[0, 1]))
    out = correlation_distance(real, paths, n_boot=200, seed=0)
    assert np.isfinite(out["corr_distance_boot_q95"]) and np.isfinite(out["corr_distance_generated"])
