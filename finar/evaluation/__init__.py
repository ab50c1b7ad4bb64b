"""Evaluation over the forecaster contract: backtests, scoring rules, tests, stylized facts.

The backtest functions live in :mod:`finar.evaluation.backtesting`, a module name distinct from
the function :func:`backtest`, which would otherwise hide the module and its other names.
"""

from finar.evaluation.backtesting import BacktestResult, backtest, backtest_panel
from finar.evaluation.comparison import compare
from finar.evaluation.stylized import StylizedFacts, stylized_facts

__all__ = ["backtest", "backtest_panel", "BacktestResult", "compare", "stylized_facts", "StylizedFacts"]
