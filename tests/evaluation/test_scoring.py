"""Tests of finar.evaluation.scoring: closed forms against integration, the fair ensemble
estimator against the closed forms, and errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from finar.errors import DataError, NonFiniteValueError
from finar.evaluation.scoring import (
    crps_ensemble,
    crps_normal,
    crps_std_t,
    crps_t,
    interval_score,
    pit_from_samples,
    quantile_loss,
)
from tests.conftest import raises_exactly


def crps_by_integration(dist, y: float) -> float:
    """CRPS(F, y) = int (F(x) - 1{x >= y})^2 dx, split at y (sf avoids cancellation in 1 - F)."""
    left, _ = integrate.quad(lambda x: dist.cdf(x) ** 2, -np.inf, y, epsabs=1e-12, epsrel=1e-12,
                             limit=500)
    right, _ = integrate.quad(lambda x: dist.sf(x) ** 2, y, np.inf, epsabs=1e-12, epsrel=1e-12,
                              limit=500)
    return left + right


CASES = [(0.0, 0.0, 1.0), (1.3, 0.2, 0.7), (-4.0, 0.5, 1.5), (10.0, -1.0, 2.0), (0.1, 0.1, 0.05)]


@pytest.mark.parametrize(("y", "loc", "scale"), CASES)
def test_crps_normal_matches_integration(y, loc, scale):
    expected = crps_by_integration(stats.norm(loc, scale), y)
    assert crps_normal(y, loc, scale) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("df", [1.5, 3.0, 5.0, 30.0])
@pytest.mark.parametrize(("y", "loc", "scale"), CASES)
def test_crps_t_matches_integration(y, loc, scale, df):
    expected = crps_by_integration(stats.t(df, loc, scale), y)
    assert crps_t(y, loc, scale, df) == pytest.approx(expected, abs=1e-6)


def test_crps_t_tends_to_normal_for_large_df():
    y = np.linspace(-5, 5, 21)
    np.testing.assert_allclose(crps_t(y, 0.3, 1.7, 1e7), crps_normal(y, 0.3, 1.7), atol=1e-6)


@pytest.mark.parametrize("nu", [2.5, 4.0, 8.0, 50.0])
def test_crps_std_t_is_crps_t_with_converted_scale(nu):
    y, loc, sigma = np.array([-3.0, -0.5, 0.0, 2.2]), 0.05, np.array([0.8, 1.0, 1.5, 2.5])
    expected = crps_t(y, loc, sigma * np.sqrt((nu - 2) / nu), nu)
    np.testing.assert_allclose(crps_std_t(y, loc, sigma, nu), expected, rtol=1e-12)
    # and the standardised t really has variance sigma^2
    scale = 1.5 * np.sqrt((nu - 2) / nu)
    assert stats.t(nu, 0, scale).std() == pytest.approx(1.5)


def test_series_in_series_out_and_scalar_in_float_out():
    idx = pd.date_range("2020-01-01", periods=3, freq="D")
    y = pd.Series([0.5, -1.0, 2.0], index=idx)
    out = crps_normal(y, 0.0, pd.Series([1.0, 2.0, 1.0], index=idx))
    assert isinstance(out, pd.Series) and out.index.equals(idx)
    assert isinstance(crps_t(0.0, 0.0, 1.0, 4.0), float)
    assert isinstance(crps_ensemble(np.arange(6.0).reshape(2, 3), np.zeros(2)), np.ndarray)
    ens = crps_ensemble(pd.DataFrame(np.ones((3, 4)), index=idx), y)
    assert isinstance(ens, pd.Series) and ens.index.equals(idx)


# --- fair ensemble estimator ----------------------------------------------------------------

def crps_pairs(x: np.ndarray, y: np.ndarray, fair: bool = True) -> np.ndarray:
    """The O(m^2) definition, for checking: fair divides the pair sum by 2m(m-1), plain by 2m^2."""
    m = x.shape[-1]
    pairs = np.abs(x[..., :, None] - x[..., None, :]).sum(axis=(-1, -2))
    denom = 2 * m * (m - 1) if fair else 2 * m * m
    return np.abs(x - y[..., None]).mean(axis=-1) - pairs / denom


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 12)),
                elements=st.floats(-1e3, 1e3)),
       y=st.floats(-1e3, 1e3))
def test_sorted_algorithm_equals_pair_definition(x, y):
    yv = np.full(x.shape[0], y)
    np.testing.assert_allclose(crps_ensemble(x, yv), crps_pairs(x, yv), rtol=1e-9, atol=1e-9)


def test_axis_argument_scenarios_layout():
    rng = np.random.default_rng(1)
    paths = rng.standard_normal((50, 7, 2))  # (n_paths, horizon, n_series)
    y = rng.standard_normal((7, 2))
    expected = crps_ensemble(np.moveaxis(paths, 0, -1), y)
    np.testing.assert_allclose(crps_ensemble(paths, y, axis=0), expected)
    assert expected.shape == (7, 2)


@pytest.mark.parametrize("df", [None, 5.0])
def test_fair_estimator_unbiased_plain_estimator_biased(df):
    """With m = 5 draws per day the fair estimator agrees with the closed form within Monte Carlo
    error, while the plain form is high by E|X - X'| / (2m)."""
    rng = np.random.default_rng(20240 if df is None else 20241)
    n, m = 40_000, 5
    loc = rng.normal(0, 0.5, n)
    scale = rng.uniform(0.5, 2.0, n)
    if df is None:
        x = loc[:, None] + scale[:, None] * rng.standard_normal((n, m))
        y = loc + scale * rng.standard_normal(n)
        exact = crps_normal(y, loc, scale)
        mean_abs_diff = scale * 2 / np.sqrt(np.pi)  # E|X - X'| for N(., scale^2)
    else:
        x = loc[:, None] + scale[:, None] * rng.standard_t(df, (n, m))
        y = loc + scale * rng.standard_t(df, n)
        exact = crps_t(y, loc, scale, df)
        mean_abs_diff = scale * _t_mean_abs_diff(df)
    fair = crps_ensemble(x, y) - exact
    se = fair.std(ddof=1) / np.sqrt(n)
    assert abs(fair.mean()) < 3 * se

    plain = crps_pairs(x, y, fair=False) - exact
    bias = mean_abs_diff / (2 * m)
    se_plain = plain.std(ddof=1) / np.sqrt(n)
    assert plain.mean() > 10 * se_plain  # clearly biased upwards...
    assert abs(plain.mean() - bias.mean()) < 3 * se_plain  # ...by E|X - X'| / (2m)


def _t_mean_abs_diff(df: float) -> float:
    """E|X - X'| for two standard t draws, from CRPS(F, 0) = E|T| - E|T - T'| / 2."""
    mean_abs = stats.t(df).expect(abs)
    return 2 * (mean_abs - crps_t(0.0, 0.0, 1.0, df))


def test_crps_ensemble_converges_to_closed_form():
    rng = np.random.default_rng(7)
    x = 0.3 + 1.4 * rng.standard_t(4.0, 200_000)
    for y in (-2.0, 0.0, 3.5):
        assert crps_ensemble(x, y) == pytest.approx(crps_t(y, 0.3, 1.4, 4.0), abs=0.01)


# --- PIT, quantile and interval scores ------------------------------------------------------

def test_pit_counts_and_randomised_ties():
    x = np.array([[0.0, 1.0, 1.0, 3.0], [5.0, 6.0, 7.0, 8.0]])
    np.testing.assert_allclose(pit_from_samples(x, np.array([1.0, 9.0])), [0.75, 1.0])
    np.testing.assert_allclose(pit_from_samples(x, np.array([0.5, 4.0])), [0.25, 0.0])
    draws = pit_from_samples(np.tile(x[:1], (2000, 1)), np.ones(2000), rng=0)
    assert draws.min() >= 0.25 and draws.max() <= 0.75
    assert draws.mean() == pytest.approx(0.5, abs=0.02)
    np.testing.assert_array_equal(draws, pit_from_samples(np.tile(x[:1], (2000, 1)), np.ones(2000),
                                                          rng=np.random.default_rng(0)))


def test_pit_uniform_for_calibrated_forecast():
    rng = np.random.default_rng(3)
    pit = pit_from_samples(rng.standard_normal((5000, 999)), rng.standard_normal(5000))
    assert stats.kstest(pit, "uniform").pvalue > 0.01


def test_quantile_loss_and_interval_score_by_hand():
    np.testing.assert_allclose(quantile_loss(np.array([-3.0, 1.0]), -2.0, 0.05), [0.95, 0.15])
    np.testing.assert_allclose(interval_score(np.array([3.0, 0.0, -4.0]), -2.0, 2.0, 0.1),
                               [4 + 20, 4, 4 + 40])


def test_quantile_loss_minimised_by_true_quantile():
    y = np.random.default_rng(5).standard_normal(100_000)
    grid = np.linspace(-2.5, -1.0, 61)
    losses = [quantile_loss(y, q, 0.05).mean() for q in grid]
    assert grid[int(np.argmin(losses))] == pytest.approx(stats.norm.ppf(0.05), abs=0.05)


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "cls", "match"), [
    (lambda: crps_normal(0.0, 0.0, 0.0), DataError, "scale must be > 0"),
    (lambda: crps_normal(np.zeros(3), 0.0, np.array([1.0, -1.0, 1.0])), DataError, "position"),
    (lambda: crps_normal(np.array([0.0, np.nan]), 0.0, 1.0), NonFiniteValueError, "y has NaN"),
    (lambda: crps_normal(0.0, np.inf, 1.0), NonFiniteValueError, "loc"),
    (lambda: crps_t(0.0, 0.0, 1.0, 1.0), DataError, "df must be > 1"),
    (lambda: crps_t(0.0, 0.0, -2.0, 5.0), DataError, "scale"),
    (lambda: crps_std_t(0.0, 0.0, 1.0, 2.0), DataError, "nu must be > 2"),
    (lambda: crps_std_t(0.0, 0.0, 0.0, 5.0), DataError, "sigma"),
    (lambda: crps_normal(np.zeros(3), 0.0, np.ones(2)), DataError, "broadcast"),
    (lambda: crps_ensemble(np.ones((3, 1)), np.zeros(3)), DataError, "at least 2 draws"),
    (lambda: crps_ensemble(np.ones((3, 4)), np.zeros(2)), DataError, "does not match"),
    (lambda: crps_ensemble(np.array([[1.0, np.nan]]), 0.0), NonFiniteValueError, "samples"),
    (lambda: pit_from_samples(np.ones(4), np.nan), NonFiniteValueError, "y has NaN"),
    (lambda: quantile_loss(0.0, 0.0, 1.0), DataError, "alpha"),
    (lambda: interval_score(0.0, 1.0, -1.0, 0.1), DataError, "lower > upper"),
    (lambda: crps_normal(["a"], 0.0, 1.0), DataError, "numeric"),
])
def test_bad_input_raises_finar_errors(call, cls, match):
    with raises_exactly(cls, match):
        call()


def test_nan_error_names_the_day_and_misaligned_series_raise():
    idx = pd.date_range("2021-03-01", periods=3, freq="D")
    y = pd.Series([0.0, np.nan, 1.0], index=idx)
    with raises_exactly(NonFiniteValueError, "2021-03-02"):
        crps_normal(y, 0.0, 1.0)
    with raises_exactly(DataError, "different indexes"):
        crps_normal(y.fillna(0), pd.Series(0.0, index=idx + pd.Timedelta(days=1)), 1.0)
