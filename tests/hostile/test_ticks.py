"""Tick data and event models on hostile input: ``simulate``, ``to_bars``, ``realism`` and every
event model (TickModel, Hawkes, ACD, SeasonalPoisson, MarkovHawkes): fit, log_prob, sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import (
    DataError,
    MissingColumnsError,
    NonFiniteValueError,
    NonPositivePriceError,
    NotFittedError,
    SeriesTooShortError,
    UnsortedIndexError,
)
from tests.hostile.conftest import TICKMODEL, raises_exactly

EVENT_MODELS = {
    "hawkes": lambda: finar.ticks.Hawkes(),
    "acd": lambda: finar.ticks.ACD(),
    "seasonalpoisson": lambda: finar.ticks.SeasonalPoisson(),
    "markovhawkes": lambda: finar.ticks.MarkovHawkes(),
    "tickmodel": lambda: finar.ticks.TickModel(**TICKMODEL),
}
NAMES = sorted(EVENT_MODELS)


@pytest.fixture(scope="module")
def event_models(trades, tick_model):
    cache = {"tickmodel": tick_model}

    def get(name):
        if name not in cache:
            cache[name] = EVENT_MODELS[name]().fit(trades)
        return cache[name]

    return get


# ---- simulate, to_bars, realism ----------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, -5, 2.5, "100"])
def test_simulate_refuses_a_bad_size(n):
    with raises_exactly(DataError, "n_events"):
        finar.ticks.simulate(n_events=n)


@pytest.mark.parametrize("seed", [-1, 0.5])
def test_simulate_refuses_a_bad_seed(seed):
    with raises_exactly(DataError, "seed"):
        finar.ticks.simulate(n_events=10, seed=seed)


def test_simulate_is_reproducible():
    a, b = finar.ticks.simulate(n_events=500, seed=3), finar.ticks.simulate(n_events=500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 500 and a.index.is_monotonic_increasing and (a["price"] > 0).all()


@pytest.mark.parametrize(("kwargs", "error", "fragment"), [
    ({"rule": "bogus"}, DataError, "not a pandas frequency"),
    ({"kind": "ticks"}, DataError, "kind must be"),
])
def test_to_bars_refuses_bad_settings(kwargs, error, fragment, trades):
    with raises_exactly(error, fragment):
        finar.ticks.to_bars(trades, **kwargs)


def test_to_bars_refuses_trades_without_prices(trades):
    with raises_exactly(MissingColumnsError, "price"):
        finar.ticks.to_bars(trades.drop(columns="price"), "1min")


def test_to_bars_refuses_no_trades(trades):
    with raises_exactly(DataError, "no rows"):
        finar.ticks.to_bars(trades.iloc[:0], "1min")


def test_to_bars_sums_the_volume(trades):
    bars = finar.ticks.to_bars(trades, "5min")
    assert bars["volume"].sum() == pytest.approx(trades["size"].sum())
    assert (bars["high"] >= bars["low"]).all()


def test_realism_refuses_too_few_trades(trades):
    with raises_exactly(SeriesTooShortError, "at least"):
        finar.ticks.realism(trades, trades.iloc[:5])
    with raises_exactly(DataError, "no rows"):
        finar.ticks.realism(trades, trades.iloc[:0])


# ---- event models ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_fit_refuses_no_trades(name, trades):
    with raises_exactly(DataError, "no rows"):
        EVENT_MODELS[name]().fit(trades.iloc[:0])


@pytest.mark.parametrize("name", NAMES)
def test_fit_refuses_too_few_trades(name, trades):
    with raises_exactly(SeriesTooShortError, "at least"):
        EVENT_MODELS[name]().fit(trades.iloc[:3])


@pytest.mark.parametrize("name", NAMES)
def test_fit_refuses_trades_out_of_order(name, trades):
    with raises_exactly(UnsortedIndexError, "not sorted"):
        EVENT_MODELS[name]().fit(trades.iloc[::-1])


@pytest.mark.parametrize("name", NAMES)
def test_fit_refuses_a_series(name, trades):
    with raises_exactly(DataError, "DataFrame"):
        EVENT_MODELS[name]().fit(trades["price"])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("column", "value", "error", "fragment"), [
    ("price", np.nan, NonFiniteValueError, "price"),
    ("price", -1.0, NonPositivePriceError, "price"),
    ("size", -3.0, NonPositivePriceError, "size"),
    ("side", 7, DataError, "buy/sell"),
], ids=["nan-price", "negative-price", "negative-size", "side-7"])
def test_fit_refuses_bad_trades(name, column, value, error, fragment, trades):
    bad = trades.copy()
    bad.iloc[5, bad.columns.get_loc(column)] = value
    with raises_exactly(error, fragment):
        EVENT_MODELS[name]().fit(bad)


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_before_fit(name, trades):
    with raises_exactly(NotFittedError, "fit"):
        EVENT_MODELS[name]().log_prob(trades)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"n_events": 0, "seed": 0}, "n_events"), ({"n_events": 10, "seed": -1}, "seed"),
    ({"n_events": 10, "seed": 1.5}, "seed"), ({"n_events": 2.5, "seed": 0}, "n_events"),
])
def test_sample_refuses_bad_arguments(name, kwargs, fragment, event_models):
    with raises_exactly(DataError, fragment):
        event_models(name).sample(**kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_sample_gives_valid_reproducible_trades(name, event_models):
    m = event_models(name)
    a, b = m.sample(n_events=60, seed=4), m.sample(n_events=60, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 60 and a.index.is_monotonic_increasing
    assert (a["price"] > 0).all() and (a["size"] > 0).all() and set(a["side"]) <= {-1, 1}


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_is_finite_after_the_first_trade(name, event_models, trades):
    lp = event_models(name).log_prob(trades.iloc[:400])
    assert len(lp) == 400 and np.isfinite(lp["total"].iloc[1:]).all()
