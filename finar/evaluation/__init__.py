"""Evaluation over the forecaster contract: backtests, scoring rules, tests, stylized facts."""

from finar.evaluation.backtest import BacktestResult, backtest
from finar.evaluation.compare import compare
from finar.evaluation.stylized import StylizedFacts, stylized_facts

__all__ = ["backtest", "BacktestResult", "compare", "stylized_facts", "StylizedFacts"]
