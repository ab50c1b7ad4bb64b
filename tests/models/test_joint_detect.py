"""Joint models as anomaly detectors: each asset's exact law given the day's other assets.

``CopulaGARCH.conditional_predictive`` (Copula, DCC) against a conditional normal worked out by
hand from the correlation matrix and against the joint density integrated numerically; and
``AnomalyDetector(DCC, given='others')`` flagging a planted cross-sectional anomaly (one asset
reversing on a market day, at an ordinary size) that a per-asset GARCH detector cannot see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

import finar
from finar.anomaly import AnomalyDetector
from finar.errors import DataError
from finar.models.copula import Copula
from finar.models.dcc import DCC
from tests.conftest import raises_exactly

COLS = ["SP500", "JPM", "XOM", "PFE"]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    """Four bundled series over 2006-2009."""
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2006":"2009"]


def test_gaussian_copula_conditional_pit_is_the_conditional_normal_by_hand(r):
    """Given every other column of the day, a Gaussian copula's score is N(R_jg R_gg^-1 x_g,
    1 - R_jg R_gg^-1 R_gj): worked out here from the marginal PITs and the correlation matrix."""
    m = Copula(family="gaussian").fit(r)
    marg = m.predictive(r)
    x = np.column_stack([special.ndtri(marg[c].cdf(r[c].to_numpy())) for c in COLS])
    q = np.asarray(m.qbar_)
    corr = q / np.sqrt(np.outer(np.diag(q), np.diag(q)))
    cond = m.conditional_predictive(r)
    for j, c in enumerate(COLS):
        g = [k for k in range(len(COLS)) if k != j]
        beta = np.linalg.solve(corr[np.ix_(g, g)], corr[g, j])
        sd = np.sqrt(1 - corr[j, g] @ beta)
        by_hand = special.ndtr((x[:, j] - x[:, g] @ beta) / sd)
        np.testing.assert_allclose(cond[c].cdf(r[c].to_numpy()), by_hand, rtol=1e-9, atol=1e-12)
        # the conditioning matters: on these correlated series the conditional PIT is not the marginal
        assert np.abs(by_hand - special.ndtr(x[:, j])).max() > 0.2


@pytest.mark.parametrize("model", [DCC(family="t"), Copula(family="t")], ids=["dcc-t", "copula-t"])
def test_t_conditional_cdf_integrates_the_joint_density(r, model):
    """For the t copula (dynamic or static), the CDF of a column given the others on a new day
    equals the day's joint density integrated numerically over that column and normalised."""
    m = model.fit(r)
    idx = pd.bdate_range(r.index[-1] + pd.offsets.BDay(), periods=1, name="time")
    others = {"SP500": -2.5, "JPM": -3.0, "PFE": -1.2}
    grid = np.linspace(-30, 20, 1001)
    dens = []
    for v in grid:
        row = pd.DataFrame([[others.get(c, v) for c in COLS]], index=idx, columns=COLS)
        dens.append(np.exp(m.joint_log_prob(pd.concat([r, row])).iloc[-1]))
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    cdf /= cdf[-1]
    for v in (-4.0, -1.5, 0.5):
        day = pd.concat([r, pd.DataFrame([[others.get(c, v) for c in COLS]], index=idx, columns=COLS)])
        law = m.conditional_predictive(day)["XOM"]
        assert law.cdf(day["XOM"].to_numpy())[-1] == pytest.approx(np.interp(v, grid, cdf), abs=2e-3)
        # its density is the normalised joint density too
        assert np.exp(law.log_prob(day["XOM"].to_numpy())[-1]) == pytest.approx(
            np.interp(v, grid, np.asarray(dens)) / integrate.trapezoid(dens, grid), rel=2e-3)
    # the index and JPM fell: XOM's conditional median is well below its marginal one
    day = pd.concat([r, pd.DataFrame([[others.get(c, 0.0) for c in COLS]], index=idx, columns=COLS)])
    assert m.conditional_predictive(day)["XOM"].ppf(0.5)[-1] < m.predictive(day)["XOM"].ppf(0.5)[-1] - 0.5


def test_left_is_the_chain_rule_and_quantities_agree(r):
    m = DCC(family="t").fit(r)
    left = m.conditional_predictive(r, given="left")
    lp = m.log_prob(r)
    for c in COLS:  # given the columns to its left: exactly log_prob's cell
        np.testing.assert_allclose(left[c].log_prob(r[c].to_numpy()), lp[c].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(left["SP500"].cdf(r["SP500"].to_numpy()),
                               m.predictive(r)["SP500"].cdf(r["SP500"].to_numpy()), rtol=1e-10)
    law = m.conditional_predictive(r)["JPM"].take([-3, -2, -1])
    u = np.array([0.01, 0.5, 0.97])
    np.testing.assert_allclose(law.cdf(law.ppf(u)), u, rtol=1e-9)
    draws = law.sample(np.random.default_rng(0), 200_000)
    np.testing.assert_allclose(law.mean(), draws.mean(0), atol=0.02)
    np.testing.assert_allclose(law.std(), draws.std(0), rtol=0.02)
    lo = np.quantile(draws, 0.05, axis=0)
    np.testing.assert_allclose(law.es(0.05), [-d[d <= q].mean() for d, q in zip(draws.T, lo, strict=True)],
                               rtol=0.03)
    with raises_exactly(DataError, "given"):
        m.conditional_predictive(r, given="right")


@pytest.mark.parametrize("model", [DCC(family="t"), Copula(family="gaussian")], ids=["dcc-t", "copula"])
def test_reused_rows_give_the_same_laws(r, model):
    """conditional_predictive reuses the rows an earlier call saw unchanged (a detector's repairs):
    the laws equal those of a fresh model on the edited series, for an edit, a prefix and a longer one."""
    m = model.fit(r.iloc[:500])
    fresh = model.__class__(**model.get_params())
    fresh._set_state(m._get_state())
    edited = r.copy()
    edited.iloc[700, 2] = -9.0
    for given in ("others", "left"):
        m.conditional_predictive(r, given=given)
        for frame in (edited, edited.iloc[:701], edited.iloc[:650], edited):
            a = m.conditional_predictive(frame, given=given)
            fresh.__dict__.pop("_laws_cache", None)
            b = fresh.conditional_predictive(frame, given=given)
            for c in COLS:
                np.testing.assert_array_equal(a[c].cdf(frame[c].to_numpy()), b[c].cdf(frame[c].to_numpy()))
                np.testing.assert_array_equal(a[c].sigma, b[c].sigma)


def _factor_panel(n_days: int, seed: int) -> pd.DataFrame:
    """Four assets on one market factor (correlation 0.8), Student-t(6) shocks, unit variance."""
    rng = np.random.default_rng(seed)
    t6 = np.sqrt(4 / 6)  # a t(6) times this has unit variance
    f = rng.standard_t(6, n_days) * t6
    e = rng.standard_t(6, (n_days, 4)) * t6
    x = np.sqrt(0.8) * f[:, None] + np.sqrt(0.2) * e
    return pd.DataFrame(x, index=pd.bdate_range("2001-01-01", periods=n_days),
                        columns=["A", "B", "C", "D"])


def test_dcc_flags_a_planted_flip_that_per_asset_garch_misses():
    """A 'flip': on a market day one asset that moved with the others (1.2 to 2.2 of its sigmas)
    reverses. Its size is ordinary, so the per-asset GARCH detector (and the joint model's
    marginals) pass it; given the day's other assets it is extreme, and the DCC detector flags it."""
    x = _factor_panel(1600, seed=3)
    train, test = x.iloc[:1200], x.iloc[1200:].copy()
    v = test.to_numpy().copy()
    same = (np.sign(v) == np.sign(v[:, :1])).all(1)
    days = []  # market days (all four the same sign) with an asset of ordinary size
    for t in np.flatnonzero(same):
        j = len(days) % 4
        if 1.2 <= abs(v[t, j]) <= 2.2 and all(abs(t - d) > 10 for d, _ in days):
            days.append((t, j))
    days = days[:6]
    assert len(days) == 6
    for t, j in days:
        v[t, j] = -v[t, j]
    test.iloc[:, :] = v
    planted = np.zeros(v.shape, dtype=bool)
    planted[tuple(np.array(days).T)] = True

    def flags(det: AnomalyDetector) -> np.ndarray:
        out = det.fit(train).score(test, context=train)
        return out["flag"].unstack("asset")[list(x.columns)].to_numpy()

    joint = flags(AnomalyDetector(DCC(family="t"), level=0.01, given="others"))
    per_asset = flags(AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01))
    marginal = flags(AnomalyDetector(DCC(family="t"), level=0.01))  # no given: the marginal laws
    assert joint[planted].all()
    assert not per_asset[planted].any() and not marginal[planted].any()
    assert joint[~planted].mean() < 0.03  # about the nominal 1% on the clean asset-days


def test_given_needs_a_joint_model():
    with raises_exactly(DataError, "conditional_predictive"):
        AnomalyDetector(finar.models.GARCH(dist="t"), given="others").fit(_factor_panel(300, seed=0))
    with raises_exactly(DataError, "given"):
        AnomalyDetector(DCC(), given="all").fit(_factor_panel(300, seed=0))
