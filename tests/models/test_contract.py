"""The forecaster contract, run over every registered model and its tiny configurations.

A model joins this suite by registering (``finar.models.register``); ``_tiny_params`` keeps its
configurations small enough for CPU tests. The suite itself is :func:`finar.testing.check_forecaster`
(shapes, alignment, causality, seeds, files, predictive consistency, covariates, bad input,
panels); the tests below add what is specific to finar's own models and files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.errors import DataError, ModelFileError, NonFiniteValueError, SeriesTooShortError
from finar.models import Forecaster, registry
from finar.testing import check_forecaster

CASES = [
    pytest.param(cls, params, id=f"{name}-{i}")
    for name, cls in sorted(registry(Forecaster).items())
    if cls.__module__.startswith("finar.")  # finar's own models, not ones a test registers
    for i, params in enumerate(cls._tiny_params())
]
PREDICTIVE = [case for case in CASES if "predictive" in case.values[0].tags]


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
    """Fitted models shared by the tests of this module (fitting is the slow part)."""
    return {}


def _kw(cls: type[Forecaster], r: pd.Series) -> dict:
    """A positive covariate for models that need one (tag ``"needs_exog"``): an EWMA of ``r^2``."""
    if "needs_exog" not in cls.tags:
        return {}
    return {"exog": (r**2).ewm(alpha=0.3).mean().add(1e-3).rename("rv").to_frame()}


def _fit(cls: type[Forecaster], params: dict, r: pd.Series, cache: dict) -> Forecaster:
    key = (cls, repr(sorted(params.items())))
    if key not in cache:
        cache[key] = cls(**params).fit(r, **_kw(cls, r))
    return cache[key]


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_contract(cls, params):
    check_forecaster(cls(**params))


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_error_classes(cls, params, r):
    """The errors are finar's most specific ones, naming the problem."""
    m = cls(**params)
    with pytest.raises(SeriesTooShortError, match="at least"):
        m.fit(r.iloc[: max(m.min_fit_obs, m.min_context + 1) - 1])
    bad = r.copy()
    bad.iloc[10] = np.nan
    with pytest.raises(NonFiniteValueError, match=str(bad.index[10].date())):
        cls(**params).fit(bad)
    with pytest.raises(DataError, match="pandas"):
        cls(**params).fit(r.to_numpy())


@pytest.mark.parametrize(("cls", "params"), PREDICTIVE)
def test_cdf_at_evaluates_each_days_predictive_elsewhere(cls, params, r, fitted):
    """``cdf(r, at=a)`` is day t's predictive CDF at a_t, conditioning on r: on the last day (which
    conditions nothing) it is the PIT of a series whose last day is a_t."""
    m, kw = _fit(cls, params, r, fitted), _kw(cls, r)
    u = m.cdf(r, **kw)
    np.testing.assert_array_equal(m.cdf(r, at=r.to_numpy(), **kw).to_numpy(), u.to_numpy())
    shifted, moved = m.cdf(r, at=r.to_numpy() - 0.7, **kw), r.copy()
    moved.iloc[-1] -= 0.7
    np.testing.assert_allclose(shifted.iloc[-1], m.cdf(moved, **kw).iloc[-1], rtol=1e-12)
    assert (shifted.dropna() <= u.dropna()).all()
    assert shifted.isna().sum() == u.isna().sum() == m.min_context
    with pytest.raises(DataError, match="at must be shaped like r"):
        m.cdf(r, at=r.to_numpy()[:-1], **kw)
    q = m.ppf(r, 0.05, **kw)
    at = r.copy()
    at.iloc[-1] = q.iloc[-1]
    np.testing.assert_allclose(m.cdf(at, **kw).iloc[-1], 0.05, atol=1e-5)


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
        m.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_set_params_rejects_unknown():
    with pytest.raises(DataError, match="no parameter"):
        finar.models.GARCH().set_params(volatility="garch")
