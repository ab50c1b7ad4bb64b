"""The fit template every neural forecaster shares: scaling, covariates, windows, the loss, training.

A neural forecaster (WaveNet, Transformer, PixelCNN) is a thin estimator around a plain
``nn.Module`` and a distribution head (:mod:`finar.models.heads`). :meth:`NeuralForecaster.fit`
does the same for every network:

1. check the returns, the covariates and the settings (``train``: a
   :class:`~finar.models.training.TrainConfig`);
2. standardise each series, ``z = (r - m) / s`` (:class:`~finar.data.scalers.StandardScaler`;
   ``log_prob`` adds the log-Jacobian ``-log s``, so log scores are in the units of ``r``), and
   the covariates likewise;
3. split the days in time: the first ``1 - val_fraction`` train, the rest validate (early
   stopping); the validation windows start ``min_context`` days before the split, so every
   validation target has its full context and none is a training target;
4. cut windows of ``R + span`` rows (:func:`window_starts`, :func:`stack_windows`): ``R =
   min_context`` rows of context, then ``span = train.window`` targets;
5. minimise the mean negative log-likelihood of the targets with
   :func:`finar.models.training.train` (one loop, one warm-up rule for every network).

Two layouts. In *series* mode (WaveNet, Transformer) each column of a DataFrame is its own
sequence and one global network sees them all, told apart by a series id. In *panel* mode
(PixelCNN) a window is a block of days by all columns, modelled jointly.

A network file supplies only what makes it that model:

- ``min_context`` (the receptive field), ``_validate()`` (architecture settings),
  ``_make_head(z)``, ``_network(n_series, n_covariates) -> nn.Module``;
- ``_forward_train(module, x, *cond)``: head parameters of the targets ``x[:, R:]`` of a batch
  of windows (teacher forcing; the output predicting row ``t`` sees rows ``< t`` only);
- ``_conditionals(z, sid, cov)`` (series mode) or ``_head_params`` (panel mode): head parameters
  of every day with a full context, and ``_draw`` / ``_paths``: the generator.

**Covariates.** Row ``t`` of ``exog`` is known at the close of day ``t`` and conditions
``r_{t+1}``; ``exog`` has exactly the rows of ``r``. ``sample`` takes the context's rows in
``exog`` and the next ``horizon - 1`` days' in ``exog_future``.

Model files hold only plain values and tensors (network weights, scalers, bins, training
history), read back with ``torch.load(weights_only=True)`` by :func:`finar.models.load`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from finar._estimator import check_device, check_seed
from finar.data.scalers import StandardScaler, scaler_from_state_dict
from finar.data.transforms import as_frame, check_length
from finar.errors import DataError
from finar.models.base import (
    Exog,
    Forecaster,
    check_exog,
    check_horizon,
    check_returns,
    check_uniforms,
    future_exog,
)
from finar.models.heads import Head
from finar.models.predictive import HeadPredictive
from finar.models.scenarios import Scenarios, future_index
from finar.models.training import TRAIN_DEFAULTS, TrainConfig, TrainResult, as_config, evaluate, seeded, train

__all__ = ["NeuralForecaster", "window_starts", "stack_windows"]


def window_starts(lo: int, hi: int, context: int, span: int) -> list[int]:
    """Starts of the windows of ``context + span`` rows inside ``[lo, hi)`` whose targets (their last
    ``span`` rows) cover ``[lo + context, hi)``.

    Windows step by ``span``; when the last one does not end at ``hi`` one more window ending
    there is added (its first targets repeat the previous window's), so the newest rows are
    always trained on.

    Examples
    --------
    >>> window_starts(0, 10, context=3, span=3)
    [0, 3, 4]
    """
    size = context + span
    starts = list(range(lo, hi - size + 1, span))
    last = hi - size
    if last >= lo and (not starts or (last - lo) % span):
        starts.append(last)
    return starts


def stack_windows(arrays: Sequence[np.ndarray], starts: Sequence[int], size: int) -> list[np.ndarray]:
    """Rows ``s .. s + size - 1`` of each array for each start ``s``: one ``(W, size, ...)`` per array.

    Examples
    --------
    >>> [w.tolist() for w in stack_windows([np.arange(6)], [0, 3], 3)]
    [[[0, 1, 2], [3, 4, 5]]]
    """
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(size)  # (W, size)
    return [np.asarray(a)[idx] for a in arrays]


class NeuralForecaster(Forecaster):
    """Base of finar's neural forecasters: the fit template; see the module docstring."""

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "exog"})
    #: True: a window is a panel of days x columns (one joint model); False: one sequence per column
    panel: ClassVar[bool] = False
    takes_uniforms: ClassVar[bool] = True
    #: the training settings a mapping given as ``train=`` starts from
    default_train: ClassVar[TrainConfig] = TRAIN_DEFAULTS

    train: TrainConfig
    device: str
    progress: bool

    # ---- settings ------------------------------------------------------------------------------
    def _train_config(self) -> TrainConfig:
        """``self.train`` as a TrainConfig (``set_params(train={...})`` may have stored a mapping)."""
        return as_config(self.train, self.default_train, f"{type(self).__name__}.train")

    @property
    def memory(self) -> int:
        """The receptive field: day ``t`` depends on the ``min_context`` days before it only."""
        return self.min_context

    @property
    def min_fit_obs(self) -> int:  # type: ignore[override]
        """Fewest days ``fit`` accepts: one training target after a full context, and a validation part."""
        return math.ceil((self.min_context + 1) / (1.0 - self._train_config().val_fraction)) + 1

    def _validate(self) -> None:
        """Check the architecture settings (subclasses; :class:`~finar.errors.DataError` naming them)."""

    def _span(self, config: TrainConfig) -> int:
        """Targets per training window (before the data can shorten it)."""
        return config.window

    def _check_fit_data(self, frame: pd.DataFrame, z: np.ndarray) -> None:
        """Refuse training data the model cannot score (subclasses; e.g. a bounded head)."""

    @abstractmethod
    def _make_head(self, z: np.ndarray | None = None) -> Head:
        """The distribution head; with ``z`` (standardised training values) it fits its bins, without
        it rebuilds them from the fitted state (``edges_``)."""

    @abstractmethod
    def _network(self, n_series: int, n_covariates: int) -> nn.Module:
        """A fresh network for ``n_series`` columns and ``n_covariates`` exog columns (the template
        seeds its initial weights with ``train.seed``)."""

    def _forward_train(self, module: nn.Module, x: Tensor, *cond: Tensor) -> Tensor:
        """Head parameters of the targets ``x[:, R:]`` of a batch of windows ``x`` ``(B, R + span)``;
        ``cond`` are the other tensors of :meth:`_stack`. Must call ``module(...)`` (its forward),
        as data-parallel training needs.

        Series mode: ``module(x, series, cov)`` gives at ``t`` the parameters of ``x_{t+1}``, so
        the inputs are ``x[:, :-1]`` and the outputs from ``R - 1`` on have full contexts.
        """
        sid, c = cond
        raw = module(x[:, :-1], sid, c[:, :-1] if c.shape[-1] else None)  # output t predicts x_{t+1}
        return raw[:, self.min_context - 1:]

    # ---- covariates ----------------------------------------------------------------------------
    def _fit_covariates(self, exog: Exog, index: pd.Index) -> np.ndarray | None:
        """Set ``exog_columns_`` and the covariate scaler; the standardised covariates ``(T, K)``."""
        ex = check_exog(exog, index, "fit exog")
        self.exog_columns_: list[str] = [] if ex is None else list(ex.columns)
        if ex is None:
            return None
        self.exog_scaler_ = StandardScaler().fit(ex.to_numpy(dtype=float))
        return np.asarray(self.exog_scaler_.transform(ex.to_numpy(dtype=float)))

    def _check_exog_given(self, exog: Exog, what: str) -> None:
        name = type(self).__name__
        if exog is None and self.exog_columns_:
            raise DataError(f"{what}: this {name} was fitted with exog columns {self.exog_columns_}; "
                            "pass them for the same days")
        if exog is not None and not self.exog_columns_:
            raise DataError(f"{what}: this {name} was fitted without exog; drop the argument")

    def _covariates(self, exog: Exog, index: pd.Index, what: str) -> np.ndarray | None:
        """Standardised covariates ``(T, K)`` of the days ``index`` (exactly its rows), or None."""
        self._check_exog_given(exog, what)
        ex = check_exog(exog, index, f"{what} exog", self.exog_columns_ or None)
        return None if ex is None else np.asarray(self.exog_scaler_.transform(ex.to_numpy(dtype=float)))

    def _future_covariates(self, exog_future: Exog, horizon: int) -> np.ndarray:
        """Standardised covariates ``(horizon - 1, K)`` of the simulated days."""
        fut = future_exog(exog_future, self.exog_columns_, horizon)
        return np.asarray(self.exog_scaler_.transform(fut)) if len(fut) else fut

    # ---- states: covariates the model computes from the returns themselves -----------------------
    @property
    def _n_states(self) -> int:
        """Columns of :meth:`_states` (0: none), after the exog columns in every covariate array."""
        return 0

    def _states(self, z: np.ndarray) -> np.ndarray | None:
        """Series mode: ``(T, K, N)``, each column's functions of its ``z[:t+1]`` (row ``t`` known
        at the close of day ``t``, as an exog row), computed from the first row given; None without
        states. Generation continues them on each path (the network's ``_draw``)."""
        return None

    def _with_states(self, cov: np.ndarray | None, z: np.ndarray) -> np.ndarray | None:
        """The covariates with the states after them: ``(T, K_exog + K, N)``, one slice per column
        (the exog part repeated); ``cov`` unchanged without states."""
        states = self._states(z)
        if states is None:
            return cov
        base = np.zeros((len(z), 0)) if cov is None else cov
        return np.concatenate([np.repeat(base[:, :, None], z.shape[1], axis=2), states], axis=1)

    @staticmethod
    def _column(cov: np.ndarray | None, j: int) -> np.ndarray | None:
        """Column ``j``'s covariates ``(T, K)``: its slice of per-column (3-D) covariates."""
        return cov[:, :, j] if cov is not None and cov.ndim == 3 else cov

    # ---- fit: the template ---------------------------------------------------------------------
    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> NeuralForecaster:
        """Fit to returns: one series, or a DataFrame of several (see the module docstring).

        Parameters
        ----------
        r : Series or DataFrame
            Finite returns, sorted by time.
        exog : DataFrame or Series, optional
            Covariates on exactly the rows of ``r`` (shared by all columns), e.g. a realised
            range. Row ``t`` conditions the forecast of ``r_{t+1}``, so it must be known at the
            close of day ``t``; ``log_prob``, ``predictive`` and ``sample`` then need them too.
        """
        config = self._train_config()
        check_device(self.device)
        self._validate()
        frame = check_returns(r, fitting=True)
        check_length(frame, self.min_fit_obs, what=f"fitting {type(self).__name__}")
        warm = self._can_warm_start(config, frame, exog)
        if warm:  # a fine-tune: the network, scalers and head of the previous fit go on
            cov = self._covariates(exog, frame.index, "fit")
            config = dataclasses.replace(config, max_epochs=config.warm_epochs)
        else:
            for stale in ("exog_scaler_", "edges_"):  # learned by an earlier fit, perhaps with other settings
                self.__dict__.pop(stale, None)
            self.columns_ = [str(c) for c in frame.columns]
            cov = self._fit_covariates(exog, frame.index)
            self.scaler_ = StandardScaler().fit(frame.to_numpy(dtype=float))
        z = np.asarray(self.scaler_.transform(frame.to_numpy(dtype=float)))
        self._check_fit_data(frame, z)
        cov = self._with_states(cov, z)

        n, R = len(z), self.min_context
        cut = round(n * (1 - config.val_fraction))  # training days [0, cut), validation days [cut, n)
        span = min(self._span(config), cut - R)
        if span < 1 or n - cut < 1:
            raise DataError(f"{n} days leave no training target after {R} days of context or no "
                            f"validation day (val_fraction={config.val_fraction}); pass a longer series")
        val_span = n - cut if self.panel else min(span, n - cut)  # panel: the validation part is one window
        if not warm:
            self.head_ = self._make_head(z[:cut])
        if config.variance_target and not hasattr(self.head_, "target_variance"):
            raise DataError(f"train.variance_target rescales a continuous head; {type(self.head_).__name__} "
                            "has bins: drop variance_target or use a t, t-mixture or Gaussian head")
        if hasattr(self.head_, "scale_factor"):
            self.head_.scale_factor = 1.0  # training (a warm refit's too) fits the head as it is
        if not warm:
            with seeded(config.seed):
                self.network_ = self._network(len(self.columns_), len(self.exog_columns_) + self._n_states)
            if config.init is not None:
                self._start_from(config.init)
            elif config.pretrain:
                self._start_from_pretrained(frame, exog)
            self._fitted_architecture = self._architecture()
        self.network_.to(self.device)
        train_data = self._stack(z, cov, window_starts(0, cut, R, span), R + span)
        val_data = self._stack(z, cov, window_starts(cut - R, n, R, val_span), R + val_span)
        head, forward = self.head_, self._forward_train

        def loss(module: nn.Module, x: Tensor, *cond: Tensor) -> Tensor:
            return -head.log_prob(forward(module, x, *cond), x[:, R:]).mean()

        if warm:  # the weights a fine-tune starts from, and their validation loss: the tune's epoch 0
            start = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
            start_val = evaluate(self.network_, loss, val_data, config.batch_size, self.device)
        self.training_ = train(self.network_, loss, train_data, val_data, config, device=self.device,
                               progress=bool(self.progress))
        if warm and not self.training_.best_val_loss < start_val:  # no better on validation: keep them
            self.network_.load_state_dict(start)
            self.training_ = dataclasses.replace(self.training_, best_epoch=-1, best_val_loss=start_val)
        if config.variance_target:  # on every day of the fit, training and validation
            sids = list(range(len(self.columns_)))  # series mode: panels have binned heads
            raw = torch.cat(self._head_params(z, sids, cov))
            y = torch.cat([self._tensor(np.ascontiguousarray(z[self.min_context:, j])) for j in sids])
            self.head_.scale_factor = self.head_.target_variance(raw, y)
        return self

    def _start_from(self, path: str) -> None:
        """Copy the weights of the network in the model file ``path`` (``train.init``) into the
        new network: same class and architecture, continuous tokens and head (binned ones learn
        their bins from each series' data), the same number of series and covariates."""
        from finar.models.base import load

        src = load(path, device=self.device)
        name = type(self).__name__
        if type(src) is not type(self) or src._architecture() != self._architecture():
            raise DataError(f"train.init {path!r} holds a {type(src).__name__} with settings "
                            f"{src._architecture()}; this {name} has {self._architecture()}: pretrain the "
                            "same architecture")
        if hasattr(src, "edges_") or hasattr(self, "edges_"):
            raise DataError(f"train.init needs continuous tokens and a continuous head: bins are learned "
                            f"from each series' data, so {path!r}'s would not fit this series")
        try:
            self.network_.load_state_dict(src.network_.state_dict())
        except RuntimeError as err:
            raise DataError(f"train.init {path!r}: its network does not fit this one (pretrained on "
                            f"{len(src.columns_)} series id(s) and {len(src.exog_columns_)} covariate(s), "
                            f"this fit has {len(self.columns_)} and {len(self.exog_columns_)}): {err}"
                            ) from err

    def _start_from_pretrained(self, frame: pd.DataFrame, exog: Exog) -> None:
        """``train.pretrain``: start from the network pretrained on the bundled daily series up to
        the end of the last year of ``frame`` (:func:`finar.models.pretraining.pretrained_file`)."""
        from finar.models.pretraining import pretrained_file

        name = type(self).__name__
        if self.panel or frame.shape[1] != 1 or exog is not None:
            raise DataError(f"train.pretrain starts {name} from a network pretrained on single return series "
                            "without covariates; fit one series without exog, or set train__pretrain=False")
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise DataError(f"train.pretrain needs dates on the returns (a DatetimeIndex), got "
                            f"{type(frame.index).__name__}: the pretraining corpus is cut at the fit's "
                            "last day")
        self._start_from(str(pretrained_file(self, frame.index[-1])))

    def pretrain(self, series: Mapping[str, pd.Series] | Sequence[pd.Series] | pd.DataFrame
                 ) -> NeuralForecaster:
        """Train one network on many series pooled, as the start of per-series fits.

        Each series is standardised by its own mean and standard deviation and cut into
        training windows (its first ``1 - val_fraction`` of days) and validation windows (the
        rest), exactly as :meth:`fit` cuts one series; the windows of all series train one
        network without series ids, so it learns what the series share. Series may cover
        different dates (a DataFrame's columns are taken without their missing days).

        Save the result and pass its path as ``train={"init": path}`` to a model of the same
        architecture: each fit then starts from the pooled weights and fine-tunes on its own
        series (with its own scaler). The pretrained model itself is fitted on standardised
        returns (``columns_ == ["pooled"]``, unit scaler), not on any one series.

        Parameters
        ----------
        series : mapping of name to Series, sequence of Series, or DataFrame
            Finite returns, each sorted by time, each long enough for one training window and
            one validation window.

        Examples
        --------
        >>> import finar
        >>> px = finar.load("sp500-stocks", end="2014-12-31")
        >>> r = finar.returns(px[["AAPL", "XOM"]].dropna())
        >>> m = finar.models.WaveNet(residual_channels=4, gate_channels=4, skip_channels=4,
        ...                          train={"max_epochs": 1}).pretrain(r)
        >>> m.columns_, len(m.training_.history)
        (['pooled'], 1)
        """
        config = self._train_config()
        check_device(self.device)
        self._validate()
        if self.panel:
            raise DataError(f"{type(self).__name__} models a panel jointly; pretrain pools single series")
        if isinstance(series, pd.DataFrame):
            items = [(str(c), series[c].dropna()) for c in series.columns]
        elif isinstance(series, Mapping):
            items = [(str(k), v) for k, v in series.items()]
        else:
            items = [(str(getattr(v, "name", i)), v) for i, v in enumerate(series)]
        if not items:
            raise DataError("pretrain needs at least one series")
        R, span = self.min_context, self._span(config)
        train_parts, val_parts, train_z = [], [], []
        for name, r in items:
            frame = check_returns(r, fitting=True, what=f"pretrain series {name!r}")
            values = frame.to_numpy(dtype=float)
            z = np.asarray(StandardScaler().fit(values).transform(values))
            n = len(z)
            cut = round(n * (1 - config.val_fraction))
            if cut - R < span or n - cut < span:
                raise DataError(f"pretrain series {name!r} has {n} days: too few for {R} days of context and "
                                f"{span} targets in both its training and validation parts (val_fraction="
                                f"{config.val_fraction}); leave it out or pass a longer one")
            train_z.append(z[:cut])
            states = self._with_states(None, z)  # each series' own states, from its first day
            train_parts.append(self._stack(z, states, window_starts(0, cut, R, span), R + span))
            val_parts.append(self._stack(z, states, window_starts(cut - R, n, R, span), R + span))
        train_data = tuple(torch.cat(t) for t in zip(*train_parts, strict=True))
        val_data = tuple(torch.cat(t) for t in zip(*val_parts, strict=True))
        for stale in ("exog_scaler_", "edges_"):
            self.__dict__.pop(stale, None)
        self.columns_, self.exog_columns_ = ["pooled"], []
        self.scaler_ = StandardScaler().fit(np.array([[-1.0], [1.0]]))  # identity: inputs are standardised
        self.head_ = self._make_head(np.concatenate(train_z))
        with seeded(config.seed):
            self.network_ = self._network(1, self._n_states)
        self._fitted_architecture = self._architecture()
        self.network_.to(self.device)
        head, forward = self.head_, self._forward_train

        def loss(module: nn.Module, x: Tensor, *cond: Tensor) -> Tensor:
            return -head.log_prob(forward(module, x, *cond), x[:, R:]).mean()

        self.training_ = train(self.network_, loss, train_data, val_data, config, device=self.device,
                               progress=bool(self.progress))
        return self

    @property
    def warm_start(self) -> bool:
        """Whether a refit fine-tunes the fitted network (``train__warm_epochs > 0``); read by
        :func:`finar.backtest`, which then refits its blocks in order, each from the previous one."""
        return self._train_config().warm_epochs > 0

    def _can_warm_start(self, config: TrainConfig, frame: pd.DataFrame, exog: Exog) -> bool:
        """A fine-tune applies: ``warm_epochs > 0`` and a network fitted on the same columns with
        the same covariate columns."""
        if config.warm_epochs == 0 or getattr(self, "network_", None) is None:
            return False
        if self._architecture() != getattr(self, "_fitted_architecture", None):  # set_params since
            return False
        ex_cols = [] if exog is None else [str(c) for c in as_frame(exog, name="exog").columns]
        return [str(c) for c in frame.columns] == self.columns_ and ex_cols == list(self.exog_columns_)

    def _architecture(self) -> dict[str, Any]:
        """The constructor settings other than training and device: what the network is."""
        skip = ("train", "device", "progress")
        return {k: v for k, v in self.get_params(deep=False).items() if k not in skip}

    def _stack(self, z: np.ndarray, cov: np.ndarray | None, starts: list[int],
               size: int) -> tuple[Tensor, ...]:
        """Training tensors of the windows at ``starts``: series mode ``(x (N W, size), series ids,
        covariates (N W, size, K))``, window by window within each series; panel mode
        ``(x (W, size, J), covariates (W, size, K))``."""
        n_cov = 0 if cov is None else cov.shape[1]
        covs = np.zeros((len(z), n_cov)) if cov is None else cov
        per_column = covs.ndim == 3  # (T, K, N): each series' own covariates (states)
        x, c = stack_windows([z, covs.reshape(len(z), -1)], starts, size)  # (W, size, N), (W, size, K[N])
        if self.panel:
            return torch.tensor(x, dtype=torch.float32), torch.tensor(c, dtype=torch.float32)
        n_series = z.shape[1]
        x = x.transpose(2, 0, 1).reshape(n_series * len(starts), size)
        sid = np.repeat(np.arange(n_series), len(starts))
        if per_column:  # window by window within each series, as x
            c = c.reshape(len(starts), size, n_cov, n_series).transpose(3, 0, 1, 2).reshape(-1, size, n_cov)
        else:
            c = np.concatenate([c] * n_series)
        return (torch.tensor(x, dtype=torch.float32), torch.tensor(sid, dtype=torch.long),
                torch.tensor(c, dtype=torch.float32))

    # ---- one-step conditionals -------------------------------------------------------------------
    def _series_ids(self, frame: pd.DataFrame, what: str) -> list[int]:
        """The series id of each column; a one-series model applies to any single column."""
        ids = []
        for col in frame.columns:
            key = str(col)
            if key in self.columns_:
                ids.append(self.columns_.index(key))
            elif len(self.columns_) == 1 and frame.shape[1] == 1:
                ids.append(0)
            else:
                raise DataError(f"{what}: {type(self).__name__} was fitted on {self.columns_}, not {key!r}")
        return ids

    def _tensor(self, values: np.ndarray | None) -> Tensor | None:
        return None if values is None else torch.tensor(values, dtype=torch.float32, device=self.device)

    def _inputs(self, r: pd.Series | pd.DataFrame, exog: Exog, what: str,
                arg: str = "r") -> tuple[pd.DataFrame, np.ndarray, list[int], np.ndarray | None]:
        """Checked returns ``arg``, their standardised values ``(T, N)``, series ids and covariates."""
        self._check_fitted(what)
        frame = check_returns(r, what=arg)
        sids = self._series_ids(frame, what)
        loc, scale = self.scaler_.loc_, self.scaler_.scale_
        z = np.column_stack([(frame.iloc[:, j].to_numpy(dtype=float) - loc[s]) / scale[s]
                             for j, s in enumerate(sids)])
        return frame, z, sids, self._with_states(self._covariates(exog, frame.index, what), z)

    @abstractmethod
    def _conditionals(self, z: Tensor, sid: int, cov: Tensor | None) -> Tensor:
        """Series mode: head parameters ``(n - R, n_params)`` of ``z[t]`` given ``z[<t]`` (and the
        covariates of the days before ``t``) for ``t >= R``, from the standardised series ``z``."""

    @torch.no_grad()
    def _head_params(self, z: np.ndarray, sids: list[int], cov: np.ndarray | None) -> list[Tensor]:
        """Head parameters ``(T - R, n_params)`` of every day with a full context, one per column."""
        return [self._conditionals(self._tensor(np.ascontiguousarray(z[:, j])), s,
                                   self._tensor(self._column(cov, j))) for j, s in enumerate(sids)]

    @staticmethod
    def _like(r: pd.Series | pd.DataFrame, values: np.ndarray, index: pd.Index) -> pd.Series | pd.DataFrame:
        out = pd.DataFrame(values, index=index, columns=r.columns if isinstance(r, pd.DataFrame) else [0])
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    @torch.no_grad()
    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """``log p(r_t | r_<t)`` in nats in the units of ``r`` (the scaler's Jacobian included), one
        pass of the network; NaN for the first ``min_context`` rows."""
        frame, z, sids, cov = self._inputs(r, exog, "log_prob")
        R = self.min_context
        out = np.full(z.shape, np.nan)
        if len(z) > R:
            target = self._tensor(z[R:])
            for j, raw in enumerate(self._head_params(z, sids, cov)):
                lp = self.head_.log_prob(raw, target[:, j].contiguous()).double()
                out[R:, j] = (lp - math.log(self.scaler_.scale_[sids[j]])).cpu().numpy()
        return self._like(r, out, frame.index)

    @torch.no_grad()
    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> HeadPredictive | dict[str, HeadPredictive]:
        """Each day's one-step predictive distribution, exact from the head: a
        :class:`~finar.models.predictive.HeadPredictive` (a dict of them by column for a DataFrame);
        the first ``min_context`` days have none (NaN)."""
        frame, z, sids, cov = self._inputs(r, exog, "predictive")
        T, R, P = len(z), self.min_context, self.head_.n_params
        raws = self._head_params(z, sids, cov) if T > R else [None] * len(sids)
        valid = np.arange(T) >= R
        out = {}
        for j, col in enumerate(frame.columns):
            raw = torch.zeros((T, P), device=self.device)  # rows before R: no prediction
            if raws[j] is not None:
                raw[R:] = raws[j]
            out[str(col)] = HeadPredictive(frame.index, self.head_, raw, float(self.scaler_.loc_[sids[j]]),
                                           float(self.scaler_.scale_[sids[j]]), valid)
        return next(iter(out.values())) if isinstance(r, pd.Series) else out

    # ---- generation -----------------------------------------------------------------------
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None,
               method: str = "cached", temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, uniforms: np.ndarray | None = None) -> Scenarios:
        """Simulate ``n_paths`` paths of ``horizon`` returns after ``context``.

        ``method='cached'`` generates incrementally (each network's cache); ``'naive'`` recomputes
        the whole receptive field at every step (slow; kept to verify the cache). With covariates,
        ``exog`` covers the context's rows and ``exog_future`` the next ``horizon - 1`` days
        (their values condition the later steps: scenario analysis). ``temperature``, ``top_k``
        and ``top_p`` act on the head (:mod:`finar.models.heads`). The same seed gives the same paths.

        ``uniforms`` (``(n_paths, horizon)``, or ``(n_paths, horizon, n_series)`` for a DataFrame;
        values in (0, 1)) drives the paths instead of the seed: step ``h`` of a path is the head's
        exact quantile function at ``uniforms[:, h]`` given the path so far, ``F_h^{-1}(u_h)``.
        Dependent uniforms (a copula's) then give dependent paths with these exact marginal path
        laws: :class:`finar.models.MarginalCopula` samples this way.
        """
        if method not in ("cached", "naive"):
            raise DataError(f"method must be 'cached' or 'naive', got {method!r}")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        frame, z, sids, cov = self._inputs(context, exog, "sample", arg="context")
        R = self.min_context
        check_length(frame, max(1, R), what=f"{type(self).__name__}.sample context")
        if exog_future is not None and not self.exog_columns_:
            raise DataError(f"sample: this {type(self).__name__} was fitted without exog; drop exog_future")
        if cov is not None:  # rows for the last R context days, then the simulated days
            fut = (self._future_covariates(exog_future, horizon) if self.exog_columns_
                   else np.zeros((horizon - 1, 0)))
            if cov.ndim == 3:  # the simulated days' states depend on the path: NaN here, filled by _draw
                fut = np.concatenate([np.repeat(fut[:, :, None], cov.shape[2], axis=2),
                                      np.full((len(fut), self._n_states, cov.shape[2]), np.nan)], axis=1)
            cov = np.concatenate([cov[len(cov) - R:], fut])
        seeds = np.random.SeedSequence(seed).generate_state(frame.shape[1])
        kw: dict[str, Any] = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        if uniforms is not None:
            kw["uniforms"] = self._check_uniforms(uniforms, n_paths, horizon, frame.shape[1], kw)
        zs = self._paths(z[len(z) - R:], sids, cov, horizon, n_paths, seeds, kw, method)
        loc, scale = self.scaler_.loc_[sids], self.scaler_.scale_[sids]
        return Scenarios(zs * scale + loc, future_index(frame.index, horizon),
                         [str(c) for c in frame.columns], seed=seed)

    def _paths(self, z: np.ndarray, sids: list[int], cov: np.ndarray | None, horizon: int, n: int,
               seeds: np.ndarray, kw: dict[str, Any], method: str) -> np.ndarray:
        """Standardised paths ``(n, horizon, N)`` after the last ``R`` rows ``z`` ``(R, N)``; series
        mode draws each column with its own generator."""
        out = np.empty((n, horizon, z.shape[1]))
        u = kw.get("uniforms")
        for j, sid in enumerate(sids):
            gen = torch.Generator(device=self.device).manual_seed(int(seeds[j]))
            kw_j = kw if u is None else {**kw, "uniforms": u[:, :, j]}
            out[:, :, j] = self._draw(z[:, j], self._column(cov, j), sid, horizon, n, gen, kw_j, method)
        return out

    def _check_uniforms(self, uniforms: Any, n: int, horizon: int, n_series: int,
                        kw: dict[str, Any]) -> np.ndarray:
        """``uniforms`` as float64 ``(n, horizon, n_series)`` inside (0, 1), or a DataError."""
        if kw["temperature"] != 1.0 or kw["top_k"] is not None or kw["top_p"] is not None:
            raise DataError("uniforms give exact quantile draws; drop temperature, top_k and top_p")
        return check_uniforms(self, uniforms, n, horizon, n_series)

    def _pick(self, raw: Tensor, gen: torch.Generator, kw: dict[str, Any], h: int) -> Tensor:
        """Step ``h``'s draws from head parameters ``raw`` (n, P): the head's sampler, or its exact
        quantile function at the given uniforms (``kw['uniforms']``, (n, horizon))."""
        u = kw.get("uniforms")
        if u is None:
            return self.head_.sample(raw, gen, **kw)
        q = torch.as_tensor(np.ascontiguousarray(u[:, h]), dtype=torch.float64, device=raw.device)
        return self.head_.ppf(raw, q).to(raw.dtype)

    def _draw(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
              gen: torch.Generator, kw: dict[str, Any], method: str) -> np.ndarray:
        """Series mode: ``(n, horizon)`` standardised draws after the last ``R`` values ``z``."""
        raise NotImplementedError(f"{type(self).__name__} draws whole panels (_paths)")

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        tr = self.training_
        state: dict[str, Any] = {
            "network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "scaler": self.scaler_.state_dict(), "columns": list(self.columns_),
            "exog_columns": list(self.exog_columns_),
            "training": {"history": [{k: float(v) for k, v in e.items()} for e in tr.history],
                         "best_epoch": int(tr.best_epoch), "best_val_loss": float(tr.best_val_loss),
                         "seconds": float(tr.seconds), "n_steps": int(tr.n_steps)}}
        if hasattr(self, "edges_"):
            state["edges"] = [float(e) for e in self.edges_]
        if getattr(self.head_, "scale_factor", 1.0) != 1.0:
            state["scale_factor"] = float(self.head_.scale_factor)
        if hasattr(self, "exog_scaler_"):
            state["exog_scaler"] = self.exog_scaler_.state_dict()
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = list(state["columns"])
        self.scaler_ = scaler_from_state_dict(state["scaler"])
        self.exog_columns_ = list(state["exog_columns"])
        if "exog_scaler" in state:
            self.exog_scaler_ = scaler_from_state_dict(state["exog_scaler"])
        if "edges" in state:
            self.edges_ = list(state["edges"])
        self.head_ = self._make_head()
        if "scale_factor" in state:  # variance targeting (files without it: factor 1)
            self.head_.scale_factor = float(state["scale_factor"])
        with seeded(self._train_config().seed):
            self.network_ = self._network(len(self.columns_), len(self.exog_columns_) + self._n_states)
        self.network_.load_state_dict(state["network"])
        self.network_.to(self.device).eval()
        self._fitted_architecture = self._architecture()  # a loaded model can be fine-tuned
        self.training_ = TrainResult(**state["training"])

    def _to_device(self, device: str) -> None:
        self.network_.to(device)
