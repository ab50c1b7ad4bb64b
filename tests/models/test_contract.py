"""The forecaster contract, run over every registered model and its tiny configurations.

A model joins this suite by registering (``finar.models.register``); ``_tiny_params`` keeps
its configurations small enough for CPU tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.errors import (
    DataError,
    ModelFileError,
    NonFiniteValueError,
    NotFittedError,
    SeriesTooShortError,
)
from finar.models import Scenarios, clone, registry

CASES = [
    pytest.param(name, params, id=f"{name}-{i}")
    for name, cls in sorted(registry().items())
    for i, params in enumerate(cls._tiny_params())
]


def simulate_garch_t(n: int, seed: int, start: str = "2001-01-01") -> pd.Series:
    """GARCH(1,1)-t returns in percent (PROTOCOLS P2 parameters) on business days."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta, nu = 0.02, 0.09, 0.89, 6.0
    z = rng.standard_t(nu, size=n) / np.sqrt(nu / (nu - 2))
    r = np.empty(n)
    s2 = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = 0.05 + np.sqrt(s2) * z[t]
        s2 = omega + alpha * (r[t] - 0.05) ** 2 + beta * s2
    return pd.Series(r, index=pd.bdate_range(start, periods=n, name="time"), name="spx")


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(800, seed=11)


@pytest.fixture(scope="module")
def fitted() -> dict:
    """Fitted models shared by the tests of one module (fitting is the slow part)."""
    return {}


def _fit(name: str, params: dict, r: pd.Series, cache: dict) -> finar.models.Forecaster:
    key = (name, tuple(sorted(params.items())))
    if key not in cache:
        cache[key] = finar.models.create(name, **params).fit(r)
    return cache[key]


@pytest.mark.parametrize(("name", "params"), CASES)
class TestContract:
    def test_estimator_rules(self, name, params, r):
        m = finar.models.create(name, **params)
        assert m.get_params() == {**type(m)().get_params(), **params}
        assert not m.is_fitted
        with pytest.raises(NotFittedError, match="fit"):
            m.log_prob(r)
        with pytest.raises(NotFittedError):
            m.sample(r, horizon=2, n_paths=3, seed=0)
        assert m.fit(r) is m
        assert all(k.endswith("_") or k in m.get_params() for k in vars(m) if not k.startswith("_"))
        c = clone(m)
        assert type(c) is type(m) and c.get_params() == m.get_params() and not c.is_fitted
        assert isinstance(m.min_context, int) and m.min_context >= 0

    def test_log_prob_shape_alignment_finite(self, name, params, r, fitted):
        m = _fit(name, params, r, fitted)
        lp = m.log_prob(r)
        assert isinstance(lp, pd.Series)
        assert lp.index.equals(r.index) and lp.name == r.name
        k = m.min_context
        assert lp.iloc[:k].isna().all()
        assert np.isfinite(lp.iloc[k:]).all()
        # a different evaluation series of another length works too
        other = simulate_garch_t(300, seed=99)
        lp2 = m.log_prob(other)
        assert len(lp2) == 300 and np.isfinite(lp2.iloc[m.min_context:]).all()

    def test_causality(self, name, params, r, fitted):
        """log p(r_s | r_<s) must not change when any r_t with t > s changes."""
        m = _fit(name, params, r, fitted)
        base = m.log_prob(r)
        rng = np.random.default_rng(0)
        for s in (m.min_context + 3, 250, 600):
            bumped = r.copy()
            bumped.iloc[s + 1:] += rng.normal(0, 5, size=len(r) - s - 1)
            after = m.log_prob(bumped)
            np.testing.assert_array_equal(after.iloc[: s + 1].to_numpy(), base.iloc[: s + 1].to_numpy())
            assert not np.allclose(after.iloc[s + 1:], base.iloc[s + 1:])

    def test_sampling_seeds_and_shapes(self, name, params, r, fitted):
        m = _fit(name, params, r, fitted)
        a = m.sample(context=r, horizon=7, n_paths=50, seed=3)
        b = m.sample(context=r, horizon=7, n_paths=50, seed=3)
        c = m.sample(context=r, horizon=7, n_paths=50, seed=4)
        assert isinstance(a, Scenarios)
        assert a.paths.shape == (50, 7, 1)
        np.testing.assert_array_equal(a.paths, b.paths)
        assert not np.allclose(a.paths, c.paths)
        assert np.isfinite(a.paths).all()
        assert a.index[0] > r.index[-1] and len(a.index) == 7
        assert a.columns == [r.name]
        # paths fan out: different paths differ
        assert a.paths[:, -1, 0].std() > 0

    def test_predictive_agrees_with_log_prob(self, name, params, r, fitted):
        """Where a model has a closed-form predictive, it is the density log_prob evaluates."""
        m = _fit(name, params, r, fitted)
        pred = m.predictive(r)
        if pred is None:
            pytest.skip(f"{name} has no closed-form predictive distribution")
        k = m.min_context
        y = r.to_numpy()
        np.testing.assert_allclose(pred.log_prob(y)[k:], m.log_prob(r).to_numpy()[k:], rtol=1e-10)
        pit = pred.cdf(y)[k:]
        assert ((pit > 0) & (pit < 1)).all()
        np.testing.assert_allclose(pred.cdf(pred.ppf(0.3))[k:], 0.3, rtol=1e-6)
        assert (pred.es(0.01)[k:] > pred.var(0.01)[k:]).all()
        # causal like log_prob: the distribution for day s ignores days after s
        bumped = r.copy()
        bumped.iloc[401:] += 3.0
        after = m.predictive(bumped)
        np.testing.assert_array_equal(after.loc[:401], pred.loc[:401])
        np.testing.assert_array_equal(after.scale[:401], pred.scale[:401])

    def test_cdf_is_the_integral_of_log_prob(self, name, params, r, fitted):
        """``cdf`` (the PIT) is causal, NaN exactly where ``log_prob`` is, and its slope in the
        observation is the density ``exp(log_prob)``."""
        m = _fit(name, params, r, fitted)
        try:
            u = m.cdf(r)
        except NotImplementedError:
            pytest.skip(f"{name} has no CDF (anomaly scores fall back to sample paths)")
        lp = m.log_prob(r)
        assert isinstance(u, pd.Series) and u.index.equals(r.index)
        np.testing.assert_array_equal(u.isna().to_numpy(), lp.isna().to_numpy())
        assert ((u.dropna() > 0) & (u.dropna() < 1)).all()
        bumped = r.copy()
        bumped.iloc[501:] += 3.0
        np.testing.assert_array_equal(m.cdf(bumped).iloc[:501].to_numpy(), u.iloc[:501].to_numpy())
        h, y = 1e-3, r.copy()
        lo, hi = y.copy(), y.copy()
        lo.iloc[-1] -= h
        hi.iloc[-1] += h
        slope = (m.cdf(hi).iloc[-1] - m.cdf(lo).iloc[-1]) / (2 * h)
        np.testing.assert_allclose(slope, np.exp(lp.iloc[-1]), rtol=2e-3)
        # at= evaluates each day's predictive elsewhere, conditioning on r: day t at a_t is the
        # PIT of a series whose day t is a_t (the last day, which conditions nothing)
        np.testing.assert_array_equal(m.cdf(r, at=r.to_numpy()).to_numpy(), u.to_numpy())
        shifted, moved = m.cdf(r, at=r.to_numpy() - 0.7), r.copy()
        moved.iloc[-1] -= 0.7
        np.testing.assert_allclose(shifted.iloc[-1], m.cdf(moved).iloc[-1], rtol=1e-12)
        assert (shifted.dropna() <= u.dropna()).all()
        with pytest.raises(DataError, match="at must be shaped like r"):
            m.cdf(r, at=r.to_numpy()[:-1])
        # ppf inverts it: the 5% quantile of the last day's predictive has PIT 0.05
        try:
            q = m.ppf(r, 0.05)
        except NotImplementedError:
            return  # optional: the anomaly detector repairs with the training median instead
        at = y.copy()
        at.iloc[-1] = q.iloc[-1]
        np.testing.assert_allclose(m.cdf(at).iloc[-1], 0.05, atol=1e-5)

    def test_sample_depends_on_context(self, name, params, r, fitted):
        m = _fit(name, params, r, fitted)
        a = m.sample(context=r.iloc[:400], horizon=3, n_paths=20, seed=1)
        assert a.index[0] > r.index[399]
        assert a.paths.shape == (20, 3, 1)

    def test_save_load_round_trip(self, name, params, r, fitted, tmp_path):
        m = _fit(name, params, r, fitted)
        path = m.save(tmp_path / "model.pt")
        # the file is loadable with weights_only=True, i.e. no pickled objects
        torch.load(path, weights_only=True)
        m2 = finar.models.load(path)
        assert type(m2) is type(m) and m2.get_params() == m.get_params()
        pd.testing.assert_series_equal(m2.log_prob(r), m.log_prob(r))
        np.testing.assert_array_equal(m2.sample(r, 4, 10, seed=5).paths, m.sample(r, 4, 10, seed=5).paths)

    def test_too_short_raises(self, name, params, r):
        m = finar.models.create(name, **params)
        with pytest.raises(SeriesTooShortError, match="at least"):
            m.fit(r.iloc[: max(m.min_fit_obs, m.min_context + 1) - 1])

    def test_bad_input_raises(self, name, params, r):
        bad = r.copy()
        bad.iloc[10] = np.nan
        with pytest.raises(NonFiniteValueError, match=str(bad.index[10].date())):
            finar.models.create(name, **params).fit(bad)
        with pytest.raises(DataError, match="pandas"):
            finar.models.create(name, **params).fit(r.to_numpy())

    def test_several_series(self, name, params, r):
        panel = pd.concat([r.rename("a"), simulate_garch_t(len(r), seed=5).rename("b").set_axis(r.index)],
                          axis=1)
        m = finar.models.create(name, **params).fit(panel)
        lp = m.log_prob(panel)
        assert isinstance(lp, pd.DataFrame) and lp.shape == panel.shape
        assert list(lp.columns) == ["a", "b"]
        sc = m.sample(panel, horizon=3, n_paths=5, seed=0)
        assert sc.paths.shape == (5, 3, 2) and sc.columns == ["a", "b"]


def test_registry_has_baselines():
    assert {"ar", "garch"} <= set(registry())


def test_load_rejects_bad_files(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ModelFileError, match="not found"):
        finar.models.load(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ModelFileError, match="not a readable finar model"):
        finar.models.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not a finar model"):
        finar.models.load(foreign)


def test_load_rejects_truncated_and_pickled(tmp_path):
    m = finar.models.GARCH().fit(simulate_garch_t(300, seed=1))
    path = m.save(tmp_path / "m.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        finar.models.load(cut)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "finar-model", "x": Evil()}, evil)
    with pytest.raises(ModelFileError):
        finar.models.load(evil)


def test_load_rejects_newer_file_version(tmp_path):
    m = finar.models.AR(order=1).fit(simulate_garch_t(300, seed=1))
    path = m.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["file_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="upgrade finar"):
        finar.models.load(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    """An interrupted save leaves an existing model file intact."""
    m = finar.models.AR(order=1).fit(simulate_garch_t(300, seed=1))
    path = m.save(tmp_path / "m.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        m.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_set_params_rejects_unknown():
    with pytest.raises(DataError, match="no parameter"):
        finar.models.GARCH().set_params(volatility="garch")
