"""Affine scalers whose log-Jacobian keeps likelihoods exact in the data's units.

A network trains on scaled values ``z = (x - loc_) / scale_`` and outputs a density ``p_z``.
The density of the data follows from the change of variables, per observation and column:

.. math::

    \\log p_x(x) = \\log p_z(z) + \\log |dz/dx| = \\log p_z(z) - \\log(\\mathrm{scale\\_})

Sign convention: :meth:`log_det_jacobian` is ``log |dz/dx|``, the derivative of the *forward*
map (data -> scaled), i.e. ``-log(scale_)``; it is negative when ``scale_ > 1``.
:meth:`log_prob_to_data_units` adds it, so callers never have to remember the sign. For a joint
density over several columns, sum the per-column terms.

All scalers follow scikit-learn's rules: ``__init__`` only stores arguments; ``fit`` learns
``loc_`` and ``scale_`` (shape ``()`` for 1-D input, ``(n_columns,)`` for 2-D input whose
columns are series) and returns ``self``. Transforms accept numpy arrays (the last axis is the
columns, so ``(batch, time, n_columns)`` windows work too) and pandas Series/DataFrames, and
return float64 values of the same type, index and columns. ``state_dict()`` holds only plain
Python floats, lists and strings, so it fits in a ``torch.load(weights_only=True)`` checkpoint
or a JSON file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.special import ndtri

from finar.errors import (
    ConstantSeriesError,
    DataError,
    NonFiniteValueError,
    NotFittedError,
    SeriesTooShortError,
)

__all__ = [
    "IdentityScaler",
    "MeanAbsScaler",
    "RobustScaler",
    "StandardScaler",
    "scaler_from_state_dict",
]

ArrayLike = np.ndarray | pd.Series | pd.DataFrame
_STATE_VERSION = 1


# -- helpers shared with finar.data.quantizers --------------------------------------------------

def _as_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 ndarray, or a DataError that says why it cannot be one."""
    try:
        if isinstance(x, pd.Series | pd.DataFrame):
            return x.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must hold numbers; converting it to float failed: {exc}") from exc


def _position(x: Any, pos: tuple[int, ...]) -> str:
    if isinstance(x, pd.DataFrame):
        return f"row {x.index[pos[0]]} column {x.columns[pos[1]]!r}"
    if isinstance(x, pd.Series):
        return f"row {x.index[pos[0]]}"
    return f"position {pos[0] if len(pos) == 1 else pos}"


def _check_finite(values: np.ndarray, x: Any, name: str) -> None:
    """Raise NonFiniteValueError naming how many values are NaN/inf and where the first are."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    n_bad = int(bad.sum())
    where = [_position(x, tuple(int(i) for i in p)) for p in np.argwhere(bad)[:5]]
    more = f" (and {n_bad - len(where)} more)" if n_bad > len(where) else ""
    raise NonFiniteValueError(
        f"{name} has {n_bad} non-finite value(s) (NaN or inf) at {'; '.join(where)}{more}; "
        "drop or fill them (e.g. with .dropna()) before scaling or quantizing"
    )


def _check_state(d: Any, cls: type, keys: tuple[str, ...]) -> None:
    if not isinstance(d, dict):
        raise DataError(f"state_dict must be a dict, got {type(d).__name__}")
    if d.get("type") != cls.__name__:
        raise DataError(
            f"this state_dict is for {d.get('type')!r}, not {cls.__name__}; call "
            f"from_state_dict on the class it names"
        )
    if d.get("version") != _STATE_VERSION:
        raise DataError(f"state_dict version {d.get('version')!r} is not supported "
                        f"(expected {_STATE_VERSION})")
    missing = [k for k in keys if k not in d]
    if missing:
        raise DataError(f"state_dict for {cls.__name__} lacks key(s) {missing}")


def _plain(value: Any) -> Any:
    """Plain Python version of a parameter value (tuples become lists, numpy scalars floats)."""
    if isinstance(value, tuple | list | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Params:
    """``get_params`` and ``repr`` from the names ``__init__`` stores."""

    _param_names: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        """The arguments given to ``__init__``, by name."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


# -- scalers --------------------------------------------------------------------------------------

class _AffineScaler(_Params, ABC):
    """``z = (x - loc_) / scale_`` with per-column ``loc_`` and ``scale_``."""

    @abstractmethod
    def _statistics(self, values: np.ndarray, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(loc, scale)`` per column of ``values``."""

    def fit(self, x: ArrayLike) -> Self:
        """Learn ``loc_`` and ``scale_`` from ``x`` (1-D: one series; 2-D: columns are series)."""
        values = _as_float(x, "x")
        if values.ndim not in (1, 2):
            raise DataError(f"x must be 1-D (one series) or 2-D (columns are series), "
                            f"got shape {values.shape}")
        if values.shape[0] == 0:
            raise SeriesTooShortError("x is empty; fit needs at least one observation")
        _check_finite(values, x, "x")
        loc, scale = self._statistics(values, x)
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise DataError(f"x's values are too extreme to scale in float64 (loc {loc}, scale "
                            f"{scale}); multiply x by a power of ten first")
        self.loc_, self.scale_ = np.asarray(loc, dtype=float), np.asarray(scale, dtype=float)
        self.columns_ = list(x.columns) if isinstance(x, pd.DataFrame) else None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(x) first")

    def _values(self, x: ArrayLike, name: str, finite: bool = True) -> np.ndarray:
        self._check_fitted()
        values = _as_float(x, name)
        k = self.scale_.size if self.scale_.ndim else 0
        if k > 1 and (values.ndim == 0 or values.shape[-1] != k):
            raise DataError(f"{name} has shape {values.shape}, but {type(self).__name__} was "
                            f"fitted on {k} columns; its last axis must have length {k}")
        if (self.columns_ is not None and isinstance(x, pd.DataFrame) and len(self.columns_) > 1
                and [str(c) for c in x.columns] != [str(c) for c in self.columns_]):
            raise DataError(f"{name} has columns {list(x.columns)}, but the scaler was fitted "
                            f"on {self.columns_}; select and order them the same way")
        if finite:
            _check_finite(values, x, name)
        return values

    @staticmethod
    def _like(values: np.ndarray, x: ArrayLike) -> ArrayLike:
        if isinstance(x, pd.DataFrame):
            return pd.DataFrame(values, index=x.index, columns=x.columns)
        if isinstance(x, pd.Series):
            return pd.Series(values, index=x.index, name=x.name)
        return values

    def transform(self, x: ArrayLike) -> ArrayLike:
        """Scaled values ``(x - loc_) / scale_``, of the same type as ``x``."""
        return self._like((self._values(x, "x") - self.loc_) / self.scale_, x)

    def inverse_transform(self, z: ArrayLike) -> ArrayLike:
        """Data values ``z * scale_ + loc_``, e.g. of paths a model sampled in scaled units."""
        return self._like(self._values(z, "z") * self.scale_ + self.loc_, z)

    def fit_transform(self, x: ArrayLike) -> ArrayLike:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def log_det_jacobian(self, x: ArrayLike | None = None) -> np.ndarray | ArrayLike:
        """``log |dz/dx| = -log(scale_)``, the term that turns a log density of ``z`` into one of ``x``.

        Without ``x``: an array of shape ``()`` or ``(n_columns,)`` that broadcasts against the
        data. With ``x``: one value per observation, of the same type and shape as ``x``.
        """
        if x is None:
            self._check_fitted()
            return -np.log(self.scale_)
        values = self._values(x, "x", finite=False)
        return self._like(np.broadcast_to(-np.log(self.scale_), values.shape).copy(), x)

    def log_prob_to_data_units(self, log_prob_z: ArrayLike) -> ArrayLike:
        """``log p_x(x) = log p_z(z) + log |dz/dx|`` for log densities a model gave on ``z``.

        ``log_prob_z`` has one value per observation and column (same shape as the data); NaN
        (no context yet) and ``-inf`` (zero density) pass through unchanged.
        """
        values = self._values(log_prob_z, "log_prob_z", finite=False)
        return self._like(values - np.log(self.scale_), log_prob_z)

    def state_dict(self) -> dict[str, Any]:
        """Parameters and learned state as plain Python types (no numpy)."""
        self._check_fitted()
        return {
            "type": type(self).__name__,
            "version": _STATE_VERSION,
            "params": {k: _plain(v) for k, v in self.get_params().items()},
            "loc": self.loc_.tolist(),
            "scale": self.scale_.tolist(),
            "columns": None if self.columns_ is None else [str(c) for c in self.columns_],
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a fitted scaler from :meth:`state_dict`'s output."""
        _check_state(d, cls, ("params", "loc", "scale", "columns"))
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in d["params"].items()}
        self = cls(**params)
        loc, scale = np.asarray(d["loc"], dtype=float), np.asarray(d["scale"], dtype=float)
        if loc.shape != scale.shape or scale.ndim > 1 or not np.all(np.isfinite(loc)) \
                or not np.all((scale > 0) & np.isfinite(scale)):
            raise DataError("state_dict holds an invalid loc/scale (shapes must match, scale "
                            "must be finite and positive)")
        self.loc_, self.scale_, self.columns_ = loc, scale, d["columns"]
        return self


def _zero_spread(scale: np.ndarray, x: Any, what: str, advice: str,
                 error: type[DataError] = DataError) -> None:
    zero = np.atleast_1d(scale) == 0
    if zero.any():
        names = list(x.columns[zero]) if isinstance(x, pd.DataFrame) else np.flatnonzero(zero).tolist()
        which = "x has" if np.ndim(scale) == 0 else f"column(s) {list(names)} of x have"
        raise error(f"{which} zero {what}, so the scaled values are undefined; {advice}")


class StandardScaler(_AffineScaler):
    """Centre on the mean and divide by the standard deviation: ``z = (x - mean_) / std_``.

    ``scale_`` is the population standard deviation (``ddof=0``), as in scikit-learn. A
    constant column raises :class:`~finar.errors.ConstantSeriesError` (a DataError).

    Examples
    --------
    >>> import numpy as np
    >>> s = StandardScaler().fit(np.array([1.0, 2.0, 3.0]))
    >>> s.transform(np.array([2.0, 4.0])).round(4).tolist()
    [0.0, 2.4495]
    >>> float(s.log_det_jacobian().round(4))  # -log(std)
    0.2027
    """

    def _statistics(self, values: np.ndarray, x: Any) -> tuple[np.ndarray, np.ndarray]:
        # ptp is exact; a float std of constant values can be a tiny non-zero number
        _zero_spread(np.ptp(values, axis=0), x, "standard deviation (constant values)",
                     "drop them, or use IdentityScaler", ConstantSeriesError)
        loc = values.mean(axis=0)
        # divide by the largest deviation first, so squares neither underflow nor overflow
        dev = values - loc
        peak = np.abs(dev).max(axis=0)
        return loc, peak * np.sqrt(np.mean((dev / peak) ** 2, axis=0))


class MeanAbsScaler(_AffineScaler):
    """Divide by the mean absolute value, without centring: ``z = x / mean(|x|)``.

    The scaling of Chronos (Ansari et al., 2024): zero stays zero and signs are kept. A column
    of zeros gets ``scale_ = 1`` (Chronos' convention), which keeps every density exact.

    Examples
    --------
    >>> import numpy as np
    >>> s = MeanAbsScaler().fit(np.array([-2.0, 1.0, 3.0]))
    >>> s.transform(np.array([-2.0, 1.0, 3.0])).tolist()
    [-1.0, 0.5, 1.5]
    """

    def _statistics(self, values: np.ndarray, x: Any) -> tuple[np.ndarray, np.ndarray]:
        scale = np.abs(values).mean(axis=0)
        return np.zeros_like(scale), np.where(scale > 0, scale, 1.0)


class RobustScaler(_AffineScaler):
    """Centre on the median and divide by an interquantile range: ``z = (x - median) / IQR``.

    Parameters
    ----------
    quantile_range : tuple of float, default (25.0, 75.0)
        Percentiles ``(lo, hi)``, ``0 <= lo < hi <= 100``, whose distance is ``scale_``.
    unit_variance : bool, default False
        Divide ``scale_`` by the same range of a standard normal (1.349 for the IQR), so that
        normal data get unit variance.

    Examples
    --------
    >>> import numpy as np
    >>> s = RobustScaler().fit(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    >>> s.transform(np.array([3.0, 5.0])).tolist()
    [0.0, 1.0]
    """

    _param_names = ("quantile_range", "unit_variance")

    def __init__(self, quantile_range: tuple[float, float] = (25.0, 75.0),
                 unit_variance: bool = False) -> None:
        self.quantile_range = quantile_range
        self.unit_variance = unit_variance

    def _statistics(self, values: np.ndarray, x: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            lo, hi = (float(q) for q in self.quantile_range)
        except (TypeError, ValueError) as exc:
            raise DataError(f"quantile_range must be two percentiles (lo, hi), "
                            f"got {self.quantile_range!r}") from exc
        if not 0 <= lo < hi <= 100:
            raise DataError(f"quantile_range must satisfy 0 <= lo < hi <= 100, got {(lo, hi)}")
        q_lo, median, q_hi = np.percentile(values, [lo, 50.0, hi], axis=0)
        scale = q_hi - q_lo
        _zero_spread(scale, x, f"{lo:g}-{hi:g} percentile range (too many equal values)",
                     "widen quantile_range, e.g. (5.0, 95.0), or use StandardScaler")
        if self.unit_variance:
            scale = scale / (ndtri(hi / 100) - ndtri(lo / 100))
        return median, scale


class IdentityScaler(_AffineScaler):
    """Leave values unchanged (``loc_ = 0``, ``scale_ = 1``, log-Jacobian 0), for a uniform API.

    Examples
    --------
    >>> import numpy as np
    >>> IdentityScaler().fit_transform(np.array([1.5, -2.0])).tolist()
    [1.5, -2.0]
    """

    def _statistics(self, values: np.ndarray, x: Any) -> tuple[np.ndarray, np.ndarray]:
        shape = values.shape[1:]
        return np.zeros(shape), np.ones(shape)


_SCALERS: dict[str, type[_AffineScaler]] = {
    cls.__name__: cls for cls in (StandardScaler, MeanAbsScaler, RobustScaler, IdentityScaler)
}


def scaler_from_state_dict(d: dict[str, Any]) -> _AffineScaler:
    """Rebuild whichever scaler ``d`` (from ``state_dict()``) describes.

    Examples
    --------
    >>> import numpy as np
    >>> s = scaler_from_state_dict(StandardScaler().fit(np.arange(4.0)).state_dict())
    >>> type(s).__name__, s.loc_.item()
    ('StandardScaler', 1.5)
    """
    name = d.get("type") if isinstance(d, dict) else None
    if name not in _SCALERS:
        raise DataError(f"state_dict type {name!r} is not a scaler; expected one of {list(_SCALERS)}")
    return _SCALERS[name].from_state_dict(d)
