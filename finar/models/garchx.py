"""GARCH-X and GJR-GARCH-X: covariates in the variance equation, with an exact likelihood.

.. math::

    r_t = \\mu + \\varepsilon_t, \\quad \\varepsilon_t = \\sigma_t z_t, \\quad z_t \\sim D(0, 1),

    \\sigma^2_t = \\omega + (\\alpha + \\gamma 1[\\varepsilon_{t-1} < 0]) \\varepsilon^2_{t-1}
                 + \\beta \\sigma^2_{t-1} + \\delta^\\top x_{t-1}

with ``x_{t-1} >= 0`` covariates known at the close of day ``t-1`` (e.g. the Parkinson range
variance of :func:`finar.data.parkinson`, in the percent-squared units of the returns) and
``delta >= 0``; ``gamma = 0`` for GARCH-X. ``D`` is arch's standardised normal, Student-t or
Hansen skew-t, so log scores are in the same currency as :class:`finar.models.GARCH`.

``arch`` has no regressors in the variance equation, so the recursion and the optimiser are
finar's: the variance is a first-order linear filter of known inputs,
``sigma^2_t = beta sigma^2_{t-1} + u_t`` with ``u_t = omega + (alpha + gamma I_{t-1}) eps^2_{t-1}
+ delta' x_{t-1}`` (``scipy.signal.lfilter``), started like arch from the backcast of the
squared residuals (and of ``x``), fixed at fit time so ``log_prob`` is causal on any series.
With ``delta = 0`` the likelihood equals arch's GARCH/GJR-GARCH at the same parameters (tested).
Parameters maximise the likelihood by SLSQP under ``omega > 0``, ``alpha, gamma, beta, delta >= 0``
and ``alpha + gamma / 2 + beta < 1``.

Examples
--------
>>> import finar
>>> px = finar.load("sp500").loc["2010":"2014"]
>>> r = finar.returns(px["adj_close"])
>>> x = finar.data.parkinson(px).loc[r.index].to_frame()
>>> m = finar.models.GARCHX(vol="gjr", dist="t").fit(r, exog=x)
>>> m.states_[r.name]["params"]["names"][:3]
['mu', 'omega', 'alpha']
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from arch.univariate.distribution import Distribution
from scipy import optimize, signal

from finar.errors import ConvergenceWarning, DataError
from finar.models.base import UnivariateForecaster, register
from finar.models.predictive import STANDARD_DISTS

__all__ = ["GARCHX"]

_BACKCAST_OBS, _BACKCAST_DECAY = 75, 0.94  # arch's backcast: EWMA weights on the first 75 values


def _backcast(v: np.ndarray) -> float:
    """arch's backcast: ``sum_i w_i v_i`` over the first 75 values, ``w_i`` proportional to 0.94^i."""
    tau = min(_BACKCAST_OBS, len(v))
    w = _BACKCAST_DECAY ** np.arange(tau)
    return float(np.sum(v[:tau] * w / w.sum()))


@register("garchx")
class GARCHX(UnivariateForecaster):
    """GARCH(1,1)-X or GJR-GARCH(1,1,1)-X with non-negative covariates in the variance.

    Parameters
    ----------
    vol : {'garch', 'gjr'}, default 'gjr'
    dist : {'normal', 't', 'skewt'}, default 't'

    Notes
    -----
    Without ``exog`` the model is the plain (GJR-)GARCH(1,1) with a constant mean, fitted by
    finar's optimiser.

    Attributes
    ----------
    states_ : dict
        Per series: ``params`` (``names``, ``values``: ``mu, omega, alpha, [gamma], beta,
        delta_<col>..., <dist params>``), the backcasts and the training log-likelihood.
    """

    min_fit_obs: ClassVar[int] = 100

    def __init__(self, vol: Literal["garch", "gjr"] = "gjr",
                 dist: Literal["normal", "t", "skewt"] = "t") -> None:
        self.vol = vol
        self.dist = dist

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"vol": "gjr", "dist": "t"}, {"vol": "garch", "dist": "normal"}]

    @property
    def min_context(self) -> int:
        return 0

    def _validate(self) -> None:
        if self.vol not in ("garch", "gjr"):
            raise DataError(f"vol must be 'garch' or 'gjr', got {self.vol!r}")
        if self.dist not in STANDARD_DISTS:
            raise DataError(f"dist must be one of {sorted(STANDARD_DISTS)}, got {self.dist!r}")

    @property
    def _z(self) -> Distribution:
        return STANDARD_DISTS[self.dist]()

    # ---- the variance recursion -----------------------------------------------------------------
    def _unpack(self, theta: np.ndarray, k: int) -> tuple[float, float, float, float, float, np.ndarray,
                                                          np.ndarray]:
        mu, omega, alpha = theta[0], theta[1], theta[2]
        i = 3
        gamma = 0.0
        if self.vol == "gjr":
            gamma, i = theta[3], 4
        beta = theta[i]
        delta = theta[i + 1:i + 1 + k]
        return mu, omega, alpha, gamma, beta, delta, theta[i + 1 + k:]

    def _sigma2(self, theta: np.ndarray, y: np.ndarray, x: np.ndarray | None, backcast: float,
                x_backcast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals and conditional variances ``(T,)``: the linear filter of the module docstring."""
        k = 0 if x is None else x.shape[1]
        mu, omega, alpha, gamma, beta, delta, _ = self._unpack(theta, k)
        eps = y - mu
        if len(eps) == 0:  # no day: nothing to filter (the backcast row below would be one too many)
            return eps, np.zeros(0)
        eps2_lag = np.r_[backcast, eps[:-1] ** 2]
        neg_lag = np.r_[0.5, (eps[:-1] < 0).astype(float)]  # arch: the backcast counts half as negative
        u = omega + (alpha + gamma * neg_lag) * eps2_lag
        if k:
            x_lag = np.vstack([x_backcast[None, :], x[:-1]])
            u = u + x_lag @ delta
        sigma2, _ = signal.lfilter([1.0], [1.0, -beta], u, zi=[beta * backcast])
        return eps, sigma2

    def _loglik(self, theta: np.ndarray, y: np.ndarray, x: np.ndarray | None, backcast: float,
                x_backcast: np.ndarray) -> np.ndarray:
        k = 0 if x is None else x.shape[1]
        eps, sigma2 = self._sigma2(theta, y, x, backcast, x_backcast)
        dist_params = self._unpack(theta, k)[-1]
        return np.asarray(self._z.loglikelihood(dist_params if len(dist_params) else None, eps,
                                                sigma2, individual=True))

    # ---- fitting ------------------------------------------------------------------------------
    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        self._validate()
        k = 0 if x is None else x.shape[1]
        if k and (x < 0).any():
            raise DataError("GARCHX covariates enter the variance and must be >= 0 (e.g. a range "
                            "variance from finar.data.parkinson); got negative values")
        var = float(np.var(y))
        eps0 = y - y.mean()
        backcast = _backcast(eps0**2)
        x_backcast = np.array([_backcast(x[:, j]) for j in range(k)]) if k else np.zeros(0)
        x_scale = np.maximum(x.mean(axis=0), 1e-12) if k else np.zeros(0)
        dist = self._z
        sv_dist = np.asarray(dist.starting_values(eps0 / np.sqrt(var)), dtype=float)
        bounds_dist = list(dist.bounds(eps0)) if len(sv_dist) else []
        asym = self.vol == "gjr"

        def theta_of(mu: float, omega: float, alpha: float, gamma: float, beta: float,
                     delta: np.ndarray) -> np.ndarray:
            return np.r_[mu, omega, alpha, [gamma] if asym else [], beta, delta, sv_dist]

        names = (["mu", "omega", "alpha"] + (["gamma"] if asym else []) + ["beta"]
                 + [f"delta[{j}]" for j in range(k)] + list(dist.parameter_names()))
        bounds = ([(-10 * np.sqrt(var), 10 * np.sqrt(var)), (1e-8 * var, 10 * var), (0.0, 1.0)]
                  + ([(0.0, 2.0)] if asym else []) + [(0.0, 1.0)] + [(0.0, 10 * var / s) for s in x_scale]
                  + bounds_dist)
        ia, ib = 2, 4 if asym else 3

        def persistence(theta: np.ndarray) -> float:
            return 1.0 - 1e-6 - theta[ia] - (theta[3] / 2 if asym else 0.0) - theta[ib]

        def nll(theta: np.ndarray) -> float:
            with np.errstate(all="ignore"):  # trial points with sigma2 <= 0 score 1e10 below
                ll = self._loglik(theta, y, x, backcast, x_backcast)
            total = -float(np.sum(ll))
            return total if np.isfinite(total) else 1e10

        # starting values: a small grid over the share of variance the covariates explain
        starts = []
        for share in ((0.0, 0.3, 0.6) if k else (0.0,)):
            beta = 0.88 * (1 - share)
            alpha, gamma = (0.02, 0.08) if asym else (0.08, 0.0)
            delta = share * 0.5 / np.maximum(x_scale, 1e-12) * var if k else np.zeros(0)
            if k:
                delta = share * (1 - beta - alpha - gamma / 2) / x_scale * var / max(k, 1)
            omega = max(var * (1 - alpha - gamma / 2 - beta) - float(delta @ x_scale if k else 0.0),
                        0.01 * var)
            starts.append(theta_of(float(y.mean()), omega, alpha, gamma, beta, delta))
        best = min(starts, key=nll)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(nll, best, method="SLSQP", bounds=bounds,
                                    constraints=[{"type": "ineq", "fun": persistence}],
                                    options={"maxiter": 500, "ftol": 1e-10})
        if not res.success:
            warnings.warn(f"GARCHX: the optimiser did not converge ({res.message})", ConvergenceWarning,
                          stacklevel=4)
        theta = np.asarray(res.x, dtype=float)
        return {"params": {"names": names, "values": theta.tolist()}, "backcast": backcast,
                "x_backcast": x_backcast.tolist(), "n_exog": k, "loglikelihood": -float(res.fun)}

    # ---- the contract hooks ----------------------------------------------------------------------
    def _check_state_1d(self, state: dict[str, Any]) -> None:
        self._validate()
        k = len(self.exog_columns_)
        n = 4 + (self.vol == "gjr") + k + self._z.num_params
        values = state["params"]["values"]
        if len(values) != n or int(state["n_exog"]) != k or len(state["x_backcast"]) != k:
            raise ValueError(f"{len(values)} fitted parameters and {state['n_exog']} covariates where "
                             f"vol={self.vol!r}, dist={self.dist!r} and {k} covariates have {n}")
        float(state["backcast"])

    def _filtered(self, state: dict[str, Any], y: np.ndarray,
                  x: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta = np.asarray(state["params"]["values"], dtype=float)
        x_backcast = np.asarray(state["x_backcast"], dtype=float)
        eps, sigma2 = self._sigma2(theta, y, x, state["backcast"], x_backcast)
        return theta, eps, sigma2

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        theta = np.asarray(state["params"]["values"], dtype=float)
        return self._loglik(theta, y, x, state["backcast"], np.asarray(state["x_backcast"], dtype=float))

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple[Any, ...]:
        theta, _, sigma2 = self._filtered(state, y, x)
        k = int(state["n_exog"])
        return (np.full(len(y), theta[0]), np.sqrt(sigma2), self.dist, tuple(self._unpack(theta, k)[-1]))

    def conditional_volatility(self, r: pd.Series, *, exog: pd.DataFrame | None = None) -> pd.Series:
        """``sigma_t`` of each day given the days before it."""
        pred = self.predictive(r, exog=exog)
        return pd.Series(pred.std(), index=r.index, name=r.name)

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray:
        theta, eps, sigma2 = self._filtered(state, context, x_context)
        k = int(state["n_exog"])
        mu, omega, alpha, gamma, beta, delta, dp = self._unpack(theta, k)
        z_dist, dpar = self._z, (dp if len(dp) else None)
        # day 1 after the context: its variance uses the last context day (and its covariates)
        e_last = np.full(n_paths, eps[-1])
        s2 = np.full(n_paths, sigma2[-1])
        out = np.empty((n_paths, horizon))
        for h in range(horizon):
            x_prev = (x_context[-1] if h == 0 else x_future[h - 1]) if k else None
            s2 = omega + (alpha + gamma * (e_last < 0)) * e_last**2 + beta * s2
            if k:
                s2 = s2 + float(x_prev @ delta)
            u = np.clip(rng.random(n_paths), 1e-15, 1 - 1e-15)
            e_last = np.sqrt(s2) * np.asarray(z_dist.ppf(u, dpar))
            out[:, h] = mu + e_last
        return out
