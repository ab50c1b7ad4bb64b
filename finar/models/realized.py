"""Realized GARCH(1,1), log-linear (Hansen, Huang & Shek 2012), with an exact likelihood.

.. math::

    r_t = \\mu + \\sqrt{h_t} z_t, \\quad z_t \\sim D(0, 1),

    \\log h_t = \\omega + \\beta \\log h_{t-1} + \\gamma \\log x_{t-1},

    \\log x_t = \\xi + \\varphi \\log h_t + \\tau_1 z_t + \\tau_2 (z_t^2 - 1) + u_t,
    \\quad u_t \\sim N(0, \\sigma_u^2),

with ``x_t > 0`` a realized measure of day ``t``'s variance, known at its close: the one
``exog`` column, e.g. the Parkinson range variance of :func:`finar.data.parkinson` in the
percent-squared units of the returns. ``D`` is arch's standardised normal or Student-t, as in
:class:`finar.models.GARCHX`. ``tau_1 z + tau_2 (z^2 - 1)`` is the leverage function: a
negative return raises the day's measure and so the next day's variance. Given the measures
``x_<t``, ``h_t`` is a known number: the variance is driven by the measure alone.

**Two likelihoods.** The parameters maximise the *joint* quasi-likelihood of ``(r_t, log x_t)``,
HHS's estimator:

.. math::

    \\ell_t = \\underbrace{\\log f_D\\left(\\frac{r_t - \\mu}{\\sqrt{h_t}}\\right)
              - \\tfrac12 \\log h_t}_{\\ln p(r_t \\mid r_{<t}, x_{<t})}
              - \\tfrac12 \\left(\\log 2\\pi + \\log \\sigma_u^2 + u_t^2 / \\sigma_u^2\\right),

the second part being the Gaussian density of ``log x_t`` given the day's return. ``log_prob``
is the contract's log score, the first part only: the one-step density of the return,
``ln p(r_t | r_<t, x_<t)``, on the information set of GARCH-X, so it compares with
:class:`finar.models.GARCH` and :class:`finar.models.GARCHX` nat for nat (backtests, ``compare``
and the anomaly detector read it). Each series' state keeps both sums at the fit:
``loglikelihood`` (the returns') and ``joint_loglikelihood``.

**Scenarios need no future covariates.** ``sample`` draws ``z_t`` and ``u_t`` together, so the
model generates its own measure on the simulated days (tag ``"simulates_exog"``): pass the
context's ``exog`` only. ``exog_future`` is refused with a DataError: the simulated measures are
the model's own draws, and a path cannot both follow given measures and draw them.

``log h`` is a first-order linear filter of ``log x`` (``scipy.signal.lfilter``), started from
``log h_0``, the log of arch's backcast of the squared residuals, and ``log x_0``, the same
backcast of ``log x``, both fixed at fit time so ``log_prob`` is causal on any series. SLSQP
maximises the joint likelihood from the best two of a few starts (each a moment regression of
``log x`` on the implied ``log h`` and ``z``) under ``|beta + phi gamma| < 1`` (the persistence
of ``log h``), ``sigma_u > 0`` and, for the t, ``nu > 2.05``.

Examples
--------
>>> import finar
>>> px = finar.load("sp500").loc["2010":"2014"]
>>> r = finar.returns(px["adj_close"])
>>> x = finar.data.parkinson(px).loc[r.index].to_frame()
>>> m = finar.models.RealizedGARCH(dist="t").fit(r, exog=x)
>>> m.states_[r.name]["params"]["names"][:4]
['mu', 'omega', 'beta', 'gamma']
>>> m.sample(r, horizon=250, n_paths=100, seed=0, exog=x).paths.shape  # no exog_future needed
(100, 250, 1)
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from arch.univariate.distribution import Distribution
from scipy import optimize, signal

from finar.errors import ConvergenceWarning, DataError, format_rows
from finar.models.base import UnivariateForecaster, check_returns, register
from finar.models.garchx import _backcast
from finar.models.predictive import STANDARD_DISTS

__all__ = ["RealizedGARCH"]

_NAMES = ["mu", "omega", "beta", "gamma", "xi", "phi", "tau1", "tau2", "sigma_u"]
_DISTS = ("normal", "t")
#: (beta, gamma) of the starting points; phi, xi, tau, sigma_u come from a regression at each
_STARTS = ((0.55, 0.40), (0.75, 0.20), (0.30, 0.60), (0.85, 0.12))
_PERSISTENCE_MAX = 1.0 - 1e-6


@register("realgarch")
class RealizedGARCH(UnivariateForecaster):
    """Log-linear Realized GARCH(1,1) with one realized measure ``x_t > 0`` (the ``exog`` column).

    Parameters
    ----------
    dist : {'normal', 't'}, default 't'
        The law of ``z_t``.

    Notes
    -----
    ``exog`` is required (tag ``"needs_exog"``): one column of ``x_t > 0`` known at the close of
    day ``t``. ``log_prob`` is the returns' one-step density only; the fit maximises the joint
    likelihood of returns and ``log x`` (see the module docstring). ``sample`` simulates the
    measure too, so it takes no ``exog_future``.

    Attributes
    ----------
    states_ : dict
        Per series: ``params`` (``names``, ``values``: ``mu, omega, beta, gamma, xi, phi, tau1,
        tau2, sigma_u, [nu]``), the starting values ``log_h0`` and ``log_x0``, and the training
        ``loglikelihood`` (returns) and ``joint_loglikelihood`` (returns and ``log x``).

    Examples
    --------
    >>> import finar
    >>> px = finar.load("sp500").loc["2012":"2014"]
    >>> r = finar.returns(px["adj_close"])
    >>> x = finar.data.parkinson(px).loc[r.index].to_frame()
    >>> m = finar.models.RealizedGARCH(dist="normal").fit(r, exog=x)
    >>> bool(m.log_prob(r, exog=x).notna().all())
    True
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "exog", "needs_exog", "simulates_exog"})
    min_fit_obs: ClassVar[int] = 100

    def __init__(self, dist: Literal["normal", "t"] = "t") -> None:
        self.dist = dist

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"dist": "t"}, {"dist": "normal"}]

    @property
    def min_context(self) -> int:
        return 0

    def _validate(self) -> None:
        if self.dist not in _DISTS:
            raise DataError(f"dist must be one of {list(_DISTS)}, got {self.dist!r}")

    @property
    def _z(self) -> Distribution:
        return STANDARD_DISTS[self.dist]()

    def _check_exog_values(self, frame: pd.DataFrame, what: str) -> None:
        if frame.shape[1] != 1:
            raise DataError(f"{what}: RealizedGARCH takes one realized measure, got {frame.shape[1]} "
                            f"columns {list(frame.columns)}; pass one, e.g. "
                            "finar.data.parkinson(px).loc[r.index].to_frame()")
        v = frame.iloc[:, 0].to_numpy(dtype=float)
        bad = ~(v > 0)  # NaN too
        if bad.any():
            raise DataError(
                f"{what}: the realized measure {frame.columns[0]!r} enters as log x and must be > 0, but "
                f"{int(bad.sum())} of {len(v)} rows are zero, negative or not finite: "
                f"{format_rows(frame.index[bad])}. A range variance is 0 on a day with high == low "
                "(no trading range: a holiday or stale quotes); drop those days from r and exog, "
                "or floor the measure (x.clip(lower=...))")

    # ---- the recursion and the two likelihoods -----------------------------------------------------
    @staticmethod
    def _log_h(theta: np.ndarray, lx: np.ndarray, log_h0: float, log_x0: float) -> np.ndarray:
        """``log h_t`` of each day ``(T,)``: the linear filter of the module docstring."""
        if len(lx) == 0:
            return np.zeros(0)
        omega, beta, gamma = theta[1], theta[2], theta[3]
        lx_lag = np.r_[log_x0, lx[:-1]]
        lh, _ = signal.lfilter([1.0], [1.0, -beta], omega + gamma * lx_lag, zi=[beta * log_h0])
        return lh

    def _parts(self, theta: np.ndarray, y: np.ndarray, lx: np.ndarray, log_h0: float,
               log_x0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The returns' log density, the measurement's (of ``log x_t``) and ``log h``, each ``(T,)``."""
        lh = self._log_h(theta, lx, log_h0, log_x0)
        eps = y - theta[0]
        dp = theta[9:]
        ll_r = np.asarray(self._z.loglikelihood(dp if len(dp) else None, eps, np.exp(lh), individual=True))
        xi, phi, tau1, tau2, sigma_u = theta[4:9]
        z = eps * np.exp(-lh / 2)
        u = lx - xi - phi * lh - tau1 * z - tau2 * (z * z - 1)
        ll_x = -0.5 * (np.log(2 * np.pi) + 2 * np.log(sigma_u) + (u / sigma_u) ** 2)
        return ll_r, ll_x, lh

    # ---- fitting ------------------------------------------------------------------------------
    def _start(self, beta: float, gamma: float, y: np.ndarray, lx: np.ndarray, log_h0: float,
               log_x0: float, sv_dist: np.ndarray) -> np.ndarray:
        """A starting point for ``(beta, gamma)``: ``omega`` scales ``z`` to unit variance, then
        ``xi, phi, tau1, tau2, sigma_u`` are the least squares of ``log x`` on ``1, log h, z, z^2 - 1``."""
        mu = float(y.mean())
        eps = y - mu
        lh = self._log_h(np.r_[mu, 0.0, beta, gamma], lx, log_h0, log_x0)
        shift = float(np.log(np.mean(eps**2 * np.exp(-lh))))
        lh = lh + shift
        z = eps * np.exp(-lh / 2)
        design = np.column_stack([np.ones_like(lh), lh, z, z * z - 1])
        coef, *_ = np.linalg.lstsq(design, lx, rcond=None)
        xi, phi, tau1, tau2 = (float(c) for c in coef)
        if gamma > 0 and abs(beta + phi * gamma) >= 0.99:  # keep the start inside the constraint
            phi = float(np.clip(phi, (-0.99 - beta) / gamma, (0.99 - beta) / gamma))
        sigma_u = max(float(np.std(lx - design @ np.r_[xi, phi, tau1, tau2])), 1e-2)
        return np.r_[mu, shift * (1 - beta), beta, gamma, xi, phi, tau1, tau2, sigma_u, sv_dist]

    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        self._validate()
        if x is None:
            raise DataError("RealizedGARCH needs its realized measure: pass exog=, one column of x_t > 0 "
                            "known at the close of day t, e.g. "
                            "finar.data.parkinson(px).loc[r.index].to_frame()")
        lx = np.log(x[:, 0])
        var = float(np.var(y))
        eps0 = y - y.mean()
        log_h0 = float(np.log(max(_backcast(eps0**2), 1e-8 * var)))
        log_x0 = _backcast(lx)
        dist = self._z
        sv_dist = np.asarray(dist.starting_values(eps0 / np.sqrt(var)), dtype=float)
        sd = np.sqrt(var)
        bounds = ([(-10 * sd, 10 * sd), (None, None), (0.0, 0.9999), (0.0, 10.0), (None, None),
                   (-10.0, 10.0), (-5.0, 5.0), (-5.0, 5.0), (1e-4, 10.0)]
                  + (list(dist.bounds(eps0)) if len(sv_dist) else []))
        constraints = [{"type": "ineq", "fun": lambda th: _PERSISTENCE_MAX - (th[2] + th[5] * th[3])},
                       {"type": "ineq", "fun": lambda th: _PERSISTENCE_MAX + (th[2] + th[5] * th[3])}]

        def nll(theta: np.ndarray) -> float:
            with np.errstate(all="ignore"):  # trial points that overflow score 1e10 below
                ll_r, ll_x, _ = self._parts(theta, y, lx, log_h0, log_x0)
            total = -float(np.sum(ll_r) + np.sum(ll_x))
            return total if np.isfinite(total) else 1e10

        with np.errstate(all="ignore"):
            starts = [self._start(b, g, y, lx, log_h0, log_x0, sv_dist) for b, g in _STARTS]
        lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
        hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
        starts = sorted((np.clip(s, lo, hi) for s in starts), key=nll)[:2]
        results = []
        for s in starts:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                results.append(optimize.minimize(nll, s, method="SLSQP", bounds=bounds,
                                                 constraints=constraints,
                                                 options={"maxiter": 1000, "ftol": 1e-10}))
        ok = [res for res in results if res.success] or results
        res = min(ok, key=lambda res: res.fun)
        if not res.success:
            warnings.warn(f"RealizedGARCH: the optimiser did not converge ({res.message})",
                          ConvergenceWarning, stacklevel=4)
        theta = np.asarray(res.x, dtype=float)
        ll_r, ll_x, _ = self._parts(theta, y, lx, log_h0, log_x0)
        return {"params": {"names": _NAMES + list(dist.parameter_names()), "values": theta.tolist()},
                "log_h0": log_h0, "log_x0": log_x0, "loglikelihood": float(np.sum(ll_r)),
                "joint_loglikelihood": float(np.sum(ll_r) + np.sum(ll_x))}

    # ---- the contract hooks ----------------------------------------------------------------------
    def _check_state_1d(self, state: dict[str, Any]) -> None:
        self._validate()
        n = len(_NAMES) + self._z.num_params
        values = state["params"]["values"]
        if len(values) != n or len(self.exog_columns_) != 1:
            raise ValueError(f"{len(values)} fitted parameters and covariates {self.exog_columns_} where "
                             f"dist={self.dist!r} has {n} parameters and one realized measure")
        float(state["log_h0"]), float(state["log_x0"])

    def _filtered(self, state: dict[str, Any], y: np.ndarray,
                  x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta = np.asarray(state["params"]["values"], dtype=float)
        lx = np.log(x[:, 0])
        return theta, lx, self._log_h(theta, lx, float(state["log_h0"]), float(state["log_x0"]))

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        theta, lx, _ = self._filtered(state, y, x)
        return self._parts(theta, y, lx, float(state["log_h0"]), float(state["log_x0"]))[0]

    def joint_loglikelihood(self, r: pd.Series | pd.DataFrame, *,
                            exog: pd.DataFrame | pd.Series) -> pd.Series:
        """``ln p(r_t, log x_t | r_<t, x_<t)`` of each day of one series, in nats: the fit's objective.

        Not a log score to compare with other models (it includes the density of ``log x_t``; see
        the module docstring). On the training series it sums to the state's ``joint_loglikelihood``.
        """
        self._check_fitted()
        frame = check_returns(r)
        if frame.shape[1] != 1:
            raise DataError(f"joint_loglikelihood takes one series, got {frame.shape[1]} columns")
        x = self._exog_array(exog, frame.index, "joint_loglikelihood")
        y = frame.iloc[:, 0].to_numpy(dtype=float)
        state = self._state_for(frame.columns[0], 1)
        theta, lx, _ = self._filtered(state, y, x)
        ll_r, ll_x, _ = self._parts(theta, y, lx, float(state["log_h0"]), float(state["log_x0"]))
        return pd.Series(ll_r + ll_x, index=frame.index, name=frame.columns[0])

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple[Any, ...]:
        theta, _, lh = self._filtered(state, y, x)
        return (np.full(len(y), theta[0]), np.exp(lh / 2), self.dist, tuple(theta[9:]))

    def conditional_volatility(self, r: pd.Series, *, exog: pd.DataFrame | pd.Series) -> pd.Series:
        """``sqrt(h_t)`` of each day given the days before it."""
        pred = self.predictive(r, exog=exog)
        return pd.Series(pred.std(), index=r.index, name=r.name)

    def _simulate(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray, horizon: int,
                  n_paths: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Returns and ``log x`` of the days after the context, each ``(n_paths, horizon)``."""
        theta, lx_context, lh = self._filtered(state, context, x_context)
        mu, omega, beta, gamma, xi, phi, tau1, tau2, sigma_u = theta[:9]
        z_dist, dpar = self._z, (theta[9:] if len(theta) > 9 else None)
        log_h = np.full(n_paths, omega + beta * lh[-1] + gamma * lx_context[-1])  # day 1 after the context
        r, lx = np.empty((n_paths, horizon)), np.empty((n_paths, horizon))
        for h in range(horizon):
            z = np.asarray(z_dist.ppf(np.clip(rng.random(n_paths), 1e-15, 1 - 1e-15), dpar))
            r[:, h] = mu + np.exp(log_h / 2) * z
            u = sigma_u * rng.standard_normal(n_paths)
            lx[:, h] = xi + phi * log_h + tau1 * z + tau2 * (z * z - 1) + u
            log_h = omega + beta * log_h + gamma * lx[:, h]
        return r, lx

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray:
        return self._simulate(state, context, x_context, horizon, n_paths, rng)[0]
