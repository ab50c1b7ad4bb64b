"""Baselines: exact, normalised likelihoods in the shared units; Hawkes MLE recovers parameters;
the event-model contract (parameters, clone, seeds, model files, errors)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate

import finar
from finar._estimator import clone, create, registry
from finar.errors import DataError, ModelFileError, NotFittedError
from finar.ticks import ACD, EventSpace, Hawkes, SeasonalPoisson, session_ids, simulate
from finar.ticks.contract import EventModel
from finar.ticks.markov import MarkovHawkes

BASELINES = [Hawkes, ACD, SeasonalPoisson, MarkovHawkes]


@pytest.fixture(scope="module")
def trades():
    return simulate(n_events=30_000, seed=1)


def _brute_hawkes(a, mu, alpha, beta):
    out = []
    for m in range(1, len(a)):
        lam = mu + alpha * np.sum(np.exp(-beta * (a[m] - a[:m])))
        comp = mu * (a[m] - a[m - 1]) + alpha / beta * np.sum(
            np.exp(-beta * (a[m - 1] - a[:m])) - np.exp(-beta * (a[m] - a[:m])))
        out.append(math.log(lam) - comp)
    return np.array(out)


def test_hawkes_loglik_matches_brute_force(trades):
    h = Hawkes().fit(trades)
    a = np.cumsum(np.random.default_rng(0).exponential(1.0, 40))
    np.testing.assert_allclose(h._log_density(a), _brute_hawkes(a, h.mu_, h.alpha_, h.beta_), rtol=1e-9)


def test_hawkes_recovers_parameters_on_a_flat_hawkes_stream():
    t = simulate(n_events=150_000, seed=2, u_shape=0.0, p_single=1.0)  # one trade per order
    h = Hawkes().fit(t)
    assert abs(h.branching_ - 0.5) < 0.08 and abs(h.beta_ - 0.5) < 0.15 and abs(h.mu_ - 0.12) < 0.03


@pytest.mark.parametrize("cls", [Hawkes, ACD, SeasonalPoisson])
def test_next_arrival_density_integrates_to_one(trades, cls):
    m = cls().fit(trades)
    past = np.array([0.0, 3.0, 3.5, 9.0])
    if cls is ACD:
        def f(x):
            return math.exp(m._log_densities([np.r_[past, past[-1] + x]])[-1])
    else:
        def f(x):
            return math.exp(m._log_density(np.r_[past, past[-1] + x])[-1])
    total = sum(integrate.quad(f, lo, hi, limit=200)[0] for lo, hi in ((0, 1), (1, 100), (100, np.inf)))
    assert abs(total - 1) < 1e-3


def test_log_prob_units_and_sampling(trades):
    train, test = trades.iloc[:20_000], trades.iloc[20_000:]
    h = Hawkes().fit(train)
    lp = h.log_prob(test)
    assert list(lp.columns) == ["time", "side", "dp", "size", "total"]
    n_sessions = len(np.unique(session_ids(test.index)))
    assert n_sessions == 2 and lp["total"].isna().sum() == n_sessions  # first trades are context
    assert np.isfinite(lp["total"].dropna()).all()
    zero = np.r_[False, np.diff(test.index.as_unit("ns").asi8) == 0]
    assert np.allclose(lp["time"][zero], math.log(h.marks_.p_zero_))
    s = h.sample(n_events=5_000, seed=0)
    assert len(s) == 5_000 and s.index.is_monotonic_increasing
    assert s.equals(h.sample(n_events=5_000, seed=0))


def test_event_space_marks_sum_to_one(trades):
    space = EventSpace(max_ticks=3).fit(trades)
    dp = np.arange(3, 200)  # the upper edge class and its geometric tail
    in_dp, _ = space.log_mark(dp, np.ones(len(dp)))
    assert abs(np.exp(in_dp).sum() - 1) < 1e-9
    sizes = np.arange(1, 10**6, dtype=float)
    _, in_size = space.log_mark(np.zeros(len(sizes)), sizes)
    bins = space.size_bin(sizes)
    per_bin = np.bincount(bins, weights=np.exp(in_size))
    np.testing.assert_allclose(per_bin, 1.0, atol=2e-3)  # the Pareto tail sums to 1 in the limit
    rng = np.random.default_rng(0)
    d, s = space.draw_marks(np.full(1000, 6), np.full(1000, space.n_size - 1), rng)
    assert (d >= 3).all() and (s >= space.size_edges_[-1]).all()


def test_time_zone_and_session_open_are_kept(trades):
    local = trades.iloc[:5_000].tz_localize("America/New_York")
    s = SeasonalPoisson().fit(local).sample(n_events=500, seed=0)
    assert str(s.index.tz) == "America/New_York"
    assert s.index[0].hour == 9 and s.index[0].minute >= 30  # sessions open when the data's do


# ---- the event-model contract ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(trades):
    return {cls: cls().fit(trades.iloc[:20_000]) for cls in BASELINES}


def test_baselines_are_registered_event_models():
    models = registry(EventModel)
    assert {"hawkes": Hawkes, "acd": ACD, "seasonalpoisson": SeasonalPoisson}.items() <= models.items()
    m = create("seasonalpoisson", n_bins=13)
    assert isinstance(m, SeasonalPoisson) and m.n_bins == 13


@pytest.mark.parametrize("cls", BASELINES)
def test_save_load_round_trip(cls, trades, fitted, tmp_path):
    m, held_out = fitted[cls], trades.iloc[20_000:]
    path = m.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)  # plain values only: no pickled objects
    assert payload["model"] == cls.registry_name
    m2 = finar.models.load(path)
    assert type(m2) is cls and m2.get_params() == m.get_params()
    pd.testing.assert_frame_equal(m2.log_prob(held_out), m.log_prob(held_out))
    pd.testing.assert_frame_equal(m2.sample(n_events=2_000, seed=3), m.sample(n_events=2_000, seed=3))


def test_round_trip_keeps_time_zone_and_settings(trades, tmp_path):
    local = trades.iloc[:8_000].tz_localize("America/New_York")
    m = SeasonalPoisson(n_bins=7, max_ticks=4, session_gap="20min").fit(local)
    m2 = finar.models.load(m.save(tmp_path / "sp.pt"))
    assert m2.get_params() == {"n_bins": 7, "max_ticks": 4, "session_gap": "20min"}
    assert len(m2.rates_) == 7 and m2.space_.n_dp == 9
    a, b = m.sample(n_events=300, seed=0), m2.sample(n_events=300, seed=0)
    assert str(b.index.tz) == "America/New_York"
    pd.testing.assert_frame_equal(a, b)
    held_out = trades.iloc[8_000:12_000].tz_localize("America/New_York")
    pd.testing.assert_frame_equal(m2.log_prob(held_out), m.log_prob(held_out))


def test_load_rejects_a_damaged_state(fitted, tmp_path):
    path = fitted[Hawkes].save(tmp_path / "h.pt")
    payload = torch.load(path, weights_only=True)
    del payload["state"]["arrivals"]["beta"]
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="state does not match"):
        finar.models.load(path)


@pytest.mark.parametrize("cls", BASELINES)
def test_params_clone_and_repr(cls, fitted):
    m = fitted[cls]
    c = clone(m)
    assert type(c) is cls and c.get_params() == m.get_params() and not c.is_fitted and m.is_fitted
    m2 = cls(max_ticks=5, session_gap="1h")
    assert m2.get_params(deep=True)["max_ticks"] == 5 and "max_ticks=5" in repr(m2)
    assert m2.set_params(max_ticks=3) is m2 and m2.max_ticks == 3
    with pytest.raises(DataError, match="no parameter"):
        m2.set_params(ticks=3)
    assert set(vars(cls())) == set(cls().get_params())  # __init__ only stores its arguments


@pytest.mark.parametrize("cls", BASELINES)
def test_seeds(cls, fitted):
    m = fitted[cls]
    a, b, c = (m.sample(n_events=1_000, seed=s) for s in (7, 7, 8))
    pd.testing.assert_frame_equal(a, b)
    assert not a["price"].equals(c["price"])
    with pytest.raises(DataError, match="seed"):
        m.sample(n_events=10, seed=-1)


@pytest.mark.parametrize("cls", BASELINES)
def test_bad_input_raises(cls, trades, fitted):
    with pytest.raises(NotFittedError, match="fit"):
        cls().log_prob(trades)
    with pytest.raises(NotFittedError, match="fit"):
        cls().sample(n_events=10, seed=0)
    with pytest.raises(DataError, match="max_ticks"):
        cls(max_ticks=0).fit(trades)
    with pytest.raises(DataError, match="session_gap"):
        cls(session_gap="soon").fit(trades)
    with pytest.raises(DataError, match="DataFrame"):
        cls().fit(trades["price"])
    with pytest.raises(DataError, match="n_events"):
        fitted[cls].sample(n_events=0, seed=0)
    backwards = trades.iloc[:200].iloc[::-1]
    with pytest.raises(DataError):
        fitted[cls].log_prob(backwards)


def test_seasonal_poisson_checks_n_bins(trades):
    with pytest.raises(DataError, match="n_bins"):
        SeasonalPoisson(n_bins=0).fit(trades)
