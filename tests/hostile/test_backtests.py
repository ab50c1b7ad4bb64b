"""Backtests (``finar.backtest``, ``finar.backtest_panel``, ``finar.compare``) on hostile input:
everything a backtest will refuse is refused at once, before a model is fitted or a task retried."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, DuplicateTimestampError, NonFiniteValueError
from tests.hostile.conftest import raises_exactly, simulate_returns

START = "2011-04-01"  # about 320 days into r: 80 test days


def _garch() -> finar.models.GARCH:
    return finar.models.GARCH(dist="normal")


@pytest.mark.parametrize("model", ["garch", None, 3, finar.models.GARCH],
                         ids=["name", "none", "int", "class"])
def test_a_model_that_is_not_a_forecaster_fails_at_once(model, r, caplog):
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING), raises_exactly(DataError, "must be a finar forecaster"):
        finar.backtest(model, r, start=START, progress=False)
    assert time.perf_counter() - t0 < 2.0
    assert "attempt" not in caplog.text  # refused, not retried task after task


def test_a_model_name_says_how_to_make_one(r):
    with raises_exactly(DataError, r"finar.models.create\('garch'\)"):
        finar.backtest("garch", r, start=START, progress=False)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"start": "notadate"}, "start must be a date"),
    ({"start": ""}, "start must be a date"),
    ({"start": START, "end": "2020-13-45"}, "end must be a date"),
    ({"start": "1990-01-01"}, "no test days"),
    ({"start": "2030-01-01"}, "no test days"),
    ({"start": "2011-06-01", "end": "2011-05-01"}, "no test days"),
    ({"start": pd.Timestamp(START, tz="UTC")}, "cannot be compared"),
])
def test_bad_test_periods(kwargs, fragment, r):
    with raises_exactly(DataError, fragment):
        finar.backtest(_garch(), r, progress=False, **kwargs)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"seed": -1}, "seed"), ({"seed": None}, "seed"), ({"seed": 2.5}, "seed"),
    ({"n_paths": 0}, "n_paths"), ({"refit_every": 0}, "refit_every"), ({"window": 0}, "window"),
    ({"window": "rolling"}, "window"), ({"horizon": 0}, "horizon"), ({"levels": (0.7,)}, "levels"),
    ({"one_step": "exact"}, "one_step"),
])
def test_bad_settings(kwargs, fragment, r):
    t0 = time.perf_counter()
    with raises_exactly(DataError, fragment):
        finar.backtest(_garch(), r, START, progress=False, **kwargs)
    assert time.perf_counter() - t0 < 2.0


def test_returns_with_nan(r):
    bad = r.copy()
    bad.iloc[100] = np.nan
    with raises_exactly(NonFiniteValueError, str(r.index[100].date())):
        finar.backtest(_garch(), bad, START, progress=False)


def test_returns_with_a_repeated_day(r):
    with raises_exactly(DuplicateTimestampError, "repeated"):
        finar.backtest(_garch(), pd.concat([r.iloc[:200], r.iloc[199:]]), START, progress=False)


def test_a_panel_is_not_one_series(r):
    with raises_exactly(DataError, "one series"):
        finar.backtest(_garch(), pd.DataFrame({"a": r, "b": r}), START, progress=False)


def test_covariates_on_other_days(r):
    exog = pd.DataFrame({"x": np.ones(len(r) - 5)}, index=r.index[5:])
    with raises_exactly(DataError, "exactly the rows"):
        finar.backtest(finar.models.GARCHX(), r, START, exog=exog, progress=False)


def test_a_backtest_scores_every_test_day(r):
    bt = finar.backtest(_garch(), r, START, refit_every=40, progress=False)
    days = r.loc[START:].index
    assert bt.daily.index.equals(days) and np.isfinite(bt.daily["log_score"]).all()
    assert ((bt.daily["pit"] > 0) & (bt.daily["pit"] < 1)).all()
    s = bt.summary()
    assert 0 <= s["hit_5"] <= 1 and np.isfinite(s["log_score"])


# ---- backtest_panel and compare ----------------------------------------------------------------------
def _panel() -> pd.DataFrame:
    return pd.DataFrame({"a": simulate_returns(400, seed=1), "b": simulate_returns(400, seed=2)})


def test_panel_needs_a_frame(r):
    with raises_exactly(DataError, "DataFrame"):
        finar.backtest_panel(_garch(), r, START, progress=False)


def test_panel_needs_a_model_per_column():
    with raises_exactly(DataError, "'b'|b"):
        finar.backtest_panel({"a": _garch()}, _panel(), START, progress=False)


def test_panel_refuses_a_negative_seed():
    with raises_exactly(DataError, "seed"):
        finar.backtest_panel(_garch(), _panel(), START, seed=-3, progress=False)


def test_panel_refuses_a_name_for_a_model():
    with raises_exactly(DataError, "must be a finar forecaster"):
        finar.backtest_panel("garch", _panel(), START, progress=False)


def test_compare_needs_results():
    with raises_exactly(DataError, "at least one"):
        finar.compare([])


def test_compare_refuses_an_unknown_baseline(r):
    bt = finar.backtest(_garch(), r, "2011-06-01", refit_every=60, progress=False)
    with raises_exactly(DataError, "baseline"):
        finar.compare([bt], baseline="nope")
