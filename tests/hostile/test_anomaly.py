"""``finar.AnomalyDetector`` on hostile input, and a shock it must flag."""

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
)
from tests.hostile.conftest import business_days, raises_exactly


@pytest.fixture(scope="module")
def detector(r) -> finar.AnomalyDetector:
    return finar.AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01).fit(r.iloc[:300])


@pytest.mark.parametrize("empty", [
    pd.Series([], dtype=float), pd.Series([], index=pd.DatetimeIndex([], name="time"), dtype=float)],
    ids=["no-index", "datetime-index"])
def test_score_of_an_empty_series(empty, detector):
    with raises_exactly(SeriesTooShortError, "empty"):
        detector.score(empty)


def test_score_before_fit(r):
    with raises_exactly(NotFittedError, "fit"):
        finar.AnomalyDetector(finar.models.GARCH()).score(r)


def test_fit_on_a_constant_series():
    with raises_exactly(ConstantSeriesError, "constant"):
        finar.AnomalyDetector(finar.models.GARCH()).fit(pd.Series(0.1, index=business_days(300)))


def test_fit_on_a_repeated_day(r):
    with raises_exactly(DuplicateTimestampError, "repeated"):
        finar.AnomalyDetector(finar.models.GARCH()).fit(pd.concat([r.iloc[:100], r.iloc[99:300]]))


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.01, float("nan"), "1%"])
def test_a_level_outside_0_1(level, r):
    with raises_exactly(DataError, "level"):
        finar.AnomalyDetector(finar.models.GARCH(), level=level).fit(r)


@pytest.mark.parametrize("model", ["garch", None], ids=["name", "none"])
def test_a_model_that_is_not_a_forecaster(model, r):
    with raises_exactly(DataError, "forecaster"):
        finar.AnomalyDetector(model).fit(r)


def test_score_with_other_columns(detector, r):
    with raises_exactly(DataError, "columns"):
        detector.score(pd.DataFrame({"a": r.iloc[300:], "b": r.iloc[300:]}))


def test_score_with_a_context_that_overlaps(detector, r):
    with raises_exactly(DataError, "context must end before r starts"):
        detector.score(r.iloc[300:], context=r.iloc[:310])


def test_score_with_covariates_it_was_not_fitted_with(detector, r):
    with raises_exactly(DataError, "without covariates"):
        detector.score(r.iloc[300:], exog=pd.DataFrame({"x": 1.0}, index=r.index[300:]))


def test_score_with_nan(detector, r):
    bad = r.iloc[300:].copy()
    bad.iloc[4] = np.nan
    with raises_exactly(NonFiniteValueError, str(bad.index[4].date())):
        detector.score(bad)


def test_a_ten_sigma_day_is_flagged_and_a_calm_one_is_not(detector, r):
    test = r.iloc[300:].copy()
    sd = r.iloc[:300].std()
    test.iloc[50] = -10 * sd
    flags = detector.score(test, context=r.iloc[:300])
    assert bool(flags["flag"].iloc[50]) and flags["p_value"].iloc[50] <= 0.01
    assert flags["score"].iloc[50] > flags["score"].drop(test.index[50]).max()
    assert flags["flag"].mean() < 0.1
    assert flags.index.equals(test.index)
