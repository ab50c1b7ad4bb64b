"""GARCH-family forecasters over the ``arch`` package.

.. math::

    r_t = \\mu_t + \\varepsilon_t, \\quad \\varepsilon_t = \\sigma_t z_t, \\quad
    z_t \\sim D(0, 1)

with a constant, zero or AR(p) mean ``mu_t``, plus ``gamma' x_{t-1}`` when fitted with covariates
(the ``exog`` row of the day before, known at its close; arch's ``LS``/``ARX`` means with the
covariates lagged one day, the first day held back); GARCH(p, q),
``sigma^2_t = omega + sum alpha_i eps^2_{t-i} + sum beta_j sigma^2_{t-j}``, GJR-GARCH (adds
``gamma eps^2_{t-1} 1[eps_{t-1} < 0]``) or EGARCH for the volatility; a normal, Student-t or
Hansen skew-t ``D``.

The model is fitted by ``arch``. ``log_prob`` runs arch's own variance recursion and density
with the fitted parameters, starting the recursion from the *backcast* computed at fit time
(arch computes it from the first 75 residuals). Keeping it fixed makes ``log_prob`` exactly
causal on any series, and on the training series the per-observation values are arch's
``loglikelihood(..., individual=True)``, so they sum to ``ARCHModelResult.loglikelihood``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate import ARX, EGARCH, LS, Normal, SkewStudent, StudentsT
from arch.univariate import GARCH as ArchGARCH
from arch.univariate.base import ARCHModel

from finar.errors import ConvergenceWarning, DataError
from finar.models.base import UnivariateForecaster, check_returns, register

__all__ = ["GARCH"]

_VOLS = {"garch": "GARCH", "gjr": "GARCH", "egarch": "EGARCH"}
_DISTS = {"normal": "normal", "t": "t", "skewt": "skewt"}
_MEANS = {"constant": "Constant", "zero": "Zero", "ar": "AR"}
_DIST_CLASSES = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}


@register("garch")
class GARCH(UnivariateForecaster):
    """GARCH, GJR-GARCH or EGARCH with normal, Student-t or skew-t innovations.

    Parameters
    ----------
    mean : {'constant', 'zero', 'ar'}, default 'constant'
    lags : int, default 1
        AR order of the mean when ``mean='ar'``.
    vol : {'garch', 'gjr', 'egarch'}, default 'garch'
    p, q : int, default 1
        ARCH and GARCH orders.
    o : int, optional
        Asymmetric order; default 1 for ``'gjr'`` and ``'egarch'``, 0 for ``'garch'``.
    dist : {'normal', 't', 'skewt'}, default 't'

    Attributes
    ----------
    states_ : dict
        Per series: ``params`` (arch's names and values), ``backcast``, and the training
        variance and largest squared residual (arch's numerical variance guards).
    results_ : dict
        arch's ``ARCHModelResult`` per series, from the last ``fit`` (not saved to disk).

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2010":"2014"]
    >>> m = finar.models.GARCH(vol="gjr", dist="skewt").fit(r)
    >>> sc = m.sample(context=r, horizon=10, n_paths=500, seed=0)
    >>> sc.paths.shape
    (500, 10, 1)
    """

    min_fit_obs = 100
    takes_uniforms = True

    def __init__(self, mean: Literal["constant", "zero", "ar"] = "constant", lags: int = 1,
                 vol: Literal["garch", "gjr", "egarch"] = "garch", p: int = 1, o: int | None = None,
                 q: int = 1, dist: Literal["normal", "t", "skewt"] = "t") -> None:
        self.mean = mean
        self.lags = lags
        self.vol = vol
        self.p = p
        self.o = o
        self.q = q
        self.dist = dist

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"dist": "t"}, {"vol": "gjr", "dist": "skewt"}, {"vol": "egarch", "dist": "normal"},
                {"mean": "ar", "lags": 2, "dist": "normal"}]

    # ---- configuration ------------------------------------------------------------------
    def _validate(self) -> None:
        for name, allowed in (("mean", _MEANS), ("vol", _VOLS), ("dist", _DISTS)):
            if getattr(self, name) not in allowed:
                raise DataError(f"{name} must be one of {sorted(allowed)}, got {getattr(self, name)!r}")
        for name in ("p", "q", "lags"):
            v = getattr(self, name)
            if int(v) != v or v < (0 if name != "p" else 1):
                raise DataError(f"{name} must be a positive integer, got {v!r}")
        if self.o is not None and (int(self.o) != self.o or self.o < 0):
            raise DataError(f"o must be a non-negative integer, got {self.o!r}")

    @property
    def _o(self) -> int:
        return int(self.o) if self.o is not None else (0 if self.vol == "garch" else 1)

    @property
    def _p_mean(self) -> int:
        return int(self.lags) if self.mean == "ar" else 0

    @property
    def min_context(self) -> int:
        """AR lags of the mean; at least 1 with covariates (day ``t`` needs row ``t - 1``)."""
        return max(self._p_mean, 1 if getattr(self, "exog_columns_", None) else 0)

    def _arch(self, y: np.ndarray, x: np.ndarray | None = None) -> ARCHModel:
        if x is None:
            return arch_model(y, mean=_MEANS[self.mean], lags=self._p_mean, vol=_VOLS[self.vol],
                              p=int(self.p), o=self._o, q=int(self.q), dist=_DISTS[self.dist], rescale=False)
        # covariates lagged one day: row t holds x_{t-1}; row 0 (no x_{-1}) is held back
        xl = np.vstack([np.zeros((1, x.shape[1])), x[:-1]])
        vol = (EGARCH(int(self.p), self._o, int(self.q)) if self.vol == "egarch"
               else ArchGARCH(int(self.p), self._o, int(self.q)))
        kw = dict(volatility=vol, distribution=_DIST_CLASSES[self.dist](), rescale=False)
        if self.mean == "ar":
            return ARX(y, xl, lags=self._p_mean, hold_back=max(self._p_mean, 1), **kw)
        return LS(y, xl, constant=self.mean == "constant", hold_back=1, **kw)

    # ---- the pieces of the likelihood ---------------------------------------------------
    def _split(self, am: ARCHModel, params: np.ndarray) -> tuple[np.ndarray, ...]:
        k_mean, k_vol = am.num_params, am.volatility.num_params
        return params[:k_mean], params[k_mean:k_mean + k_vol], params[k_mean + k_vol:]

    def _residuals(self, mean_params: np.ndarray, y: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """``eps_t = r_t - mu_t`` for ``t >= min_context`` (the first rows have no mean)."""
        if x is not None:  # arch's order: constant, AR lags, covariates
            p, c = self._p_mean, int(self.mean != "zero")
            k = max(p, 1)
            if len(y) <= k:
                return np.zeros(0)
            mu = (mean_params[0] if c else 0.0) + x[k - 1: len(y) - 1] @ mean_params[c + p:]
            for i in range(p):
                mu = mu + mean_params[c + i] * y[k - 1 - i: len(y) - 1 - i]
            return y[k:] - mu
        if self.mean == "zero":
            return y.copy()
        if self.mean == "constant":
            return y - mean_params[0]
        p = int(self.lags)
        lagged = np.column_stack([y[p - 1 - i: len(y) - 1 - i] for i in range(p)])
        return y[p:] - mean_params[0] - lagged @ mean_params[1:]

    @staticmethod
    def _var_bounds(resid: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        """arch's loose numerical bounds on the variance, made causal.

        arch bounds sigma2_t by an EWMA of squared residuals / 1e6 and * 1e6 with floors from
        the whole sample; here the EWMA starts from the training backcast level and the floors
        come from the training sample, so no bound looks ahead. They never bind for sane data.
        """
        from arch.univariate.volatility import ewma_recursion

        ewma = np.empty(len(resid))
        ewma_recursion(0.94, resid, ewma, len(resid), state["train_var"])
        bounds = np.column_stack((ewma / 1e6, ewma * 1e6))
        lower, min_upper = state["train_var"] / 1e8, 1.0 + state["train_max_r2"]
        upper = 1e7 * (1.0 + state["train_max_r2"])
        bounds[bounds[:, 0] < lower, 0] = lower
        bounds[bounds[:, 1] < min_upper, 1] = min_upper
        bounds[bounds[:, 1] > upper, 1] = upper
        return np.ascontiguousarray(bounds)

    def _filter(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple[Any, ...]:
        k = self.min_context
        if len(y) > k:
            am = self._arch(y, x)
        else:  # a placeholder series: only the model's pieces are used
            am = self._arch(np.zeros(k + 2), None if x is None else np.zeros((k + 2, x.shape[1])))
        params = np.asarray(state["params"]["values"], dtype=float)
        mp, vp, dp = self._split(am, params)
        resid = self._residuals(mp, y, x)
        bounds = self._var_bounds(resid, state)
        sigma2 = np.empty(len(resid))
        if len(resid):
            am.volatility.compute_variance(vp, resid, sigma2, state["backcast"], bounds)
        return am, resid, sigma2, bounds, mp, vp, dp

    # ---- UnivariateForecaster hooks -----------------------------------------------------
    def _check_state_1d(self, state: dict[str, Any]) -> None:
        self._validate()
        k, n_x = self.min_context, len(self.exog_columns_)
        am = self._arch(np.zeros(k + 2), np.zeros((k + 2, n_x)) if n_x else None)
        n = am.num_params + am.volatility.num_params + am.distribution.num_params
        values, names = state["params"]["values"], state["params"]["names"]
        if len(values) != n or len(names) != n:
            raise ValueError(f"{len(values)} fitted parameters ({names}) where mean={self.mean!r}, "
                             f"vol={self.vol!r}, dist={self.dist!r} and {n_x} covariates have {n}")
        for key in ("backcast", "train_var", "train_max_r2"):
            float(state[key])

    def _fit_1d(self, y: np.ndarray, x: np.ndarray | None) -> dict[str, Any]:
        self._validate()
        am = self._arch(y, x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arch's own warnings; convergence is checked below
            res = am.fit(disp="off")
            if res.convergence_flag != 0:  # e.g. SLSQP off to a mean of 27,000 on a stock's crash
                res = self._restart(am, res)
        if res.convergence_flag != 0:
            warnings.warn(f"arch's optimiser did not converge (flag {res.convergence_flag}: "
                          f"{res.optimization_result.message})", ConvergenceWarning, stacklevel=4)
        params = np.asarray(res.params, dtype=float)
        resid = self._residuals(self._split(am, params)[0], y, x)
        self._results.append(res)
        return {"params": {"names": list(res.params.index), "values": params.tolist()},
                # arch starts the recursion from the backcast of the residuals at its starting
                # values (not at the optimum); the same number reproduces its likelihood exactly
                "backcast": float(am.volatility.backcast(am.resids(am.starting_values()))),
                "train_var": float(np.var(resid)), "train_max_r2": float(np.max(resid ** 2)),
                "loglikelihood": float(res.loglikelihood)}

    def _restart(self, am: ARCHModel, first: Any) -> Any:
        """arch's fit again from textbook starting values when its own start did not converge:
        the mean part at arch's least-squares values, ``omega`` 5% of the residual variance,
        ARCH terms 0.05 (0.1 for asymmetry), GARCH terms sharing 0.85, the distribution at arch's
        moment-based values. The converged fit with the highest likelihood wins (the first fit
        if none converges). GARCH and GJR variances only; EGARCH keeps its first fit."""
        if self.vol not in ("garch", "gjr"):
            return first
        mean = np.asarray(am.starting_values(), dtype=float)  # least squares of the mean model
        resid = am.resids(mean)
        resid = resid[np.isfinite(resid)]
        p, o, q = int(self.p), self._o, int(self.q)
        dist = np.asarray(am.distribution.starting_values(resid / np.std(resid)), dtype=float)
        best = first
        for scale in (1.0, 0.2):  # a calmer start too: a smaller ARCH share
            arch_terms = np.r_[np.full(p, 0.05 / p), np.full(o, 0.1 / max(o, 1))] * scale
            start = np.r_[mean, 0.05 * np.var(resid), arch_terms, np.full(q, 0.85 / q), dist]
            res = am.fit(disp="off", starting_values=start)
            if res.convergence_flag == 0 and np.isfinite(res.loglikelihood) and (
                    best.convergence_flag != 0 or res.loglikelihood > best.loglikelihood):
                best = res
        return best

    def fit(self, r: pd.Series | pd.DataFrame, *, exog: pd.DataFrame | pd.Series | None = None) -> GARCH:
        """Fit one model per column with arch (covariates ``exog`` in the mean); keeps arch's
        results in ``results_``."""
        self._results: list[Any] = []
        super().fit(r, exog=exog)
        self.results_ = dict(zip(self.columns_, self._results, strict=True))
        del self._results
        return self

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        am, resid, sigma2, _, _, _, dp = self._filter(state, y, x)
        out = np.full(len(y), np.nan)
        if len(resid):
            out[len(y) - len(resid):] = am.distribution.loglikelihood(dp, resid, sigma2,
                                                                      individual=True)
        return out

    def _predictive_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> tuple[Any, ...]:
        _, resid, sigma2, _, _, _, dp = self._filter(state, y, x)
        k = len(y) - len(resid)
        loc = np.full(len(y), np.nan)
        scale = np.full(len(y), np.nan)
        loc[k:] = y[k:] - resid  # mu_t = r_t - eps_t depends on r_<t only
        scale[k:] = np.sqrt(sigma2)
        return loc, scale, self.dist, tuple(dp)

    def conditional_volatility(self, r: pd.Series | pd.DataFrame, *,
                               exog: pd.DataFrame | pd.Series | None = None) -> pd.Series | pd.DataFrame:
        """sigma_t for each observation (NaN where the mean has no context), like arch's."""
        self._check_fitted()
        frame = check_returns(r)
        x = self._exog_array(exog, frame.index, "conditional_volatility")
        out = pd.DataFrame(index=frame.index, columns=frame.columns, dtype=float)
        for col in frame.columns:
            y = frame[col].to_numpy(dtype=float)
            _, resid, sigma2, *_ = self._filter(self._state_for(col, frame.shape[1]), y, x)
            vals = np.full(len(y), np.nan)
            vals[len(y) - len(resid):] = np.sqrt(sigma2)
            out[col] = vals
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def _sample_1d(self, state: dict[str, Any], context: np.ndarray, x_context: np.ndarray | None,
                   x_future: np.ndarray | None, horizon: int, n_paths: int,
                   rng: np.random.Generator, uniforms: np.ndarray | None = None) -> np.ndarray:
        am, resid, _, bounds, mp, vp, dp = self._filter(state, context, x_context)
        dist = type(am.distribution)(seed=rng)

        def from_uniforms(size: Any) -> np.ndarray:  # exact quantiles; a day's return rises with its own
            return np.asarray(dist.ppf(uniforms, dp), dtype=float).reshape(size)

        draw = dist.simulate(dp) if uniforms is None else from_uniforms
        if len(resid) == 0:  # no residual yet: start from the backcast level
            resid = np.zeros(1)
            bounds = self._var_bounds(resid, state)
        fc = am.volatility.forecast(vp, resid, state["backcast"], bounds, start=len(resid) - 1,
                                    horizon=horizon, method="simulation",
                                    simulations=n_paths, rng=draw)
        shocks = np.asarray(fc.shocks)[-1]  # (n_paths, horizon)
        if x_context is None and self.mean == "zero":
            return shocks
        if x_context is None and self.mean == "constant":
            return mp[0] + shocks
        p, c = self._p_mean, int(self.mean != "zero")
        drift = np.full(horizon, mp[0] if c else 0.0)
        if x_context is not None:  # day h's mean uses the covariates of day h - 1
            drift = drift + np.vstack([x_context[-1:], x_future[: horizon - 1]]) @ mp[c + p:]
        buf = np.empty((n_paths, p + horizon))
        buf[:, :p] = context[len(context) - p:] if p else 0.0
        for h in range(horizon):
            buf[:, p + h] = drift[h] + buf[:, h:h + p][:, ::-1] @ mp[c:c + p] + shocks[:, h]
        return buf[:, p:]
