"""Scenarios: quantiles and risk numbers against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finar.errors import DataError
from finar.models.scenarios import Scenarios, future_index


@pytest.fixture
def sc() -> Scenarios:
    rng = np.random.default_rng(0)
    paths = rng.standard_t(5, size=(4000, 6, 2))
    return Scenarios(paths, pd.bdate_range("2024-01-01", periods=6, name="time"), ["a", "b"], seed=0)


def test_quantile_mean_std(sc):
    q = sc.quantile(0.05)
    np.testing.assert_allclose(q.to_numpy(), np.quantile(sc.paths, 0.05, axis=0))
    assert list(q.columns) == ["a", "b"] and q.index.equals(sc.index)
    multi = sc.quantile([0.05, 0.5])
    np.testing.assert_allclose(multi[(0.5, "b")].to_numpy(), np.quantile(sc.paths[:, :, 1], 0.5, axis=0))
    np.testing.assert_allclose(sc.mean().to_numpy(), sc.paths.mean(axis=0))
    np.testing.assert_allclose(sc.std().to_numpy(), sc.paths.std(axis=0, ddof=1))
    with pytest.raises(DataError, match=r"\(0, 1\)"):
        sc.quantile(1.5)


def test_var_es_are_positive_losses(sc):
    var = sc.var(0.01)
    es = sc.es(0.01)
    x = sc.paths[:, 2, 0]
    qx = np.quantile(x, 0.01)
    assert var.iloc[2, 0] == pytest.approx(-qx)
    assert es.iloc[2, 0] == pytest.approx(-x[x <= qx].mean())
    assert (es.to_numpy() >= var.to_numpy()).all() and (var.to_numpy() > 0).all()


def test_cumulative_log_and_prices(sc):
    cum = sc.mean(cumulative=True)
    np.testing.assert_allclose(cum.to_numpy(), np.cumsum(sc.paths, axis=1).mean(axis=0))
    prices = sc.to_prices([100.0, 50.0])
    np.testing.assert_allclose(prices[:, -1, 0], 100 * np.exp(sc.paths[:, :, 0].sum(axis=1) / 100))
    np.testing.assert_allclose(prices[:, 0, 1], 50 * np.exp(sc.paths[:, 0, 1] / 100))
    with pytest.raises(DataError, match="positive"):
        sc.to_prices(-1.0)


def test_to_frame_long_format(sc):
    f = sc.to_frame()
    assert f.shape == (4000 * 6, 2)
    assert f.index.names == ["path", "time"]
    np.testing.assert_array_equal(f.loc[(3, sc.index[4])].to_numpy(), sc.paths[3, 4])


def test_bad_shapes_and_values():
    idx = pd.bdate_range("2024-01-01", periods=3)
    with pytest.raises(DataError, match="n_paths, horizon, n_series"):
        Scenarios(np.zeros((3, 3)), idx, ["a"])
    with pytest.raises(DataError, match="do not match"):
        Scenarios(np.zeros((2, 4, 1)), idx, ["a"])
    bad = np.zeros((2, 3, 1))
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        Scenarios(bad, idx, ["a"])


def test_future_index():
    days = pd.bdate_range("2024-01-01", "2024-01-31")
    fut = future_index(days, 3)
    assert list(fut) == list(pd.bdate_range("2024-02-01", periods=3))
    # daily data with holidays missing continues in business days
    with_gaps = days.delete([5, 10])
    assert future_index(with_gaps, 2)[0] == pd.Timestamp("2024-02-01")
    assert list(future_index(pd.RangeIndex(10), 2)) == [10, 11]
    hourly = pd.date_range("2024-01-01", periods=10, freq="h")
    assert future_index(hourly, 1)[0] == pd.Timestamp("2024-01-01 10:00")
