"""The event space's helpers: the wall clock, the activity profile, the tick rule, trades from events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finar.ticks import EventSpace, simulate, tick_rule
from finar.ticks.events import activity_profile, clock_of_day, follows_tick_rule, local_seconds


def test_clock_is_the_wall_clock_of_the_data_time_zone():
    idx = pd.DatetimeIndex(["2024-03-08 09:30", "2024-03-11 09:30"]).tz_localize("America/New_York")
    np.testing.assert_allclose(clock_of_day(idx), 9.5 / 24)  # across the DST change
    assert local_seconds(idx)[0] == pd.Timestamp("2024-03-08 09:30").value / 1e9


def test_activity_profile_needs_three_sessions_per_clock_bin():
    t = simulate(n_events=120_000, seed=0, session_seconds=3 * 3600.0)  # 09:30-12:30, ~14,000 a day
    space = EventSpace().fit(t)
    ev = space.encode(t)
    assert ev.session.max() >= 3
    log_a, (open_, close) = activity_profile(ev)
    assert round(open_ * 24, 2) == 9.5 and 12.4 < close * 24 <= 12.5
    assert log_a[38] > log_a[44]  # the U-shape: busier at the open than at 11:00
    assert log_a[60] == log_a[49] and log_a[0] == log_a[38]  # untraded bins: the nearest traded one
    two_days = space.encode(t[t.index.normalize() <= t.index[0].normalize() + pd.Timedelta(days=1)])
    flat, _ = activity_profile(two_days)
    assert (flat == 0).all()  # two days: the clock cannot be told from the day


def test_follows_tick_rule():
    t = simulate(n_events=3_000, seed=0)
    space = EventSpace().fit(t)
    assert not follows_tick_rule(space.encode(t)).all()  # the simulator's sides are the aggressors'
    unsigned = t.assign(side=tick_rule(t["price"].to_numpy()))
    assert follows_tick_rule(space.encode(unsigned)).all()


def test_trades_at_round_trip():
    t = simulate(n_events=2_000, seed=1)
    space = EventSpace().fit(t)
    ev = space.encode(t)
    back = space.trades_at(t.index.as_unit("ns").asi8, ev.side, ev.dp, ev.size, float(t["price"].iloc[0]))
    pd.testing.assert_index_equal(back.index, t.index.as_unit("ns"), check_names=False)
    np.testing.assert_allclose(back["price"], t["price"])  # one session: price changes add up
