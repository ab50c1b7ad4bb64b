"""What the report's sections share: the data, the settings, and results computed once.

:func:`finar.report` loads the data with :func:`finar.reporting.pipeline.load_data` and hands
every section function (:mod:`finar.reporting.sections`) one :class:`Context`; results that
several sections show, such as the backtests, are computed on first use and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from finar.evaluation.backtesting import BacktestResult
from finar.protocols import P1, P3
from finar.reporting.config import ReportConfig
from finar.reporting.pipeline import Data, backtest_period, run_backtest
from finar.reporting.portfolio import PortfolioPlan, portfolio_plan

__all__ = ["Context"]

#: returns the stylized facts need in P3's window for it to be used instead of the whole series
MIN_FACTS_WINDOW = 1000


@dataclass
class Context:
    """The data and settings of one report, and the results its sections share.

    Attributes
    ----------
    data : Data
        The loaded prices of the modelled column(s) and their percent log returns.
    config : ReportConfig
        Models, periods, sizes and seeds.
    trades : DataFrame, optional
        Trades for the tick-realism section; ``trades_label`` names them on the page.
    progress : bool
        Progress bars of the backtests on stderr.
    results_dir : Path, optional
        A folder of benchmark results to show instead of the ones shipped with finar.

    A panel of several columns (``sp500-stocks``) sets :attr:`panel` and :attr:`plan`
    (:func:`finar.reporting.portfolio.portfolio_plan`, from the config's ``portfolio_*``
    settings); the single-series sections then model the plan's lead column (the index, else the
    first column) through :attr:`prices` and :attr:`returns`.
    """

    data: Data
    config: ReportConfig
    trades: pd.DataFrame | None = None
    trades_label: str = ""
    progress: bool = False
    results_dir: Path | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    #: the modelled price column and its returns (from ``data``; a panel's lead column)
    prices: pd.Series = field(init=False, repr=False)
    returns: pd.Series = field(init=False, repr=False)
    #: a panel's returns (columns as strings) and its portfolio plan; None for one series
    panel: pd.DataFrame | None = field(init=False, repr=False)
    plan: PortfolioPlan | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.data.returns, pd.DataFrame):
            c = self.config
            self.panel = self.data.returns.rename(columns=str)
            self.plan = portfolio_plan(list(self.panel.columns), index=c.portfolio_index,
                                       weights=c.portfolio_weights)
            self.prices = self.data.prices.rename(columns=str)[self.plan.lead]
            self.returns = self.panel[self.plan.lead]
        else:
            self.panel, self.plan = None, None
            self.prices, self.returns = self.data.one_series("the report")

    @property
    def label(self) -> str:
        """The data as the user named it (dataset, file, ``yahoo:`` ticker); escaped on the page."""
        return self.data.source

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, the stored result afterwards."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @property
    def is_p1_data(self) -> bool:
        """The bundled S&P 500 adjusted close: the data of the recorded P1/P3 benchmarks."""
        return self.label == P1.dataset and str(self.returns.name) == P1.column

    def test_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last backtest day: as configured, else P1's when the data covers them
        with 500 returns before, else the last quarter of the series
        (:func:`finar.reporting.pipeline.test_period`)."""
        return backtest_period(self.returns.index, self.config.backtest_start, self.config.backtest_end)

    def facts_window(self) -> pd.Series:
        """The real returns the stylized facts compare against (P3's window when covered)."""
        r, c = self.returns, self.config
        if c.facts_start is not None:
            return r.loc[c.facts_start:]
        p3 = r.loc[P3.start:]
        return p3 if len(p3) >= MIN_FACTS_WINDOW and r.index[0] < pd.Timestamp(P3.start) else r

    def backtests(self) -> dict[str, BacktestResult]:
        """:func:`finar.backtest` of every model over :meth:`test_period` (computed once)."""

        def run() -> dict[str, BacktestResult]:
            start, end = self.test_period()
            c = self.config
            return {spec.name: run_backtest(self.returns, spec, start, end, refit_every=c.refit_every,
                                            n_paths=c.backtest_paths, seed=c.seed, progress=self.progress,
                                            exog=self.data.exog)
                    for spec in c.models}

        return self.once("backtests", run)
