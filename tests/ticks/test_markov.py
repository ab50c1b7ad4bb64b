"""MarkovHawkes: tables equal smoothed counts, the log-likelihood equals a hand computation, the
chain is normalised, and it reproduces a bid-ask bounce that i.i.d. marks cannot.

The event-model contract (parameters, clone, seeds, files, bad input) runs over it in
``test_baselines.py``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from finar._estimator import registry
from finar.errors import DataError
from finar.evaluation.stylized import acf
from finar.ticks import Hawkes, simulate
from finar.ticks.contract import EventModel
from finar.ticks.markov import MarkovHawkes


@pytest.fixture(scope="module")
def train():
    return simulate(n_events=20_000, seed=5)


@pytest.fixture(scope="module")
def model(train):
    return MarkovHawkes(prior=3.0).fit(train)


def _state(m, zero, side, dp, size_bin):
    """The previous trade's state, written out: (zero flag, side, sign of dp, coarse size bucket)."""
    bucket = sum(int(e < size_bin) for e in m.chain_.bucket_edges_)
    sign = int(dp > 0) - int(dp < 0)
    return ((int(zero) * 2 + int(side > 0)) * 3 + sign + 1) * m.chain_.n_buckets_ + bucket


def _hawkes_density(a, m, k):
    """log f(a_k | a_<k) of the exponential Hawkes, summed by brute force."""
    lam = m.mu_ + m.alpha_ * sum(math.exp(-m.beta_ * (a[k] - x)) for x in a[:k])
    comp = m.mu_ * (a[k] - a[k - 1]) + m.alpha_ / m.beta_ * sum(
        math.exp(-m.beta_ * (a[k - 1] - x)) - math.exp(-m.beta_ * (a[k] - x)) for x in a[:k])
    return math.log(lam) - comp


def test_tables_are_smoothed_counts(model, train):
    m, prior = model, 3.0
    ev = m.space_.encode(train)
    S = m.chain_.n_states
    n = np.zeros((S, 2))
    n_side = np.zeros((S, 2, 2))
    prev = None
    for i in range(len(ev)):
        zero = bool(ev.scored[i] and ev.dt[i] == 0)
        if ev.scored[i]:
            n[prev, int(zero)] += 1
            n_side[prev, int(zero), int(ev.side[i] > 0)] += 1
        prev = _state(m, zero, ev.side[i], ev.dp[i], m.space_.size_bin(ev.size[i : i + 1])[0])
    pooled = (n.sum(0) + 0.5) / (n.sum() + 1.0)
    want = (n + prior * pooled) / (n.sum(1, keepdims=True) + prior)
    np.testing.assert_allclose(np.exp(m.chain_.log_zero_), want, rtol=1e-12)
    pooled_side = (n_side.sum(0) + 0.5) / (n_side.sum((0, 2))[:, None] + 1.0)
    want_side = (n_side + prior * pooled_side) / (n_side.sum(2, keepdims=True) + prior)
    np.testing.assert_allclose(np.exp(m.chain_.log_side_), want_side, rtol=1e-12)


def test_tables_are_normalised(model):
    c = model.chain_
    for table in (c.log_zero_, c.log_side_, c.log_dp_, c.log_size_):
        np.testing.assert_allclose(np.exp(table).sum(-1), 1.0, rtol=1e-12)
        assert np.isfinite(table).all()


def test_log_likelihood_equals_a_hand_computation(model):
    m = model
    t0 = pd.Timestamp("2024-03-01 10:00:00")
    secs = [0.0, 0.0, 0.5, 0.5, 2.0, 2.1, 2.1, 5.0, 5.0]
    price = [4500.0, 4500.0, 4500.25, 4500.25, 4500.0, 4500.0, 4499.75, 4500.0, 4500.0]
    side = [1, 1, 1, -1, -1, 1, -1, 1, 1]
    size = [1.0, 3.0, 2.0, 1.0, 7.0, 1.0, 4.0, 2.0, 5.0]
    trades = pd.DataFrame({"price": price, "size": size, "side": side},
                          index=pd.DatetimeIndex([t0 + pd.Timedelta(seconds=s) for s in secs], name="time"))
    got = m.log_prob(trades)
    c, tick, K = m.chain_, 0.25, m.max_ticks
    arrivals = sorted(set(secs))
    zero_prev = False
    for i in range(1, len(secs)):
        dp_prev = 0 if i == 1 else round((price[i - 1] - price[i - 2]) / tick)
        s = _state(m, zero_prev, side[i - 1], dp_prev, int(size[i - 1]) - 1)  # bins: one per unit to 8
        zero = secs[i] == secs[i - 1]
        dp = round((price[i] - price[i - 1]) / tick)
        up = int(side[i] > 0)
        lt = c.log_zero_[s, int(zero)]
        if not zero:
            lt += _hawkes_density(arrivals, m, arrivals.index(secs[i]))
        ls = c.log_side_[s, int(zero), up]
        ld = c.log_dp_[s, int(zero), up, dp + K]  # |dp| < K: no tail term
        lz = c.log_size_[s, int(zero), up, (dp > 0) - (dp < 0) + 1, int(size[i]) - 1]  # unit bins: no
        np.testing.assert_allclose(got.iloc[i][["time", "side", "dp", "size"]].to_numpy(float),
                                   [lt, ls, ld, lz], rtol=1e-10, err_msg=f"trade {i}")
        zero_prev = zero
    assert math.isnan(got["total"].iloc[0])
    fields = got[["time", "side", "dp", "size"]].iloc[1:]
    np.testing.assert_allclose(got["total"].iloc[1:], fields.sum(axis=1))


def test_bid_ask_bounce_is_reproduced(train):
    real_acf = acf(np.diff(np.round(train["price"].to_numpy() / 0.25)), 1)[1]
    assert real_acf < -0.1  # the simulator's bounce
    mh = MarkovHawkes().fit(train).sample(n_events=20_000, seed=0)
    iid = Hawkes().fit(train).sample(n_events=20_000, seed=0)
    mh_acf = acf(np.diff(np.round(mh["price"].to_numpy() / 0.25)), 1)[1]
    iid_acf = acf(np.diff(np.round(iid["price"].to_numpy() / 0.25)), 1)[1]
    assert abs(mh_acf - real_acf) < 0.05 and abs(iid_acf) < 0.03
    share = np.mean(np.diff(mh.index.as_unit("ns").asi8) == 0)
    assert abs(share - np.mean(np.diff(train.index.as_unit("ns").asi8) == 0)) < 0.03  # sweeps kept


def test_beats_iid_marks_on_held_out_trades(train):
    held_out = simulate(n_events=8_000, seed=6)
    mh, h = MarkovHawkes().fit(train), Hawkes().fit(train)
    assert mh.loglik_per_event(held_out) > h.loglik_per_event(held_out) + 0.3
    np.testing.assert_allclose(mh._log_density(np.array([0.0, 1.0, 1.5])),
                               h._log_density(np.array([0.0, 1.0, 1.5])))  # the same arrivals


def test_registered_and_prior_checked(train):
    assert registry(EventModel)["markovhawkes"] is MarkovHawkes
    for bad in (0, -1.0, float("nan"), "5"):
        with pytest.raises(DataError, match="prior"):
            MarkovHawkes(prior=bad).fit(train)
