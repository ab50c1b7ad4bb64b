"""Every forecaster's methods (fit, log_prob, cdf, ppf, predictive, sample) on hostile input.

Each model of :data:`FACTORIES` (AR, GARCH, GARCHX, WaveNet, Transformer, PixelCNN, Ensemble) gets
the same cases, so one validation of returns is seen to hold everywhere: unique sorted index,
finite, not constant, long enough, of sane magnitude; seeds and sizes checked before work. The
joint models (DCC, the copula) have cases of their own at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import (
    ConstantSeriesError,
    DataError,
    DuplicateTimestampError,
    NonFiniteValueError,
    NotFittedError,
    SeriesTooShortError,
    UnsortedIndexError,
)
from tests.hostile.conftest import FACTORIES, NEURAL, business_days, raises_exactly, simulate_returns

MODELS = sorted(FACTORIES)


def _constant(n: int = 300) -> pd.Series:
    return pd.Series(0.25, index=business_days(n), name="r")


# ---- fit ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_a_constant_series(name):
    with raises_exactly(ConstantSeriesError, "constant"):
        FACTORIES[name]().fit(_constant())


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_a_repeated_day(name, r):
    twice = pd.concat([r.iloc[:200], r.iloc[199:]])  # day 199 twice, in order
    with raises_exactly(DuplicateTimestampError, str(r.index[199].date())):
        FACTORIES[name]().fit(twice)


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_unsorted_days(name, r):
    shuffled = r.iloc[np.r_[0:100, 150:200, 100:150, 200:len(r)]]
    with raises_exactly(UnsortedIndexError, "sorted"):
        FACTORIES[name]().fit(shuffled)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_fit_refuses_non_finite_values(name, value, r):
    bad = r.copy()
    bad.iloc[37] = value
    with raises_exactly(NonFiniteValueError, str(r.index[37].date())):
        FACTORIES[name]().fit(bad)


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_values_no_return_can_have(name, r):
    prices = r.copy()
    prices.iloc[5] = 3e12  # a price or a volume in the returns column
    with raises_exactly(DataError, "magnitude"):
        FACTORIES[name]().fit(prices)


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_an_array(name, r):
    with raises_exactly(DataError, "pandas"):
        FACTORIES[name]().fit(r.to_numpy())


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_text(name):
    text = pd.Series(["0.1", "oops"] * 150, index=business_days(300))
    with raises_exactly(DataError, "numeric"):
        FACTORIES[name]().fit(text)


@pytest.mark.parametrize("name", MODELS)
def test_fit_refuses_too_short_a_series(name, r):
    with raises_exactly(SeriesTooShortError, "at least"):
        FACTORIES[name]().fit(r.iloc[:1])


@pytest.mark.parametrize("name", MODELS)
def test_methods_before_fit_say_fit_first(name, r):
    with raises_exactly(NotFittedError, "fit"):
        FACTORIES[name]().log_prob(r)


# ---- log_prob, cdf, ppf, predictive -----------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_log_prob_refuses_a_repeated_day(name, r, fitted):
    twice = pd.concat([r.iloc[:300], r.iloc[299:]])
    with raises_exactly(DuplicateTimestampError, "repeated"):
        fitted(name).log_prob(twice)


@pytest.mark.parametrize("name", MODELS)
def test_log_prob_of_a_large_shock_is_finite(name, r, fitted):
    """A 1e4 % day is absurd but representable: a continuous model gives it a finite, very low score."""
    shocked = r.copy()
    shocked.iloc[350] = 1e4
    lp = fitted(name).log_prob(shocked)
    if name in ("pixelcnn",):  # a discretised density with bounded support: zero outside it
        assert lp.iloc[350] < lp.drop(shocked.index[350]).min()
    else:
        assert np.isfinite(lp.iloc[350]) and lp.iloc[350] < lp.drop(shocked.index[350]).min()
    assert np.isfinite(lp.iloc[351])  # the day after is scored (a neural model's context is huge)


@pytest.mark.parametrize("name", MODELS)
def test_log_prob_refuses_huge_inputs(name, r, fitted):
    """1e20 overflows a float32 network to -inf: refused by name instead of a silent -inf."""
    huge = r.copy()
    huge.iloc[350] = 1e20
    with raises_exactly(DataError, "magnitude 1e\\+10 or more"):
        fitted(name).log_prob(huge)


@pytest.mark.parametrize("name", MODELS)
def test_log_prob_of_an_empty_series_is_empty(name, r, fitted):
    lp = fitted(name).log_prob(r.iloc[:0])
    assert len(lp) == 0


@pytest.mark.parametrize("name", MODELS)
def test_cdf_is_a_probability_and_ppf_inverts_it(name, r, fitted):
    m = fitted(name)
    u = m.cdf(r).dropna()
    assert len(u) > 300 and ((u > 0) & (u < 1)).all()
    q = m.ppf(r, 0.05).dropna()
    assert np.isfinite(q).all() and (q < m.ppf(r, 0.5).dropna()).all()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("q", [0.0, 1.0, 1.5, -0.1])
def test_ppf_refuses_a_level_outside_0_1(name, q, r, fitted):
    with raises_exactly(DataError, "q"):
        fitted(name).ppf(r, q)


@pytest.mark.parametrize("name", MODELS)
def test_cdf_at_must_be_shaped_like_r(name, r, fitted):
    with raises_exactly(DataError, "at must be shaped like r"):
        fitted(name).cdf(r, at=r.to_numpy()[:-3])


@pytest.mark.parametrize("name", MODELS)
def test_predictive_var_refuses_a_bad_level(name, r, fitted):
    with raises_exactly(DataError, "must lie in \\(0, 1\\), got 1.5"):
        fitted(name).predictive(r).var(1.5)


# ---- sample -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("seed", [-1, 1.5, "0"], ids=["negative", "float", "text"])
def test_sample_refuses_a_bad_seed(name, seed, r, fitted):
    with raises_exactly(DataError, "seed"):
        fitted(name).sample(r, horizon=2, n_paths=3, seed=seed)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("horizon", "n_paths", "bad"),
                         [(0, 5, "horizon"), (2, 0, "n_paths"), (2, -4, "n_paths")])
def test_sample_refuses_bad_sizes(name, horizon, n_paths, bad, r, fitted):
    with raises_exactly(DataError, bad):
        fitted(name).sample(r, horizon=horizon, n_paths=n_paths, seed=0)


@pytest.mark.parametrize("name", MODELS)
def test_sample_refuses_a_context_with_nan(name, r, fitted):
    bad = r.copy()
    bad.iloc[-2] = np.nan
    with raises_exactly(NonFiniteValueError, "context"):
        fitted(name).sample(bad, horizon=2, n_paths=3, seed=0)


@pytest.mark.parametrize("name", MODELS)
def test_sample_is_reproducible_and_shaped(name, r, fitted):
    m = fitted(name)
    a, b = (m.sample(r, horizon=3, n_paths=5, seed=7) for _ in range(2))
    assert a.paths.shape == (5, 3, 1) and np.isfinite(a.paths).all()
    np.testing.assert_array_equal(a.paths, b.paths)
    assert a.index[0] > r.index[-1]


# ---- devices ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEURAL)
@pytest.mark.parametrize("device", ["bogus", "cuda:99", 3])
def test_a_bad_device_is_refused_at_construction(name, device):
    with raises_exactly(DataError, "device"):
        FACTORIES[name]().set_params(device=device)
    cls = type(FACTORIES[name]())
    with raises_exactly(DataError, "device"):
        cls(device=device)


def test_tick_model_refuses_a_bad_device_at_construction():
    with raises_exactly(DataError, "device 'bogus'"):
        finar.ticks.TickModel(device="bogus")


# ---- joint models: DCC and the copula ------------------------------------------------------------
def _panel(n: int = 300) -> pd.DataFrame:
    return pd.DataFrame({"a": simulate_returns(n, seed=1), "b": simulate_returns(n, seed=2)})


JOINT = {"dcc": lambda: finar.models.DCC(), "copula": lambda: finar.models.Copula()}


@pytest.mark.parametrize("name", sorted(JOINT))
def test_joint_fit_refuses_a_constant_column(name):
    panel = _panel()
    panel["b"] = 1.0
    with raises_exactly(ConstantSeriesError, "'b'|b"):
        JOINT[name]().fit(panel)


@pytest.mark.parametrize("name", sorted(JOINT))
def test_joint_fit_refuses_a_repeated_day(name):
    panel = _panel()
    with raises_exactly(DuplicateTimestampError, "repeated"):
        JOINT[name]().fit(pd.concat([panel.iloc[:100], panel.iloc[99:]]))


@pytest.mark.parametrize("name", sorted(JOINT))
def test_joint_sample_refuses_a_negative_seed(name):
    panel = _panel()
    m = JOINT[name]().fit(panel)
    with raises_exactly(DataError, "seed"):
        m.sample(panel, horizon=2, n_paths=3, seed=-1)


@pytest.mark.parametrize("name", sorted(JOINT))
def test_joint_log_prob_refuses_other_columns(name):
    panel = _panel()
    m = JOINT[name]().fit(panel)
    with raises_exactly(DataError, "columns"):
        m.log_prob(panel.rename(columns={"b": "c"}))


def test_ensemble_refuses_members_that_are_not_forecasters(r):
    with raises_exactly(DataError, "forecasters"):
        finar.models.Ensemble(["garch", "ar"]).fit(r)


def test_ensemble_refuses_negative_weights(r):
    with raises_exactly(DataError, "weights"):
        finar.models.Ensemble([finar.models.AR(order=1), finar.models.GARCH()], weights=[1.0, -1.0]).fit(r)
