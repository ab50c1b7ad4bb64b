"""One-step predictive distributions in closed form, for models that have them.

``model.predictive(r)`` returns, for every day ``t`` of ``r``, the distribution of ``r_t`` given
``r_<t`` — the same conditional density that ``log_prob`` evaluates, but as an object with a
CDF (for PIT values), quantiles (VaR), tail expectations (ES) and exact sampling. Evaluation
uses it when present and falls back to the model's sample paths otherwise.

A location-scale family ``r_t = loc_t + scale_t z_t`` covers AR and GARCH: ``z_t`` follows a
standardised (zero-mean, unit-variance) normal, Student-t or Hansen skew-t, as in ``arch``,
whose distribution classes do the numerical work (``cdf``, ``ppf``, ``partial_moment``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.univariate.distribution import Distribution, Normal, SkewStudent, StudentsT

from finar.errors import DataError

__all__ = ["LocScalePredictive", "STANDARD_DISTS"]

STANDARD_DISTS: dict[str, type[Distribution]] = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}


@dataclass(frozen=True, eq=False)
class LocScalePredictive:
    """``r_t = loc_t + scale_t z_t`` with ``z_t`` i.i.d. from a standardised distribution.

    Parameters
    ----------
    index : Index
        The days the distributions are for.
    loc, scale : ndarray, shape (T,)
        Conditional mean and standard deviation; NaN on days without enough context.
    dist : {'normal', 't', 'skewt'}
        Standardised distribution of ``z`` (arch's parameterisation: ``t`` has ``nu``; ``skewt``
        has ``eta, lambda``).
    params : tuple of float
        Shape parameters of ``dist``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> p = LocScalePredictive(pd.RangeIndex(2), np.zeros(2), np.ones(2), "normal", ())
    >>> np.round(p.var(0.05), 3).tolist()
    [1.645, 1.645]
    """

    index: pd.Index
    loc: np.ndarray
    scale: np.ndarray
    dist: str
    params: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.dist not in STANDARD_DISTS:
            raise DataError(f"dist must be one of {sorted(STANDARD_DISTS)}, got {self.dist!r}")
        if not (len(self.index) == len(self.loc) == len(self.scale)):
            raise DataError("index, loc and scale must have one entry per day")

    @property
    def _z(self) -> Distribution:
        return STANDARD_DISTS[self.dist]()

    @property
    def _p(self) -> np.ndarray | None:
        return np.asarray(self.params, dtype=float) if self.params else None

    def __len__(self) -> int:
        return len(self.index)

    def take(self, positions: Sequence[int] | np.ndarray | slice) -> LocScalePredictive:
        """The distributions of a subset of days (by position)."""
        idx = np.arange(len(self))[positions]
        return LocScalePredictive(self.index[idx], self.loc[idx], self.scale[idx], self.dist, self.params)

    # ---- densities and probabilities ----------------------------------------------------
    def log_prob(self, y: np.ndarray) -> np.ndarray:
        """``log p(y_t)`` per day, with the ``-log scale_t`` Jacobian of the location-scale map."""
        z = (np.asarray(y, dtype=float) - self.loc) / self.scale
        ll = self._z.loglikelihood(self._p, z, np.ones_like(z), individual=True)
        return np.asarray(ll) - np.log(self.scale)

    def cdf(self, y: np.ndarray) -> np.ndarray:
        """``P(r_t <= y_t)`` per day: the PIT values of realised returns."""
        z = (np.asarray(y, dtype=float) - self.loc) / self.scale
        out = np.full(z.shape, np.nan)
        ok = np.isfinite(z)
        out[ok] = self._z.cdf(z[ok], self._p)
        return out

    def ppf(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles: ``q`` scalar -> (T,), or an array broadcastable to (..., T)."""
        qa = np.asarray(q, dtype=float)
        if ((qa <= 0) | (qa >= 1)).any():
            raise DataError(f"quantile levels must lie in (0, 1), got {q!r}")
        zq = np.asarray(self._z.ppf(qa.ravel(), self._p)).reshape(qa.shape)
        return self.loc + self.scale * zq

    def var(self, alpha: float) -> np.ndarray:
        """Value at risk at level ``alpha`` as a positive loss, ``-ppf(alpha)``."""
        return -self.ppf(alpha)

    def es(self, alpha: float) -> np.ndarray:
        """Expected shortfall as a positive loss, ``-E[r_t | r_t <= q_alpha]``, exact.

        ``E[z | z <= q] = partial_moment(1, q) / alpha`` for the standardised ``z``.
        """
        zq = float(np.asarray(self._z.ppf(np.array([alpha]), self._p))[0])
        tail_mean = float(self._z.partial_moment(1, zq, self._p)) / alpha
        return -(self.loc + self.scale * tail_mean)

    def mean(self) -> np.ndarray:
        return self.loc.copy()

    def std(self) -> np.ndarray:
        return self.scale.copy()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` exact draws per day by inversion, shape (n, T)."""
        u = rng.random((n, len(self)))
        u = np.clip(u, 1e-15, 1 - 1e-15)
        return self.ppf(u)
