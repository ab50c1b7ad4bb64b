"""Ensemble: exact mixture density, predictive, sampling proportions, files."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

import finar
from finar.errors import DataError
from finar.models import GARCH
from finar.models.ensemble import Ensemble, MixturePredictive
from finar.models.predictive import LocScalePredictive


@pytest.fixture(scope="module")
def r():
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2011":"2013"]


@pytest.fixture(scope="module")
def ens(r):
    return Ensemble([GARCH(dist="t"), GARCH(vol="gjr", dist="normal")], weights=[3, 1]).fit(r)


def test_log_prob_is_the_weighted_mixture(r, ens):
    a, b = (m.log_prob(r).to_numpy() for m in ens.members_)
    expected = logsumexp(np.stack([a + np.log(0.75), b + np.log(0.25)]), axis=0)
    np.testing.assert_allclose(ens.log_prob(r).to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(ens.predictive(r).log_prob(r.to_numpy()), expected, rtol=1e-10)


def test_mixture_predictive_against_quadrature():
    idx = pd.RangeIndex(2)
    p1 = LocScalePredictive(idx, np.array([0.0, 0.5]), np.array([1.0, 2.0]), "normal", ())
    p2 = LocScalePredictive(idx, np.array([-1.0, 0.0]), np.array([3.0, 0.5]), "t", (4.0,))
    mix = MixturePredictive([p1, p2], np.array([0.6, 0.4]))
    for t in range(2):
        s2 = p2.scale[t] * np.sqrt(0.5)  # the scale of a t(4) with standard deviation p2.scale

        def pdf(x, t=t, s2=s2):
            return 0.6 * stats.norm.pdf(x, p1.loc[t], p1.scale[t]) + 0.4 * stats.t.pdf(x, 4, p2.loc[t], s2)

        def cdf(x, t=t, s2=s2):
            return 0.6 * stats.norm.cdf(x, p1.loc[t], p1.scale[t]) + 0.4 * stats.t.cdf(x, 4, p2.loc[t], s2)

        q = mix.ppf(0.05)[t]
        assert cdf(q) == pytest.approx(0.05, abs=1e-9)
        es_ref = -integrate.quad(lambda x: x * pdf(x), -np.inf, q, epsabs=1e-12, limit=200)[0] / 0.05
        assert mix.es(0.05)[t] == pytest.approx(es_ref, abs=1e-6)
        y = 0.7
        crps_ref = (integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y, epsabs=1e-12, limit=200)[0]
                    + integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, np.inf, epsabs=1e-12, limit=200)[0])
        assert mix.crps(np.array([y, y]))[t] == pytest.approx(crps_ref, abs=1e-6)
        assert mix.mean()[t] == pytest.approx(0.6 * p1.loc[t] + 0.4 * p2.loc[t], abs=1e-12)


def test_sample_draws_each_path_from_one_member(r):
    calm = GARCH(dist="normal")
    ens = Ensemble([calm, calm], weights=[1, 1]).fit(r)
    a = ens.sample(r, horizon=5, n_paths=400, seed=3)
    b = ens.sample(r, horizon=5, n_paths=400, seed=3)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.array_equal(a.paths, ens.sample(r, horizon=5, n_paths=400, seed=4).paths)
    assert a.paths.shape == (400, 5, 1)


def test_save_load_round_trip(tmp_path, r, ens):
    path = ens.save(tmp_path / "ens.pt")
    back = finar.models.load(path)
    assert isinstance(back, Ensemble)
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), ens.log_prob(r).to_numpy(), rtol=1e-12)


def test_bad_members():
    with pytest.raises(DataError, match="non-empty"):
        Ensemble([]).fit(pd.Series(np.zeros(10)))
    with pytest.raises(DataError, match="weights"):
        Ensemble([GARCH()], weights=[1, 2]).fit(pd.Series(np.zeros(10)))
