"""finar.testing.check_forecaster on a user-written model: the honest one passes, and each broken
variant (one that looks ahead, one that ignores its seed, one whose predictive disagrees with its
log_prob, one whose covariate conditions the same day) fails with the check named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finar
from finar._estimator import _REGISTRY
from finar.errors import DataError
from finar.models import UnivariateForecaster, register
from finar.testing import CHECKS, check_forecaster


class RollingNormal(UnivariateForecaster):
    """Gaussian returns with the volatility of the last ``window`` days (the model of docs/testing.md).

    ``r_t | r_<t ~ N(mu, s_t^2)`` with ``s_t`` the standard deviation of ``r_{t-window} .. r_{t-1}``.
    """

    tags = frozenset({"predictive"})

    def __init__(self, window: int = 20) -> None:
        self.window = window

    @property
    def min_context(self) -> int:  # validates window too: fit and log_prob read it first
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 2:
            raise DataError(f"window must be an integer >= 2, got {self.window!r}")
        return self.window

    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        return {"mu": float(y.mean())}

    def _scale(self, y: np.ndarray) -> np.ndarray:
        # the rolling std ending at day t-1, moved to day t: s_t sees r_{t-window} .. r_{t-1}
        return pd.Series(y).rolling(self.min_context).std().shift(1).to_numpy()

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple:
        scale = self._scale(y)
        return np.where(np.isnan(scale), np.nan, state["mu"]), scale, "normal", ()

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        loc, scale, _, _ = self._predictive_1d(state, y, x)
        return stats.norm.logpdf(y, loc, scale)

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray:
        recent = np.tile(context[-self.min_context:], (n_paths, 1))  # (n_paths, window)
        paths = np.empty((n_paths, horizon))
        for h in range(horizon):
            paths[:, h] = state["mu"] + recent.std(axis=1, ddof=1) * rng.standard_normal(n_paths)
            recent = np.column_stack([recent[:, 1:], paths[:, h]])
        return paths


class RollingNormalX(RollingNormal):
    """The same with a covariate: ``loc_t = a + b x_{t-1}`` (least squares of ``r_t`` on ``x_{t-1}``)."""

    tags = frozenset({"predictive", "exog"})
    lag = 1  # x_{t-lag} conditions r_t; lag 0 would use a covariate not yet known

    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        if x is None:
            return {"a": float(y.mean()), "b": 0.0}
        prev = self._prev(x)
        ok = ~np.isnan(prev)
        b, a = np.polyfit(prev[ok], y[ok], 1)
        return {"a": float(a), "b": float(b)}

    def _prev(self, x: np.ndarray) -> np.ndarray:
        return np.r_[np.full(self.lag, np.nan), x[: len(x) - self.lag, 0]]

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple:
        scale = self._scale(y)
        loc = state["a"] + (0.0 if x is None else state["b"] * self._prev(x))
        return np.where(np.isnan(scale), np.nan, loc), scale, "normal", ()

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray:
        recent = np.tile(context[-self.min_context:], (n_paths, 1))
        xs = np.zeros(horizon) if x_context is None else np.r_[x_context[-1, 0], x_future[:, 0]]
        paths = np.empty((n_paths, horizon))
        for h in range(horizon):
            loc = state["a"] + state["b"] * xs[h]
            paths[:, h] = loc + recent.std(axis=1, ddof=1) * rng.standard_normal(n_paths)
            recent = np.column_stack([recent[:, 1:], paths[:, h]])
        return paths


# ---- broken variants (not registered themselves: a subclass would inherit its parent's name) -------
class PeekingNormal(RollingNormal):
    """Looks ahead: day t's volatility includes r_t itself (still NaN for the first window days)."""

    registry_name = ""

    def _scale(self, y: np.ndarray) -> np.ndarray:
        s = pd.Series(y).rolling(self.min_context).std().to_numpy(copy=True)
        s[: self.min_context] = np.nan
        return s


class CentredNormal(RollingNormal):
    """Looks ahead: day t's volatility comes from a window centred on day t."""

    registry_name = ""

    def _scale(self, y: np.ndarray) -> np.ndarray:
        s = pd.Series(y).rolling(self.min_context, center=True, min_periods=2).std().to_numpy(copy=True)
        s[: self.min_context] = np.nan
        return s


class SeedlessNormal(RollingNormal):
    """Ignores the seed: draws from a fresh, unseeded generator."""

    registry_name = ""

    def _sample_1d(self, state, context, x_context, x_future, horizon, n_paths, rng):
        return super()._sample_1d(state, context, x_context, x_future, horizon, n_paths,
                                  np.random.default_rng())


class InconsistentNormal(RollingNormal):
    """Its predictive says normal, its log_prob scores a Student-t with 4 degrees of freedom."""

    registry_name = ""

    def _log_prob_1d(self, state, y, x):
        loc, scale, _, _ = self._predictive_1d(state, y, x)
        return stats.t.logpdf(y, 4, loc, scale)


class SameDayExog(RollingNormalX):
    """Conditions r_t on exog row t, which is only known at the close of day t."""

    registry_name = ""

    lag = 0


@pytest.fixture(scope="module", autouse=True)
def _registered() -> Iterator[None]:
    """Register the honest models under test-only names for the session of this module only."""
    register("testing_rollingnormal")(RollingNormal)
    register("testing_rollingnormalx")(RollingNormalX)
    yield
    for name, cls in (("testing_rollingnormal", RollingNormal), ("testing_rollingnormalx", RollingNormalX)):
        _REGISTRY.pop(name, None)
        cls.registry_name = ""


def _failed(model, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check_forecaster(model, **kwargs)
    return str(info.value)


def test_a_user_model_passes():
    check_forecaster(RollingNormal(window=20))


def test_the_docs_example_passes():
    """docs/testing.md shows a user's model in full (registered at definition); it passes as shown."""
    text = (Path(__file__).parents[1] / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(block for block in blocks if "class RollingNormal" in block)
    namespace: dict[str, Any] = {}
    try:
        exec(code, namespace)
        check_forecaster(namespace["RollingNormal"](window=20))
    finally:
        _REGISTRY.pop("rolling_normal", None)


def test_a_user_model_with_a_covariate_passes():
    check_forecaster(RollingNormalX(window=10))


def test_looking_ahead_fails_causality():
    msg = _failed(CentredNormal(window=20))
    assert "- causality: log_prob of" in msg and "the model looks ahead" in msg
    assert "1 of 11 checks failed" in msg  # nothing else is wrong with it


def test_using_the_days_own_return_fails_causality():
    """log_prob may depend on r_t (it is r_t's density); its predictive of day t may not."""
    msg = _failed(PeekingNormal(window=20))
    assert "- causality: the predictive std of" in msg and "it uses r_t here" in msg
    assert "1 of 11 checks failed" in msg


def test_an_ignored_seed_fails_seeds():
    msg = _failed(SeedlessNormal(), checks=["seeds"])
    assert "- seeds: the same seed 0 gave different paths" in msg


def test_a_predictive_that_disagrees_with_log_prob_fails():
    msg = _failed(InconsistentNormal(), checks=["fit", "predictive"])
    assert "- predictive: predictive(r).log_prob(r)" in msg and "passed: fit" in msg


def test_a_same_day_covariate_fails_exog_causality():
    msg = _failed(SameDayExog(window=10))
    assert "- exog_causality:" in msg and "(row t conditions r_t here)" in msg


def test_subclass_of_a_registered_model_must_register_itself():
    class Child(RollingNormal):
        pass

    msg = _failed(Child(), checks=["save_load"])
    assert "inherits the registry name 'testing_rollingnormal'" in msg


def test_unregistered_models_skip_save_load():
    check_forecaster(PeekingNormal(), checks=["save_load", "params"])
    msg = _failed(PeekingNormal(), checks=["save_load", "causality"])
    assert "not applicable: save_load (the class is not registered" in msg


def test_own_data_and_errors():
    r = finar.returns(finar.load("sp500")["adj_close"]).iloc[-300:]
    check_forecaster(RollingNormalX(window=5), r, exog=r.abs().rename("abs_r"), seed=3)
    with pytest.raises(DataError, match="Forecaster"):
        check_forecaster(object())
    with pytest.raises(DataError, match="unknown checks"):
        check_forecaster(RollingNormal(), checks=["causalty"])
    with pytest.raises(DataError, match="exactly the rows"):
        check_forecaster(RollingNormal(), r, exog=r.iloc[1:].to_frame())
    assert list(CHECKS)[:2] == ["params", "fit"]


def test_init_that_validates_fails_params():
    class Eager(RollingNormal):
        def __init__(self, window: int = 20) -> None:
            self.window = int(window)
            self.scale = None

    msg = _failed(Eager(window=20), checks=["params"])
    assert "__init__ sets ['scale']" in msg
