"""The reference simulator: seeded, and it has the facts of PROTOCOLS.md P5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.evaluation.stylized import acf, power_law_exponent
from finar.ticks import simulate


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    return simulate(n_events=60_000, seed=3)


def test_same_seed_same_trades_and_global_rng_untouched():
    state = np.random.get_state()[1].copy()
    a, b = simulate(n_events=3_000, seed=7), simulate(n_events=3_000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate(n_events=3_000, seed=8))
    assert np.array_equal(np.random.get_state()[1], state)


def test_facts(trades):
    assert len(trades) == 60_000 and trades.index.is_monotonic_increasing
    gaps = np.diff(trades.index.as_unit("ns").asi8)
    assert 0.75 < np.mean(gaps == 0) < 0.85                      # sweeps share a timestamp
    dp = np.round(np.diff(trades["price"].to_numpy()) / 0.25)
    assert acf(dp, 1)[1] < -0.1                                   # bid-ask bounce
    assert 0.45 < np.mean(trades["size"] == 1) < 0.55            # half the trades of size 1
    rho = acf(trades["side"].to_numpy(dtype=float), 500)
    assert 0.3 < power_law_exponent(rho, 500) < 0.9              # long-memory signs
    bars = finar.ticks.to_bars(trades, "30min")
    n = bars.groupby(bars.index.time)["n_trades"].mean()
    assert n.iloc[0] > 1.5 * n.iloc[len(n) // 2] < n.iloc[-1]   # U-shaped activity


def test_bad_arguments():
    with pytest.raises(finar.FinarError, match="n_events"):
        simulate(n_events=1)
    with pytest.raises(finar.FinarError, match="unknown simulator parameter"):
        simulate(n_events=100, nonsense=1.0)
