"""JointEnsemble: the exact mixture of joint models' day densities, conditioning and scenarios."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import finar
from finar.errors import DataError
from finar.models import DCC, GARCH, Copula, Ensemble, JointEnsemble, MarginalCopula
from finar.models.ensemble import systematic_counts


@pytest.fixture(scope="module")
def r():
    px = finar.load("sp500-stocks")[["SP500", "AAPL", "MSFT"]].loc["2009":"2012"]
    return finar.returns(px)


@pytest.fixture(scope="module")
def ens(r):
    # members with different marginals (normal vs t), so that the given column moves the weights
    calm = MarginalCopula(GARCH(dist="normal"), Copula(family="gaussian"))
    return JointEnsemble([DCC(family="t"), calm], weights=[3, 1]).fit(r)


def test_cells_are_the_chain_rule_of_the_day_mixture(r, ens):
    lp = ens.log_prob(r)
    joints = np.stack([m.joint_log_prob(r).to_numpy() for m in ens.members_])
    want = logsumexp(joints + np.log([0.75, 0.25])[:, None], axis=0)
    np.testing.assert_allclose(lp.sum(axis=1).to_numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(ens.joint_log_prob(r).to_numpy(), want, rtol=1e-12)
    # the first cell is the mixture of the members' marginal laws of the first column
    first = np.stack([m.predictive(r)["SP500"].log_prob(r["SP500"].to_numpy()) for m in ens.members_])
    want = logsumexp(first + np.log([0.75, 0.25])[:, None], axis=0)
    np.testing.assert_allclose(lp["SP500"].to_numpy(), want, rtol=1e-9)
    # given the first column, the rest's density is the sum of the remaining cells
    cond = ens.conditional_log_prob(r, ["SP500"])
    np.testing.assert_allclose(cond.to_numpy(), lp[["AAPL", "MSFT"]].sum(axis=1).to_numpy(), rtol=1e-9)
    # and it is not the cellwise mixture (what Ensemble computes for univariate members)
    cells = np.stack([m.log_prob(r).to_numpy() for m in ens.members_])
    cellwise = logsumexp(cells + np.log([0.75, 0.25])[:, None, None], axis=0)
    assert np.abs(cellwise[:, 1:] - lp.to_numpy()[:, 1:]).max() > 1e-3


def test_posterior_moves_with_the_given_column(r, ens):
    post = ens.posterior(r, ["SP500"])
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)
    # one given column: the members' marginal laws of it give the weights
    dens = np.stack([m.predictive(r)["SP500"].log_prob(r["SP500"].to_numpy()) for m in ens.members_])
    want = np.exp(dens[0] + np.log(0.75) - logsumexp(dens + np.log([0.75, 0.25])[:, None], axis=0))
    np.testing.assert_allclose(post["member_0"].to_numpy(), want, rtol=1e-9)
    crash = r["SP500"].abs().idxmax()
    assert post.loc[crash, "member_0"] > 0.9  # the t member explains the largest move
    assert post["member_0"].min() < 0.75 < post["member_0"].max()


def test_conditional_cdf_matches_conditional_draws(r, ens):
    """P(AAPL <= x | SP500 = -3) from conditional_cdf against the share of draws of sample(given=)."""
    nxt = pd.DataFrame([[-3.0, -2.5, 0.0]], columns=r.columns,
                       index=finar.models.scenarios.future_index(r.index, 1))
    ext = pd.concat([r, nxt])
    cdf = ens.conditional_cdf(ext, ["SP500"]).iloc[-1]
    sc = ens.sample(r, horizon=1, n_paths=20_000, seed=3, given={"SP500": -3.0})
    assert (sc.paths[:, 0, 0] == -3.0).all()
    share = (sc.paths[:, 0, 1] <= -2.5).mean()
    assert share == pytest.approx(cdf["AAPL"], abs=4 * np.sqrt(cdf["AAPL"] * (1 - cdf["AAPL"]) / 20_000))
    post = ens.posterior(ext, ["SP500"]).iloc[-1].to_numpy()
    assert abs(post[0] - 0.75) > 0.01  # the test sees a posterior that differs from the prior


def test_next_day_scenarios_are_the_samples(r, ens):
    pos = [len(r) - 30, len(r) - 1]
    nd = ens.next_day_scenarios(r, pos, 64, [5, 9])
    for k, (t, s) in enumerate(zip(pos, [5, 9], strict=True)):
        np.testing.assert_allclose(nd[k], ens.sample(r.iloc[:t], 1, 64, s).paths[:, 0, :], rtol=1e-12)


def test_systematic_counts():
    rng = np.random.default_rng(0)
    w = np.array([0.5, 0.0, 0.3, 0.2])
    for n in (1, 7, 100):
        c = systematic_counts(w, n, rng)
        assert c.sum() == n and c[1] == 0
        assert ((c >= np.floor(n * w)) & (c <= np.floor(n * w) + 1)).all()
    # each draw is marginally from the mixture: with one draw, member k comes up with probability w_k
    picks = np.array([np.argmax(systematic_counts(w, 1, rng)) for _ in range(4000)])
    np.testing.assert_allclose(np.bincount(picks, minlength=4) / 4000, w, atol=0.03)


def test_members_must_match_the_class(r):
    with pytest.raises(DataError, match="JointEnsemble"):
        Ensemble([DCC(), Copula()]).fit(r)
    with pytest.raises(DataError, match="Ensemble"):
        JointEnsemble([GARCH(), DCC()]).fit(r)


def test_bad_given(r, ens):
    with pytest.raises(DataError, match="first simulated day"):
        ens.sample(r, horizon=3, n_paths=10, seed=0, given={"SP500": [-3.0, -1.0]})
    with pytest.raises(DataError, match="not columns"):
        ens.sample(r, horizon=1, n_paths=10, seed=0, given={"SPX": -3.0})
    with pytest.raises(DataError, match="conditional"):
        ens.conditional_predictive(r)


def test_a_member_without_conditional_log_prob_uses_its_leading_cells(r):
    """PixelCNN has no conditional_log_prob: the index's density is its first cell (index first)."""
    from finar.models import PixelCNN

    pc = PixelCNN(channels=8, n_layers=3, train={"max_epochs": 1, "window": 32, "batch_size": 8})
    ens = JointEnsemble([pc, DCC(family="t")]).fit(r.iloc[:300])
    sub = r.iloc[:400]
    lp = [as_cells.to_numpy() for as_cells in (ens.members_[0].log_prob(sub), ens.members_[1].log_prob(sub))]
    marg = np.stack([lp[0][:, 0], lp[1][:, 0]])
    want = np.exp(marg[0] - logsumexp(marg, axis=0))
    ok = np.isfinite(want)
    assert ok.sum() > 50
    np.testing.assert_allclose(ens.posterior(sub, ["SP500"])["member_0"].to_numpy()[ok], want[ok], rtol=1e-9)
    with pytest.raises(DataError, match="leading columns"):
        ens.posterior(sub, ["AAPL"])
