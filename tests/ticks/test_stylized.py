"""Realism metrics: a stream is close to another from the same simulator and far from a damaged one."""

from __future__ import annotations

import numpy as np
import pytest

from finar.ticks import realism, simulate


@pytest.fixture(scope="module")
def real():
    return simulate(n_events=20_000, seed=0)


def test_same_process_is_close_and_damaged_stream_is_far(real):
    same = realism(real, simulate(n_events=20_000, seed=1)).metrics
    damaged = simulate(n_events=20_000, seed=1)
    damaged["side"] = np.random.default_rng(0).choice([-1, 1], len(damaged))  # no sign memory
    damaged.index = damaged.index[0] + (damaged.index - damaged.index[0]) * 0.5  # twice as fast
    far = realism(real, damaged).metrics
    assert same.loc["zero_gap_share", "distance"] < 0.02
    assert abs(same.loc["dp_acf1", "real"] - same.loc["dp_acf1", "synthetic"]) < 0.05
    for metric in ("log_gap_w1", "sign_acf_exponent", "discriminator_auroc"):
        assert far.loc[metric, "distance"] > same.loc[metric, "distance"], metric
    assert same.loc["discriminator_auroc", "synthetic"] < 0.65 < far.loc["discriminator_auroc", "synthetic"]


def test_curves_for_plots(real):
    rep = realism(real, simulate(n_events=20_000, seed=2))
    assert {"signature", "sign_acf", "intraday", "hist_log_gap", "hist_dp"} <= set(rep.curves)
    sig = rep.curves["signature"]
    assert (sig["real"].iloc[0] > sig["real"].iloc[-1])  # bounce: more variance at 1 s than at 5 min
    assert set(rep.distances()) == set(rep.metrics.index)
