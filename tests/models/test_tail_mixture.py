"""family='t-mix': a mixture of t copulas over a grid of degrees of freedom sharing the DCC
correlation. The chain rule sums to the mixture's density, draws have uniform marginals, stress
draws match the conditional CDF, files keep the weights, and the closed-form-only path refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import finar
from finar.errors import DataError
from finar.models import DCC, GARCH, MarginalCopula, NeuralDCC
from finar.models.copula import TAIL_GRID, chain_terms, from_tail, lower_tail

COLS = ["SP500", "JPM", "XOM", "AAPL"]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2005":"2014"]


@pytest.fixture(scope="module")
def model(r) -> DCC:
    return DCC(family="t-mix").fit(r)


def test_weights_and_the_chain_rule_sum_to_the_mixture_density(r, model):
    w = np.asarray(model.tail_weights_)
    assert w.shape == (len(TAIL_GRID),) and (w >= 0).all() and w.sum() == pytest.approx(1.0)
    st = model._state(r)
    chol = np.linalg.cholesky(st["corr"])
    p, sign = lower_tail(st["x"], model.nu_), np.sign(st["x"])
    comp = np.stack([chain_terms(from_tail(p, sign, nu), chol, nu).sum(axis=1) for nu in TAIL_GRID])
    mixture = special.logsumexp(np.log(w)[:, None] + comp, axis=0)
    lp = model.log_prob(r).to_numpy()
    np.testing.assert_allclose(lp.sum(axis=1), st["logf"].sum(axis=1) + mixture, atol=1e-10)
    # the maximum-likelihood weights do at least as well in-sample as the t copula they start from
    assert model.joint_log_prob(r).mean() >= DCC(family="t").fit(r).joint_log_prob(r).mean() - 1e-4


def test_draws_have_uniform_marginals_and_stress_draws_match_the_conditional_cdf(r, model):
    corr = model._state(r)["corr"][-1]
    rng = np.random.default_rng(0)
    _, p, sign = model._draw_scores(corr, rng, 20_000)
    u = np.where(sign > 0, 1 - p, p)
    assert min(stats.kstest(u[:, j], "uniform").pvalue for j in range(len(COLS))) > 0.01
    g = np.array([0])
    x, _, _ = model._draw_given(corr, g, np.full((20_000, 1), 0.01), -np.ones((20_000, 1)), rng)
    pits = model._conditional_pits(x, corr, g)
    assert min(stats.kstest(pits[:, j], "uniform").pvalue for j in range(len(COLS) - 1)) > 0.01
    sc = model.sample(r, horizon=3, n_paths=200, seed=0, given={"SP500": -5.0})
    assert (sc.paths[:, 0, 0] == -5.0).all() and (sc.paths[:, 0, 1:].mean(axis=0) < -2).all()


def test_files_neural_and_marginal_variants(tmp_path, r, model):
    back = finar.models.load(model.save(tmp_path / "mix.pt"))
    assert back.tail_weights_ == model.tail_weights_
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), model.log_prob(r).to_numpy())
    nd = NeuralDCC(family="t-mix", max_iter=3).fit(r)
    assert len(nd.tail_weights_) == len(TAIL_GRID) and np.isfinite(nd.joint_log_prob(r)).all()
    mc = MarginalCopula(GARCH(dist="t", vol="garch"), DCC(family="t-mix")).fit(r)
    np.testing.assert_allclose(mc.log_prob(r).to_numpy(), model.log_prob(r).to_numpy(), atol=1e-3)
    assert mc.sample(r, horizon=2, n_paths=50, seed=0).paths.shape == (50, 2, len(COLS))
    with pytest.raises(DataError, match="t-mix"):
        model.conditional_predictive(r)
