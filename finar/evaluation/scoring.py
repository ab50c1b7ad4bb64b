"""Proper scoring rules for probabilistic forecasts, vectorised over days.

Every score is negatively oriented (lower is better) and in the units of the data, so on finar's
percent-scale returns a CRPS of 0.43 means 0.43 percentage points. The continuous ranked
probability score of a predictive CDF ``F`` at the outcome ``y`` is

.. math::

    \\mathrm{CRPS}(F, y) = \\int (F(x) - 1\\{x \\ge y\\})^2 dx
                        = E|X - y| - \\tfrac12 E|X - X'|, \\quad X, X' \\sim F \\text{ i.i.d.}

Closed forms are used where the distribution has one (normal, Student-t); otherwise the *fair*
ensemble estimator over draws (PROTOCOLS P1). scipy has no CRPS, so the formulas are written
by hand after Gneiting & Raftery (2007) and Jordan, Krüger & Lerch (2019, the ``scoringrules``
package), once, in :mod:`finar.models.predictive` (whose predictive distributions score
themselves exactly: :meth:`finar.models.predictive.Predictive.crps`); here they get pandas
alignment and input checks.

Inputs are numpy arrays (or scalars) or pandas Series; when a Series comes in, a Series with its
index comes out. NaN, infinite values and invalid parameters raise finar errors rather than
propagating as NaN scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from finar.errors import DataError, NonFiniteValueError, format_rows
from finar.models.predictive import normal_crps, t_crps

__all__ = ["crps_normal", "crps_t", "crps_std_t", "crps_ensemble", "pit_from_samples",
           "quantile_loss", "interval_score"]

ArrayLike = Any  # float, np.ndarray or pd.Series
Score = float | np.ndarray | pd.Series


# --- input handling -------------------------------------------------------------------------

def _labels(mask: np.ndarray, index: pd.Index | None) -> str:
    """Name the offending entries: index labels for 1-D pandas input, positions otherwise."""
    if index is not None and mask.ndim == 1 and len(index) == mask.size:
        return format_rows(index[mask])
    if mask.ndim == 0:
        return "the scalar value"
    return "position(s) " + format_rows([tuple(int(i) for i in p) if len(p) > 1 else int(p[0])
                                         for p in np.argwhere(mask)])


def _to_array(name: str, value: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        index = value.index if isinstance(value, pd.Series | pd.DataFrame) else None
        raise NonFiniteValueError(f"{name} has NaN or infinite values at {_labels(bad, index)}; "
                                  "scores are only defined for finite inputs, drop those days first")
    return arr


def _common_index(named: dict[str, ArrayLike]) -> pd.Index | None:
    """The index shared by every pandas argument (None if none is pandas); refuse disagreement."""
    index, owner = None, ""
    for name, value in named.items():
        if isinstance(value, pd.Series):
            if index is None:
                index, owner = value.index, name
            elif not value.index.equals(index):
                raise DataError(f"{name} and {owner} have different indexes; align them first, "
                                f"e.g. {name}.reindex({owner}.index)")
    return index


def _prepare(**named: ArrayLike) -> tuple[list[np.ndarray], pd.Index | None]:
    index = _common_index(named)
    arrays = [_to_array(name, value) for name, value in named.items()]
    try:
        arrays = list(np.broadcast_arrays(*arrays))
    except ValueError as exc:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(named, arrays, strict=True))
        raise DataError(f"shapes do not broadcast: {shapes}") from exc
    return arrays, index


def _check_above(name: str, arr: np.ndarray, bound: float, index: pd.Index | None,
                 hint: str) -> None:
    bad = arr <= bound
    if bad.any():
        raise DataError(f"{name} must be > {bound:g}, got {arr[bad].flat[0]:g} at "
                        f"{_labels(bad, index)}; {hint}")


def _check_level(alpha: ArrayLike) -> np.ndarray:
    a = _to_array("alpha", alpha)
    bad = (a <= 0) | (a >= 1)
    if bad.any():
        raise DataError(f"alpha must lie strictly between 0 and 1, got {a[bad].flat[0]:g}")
    return a


def _wrap(values: np.ndarray, index: pd.Index | None, name: str) -> Score:
    if values.ndim == 0:
        return float(values)
    if index is not None and values.shape == (len(index),):
        return pd.Series(values, index=index, name=name)
    return values


# --- closed forms ---------------------------------------------------------------------------

def crps_normal(y: ArrayLike, loc: ArrayLike, scale: ArrayLike) -> Score:
    """CRPS of the normal distribution ``N(loc, scale^2)`` in closed form.

    .. math::

        \\mathrm{CRPS} = \\sigma \\left[z (2\\Phi(z) - 1) + 2\\varphi(z) - 1/\\sqrt{\\pi}\\right],
        \\quad z = (y - \\mu) / \\sigma

    (Gneiting & Raftery 2007, eq. 20).

    Parameters
    ----------
    y : array_like or pd.Series
        Outcomes.
    loc, scale : array_like or pd.Series
        Mean and standard deviation (``scale > 0``), broadcast against ``y``.

    Returns
    -------
    float, np.ndarray or pd.Series
        One score per day.

    Examples
    --------
    >>> round(crps_normal(0.0, 0.0, 1.0), 6)
    0.233695
    """
    (y, loc, scale), index = _prepare(y=y, loc=loc, scale=scale)
    _check_above("scale", scale, 0.0, index, "the predictive standard deviation must be positive")
    return _wrap(scale * normal_crps((y - loc) / scale), index, "crps")


def crps_t(y: ArrayLike, loc: ArrayLike, scale: ArrayLike, df: ArrayLike) -> Score:
    """CRPS of the location-scale Student-t ``loc + scale * T_df`` in closed form (``df > 1``).

    With ``z = (y - loc) / scale`` and ``F``, ``f`` the CDF and density of the standard t with
    ``nu = df`` degrees of freedom (Jordan, Krüger & Lerch 2019):

    .. math::

        \\mathrm{CRPS} = s \\left[ z(2F(z) - 1) + 2 f(z) \\frac{\\nu + z^2}{\\nu - 1}
            - \\frac{2\\sqrt{\\nu}\\, B(\\tfrac12, \\nu - \\tfrac12)}
                   {(\\nu - 1)\\, B(\\tfrac12, \\tfrac\\nu2)^2} \\right]

    ``scale`` is the t scale, not the standard deviation; for arch's unit-variance
    parameterisation use :func:`crps_std_t`. The CRPS is infinite for ``df <= 1`` (no mean).

    Examples
    --------
    >>> round(crps_t(0.0, 0.0, 1.0, 5.0), 6)
    0.257025
    """
    (y, loc, scale, df), index = _prepare(y=y, loc=loc, scale=scale, df=df)
    _check_above("scale", scale, 0.0, index, "the t scale must be positive")
    _check_above("df", df, 1.0, index, "the CRPS of a t with df <= 1 is infinite")
    return _wrap(scale * t_crps((y - loc) / scale, df), index, "crps")


def crps_std_t(y: ArrayLike, loc: ArrayLike, sigma: ArrayLike, nu: ArrayLike) -> Score:
    """CRPS of the *standardised* Student-t used by ``arch`` (``nu > 2``).

    arch's Student-t innovations have unit variance, so a forecast with conditional volatility
    ``sigma`` is a t with scale ``s = sigma * sqrt((nu - 2) / nu)``; this is
    ``crps_t(y, loc, s, nu)``.

    Parameters
    ----------
    y : array_like or pd.Series
        Outcomes.
    loc : array_like or pd.Series
        Conditional mean.
    sigma : array_like or pd.Series
        Conditional standard deviation (``> 0``), e.g. arch's ``conditional_volatility``.
    nu : array_like or pd.Series
        Degrees of freedom (``> 2``, so that the variance exists).

    Examples
    --------
    >>> round(crps_std_t(0.0, 0.0, 1.0, 5.0), 6) == round(crps_t(0.0, 0.0, (3 / 5) ** 0.5, 5.0), 6)
    True
    """
    (_, _, sigma_a, nu_a), index = _prepare(y=y, loc=loc, sigma=sigma, nu=nu)
    _check_above("sigma", sigma_a, 0.0, index, "the conditional volatility must be positive")
    _check_above("nu", nu_a, 2.0, index, "the standardised t needs nu > 2 (finite variance)")
    scale = sigma_a * np.sqrt((nu_a - 2) / nu_a)
    if index is not None and scale.ndim == 1 and scale.shape == (len(index),):
        scale = pd.Series(scale, index=index)
    return crps_t(y, loc, scale, nu)


# --- ensembles ------------------------------------------------------------------------------

def _prepare_ensemble(samples: ArrayLike, y: ArrayLike,
                      axis: int) -> tuple[np.ndarray, np.ndarray, pd.Index | None]:
    """Samples moved to the last axis, y broadcast to the remaining shape, the output index."""
    index = None
    if isinstance(samples, pd.DataFrame) and axis in (-1, 1, -2, 0):
        index = samples.index if axis in (-1, 1) else samples.columns
    if isinstance(y, pd.Series):
        if index is not None and not y.index.equals(index):
            raise DataError("y and the days of samples have different indexes; align them first")
        index = y.index
    x = _to_array("samples", samples)
    if x.ndim == 0:
        raise DataError("samples must have a sample axis; got a scalar")
    x = np.moveaxis(x, axis, -1)
    yv = _to_array("y", y)
    try:
        yv = np.broadcast_to(yv, x.shape[:-1])
    except ValueError as exc:
        raise DataError(f"y of shape {yv.shape} does not match samples of shape {x.shape[:-1]} "
                        f"(days) x {x.shape[-1]} (draws on axis {axis})") from exc
    return x, yv, index


def crps_ensemble(samples: ArrayLike, y: ArrayLike, axis: int = -1) -> Score:
    """Fair (unbiased) CRPS estimator from ``m`` draws of the predictive distribution.

    .. math::

        \\widehat{\\mathrm{CRPS}} = \\frac1m \\sum_i |X_i - y|
            - \\frac{1}{2m(m-1)} \\sum_{i \\ne j} |X_i - X_j|

    This is the only ensemble CRPS in finar. Its expectation over the draws is exactly the CRPS
    of the distribution they come from, for any ``m >= 2``. The plain "energy" form, which
    divides the pair sum by ``2 m^2``, overstates the CRPS by ``E|X - X'| / (2m)`` on average,
    which penalises small ensembles and makes models sampled with different ``m`` incomparable
    (PROTOCOLS P1).

    With the draws sorted, ``sum_{i != j} |X_i - X_j| = 2 sum_k (2k - m - 1) X_(k)``, so the cost
    is ``O(m log m)`` per day and no ``m x m`` array is formed.

    Parameters
    ----------
    samples : array_like or pd.DataFrame
        Draws, with the draws along ``axis`` (a DataFrame: one row per day by default).
    y : array_like or pd.Series
        Outcomes, broadcast against ``samples`` without its sample axis.
    axis : int, default -1
        Axis of ``samples`` holding the draws (``axis=0`` for ``Scenarios.paths``).

    Returns
    -------
    float, np.ndarray or pd.Series
        One score per day.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((2000, 1000))
    >>> s = crps_ensemble(x, np.zeros(2000))
    >>> bool(abs(s.mean() - crps_normal(0.0, 0.0, 1.0)) < 0.01)
    True
    """
    x, yv, index = _prepare_ensemble(samples, y, axis)
    m = x.shape[-1]
    if m < 2:
        raise DataError(f"the fair CRPS estimator needs at least 2 draws per day, got {m}")
    x = np.sort(x, axis=-1)
    abs_error = np.mean(np.abs(x - yv[..., None]), axis=-1)
    weights = 2.0 * np.arange(1, m + 1) - m - 1
    spread = (x @ weights) / (m * (m - 1))  # = sum_{i != j} |X_i - X_j| / (2 m (m - 1))
    return _wrap(abs_error - spread, index, "crps")


def pit_from_samples(samples: ArrayLike, y: ArrayLike, axis: int = -1,
                     rng: np.random.Generator | int | None = None) -> Score:
    """Probability integral transform from draws: the fraction of draws ``<= y``.

    .. math::

        \\mathrm{PIT} = \\frac1m \\#\\{i : X_i < y\\} + \\frac{V}{m} \\#\\{i : X_i = y\\}

    with ``V = 1`` by default and ``V ~ U(0, 1)`` when ``rng`` is given, which randomises ties
    (Czado, Gneiting & Held 2009) for discrete or quantized forecasts. For a calibrated forecast
    the values are uniform on ``{0, 1/m, ..., 1}``; with ``m >= 1000`` that is uniform in
    practice.

    Parameters
    ----------
    samples, y, axis
        As in :func:`crps_ensemble`.
    rng : numpy Generator or int, optional
        Source (or seed) of the tie randomisation; ``None`` counts ties as ``<= y``.

    Examples
    --------
    >>> float(pit_from_samples(np.array([0.0, 1.0, 1.0, 3.0]), 1.0))
    0.75
    >>> bool(0.25 <= pit_from_samples(np.array([0.0, 1.0, 1.0, 3.0]), 1.0, rng=0) <= 0.75)
    True
    """
    x, yv, index = _prepare_ensemble(samples, y, axis)
    m = x.shape[-1]
    if m < 1:
        raise DataError("samples has no draws")
    below = np.sum(x < yv[..., None], axis=-1)
    ties = np.sum(x == yv[..., None], axis=-1)
    v = 1.0 if rng is None else np.random.default_rng(rng).uniform(size=below.shape)
    return _wrap((below + v * ties) / m, index, "pit")


# --- quantiles and intervals ----------------------------------------------------------------

def quantile_loss(y: ArrayLike, q_pred: ArrayLike, alpha: ArrayLike) -> Score:
    """Pinball (quantile) loss of a predicted ``alpha``-quantile, e.g. a VaR forecast.

    .. math::

        L_\\alpha(q, y) = (1\\{y < q\\} - \\alpha)(q - y)

    Its expectation is minimised by the true ``alpha``-quantile.

    Examples
    --------
    >>> float(quantile_loss(-3.0, -2.0, 0.05))  # a VaR breach costs (1 - alpha) per unit
    0.95
    """
    (y, q, _), index = _prepare(y=y, q_pred=q_pred, alpha=alpha)
    a = _check_level(alpha)
    return _wrap(((y < q) - a) * (q - y), index, "quantile_loss")


def interval_score(y: ArrayLike, lower: ArrayLike, upper: ArrayLike, alpha: ArrayLike) -> Score:
    """Interval score of a central ``(1 - alpha)`` prediction interval (Gneiting & Raftery 2007).

    .. math::

        S_\\alpha(l, u, y) = (u - l) + \\frac2\\alpha (l - y) 1\\{y < l\\}
                                    + \\frac2\\alpha (y - u) 1\\{y > u\\}

    Examples
    --------
    >>> float(interval_score(3.0, -2.0, 2.0, 0.1))
    24.0
    """
    (y, lo, hi, _), index = _prepare(y=y, lower=lower, upper=upper, alpha=alpha)
    a = _check_level(alpha)
    bad = lo > hi
    if bad.any():
        raise DataError(f"lower > upper at {_labels(bad, index)}; pass the interval's ends in order")
    out = (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi)
    return _wrap(out, index, "interval_score")
