"""Tests of finar.evaluation.strategy: a hand-computed example, the leverage cap, costs, no
look-ahead, drawdowns and alignment errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finar.errors import DataError, NonFiniteValueError, SeriesTooShortError
from finar.evaluation.strategy import (
    StrategyResult,
    buy_and_hold,
    compare_strategies,
    max_drawdown,
    realised_vol_forecast,
    realised_vol_rule,
    vol_target,
)
from tests.conftest import raises_exactly

DAYS = pd.bdate_range("2024-01-01", periods=5)


def random_returns(n: int = 600, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) % 200 < 100, 0.6, 1.8)
    return pd.Series(sigma * rng.standard_normal(n), index=pd.bdate_range("2015-01-01", periods=n))


def test_hand_computed_five_days():
    r = pd.Series([1.0, -2.0, 0.5, 3.0, -1.0], index=DAYS)
    vol = pd.Series([1.0, 0.5, 2.0, 0.25, 1.0], index=DAYS)
    # target sqrt(252) % a year makes w = 1 / vol: 1, 2, 0.5, 4 -> capped at 2, 1
    res = vol_target(r, vol, target_vol=np.sqrt(252), max_leverage=2.0, cost_bps=10.0)
    assert isinstance(res, StrategyResult)
    np.testing.assert_allclose(res.positions, [1.0, 2.0, 0.5, 2.0, 1.0])
    np.testing.assert_allclose(res.turnover, [1.0, 1.0, 1.5, 1.5, 1.0])
    e = np.exp
    expected = np.array([
        1.0 * (e(0.01) - 1) - 0.001 * 1.0,
        2.0 * (e(-0.02) - 1) - 0.001 * 1.0,
        0.5 * (e(0.005) - 1) - 0.001 * 1.5,
        2.0 * (e(0.03) - 1) - 0.001 * 1.5,
        1.0 * (e(-0.01) - 1) - 0.001 * 1.0,
    ])
    np.testing.assert_allclose(res.returns, expected, rtol=1e-12)
    equity = np.cumprod(1 + expected)
    np.testing.assert_allclose(res.equity, equity, rtol=1e-12)
    assert res.equity.index.equals(DAYS)

    s = res.summary()
    assert s["annual_return_pct"] == pytest.approx(100 * (equity[-1] ** (252 / 5) - 1))
    assert s["annual_vol_pct"] == pytest.approx(100 * np.sqrt(252) * expected.std(ddof=1))
    assert s["sharpe"] == pytest.approx(np.sqrt(252) * expected.mean() / expected.std(ddof=1))
    peak = np.maximum.accumulate(np.r_[1.0, equity])
    assert s["max_drawdown_pct"] == pytest.approx(100 * np.max(1 - np.r_[1.0, equity] / peak))
    assert s["annual_turnover"] == pytest.approx(6.0 / 5 * 252)
    assert s["mean_position"] == pytest.approx(1.3)
    assert s["n_days"] == 5 and s["start"] == DAYS[0] and s["end"] == DAYS[-1]


def test_risk_free_enters_sharpe_only():
    r = random_returns()
    vol = pd.Series(1.0, index=r.index)
    base, rf = vol_target(r, vol), vol_target(r, vol, risk_free=2.0)
    np.testing.assert_array_equal(base.returns, rf.returns)
    excess = base.returns - 0.02 / 252
    assert rf.summary()["sharpe"] == pytest.approx(np.sqrt(252) * excess.mean() / excess.std(ddof=1))
    assert rf.summary()["sharpe"] < base.summary()["sharpe"]


def test_leverage_cap_binds():
    r = random_returns(50)
    calm = pd.Series(0.05, index=r.index)  # uncapped position would be 10 / (15.87 * 0.05) = 12.6
    assert (vol_target(r, calm, max_leverage=1.5).positions == 1.5).all()
    assert (vol_target(r, calm, max_leverage=np.inf).positions > 12).all()
    wild = pd.Series(5.0, index=r.index)
    np.testing.assert_allclose(vol_target(r, wild).positions, 10 / (np.sqrt(252) * 5.0))


def test_costs_reduce_return_by_turnover_times_cost():
    r = random_returns()
    vol = realised_vol_forecast(r)
    free = vol_target(r.loc[vol.index], vol, cost_bps=0.0)
    paid = vol_target(r.loc[vol.index], vol, cost_bps=7.0)
    np.testing.assert_allclose(free.returns - paid.returns, 7e-4 * paid.turnover, rtol=1e-12, atol=1e-15)
    total_cost = (free.returns - paid.returns).sum()
    assert total_cost == pytest.approx(7e-4 * paid.turnover.sum(), rel=1e-12)
    assert paid.summary()["annual_return_pct"] < free.summary()["annual_return_pct"]


def test_realised_vol_rule_has_no_look_ahead():
    r = random_returns(120)
    base = realised_vol_rule(r, window=20)
    t = r.index[60]
    shocked = r.copy()
    shocked.loc[t] += 25.0
    moved = realised_vol_rule(shocked, window=20)
    pos, pos2 = base.positions, moved.positions
    assert pos.index.equals(pos2.index)
    # positions up to and including day t are unchanged; day t+1 reacts to the shock
    np.testing.assert_array_equal(pos.loc[:t], pos2.loc[:t])
    nxt = pos.index[pos.index.get_loc(t) + 1]
    assert pos2.loc[nxt] < pos.loc[nxt]
    # the forecast for day t is the std of the 20 returns before it
    assert realised_vol_forecast(r).loc[t] == pytest.approx(r.iloc[40:60].std(ddof=1))
    assert base.returns.index[0] == r.index[20]


def test_oracle_vol_hits_the_target():
    rng = np.random.default_rng(11)
    n = 252 * 20
    sigma = np.exp(np.convolve(rng.normal(0, 0.15, n + 50), np.ones(50) / np.sqrt(50), "valid")[:n])
    idx = pd.bdate_range("2000-01-03", periods=n)
    r = pd.Series(sigma * rng.standard_normal(n), index=idx)
    oracle = vol_target(r, pd.Series(sigma, index=idx), max_leverage=np.inf, cost_bps=0.0)
    assert oracle.summary()["annual_vol_pct"] == pytest.approx(10.0, abs=0.3)
    assert abs(buy_and_hold(r).summary()["annual_vol_pct"] - 10.0) > 1.0


def test_buy_and_hold_tracks_the_asset():
    r = random_returns(30)
    res = buy_and_hold(r, cost_bps=2.0)
    assert (res.positions == 1.0).all() and res.turnover.sum() == 1.0
    expected = (np.exp(r.iloc[0] / 100) - 2e-4) * np.exp(r.iloc[1:].sum() / 100)
    assert res.equity.iloc[-1] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("curve", "dd"), [
    ([1.1, 0.88, 1.2, 0.9, 1.3], 0.25),
    ([1.0, 1.1, 1.2], 0.0),
    ([0.9, 1.0, 0.45], 0.55),  # the first day's loss counts from the starting value 1
    ([2.0, 1.0, 1.5, 0.5, 3.0], 0.75),
])
def test_max_drawdown_of_known_curves(curve, dd):
    assert max_drawdown(np.array(curve)) == pytest.approx(dd)
    assert max_drawdown(pd.Series(curve)) == pytest.approx(dd)


def test_compare_strategies_table():
    r = random_returns(400)
    period = r.index[100:]
    good = realised_vol_forecast(r, 10).loc[period]
    table = compare_strategies(r, {"rv10": good, "flat": pd.Series(1.2, index=period)})
    assert list(table["strategy"]) == ["rv10", "flat", "realised vol (20d)", "buy and hold"]
    assert (table["n_days"] == 300).all() and (table["start"] == period[0]).all()
    for col in ("annual_return_pct", "annual_vol_pct", "sharpe", "max_drawdown_pct",
                "annual_turnover"):
        assert table[col].dtype == float
    rule = vol_target(r.loc[period], realised_vol_forecast(r).loc[period])
    assert table.loc[2, "sharpe"] == pytest.approx(rule.summary()["sharpe"])
    bh = buy_and_hold(r.loc[period]).summary()
    assert table.loc[3, "annual_return_pct"] == pytest.approx(bh["annual_return_pct"])
    # with no forecasts the period is the rule's
    assert compare_strategies(r, {})["n_days"].tolist() == [380, 380]


def test_misaligned_indexes_raise():
    r = random_returns(100)
    vol = pd.Series(1.0, index=r.index)
    with raises_exactly(DataError, "not aligned"):
        vol_target(r, vol.shift(1, freq="B"))
    with raises_exactly(DataError, "99 days against 100"):
        vol_target(r, vol.iloc[1:])
    with raises_exactly(DataError, "not aligned"):
        vol_target(r, vol.reset_index(drop=True))
    with raises_exactly(DataError, "not aligned"):
        compare_strategies(r, {"a": vol.iloc[30:], "b": vol.iloc[31:]})
    with raises_exactly(DataError, "lack 1 forecast day"):
        compare_strategies(r.iloc[:-1], {"a": vol.iloc[30:]})
    with raises_exactly(SeriesTooShortError, "20 days of history"):
        compare_strategies(r, {"a": vol.iloc[10:]})
    with raises_exactly(DataError, "taken by a baseline"):
        compare_strategies(r, {"buy and hold": vol.iloc[30:]})


def test_bad_values_raise():
    r = random_returns(10)
    vol = pd.Series(1.0, index=r.index)
    with raises_exactly(NonFiniteValueError, str(r.index[3].date())):
        vol_target(r, vol.where(r.index != r.index[3]))
    with raises_exactly(NonFiniteValueError, "returns"):
        vol_target(r.where(r.index != r.index[0]), vol)
    with raises_exactly(DataError, "predicted_vol must be > 0"):
        vol_target(r, vol.where(r.index != r.index[2], 0.0))
    with raises_exactly(DataError, "cost_bps"):
        vol_target(r, vol, cost_bps=-1.0)
    with raises_exactly(DataError, "target_vol"):
        vol_target(r, vol, target_vol=0.0)
    with raises_exactly(SeriesTooShortError, "at least 2"):
        buy_and_hold(r.iloc[:1])
    with raises_exactly(SeriesTooShortError, "20-day rule"):
        realised_vol_rule(r)
    with raises_exactly(DataError, "sorted"):
        buy_and_hold(r.iloc[::-1])
