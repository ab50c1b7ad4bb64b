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


def test_portfolio_paths_var_es(sc):
    p = sc.portfolio([0.6, 0.4])
    assert isinstance(p, Scenarios) and p.paths.shape == (4000, 6, 1) and p.columns == ["portfolio"]
    simple = 0.6 * np.expm1(sc.paths[..., 0] / 100) + 0.4 * np.expm1(sc.paths[..., 1] / 100)
    np.testing.assert_allclose(p.paths[..., 0], 100 * np.log1p(simple))
    x = p.paths[:, 3, 0]
    assert p.var(0.05).iloc[3, 0] == pytest.approx(-np.quantile(x, 0.05))
    assert p.es(0.05).iloc[3, 0] == pytest.approx(-x[x <= np.quantile(x, 0.05)].mean())
    # by name, missing names weigh 0 (cash); simple returns combine linearly
    np.testing.assert_allclose(sc.portfolio({"b": 1.0}).paths[..., 0], sc.paths[..., 1], rtol=1e-12)
    s2 = Scenarios(sc.paths, sc.index, sc.columns, kind="simple")
    np.testing.assert_allclose(s2.portfolio(pd.Series({"a": 0.5, "b": 0.25})).paths[..., 0],
                               0.5 * sc.paths[..., 0] + 0.25 * sc.paths[..., 1])


def test_portfolio_of_joint_paths_keeps_diversification_right():
    """Perfectly correlated columns: the joint portfolio's VaR is the columns' VaR; drawn
    independently it is about 1/sqrt(2) of it, the error the joint label warns about."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20_000, 1, 1))
    idx = pd.bdate_range("2024-01-01", periods=1)
    joint = Scenarios(np.concatenate([z, z], axis=2), idx, ["a", "b"], joint=True)
    indep = Scenarios(rng.normal(size=(20_000, 1, 2)), idx, ["a", "b"])
    v_joint = joint.portfolio([0.5, 0.5]).var(0.01).iloc[0, 0]
    v_indep = indep.portfolio([0.5, 0.5]).var(0.01).iloc[0, 0]
    assert v_joint == pytest.approx(joint.var(0.01).iloc[0, 0], rel=1e-3)
    assert v_indep / v_joint == pytest.approx(1 / np.sqrt(2), rel=0.05)
    assert joint.portfolio([0.5, 0.5]).joint and not indep.portfolio([0.5, 0.5]).joint


def test_repr_says_whether_columns_are_joint(sc):
    assert "independent columns" in repr(sc) and sc.dependence == "independent"
    joint = Scenarios(sc.paths, sc.index, sc.columns, joint=True)
    assert "joint columns" in repr(joint) and joint.dependence == "joint"
    one = Scenarios(sc.paths[..., :1], sc.index, ["a"])
    assert "columns)" not in repr(one) and one.dependence == "single"
    assert "drawn independently" in repr(sc.portfolio([0.5, 0.5]))
    assert "portfolio of 2 series" in repr(joint.portfolio([0.5, 0.5]))
    assert "drawn independently" not in repr(joint.portfolio([0.5, 0.5]))


def test_portfolio_bad_weights(sc):
    with pytest.raises(DataError, match="one entry per column"):
        sc.portfolio([1.0])
    with pytest.raises(DataError, match="columns"):
        sc.portfolio({"zzz": 1.0})
    with pytest.raises(DataError, match="finite"):
        sc.portfolio([np.nan, 1.0])
    with pytest.raises(DataError, match="-100%"):
        sc.portfolio([-30.0, 31.0])
