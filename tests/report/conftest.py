"""A small report built once per test session, shared by the report and browser tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import finar
from finar.reporting import ModelSpec, Report, ReportConfig

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
#: two classical models on P1's settings, small fans and facts: a report in ~10 s
SMALL = ReportConfig(models=(ModelSpec("AR(aic)", "ar", {"order": "aic"}),
                             ModelSpec("GARCH(1,1) Student-t", "garch", {"dist": "t"})),
                     fan_horizon=20, fan_paths=100, facts_paths=20, facts_length=600, facts_lags=50,
                     backtest_paths=100, tick_events=500,
                     tick_params={"channels": 8, "layers": 3, "hidden": 8, "train__window": 64,
                                  "train__max_epochs": 1})

#: the bundled panel (the S&P 500 index and 20 stocks) over five years, small sizes: a report in ~15 s
STOCKS = replace(SMALL, start="2012-01-01", end="2016-12-31", portfolio_horizon=10, portfolio_paths=300)


def small_trades() -> pd.DataFrame:
    """Simulated trades for the tick section."""
    return finar.ticks.simulate(n_events=3_000, seed=0)


@pytest.fixture(scope="session")
def small_report() -> Report:
    return finar.report("sp500", config=SMALL, trades=small_trades())


@pytest.fixture(scope="session")
def small_report_file(small_report: Report) -> Path:
    """The small report written to tests/artifacts/report.html (kept for inspection)."""
    return small_report.write_html(ARTIFACTS / "report.html", overwrite=True)


@pytest.fixture(scope="session")
def stocks_report() -> Report:
    """``finar report --data sp500-stocks`` with small sizes: the portfolio section on 21 columns."""
    return finar.report("sp500-stocks", config=STOCKS)


@pytest.fixture(scope="session")
def stocks_report_file(stocks_report: Report) -> Path:
    """The panel report written to tests/artifacts/report-sp500-stocks.html (kept for inspection)."""
    return stocks_report.write_html(ARTIFACTS / "report-sp500-stocks.html", overwrite=True)
