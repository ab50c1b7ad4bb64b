"""AR(p) forecaster over statsmodels' ``AutoReg``, with optional covariates.

.. math::

    r_t = c + \\sum_{i=1}^{p} \\phi_i r_{t-i} + \\beta^\\top x_{t-1} + \\varepsilon_t, \\qquad
    \\varepsilon_t \\sim N(0, \\sigma^2)

where ``x_{t-1}`` (the ``exog`` row of day ``t - 1``, known at its close) is present only when the
model is fitted with ``exog``. Fitted by conditional least squares (= conditional Gaussian maximum
likelihood; ``AutoReg(exog=...)`` with the covariates lagged one day), so the sum of ``log_prob``
over observations ``k+1 .. n`` equals statsmodels' ``AutoRegResults.llf``, ``k = p`` without
covariates and ``max(p, 1)`` with them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats
from statsmodels.tsa.ar_model import AutoReg, ar_select_order

from finar.errors import DataError
from finar.models.base import UnivariateForecaster, register

__all__ = ["AR"]


@register("ar")
class AR(UnivariateForecaster):
    """Autoregressive model of order ``p`` with Gaussian innovations.

    Parameters
    ----------
    order : int or {'aic', 'bic'}, default 'aic'
        Fixed order ``p``, or chosen by an information criterion over ``0 .. max_order``.
    max_order : int, default 10
        Largest order considered by ``'aic'``/``'bic'``.
    trend : {'c', 'n'}, default 'c'
        With (``'c'``) or without (``'n'``) an intercept.
    innovations : {'gaussian', 'bootstrap'}, default 'gaussian'
        How ``sample`` draws shocks: ``N(0, sigma2)``, or resampled fitted residuals.
        ``log_prob`` is always the Gaussian density the model was fitted with.

    Notes
    -----
    Covariates (``fit(r, exog=x)``) enter the mean of the next day: ``beta' x_{t-1}``; ``sample``
    then takes the context's ``exog`` and ``exog_future`` rows for the simulated days 2..horizon.

    Attributes
    ----------
    states_ : dict
        Per series: ``order``, ``const``, ``coefs`` (phi_1..phi_p), ``exog_coefs`` (beta, empty
        without covariates), ``sigma2`` (MLE ``ssr/nobs``) and, for bootstrap, ``resid``.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"])
    >>> m = finar.models.AR(order=2).fit(r)
    >>> float(m.log_prob(r).sum()) < 0
    True
    """

    min_fit_obs = 30

    def __init__(self, order: int | Literal["aic", "bic"] = "aic", max_order: int = 10,
                 trend: Literal["c", "n"] = "c",
                 innovations: Literal["gaussian", "bootstrap"] = "gaussian") -> None:
        self.order = order
        self.max_order = max_order
        self.trend = trend
        self.innovations = innovations

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"order": 2}, {"order": "bic", "max_order": 3, "innovations": "bootstrap"},
                {"order": 0, "trend": "n"}]

    def _validate(self) -> None:
        if isinstance(self.order, str):
            if self.order not in ("aic", "bic"):
                raise DataError(f"order must be an integer >= 0, 'aic' or 'bic', got {self.order!r}")
        elif int(self.order) != self.order or self.order < 0:
            raise DataError(f"order must be an integer >= 0, 'aic' or 'bic', got {self.order!r}")
        if int(self.max_order) != self.max_order or self.max_order < 0:
            raise DataError(f"max_order must be an integer >= 0, got {self.max_order!r}")
        if self.trend not in ("c", "n"):
            raise DataError(f"trend must be 'c' or 'n', got {self.trend!r}")
        if self.innovations not in ("gaussian", "bootstrap"):
            raise DataError(f"innovations must be 'gaussian' or 'bootstrap', got {self.innovations!r}")

    @property
    def min_context(self) -> int:
        """``p``, or ``max(p, 1)`` with covariates (day ``t`` needs the ``exog`` row of ``t - 1``)."""
        least = 1 if getattr(self, "exog_columns_", None) else 0
        if hasattr(self, "states_"):
            return max(least, *(int(s["order"]) for s in self.states_.values()))
        return max(least, int(self.max_order if isinstance(self.order, str) else self.order))

    @property
    def memory(self) -> int:
        """An AR(p) day depends on the ``p`` days before it only."""
        return self.min_context

    def _check_state_1d(self, state: dict[str, Any]) -> None:
        self._validate()
        p = int(state["order"])
        chosen = isinstance(self.order, str)  # by aic/bic: any order up to max_order
        if not (0 <= p <= int(self.max_order) if chosen else p == int(self.order)):
            raise ValueError(f"fitted order {p} does not agree with order={self.order!r}, "
                             f"max_order={self.max_order!r}")
        if len(state["coefs"]) != p or len(state["exog_coefs"]) != len(self.exog_columns_):
            raise ValueError(f"{len(state['coefs'])} AR and {len(state['exog_coefs'])} covariate "
                             f"coefficients for order {p} and {len(self.exog_columns_)} covariates")
        if not float(state["sigma2"]) > 0:
            raise ValueError(f"innovation variance {state['sigma2']!r} is not positive")
        if self.innovations == "bootstrap" and not len(state["resid"]):
            raise ValueError("innovations='bootstrap' but the file has no residuals")

    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        self._validate()
        # covariates lagged one day: row t holds x_{t-1}; row 0 (no x_{-1}) is held back
        xl = None if x is None else np.vstack([np.zeros((1, x.shape[1])), x[:-1]])
        if isinstance(self.order, str):
            kw = {} if xl is None else {"exog": xl, "hold_back": max(int(self.max_order), 1)}
            sel = ar_select_order(y, maxlag=int(self.max_order), ic=self.order, trend=self.trend, **kw)
            p = max(sel.ar_lags) if sel.ar_lags else 0
        else:
            p = int(self.order)
        kw = {} if xl is None else {"exog": xl, "hold_back": max(p, 1)}
        res = AutoReg(y, lags=p, trend=self.trend, **kw).fit()
        params = np.asarray(res.params, dtype=float)
        n_trend = 1 if self.trend == "c" else 0
        const = float(params[0]) if n_trend else 0.0
        state: dict[str, Any] = {"order": p, "const": const, "coefs": params[n_trend:n_trend + p].tolist(),
                                 "exog_coefs": params[n_trend + p:].tolist(),
                                 "sigma2": float(res.sigma2), "llf": float(res.llf)}
        if self.innovations == "bootstrap":
            state["resid"] = np.asarray(res.resid, dtype=float).tolist()
        return state

    @staticmethod
    def _conditional_mean(state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """``E[r_t | r_<t, x_<t]`` for ``t >= k`` (``k = p``; ``max(p, 1)`` with covariates), else NaN."""
        p = int(state["order"])
        k = p if x is None else max(p, 1)
        mu = np.full(y.shape, np.nan)
        if len(y) <= k:
            return mu
        coefs = np.asarray(state["coefs"], dtype=float)
        # lagged design: column i holds r_{t-1-i} for t = k .. n-1
        lagged = np.column_stack([y[k - 1 - i: len(y) - 1 - i] for i in range(p)]) if p else \
            np.zeros((len(y) - k, 0))
        mu[k:] = state["const"] + lagged @ coefs
        if x is not None:
            mu[k:] += x[k - 1: len(y) - 1] @ np.asarray(state.get("exog_coefs", []), dtype=float)
        return mu

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        mu = self._conditional_mean(state, y, x)
        return stats.norm.logpdf(y, loc=mu, scale=np.sqrt(state["sigma2"]))

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple[Any, ...]:
        mu = self._conditional_mean(state, y, x)
        scale = np.where(np.isnan(mu), np.nan, np.sqrt(state["sigma2"]))
        return mu, scale, "normal", ()

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator) -> np.ndarray:
        p = int(state["order"])
        coefs = np.asarray(state["coefs"], dtype=float)
        if self.innovations == "bootstrap":
            resid = np.asarray(state["resid"], dtype=float)
            shocks = resid[rng.integers(0, len(resid), size=(n_paths, horizon))]
        else:
            shocks = rng.standard_normal((n_paths, horizon)) * np.sqrt(state["sigma2"])
        drift = np.full(horizon, state["const"])
        if x_context is not None:  # day h's mean uses the covariates of day h - 1
            rows = np.vstack([x_context[-1:], x_future[: horizon - 1]])
            drift = drift + rows @ np.asarray(state["exog_coefs"], dtype=float)
        # buffer holds the last p values (oldest first) followed by the simulated ones
        buf = np.empty((n_paths, p + horizon))
        buf[:, :p] = context[len(context) - p:] if p else 0.0
        for h in range(horizon):
            recent = buf[:, h:h + p][:, ::-1]  # r_{t-1}, ..., r_{t-p}
            buf[:, p + h] = drift[h] + recent @ coefs + shocks[:, h]
        return buf[:, p:]
