"""The forecaster contract every finar model implements, its registry and model files.

A forecaster factorises ``p(x) = prod_t p(x_t | x_<t)`` and exposes

- ``fit(r) -> self`` (scikit-learn rules: ``__init__`` only stores arguments, learned state ends
  in ``_``, ``get_params``/``set_params``/``clone``);
- ``log_prob(r)``: ``log p(r_t | r_<t)`` in nats per observation, in the units of ``r``, aligned
  with ``r`` and NaN where there is not enough context (the first ``min_context`` rows);
- ``sample(context, horizon, n_paths, seed) -> Scenarios``;
- ``min_context``, ``save(path)`` and :func:`load`.

Model files are written with ``torch.save`` and read with ``torch.load(weights_only=True)``:
they hold only plain Python values and tensors, never pickled objects, so loading a file from
someone else cannot run code.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from finar._io import atomic_path
from finar.data.transforms import as_frame, check_length
from finar.errors import (
    DataError,
    FinarError,
    ModelFileError,
    NonFiniteValueError,
    NotFittedError,
    format_rows,
)
from finar.models.predictive import LocScalePredictive
from finar.models.scenarios import Scenarios, future_index

__all__ = ["Forecaster", "UnivariateForecaster", "register", "registry", "create", "load",
           "clone", "FILE_FORMAT", "FILE_VERSION"]

FILE_FORMAT = "finar-model"
FILE_VERSION = 1

_REGISTRY: dict[str, type[Forecaster]] = {}
F = TypeVar("F", bound="type[Forecaster]")


def register(name: str) -> Callable[[F], F]:
    """Class decorator adding a forecaster to the registry under ``name``.

    Registered models are loadable by :func:`load`, creatable by :func:`create` and by the CLI,
    and run through the contract test suite.
    """
    def deco(cls: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise FinarError(f"a model is already registered as {name!r}: {_REGISTRY[name]}")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def registry() -> dict[str, type[Forecaster]]:
    """Registered forecaster classes by name."""
    return dict(_REGISTRY)


def create(name: str, **params: Any) -> Forecaster:
    """Instantiate a registered model by name, e.g. ``create("garch", dist="t")``."""
    try:
        cls = _REGISTRY[name.lower()]
    except KeyError:
        raise FinarError(f"unknown model {name!r}; registered models: {sorted(_REGISTRY)}") from None
    return cls(**params)


def clone(model: Forecaster) -> Forecaster:
    """A new, unfitted model with the same parameters."""
    return type(model)(**model.get_params())


class Forecaster(ABC):
    """Base class of finar forecasters; see the module docstring for the contract."""

    registry_name: ClassVar[str] = ""
    #: fewest observations ``fit`` accepts (subclasses set it, possibly per instance)
    min_fit_obs: ClassVar[int] = 2

    # ---- scikit-learn style parameters ---------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor arguments as a dict (``deep`` is accepted for scikit-learn parity)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Forecaster:
        """Set constructor arguments; the model must be refitted afterwards."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise DataError(f"{type(self).__name__} has no parameter {key!r}; "
                                f"parameters are {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- the contract -------------------------------------------------------------------
    @property
    @abstractmethod
    def min_context(self) -> int:
        """Observations needed before ``log_prob`` is defined and ``sample`` can start."""

    @property
    def memory(self) -> int | None:
        """How many past observations one day's prediction can depend on at most: ``None`` when
        unbounded (a GARCH variance recursion remembers everything), else e.g. the receptive
        field. Lets callers recompute only the days an edit to one observation can change."""
        return None

    @abstractmethod
    def fit(self, r: pd.Series | pd.DataFrame) -> Forecaster:
        """Fit to returns; returns ``self``."""

    @abstractmethod
    def log_prob(self, r: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
        """One-step-ahead log density of each observation given the ones before it."""

    @abstractmethod
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None) -> Scenarios:
        """Simulate ``n_paths`` paths of ``horizon`` returns following ``context``."""

    def predictive(self, r: pd.Series | pd.DataFrame) -> Any:
        """Closed-form one-step predictive distributions of each ``r_t`` given ``r_<t``.

        Returns a :class:`finar.models.predictive.LocScalePredictive` (or a dict of them, one
        per column) for models that have one, and ``None`` for models that do not; evaluation
        then works from sample paths.
        """
        return None

    def cdf(self, r: pd.Series | pd.DataFrame, *, at: Any = None) -> pd.Series | pd.DataFrame:
        """``P(R_t <= r_t | r_<t)``: each observation's probability integral transform (PIT).

        Shaped like ``r`` (NaN where ``log_prob`` is NaN). ``at`` (shaped like ``r``) evaluates
        day ``t``'s predictive CDF at ``at_t`` instead, ``P(R_t <= at_t | r_<t)``; the
        conditioning is always ``r``. The default reads the closed-form :meth:`predictive`; a
        model without one overrides this or raises ``NotImplementedError`` (then
        :class:`finar.AnomalyDetector` and the backtest work from sample paths).
        """
        pred = self.predictive(r)
        if pred is None:
            raise NotImplementedError(f"{type(self).__name__} has no closed-form CDF")
        frame = check_returns(r)
        values = cdf_values(frame, at)
        preds = {frame.columns[0]: pred} if isinstance(r, pd.Series) else pred
        out = pd.DataFrame({c: preds[c].cdf(values[:, j]) for j, c in enumerate(frame.columns)},
                           index=frame.index)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def ppf(self, r: pd.Series | pd.DataFrame, q: float) -> pd.Series | pd.DataFrame:
        """The ``q``-quantile of each day's one-step predictive distribution given ``r_<t``.

        Shaped like ``r`` (day ``t``'s value does not depend on ``r_t``); ``ppf(r, 0.01)`` is the
        1% VaR forecast as a return. Default: the closed-form :meth:`predictive`; models without
        one override this or raise ``NotImplementedError``.
        """
        pred = self.predictive(r)
        if pred is None:
            raise NotImplementedError(f"{type(self).__name__} has no closed-form quantile function")
        frame = check_returns(r)
        preds = {frame.columns[0]: pred} if isinstance(r, pd.Series) else pred
        out = pd.DataFrame({c: preds[c].ppf(float(q)) for c in frame.columns}, index=frame.index)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        """Small configurations that the contract test suite runs (tests/models/test_contract.py).

        A new model joins the suite by registering; override this to keep its tests fast.
        """
        return [{}]

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(r) first")

    # ---- persistence --------------------------------------------------------------------
    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Learned state as plain values and tensors (what ``weights_only`` loading allows)."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore learned state written by :meth:`_get_state`."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``path`` atomically; read it back with :func:`load`."""
        self._check_fitted()
        return write_model_file(path, {"model": self.registry_name, "params": _plain(self.get_params()),
                                       "state": self._get_state()})


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain Python for safe serialisation."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def cdf_values(frame: pd.DataFrame, at: Any) -> np.ndarray:
    """The values ``(T, N)`` at which ``cdf`` evaluates each day's predictive: ``frame`` or ``at``."""
    if at is None:
        return frame.to_numpy(dtype=float)
    values = np.asarray(at, dtype=float)
    if values.size != frame.size:
        raise DataError(f"cdf: at must be shaped like r {frame.shape}, got {np.shape(at)}")
    return values.reshape(frame.shape)


def write_model_file(path: str | os.PathLike[str], content: dict[str, Any], *, fmt: str = FILE_FORMAT,
                     version: int = FILE_VERSION) -> Path:
    """Write ``content`` (plain values and tensors) with ``torch.save``, atomically, under a header:
    the format marker ``fmt``, the file ``version`` and the finar version."""
    import torch

    from finar import __version__

    payload = {"format": fmt, "file_version": version, "finar_version": __version__, **content}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_model_file(path: str | os.PathLike[str], *, fmt: str = FILE_FORMAT, version: int = FILE_VERSION,
                    what: str = "finar model") -> dict[str, Any]:
    """The payload of a file written by :func:`write_model_file`, read with
    ``torch.load(weights_only=True)`` and checked: marker ``fmt``, file version at most ``version``.

    Raises :class:`~finar.errors.ModelFileError` if the file is missing, unreadable, not a ``what``
    or from a newer file version.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file not found: {str(p)!r}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on foreign or damaged bytes
        raise ModelFileError(
            f"{str(p)!r} is not a readable {what} file (corrupted, truncated, or written by "
            f"another program): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ModelFileError(f"{str(p)!r} is a torch file but not a {what}")
    if payload.get("file_version", 0) > version:
        raise ModelFileError(
            f"{str(p)!r} uses model file version {payload['file_version']} (finar "
            f"{payload.get('finar_version')}); this finar reads up to version {version}: "
            "upgrade finar"
        )
    return payload


def load(path: str | os.PathLike[str]) -> Forecaster:
    """Load a model written by ``Forecaster.save``, safely (``torch.load(weights_only=True)``).

    Raises
    ------
    ModelFileError
        If the file is missing, corrupted, not a finar model, or from a newer file format.
    """
    p = Path(path)
    payload = read_model_file(p)
    name = payload.get("model")
    if name not in _REGISTRY:
        raise ModelFileError(f"{str(p)!r} holds an unknown model {name!r}; known: {sorted(_REGISTRY)}")
    model = _REGISTRY[name](**payload["params"])
    try:
        model._set_state(payload["state"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{str(p)!r}: model state is damaged: {exc}") from exc
    return model


def check_returns(r: pd.Series | pd.DataFrame, *, what: str = "r") -> pd.DataFrame:
    """Validate returns given to a model: pandas, numeric, finite. Returns a DataFrame view."""
    if not isinstance(r, pd.Series | pd.DataFrame):
        raise DataError(f"{what} must be a pandas Series or DataFrame of returns, got "
                        f"{type(r).__name__}; wrap arrays with pd.Series(values)")
    frame = as_frame(r)
    if frame.shape[1] == 0:
        raise DataError(f"{what} has no columns")
    try:
        values = frame.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric: {exc}") from exc
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise NonFiniteValueError(
            f"{what} has NaN or infinite returns at {format_rows(frame.index[bad])}; "
            "returns must be finite (finar.returns gives NaN-free returns)"
        )
    if not frame.index.is_monotonic_increasing:
        raise DataError(f"{what} must be sorted by time")
    return frame


class UnivariateForecaster(Forecaster):
    """A forecaster of one series at a time; a DataFrame gets one independent model per column.

    Subclasses implement four array functions on one series and the base class handles pandas
    alignment, several columns, seeds and persistence:

    - ``_fit_1d(y) -> state`` (a dict of plain values),
    - ``_log_prob_1d(state, y) -> ndarray`` (NaN for the first ``min_context`` rows),
    - ``_sample_1d(state, context, horizon, n_paths, rng) -> ndarray (n_paths, horizon)``.
    """

    def fit(self, r: pd.Series | pd.DataFrame) -> UnivariateForecaster:
        frame = check_returns(r)
        check_length(frame, max(self.min_fit_obs, self.min_context + 1),
                     what=f"fitting {type(self).__name__}")
        states = {}
        for col in frame.columns:
            states[str(col)] = self._fit_1d(frame[col].to_numpy(dtype=float))
        self.states_ = states
        self.columns_ = [str(c) for c in frame.columns]
        self.series_name_ = r.name if isinstance(r, pd.Series) else None
        self.n_obs_ = len(frame)
        return self

    def _state_for(self, col: object, n_cols: int) -> dict[str, Any]:
        key = str(col)
        if key in self.states_:
            return self.states_[key]
        if len(self.states_) == 1 and n_cols == 1:  # a single-series model applies to any name
            return next(iter(self.states_.values()))
        raise DataError(f"{type(self).__name__} was fitted on {self.columns_}, not {key!r}")

    def log_prob(self, r: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
        self._check_fitted()
        frame = check_returns(r)
        out = pd.DataFrame(index=frame.index, columns=frame.columns, dtype=float)
        for col in frame.columns:
            state = self._state_for(col, frame.shape[1])
            out[col] = self._log_prob_1d(state, frame[col].to_numpy(dtype=float))
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None) -> Scenarios:
        self._check_fitted()
        frame = check_returns(context, what="context")
        check_length(frame, max(1, self.min_context), what=f"{type(self).__name__}.sample context")
        if int(horizon) != horizon or horizon < 1 or int(n_paths) != n_paths or n_paths < 1:
            raise DataError(f"horizon and n_paths must be positive integers, got {horizon}, {n_paths}")
        children = np.random.SeedSequence(seed).spawn(frame.shape[1])
        paths = np.empty((int(n_paths), int(horizon), frame.shape[1]))
        for j, col in enumerate(frame.columns):
            state = self._state_for(col, frame.shape[1])
            rng = np.random.default_rng(children[j])
            paths[:, :, j] = self._sample_1d(state, frame[col].to_numpy(dtype=float),
                                             int(horizon), int(n_paths), rng)
        return Scenarios(paths, future_index(frame.index, int(horizon)),
                         [str(c) for c in frame.columns], seed=seed)

    def predictive(self, r: pd.Series | pd.DataFrame) -> Any:
        self._check_fitted()
        frame = check_returns(r)
        out = {}
        for col in frame.columns:
            spec = self._predictive_1d(self._state_for(col, frame.shape[1]),
                                       frame[col].to_numpy(dtype=float))
            if spec is None:
                return None
            loc, scale, dist, params = spec
            out[col] = LocScalePredictive(frame.index, loc, scale, dist, tuple(params))
        return next(iter(out.values())) if isinstance(r, pd.Series) else out

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray) -> tuple[Any, ...] | None:
        """``(loc, scale, dist, params)`` of each day's predictive distribution, or None."""
        return None

    def _get_state(self) -> dict[str, Any]:
        return _plain({"states": self.states_, "columns": self.columns_, "n_obs": self.n_obs_,
                       "series_name": self.series_name_})

    def _set_state(self, state: dict[str, Any]) -> None:
        self.states_ = state["states"]
        self.columns_ = list(state["columns"])
        self.n_obs_ = int(state["n_obs"])
        self.series_name_ = state["series_name"]

    @abstractmethod
    def _fit_1d(self, y: np.ndarray) -> dict[str, Any]: ...

    @abstractmethod
    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray: ...
