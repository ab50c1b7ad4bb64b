"""Tails and explosions of generated paths against the block bootstrap's band (P3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finar
from finar.errors import DataError
from finar.evaluation.tails import POOLED_FACTS, tail_diagnostics


@pytest.fixture(scope="module")
def real() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2009-05-01":"2018-12-31"]


def test_resampled_real_days_are_inside_and_never_explode(real: pd.Series) -> None:
    iid = np.random.default_rng(1).choice(real.to_numpy(), size=(100, 2000))
    t = tail_diagnostics(real, {"iid": iid}, n_replicates=100, seed=3)
    row = t.loc["iid"]
    assert row["share_beyond_2x"] == 0.0 and row["max_loss_p99"] <= -real.min() + 1e-12
    assert all(row[f"inside_{f}"] for f in ("hill_left", "hill_right", "kurt_1"))
    # the real row: its own facts, computed by the same code as stylized_facts
    facts = finar.stylized_facts(real, iid[:, :400]).table().loc["real"]
    for f in ("kurt_1", "kurt_5", "kurt_20", "hill_left", "hill_right"):
        assert t.loc["real", f] == pytest.approx(facts[f], rel=1e-12)
    for f in POOLED_FACTS:  # the band holds the real value and is not degenerate
        assert t.loc["real", f"{f}_q05"] < t.loc["real", f] < t.loc["real", f"{f}_q95"]


def test_heavy_tailed_paths_are_flagged(real: pd.Series) -> None:
    """t(2.2) shocks at the real scale: infinite kurtosis, paths beyond twice the worst day."""
    rng = np.random.default_rng(0)
    heavy = real.std() * 0.5 * stats.t.rvs(2.2, size=(200, 3000), random_state=rng)
    t = tail_diagnostics(real, {"heavy": heavy}, seed=0)
    row = t.loc["heavy"]
    assert not row["inside_kurt_1"] and not row["inside_hill_left"] and not row["inside_hill_right"]
    assert row["share_beyond_2x"] > 0.05 and row["max_loss_p99"] > 2 * -real.min()
    assert row["hill_left"] == pytest.approx(2.2, abs=0.5)
    assert t.attrs["n_replicates"] == 200 and t.attrs["worst_real_loss"] == pytest.approx(-real.min())


def test_drift_measures_a_growing_scale(real: pd.Series) -> None:
    rng = np.random.default_rng(2)
    grow = rng.standard_normal((50, 1000)) * np.linspace(1, 3, 1000)
    assert tail_diagnostics(real, {"grow": grow}, n_replicates=20).loc["grow", "drift"] == pytest.approx(
        2.33, rel=0.05)  # rms scale of the last fifth (2.8) over the first (1.2)


@pytest.mark.parametrize(("generated", "kw", "match"), [
    ({}, {}, "empty"),
    ({"x": np.ones((5, 50))}, {}, "T >= 100"),
    ({"x": np.full((5, 200), np.nan)}, {}, "finite"),
    ({"x": np.zeros((5, 200))}, {"n_replicates": 5}, "at least 20"),
])
def test_bad_inputs(real: pd.Series, generated: dict, kw: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        tail_diagnostics(real, generated, **kw)


def test_same_length_check_places_the_real_value(real: pd.Series) -> None:
    """Paths as long as the real series: the same-length facts and the real value's place among
    them. Resampled real days put the real kurtosis in the middle; t(2.5) shocks put it below
    almost every same-length value; shorter paths get no same-length columns."""
    n = len(real)
    rng = np.random.default_rng(4)
    iid = rng.choice(real.to_numpy(), size=(200, n + 10))
    heavy = real.std() * 0.6 * stats.t.rvs(2.5, size=(200, n), random_state=rng)
    t = tail_diagnostics(real, {"iid": iid, "heavy": heavy, "short": iid[:, :500]}, seed=1)
    assert 0.1 < t.loc["iid", "real_pct_kurt_1"] < 0.9
    assert t.loc["iid", "seg_kurt_1_q05"] < t.loc["real", "kurt_1"] < t.loc["iid", "seg_kurt_1_q95"]
    assert t.loc["heavy", "real_pct_kurt_1"] < 0.05
    assert t.loc["heavy", "real_pct_hill_left"] > 0.9  # the real tail is lighter: a larger index
    # the same-length values of one path: the pooled facts of its first n days
    first = tail_diagnostics(real, {"one": iid[:1, :n]}, n_replicates=20).loc["one"]
    assert first["seg_kurt_20_q05"] == pytest.approx(first["kurt_20"], rel=1e-12)
    assert np.isnan(t.loc["short", "real_pct_kurt_1"]) and np.isnan(t.loc["real", "real_pct_kurt_1"])


def test_dy_terms_sum_to_the_p3_score(real: pd.Series) -> None:
    from finar.evaluation.stylized import DY_BINS, dy_terms

    gen = np.random.default_rng(5).standard_normal((20, 1000)) * real.std()
    edges, terms = dy_terms(real.to_numpy(), gen.ravel())
    assert len(edges) == DY_BINS + 1 and edges[0] == real.min() and edges[-1] == real.max()
    dy_1 = finar.stylized_facts(real, gen).table().loc["generated", "dy_1"]
    assert terms.sum() == pytest.approx(dy_1, rel=1e-12) and (terms >= 0).all()
