"""Synthetic tick data: trades in and out, a reference simulator, TickModel, baselines, realism.

>>> import finar
>>> t = finar.ticks.simulate(n_events=5_000, seed=0)
>>> bars = finar.ticks.to_bars(t, "1min")
"""

from finar.ticks.baselines import ACD, EmpiricalMarks, Hawkes, SeasonalPoisson
from finar.ticks.events import Events, EventSpace
from finar.ticks.io import clean, infer_tick_size, read_trades, session_ids, tick_rule, to_bars
from finar.ticks.model import TickModel, TickNetwork
from finar.ticks.simulate import SimParams, simulate
from finar.ticks.stylized import RealismReport, realism

__all__ = ["simulate", "SimParams", "clean", "read_trades", "infer_tick_size", "tick_rule", "session_ids",
           "to_bars", "Events", "EventSpace", "EmpiricalMarks", "Hawkes", "ACD", "SeasonalPoisson",
           "TickModel", "TickNetwork", "realism", "RealismReport"]
