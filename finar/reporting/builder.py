"""``finar.report``: run finar's pipeline on one price series and assemble the HTML report.

The report is a list of sections, each built by one function of
:mod:`finar.reporting.sections` from a shared :class:`Context` (the data, the settings and the
results several sections share, such as the backtests, computed once). A section that cannot
run on the data (too short a series, a capability this finar does not have) says why on the
page instead of stopping the report; any other error stops it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from finar._io import atomic_write_text
from finar.errors import DataError, FinarError
from finar.reporting.config import P1, P3, ReportConfig
from finar.reporting.page import Section, page_html

__all__ = ["Context", "Report", "SectionUnavailable", "default_test_period", "report"]


class SectionUnavailable(FinarError):
    """A report section that cannot be built from the data or the finar version at hand."""


def _day(x: Any) -> str:
    return str(x.date()) if isinstance(x, pd.Timestamp) and x == x.normalize() else str(x)


def span(index: pd.Index) -> str:
    """``'2015-01-02 to 2018-12-31 (1,006 observations)'``."""
    return f"{_day(index[0])} to {_day(index[-1])} ({len(index):,} observations)"


def default_test_period(index: pd.Index) -> tuple[pd.Timestamp, pd.Timestamp]:
    """From P1's first test day (2015-01-01) when the data has 500 returns before it, else the
    last quarter of the series; to the last day (2018-12-31 on sp500, as in P1).

    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"])
    >>> [str(d.date()) for d in default_test_period(r.index)]
    ['2015-01-01', '2018-12-31']
    """
    p1_start = pd.Timestamp(P1["start"])
    if len(index) and index.searchsorted(p1_start) >= 500 and index[-1] > p1_start:
        return p1_start, index[-1]
    if len(index) < 2:
        raise SectionUnavailable(f"{len(index)} returns are too few to test a forecast on")
    return index[min(len(index) - 1, int(len(index) * 0.75))], index[-1]


@dataclass
class Context:
    """What the sections share: the data, the settings and results computed once.

    Attributes
    ----------
    label : str
        The data as the user named it (dataset, file, ``yahoo:`` ticker); escaped on the page.
    prices, returns : Series
        The modelled price column and its percent log returns (:func:`finar.returns`).
    """

    label: str
    prices: pd.Series
    returns: pd.Series
    config: ReportConfig
    trades: pd.DataFrame | None = None
    trades_label: str = ""
    progress: bool = False
    results_dir: Path | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, the stored result afterwards."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @property
    def is_p1_data(self) -> bool:
        """The bundled S&P 500 adjusted close: the data of the recorded P1/P3 benchmarks."""
        return self.label == "sp500" and str(self.returns.name) == "adj_close"

    def test_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last backtest day: as configured, else P1's when the data covers them
        with 500 returns before, else the last quarter of the series."""
        c, idx = self.config, self.returns.index
        start, end = default_test_period(idx)
        if c.backtest_start is not None:
            start, end = pd.Timestamp(c.backtest_start), idx[-1]
        if c.backtest_end is not None:
            end = pd.Timestamp(c.backtest_end)
        if start > idx[-1] or end < start:
            raise SectionUnavailable(f"no backtest days between {_day(start)} and {_day(end)}; the data "
                                     f"spans {span(idx)}")
        return start, end

    def facts_window(self) -> pd.Series:
        """The real returns the stylized facts compare against (P3's window when covered)."""
        r, c = self.returns, self.config
        if c.facts_start is not None:
            return r.loc[c.facts_start:]
        p3 = r.loc[P3["start"]:]
        return p3 if len(p3) >= 1000 and r.index[0] < pd.Timestamp(P3["start"]) else r

    def backtests(self) -> dict[str, Any]:
        """``finar.backtest`` of every model over :meth:`test_period` (computed once)."""
        from finar.evaluation import backtest

        def run() -> dict[str, Any]:
            start, end = self.test_period()
            c = self.config
            return {spec.name: backtest(spec.create(), self.returns, start, end,
                                        refit_every=c.refit_every if spec.refit else None,
                                        n_paths=c.backtest_paths, seed=c.seed, progress=self.progress,
                                        name=spec.name)
                    for spec in c.models}

        return self.once("backtests", run)


@dataclass
class Report:
    """A built report: its sections and settings. Write it with :meth:`write_html`.

    Examples
    --------
    >>> import finar
    >>> rep = finar.report("sp500", fast=True)              # doctest: +SKIP
    >>> rep.write_html("reports/sp500.html")                # doctest: +SKIP
    """

    title: str
    subtitle: list[str]
    sections: list[Section]
    config: ReportConfig
    seconds: float

    def __repr__(self) -> str:
        return (f"Report({self.title!r}, sections={[s.key for s in self.sections]}, "
                f"seconds={self.seconds:.1f})")

    @property
    def unavailable(self) -> dict[str, str]:
        """Section key -> why it could not be built."""
        return {s.key: s.reason for s in self.sections if not s.available}

    def to_html(self) -> str:
        """The self-contained page (plotly.js embedded)."""
        from finar import __version__

        footer = (f"Generated by finar {__version__}. Every figure comes from finar's own functions "
                  "(finar.backtest, finar.compare, finar.stylized_facts, ...); settings and seeds are "
                  "stated in each section, so the same command gives the same page.")
        return page_html(self.title, self.subtitle, self.sections, footer)

    def write_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the page atomically (parent folders created) and return its path."""
        atomic_write_text(path, self.to_html())
        return Path(path)


def _pick_column(prices: pd.DataFrame, column: str | None, label: str) -> pd.Series:
    if column is not None:
        if column not in prices.columns:
            raise DataError(f"{label} has no column {column!r}; its columns are "
                            f"{list(map(str, prices.columns))}")
        return prices[column]
    for col in ("adj_close", "close"):
        if col in prices.columns:
            return prices[col]
    if {"price", "size"} <= set(prices.columns):
        raise DataError(f"{label} holds trades (price, size, ...); pass daily price bars as data and the "
                        "trades as trades=")
    return prices.iloc[:, 0]


def report(data: str | os.PathLike[str] | pd.DataFrame | pd.Series = "sp500", *,
           config: ReportConfig | str | os.PathLike[str] | None = None, fast: bool = False,
           trades: str | os.PathLike[str] | pd.DataFrame | None = None, title: str | None = None,
           results_dir: str | os.PathLike[str] | None = None, progress: bool = False,
           on_section: Callable[[int, int, Section], None] | None = None,
           load_options: dict[str, Any] | None = None) -> Report:
    """Run the report's pipeline on one price series and return the built :class:`Report`.

    Parameters
    ----------
    data : str, path, DataFrame or Series
        Anything :func:`finar.load` takes (bundled name, ``.csv``/``.parquet`` file,
        ``yahoo:TICKER``), or prices already loaded. The modelled column is ``config.column``,
        else ``adj_close``, else ``close``, else the first column.
    config : ReportConfig, or path of a ``report.toml``, optional
        Models, periods, sizes and seeds (:class:`finar.reporting.ReportConfig`).
    fast : bool
        Start from :meth:`ReportConfig.fast` (two classical models, small sizes).
    trades : str, path or DataFrame, optional
        Trades (``price size side``) for the tick-realism section; without them it is left out.
    title : str, optional
        Page title; default names the data.
    results_dir : path, optional
        Where the recorded benchmark results are (default: ``benchmarks/results`` of the source tree).
    progress : bool
        Progress bars of the backtests on stderr.
    on_section : callable, optional
        Called as ``on_section(i, n, section)`` after each section is built (the CLI prints progress).
    load_options : dict, optional
        Passed on to :func:`finar.load` (e.g. ``cache_dir`` of ``yahoo:`` data).

    Returns
    -------
    Report

    Examples
    --------
    >>> import finar
    >>> finar.report("sp500", fast=True).write_html("reports/sp500.html")  # doctest: +SKIP
    """
    import finar
    from finar.reporting import sections as sec

    t0 = time.perf_counter()
    if config is None:
        cfg = ReportConfig.fast() if fast else ReportConfig()
    elif isinstance(config, ReportConfig):
        cfg = config
    else:
        cfg = ReportConfig.from_toml(config, fast=fast)
    if isinstance(data, pd.DataFrame | pd.Series):
        label = str(getattr(data, "name", None) or "prices")
        frame = data.to_frame() if isinstance(data, pd.Series) else data
        frame = frame.loc[cfg.start:cfg.end]
    else:
        label = os.fspath(data)
        frame = finar.load(data, start=cfg.start, end=cfg.end, **(load_options or {}))
    prices = _pick_column(frame, cfg.column, label)
    r = finar.returns(prices)
    tr, tr_label = None, ""
    if trades is not None:
        tr_label = "trades" if isinstance(trades, pd.DataFrame) else os.fspath(trades)
        tr = trades if isinstance(trades, pd.DataFrame) else finar.load(trades)
    ctx = Context(label, prices, r, cfg, tr, tr_label, progress,
                  Path(results_dir) if results_dir is not None else None)

    plan = [s for s in sec.SECTIONS if s[0] != "ticks" or tr is not None]
    built = []
    for i, (key, heading, build) in enumerate(plan, start=1):
        section = Section(key, heading)
        t1 = time.perf_counter()
        try:
            build(ctx, section)
        except FinarError as exc:
            section.unavailable(str(exc))
        section.seconds = time.perf_counter() - t1
        built.append(section)
        if on_section is not None:
            on_section(i, len(plan), section)
    page_title = title or f"finar report: {label} ({r.name})"
    subtitle = [f"Data: {label}, column {r.name}: {len(r):,} daily percent log returns, {span(r.index)}.",
                f"Models: {', '.join(m.name for m in cfg.models)}. Seed {cfg.seed}."]
    return Report(page_title, subtitle, built, cfg, time.perf_counter() - t0)
