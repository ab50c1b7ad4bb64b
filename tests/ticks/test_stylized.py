"""Realism metrics: a stream is close to another from the same simulator and far from a damaged one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finar.ticks import realism, simulate
from finar.ticks.stylized import WINDOW_FEATURES, discriminator_features, real_vs_real, uninformative


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


def test_real_vs_real_floor_and_uninformative_flags(real):
    floor = real_vs_real(real)
    half = len(real) // 2
    direct = realism(real.iloc[:half], real.iloc[half:]).distances()
    assert floor.distances() == direct  # the first half against the second, by the same metrics
    damaged = simulate(n_events=20_000, seed=1)
    damaged["side"] = np.random.default_rng(0).choice([-1, 1], len(damaged))
    rows = pd.DataFrame([realism(real, damaged).distances(), floor.distances()], index=["damaged", "floor"])
    flags = uninformative(rows, floor.distances())
    assert flags.loc["floor"].all()  # a distance equal to the floor is within it
    assert not flags.loc["damaged", "sign_acf_exponent"] and not flags.loc["damaged", "discriminator_auroc"]
    rows.loc["damaged", "dp_w1"] = np.nan
    assert not uninformative(rows, floor.distances()).loc["damaged", "dp_w1"]  # NaN is never flagged


def test_discriminator_features_find_the_damaged_feature(real):
    damaged = simulate(n_events=20_000, seed=1)
    damaged["size"] = damaged["size"] * 3  # only sizes differ
    imp = discriminator_features(real, damaged)
    assert imp.index[0] == "log_size_mean" and imp["importance"].idxmax() == "log_size_mean"
    assert imp.loc["log_size_mean", "auroc_alone"] > 0.9 > imp.loc["side_mean", "auroc_alone"]
    assert imp.attrs["auroc"] > 0.9 and set(imp.index) == set(WINDOW_FEATURES)
    assert imp.loc["log_size_mean", "synthetic_mean"] > imp.loc["log_size_mean", "real_mean"]
