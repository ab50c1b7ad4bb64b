"""The steps the report and the ``finar`` command share: data, columns, periods, models, runs.

Both faces of finar's pipeline call these functions: the report's sections
(:mod:`finar.reporting.sections`) and the commands of :mod:`finar.cli`. Loading prices and
choosing the modelled columns (:func:`load_data`, :func:`pick_columns`), the test period
(:func:`backtest_period`), creating a model from its name and parameters (:class:`ModelSpec`)
and the runs themselves (:func:`run_backtest`, :func:`run_detector`, :func:`run_tick_model`)
exist once, here; the tables built from their results are in :mod:`finar.reporting.tables`.

Nothing here draws or prints: the report renders the results as HTML, the command line as
rich tables.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from finar import ticks
from finar._estimator import check_date
from finar.anomaly import AnomalyDetector
from finar.data import load, parkinson, returns
from finar.data.validate import normalize_columns
from finar.errors import DataError, FinarError, MissingColumnsError
from finar.evaluation.backtesting import BacktestResult, backtest
from finar.models import Forecaster, create, registry
from finar.protocols import P1

__all__ = ["MIN_HISTORY", "PRICE_COLUMNS", "AnomalyRun", "ConfigError", "Data", "ModelSpec",
           "SectionUnavailable", "TickRun", "anomaly_split", "backtest_period", "build", "day",
           "default_test_period", "load_data", "pick_columns", "run_backtest", "run_detector",
           "run_tick_model", "span"]

#: price columns modelled by default, in order of preference
PRICE_COLUMNS = ("adj_close", "close")
#: returns needed before P1's first test day for the default test period to be P1's
MIN_HISTORY = 500
#: the registered name of finar.ticks.TickModel
TICK_MODEL = "tickmodel"


class ConfigError(FinarError, ValueError):
    """A setting (a report configuration, a model and its parameters) that finar cannot use."""


class SectionUnavailable(FinarError):
    """A step (a report section, a command) that cannot run on the data or the finar at hand."""


# ---- dates -------------------------------------------------------------------------------------
def day(x: Any) -> str:
    """A timestamp as ``'2015-01-02'`` when it is a whole day, else as pandas writes it.

    >>> day(pd.Timestamp("2015-01-02")), day(pd.Timestamp("2015-01-02 09:30"))
    ('2015-01-02', '2015-01-02 09:30:00')
    """
    return str(x.date()) if isinstance(x, pd.Timestamp) and x == x.normalize() else str(x)


def span(index: pd.Index, *, count: bool = True) -> str:
    """``'2015-01-02 to 2018-12-31 (1,006 observations)'`` (without the count if ``count=False``).

    >>> span(pd.bdate_range("2015-01-01", periods=3))
    '2015-01-01 to 2015-01-05 (3 observations)'
    """
    text = f"{day(index[0])} to {day(index[-1])}"
    return f"{text} ({len(index):,} observations)" if count else text


# ---- data and columns --------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """Prices of the modelled columns and their percent log returns.

    Attributes
    ----------
    source : str
        The data as the user named it (dataset, file, ``yahoo:`` ticker), or ``"prices"``.
    prices : DataFrame
        The chosen price columns.
    returns : Series or DataFrame
        :func:`finar.returns` of ``prices``: a Series for one column, else a DataFrame.
    exog : DataFrame or None
        Covariates on the rows of ``returns`` (row ``t`` known at the close of day ``t``): the
        day's Parkinson range variance (column ``parkinson``, percent squared) when the data
        has high and low prices and ``covariates`` asked for it, else None.
    exog_note : str
        One sentence saying which covariates were used, or why none.
    """

    source: str
    prices: pd.DataFrame
    returns: pd.Series | pd.DataFrame
    exog: pd.DataFrame | None = None
    exog_note: str = "no covariates"

    @property
    def label(self) -> str:
        """``'sp500[adj_close]'``; a wide panel as ``'sp500-stocks[21 columns]'``."""
        cols = list(map(str, self.prices.columns))
        return f"{self.source}[{', '.join(cols) if len(cols) <= 4 else f'{len(cols)} columns'}]"

    def one_series(self, what: str) -> tuple[pd.Series, pd.Series]:
        """The price and return Series of the one modelled column.

        Raises
        ------
        DataError
            When several columns are modelled, naming them; ``what`` names the step.
        """
        if isinstance(self.returns, pd.DataFrame):
            raise DataError(f"{what} takes one price series; {self.source} gives {self.returns.shape[1]} "
                            f"columns ({', '.join(map(str, self.returns.columns[:5]))}"
                            f"{', ...' if self.returns.shape[1] > 5 else ''}): pick one with --column "
                            "(for finar.report: ReportConfig(column=...))")
        return self.prices.iloc[:, 0], self.returns


def pick_columns(prices: pd.DataFrame, columns: str | list[str] | tuple[str, ...] | None = None, *,
                 source: str = "data", prefer: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """The price columns to model.

    Parameters
    ----------
    prices : DataFrame
        Loaded prices (:func:`finar.load`).
    columns : str or sequence of str, optional
        Names asked for. A name matches as written, else spelled like a file header
        (``"Adj Close"`` finds ``adj_close``), else ignoring case (``msft`` finds ``MSFT``).
    source : str
        The data's name, for error messages.
    prefer : sequence of str, optional
        Columns to take when ``columns`` is not given and the data has them all (a saved
        model's columns).

    Returns
    -------
    DataFrame
        ``columns``; else ``prefer``; else ``adj_close``, else ``close``; else, for a panel of
        prices such as ``sp500-stocks``, every column.

    Raises
    ------
    MissingColumnsError
        A name asked for is not in the data (the message lists its columns).
    DataError
        The data holds trades (``price``, ``size``), not price bars.
    """
    if columns:
        asked = [columns] if isinstance(columns, str) else list(columns)
        canonical = normalize_columns(pd.DataFrame(columns=asked)).columns
        by_case = {str(c).casefold(): c for c in prices.columns}
        wanted = []
        for raw, canon in zip(asked, canonical, strict=True):
            found = next((c for c in (raw, canon) if c in prices.columns), None)
            if found is None:
                found = by_case.get(str(raw).casefold(), by_case.get(str(canon).casefold()))
            wanted.append(found if found is not None else raw)
        missing = [c for c in wanted if c not in prices.columns]
        if missing:
            raise MissingColumnsError(f"{source} has no column(s) {missing}; its columns are "
                                      f"{list(map(str, prices.columns))}")
        return prices[list(dict.fromkeys(wanted))]
    if prefer and all(c in prices.columns for c in prefer):
        return prices[list(prefer)]
    for col in PRICE_COLUMNS:
        if col in prices.columns:
            return prices[[col]]
    if {"price", "size"} <= set(prices.columns):
        raise DataError(f"{source} holds trades (price, size, ...), not price bars; pass daily bars or a "
                        "panel of prices (trades go to the tick commands and the report's trades=)")
    return prices


COVARIATES = ("auto", "range", "none")


def range_covariate(frame: pd.DataFrame, index: pd.Index, covariates: str = "auto"
                    ) -> tuple[pd.DataFrame | None, str]:
    """The day's Parkinson range variance as a covariate on ``index``, and a note saying so.

    ``covariates='auto'`` uses it when ``frame`` has ``high`` and ``low`` prices (and says why
    not otherwise); ``'range'`` requires it (bad or missing bars raise the range measure's
    error, naming the rows); ``'none'`` uses none.
    """
    if covariates not in COVARIATES:
        raise ConfigError(f"covariates must be one of {list(COVARIATES)}, got {covariates!r}")
    if covariates == "none":
        return None, "no covariates (covariates='none')"
    if not {"high", "low"} <= set(frame.columns):
        if covariates == "range":
            raise ConfigError("covariates='range' needs bars with high and low prices; the data has "
                              f"{list(map(str, frame.columns))}")
        return None, "no covariates: the data has no high/low prices, so models see returns only"
    try:
        x = parkinson(frame).reindex(index)
    except DataError as exc:
        if covariates == "range":
            raise
        return None, f"no covariates: the high/low prices are unusable ({exc})"
    if x.isna().any():
        bad = x.index[x.isna()]
        if covariates == "range":
            raise DataError(f"the range covariate is missing on {len(bad)} return day(s), first {bad[0]}")
        return None, "no covariates: high/low prices do not cover every return day"
    return x.to_frame("parkinson"), ("covariate: the day's Parkinson range variance (ln H/L)^2 / (4 ln 2) "
                                     "in percent squared, known at the close and conditioning the next day")


def load_data(data: str | os.PathLike[str] | pd.DataFrame | pd.Series,
              columns: str | list[str] | tuple[str, ...] | None = None, *, start: Any = None, end: Any = None,
              prefer: list[str] | tuple[str, ...] | None = None,
              load_options: dict[str, Any] | None = None, covariates: str = "auto") -> Data:
    """Load prices, pick the modelled columns and compute their percent log returns.

    Parameters
    ----------
    data : str, path, DataFrame or Series
        Anything :func:`finar.load` takes (bundled name, ``.csv``/``.parquet`` file,
        ``yahoo:TICKER``), or prices already loaded.
    columns, prefer
        See :func:`pick_columns`.
    start, end : date-like, optional
        First and last date of data to use (inclusive).
    load_options : dict, optional
        Passed on to :func:`finar.load` (e.g. ``cache_dir`` of ``yahoo:`` data).
    covariates : {'auto', 'range', 'none'}
        The range covariate of one modelled series (:func:`range_covariate`); a panel of
        several columns gets none.

    Returns
    -------
    Data

    Examples
    --------
    >>> d = load_data("sp500", end="2017-12-31")
    >>> d.label, d.returns.name
    ('sp500[adj_close]', 'adj_close')
    """
    if isinstance(data, pd.DataFrame | pd.Series):
        source = str(getattr(data, "name", None) or "prices")
        frame = data.to_frame() if isinstance(data, pd.Series) else data
        frame = frame.loc[start:end]
    else:
        source = os.fspath(data)
        frame = load(data, start=start, end=end, **(load_options or {}))
    if len(frame) == 0 and (start is not None or end is not None):
        raise DataError(f"{source} has no data between start={start!r} and end={end!r}")
    prices = pick_columns(frame, columns, source=source, prefer=prefer)
    r = returns(prices.iloc[:, 0] if prices.shape[1] == 1 else prices)
    if isinstance(r, pd.Series):
        exog, note = range_covariate(frame, r.index, covariates)
    else:
        exog, note = None, "no covariates: the range covariate is for one series"
    return Data(source, prices, r, exog, note)


# ---- periods -----------------------------------------------------------------------------------
def default_test_period(index: pd.Index) -> tuple[pd.Timestamp, pd.Timestamp]:
    """P1's first test day when the data has :data:`MIN_HISTORY` returns before it, else the
    start of the last quarter of the series; to the last day (2018-12-31 on sp500, as in P1).

    Examples
    --------
    >>> r = load_data("sp500").returns
    >>> [day(d) for d in default_test_period(r.index)]
    ['2015-01-01', '2018-12-31']
    """
    p1_start = pd.Timestamp(P1.test_start)
    if len(index) and index.searchsorted(p1_start) >= MIN_HISTORY and index[-1] > p1_start:
        return p1_start, index[-1]
    if len(index) < 2:
        raise SectionUnavailable(f"{len(index)} returns are too few to test a forecast on")
    return index[min(len(index) - 1, int(len(index) * 0.75))], index[-1]


def as_date(value: Any, what: str) -> pd.Timestamp:
    """``value`` as a Timestamp, or a DataError naming ``what`` (``"test start"``) and the value."""
    return check_date(value, what)


def backtest_period(index: pd.Index, start: Any = None, end: Any = None
                    ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last test day: ``start`` (else :func:`default_test_period`) to ``end`` (else the
    last day).

    Raises
    ------
    SectionUnavailable
        No day of ``index`` lies in the period.
    """
    if start is None:
        first, last = default_test_period(index)
    else:
        if not len(index):
            raise SectionUnavailable("there are no returns to test a forecast on")
        first, last = as_date(start, "test start"), index[-1]
    if end is not None:
        last = as_date(end, "test end")
    if first > index[-1] or last < first:
        raise SectionUnavailable(f"no test days between {day(first)} and {day(last)}; the data "
                                 f"spans {span(index)}")
    return first, last


def anomaly_split(r: pd.Series, *, test_start: Any = None, test_end: Any = None,
                  train_end: Any = None) -> tuple[pd.Series, pd.Series]:
    """Training and scored returns of an anomaly detector.

    With ``train_end`` the detector is fitted on the returns up to it and scores the days
    after it; otherwise it is fitted on the days before :func:`backtest_period` and scores that
    period. ``test_end`` cuts the scored days.

    Raises
    ------
    DataError
        No day is left to score.
    """
    if train_end is not None:
        train = r.loc[:as_date(train_end, "train end")]
        test = r.iloc[len(train):]
        test = test.loc[:as_date(test_end, "test end")] if test_end is not None else test
    else:
        start, end = backtest_period(r.index, test_start, test_end)
        train, test = r.loc[r.index < start], r.loc[start:end]
    if len(test) == 0:
        where = f" ({span(train.index, count=False)})" if len(train) else ""
        raise DataError(f"no days to score after the training data{where}; pass an earlier --train-end")
    return train, test


# ---- models ------------------------------------------------------------------------------------
def build(name: str, params: Mapping[str, Any] | None = None) -> Any:
    """A new registered estimator (forecaster, tick model, ...) with its parameters checked.

    Parameters
    ----------
    name : str
        A registered name (:func:`finar.models.registry`), e.g. ``"garch"``, ``"tickmodel"``.
    params : mapping, optional
        Constructor arguments; a nested setting as ``outer__inner`` (``train__max_epochs=5``,
        scikit-learn's convention, through ``set_params``).

    Raises
    ------
    ConfigError
        A parameter the model does not have; the message lists its parameters and defaults.
    FinarError
        An unknown name (from :func:`finar.models.create`, naming the registered ones).

    Examples
    --------
    >>> build("garch", {"dist": "t", "p": 2}).get_params()["p"]
    2
    """
    params = dict(params or {})
    cls = type(create(name))  # an unknown name raises here, naming the registered ones
    sig = inspect.signature(cls)
    known = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if len(known) == len(sig.parameters):
        unknown = sorted({key.partition("__")[0] for key in params} - {p.name for p in known})
        if unknown:
            hint = ", ".join(f"{p.name}={p.default!r}" for p in known)
            raise ConfigError(f"model {name!r} has no parameter(s) {unknown}; its parameters "
                              f"(with defaults) are: {hint}")
    nested = {k: v for k, v in params.items() if "__" in k}
    est = create(name, **{k: v for k, v in params.items() if "__" not in k})
    return est.set_params(**nested) if nested else est


@dataclass(frozen=True)
class ModelSpec:
    """One model to run: a display name and a registered model with its parameters.

    ``refit=False`` fits once on the data before the test period (P1's rule for the neural
    models); otherwise a backtest refits the model every ``refit_every`` test days. ``exog=True``
    gives the model the data's covariates (:attr:`Data.exog`, the range) in every fit and score.
    ``seeds`` (e.g. ``(0, 1, 2)``) makes the model an equal-weight :class:`finar.models.Ensemble`
    of the same network trained from each seed (``train__seed``): the mixture of their predictive
    densities, whose log score is never below the seeds' average (Jensen).

    Examples
    --------
    >>> m = ModelSpec("GARCH(1,1) Student-t", "garch", {"dist": "t"}).create()
    >>> type(m).__name__, m.get_params()["dist"]
    ('GARCH', 't')
    >>> ens = ModelSpec("WaveNet, 2 seeds", "wavenet", {"min_df": 8.0}, seeds=(0, 1)).create()
    >>> [m.get_params()["train"].seed for m in ens.members]
    [0, 1]
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    refit: bool = True
    exog: bool = False
    seeds: tuple[int, ...] = ()

    def covariates(self, exog: pd.DataFrame | None) -> pd.DataFrame | None:
        """The covariates this model gets: ``exog`` when it asks for them, else None.

        Raises
        ------
        ConfigError
            The model asks for covariates and the data has none.
        """
        if not self.exog:
            return None
        if exog is None:
            raise ConfigError(f"model {self.name!r} uses covariates (exog=true), but the data has none "
                              "(no high/low prices, or covariates='none')")
        return exog

    def create(self) -> Forecaster:
        """A new, unfitted forecaster (:func:`build`).

        Raises
        ------
        ConfigError
            A parameter the model does not have (the message lists its parameters and their
            defaults), or a registered name that is not a forecaster (a tick model, a detector).
        FinarError
            An unknown model name (from :func:`finar.models.create`).
        """
        model = build(self.model, self.params)
        if not isinstance(model, Forecaster):
            raise ConfigError(f"{self.model!r} is a {type(model).__name__}, not a forecaster of returns; "
                              f"forecasters: {sorted(registry(Forecaster))}")
        if not self.seeds:
            return model
        if "train__seed" not in model.get_params(deep=True):
            raise ConfigError(f"model {self.name!r}: seeds need a network trained from a seed "
                              f"(a train__seed parameter); {self.model!r} has none")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"model {self.name!r}: seeds must differ, got {list(self.seeds)}")
        from finar.models.ensemble import Ensemble, JointEnsemble

        mix = JointEnsemble if "joint" in model.tags else Ensemble  # a joint model's days mix whole
        return mix([build(self.model, {**self.params, "train__seed": int(s)}) for s in self.seeds])


# ---- runs --------------------------------------------------------------------------------------
def run_backtest(r: pd.Series, spec: ModelSpec, start: Any, end: Any, *, refit_every: int, n_paths: int,
                 seed: int, progress: bool = False, exog: pd.DataFrame | None = None) -> BacktestResult:
    """:func:`finar.backtest` of ``spec``'s model, named ``spec.name``; a model with
    ``refit=False`` is fitted once on the days before ``start``; ``exog`` (the data's
    covariates) reaches the model when ``spec.exog``."""
    return backtest(spec.create(), r, start, end, refit_every=refit_every if spec.refit else None,
                    n_paths=n_paths, seed=seed, progress=progress, name=spec.name,
                    exog=spec.covariates(exog))


@dataclass(frozen=True)
class AnomalyRun:
    """A fitted :class:`finar.AnomalyDetector` and the flags of the scored days."""

    name: str
    train: pd.Series
    detector: AnomalyDetector
    flags: pd.DataFrame


def run_detector(spec: ModelSpec, train: pd.Series, test: pd.Series, *, level: float,
                 exog: pd.DataFrame | None = None) -> AnomalyRun:
    """Fit ``AnomalyDetector(spec's model, level)`` on ``train`` and score ``test`` after it;
    ``exog`` (covering both periods) reaches the model when ``spec.exog``."""
    x = spec.covariates(exog)
    det = AnomalyDetector(spec.create(), level=level)
    if x is None:
        det.fit(train)
        return AnomalyRun(spec.name, train, det, det.score(test, context=train))
    det.fit(train, exog=x.loc[train.index])
    flags = det.score(test, exog=x.loc[test.index], context=train, context_exog=x.loc[train.index])
    return AnomalyRun(spec.name, train, det, flags)


@dataclass(frozen=True)
class TickRun:
    """A :class:`finar.ticks.TickModel` fitted to trades, its synthetic trades and their realism."""

    model: Any
    synthetic: pd.DataFrame
    realism: Any


def run_tick_model(trades: pd.DataFrame, params: Mapping[str, Any], *, n_events: int, seed: int) -> TickRun:
    """Fit a :class:`finar.ticks.TickModel` with ``params`` (see :func:`build`) to ``trades``, sample
    ``n_events`` trades with ``seed`` and measure their realism against ``trades``
    (:func:`finar.ticks.realism`, protocol P5 of docs/protocols.md)."""
    tm = build(TICK_MODEL, params).fit(trades)
    synth = tm.sample(n_events=n_events, seed=seed)
    return TickRun(tm, synth, ticks.realism(trades, synth))
