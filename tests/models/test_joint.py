"""Joint models (finar.models.copula, finar.models.dcc): exact joint densities against independent
implementations, the chain rule per cell, joint and conditional sampling, files and errors.

The independent implementation of the DCC-t and t-copula likelihoods is written here as plain
float64 loops: arch's own GARCH fits for the marginals, scipy.stats for the PITs and scores,
the DCC recursion day by day, and ``scipy.stats.multivariate_t`` / ``multivariate_normal`` for the
joint shocks. The Gaussian DCC correlation likelihood is also checked against the ``multigarch``
package (a test dependency), which implements Engle's recursion on its own.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from arch import arch_model
from scipy import integrate, stats

import finar
from finar.errors import DataError
from finar.models.copula import Copula, chain_terms
from finar.models.dcc import DCC

COLS = ["SP500", "JPM", "XOM", "PFE"]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    """A fixed dataset: four bundled series over 2006-2009 (the crisis moves the correlations)."""
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2006":"2009"]


@pytest.fixture(scope="module")
def models(r) -> dict[str, finar.models.Forecaster]:
    return {"dcc-t": DCC(family="t").fit(r), "dcc-gaussian": DCC(family="gaussian").fit(r),
            "copula-t": Copula(family="t").fit(r), "copula-gaussian": Copula(family="gaussian").fit(r),
            "independent": Copula(family="independent").fit(r)}


def _arch_total(y: np.ndarray) -> float:
    """Sum of arch's own GARCH(1,1)-t log-likelihoods, column by column."""
    return sum(arch_model(y[:, i], mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
               .fit(disp="off").loglikelihood for i in range(y.shape[1]))


def _loop_copula(m, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The copula log-likelihood by plain loops and scipy densities; also the scores and Qbar."""
    T, N = y.shape
    nu_c, a, b = m.nu_, m.a_, m.b_
    x = np.empty((T, N))
    for i, c in enumerate(m.columns_):
        p = m.marginals_[c]
        s2_prev, e2_prev = p["backcast"], p["backcast"]
        for t in range(T):
            s2 = p["omega"] + p["alpha"] * e2_prev + p["beta"] * s2_prev
            e = y[t, i] - p["mu"]
            u = stats.t.cdf(e / math.sqrt(s2 * (p["nu"] - 2) / p["nu"]), p["nu"])
            x[t, i] = stats.norm.ppf(u) if math.isinf(nu_c) else stats.t.ppf(u, nu_c)
            s2_prev, e2_prev = s2, e * e
    qbar = x.T @ x / T
    q = qbar.copy()
    total = 0.0
    for t in range(T):
        if t > 0:
            q = (1 - a - b) * qbar + a * np.outer(x[t - 1], x[t - 1]) + b * q
        d = np.sqrt(np.diag(q))
        corr = q / np.outer(d, d)
        if math.isinf(nu_c):
            total += stats.multivariate_normal.logpdf(x[t], cov=corr) - stats.norm.logpdf(x[t]).sum()
        else:
            total += stats.multivariate_t.logpdf(x[t], shape=corr, df=nu_c) - stats.t.logpdf(x[t], nu_c).sum()
    return total, x, qbar


@pytest.mark.parametrize("name", ["dcc-t", "copula-t", "dcc-gaussian", "copula-gaussian"])
def test_log_likelihood_matches_independent_implementation(name, r, models):
    """Acceptance: DCC-t and the t copula reproduce an independent implementation (relative 1e-6)."""
    m = models[name]
    y = r.to_numpy()
    copula, _, _ = _loop_copula(m, y)
    reference = _arch_total(y) + copula
    assert m.joint_log_prob(r).sum() == pytest.approx(reference, rel=1e-6)
    assert m.copula_loglik_ == pytest.approx(copula, rel=1e-6)
    assert copula > 500  # the dependence is real: far from the independence copula's 0


def test_gaussian_dcc_matches_multigarch(r, models):
    multigarch_jit = pytest.importorskip("multigarch._jit")
    m = models["dcc-gaussian"]
    _, x, qbar = _loop_copula(m, r.to_numpy())
    nll = multigarch_jit.dcc_loglik_loop(x, qbar, np.zeros_like(qbar), m.a_, m.b_, 0.0)
    # multigarch: 0.5 sum_{t>=1} (log|R_t| + x'R_t^-1 x); the copula adds back the N(0,1) marginals
    expected = -nll + 0.5 * float((x[1:] ** 2).sum())
    st = m._state(r)
    ours = chain_terms(st["x"], np.linalg.cholesky(st["corr"]), np.inf)[1:].sum()
    assert ours == pytest.approx(expected, rel=1e-9)


def test_estimates_are_plausible(models):
    dcc = models["dcc-t"]
    assert 0.005 < dcc.a_ < 0.2 and 0.7 < dcc.b_ and dcc.a_ + dcc.b_ < 1
    assert 3 < dcc.nu_ < 100 and math.isinf(models["dcc-gaussian"].nu_)
    assert models["copula-t"].a_ == 0 and models["copula-t"].b_ == 0
    # nested: DCC-t >= t copula >= Gaussian copula >= independence on the training data
    ll = {k: m.copula_loglik_ for k, m in models.items()}
    assert ll["dcc-t"] > ll["copula-t"] > ll["copula-gaussian"] > ll["independent"] == 0


def test_marginals_are_arch_garch_t(r, models):
    """The independence copula is the product of arch's GARCH(1,1)-t fits, exactly."""
    lp = models["independent"].log_prob(r)
    for i, c in enumerate(COLS):
        res = arch_model(r[c].to_numpy(), vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
        assert lp[c].sum() == pytest.approx(res.loglikelihood, rel=1e-10)
        np.testing.assert_allclose(models["dcc-t"].marginals_[c]["nu"], res.params["nu"])
        marginal = models["dcc-t"].predictive(r)[c].log_prob(r[c].to_numpy())
        np.testing.assert_allclose(lp[c].to_numpy(), marginal, rtol=1e-10)
        assert i == 0 or not np.allclose(lp[c], models["dcc-t"].log_prob(r)[c])
    # ... and finar's own GARCH(1,1)-t per column, the independent reference of P6
    garch = finar.models.GARCH(dist="t").fit(r)
    np.testing.assert_allclose(lp.to_numpy(), garch.log_prob(r).to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", ["dcc-t", "copula-gaussian"])
def test_cells_are_chain_rule_conditionals(name, r, models):
    """Row sums are the joint density (scipy's multivariate density on the scores); column 0 is the
    marginal; the cells after the first k sum to the conditional density given those k."""
    m = models[name]
    lp = m.log_prob(r)
    pred = m.predictive(r)
    np.testing.assert_allclose(lp["SP500"], pred["SP500"].log_prob(r["SP500"].to_numpy()), rtol=1e-12)
    st = m._state(r)
    t = 700  # one day, by scipy: marginals + log g_R(x) - sum log g(x)
    corr = st["corr"][t] if st["corr"].ndim == 3 else st["corr"]
    x = st["x"][t]
    if math.isinf(m.nu_):
        cop = stats.multivariate_normal.logpdf(x, cov=corr) - stats.norm.logpdf(x).sum()
    else:
        cop = stats.multivariate_t.logpdf(x, shape=corr, df=m.nu_) - stats.t.logpdf(x, m.nu_).sum()
    marg = sum(pred[c].log_prob(r[c].to_numpy())[t] for c in COLS)
    assert m.joint_log_prob(r).iloc[t] == pytest.approx(marg + cop, rel=1e-10)
    # given the leading columns: the remaining cells; given any columns: joint - their block density
    cond = m.conditional_log_prob(r, given=["SP500"])
    np.testing.assert_allclose(cond, lp.iloc[:, 1:].sum(axis=1), rtol=1e-10)
    cond2 = m.conditional_log_prob(r, given=["XOM", "JPM"])
    sub = [1, 2]
    c_sub = corr[np.ix_(sub, sub)]
    block = (stats.multivariate_normal.logpdf(x[sub], cov=c_sub) - stats.norm.logpdf(x[sub]).sum()
             if math.isinf(m.nu_) else
             stats.multivariate_t.logpdf(x[sub], shape=c_sub, df=m.nu_) - stats.t.logpdf(x[sub], m.nu_).sum())
    given_density = block + sum(pred[c].log_prob(r[c].to_numpy())[t] for c in ("JPM", "XOM"))
    assert cond2.iloc[t] == pytest.approx(m.joint_log_prob(r).iloc[t] - given_density, rel=1e-10)


def test_causal_and_independent_of_later_rows(r, models):
    m = models["dcc-t"]
    base = m.log_prob(r)
    bumped = r.copy()
    bumped.iloc[501:] *= 1.7
    after = m.log_prob(bumped)
    np.testing.assert_array_equal(after.iloc[:501].to_numpy(), base.iloc[:501].to_numpy())
    assert not np.allclose(after.iloc[501:], base.iloc[501:])


def test_recovers_dcc_parameters_from_its_own_paths(r, models):
    """Simulate a long path from the fitted DCC-t, refit: a, b and nu come back."""
    m = models["dcc-t"]
    sim = m.sample(r, horizon=3000, n_paths=1, seed=7)
    path = pd.DataFrame(sim.paths[0], index=sim.index, columns=COLS)
    refit = DCC(family="t").fit(path)
    assert refit.a_ == pytest.approx(m.a_, abs=0.015)
    assert refit.b_ == pytest.approx(m.b_, abs=0.05)
    assert refit.nu_ == pytest.approx(m.nu_, rel=0.5)
    for c in COLS:
        assert refit.marginals_[c]["beta"] == pytest.approx(m.marginals_[c]["beta"], abs=0.05)


def test_one_step_sample_matches_the_predictive(r, models):
    """Each column of the one-step joint sample follows its marginal predictive (KS), and the
    sampled scores have the model's correlation R_{T+1}."""
    m = models["dcc-t"]
    sc = m.sample(r, horizon=1, n_paths=20_000, seed=3)
    assert sc.joint and sc.paths.shape == (20_000, 1, 4)
    nxt = pd.concat([r, pd.DataFrame([np.zeros(4)], index=sc.index, columns=COLS)])
    pred = m.predictive(nxt)
    for c in COLS:
        u = pred[c].take([-1]).cdf(sc.paths[:, 0, COLS.index(c)][:, None])
        assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    q = m._state(r)["q_next"]
    d = np.sqrt(np.diag(q))
    scores = stats.norm.ppf(np.column_stack([pred[c].take([-1]).cdf(sc.paths[:, 0, i][:, None]).ravel()
                                             for i, c in enumerate(COLS)]))
    # Spearman's rho of a t copula is close to (6/pi) asin(R/2); the Gaussian-score correlation ~ R
    np.testing.assert_allclose(np.corrcoef(scores.T), q / np.outer(d, d), atol=0.03)


def _conditional_cdf(m, r, col: str, given: dict[str, float], grid: np.ndarray) -> np.ndarray:
    """CDF on ``grid`` of column ``col`` given ``given`` on the day after ``r``, integrating the exact
    conditional density ``exp(conditional_log_prob)`` of a two-column model numerically."""
    idx = pd.bdate_range(r.index[-1] + pd.offsets.BDay(), periods=1, name="time")
    dens = []
    for v in grid:
        row = pd.DataFrame([[given.get(c, v) for c in r.columns]], index=idx, columns=r.columns)
        dens.append(math.exp(m.conditional_log_prob(pd.concat([r, row]), list(given)).iloc[-1]))
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    assert cdf[-1] == pytest.approx(1.0, abs=2e-3)  # the conditional density integrates to one
    return cdf / cdf[-1]


@pytest.mark.parametrize(("family", "given_col"), [("t", "SP500"), ("t", "JPM"), ("gaussian", "SP500")])
def test_conditional_sample_matches_exact_conditional_density(r, family, given_col):
    """Stress sampling: given the index at -5% (or a stock), the other column's draws follow the
    exact conditional density of the model (KS against its numerical CDF)."""
    pair = r[["SP500", "JPM"]]
    m = DCC(family=family).fit(pair)
    other = "JPM" if given_col == "SP500" else "SP500"
    sc = m.sample(pair, horizon=2, n_paths=20_000, seed=11, given={given_col: -5.0})
    j = pair.columns.get_loc(other)
    assert (sc.paths[:, 0, 1 - j] == -5.0).all()
    draws = sc.paths[:, 0, j]
    grid = np.linspace(-25, 15, 801)
    cdf = _conditional_cdf(m, pair, other, {given_col: -5.0}, grid)
    u = np.interp(draws, grid, cdf)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # the stress moves the other asset: its conditional mean is far below the unconditional one
    free = m.sample(pair, horizon=1, n_paths=5000, seed=1).paths[:, 0, j]
    assert draws.mean() < free.mean() - 1.0
    assert not (sc.paths[:, 1, 1 - j] == -5.0).all()  # a scalar fixes the first day only


def test_given_path_and_seeds(r, models):
    m = models["copula-t"]
    a = m.sample(r, horizon=4, n_paths=50, seed=5, given={"SP500": [-3.0, -2.0], "XOM": 1.0})
    b = m.sample(r, horizon=4, n_paths=50, seed=5, given={"SP500": [-3.0, -2.0], "XOM": 1.0})
    np.testing.assert_array_equal(a.paths, b.paths)
    np.testing.assert_array_equal(a.paths[:, :2, 0], np.tile([-3.0, -2.0], (50, 1)))
    assert (a.paths[:, 0, 2] == 1.0).all() and not (a.paths[:, 1, 2] == 1.0).all()
    assert not np.array_equal(a.paths, m.sample(r, horizon=4, n_paths=50, seed=6).paths)


def test_bad_input(r, models):
    m = models["dcc-t"]
    with pytest.raises(DataError, match="not distinct columns"):
        m.sample(r, horizon=2, n_paths=5, given={"NOPE": -5.0})
    with pytest.raises(DataError, match="at most horizon"):
        m.sample(r, horizon=2, n_paths=5, given={"SP500": [-1.0, -2.0, -3.0]})
    with pytest.raises(DataError, match="non-empty mapping"):
        m.sample(r, horizon=2, n_paths=5, given={})
    with pytest.raises(DataError, match="fitted on columns"):
        m.log_prob(r[["JPM", "SP500", "XOM", "PFE"]])
    with pytest.raises(DataError, match="exog"):
        DCC().fit(r, exog=r)
    with pytest.raises(DataError, match="family must be one of"):
        DCC(family="clayton").fit(r)


def test_save_load_round_trip(r, models, tmp_path):
    for name in ("dcc-t", "copula-gaussian"):
        m = models[name]
        path = m.save(tmp_path / f"{name}.pt")
        torch.load(path, weights_only=True)
        m2 = finar.models.load(path)
        assert type(m2) is type(m) and m2.get_params() == m.get_params()
        pd.testing.assert_frame_equal(m2.log_prob(r), m.log_prob(r))
        np.testing.assert_array_equal(m2.sample(r, 3, 10, seed=1, given={"JPM": -4.0}).paths,
                                      m.sample(r, 3, 10, seed=1, given={"JPM": -4.0}).paths)


def test_registered_and_tagged():
    reg = finar.models.registry()
    assert reg["dcc"] is DCC and reg["copula"] is Copula
    assert {"predictive", "joint"} <= DCC.tags
    assert finar.models.create("dcc", family="gaussian").family == "gaussian"


@pytest.mark.parametrize("family", ["t", "gaussian"])
def test_conditional_cdf_is_the_integral_of_the_conditional_density(r, family):
    """conditional_cdf (closed form) agrees with integrating exp(conditional_log_prob) numerically."""
    pair = r[["SP500", "JPM"]]
    m = DCC(family=family).fit(pair)
    grid = np.linspace(-25, 15, 801)
    cdf = _conditional_cdf(m, pair, "JPM", {"SP500": -3.0}, grid)
    idx = pd.bdate_range(pair.index[-1] + pd.offsets.BDay(), periods=1, name="time")
    for v in (-6.0, -2.0, 1.0):
        row = pd.DataFrame([[-3.0, v]], index=idx, columns=pair.columns)
        u = m.conditional_cdf(pd.concat([pair, row]), ["SP500"]).iloc[-1, 0]
        assert u == pytest.approx(np.interp(v, grid, cdf), abs=2e-3)
    pit = m.conditional_cdf(pair, ["SP500"])
    assert list(pit.columns) == ["JPM"] and pit.index.equals(pair.index)
    assert ((pit > 0) & (pit < 1)).all().all()
    # in-sample the conditional PITs given the index are close to uniform
    assert stats.kstest(pit["JPM"], "uniform").statistic < 0.05
