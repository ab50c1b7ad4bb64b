"""The event-model contract every tick model implements (TickModel, Hawkes, ACD, SeasonalPoisson).

An event model factorises the likelihood of a trades frame event by event,
``p(e_1..e_n) = prod_i p(e_i | e_<i)`` with ``e_i = (dt_i, side_i, dp_i, size_i)`` coded by
:class:`finar.ticks.events.EventSpace`, and exposes

- ``fit(trades) -> self`` (a trades frame: ``time`` index, ``price``, ``size``, ``side``);
- ``log_prob(trades)``: per-trade log-likelihood in nats, columns ``time side dp size total``,
  NaN for the first trade of each session (conditioned on); units in :mod:`finar.ticks.events`,
  shared by every model so their scores compare exactly;
- ``loglik_per_event(trades)``: the mean ``total`` over scored trades;
- ``sample(n_events, seed) -> trades``;
- ``save(path)``, and :func:`finar.models.load` reads any finar model file back.

Parameters, ``clone``, ``repr`` and files come from :class:`finar._estimator.Estimator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd

from finar._estimator import Estimator

__all__ = ["EventModel"]


class EventModel(Estimator, ABC):
    """Base class of finar's tick models; see the module docstring for the contract."""

    @abstractmethod
    def fit(self, trades: pd.DataFrame) -> EventModel:
        """Fit to a trades frame; returns ``self``."""

    @abstractmethod
    def log_prob(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Per-trade log-likelihood in nats (columns ``time side dp size total``)."""

    def loglik_per_event(self, trades: pd.DataFrame) -> float:
        """Mean of :meth:`log_prob`'s ``total`` over scored trades (nats per event)."""
        return float(self.log_prob(trades)["total"].mean())

    @abstractmethod
    def sample(self, n_events: int = 100_000, seed: int | None = None) -> pd.DataFrame:
        """``n_events`` synthetic trades."""
