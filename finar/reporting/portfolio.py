"""The report's portfolio step: joint scenarios of a panel, a portfolio of it, and a stress.

When the data has several price columns (``sp500-stocks``: the S&P 500 index and 20 stocks),
the report adds a portfolio section (:func:`finar.reporting.sections.portfolio`). Its steps are
here, beside those of :mod:`finar.reporting.pipeline`:

- :func:`portfolio_plan` reads the panel's columns and the settings: which column is the market
  index, which columns the portfolio holds and with what weights;
- :func:`run_portfolio` fits a joint model on the training part, and draws scenarios of every
  column from the last date, unconditional and given a fall of the index on the first day
  (``sample(..., given={index: fall})``), and the portfolio's paths from both
  (:meth:`finar.Scenarios.portfolio`).

The report runs two models (:data:`PORTFOLIO_MODELS`): the classical joint model, DCC(1,1) with
a Student-t copula over GARCH(1,1)-t marginals, and the same marginals drawn independently
(``Copula(family='independent')``), a reference whose scenarios the page labels *independent
across assets* (:func:`dependence_label`): its columns share no shocks, so its portfolio is too
diversified and a fall of the index moves no other column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finar.models import Forecaster
from finar.models.scenarios import Scenarios, portfolio_returns
from finar.reporting.pipeline import ConfigError, ModelSpec

__all__ = ["INDEX_NAMES", "PORTFOLIO_MODELS", "PortfolioPlan", "PortfolioRun", "dependence_label",
           "portfolio_plan", "realised_portfolio", "run_portfolio"]

#: column names taken for a market index when ``portfolio_index`` is not set (case is ignored)
INDEX_NAMES = ("SP500", "^GSPC", "SPX")
#: the models of the portfolio section: the classical joint model and the independent reference
PORTFOLIO_MODELS = (ModelSpec("DCC-t", "dcc", {"family": "t"}),
                    ModelSpec("Independent GARCH-t", "copula", {"family": "independent"}))

_DEPENDENCE = {"joint": "joint across assets", "independent": "independent across assets"}


def dependence_label(sc: Scenarios) -> str:
    """``'joint across assets'`` for scenarios whose columns were drawn jointly, ``'independent
    across assets'`` for columns drawn one by one (per-column models on a DataFrame, the
    independence copula), ``'one series'`` for one column."""
    return _DEPENDENCE.get(sc.dependence, "one series")


@dataclass(frozen=True)
class PortfolioPlan:
    """The columns of a panel report and what the portfolio section does with them.

    Attributes
    ----------
    columns : list of str
        The panel's columns, in order.
    index : str or None
        The market index column, if the panel has one.
    lead : str
        The column the single-series sections model and the stress conditions on: the index,
        else the first column.
    weights : Series
        The portfolio's weight of every column (0 for columns it does not hold).
    rule : str
        One sentence saying how the weights were chosen, for the page.
    """

    columns: list[str]
    index: str | None
    lead: str
    weights: pd.Series
    rule: str

    @property
    def held(self) -> list[str]:
        """The columns with a weight other than 0."""
        return [c for c in self.columns if self.weights[c] != 0]


def portfolio_plan(columns: Sequence[Any], *, index: str | None = None,
                   weights: Mapping[str, float] | None = None) -> PortfolioPlan:
    """The index column and the portfolio weights of a panel with ``columns``.

    Parameters
    ----------
    columns : sequence
        The panel's column names (at least two; compared as strings).
    index : str, optional
        The market index column. Default: the first column named like an index
        (:data:`INDEX_NAMES`, case ignored), else none.
    weights : mapping, optional
        Weight by column name; columns not named weigh 0. Default: equal weights on every
        column but the index (on every column when there is no index).

    Returns
    -------
    PortfolioPlan

    Raises
    ------
    ConfigError
        ``index`` or a name in ``weights`` is not a column (the message lists the columns), a
        weight is not finite, or the weights are all zero.

    Examples
    --------
    >>> plan = portfolio_plan(["AAPL", "XOM", "SP500"])
    >>> plan.index, plan.weights.to_dict()
    ('SP500', {'AAPL': 0.5, 'XOM': 0.5, 'SP500': 0.0})
    >>> portfolio_plan(["a", "b"]).rule
    'equal weights on every column (no index column)'
    """
    cols = [str(c) for c in columns]
    if len(cols) < 2:
        raise ConfigError(f"a portfolio needs at least two columns, got {cols}")
    if index is not None:
        if str(index) not in cols:
            raise ConfigError(f"the portfolio's index column {index!r} is not in the data; its columns "
                              f"are {cols}")
        idx: str | None = str(index)
    else:
        known = {n.casefold() for n in INDEX_NAMES}
        idx = next((c for c in cols if c.casefold() in known), None)
    if weights is not None:
        unknown = [k for k in weights if str(k) not in cols]
        if unknown:
            raise ConfigError(f"portfolio weights name columns {unknown} that are not in the data; its "
                              f"columns are {cols}")
        w = pd.Series([float(weights.get(c, 0.0)) for c in cols], index=cols, name="weight")
        if not np.isfinite(w.to_numpy()).all() or not (w != 0).any():
            raise ConfigError(f"portfolio weights must be finite and not all zero, got {dict(weights)}")
        rule = "weights as configured (portfolio_weights); columns not named weigh 0"
    else:
        held = [c for c in cols if c != idx]
        w = pd.Series([1.0 / len(held) if c in held else 0.0 for c in cols], index=cols, name="weight")
        rule = (f"equal weights on the {len(held)} columns other than the index {idx}" if idx is not None
                else "equal weights on every column (no index column)")
    return PortfolioPlan(cols, idx, idx if idx is not None else cols[0], w, rule)


def realised_portfolio(r: pd.DataFrame, weights: pd.Series, *, name: str = "portfolio") -> pd.Series:
    """The real portfolio's returns: ``weights`` rebalanced every day, as in the scenarios
    (:func:`finar.models.scenarios.portfolio_returns`, percent log returns)."""
    w = weights.reindex([str(c) for c in r.columns]).fillna(0.0).to_numpy(dtype=float)
    return pd.Series(portfolio_returns(r.to_numpy(dtype=float), w), index=r.index, name=name)


@dataclass(frozen=True)
class PortfolioRun:
    """A joint model fitted to a panel, its scenarios and its portfolio's, without and with the stress.

    Attributes
    ----------
    name : str
        The model's display name.
    model : Forecaster
        The fitted model.
    train : DataFrame
        The returns it was fitted on.
    scenarios, stressed : Scenarios
        Every column's paths from the last date: unconditional, and given ``given`` on the first
        days.
    portfolio, portfolio_stressed : Scenarios
        The portfolio's paths from each (:meth:`finar.Scenarios.portfolio`).
    given : dict
        The stress: column -> its return on the first day(s).
    """

    name: str
    model: Forecaster
    train: pd.DataFrame
    scenarios: Scenarios
    stressed: Scenarios
    portfolio: Scenarios
    portfolio_stressed: Scenarios
    given: dict[str, float]

    @property
    def dependence(self) -> str:
        """:func:`dependence_label` of the scenarios: how the page labels this model."""
        return dependence_label(self.scenarios)


def run_portfolio(r: pd.DataFrame, spec: ModelSpec, plan: PortfolioPlan, *, train_end: Any, fall: float,
                  horizon: int, n_paths: int, seed: int) -> PortfolioRun:
    """Fit ``spec``'s joint model on the returns before ``train_end`` and draw scenarios from the
    last date of ``r`` (the fitted parameters, conditioning on all of ``r``).

    The stressed scenarios are ``sample(..., given={plan.lead: fall})``: the lead column (the
    index) returns ``fall`` on the first day of every path and the other columns are drawn from
    the model's conditional law given it. Both draws use ``seed``.

    Raises
    ------
    FinarError
        From the model: too few training days, a model that cannot condition on a column.
    """
    frame = r.rename(columns=str)
    train = frame.loc[frame.index < pd.Timestamp(train_end)] if train_end is not None else frame
    model = spec.create().fit(train)
    given = {plan.lead: float(fall)}
    sc = model.sample(frame, horizon=horizon, n_paths=n_paths, seed=seed)
    st = model.sample(frame, horizon=horizon, n_paths=n_paths, seed=seed, given=given)
    w = plan.weights
    return PortfolioRun(spec.name, model, train, sc, st, sc.portfolio(w), st.portfolio(w), given)
