"""Tests for finar.data.scalers: round trips, the log-Jacobian, pandas types, state, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from finar.data.scalers import (
    IdentityScaler,
    MeanAbsScaler,
    RobustScaler,
    StandardScaler,
    scaler_from_state_dict,
)
from finar.errors import DataError, NonFiniteValueError, NotFittedError, SeriesTooShortError

SCALERS = [StandardScaler, MeanAbsScaler, RobustScaler, IdentityScaler]


@pytest.fixture
def x() -> np.ndarray:
    """Three heavy-tailed series on very different scales and locations."""
    rng = np.random.default_rng(0)
    return rng.standard_t(4, size=(300, 3)) * [1.0, 10.0, 0.01] + [0.0, 5.0, -1.0]


def _assert_plain(value: object) -> None:
    """Only the exact types torch.load(weights_only=True) and JSON accept, no numpy subclasses."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)


@settings(max_examples=40, deadline=None)
@given(
    data=hnp.arrays(np.float64, st.tuples(st.integers(4, 30), st.integers(1, 3)),
                    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    cls=st.sampled_from(SCALERS),
)
def test_inverse_transform_recovers_x(data: np.ndarray, cls: type) -> None:
    try:
        scaler = cls().fit(data)
    except DataError:  # a constant column, or a zero IQR: refused by design
        assume(False)
    z = scaler.transform(data)
    assert np.all(np.isfinite(z))
    back = scaler.inverse_transform(z)
    np.testing.assert_allclose(back, data, rtol=0, atol=1e-10 * (np.abs(data).max() + 1))


def test_standard_scaler_statistics(x: np.ndarray) -> None:
    s = StandardScaler().fit(x)
    np.testing.assert_allclose(s.loc_, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s.scale_, x.std(axis=0), rtol=1e-14)
    z = s.transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)


def test_standard_log_jacobian_matches_scipy_normal(x: np.ndarray) -> None:
    """N(0, 1) on z plus log|dz/dx| must be the N(mean, std) density of x itself."""
    s = StandardScaler().fit(x)
    z = s.transform(x)
    expected = stats.norm(s.loc_, s.scale_).logpdf(x)
    np.testing.assert_allclose(stats.norm.logpdf(z) + s.log_det_jacobian(), expected,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(s.log_prob_to_data_units(stats.norm.logpdf(z)), expected,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", SCALERS)
def test_log_jacobian_is_log_derivative_of_transform(cls: type, x: np.ndarray) -> None:
    """Central differences of transform give dz/dx; the sign convention is log|dz/dx|."""
    s = cls().fit(x)
    h = 1e-3 * x.std(axis=0)
    slope = (s.transform(x + h) - s.transform(x - h)) / (2 * h)
    np.testing.assert_allclose(np.log(slope), s.log_det_jacobian(x), rtol=0, atol=1e-8)
    # the change of variables holds for any base density, here a Student t on z
    z = s.transform(x)
    np.testing.assert_allclose(
        s.log_prob_to_data_units(stats.t(5).logpdf(z)),
        stats.t(5, loc=s.loc_, scale=s.scale_).logpdf(x), rtol=0, atol=1e-10,
    )


def test_log_jacobian_shapes_and_pandas(x: np.ndarray) -> None:
    frame = pd.DataFrame(x, columns=["a", "b", "c"],
                         index=pd.date_range("2020-01-01", periods=len(x), name="time"))
    s = StandardScaler().fit(frame)
    assert s.log_det_jacobian().shape == (3,)
    ldj = s.log_det_jacobian(frame)
    assert isinstance(ldj, pd.DataFrame) and ldj.index.equals(frame.index)
    np.testing.assert_array_equal(ldj.to_numpy(), np.tile(-np.log(s.scale_), (len(x), 1)))
    lp = pd.DataFrame(np.full(x.shape, np.nan), index=frame.index, columns=frame.columns)
    lp.iloc[5:] = -1.0
    lp.iloc[7, 1] = -np.inf
    out = s.log_prob_to_data_units(lp)
    assert out.iloc[:5].isna().all().all() and out.iloc[7, 1] == -np.inf
    np.testing.assert_allclose(out.iloc[10], -1.0 - np.log(s.scale_))


def test_pandas_in_pandas_out(x: np.ndarray) -> None:
    index = pd.date_range("2021-01-01", periods=len(x), freq="B", name="time")
    frame = pd.DataFrame(x, index=index, columns=["a", "b", "c"])
    z = RobustScaler().fit_transform(frame)
    assert isinstance(z, pd.DataFrame)
    assert z.index.equals(index) and list(z.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(z.to_numpy(), RobustScaler().fit_transform(x))
    series = frame["b"]
    zs = StandardScaler().fit(series).transform(series)
    assert isinstance(zs, pd.Series) and zs.name == "b" and zs.index.equals(index)
    back = StandardScaler().fit(series).inverse_transform(zs)
    pd.testing.assert_series_equal(back, series, rtol=1e-12)


def test_per_column_statistics_apply_to_windows(x: np.ndarray) -> None:
    s = StandardScaler().fit(x)
    windows = np.stack([x[i:i + 20] for i in range(5)])  # (batch, time, columns)
    z = s.transform(windows)
    np.testing.assert_allclose(z[3], s.transform(x[3:23]))
    with pytest.raises(DataError, match="last axis must have length 3"):
        s.transform(x[:, :2])


def test_columns_must_match_the_fitted_frame(x: np.ndarray) -> None:
    s = StandardScaler().fit(pd.DataFrame(x, columns=["a", "b", "c"]))
    with pytest.raises(DataError, match="select and order them"):
        s.transform(pd.DataFrame(x, columns=["b", "a", "c"]))


def test_mean_abs_scaler_keeps_zero_and_sign(x: np.ndarray) -> None:
    s = MeanAbsScaler().fit(x)
    np.testing.assert_array_equal(s.loc_, 0.0)
    np.testing.assert_allclose(s.scale_, np.abs(x).mean(axis=0))
    z = s.transform(x)
    np.testing.assert_array_equal(np.sign(z), np.sign(x))
    # an all-zero series gets scale 1 (Chronos' convention) rather than a division by zero
    zeros = MeanAbsScaler().fit(np.zeros(10))
    assert zeros.scale_ == 1.0 and zeros.log_det_jacobian() == 0.0


def test_robust_scaler_unit_variance_on_normal_data() -> None:
    data = np.random.default_rng(1).normal(2.0, 3.0, size=20_000)
    s = RobustScaler(unit_variance=True).fit(data)
    assert abs(s.loc_ - 2.0) < 0.1 and abs(s.scale_ - 3.0) < 0.1
    plain = RobustScaler(quantile_range=(10.0, 90.0)).fit(data)
    assert plain.scale_ == pytest.approx(np.percentile(data, 90) - np.percentile(data, 10))


def test_identity_scaler_changes_nothing(x: np.ndarray) -> None:
    s = IdentityScaler().fit(x)
    np.testing.assert_array_equal(s.transform(x), x)
    np.testing.assert_array_equal(s.log_det_jacobian(), np.zeros(3))


@pytest.mark.parametrize("cls", SCALERS)
def test_state_dict_round_trip(cls: type, x: np.ndarray) -> None:
    s = cls().fit(pd.DataFrame(x, columns=["a", "b", "c"]))
    d = s.state_dict()
    _assert_plain(d)
    d = json.loads(json.dumps(d))  # survives a plain-text round trip too
    s2 = scaler_from_state_dict(d)
    assert type(s2) is cls and s2.get_params() == s.get_params()
    np.testing.assert_array_equal(s2.transform(x), s.transform(x))
    np.testing.assert_array_equal(s2.log_det_jacobian(), s.log_det_jacobian())
    with pytest.raises(DataError, match="select and order them"):
        s2.transform(pd.DataFrame(x, columns=["c", "b", "a"]))


def test_from_state_dict_refuses_foreign_or_broken_state(x: np.ndarray) -> None:
    d = RobustScaler().fit(x).state_dict()
    with pytest.raises(DataError, match="RobustScaler"):
        StandardScaler.from_state_dict(d)
    with pytest.raises(DataError, match="scale"):
        RobustScaler.from_state_dict({**d, "scale": [1.0, -1.0, 1.0]})
    with pytest.raises(DataError, match="lacks"):
        RobustScaler.from_state_dict({k: v for k, v in d.items() if k != "loc"})
    with pytest.raises(DataError, match="not a scaler"):
        scaler_from_state_dict({"type": "Pickle"})


@pytest.mark.parametrize("cls", SCALERS)
def test_non_finite_input_is_named(cls: type, x: np.ndarray) -> None:
    frame = pd.DataFrame(x, columns=["a", "b", "c"],
                         index=pd.date_range("2020-01-01", periods=len(x)))
    frame.iloc[4, 1] = np.nan
    frame.iloc[9, 2] = np.inf
    with pytest.raises(NonFiniteValueError, match=r"2 non-finite.*2020-01-05.*'b'"):
        cls().fit(frame)
    s = cls().fit(x)
    bad = x.copy()
    bad[3, 0] = -np.inf
    with pytest.raises(NonFiniteValueError, match=r"1 non-finite value.*position \(3, 0\)"):
        s.transform(bad)


@pytest.mark.parametrize("cls", SCALERS)
def test_not_fitted(cls: type, x: np.ndarray) -> None:
    s = cls()
    for call in (s.transform, s.inverse_transform, s.log_det_jacobian,
                 s.log_prob_to_data_units):
        with pytest.raises(NotFittedError, match="call fit"):
            call(x)
    with pytest.raises(NotFittedError):
        s.log_det_jacobian()
    with pytest.raises(NotFittedError):
        s.state_dict()


def test_zero_spread_is_refused_with_advice(x: np.ndarray) -> None:
    frame = pd.DataFrame({"a": x[:, 0], "flat": 0.1})
    with pytest.raises(DataError, match=r"\['flat'\].*IdentityScaler"):
        StandardScaler().fit(frame)
    mostly_zero = np.r_[np.zeros(80), np.arange(1.0, 21.0)]
    with pytest.raises(DataError, match="widen quantile_range"):
        RobustScaler().fit(mostly_zero)
    assert RobustScaler(quantile_range=(5.0, 95.0)).fit(mostly_zero).scale_ > 0


def test_bad_input_shapes_and_values() -> None:
    with pytest.raises(SeriesTooShortError):
        StandardScaler().fit(np.array([]))
    with pytest.raises(DataError, match="1-D"):
        StandardScaler().fit(np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match="must hold numbers"):
        StandardScaler().fit(np.array(["a", "b"]))
    with pytest.raises(DataError, match="quantile_range"):
        RobustScaler(quantile_range=(75.0, 25.0)).fit(np.arange(10.0))


def test_params_and_repr() -> None:
    s = RobustScaler(quantile_range=(10.0, 90.0))
    assert s.get_params() == {"quantile_range": (10.0, 90.0), "unit_variance": False}
    assert repr(s) == "RobustScaler(quantile_range=(10.0, 90.0), unit_variance=False)"
    assert repr(StandardScaler()) == "StandardScaler()"
