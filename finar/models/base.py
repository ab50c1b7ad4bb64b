"""The forecaster contract every finar model implements.

A forecaster factorises ``p(x) = prod_t p(x_t | x_<t)`` and exposes

- ``fit(r, *, exog=None) -> self`` (scikit-learn rules, from :class:`finar._estimator.Estimator`:
  ``__init__`` only stores arguments, learned state ends in ``_``, ``get_params``/``set_params``
  with ``outer__inner`` nested settings, ``clone``);
- ``log_prob(r, *, exog=None)``: ``log p(r_t | r_<t)`` in nats per observation, in the units of
  ``r``, aligned with ``r`` and NaN where there is not enough context (the first ``min_context``
  rows); ``joint_log_prob`` sums a day's columns into the joint density of the day;
- ``predictive(r, *, exog=None)``: each day's one-step predictive distribution as a
  :class:`~finar.models.predictive.Predictive` (``log_prob``, ``cdf``, ``ppf``, ``mean``, ``std``,
  ``var``, ``es``, ``crps``, ``sample``); ``cdf`` and ``ppf`` read it;
- ``sample(context, horizon, n_paths, seed, *, exog=None, exog_future=None) -> Scenarios``;
- ``min_context``, ``save(path)`` and :func:`load`.

**Covariates.** ``exog`` is keyword-only everywhere. Row ``t`` of ``exog`` is known at the close of
day ``t`` and conditions ``r_{t+1}`` (never ``r_t``): ``exog`` has exactly the rows of ``r``;
``sample`` takes the context's rows in ``exog`` and the future days' in ``exog_future``.

**Capabilities are declared, not probed**: the class attribute ``tags`` names what a model
supports (``"predictive"``: an exact predictive object; ``"exog"``: covariates; ``"joint"``: the
columns of a DataFrame form one joint model; ``"needs_exog"``: ``fit`` refuses to run without
covariates; ``"simulates_exog"``: ``sample`` simulates the covariates of the simulated days itself,
so it takes the context's ``exog`` but no ``exog_future``). Callers read ``model.tags``; a model
without ``"predictive"`` is evaluated from its sample paths.

Model files are written with ``torch.save`` and read with ``torch.load(weights_only=True)``:
they hold only plain Python values and tensors, never pickled objects, so loading a file from
someone else cannot run code.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from finar._estimator import (
    FILE_FORMAT,
    FILE_VERSION,
    Estimator,
    check_seed,
    clone,
    create,
    read_model_file,
    register,
    registry,
    write_model_file,
)
from finar._estimator import load as _load_any
from finar._estimator import plain as _plain
from finar.data.transforms import as_frame, check_length
from finar.errors import (
    ConstantSeriesError,
    DataError,
    DuplicateTimestampError,
    FinarError,
    NonFiniteValueError,
    UnsortedIndexError,
    format_rows,
)
from finar.models.predictive import LocScalePredictive, Predictive
from finar.models.scenarios import Scenarios, future_index

__all__ = ["Forecaster", "UnivariateForecaster", "register", "registry", "create", "load",
           "clone", "check_returns", "check_exog", "FILE_FORMAT", "FILE_VERSION", "Predictive",
           "read_model_file", "write_model_file"]

Exog = pd.DataFrame | pd.Series | None
_plain = _plain  # re-exported for older callers


def load(path: str | os.PathLike[str], device: str | None = None) -> Any:
    """Load any finar model file (forecaster, tick model, detector) written by ``save``.

    ``device`` maps the saved tensors (e.g. ``'cpu'`` for a file saved on a GPU). See
    :func:`finar._estimator.load`.
    """
    return _load_any(path, device=device)


class Forecaster(Estimator, ABC):
    """Base class of finar forecasters; see the module docstring for the contract."""

    #: what the model supports: "predictive", "exog", "joint" (see the module docstring)
    tags: ClassVar[frozenset[str]] = frozenset()
    #: fewest observations ``fit`` accepts (subclasses set it, possibly per instance)
    min_fit_obs: ClassVar[int] = 2

    # ---- the contract -------------------------------------------------------------------
    #: whether :meth:`sample` takes ``uniforms=`` (paths from the exact quantile function at given
    #: uniforms, so a copula can couple the columns: :class:`finar.models.MarginalCopula`)
    takes_uniforms: ClassVar[bool] = False

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
    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> Forecaster:
        """Fit to returns (and covariates); returns ``self``."""

    @abstractmethod
    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """One-step-ahead log density of each observation given the ones before it."""

    def joint_log_prob(self, r: pd.DataFrame | pd.Series, *, exog: Exog = None) -> pd.Series:
        """``log p(r_t | r_<t)`` of each day's whole row of columns, in nats per day.

        The sum of :meth:`log_prob` over columns: exact for a model whose columns are
        independent given the past, and for joint models (tag ``"joint"``) whose ``log_prob`` of
        column ``j`` already conditions on the columns before it. NaN where any column is NaN.
        """
        lp = as_frame(self.log_prob(r, exog=exog))
        return lp.sum(axis=1, min_count=lp.shape[1]).rename("joint_log_prob")

    @abstractmethod
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None) -> Scenarios:
        """Simulate ``n_paths`` paths of ``horizon`` returns following ``context``."""

    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> Predictive | dict[str, Predictive]:
        """Each day's one-step predictive distribution of ``r_t`` given ``r_<t`` (and ``exog``).

        A :class:`~finar.models.predictive.Predictive` for a Series, a dict of them by column
        for a DataFrame. Models tagged ``"predictive"`` implement it; the others raise.
        """
        raise FinarError(f"{type(self).__name__} has no exact predictive distribution (its tags "
                         f"{sorted(self.tags)} lack 'predictive'); evaluate it from sample paths")

    def _predictives(self, r: pd.Series | pd.DataFrame, exog: Exog) -> tuple[pd.DataFrame, dict]:
        frame = check_returns(r)
        pred = self.predictive(r, exog=exog)
        preds = {frame.columns[0]: pred} if isinstance(pred, Predictive) else dict(pred)
        return frame, preds

    def cdf(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None,
            at: Any = None) -> pd.Series | pd.DataFrame:
        """``P(R_t <= r_t | r_<t)``: each observation's probability integral transform (PIT).

        Shaped like ``r`` (NaN where ``log_prob`` is NaN). ``at`` (shaped like ``r``) evaluates
        day ``t``'s predictive CDF at ``at_t`` instead, ``P(R_t <= at_t | r_<t)``; the
        conditioning is always ``r``. Read from :meth:`predictive`.
        """
        frame, preds = self._predictives(r, exog)
        values = cdf_values(frame, at)
        out = pd.DataFrame({c: preds[c].cdf(values[:, j]) for j, c in enumerate(frame.columns)},
                           index=frame.index)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def ppf(self, r: pd.Series | pd.DataFrame, q: float, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """The ``q``-quantile of each day's one-step predictive distribution given ``r_<t``.

        Shaped like ``r`` (day ``t``'s value does not depend on ``r_t``); ``ppf(r, 0.01)`` is the
        1% VaR forecast as a return. Read from :meth:`predictive`.
        """
        frame, preds = self._predictives(r, exog)
        out = pd.DataFrame({c: preds[c].ppf(float(q)) for c in frame.columns}, index=frame.index)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        """Small configurations that the contract suite runs (:func:`finar.testing.check_forecaster`).

        A new model joins the suite by registering; override this to keep its tests fast.
        """
        return [{}]


def cdf_values(frame: pd.DataFrame, at: Any) -> np.ndarray:
    """The values ``(T, N)`` at which ``cdf`` evaluates each day's predictive: ``frame`` or ``at``."""
    if at is None:
        return frame.to_numpy(dtype=float)
    values = np.asarray(at, dtype=float)
    if values.size != frame.size:
        raise DataError(f"cdf: at must be shaped like r {frame.shape}, got {np.shape(at)}")
    return values.reshape(frame.shape)


def check_exog(exog: Exog, index: pd.Index, what: str = "exog",
               columns: list[str] | None = None) -> pd.DataFrame | None:
    """Validate covariates for the days ``index``: numeric, finite, exactly those rows.

    Returns a DataFrame with string column names (in the order ``columns`` if given), or None
    when ``exog`` is None.
    """
    if exog is None:
        return None
    frame = check_returns(exog, what=what, largest=None)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{what} lacks columns {missing} (the model was fitted with {columns})")
        frame = frame[columns]
    if not frame.index.equals(index):
        span = f"{index[0]} to {index[-1]}" if len(index) else "no rows"
        raise DataError(f"{what} must have exactly the rows of the returns ({len(index)} rows, {span}); "
                        f"got {len(frame)} rows. Row t of exog is known at the close of day t and "
                        "conditions the return of day t+1")
    return frame


#: no return in any unit is this large (a percent log return of 1e10 is a price ratio of
#: e^(1e8)): such values are a unit or column mistake, and float32 networks would square them to inf
LARGEST_RETURN = 1e10


def check_returns(r: pd.Series | pd.DataFrame, *, what: str = "r", fitting: bool = False,
                  largest: float | None = LARGEST_RETURN) -> pd.DataFrame:
    """Validate returns given to a model: pandas, numeric, finite, sorted, each day once.

    Values of magnitude ``largest`` or more are refused (covariates pass ``largest=None``). With
    ``fitting`` (the returns a model is fitted to) a column whose values are all equal is
    refused too: no model of returns can learn a scale from it, and the classical ones would
    "fit" it and score every day NaN or infinite. Returns a DataFrame view.
    """
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
    if largest is not None:
        huge = (np.abs(values) >= largest).any(axis=1)
        if huge.any():
            raise DataError(f"{what} has values of magnitude {largest:g} or more at "
                            f"{format_rows(frame.index[huge])}; these are not returns in any unit: pass "
                            "returns (finar.returns(prices)), not prices, volumes or sums")
    if not frame.index.is_monotonic_increasing:
        try:
            back = frame.index[1:][np.asarray(frame.index[1:] < frame.index[:-1])]
        except TypeError:  # labels that do not compare (mixed types)
            back = []
        where = f"; it goes back at {format_rows(back)}" if len(back) else ""
        raise UnsortedIndexError(f"{what} must be sorted by time (use sort_index()){where}")
    if frame.index.has_duplicates:
        raise DuplicateTimestampError(f"{what} has repeated rows at "
                                      f"{format_rows(frame.index[frame.index.duplicated()])}; each "
                                      "day must appear once")
    if fitting and len(frame) > 1:
        flat = [c for c, v in zip(frame.columns, values.T, strict=True) if v.min() == v.max()]
        if flat:
            raise ConstantSeriesError(
                f"{what} is constant in column(s) {format_rows(flat)} (every value "
                f"{float(frame[flat[0]].iloc[0]):g}); a model cannot learn a distribution from it: "
                "check the price column, or drop the constant series"
            )
    return frame


class UnivariateForecaster(Forecaster):
    """A forecaster of one series at a time; a DataFrame gets one independent model per column.

    Subclasses implement array functions on one series and the base class handles pandas
    alignment, covariates, several columns, seeds and persistence. ``x`` is the covariate
    array ``(T, K)`` aligned with ``y`` (row ``t`` known at the close of day ``t``, so it may
    condition ``y_{t+1}`` only), or None:

    - ``_fit_1d(y, x) -> state`` (a dict of plain values),
    - ``_log_prob_1d(state, y, x) -> ndarray`` (NaN for the first ``min_context`` rows),
    - ``_predictive_1d(state, y, x) -> (loc, scale, dist, params)`` of each day's law,
    - ``_sample_1d(state, context, x_context, x_future, horizon, n_paths, rng) -> (n_paths, horizon)``
      (``x_future`` has the covariates of the first ``horizon - 1`` simulated days; None for a
      model tagged ``"simulates_exog"``, which draws them itself).

    ``_check_exog_values(frame, what)`` may refuse covariate values the model cannot use.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "exog"})

    def _exog_array(self, exog: Exog, index: pd.Index, what: str) -> np.ndarray | None:
        fitted = getattr(self, "exog_columns_", [])
        if exog is None and fitted:
            raise DataError(f"{what}: this {type(self).__name__} was fitted with exog columns {fitted}; "
                            "pass them for the same days")
        if exog is not None and not fitted:
            raise DataError(f"{what}: this {type(self).__name__} was fitted without exog; drop the argument")
        frame = check_exog(exog, index, f"{what} exog", fitted or None)
        if frame is None:
            return None
        self._check_exog_values(frame, f"{what} exog")
        return frame.to_numpy(dtype=float)

    def _check_exog_values(self, frame: pd.DataFrame, what: str) -> None:
        """Check the values of validated covariates (finite, the right rows) that this model needs,
        e.g. ``> 0`` for a covariate that enters as a log, raising a DataError that names the
        offending rows of ``frame``. Called by ``fit``, ``log_prob``, ``predictive`` and ``sample``.
        Default: nothing."""

    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> UnivariateForecaster:
        if exog is not None and "exog" not in self.tags:
            raise DataError(f"{type(self).__name__} takes no covariates (its tags {sorted(self.tags)} lack "
                            "'exog'); drop exog, or add 'exog' to its tags and use x in _fit_1d")
        frame = check_returns(r, fitting=True)
        check_length(frame, max(self.min_fit_obs, self.min_context + 1),
                     what=f"fitting {type(self).__name__}")
        ex = check_exog(exog, frame.index, "fit exog")
        if ex is not None:
            self._check_exog_values(ex, "fit exog")
        self.exog_columns_ = [] if ex is None else list(ex.columns)
        x = None if ex is None else ex.to_numpy(dtype=float)
        states = {}
        for col in frame.columns:
            states[str(col)] = self._fit_1d(frame[col].to_numpy(dtype=float), x)
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

    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        self._check_fitted()
        frame = check_returns(r)
        x = self._exog_array(exog, frame.index, "log_prob")
        out = pd.DataFrame(index=frame.index, columns=frame.columns, dtype=float)
        for col in frame.columns:
            state = self._state_for(col, frame.shape[1])
            out[col] = self._log_prob_1d(state, frame[col].to_numpy(dtype=float), x)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None,
               uniforms: np.ndarray | None = None) -> Scenarios:
        """Simulate ``n_paths`` paths of ``horizon`` returns after ``context``; models with
        ``takes_uniforms`` draw step ``h`` as the exact quantile at ``uniforms[:, h]`` (shape
        ``(n_paths, horizon)``, or ``(n_paths, horizon, n_series)``) instead of from the seed."""
        self._check_fitted()
        frame = check_returns(context, what="context")
        check_length(frame, max(1, self.min_context), what=f"{type(self).__name__}.sample context")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        u = None if uniforms is None else check_uniforms(self, uniforms, n_paths, horizon, frame.shape[1])
        x = self._exog_array(exog, frame.index, "sample")
        if x is not None and "simulates_exog" in self.tags:
            if exog_future is not None:
                raise DataError(f"sample: {type(self).__name__} simulates its own covariates "
                                f"{self.exog_columns_} on the simulated days; drop exog_future (pass "
                                "only the context's rows in exog)")
            x_future = None
        else:
            x_future = future_exog(exog_future, self.exog_columns_, horizon) if x is not None else None
        children = np.random.SeedSequence(seed).spawn(frame.shape[1])
        paths = np.empty((n_paths, horizon, frame.shape[1]))
        for j, col in enumerate(frame.columns):
            state = self._state_for(col, frame.shape[1])
            rng = np.random.default_rng(children[j])
            kw = {} if u is None else {"uniforms": u[:, :, j]}
            paths[:, :, j] = self._sample_1d(state, frame[col].to_numpy(dtype=float), x, x_future,
                                             horizon, n_paths, rng, **kw)
        return Scenarios(paths, future_index(frame.index, horizon),
                         [str(c) for c in frame.columns], seed=seed)

    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> LocScalePredictive | dict[str, LocScalePredictive]:
        self._check_fitted()
        frame = check_returns(r)
        x = self._exog_array(exog, frame.index, "predictive")
        out = {}
        for col in frame.columns:
            loc, scale, dist, params = self._predictive_1d(self._state_for(col, frame.shape[1]),
                                                           frame[col].to_numpy(dtype=float), x)
            out[str(col)] = LocScalePredictive(frame.index, loc, scale, dist, tuple(params))
        return next(iter(out.values())) if isinstance(r, pd.Series) else out

    def _get_state(self) -> dict[str, Any]:
        return _plain({"states": self.states_, "columns": self.columns_, "n_obs": self.n_obs_,
                       "series_name": self.series_name_, "exog_columns": self.exog_columns_})

    def _set_state(self, state: dict[str, Any]) -> None:
        self.states_ = state["states"]
        self.columns_ = list(state["columns"])
        self.n_obs_ = int(state["n_obs"])
        self.series_name_ = state["series_name"]
        self.exog_columns_ = list(state.get("exog_columns", []))

    def _check_state(self) -> None:
        if not isinstance(self.states_, dict) or sorted(self.states_) != sorted(self.columns_):
            raise ValueError(f"the per-series states do not match the columns {self.columns_}")
        for state in self.states_.values():
            self._check_state_1d(state)

    def _check_state_1d(self, state: dict[str, Any]) -> None:
        """Check one series' loaded state against the parameters; raise ValueError/KeyError on a
        mismatch (:func:`finar.models.load` turns it into a ModelFileError). Default: nothing."""

    @abstractmethod
    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]: ...

    @abstractmethod
    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray: ...

    @abstractmethod
    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray,
                       x: np.ndarray | None) -> tuple[Any, ...]: ...

    @abstractmethod
    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray: ...


def check_uniforms(model: Forecaster, uniforms: Any, n: int, horizon: int, n_series: int) -> np.ndarray:
    """``uniforms`` as float64 ``(n, horizon, n_series)`` inside (0, 1), or a DataError (also when
    ``model`` cannot be driven by uniforms)."""
    if not model.takes_uniforms:
        raise DataError(f"{type(model).__name__}.sample cannot draw paths from given uniforms")
    u = np.asarray(uniforms, dtype=float)
    if u.ndim == 2 and n_series == 1:
        u = u[:, :, None]
    if u.shape != (n, horizon, n_series) or not ((u > 0) & (u < 1)).all():
        shape = (n, horizon) if n_series == 1 else (n, horizon, n_series)
        dims = "n_paths, horizon" + ", n_series" * (n_series > 1)
        raise DataError(f"uniforms must have shape ({dims}) = {shape} "
                        f"with values inside (0, 1); got shape {u.shape}")
    return u


def check_horizon(horizon: Any, n_paths: Any) -> tuple[int, int]:
    """``horizon`` and ``n_paths`` as positive ints, or a DataError naming them."""
    for name, v in (("horizon", horizon), ("n_paths", n_paths)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer | float) or int(v) != v or v < 1:
            raise DataError(f"{name} must be a positive integer, got {v!r}")
    return int(horizon), int(n_paths)


def future_exog(exog_future: Exog, columns: list[str], horizon: int) -> np.ndarray:
    """The covariates ``(horizon - 1, K)`` of the simulated days after the context (by position).

    Row ``h`` is known at the close of simulated day ``h`` and conditions day ``h + 1``, so the
    last simulated day needs none.
    """
    if horizon == 1 and exog_future is None:
        return np.zeros((0, len(columns)))
    if exog_future is None:
        raise DataError(f"sample: the model was fitted with exog {columns}; pass exog_future with at "
                        f"least horizon - 1 = {horizon - 1} rows of them")
    frame = check_returns(exog_future, what="exog_future", largest=None)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"exog_future lacks columns {missing}")
    if len(frame) < horizon - 1:
        raise DataError(f"exog_future has {len(frame)} rows; horizon {horizon} needs {horizon - 1}")
    return frame[columns].to_numpy(dtype=float)[: horizon - 1]
