"""Quantizers: real values to integer bins and back, with exact densities in the data's units.

A categorical model gives a probability ``P(k)`` for each bin ``k``. Reading a value as spread
uniformly over its bin (dequantisation) turns those into a density on the real line,
``p(x) = P(bin(x)) / width(bin(x))``, which integrates to one and compares with any continuous
model's density of the same data. ``log_density`` computes it; ``decode(method="uniform")``
samples from exactly this density.

**Edge bins.** Every bin, the two outermost included, is an explicit finite interval
``edges_[k] <= x < edges_[k + 1]`` (the last one closed), so every width is finite and the
density's support is ``[edges_[0], edges_[-1]]``. ``fit`` places the outer edges beyond the
fitted data with a margin. A value outside the support has density zero under the model, so:

- ``encode`` raises :class:`~finar.errors.DataError` for it by default, saying how to widen the
  range; ``encode(x, out_of_range="clip")`` puts it in the nearest outer bin (handy for
  training inputs);
- ``log_density(log_probs, ids, x=x)`` returns ``-inf`` there: the model's exact log density,
  rather than a finite number that would flatter it.

The three quantizers differ only in where the edges lie:

- :class:`UniformQuantizer`: ``n_bins - 2`` equal bins on ``[low_, high_]`` and two wider tail
  bins reaching ``tail_margin * (high_ - low_)`` beyond the fitted extremes;
- :class:`MuLawQuantizer`: bins equal in WaveNet's mu-law companded space, on
  ``[-scale_, scale_]``;
- :class:`MeanScaledQuantizer`: Chronos' equal bins on ``[low, high]`` in units of the
  context's mean absolute value ``scale_`` (one per column), so widths in data units scale
  with ``scale_``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np

from finar.data.scalers import (
    _STATE_VERSION,
    _as_float,
    _check_finite,
    _check_state,
    _Params,
    _plain,
)
from finar.errors import DataError, NotFittedError, SeriesTooShortError

__all__ = [
    "MeanScaledQuantizer",
    "MuLawQuantizer",
    "UniformQuantizer",
    "mu_law_compand",
    "mu_law_expand",
    "quantizer_from_state_dict",
]


def mu_law_compand(u: np.ndarray, mu: float = 255) -> np.ndarray:
    """``sign(u) log(1 + mu |u|) / log(1 + mu)``, mapping ``[-1, 1]`` onto itself."""
    u = np.asarray(u, dtype=float)
    return np.sign(u) * np.log1p(mu * np.abs(u)) / np.log1p(mu)


def mu_law_expand(c: np.ndarray, mu: float = 255) -> np.ndarray:
    """Inverse of :func:`mu_law_compand`: ``sign(c) ((1 + mu)^|c| - 1) / mu``."""
    c = np.asarray(c, dtype=float)
    return np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu


def _number(value: Any, name: str) -> float:
    """``value`` as a finite float, or a DataError naming the argument."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = np.nan
    if not np.isfinite(out):
        raise DataError(f"{name} must be a finite number, got {value!r}")
    return out


class _Quantizer(_Params):
    """Bins ``edges_ = grid * unit``: a 1-D grid of edges times a positive scale per column."""

    n_bins: int
    _learned: tuple[str, ...] = ()  # learned attributes state_dict saves besides the edges
    _hint = "refit on data that include them"

    def _check_fitted(self) -> None:
        if not hasattr(self, "edges_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(x) first")

    def _fit_values(self, x: Any, min_bins: int) -> np.ndarray:
        """Check ``n_bins`` and return ``x`` as finite float values."""
        n = self.n_bins
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < min_bins:
            raise DataError(f"n_bins must be an integer >= {min_bins}, got {n!r}")
        values = _as_float(x, "x")
        if values.size == 0:
            raise SeriesTooShortError("x is empty; fit needs at least one observation")
        _check_finite(values, x, "x")
        return values

    def _set_grid(self, grid: np.ndarray, unit: np.ndarray) -> None:
        grid, unit = np.asarray(grid, dtype=float), np.asarray(unit, dtype=float)
        if grid.shape != (self.n_bins + 1,) or not np.all(np.diff(grid) > 0) \
                or not np.all(np.isfinite(grid)):
            raise DataError(f"bin edges must be {self.n_bins + 1} finite, strictly increasing "
                            "values; widen the range or use fewer bins")
        if unit.ndim > 1 or not np.all((unit > 0) & np.isfinite(unit)):
            raise DataError(f"scale must be finite and positive, got {unit}")
        self._grid, self._unit = grid, unit
        self.edges_ = grid * unit[..., None]  # (n_bins + 1,) or (n_columns, n_bins + 1)
        self.widths_ = np.diff(self.edges_, axis=-1)
        self.centers_ = self.edges_[..., :-1] + self.widths_ / 2

    def _check_shape(self, shape: tuple[int, ...], name: str) -> None:
        k = self._unit.size if self._unit.ndim else 0
        if k > 1 and (len(shape) == 0 or shape[-1] != k):
            raise DataError(f"{name} has shape {shape}, but {type(self).__name__} was fitted on "
                            f"{k} columns; its last axis must have length {k}")

    def _ids(self, ids: Any) -> np.ndarray:
        self._check_fitted()
        ids = np.asarray(ids)
        self._check_shape(ids.shape, "ids")
        if ids.dtype.kind not in "iu":
            raise DataError(f"ids must be integers (bin numbers), got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_bins):
            raise DataError(f"ids must lie in [0, {self.n_bins - 1}], got values from "
                            f"{ids.min()} to {ids.max()}")
        return ids.astype(np.int64)

    def _support(self) -> tuple[np.ndarray, np.ndarray]:
        return self.edges_[..., 0], self.edges_[..., -1]  # () or (n_columns,) each

    def _edge(self, ids: np.ndarray) -> np.ndarray:
        """``edges_`` at ``ids``; per column when each column has its own edges."""
        if self.edges_.ndim == 1:
            return self.edges_[ids]
        return self.edges_[np.arange(self.edges_.shape[0]), ids]  # ids (..., n_columns)

    def encode(self, x: Any, out_of_range: Literal["raise", "clip"] = "raise") -> np.ndarray:
        """Bin ids (int64, same shape as ``x``) with ``edges_[k] <= x < edges_[k + 1]``.

        ``out_of_range="raise"`` (default) refuses values outside ``[edges_[0], edges_[-1]]``;
        ``"clip"`` puts them in the nearest outer bin.
        """
        self._check_fitted()
        if out_of_range not in ("raise", "clip"):
            raise DataError(f"out_of_range must be 'raise' or 'clip', got {out_of_range!r}")
        values = _as_float(x, "x")
        _check_finite(values, x, "x")
        self._check_shape(values.shape, "x")
        lo, hi = self._support()
        outside = (values < lo) | (values > hi)
        if out_of_range == "raise" and outside.any():
            pos = tuple(int(i) for i in np.argwhere(outside)[0])
            support = [float(np.broadcast_to(e, values.shape)[pos]) for e in (lo, hi)]
            raise DataError(
                f"{int(outside.sum())} value(s) of x lie outside the bins' support, e.g. "
                f"{float(values[pos])!r} at position {pos} (support [{support[0]:.6g}, "
                f"{support[1]:.6g}]); a binned model gives them zero density. To fix: "
                f"{self._hint}, or pass out_of_range='clip' to put them in the outer bins"
            )
        if self.edges_.ndim == 1:
            ids = np.searchsorted(self.edges_, values, side="right") - 1
        else:
            ids = np.empty(values.shape, dtype=np.int64)
            for j, edges in enumerate(self.edges_):
                ids[..., j] = np.searchsorted(edges, values[..., j], side="right") - 1
        return np.clip(ids, 0, self.n_bins - 1).astype(np.int64)

    def bin_width(self, ids: Any) -> np.ndarray:
        """Width of each bin in ``ids``, in data units."""
        ids = self._ids(ids)
        return self._edge(ids + 1) - self._edge(ids)

    def decode(self, ids: Any, rng: np.random.Generator | int | None = None,
               method: Literal["center", "uniform"] = "center") -> np.ndarray:
        """Values for bin ids: bin centres, or uniform draws within each bin (``rng`` needed).

        ``method="uniform"`` samples the dequantised density that :meth:`log_density` scores.
        """
        ids = self._ids(ids)
        left, width = self._edge(ids), self._edge(ids + 1) - self._edge(ids)
        if method == "center":
            return left + width / 2
        if method != "uniform":
            raise DataError(f"method must be 'center' or 'uniform', got {method!r}")
        if rng is None:
            raise DataError("decode(method='uniform') draws random values; pass "
                            "rng=np.random.default_rng(seed)")
        return left + np.random.default_rng(rng).random(ids.shape) * width

    def log_density(self, log_probs: Any, ids: Any, x: Any = None) -> np.ndarray:
        """``log P(bin) - log width(bin)``: the exact log density of the dequantised model.

        Parameters
        ----------
        log_probs : array
            Log probabilities of the bins in ``ids`` (same shape as ``ids``), or full
            log-probability vectors of shape ``ids.shape + (n_bins,)`` to pick them from.
        ids : int array
            Bin ids, e.g. ``encode(x)``.
        x : array, optional
            The values themselves; where they lie outside the support the result is ``-inf``
            (the model's density there is zero), and NaN where ``x`` is NaN.
        """
        ids = self._ids(ids)
        lp = np.asarray(log_probs, dtype=float)
        if lp.shape == (*ids.shape, self.n_bins):
            lp = np.take_along_axis(lp, ids[..., None], axis=-1)[..., 0]
        elif lp.shape != ids.shape:
            raise DataError(f"log_probs has shape {lp.shape}; expected {ids.shape} (one per id) "
                            f"or {(*ids.shape, self.n_bins)} (one vector per id)")
        out = lp - np.log(self.bin_width(ids))
        if x is not None:
            values = _as_float(x, "x")
            if values.shape != ids.shape:
                raise DataError(f"x has shape {values.shape} but ids has shape {ids.shape}")
            lo, hi = self._support()
            out = np.where((values < lo) | (values > hi), -np.inf, out)
            out = np.where(np.isnan(values), np.nan, out)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Parameters, learned attributes and edges as plain Python types (no numpy)."""
        self._check_fitted()
        return {
            "type": type(self).__name__,
            "version": _STATE_VERSION,
            "params": {k: _plain(v) for k, v in self.get_params().items()},
            "learned": {k: np.asarray(getattr(self, k)).tolist() for k in self._learned},
            "grid": self._grid.tolist(),
            "unit": self._unit.tolist(),
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a fitted quantizer from :meth:`state_dict`'s output."""
        _check_state(d, cls, ("params", "learned", "grid", "unit"))
        self = cls(**d["params"])
        for k in cls._learned:
            setattr(self, k, np.asarray(d["learned"][k], dtype=float))
        self._set_grid(d["grid"], d["unit"])
        return self


class UniformQuantizer(_Quantizer):
    """Equal-width bins on ``[low_, high_]`` plus two finite tail bins.

    The ``n_bins - 2`` inner bins split ``[low_, high_]`` evenly. Unless given, ``low_`` and
    ``high_`` are the 0.05% and 99.95% quantiles of the fitted data, each moved outward by 10%
    of their distance, so a few outliers do not waste resolution. The tail bins run from
    ``min(low_, min(x)) - m`` to ``low_`` and from ``high_`` to ``max(high_, max(x)) + m``,
    with ``m = tail_margin * (high_ - low_)``.

    Parameters
    ----------
    n_bins : int, default 256
        Number of bins, at least 3.
    low, high : float, optional
        Range of the equal-width bins; fitted from quantiles when omitted.
    tail_margin : float, default 0.5
        How far beyond the fitted extremes the support reaches, in units of ``high_ - low_``.

    Examples
    --------
    >>> import numpy as np
    >>> q = UniformQuantizer(n_bins=6, low=-1.0, high=1.0).fit(np.array([-1.5, 0.0, 1.0]))
    >>> q.edges_.tolist()
    [-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    >>> q.encode(np.array([-2.0, 0.2])).tolist()
    [0, 3]
    """

    _param_names = ("n_bins", "low", "high", "tail_margin")
    _learned = ("low_", "high_")
    _hint = "refit on data that include them, or pass a larger tail_margin"

    def __init__(self, n_bins: int = 256, low: float | None = None, high: float | None = None,
                 tail_margin: float = 0.5) -> None:
        self.n_bins = n_bins
        self.low = low
        self.high = high
        self.tail_margin = tail_margin

    def fit(self, x: Any) -> Self:
        """Choose ``low_``, ``high_`` and the edges from ``x`` (all values pooled)."""
        if _number(self.tail_margin, "tail_margin") <= 0:
            raise DataError(f"tail_margin must be a positive number, got {self.tail_margin!r}")
        values = self._fit_values(x, 3).ravel()
        q_lo, q_hi = (float(q) for q in np.quantile(values, [0.0005, 0.9995]))
        pad = 0.1 * (q_hi - q_lo)
        low = q_lo - pad if self.low is None else _number(self.low, "low")
        high = q_hi + pad if self.high is None else _number(self.high, "high")
        if not low < high:
            raise DataError(f"need finite low < high, got low={low!r}, high={high!r}; when x is "
                            "(nearly) constant, pass low= and high= explicitly")
        margin = self.tail_margin * (high - low)
        inner = np.linspace(low, high, self.n_bins - 1)
        outer = (min(low, values.min()) - margin, max(high, values.max()) + margin)
        self.low_, self.high_ = np.asarray(low), np.asarray(high)
        self._set_grid(np.concatenate([[outer[0]], inner, [outer[1]]]), np.asarray(1.0))
        return self


class MuLawQuantizer(_Quantizer):
    """Bins equal in mu-law companded space (WaveNet, van den Oord et al. 2016).

    Values ``u = x / scale_`` in ``[-1, 1]`` are companded by :func:`mu_law_compand` and the
    companded interval is split into ``n_bins`` equal bins; ``edges_`` are their exact images
    in data units, ``scale_ * mu_law_expand(linspace(-1, 1, n_bins + 1))``: narrow near zero,
    wide in the tails. Unless given, ``scale_ = 1.1 * max(|x|)`` of the fitted data, so that
    the fitted data lie inside the support with a 10% margin.

    Parameters
    ----------
    n_bins : int, default 256
    mu : float, default 255
        Compression; larger means finer bins near zero.
    scale : float, optional
        Half-width of the support in data units; fitted when omitted.

    Examples
    --------
    >>> import numpy as np
    >>> q = MuLawQuantizer(n_bins=4, mu=3.0, scale=1.0).fit(np.array([0.5]))
    >>> q.edges_.tolist()
    [-1.0, -0.3333333333333333, 0.0, 0.3333333333333333, 1.0]
    """

    _param_names = ("n_bins", "mu", "scale")
    _learned = ("scale_",)
    _hint = "pass a larger scale= (or refit with scale=None on data that include them)"

    def __init__(self, n_bins: int = 256, mu: float = 255, scale: float | None = None) -> None:
        self.n_bins = n_bins
        self.mu = mu
        self.scale = scale

    def fit(self, x: Any) -> Self:
        """Choose ``scale_`` from ``x`` (all values pooled) unless ``scale`` was given."""
        if _number(self.mu, "mu") <= 0:
            raise DataError(f"mu must be a positive number, got {self.mu!r}")
        values = self._fit_values(x, 2)
        scale = 1.1 * np.abs(values).max() if self.scale is None else _number(self.scale, "scale")
        if not (np.isfinite(scale) and scale > 0):
            raise DataError(f"scale must be positive and finite, got {scale!r}; if x is all "
                            "zeros, pass scale= explicitly")
        self.scale_ = np.asarray(scale)
        grid = mu_law_expand(np.linspace(-1.0, 1.0, self.n_bins + 1), self.mu)
        self._set_grid(grid, self.scale_)
        return self


class MeanScaledQuantizer(_Quantizer):
    """Chronos' tokenizer (Ansari et al., 2024): mean scaling, then equal bins.

    ``scale_`` is the mean absolute value of the fitted context (one per column for 2-D input;
    1 for an all-zero context, as in Chronos). The scaled value ``x / scale_`` is binned into
    ``n_bins`` equal bins on ``[low, high]``, so in data units the edges are
    ``scale_ * linspace(low, high, n_bins + 1)`` and each width is ``(high - low) / n_bins *
    scale_``: the scale's Jacobian enters the density through the width.

    Parameters
    ----------
    n_bins : int, default 4094
    low, high : float, default -15, 15
        Range of the bins in units of ``scale_``.

    Examples
    --------
    >>> import numpy as np
    >>> q = MeanScaledQuantizer(n_bins=4, low=-2.0, high=2.0).fit(np.array([-1.0, 3.0]))
    >>> float(q.scale_), q.edges_.tolist()
    (2.0, [-4.0, -2.0, 0.0, 2.0, 4.0])
    """

    _param_names = ("n_bins", "low", "high")
    _learned = ("scale_",)
    _hint = "use a wider low/high"

    def __init__(self, n_bins: int = 4094, low: float = -15.0, high: float = 15.0) -> None:
        self.n_bins = n_bins
        self.low = low
        self.high = high

    def fit(self, x: Any) -> Self:
        """Set ``scale_ = mean(|x|)`` of the context ``x`` (per column when ``x`` is 2-D)."""
        if not _number(self.low, "low") < _number(self.high, "high"):
            raise DataError(f"need finite low < high, got low={self.low!r}, high={self.high!r}")
        values = self._fit_values(x, 1)
        if values.ndim not in (1, 2):
            raise DataError(f"x must be 1-D (one context) or 2-D (columns are contexts), got "
                            f"shape {values.shape}")
        scale = np.abs(values).mean(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self._set_grid(np.linspace(self.low, self.high, self.n_bins + 1), self.scale_)
        return self


_QUANTIZERS: dict[str, type[_Quantizer]] = {
    cls.__name__: cls for cls in (UniformQuantizer, MuLawQuantizer, MeanScaledQuantizer)
}


def quantizer_from_state_dict(d: dict[str, Any]) -> _Quantizer:
    """Rebuild whichever quantizer ``d`` (from ``state_dict()``) describes."""
    name = d.get("type") if isinstance(d, dict) else None
    if name not in _QUANTIZERS:
        raise DataError(f"state_dict type {name!r} is not a quantizer; expected one of "
                        f"{list(_QUANTIZERS)}")
    return _QUANTIZERS[name].from_state_dict(d)
