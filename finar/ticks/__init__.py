"""Synthetic tick data: trades in and out, a reference simulator, TickModel, baselines, realism.

>>> import finar
>>> t = finar.ticks.simulate(n_events=5_000, seed=0)
>>> bars = finar.ticks.to_bars(t, "1min")

The neural :class:`TickModel` (and its :class:`TickNetwork`) import torch on first use; the rest
of the package does not need it.
"""

from finar._lazy import lazy_exports
from finar.ticks.baselines import ACD, EmpiricalMarks, Hawkes, SeasonalPoisson
from finar.ticks.contract import EventModel
from finar.ticks.emini import emini_trades
from finar.ticks.events import Events, EventSpace
from finar.ticks.io import clean, infer_tick_size, read_trades, session_ids, tick_rule, to_bars
from finar.ticks.markov import MarkovHawkes
from finar.ticks.simulator import SimParams, simulate
from finar.ticks.stylized import RealismReport, realism

#: names imported on first access (torch underneath): see :mod:`finar._lazy`
_LAZY = {
    "TickModel": "finar.ticks.model",
    "TickNetwork": "finar.ticks.model",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["simulate", "SimParams", "clean", "read_trades", "infer_tick_size", "tick_rule", "session_ids",
           "to_bars", "Events", "EventSpace", "EventModel", "EmpiricalMarks", "Hawkes", "ACD",
           "SeasonalPoisson", "MarkovHawkes", "TickModel", "TickNetwork", "realism", "RealismReport",
           "emini_trades"]
