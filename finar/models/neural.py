"""What every neural forecaster shares around its network: series ids, scaling, covariates, files.

A neural forecaster (WaveNet, Transformer, ...) standardises each series with a
:class:`~finar.data.scalers.StandardScaler` (whose log-Jacobian its ``log_prob`` adds), maps
column names to series ids for a global model, standardises optional covariates, and saves its
network weights, scalers, bins and training history as plain values and tensors, so that
``torch.load(weights_only=True)`` reads them back. Subclasses provide ``_make_head()`` and
``_build(n_series)`` (which create ``head_`` and ``network_`` from the stored settings).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from finar.data.scalers import StandardScaler, scaler_from_state_dict
from finar.data.transforms import check_length
from finar.errors import DataError
from finar.models.base import Forecaster, cdf_values, check_returns
from finar.models.scenarios import Scenarios, future_index
from finar.models.training import TrainResult

__all__ = ["NeuralForecaster"]


class NeuralForecaster(Forecaster):
    """Base of finar's neural forecasters; see the module docstring."""

    device: str

    def _exog(self, exog: pd.DataFrame | pd.Series | None, index: pd.Index, what: str) -> np.ndarray | None:
        """Standardised covariates aligned with ``index`` (rows must match it exactly), or None."""
        name = type(self).__name__
        if not self.exog_columns_:
            if exog is not None:
                raise DataError(f"{what}: this {name} was fitted without exog; drop the argument")
            return None
        if exog is None:
            raise DataError(f"{what}: this {name} was fitted with exog columns {self.exog_columns_}; "
                            "pass them for the same days")
        frame = check_returns(exog, what=f"{what} exog")  # numeric, finite, sorted
        missing = [c for c in self.exog_columns_ if c not in map(str, frame.columns)]
        if missing:
            raise DataError(f"{what}: exog lacks columns {missing}")
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)[self.exog_columns_]
        if not frame.index.equals(index):
            raise DataError(f"{what}: exog must have exactly the rows of the returns "
                            f"({len(index)} rows from {index[0]} to {index[-1]}); got {len(frame)} rows")
        return np.asarray(self.exog_scaler_.transform(frame.to_numpy(dtype=float)), dtype=float)

    def _series_id(self, col: object, n_cols: int) -> int:
        """The series id of a column; a one-series model applies to any single column."""
        key = str(col)
        if key in self.columns_:
            return self.columns_.index(key)
        if len(self.columns_) == 1 and n_cols == 1:
            return 0
        raise DataError(f"{type(self).__name__} was fitted on {self.columns_}, not {key!r}")

    def _z(self, values: np.ndarray, sid: int) -> np.ndarray:
        return (values - self.scaler_.loc_[sid]) / self.scaler_.scale_[sid]

    def _tensor(self, values: np.ndarray | None) -> Tensor | None:
        return None if values is None else torch.tensor(values, dtype=torch.float32, device=self.device)

    @property
    def memory(self) -> int:
        """The receptive field (context window): day ``t`` depends on ``min_context`` days before it."""
        return self.min_context

    # ---- fitting -------------------------------------------------------------------------------
    def _validate(self) -> None:
        """Check the stored settings (subclasses)."""

    def _prepare_fit(self, r: pd.Series | pd.DataFrame,
                     exog: pd.DataFrame | pd.Series | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate, set ``columns_``, the scalers and covariate names; standardised ``z`` ``(T, N)``
        and standardised covariates ``(T, K)`` (or None) for training."""
        self._validate()
        frame = check_returns(r)
        check_length(frame, self.min_fit_obs, what=f"fitting {type(self).__name__}")
        self.columns_ = [str(c) for c in frame.columns]
        self.exog_columns_: list[str] = []
        if exog is not None:
            ex = check_returns(exog, what="exog")
            self.exog_columns_ = [str(c) for c in ex.columns]
            self.exog_scaler_ = StandardScaler().fit(ex.to_numpy(dtype=float))
        cov = self._exog(exog, frame.index, "fit")
        self.scaler_ = StandardScaler().fit(frame.to_numpy(dtype=float))
        return np.asarray(self.scaler_.transform(frame.to_numpy(dtype=float))), cov

    # ---- one-step conditionals -------------------------------------------------------------------
    @abstractmethod
    def _conditionals(self, z: Tensor, sid: int, cov: Tensor | None) -> Tensor:
        """Head parameters ``(n - min_context, n_params)`` of ``z[t]`` given ``z[<t]`` for
        ``t >= min_context``, from standardised values ``z`` ``(n,)`` of series ``sid``."""

    def _per_day(self, r: pd.Series | pd.DataFrame, exog: pd.DataFrame | pd.Series | None, what: str,
                 fn: Callable[[Tensor, Tensor, int], Tensor], at: Any = None) -> pd.Series | pd.DataFrame:
        """``fn(raw, z_target, sid)`` for every day with enough context, NaN before; shaped like ``r``.
        The targets are ``r`` standardised, or ``at`` (shaped like ``r``) standardised."""
        self._check_fitted()
        frame = check_returns(r)
        targets = cdf_values(frame, at)
        cov = self._tensor(self._exog(exog, frame.index, what))
        out = pd.DataFrame(index=frame.index, columns=frame.columns, dtype=float)
        R = self.min_context
        for j, col in enumerate(frame.columns):
            sid = self._series_id(col, frame.shape[1])
            z = self._tensor(self._z(frame[col].to_numpy(dtype=float), sid))
            values = np.full(len(z), np.nan)
            if len(z) > R:
                with torch.no_grad():
                    target = z if at is None else self._tensor(self._z(targets[:, j], sid))
                    values[R:] = fn(self._conditionals(z, sid, cov), target[R:], sid).double().cpu().numpy()
            out[col] = values
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def log_prob(self, r: pd.Series | pd.DataFrame,
                 exog: pd.DataFrame | pd.Series | None = None) -> pd.Series | pd.DataFrame:
        """``log p(r_t | r_<t)`` in nats in the units of ``r`` (the scaler's Jacobian included);
        NaN for the first ``min_context`` rows. ``exog`` as in ``fit`` when fitted with it."""
        return self._per_day(r, exog, "log_prob", lambda raw, z, sid: self.head_.log_prob(raw, z).double()
                             - math.log(self.scaler_.scale_[sid]))

    def cdf(self, r: pd.Series | pd.DataFrame, exog: pd.DataFrame | pd.Series | None = None, *,
            at: Any = None) -> pd.Series | pd.DataFrame:
        """``P(R_t <= r_t | r_<t)``, the PIT of each day (exact, from the head); NaN like ``log_prob``.
        ``at`` (shaped like ``r``) evaluates day ``t``'s predictive at ``at_t`` instead."""
        return self._per_day(r, exog, "cdf", lambda raw, z, sid: self.head_.cdf(raw, z), at=at)

    def ppf(self, r: pd.Series | pd.DataFrame, q: float,
            exog: pd.DataFrame | pd.Series | None = None) -> pd.Series | pd.DataFrame:
        """The ``q``-quantile of each day's predictive distribution given ``r_<t``, in the units of
        ``r`` (from the head's exact quantile function); NaN like ``log_prob``."""
        return self._per_day(r, exog, "ppf", lambda raw, z, sid: self.head_.ppf(raw, float(q))
                             * self.scaler_.scale_[sid] + self.scaler_.loc_[sid])

    # ---- generation -----------------------------------------------------------------------
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: pd.DataFrame | pd.Series | None = None,
               exog_future: pd.DataFrame | None = None, method: str = "cached", temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Scenarios:
        """Simulate paths after ``context`` (cached generation; ``method='naive'`` recomputes).

        With covariates, ``exog`` covers the context's rows and ``exog_future`` the next
        ``horizon - 1`` days (their values condition the later steps; scenario analysis).
        ``temperature``, ``top_k`` and ``top_p`` act on the head (:mod:`finar.models.heads`).
        """
        self._check_fitted()
        frame = check_returns(context, what="context")
        check_length(frame, self.min_context, what=f"{type(self).__name__}.sample context")
        if int(horizon) != horizon or horizon < 1 or int(n_paths) != n_paths or n_paths < 1:
            raise DataError(f"horizon and n_paths must be positive integers, got {horizon}, {n_paths}")
        if method not in ("cached", "naive"):
            raise DataError(f"method must be 'cached' or 'naive', got {method!r}")
        R = self.min_context
        cov = self._exog(exog, frame.index, "sample")
        if cov is not None:
            if exog_future is None or len(exog_future) < horizon - 1:
                raise DataError(f"sample: exog_future needs at least horizon - 1 = {horizon - 1} rows of "
                                f"{self.exog_columns_}")
            fut = check_returns(exog_future, what="exog_future").set_axis(
                [str(c) for c in exog_future.columns], axis=1)[self.exog_columns_]
            fut = np.asarray(self.exog_scaler_.transform(fut.to_numpy(dtype=float)))[: horizon - 1]
            cov = np.concatenate([cov[-R:], fut])  # rows for the context, then the future days
        paths = np.empty((int(n_paths), int(horizon), frame.shape[1]))
        seeds = np.random.SeedSequence(seed).generate_state(frame.shape[1])
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        for j, col in enumerate(frame.columns):
            sid = self._series_id(col, frame.shape[1])
            z = self._z(frame[col].to_numpy(dtype=float)[-R:], sid)
            gen = torch.Generator(device=self.device).manual_seed(int(seeds[j]))
            zs = self._draw(z, cov, sid, int(horizon), int(n_paths), gen, kw, method)
            paths[:, :, j] = zs * self.scaler_.scale_[sid] + self.scaler_.loc_[sid]
        return Scenarios(paths, future_index(frame.index, int(horizon)), [str(c) for c in frame.columns],
                         seed=seed)

    @abstractmethod
    def _draw(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
              gen: torch.Generator, kw: dict[str, Any], method: str) -> np.ndarray:
        """``(n, horizon)`` standardised draws after the last ``min_context`` values ``z``."""

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        state = {"network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
                 "scaler": self.scaler_.state_dict(), "columns": list(self.columns_),
                 "exog_columns": list(self.exog_columns_),
                 "history": [{k: float(v) for k, v in e.items()} for e in self.training_.history]}
        if hasattr(self, "edges_"):
            state["edges"] = list(self.edges_)
        if self.exog_columns_:
            state["exog_scaler"] = self.exog_scaler_.state_dict()
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = list(state["columns"])
        self.scaler_ = scaler_from_state_dict(state["scaler"])
        self.exog_columns_ = list(state.get("exog_columns", []))
        if self.exog_columns_:
            self.exog_scaler_ = scaler_from_state_dict(state["exog_scaler"])
        if "edges" in state:
            self.edges_ = list(state["edges"])
        self.head_ = self._make_head()
        self._build(len(self.columns_))
        self.network_.load_state_dict(state["network"])
        self.network_.eval()
        history = state["history"]
        best = min(range(len(history)), key=lambda i: history[i].get("val_loss", np.inf)) if history else 0
        self.training_ = TrainResult(history=history, best_epoch=best,
                                     best_val_loss=history[best]["val_loss"] if history else float("nan"),
                                     seconds=sum(e.get("seconds", 0.0) for e in history), n_steps=0)

    @abstractmethod
    def _make_head(self, z: np.ndarray | None = None) -> Any:
        """The distribution head (fitting its bins on standardised training data ``z`` if given)."""

    @abstractmethod
    def _build(self, n_series: int) -> None:
        """Create ``network_`` for ``n_series`` series from the stored settings."""
