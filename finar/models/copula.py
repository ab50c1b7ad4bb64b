"""GARCH(1,1) marginals joined by an elliptical copula: a joint density for a panel of returns.

Each column ``i`` follows a GARCH(1,1) with standardised Student-t (or normal) innovations,

.. math::

    r_{t,i} = \\mu_i + \\sigma_{t,i} z_{t,i}, \\quad
    \\sigma^2_{t,i} = \\omega_i + \\alpha_i \\varepsilon^2_{t-1,i} + \\beta_i \\sigma^2_{t-1,i},
    \\quad z_{t,i} \\sim F_i,

fitted column by column with ``arch`` (the recursion starts from arch's backcast, fixed at fit
time, like :class:`finar.models.GARCH`, so the marginal log densities equal arch's). The
columns of one day are joined by a copula on the probability integral transforms
``u_{t,i} = F_i(z_{t,i})``: with the copula scores ``x_{t,i} = G^{-1}(u_{t,i})`` (``G`` the standard
normal CDF for the Gaussian copula, the Student-t CDF with ``nu`` degrees of freedom for the t
copula) and the correlation matrix ``R_t``,

.. math::

    \\log p(r_t \\mid r_{<t}) = \\sum_i \\left[\\log F_i'(z_{t,i}) - \\log \\sigma_{t,i}\\right]
      + \\log g_{R_t}(x_t) - \\sum_i \\log g(x_{t,i}),

with ``g_R`` the elliptical density (``N(0, R)`` or ``t_nu(0, R)``) and ``g`` its univariate
marginal. Estimation is two-step (inference functions for margins): the marginals first, then
the copula on the training PITs. :class:`Copula` keeps ``R`` fixed; :class:`finar.models.DCC`
lets it follow Engle's (2002) DCC(1,1) recursion on the copula scores.

**Per-cell log densities are conditionals (the chain rule).** ``log_prob(r)[t, j]`` is
``log p(r_{t,j} | r_{t,<j}, r_{<t})``: column ``j`` given the past and the columns to its left on
the same day. With the Cholesky factor ``R = L L'`` and ``w = L^{-1} x`` these are closed form
(the Gaussian conditional has mean ``sum_{k<j} L_{jk} w_k`` and sd ``L_jj``; the t conditional
has ``nu + j`` degrees of freedom and its scale grows with ``q_j = sum_{k<j} w_k^2``), so the row
sum, :meth:`joint_log_prob`, is the exact joint log density of the day, and the columns after
the first ``k`` sum to the exact conditional density given those ``k`` (put the index first to
score the stocks given the index). ``predictive(r)`` gives each column's *marginal* one-step law
``p(r_{t,j} | r_{<t})`` (a Student-t location-scale law); for the first column it is the density
``log_prob`` evaluates.

Examples
--------
>>> import finar
>>> r = finar.returns(finar.load("sp500-stocks")[["SP500", "AAPL", "XOM"]]).loc["2010":"2014"]
>>> m = finar.models.create("copula", family="t").fit(r)
>>> sc = m.sample(r, horizon=5, n_paths=200, seed=0, given={"SP500": -5.0})
>>> bool((sc.paths[:, 0, 0] == -5.0).all()), sc.joint
(True, True)
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import linalg, optimize, signal, special

from finar._estimator import check_seed
from finar.data.transforms import check_length
from finar.errors import ConvergenceWarning, DataError
from finar.models.base import Exog, Forecaster, check_horizon, check_returns, register
from finar.models.predictive import LocScalePredictive, Predictive, _check_level, _check_q, crps_quadrature
from finar.models.scenarios import Scenarios, future_index

__all__ = ["Copula", "CopulaConditionalPredictive", "CopulaGARCH", "ScoreConditionalPredictive"]

_P_FLOOR = 1e-300  # smallest tail probability mapped back to a score (keeps draws finite)
_NU_RANGE = (2.05, 500.0)  # the t copula's degrees of freedom (> 2: R targets a second moment)


# ---- GARCH(1,1) marginals ------------------------------------------------------------------
def fit_marginal(y: np.ndarray, dist: str, mean: str) -> dict[str, float]:
    """GARCH(1,1) with ``dist`` innovations fitted by arch; plain parameters and arch's backcast."""
    am = arch_model(y, mean="Constant" if mean == "constant" else "Zero", vol="GARCH", p=1, q=1,
                    dist=dist, rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arch's own warnings; convergence is checked below
        res = am.fit(disp="off")
    if res.convergence_flag != 0:
        warnings.warn(f"arch's optimiser did not converge (flag {res.convergence_flag}); the marginal "
                      "GARCH parameters may be poor", ConvergenceWarning, stacklevel=4)
    p = res.params
    return {"mu": float(p["mu"]) if mean == "constant" else 0.0, "omega": float(p["omega"]),
            "alpha": float(p["alpha[1]"]), "beta": float(p["beta[1]"]),
            "nu": float(p["nu"]) if dist == "t" else float("inf"),
            # arch starts the recursion from the backcast of the residuals at its starting values
            "backcast": float(am.volatility.backcast(am.resids(am.starting_values()))),
            "loglikelihood": float(res.loglikelihood)}


def garch_filter(m: Mapping[str, float], y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Residuals, variances ``sigma^2_t`` (given ``y_<t``) and the next day's variance.

    ``sigma^2_t = beta sigma^2_{t-1} + u_t`` with ``u_t = omega + alpha eps^2_{t-1}`` is a
    first-order linear filter (``scipy.signal.lfilter``); before the first day both the squared
    residual and the variance are arch's backcast.
    """
    eps = y - m["mu"]
    e2_lag = np.r_[m["backcast"], eps**2]  # eps^2_{t-1} for t = 0..T (T: the day after y)
    u = m["omega"] + m["alpha"] * e2_lag
    s2, _ = signal.lfilter([1.0], [1.0, -m["beta"]], u, zi=[m["beta"] * m["backcast"]])
    return eps, s2[:-1], float(s2[-1])


def std_logpdf(z: np.ndarray, nu: float) -> np.ndarray:
    """Log density of the standardised (unit-variance) Student-t, or normal for ``nu = inf``."""
    if not np.isfinite(nu):
        return -0.5 * np.log(2 * np.pi) - 0.5 * z**2
    c = np.sqrt(nu / (nu - 2.0))
    return t_logpdf(z * c, nu) + np.log(c)


def t_scale(nu: np.ndarray) -> np.ndarray:
    """``sqrt(nu / (nu - 2))``: a unit-variance t times this is a standard t (1 for ``nu = inf``)."""
    nu = np.asarray(nu, dtype=float)
    return np.sqrt(np.where(np.isfinite(nu), nu / np.where(np.isfinite(nu), nu - 2.0, 1.0), 1.0))


def t_logpdf(x: np.ndarray, nu: float) -> np.ndarray:
    """Log density of Student's t with ``nu`` degrees of freedom (normal for ``nu = inf``)."""
    if not np.isfinite(nu):
        return -0.5 * np.log(2 * np.pi) - 0.5 * x**2
    return (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
            - (nu + 1) / 2 * np.log1p(x**2 / nu))


def lower_tail(x: np.ndarray, nu: float) -> np.ndarray:
    """``P(X <= -|x|)`` for Student's t (normal for ``nu = inf``): the tail on ``x``'s side, accurate
    far out where ``1 - F(x)`` would round to zero."""
    return special.ndtr(-np.abs(x)) if not np.isfinite(nu) else special.stdtr(nu, -np.abs(x))


def from_tail(p: np.ndarray, sign: np.ndarray, nu: float) -> np.ndarray:
    """Inverse of :func:`lower_tail`: the value with tail ``p`` on the side ``sign``."""
    p = np.maximum(p, _P_FLOOR)
    q = special.ndtri(p) if not np.isfinite(nu) else special.stdtrit(nu, p)
    return -sign * q


# ---- elliptical copulas --------------------------------------------------------------------
def normalise(q: np.ndarray) -> np.ndarray:
    """Correlation matrices ``diag(Q)^{-1/2} Q diag(Q)^{-1/2}`` of ``q`` (..., N, N), unit diagonal."""
    d = np.sqrt(np.diagonal(q, axis1=-2, axis2=-1))
    r = q / (d[..., :, None] * d[..., None, :])
    idx = np.arange(q.shape[-1])
    r[..., idx, idx] = 1.0
    return r


def whiten(chol: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w = L^{-1} x`` per day and the diagonal of ``L`` broadcast to ``x``'s shape (T, N), for the
    lower Cholesky factor ``L`` of one correlation matrix (N, N) or of one per day (T, N, N)."""
    if chol.ndim == 2:
        return (linalg.solve_triangular(chol, x.T, lower=True).T,
                np.broadcast_to(np.diagonal(chol), x.shape))
    return np.linalg.solve(chol, x[..., None])[..., 0], np.diagonal(chol, axis1=-2, axis2=-1)


def chain_terms(x: np.ndarray, chol: np.ndarray, nu: float) -> np.ndarray:
    """Copula log density of each day split by the chain rule over columns, shape (T, N).

    Term ``j`` is ``log g_R(x_j | x_<j) - log g(x_j)``, so a row sums to ``log c(u_t)``. ``chol``
    is the lower Cholesky factor of ``R`` (N, N), or of each day's ``R_t`` (T, N, N); ``nu`` the t
    copula's degrees of freedom (``inf``: Gaussian). Column 0 is exactly 0 (``R_00 = 1``).
    """
    w, diag = whiten(chol, x)
    j = np.arange(x.shape[1], dtype=float)
    if np.isfinite(nu):
        q = np.cumsum(w**2, axis=1) - w**2  # q_j = sum_{k<j} w_k^2
        cond = (special.gammaln((nu + j + 1) / 2) - special.gammaln((nu + j) / 2) - 0.5 * np.log(np.pi)
                - 0.5 * np.log(nu + q) - np.log(diag) - (nu + j + 1) / 2 * np.log1p(w**2 / (nu + q)))
    else:
        cond = -0.5 * np.log(2 * np.pi) - np.log(diag) - 0.5 * w**2
    out = cond - t_logpdf(x, nu)
    out[:, 0] = 0.0
    return out


def draw_scores(chol: np.ndarray, nu: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws ``x ~ N(0, R)`` or ``t_nu(0, R)`` with ``chol`` (N, N) or per draw (n, N, N)."""
    e = rng.standard_normal((n, chol.shape[-1]))
    x = e @ chol.T if chol.ndim == 2 else np.einsum("nij,nj->ni", chol, e)
    if np.isfinite(nu):
        x *= np.sqrt(nu / rng.chisquare(nu, size=(n, 1)))
    return x


def conditional_scores(corr: np.ndarray, nu: float, given: np.ndarray, x_given: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """Draws of the scores of the other columns given ``x[:, given] = x_given`` (n, k), exactly.

    For ``N(0, R)`` the conditional is ``N(K x_g, S)`` with ``K = R_rg R_gg^{-1}`` and
    ``S = R_rr - K R_gr``; for ``t_nu(0, R)`` it is ``t_{nu+k}(K x_g, (nu + d) / (nu + k) S)`` with
    ``d = x_g' R_gg^{-1} x_g`` (e.g. Kotz & Nadarajah 2004, sec. 1.11). ``corr`` is (N, N) or (n, N, N).
    Returns the full score vectors (n, N), ``x_given`` in the given columns.
    """
    n, n_cols = len(x_given), corr.shape[-1]
    rest = np.setdiff1d(np.arange(n_cols), given)
    out = np.empty((n, n_cols))
    out[:, given] = x_given
    if len(rest) == 0:
        return out
    corr = np.broadcast_to(corr, (n, n_cols, n_cols))
    r_gg = corr[:, given][:, :, given]
    r_gr = corr[:, given][:, :, rest]
    r_rr = corr[:, rest][:, :, rest]
    k_t = np.linalg.solve(r_gg, r_gr)                              # (n, k, n_r): K' = R_gg^{-1} R_gr
    mean = np.einsum("nkr,nk->nr", k_t, x_given)
    cov = r_rr - np.einsum("nkr,nks->nrs", r_gr, k_t)
    e = np.einsum("nrs,ns->nr", np.linalg.cholesky(cov), rng.standard_normal((n, len(rest))))
    if np.isfinite(nu):
        k = len(given)
        d = np.einsum("nk,nk->n", x_given, np.linalg.solve(r_gg, x_given[..., None])[..., 0])
        e *= np.sqrt((nu + d) / rng.chisquare(nu + k, size=n))[:, None]
    out[:, rest] = mean + e
    return out


def conditional_pits(x: np.ndarray, corr: np.ndarray, g: np.ndarray, nu: float) -> np.ndarray:
    """PITs ``(T, N - k)`` of the other columns' scores given ``x[:, g]`` under ``t_nu(0, R_t)``
    (normal for ``nu = inf``), ``corr`` (N, N) or (T, N, N): with ``K = R_jg R_gg^{-1}`` and
    ``s^2 = 1 - K R_gj`` the score ``x_j`` given ``x_g`` is ``N(K x_g, s^2)`` or
    ``t_{nu+k}(K x_g, (nu + d) / (nu + k) s^2)`` with ``d = x_g' R_gg^{-1} x_g``."""
    rest = np.setdiff1d(np.arange(x.shape[1]), g)
    corr = np.broadcast_to(corr, (len(x), *corr.shape[-2:]))
    r_gg = corr[:, g][:, :, g]
    k_t = np.linalg.solve(r_gg, corr[:, g][:, :, rest])           # (T, k, n_r)
    x_g, x_r = x[:, g], x[:, rest]
    loc = np.einsum("tkr,tk->tr", k_t, x_g)
    var = 1.0 - np.einsum("tkr,tkr->tr", corr[:, g][:, :, rest], k_t)
    if not np.isfinite(nu):
        return special.ndtr((x_r - loc) / np.sqrt(var))
    d = np.einsum("tk,tk->t", x_g, np.linalg.solve(r_gg, x_g[..., None])[..., 0])
    var = var * ((nu + d) / (nu + len(g)))[:, None]
    return special.stdtr(nu + len(g), (x_r - loc) / np.sqrt(var))


# ---- the tail mixture (family='t-mix') ------------------------------------------------------
#: the degrees of freedom of the components of ``family='t-mix'`` (inf: the Gaussian copula)
TAIL_GRID = (3.0, 5.0, 8.0, 14.0, 25.0, 60.0, float("inf"))


def _component_terms(p: np.ndarray, sign: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Each grid component's chain-rule terms ``(K, T, N)`` at the tails ``p``, sides ``sign``."""
    return np.stack([chain_terms(from_tail(p, sign, nu), chol, nu) for nu in TAIL_GRID])


def mixture_chain(p: np.ndarray, sign: np.ndarray, chol: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Chain-rule terms ``(T, N)`` of ``sum_k w_k c_{R, nu_k}(u)``, the mixture of the grid's t copulas
    with one correlation: term ``j`` is ``log c(u_j | u_<j)``, the log ratio of the mixture's
    densities of columns ``0..j`` and ``0..j-1`` (each component's weight updated by how well it
    explains the columns before), so a row sums to the mixture's log density."""
    logw = np.log(np.maximum(np.asarray(weights, dtype=float), 1e-300))
    cum = np.cumsum(_component_terms(p, sign, chol), axis=2) + logw[:, None, None]
    total = special.logsumexp(cum, axis=0)                                 # (T, N)
    return np.diff(np.concatenate([np.zeros((len(total), 1)), total], axis=1), axis=1)


def fit_tail_weights(p: np.ndarray, sign: np.ndarray, chol: np.ndarray) -> list[float]:
    """The mixture weights over :data:`TAIL_GRID` maximising the mean copula log density of the
    training days (L-BFGS on softmax logits), the correlations held fixed."""
    comp = _component_terms(p, sign, chol).sum(axis=2).T                   # (T, K)

    def nll(b: np.ndarray) -> float:
        return -float(special.logsumexp(b - special.logsumexp(b) + comp, axis=1).mean())

    res = optimize.minimize(nll, np.zeros(len(TAIL_GRID)), method="L-BFGS-B")
    return special.softmax(res.x).tolist()


# ---- one column given the same day's others -----------------------------------------------
_HERMITE = np.polynomial.hermite_e.hermegauss(160)  # nodes and weights for E[f(W)], W ~ N(0, 1)
_HERMITE = (_HERMITE[0], _HERMITE[1] / np.sqrt(2 * np.pi))


def _t_quantile(p: np.ndarray, nu: float) -> np.ndarray:
    """Quantiles at levels ``p`` of Student's t (normal for ``nu = inf``), accurate in both tails."""
    p = np.asarray(p, dtype=float)
    lo = np.minimum(p, 1 - p)
    return from_tail(lo, np.where(p > 0.5, 1.0, -1.0), nu)


class ScoreConditionalPredictive(Predictive):
    """A column's law given the past and some of the same day's other columns, in a copula model:
    its copula score has a Student-t (``df``; normal for ``inf``) law with location ``loc`` and
    scale ``scale`` per day, and the return is an increasing map of the score (:meth:`_value`).
    Quantiles are exact through that map; ``mean``, ``std`` and ``es`` by Gauss-Hermite quadrature
    over the normal scores of the quantile levels, ``crps`` by
    :func:`~finar.models.predictive.crps_quadrature` of the CDF. Subclasses give the map."""

    df: float
    loc: np.ndarray
    scale: np.ndarray

    @abstractmethod
    def _value(self, s: np.ndarray) -> np.ndarray:
        """The return whose standardised conditional score is ``s`` (broadcast over the days)."""

    @abstractmethod
    def _cdf_grid(self, x: np.ndarray) -> np.ndarray:
        """The CDFs of the days at ``x`` (T, M)."""

    def ppf(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles: ``q`` scalar -> (T,), or an array broadcastable to (..., T)."""
        return self._value(_t_quantile(_check_q(q), self.df))

    def _expect(self, level: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``E[r]`` and ``E[r^2]`` over the quantile levels ``(0, level)``, by Gauss-Hermite."""
        w, wt = _HERMITE
        p = level * special.ndtr(w)  # levels in (0, level): p = level * Phi(w)
        if level == 1.0:  # both tails accurate: the upper half from its own tail
            s = from_tail(special.ndtr(-np.abs(w)), np.sign(w), self.df)
        else:
            s = _t_quantile(p, self.df)
        r = self._value(s[:, None])  # (nodes, T)
        return (wt[:, None] * r).sum(0), (wt[:, None] * r**2).sum(0)

    def mean(self) -> np.ndarray:
        return self._expect()[0]

    def std(self) -> np.ndarray:
        m1, m2 = self._expect()
        return np.sqrt(np.maximum(m2 - m1**2, 0.0))

    def es(self, alpha: float) -> np.ndarray:
        """Expected shortfall as a positive loss, ``-(1 / alpha) int_0^alpha ppf(u) du``."""
        return -self._expect(_check_level(alpha))[0]

    def crps(self, y: np.ndarray) -> np.ndarray:
        """CRPS per day, by :func:`~finar.models.predictive.crps_quadrature` of the CDF."""
        y = np.asarray(y, dtype=float)
        centre = self.ppf(0.5)
        spread = (self.ppf(0.8413447460685429) - self.ppf(0.15865525393145707)) / 2

        def cdf(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return self.take(rows)._cdf_grid(x)

        return crps_quadrature(cdf, y, centre[:, None], spread[:, None])


@dataclass(frozen=True, eq=False)
class CopulaConditionalPredictive(ScoreConditionalPredictive):
    """One column's law on each day given the past *and* some of the same day's other columns.

    In a copula model the column's score ``x = G^{-1}(F(z))`` (``z = (r - mu) / sigma`` the GARCH
    standardised residual, ``F`` its marginal CDF, ``G`` the copula's univariate CDF) given the
    other columns' scores is ``N(loc_t, scale_t^2)`` (Gaussian copula) or a Student-t with ``df``
    degrees of freedom, location ``loc_t`` and scale ``scale_t`` (t copula); the return is the
    increasing map ``r = mu + sigma_t F^{-1}(G(x))`` of it. ``cdf``, ``ppf`` and ``log_prob`` are
    exact (closed form); ``mean``, ``std`` and ``es`` by Gauss-Hermite quadrature over the
    normal scores of the quantile levels, ``crps`` by :func:`~finar.models.predictive.crps_quadrature`.
    Built by :meth:`CopulaGARCH.conditional_predictive`.

    Parameters
    ----------
    index : Index
        The days.
    mu : float
        The column's GARCH mean.
    sigma : ndarray, shape (T,)
        Its GARCH conditional standard deviation.
    marginal_nu : float
        Degrees of freedom of its standardised marginal innovations (``inf``: normal).
    copula_nu : float
        The copula's degrees of freedom (``inf``: Gaussian copula).
    df : float
        Degrees of freedom of the conditional law of the score (``copula_nu + k`` given ``k``
        columns; ``inf`` for the Gaussian copula).
    loc, scale : ndarray, shape (T,)
        Location and scale of the score's conditional law.
    """

    index: pd.Index
    mu: float
    sigma: np.ndarray
    marginal_nu: float
    copula_nu: float
    df: float
    loc: np.ndarray
    scale: np.ndarray

    def take(self, positions: Sequence[int] | np.ndarray | slice) -> CopulaConditionalPredictive:
        """The distributions of a subset of days (by position)."""
        idx = np.arange(len(self))[positions]
        return CopulaConditionalPredictive(self.index[idx], self.mu, self.sigma[idx], self.marginal_nu,
                                           self.copula_nu, self.df, self.loc[idx], self.scale[idx])

    # ---- the maps between returns and standardised conditional scores ----------------------
    def _z(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=float) - self.mu) / self.sigma

    def _score(self, z: np.ndarray) -> np.ndarray:
        """The copula score of standardised residuals ``z``."""
        c = float(t_scale(self.marginal_nu))
        return from_tail(lower_tail(z * c, self.marginal_nu), np.sign(z), self.copula_nu)

    def _value(self, s: np.ndarray) -> np.ndarray:
        """The return whose standardised conditional score is ``s`` (broadcast over the days)."""
        x = self.loc + self.scale * s
        z = from_tail(lower_tail(x, self.copula_nu), np.sign(x), self.marginal_nu)
        return self.mu + self.sigma * z / float(t_scale(self.marginal_nu))

    # ---- densities and probabilities ------------------------------------------------------
    def log_prob(self, y: np.ndarray) -> np.ndarray:
        """``log p(y_t | the given columns, past)``: the score's conditional density times ``dx/dr``."""
        z = self._z(y)
        x = self._score(z)
        s = (x - self.loc) / self.scale  # a standard t (or normal) variate
        return (t_logpdf(s, self.df) - np.log(self.scale) + std_logpdf(z, self.marginal_nu)
                - np.log(self.sigma) - t_logpdf(x, self.copula_nu))

    def cdf(self, y: np.ndarray) -> np.ndarray:
        """``P(r_t <= y_t | the given columns, past)`` per day: conditional PIT values."""
        s = (self._score(self._z(y)) - self.loc) / self.scale
        return special.ndtr(s) if not np.isfinite(self.df) else special.stdtr(self.df, s)

    def _cdf_grid(self, x: np.ndarray) -> np.ndarray:
        """The CDFs of the days at ``x`` (T, M)."""
        z = (x - self.mu) / self.sigma[:, None]
        s = (self._score(z) - self.loc[:, None]) / self.scale[:, None]
        return special.ndtr(s) if not np.isfinite(self.df) else special.stdtr(self.df, s)


# ---- the forecaster -------------------------------------------------------------------------
class CopulaGARCH(Forecaster):
    """GARCH(1,1) marginals and an elliptical copula whose correlation follows
    ``Q_t = (1 - a - b) Qbar + a x_{t-1} x_{t-1}' + b Q_{t-1}``, ``R_t = normalise(Q_t)``, ``Q_0 = Qbar``
    (static when ``a = b = 0``). Subclasses choose how ``a``, ``b`` and ``nu`` are estimated
    (:meth:`_fit_dependence`); everything else (the exact chain-rule density, marginal
    predictives, joint and conditional sampling, model files) lives here.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "joint"})
    min_fit_obs: ClassVar[int] = 100
    _families: ClassVar[tuple[str, ...]] = ("t", "gaussian")

    def __init__(self, family: str = "t", dist: Literal["t", "normal"] = "t",
                 mean: Literal["constant", "zero"] = "constant") -> None:
        self.family = family
        self.dist = dist
        self.mean = mean

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"family": f} for f in cls._families]

    @property
    def min_context(self) -> int:
        return 0

    def _validate(self) -> None:
        for name, allowed in (("family", self._families), ("dist", ("t", "normal")),
                              ("mean", ("constant", "zero"))):
            if getattr(self, name) not in allowed:
                raise DataError(f"{type(self).__name__}: {name} must be one of {list(allowed)}, "
                                f"got {getattr(self, name)!r}")

    # ---- fitting ----------------------------------------------------------------------
    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> CopulaGARCH:
        """Fit the marginals with arch, then the copula on their training PITs (two-step)."""
        self._validate()
        if exog is not None:
            raise DataError(f"{type(self).__name__} takes no exog; drop the argument")
        frame = check_returns(r, fitting=True)
        check_length(frame, self.min_fit_obs, what=f"fitting {type(self).__name__}")
        columns = [str(c) for c in frame.columns]
        self.series_name_ = r.name if isinstance(r, pd.Series) else None
        self.marginals_ = {c: fit_marginal(frame[col].to_numpy(dtype=float), self.dist, self.mean)
                           for c, col in zip(columns, frame.columns, strict=True)}
        p, sign = self._marginal_tails(self._filter_marginals(frame.to_numpy(dtype=float))[2])
        self.fit_copula(p, sign, columns)
        self.n_obs_ = len(frame)
        return self

    def fit_copula(self, p: np.ndarray, sign: np.ndarray, columns: Sequence[str]) -> None:
        """The copula's stage of the two-step fit, on its own: ``a_``, ``b_``, ``nu_``, ``qbar_``
        and ``copula_loglik_`` from the training PITs of ``columns``, given as their tails
        ``p = min(u, 1 - u)`` and sides ``sign = sign(u - 1/2)`` (T, N). :meth:`fit` calls it on
        the GARCH marginals' PITs; :class:`finar.models.MarginalCopula` on any forecasters' PITs."""
        self.columns_ = [str(c) for c in columns]
        self.a_, self.b_, self.nu_ = 0.0, 0.0, float("inf")
        self.tail_weights_ = None
        if len(self.columns_) > 1:  # one column has no dependence to estimate
            self._fit_dependence(p, sign)
        self.qbar_ = self._qbar(p, sign, self.nu_).tolist()
        if self.family == "t-mix" and len(self.columns_) > 1:  # last: the tails on the fitted R_t
            x = self._scores(p, sign, self.nu_)
            corr, _ = self._correlations(x, np.asarray(self.qbar_, dtype=float), self.a_, self.b_)
            self.tail_weights_ = fit_tail_weights(p, sign, np.linalg.cholesky(corr))
            self.copula_loglik_ = float(self._chain(x, corr).sum())
            return
        self.copula_loglik_ = float(self._copula_terms(p, sign, self.a_, self.b_, self.nu_).sum())

    @abstractmethod
    def _fit_dependence(self, p: np.ndarray, sign: np.ndarray) -> None:
        """Set ``a_``, ``b_`` and ``nu_`` from the training tails ``p`` and signs (T, N)."""

    def _marginal_tails(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tails ``min(u, 1 - u)`` of the PITs of standardised residuals ``z``, and their sides."""
        nu = self._marginal_nu()
        c = t_scale(nu)
        p = np.column_stack([lower_tail(z[:, i] * c[i], nu[i]) for i in range(len(nu))])
        return p, np.sign(z)

    def _marginal_nu(self) -> np.ndarray:
        return np.array([m["nu"] for m in self.marginals_.values()])

    def _filter_marginals(self, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per column: residuals, sigma_t (T, N), z_t, the marginal log densities and next sigma^2."""
        out = [garch_filter(m, y[:, i]) for i, m in enumerate(self.marginals_.values())]
        eps = np.column_stack([o[0] for o in out])
        sigma = np.sqrt(np.column_stack([o[1] for o in out]))
        z = eps / sigma
        nu = self._marginal_nu()
        logf = np.column_stack([std_logpdf(z[:, i], nu[i]) for i in range(len(nu))]) - np.log(sigma)
        return eps, sigma, z, logf, np.array([o[2] for o in out])

    @staticmethod
    def _scores(p: np.ndarray, sign: np.ndarray, nu: float) -> np.ndarray:
        """Copula scores ``G^{-1}(u)`` from the tail probabilities ``p`` and sides ``sign`` of the PITs."""
        return from_tail(p, sign, nu)

    def _chain(self, x: np.ndarray, corr: np.ndarray) -> np.ndarray:
        """The copula's chain-rule terms (T, N) of the scores ``x`` under ``corr``."""
        if self._tail_mixture():
            return mixture_chain(lower_tail(x, self.nu_), np.sign(x), np.linalg.cholesky(corr),
                                 self.tail_weights_)
        return chain_terms(x, np.linalg.cholesky(corr), self.nu_)

    def _tail_mixture(self) -> bool:
        """Whether the copula is a fitted mixture of t copulas over :data:`TAIL_GRID` (``'t-mix'``)."""
        return getattr(self, "tail_weights_", None) is not None

    def _draw_scores(self, corr: np.ndarray, rng: np.random.Generator,
                     n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` joint draws: the scores under ``nu_`` (what the recursion reads) and their tails and
        sides (what the marginals read), under ``corr`` (N, N) or one per draw (n, N, N). The tail
        mixture draws each path's component first."""
        if not self._tail_mixture():
            x = draw_scores(np.linalg.cholesky(corr), self.nu_, rng, n)
            return x, lower_tail(x, self.nu_), np.sign(x)
        k = rng.choice(len(TAIL_GRID), size=n, p=np.asarray(self.tail_weights_) / np.sum(self.tail_weights_))
        y = draw_scores(np.linalg.cholesky(corr), np.inf, rng, n)
        p = np.empty(y.shape)
        for c in np.unique(k):
            sel, nu = k == c, TAIL_GRID[c]
            if np.isfinite(nu):
                y[sel] *= np.sqrt(nu / rng.chisquare(nu, size=(int(sel.sum()), 1)))
            p[sel] = lower_tail(y[sel], nu)
        sign = np.sign(y)
        return from_tail(p, sign, self.nu_), p, sign

    def _draw_given(self, corr: np.ndarray, g: np.ndarray, p_g: np.ndarray, sign_g: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draws of all columns given the columns ``g``'s tails ``p_g`` and sides (n, k), exactly: as
        :meth:`_draw_scores`, the given columns' tails kept; the tail mixture picks each path's
        component from its weight times the component's density of the given columns."""
        n = len(p_g)
        if not self._tail_mixture():
            x = conditional_scores(corr, self.nu_, g, from_tail(p_g, sign_g, self.nu_), rng)
            return x, lower_tail(x, self.nu_), np.sign(x)
        corr_n = np.broadcast_to(corr, (n, *corr.shape[-2:]))
        post = self._component_posterior(p_g, sign_g, corr_n[:, g][:, :, g])
        k = (np.cumsum(post, axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=len(TAIL_GRID) - 1)
        p, sign = np.empty((n, corr.shape[-1])), np.empty((n, corr.shape[-1]))
        for c in np.unique(k):
            sel, nu = k == c, TAIL_GRID[c]
            x = conditional_scores(corr_n[sel], nu, g, from_tail(p_g[sel], sign_g[sel], nu), rng)
            p[sel], sign[sel] = lower_tail(x, nu), np.sign(x)
        p[:, g], sign[:, g] = p_g, sign_g
        return from_tail(p, sign, self.nu_), p, sign

    def _conditional_pits(self, x: np.ndarray, corr: np.ndarray, g: np.ndarray) -> np.ndarray:
        """:func:`conditional_pits` under the copula (the tail mixture: its components' PITs
        weighted by their posterior given the columns ``g``)."""
        if not self._tail_mixture():
            return conditional_pits(x, corr, g, self.nu_)
        p, sign = lower_tail(x, self.nu_), np.sign(x)
        corr_t = np.broadcast_to(corr, (len(x), *corr.shape[-2:]))
        post = self._component_posterior(p[:, g], sign[:, g], corr_t[:, g][:, :, g])   # (T, K)
        parts = [conditional_pits(from_tail(p, sign, nu), corr, g, nu) for nu in TAIL_GRID]
        return np.einsum("tk,ktr->tr", post, np.stack(parts))

    def _component_posterior(self, p_g: np.ndarray, sign_g: np.ndarray, corr_g: np.ndarray) -> np.ndarray:
        """The tail mixture's component probabilities ``(n, K)`` given the columns whose tails are
        ``p_g`` and sides ``sign_g`` (n, k) and correlations ``corr_g`` (n, k, k): each weight times
        the component's copula density of those columns, normalised."""
        chol_g = np.linalg.cholesky(corr_g)
        logw = np.log(np.maximum(np.asarray(self.tail_weights_, dtype=float), 1e-300))
        post = logw + np.stack([chain_terms(from_tail(p_g, sign_g, nu), chol_g, nu).sum(axis=1)
                                for nu in TAIL_GRID], axis=1)
        return np.exp(post - special.logsumexp(post, axis=1, keepdims=True))

    def _qbar(self, p: np.ndarray, sign: np.ndarray, nu: float) -> np.ndarray:
        """Correlation target: the second moment of the training scores (identity for independence)."""
        x = self._scores(p, sign, nu)
        return x.T @ x / len(x)

    def _correlations(self, x: np.ndarray, qbar: np.ndarray, a: float, b: float,
                      normalised: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """``R_t`` for each day (or one ``R`` if static) and ``Q`` of the day after ``x``.

        With ``normalised=False`` the first item is None: only the next day's ``Q`` (what the
        sampler needs) is computed.
        """
        if a == 0.0 and b == 0.0:
            return (normalise(qbar) if normalised else None), qbar
        n = x.shape[1]
        outer = np.einsum("ti,tj->tij", x, x)
        u = np.concatenate([qbar[None], (1 - a - b) * qbar + a * outer], axis=0).reshape(len(x) + 1, -1)
        q = signal.lfilter([1.0], [1.0, -b], u, axis=0).reshape(len(x) + 1, n, n)
        return (normalise(q[:-1]) if normalised else None), q[-1]

    def _q_update(self, q: np.ndarray, x: np.ndarray, qbar: np.ndarray) -> np.ndarray:
        """One step of the recursion for simulated paths: ``Q`` (n, N, N) of the day after scores ``x``."""
        return (1 - self.a_ - self.b_) * qbar + self.a_ * np.einsum("ni,nj->nij", x, x) + self.b_ * q

    def _copula_terms(self, p: np.ndarray, sign: np.ndarray, a: float, b: float, nu: float,
                      qbar: np.ndarray | None = None) -> np.ndarray:
        x = self._scores(p, sign, nu)
        qbar = x.T @ x / len(x) if qbar is None else qbar
        corr, _ = self._correlations(x, qbar, a, b)
        return chain_terms(x, np.linalg.cholesky(corr), nu)  # nu may differ from nu_ while fitting

    # ---- evaluation -------------------------------------------------------------------
    def _frame(self, r: pd.Series | pd.DataFrame, what: str) -> pd.DataFrame:
        self._check_fitted(what)
        frame = check_returns(r, what="context" if what == "sample" else "r")
        cols = [str(c) for c in frame.columns]
        if len(self.columns_) == 1 and len(cols) == 1:
            return frame
        if cols != self.columns_:
            raise DataError(f"{type(self).__name__} was fitted on columns {self.columns_} (in that order: "
                            f"the chain rule conditions each column on those before it); got {cols}")
        return frame

    def _state(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Everything the density and the sampler need from ``frame``, filtered causally."""
        y = frame.to_numpy(dtype=float)
        eps, sigma, z, logf, s2_next = self._filter_marginals(y)
        p, sign = self._marginal_tails(z)
        x = self._scores(p, sign, self.nu_)
        qbar = np.asarray(self.qbar_, dtype=float)
        corr, q_next = self._correlations(x, qbar, self.a_, self.b_)
        return {"y": y, "eps": eps, "sigma": sigma, "logf": logf, "x": x, "corr": corr,
                "s2_next": s2_next, "q_next": q_next}

    def _sampling_state(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next day's marginal variances, its ``Q`` and (static copulas) ``R``: only what
        :meth:`sample` needs, so a long context costs one pass of the filters."""
        y = frame.to_numpy(dtype=float)
        *_, z, _, s2_next = self._filter_marginals(y)
        qbar = np.asarray(self.qbar_, dtype=float)
        if self.a_ == 0.0 and self.b_ == 0.0:
            return s2_next, qbar, normalise(qbar)
        _, q_next = self._correlations(self._scores(*self._marginal_tails(z), self.nu_), qbar, self.a_,
                                       self.b_, normalised=False)
        return s2_next, q_next, normalise(q_next)

    def _wrap(self, values: np.ndarray, r: pd.Series | pd.DataFrame, frame: pd.DataFrame) -> Any:
        out = pd.DataFrame(values, index=frame.index, columns=frame.columns)
        return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out

    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """``log p(r_{t,j} | r_{t,<j}, r_{<t})`` per cell (the chain rule; rows sum to the joint)."""
        frame = self._frame(r, "log_prob")
        self._no_exog(exog)
        st = self._state(frame)
        return self._wrap(st["logf"] + self._chain(st["x"], st["corr"]), r, frame)

    def conditional_log_prob(self, r: pd.DataFrame, given: Sequence[str]) -> pd.Series:
        """``log p(r_{t,rest} | r_{t,given}, r_{<t})`` per day: the other columns given ``given``
        on the same day, exactly (``joint_log_prob`` minus the given columns' joint density)."""
        frame = self._frame(r, "conditional_log_prob")
        g = self._given_positions(given)
        st = self._state(frame)
        order = np.r_[g, np.setdiff1d(np.arange(frame.shape[1]), g)]
        corr = st["corr"][..., order, :][..., :, order]
        cop = self._chain(st["x"][:, order], corr)
        rest = order[len(g):]
        total = cop[:, len(g):].sum(axis=1) + st["logf"][:, rest].sum(axis=1)
        return pd.Series(total, index=frame.index, name="conditional_log_prob")

    def conditional_cdf(self, r: pd.DataFrame, given: Sequence[str]) -> pd.DataFrame:
        """PITs of the other columns, each given only ``given``'s same-day returns and the past.

        ``P(R_{t,j} <= r_{t,j} | r_{t,given}, r_{<t})`` for every column ``j`` not in ``given``: with
        ``K = R_jg R_gg^{-1}`` and ``s^2 = 1 - K R_gj``, the score ``x_j`` given ``x_g`` is
        ``N(K x_g, s^2)`` (Gaussian copula) or ``t_{nu+k}(K x_g, (nu + d) / (nu + k) s^2)`` with
        ``d = x_g' R_gg^{-1} x_g`` (t copula), and ``x_j`` is increasing in ``r_j``. Uniform and
        independent over days when the model is right: the calibration of stress conditioning.
        """
        frame = self._frame(r, "conditional_cdf")
        g = self._given_positions(given)
        rest = np.setdiff1d(np.arange(frame.shape[1]), g)
        st = self._state(frame)
        u = self._conditional_pits(st["x"], st["corr"], g)
        return pd.DataFrame(u, index=frame.index, columns=frame.columns[rest])

    def conditional_predictive(self, r: pd.DataFrame, *, given: Literal["others", "left"] = "others",
                               exog: Exog = None) -> dict[str, CopulaConditionalPredictive]:
        """Each column's one-step law given the past *and* the same day's other columns, exactly.

        Parameters
        ----------
        r : DataFrame
            Returns with the model's columns (in its order).
        given : {'others', 'left'}, default 'others'
            ``'others'``: ``p(r_{t,j} | r_{t,-j}, r_{<t})``, every other column of the same day
            (leave one out). With the correlation ``R_t`` and its inverse ``P``, the score ``x_j``
            given the others is ``N(m_j, 1 / P_jj)`` with ``m_j = x_j - (P x)_j / P_jj``
            (Gaussian copula), or a t with ``nu + N - 1`` degrees of freedom, location ``m_j``
            and squared scale ``(nu + d_j) / (nu + N - 1) / P_jj`` with
            ``d_j = x' P x - (P x)_j^2 / P_jj``, the others' Mahalanobis norm (t copula).
            ``'left'``: given the columns to its left (the chain rule's order), whose log density
            is exactly the cell of :meth:`log_prob`; the first column's law is the marginal one.
        exog : None
            The model takes no covariates.

        Returns
        -------
        dict of str to CopulaConditionalPredictive
            By column: exact ``cdf`` (conditional PIT values), ``ppf`` and ``log_prob``. Uniform
            PITs on data from the model; an asset that breaks from the others on a day (e.g. one
            stock reversing on a market day) gets an extreme PIT even at an ordinary size.
        """
        frame = self._frame(r, "conditional_predictive")
        self._no_exog(exog)
        if given not in ("others", "left"):
            raise DataError(f"given must be 'others' or 'left', got {given!r}")
        sigma, loc, scale, extra = self._laws(frame.to_numpy(dtype=float), given)
        nu = self.nu_
        marg = list(self.marginals_.values())
        return {str(c): CopulaConditionalPredictive(
            frame.index, float(marg[j]["mu"]), sigma[:, j].copy(), float(marg[j]["nu"]), float(nu),
            float(nu + extra[j]), loc[:, j].copy(), scale[:, j].copy()) for j, c in enumerate(frame.columns)}

    def _laws(self, y: np.ndarray, given: str) -> tuple[np.ndarray, ...]:
        """GARCH ``sigma`` and the location and scale of each score's conditional law (T, N), and
        the copula's extra degrees of freedom per column, for :meth:`conditional_predictive`.

        Everything is causal (row ``t`` depends on rows ``<= t``), so the rows a previous call saw
        unchanged are reused and the recursions restart from their state there: a detector that
        rescores a long history after editing one day recomputes only the days from the edit on.
        """
        key = (given, repr(self._get_state()))
        cache = getattr(self, "_laws_cache", None)
        k = 0
        if cache is not None and cache["key"] == key:
            n = min(len(y), len(cache["y"]))
            same = np.all(cache["y"][:n] == y[:n], axis=1)
            k = n if same.all() else int(np.argmin(same))
        else:
            cache = None
        if cache is not None and k == len(y):  # a prefix of the rows seen: nothing to recompute
            n_cols = y.shape[1]
            extra = np.full(n_cols, n_cols - 1.0) if given == "others" else np.arange(n_cols, dtype=float)
            return np.sqrt(cache["s2"][:k]), cache["loc"][:k], cache["scale"][:k], extra
        marg = list(self.marginals_.values())
        mu = np.array([m["mu"] for m in marg])
        eps = y[k:] - mu
        s2 = np.empty(eps.shape)
        for i, m in enumerate(marg):  # the GARCH variance recursion of garch_filter, from row k
            e2_prev, s2_prev = ((m["backcast"], m["backcast"]) if k == 0
                                else (cache["eps"][k - 1, i] ** 2, cache["s2"][k - 1, i]))
            u = m["omega"] + m["alpha"] * np.r_[e2_prev, eps[:-1, i] ** 2]
            s2[:, i] = signal.lfilter([1.0], [1.0, -m["beta"]], u, zi=[m["beta"] * s2_prev])[0]
        x = self._scores(*self._marginal_tails(eps / np.sqrt(s2)), self.nu_)
        qbar = np.asarray(self.qbar_, dtype=float)
        q = None
        if self.a_ == 0.0 and self.b_ == 0.0:
            corr = normalise(qbar)
        else:  # Q_t = (1 - a - b) Qbar + a x_{t-1} x_{t-1}' + b Q_{t-1}, Q_0 = Qbar, as _correlations
            n_cols = y.shape[1]
            if k == 0:
                u = np.concatenate([qbar[None], (1 - self.a_ - self.b_) * qbar
                                    + self.a_ * np.einsum("ti,tj->tij", x[:-1], x[:-1])], axis=0)
                zi = np.zeros((1, n_cols * n_cols))
            else:
                x_all = np.vstack([cache["x"][k - 1: k], x[:-1]])
                u = (1 - self.a_ - self.b_) * qbar + self.a_ * np.einsum("ti,tj->tij", x_all, x_all)
                zi = self.b_ * cache["q"][k - 1].reshape(1, -1)
            q = signal.lfilter([1.0], [1.0, -self.b_], u.reshape(len(u), -1), axis=0,
                               zi=zi)[0].reshape(len(u), n_cols, n_cols)
            corr = normalise(q)
        loc, scale, extra = self._given_laws(x, corr, given)
        if cache is not None and k:
            def join(name: str, new: np.ndarray) -> np.ndarray:
                return np.concatenate([cache[name][:k], new])
            eps, s2, x, loc, scale = (join(n, v) for n, v in
                                      (("eps", eps), ("s2", s2), ("x", x), ("loc", loc), ("scale", scale)))
            q = None if q is None else join("q", q)
        self._laws_cache = {"key": key, "y": y.copy(), "eps": eps, "s2": s2, "x": x, "q": q, "loc": loc,
                            "scale": scale}
        return np.sqrt(s2), loc, scale, extra

    def _given_laws(self, x: np.ndarray, corr: np.ndarray, given: str) -> tuple[np.ndarray, ...]:
        """Location and scale (T, N) of each score's law given the others (or those to its left)
        under ``corr`` (N, N) or (T, N, N), and the extra degrees of freedom per column."""
        if self._tail_mixture():
            raise DataError("conditional_predictive is closed form for one t (or Gaussian) copula; "
                            "family='t-mix' gives a mixture of them there: use family='t'")
        nu, n_cols = self.nu_, x.shape[1]
        if given == "others":
            prec = np.linalg.inv(corr)
            diag = np.diagonal(prec, axis1=-2, axis2=-1)
            px = x @ prec if prec.ndim == 2 else np.einsum("tij,tj->ti", prec, x)
            loc, var = x - px / diag, np.broadcast_to(1.0 / diag, x.shape)
            extra = np.full(n_cols, n_cols - 1.0)
            if np.isfinite(nu):
                d = (x * px).sum(1, keepdims=True) - px**2 / diag
                var = var * (nu + d) / (nu + extra)
        else:
            w, diag = whiten(np.linalg.cholesky(corr), x)
            loc, var = x - diag * w, diag**2
            extra = np.arange(n_cols, dtype=float)
            if np.isfinite(nu):
                q = np.cumsum(w**2, axis=1) - w**2  # q_j = sum_{k<j} w_k^2
                var = var * (nu + q) / (nu + extra)
        return loc, np.sqrt(var), extra

    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> LocScalePredictive | dict[str, LocScalePredictive]:
        """Each column's marginal one-step law ``p(r_{t,j} | r_{<t})`` (GARCH location-scale)."""
        frame = self._frame(r, "predictive")
        self._no_exog(exog)
        _, sigma, *_ = self._filter_marginals(frame.to_numpy(dtype=float))
        dist = "t" if self.dist == "t" else "normal"
        out = {}
        for i, (c, m) in enumerate(zip(frame.columns, self.marginals_.values(), strict=True)):
            params = (m["nu"],) if dist == "t" else ()
            out[str(c)] = LocScalePredictive(frame.index, np.full(len(frame), m["mu"]), sigma[:, i].copy(),
                                             dist, params)
        return next(iter(out.values())) if isinstance(r, pd.Series) else out

    def _no_exog(self, exog: Exog) -> None:
        if exog is not None:
            raise DataError(f"{type(self).__name__} takes no exog; drop the argument")

    def _given_positions(self, given: Sequence[str] | Mapping[str, Any]) -> np.ndarray:
        names = list(given)
        unknown = [g for g in names if str(g) not in self.columns_]
        if unknown or len(set(names)) != len(names):
            raise DataError(f"given names columns {unknown or names} that are not distinct columns of the "
                            f"model; columns are {self.columns_}")
        return np.array([self.columns_.index(str(g)) for g in names], dtype=int)

    # ---- sampling ---------------------------------------------------------------------
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None,
               given: Mapping[str, float | Sequence[float]] | None = None) -> Scenarios:
        """Joint paths of all columns; ``given`` fixes some columns and draws the others exactly.

        Parameters
        ----------
        given : mapping, optional
            Column name -> a return (for the first simulated day) or a sequence of returns (the
            first ``len`` days), e.g. ``{"SP500": -5.0}``. On those days the other columns are
            drawn from the copula's exact conditional law given the given columns' scores; the
            given columns' paths hold the given values, and all paths go on from there.
        """
        frame = self._frame(context, "sample")
        self._no_exog(exog)
        if exog_future is not None:
            raise DataError(f"{type(self).__name__} takes no exog_future; drop the argument")
        check_length(frame, 1, what=f"{type(self).__name__}.sample context")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        fixed = self._given_values(given, horizon)
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        s2_next, q_next, corr_next = self._sampling_state(frame)
        mu = np.array([m["mu"] for m in self.marginals_.values()])
        omega, alpha, beta, nu_m = (np.array([m[k] for m in self.marginals_.values()])
                                    for k in ("omega", "alpha", "beta", "nu"))
        c_m = t_scale(nu_m)
        n_cols = len(mu)
        qbar = np.asarray(self.qbar_, dtype=float)
        dynamic = not (self.a_ == 0.0 and self.b_ == 0.0)
        s2 = np.broadcast_to(s2_next, (n_paths, n_cols)).copy()
        q = q_next
        paths = np.empty((n_paths, horizon, n_cols))
        for h in range(horizon):
            corr = corr_next if h == 0 or not dynamic else normalise(q)  # per path after the first day
            if h in fixed:
                g, values = fixed[h]
                z_g = (values - mu[g]) / np.sqrt(s2[:, g])
                p_g = np.column_stack([lower_tail(z_g[:, i] * c_m[gi], nu_m[gi]) for i, gi in enumerate(g)])
                x, p, sign = self._draw_given(corr, g, p_g, np.sign(z_g), rng)
            else:
                x, p, sign = self._draw_scores(corr, rng, n_paths)
            z = np.column_stack([from_tail(p[:, i], sign[:, i], nu_m[i]) for i in range(n_cols)]) / c_m
            eps = np.sqrt(s2) * z
            ret = mu + eps
            if h in fixed:  # the given values exactly, not their round trip through the scores
                ret[:, g] = values
                eps[:, g] = values - mu[g]
            paths[:, h] = ret
            s2 = omega + alpha * eps**2 + beta * s2
            if dynamic:
                q = self._q_update(q, x, qbar)
        return Scenarios(paths, future_index(frame.index, horizon), [str(c) for c in frame.columns],
                         seed=seed, joint=self.family != "independent")

    def _given_values(self, given: Mapping[str, Any] | None,
                      horizon: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{day: (column positions, values)}`` from ``given``, validated."""
        if given is None:
            return {}
        if not isinstance(given, Mapping) or not given:
            raise DataError("given must be a non-empty mapping of column name -> return(s), "
                            "e.g. {'SP500': -5.0}")
        pos = self._given_positions(given)
        by_day: dict[int, list[tuple[int, float]]] = {}
        for name, col in zip(given, pos, strict=True):
            vals = np.atleast_1d(np.asarray(given[name], dtype=float))
            if vals.ndim != 1 or len(vals) > horizon or not np.isfinite(vals).all():
                raise DataError(f"given[{name!r}] must be a finite return or a sequence of at most horizon "
                                f"= {horizon} returns, got {given[name]!r}")
            for h, v in enumerate(vals):
                by_day.setdefault(h, []).append((int(col), float(v)))
        return {h: (np.array([c for c, _ in cv]), np.array([v for _, v in cv])) for h, cv in by_day.items()}

    # ---- model files ------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {"columns": self.columns_, "series_name": self.series_name_, "marginals": self.marginals_,
                "a": self.a_, "b": self.b_, "nu": self.nu_, "qbar": self.qbar_, "n_obs": self.n_obs_,
                "tail_weights": self.tail_weights_,
                "copula_loglik": self.copula_loglik_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = list(state["columns"])
        self.series_name_ = state["series_name"]
        self.marginals_ = {str(k): {n: float(v) for n, v in m.items()} for k, m in state["marginals"].items()}
        self.a_, self.b_, self.nu_ = float(state["a"]), float(state["b"]), float(state["nu"])
        weights = state.get("tail_weights")
        self.tail_weights_ = None if weights is None else [float(w) for w in weights]
        self.qbar_ = [[float(v) for v in row] for row in state["qbar"]]
        self.n_obs_ = int(state["n_obs"])
        self.copula_loglik_ = float(state["copula_loglik"])


@register("copula")
class Copula(CopulaGARCH):
    """GARCH(1,1)-t marginals joined by a static Gaussian or Student-t copula.

    ``R`` is the normalised second moment of the training copula scores (correlation
    targeting); for the t copula ``nu`` maximises the copula likelihood with ``R(nu)`` profiled
    the same way. ``family='independent'`` is the product of the marginals (independent
    GARCH-t per column), the reference a joint model must beat.

    Parameters
    ----------
    family : {'t', 'gaussian', 'independent'}, default 't'
    dist : {'t', 'normal'}, default 't'
        The marginals' standardised innovations.
    mean : {'constant', 'zero'}, default 'constant'

    Attributes
    ----------
    marginals_ : dict
        Per column: ``mu, omega, alpha, beta, nu`` (``inf`` for normal), arch's ``backcast`` and
        training ``loglikelihood``.
    qbar_ : list of lists
        The correlation target (``R = normalise(qbar_)``).
    nu_ : float
        The t copula's degrees of freedom (``inf`` for the Gaussian and independence copulas).
    copula_loglik_ : float
        The copula's training log-likelihood (the gain over independent marginals).

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500-stocks")[["SP500", "JPM", "BAC"]]).loc["2005":"2014"]
    >>> m = finar.models.create("copula", family="t").fit(r)
    >>> ind = finar.models.create("copula", family="independent").fit(r)
    >>> bool(m.joint_log_prob(r).mean() > ind.joint_log_prob(r).mean() + 0.5)  # nats per day
    True
    """

    _families: ClassVar[tuple[str, ...]] = ("t", "gaussian", "independent")

    def _fit_dependence(self, p: np.ndarray, sign: np.ndarray) -> None:
        if self.family == "gaussian":
            return
        if self.family == "independent":
            return

        def nll(log_excess: float) -> float:
            nu = _NU_RANGE[0] + np.exp(log_excess)
            return -float(self._copula_terms(p, sign, 0.0, 0.0, nu).mean())

        res = optimize.minimize_scalar(nll, bounds=(np.log(0.01), np.log(_NU_RANGE[1])), method="bounded",
                                       options={"xatol": 1e-4})
        self.nu_ = float(_NU_RANGE[0] + np.exp(res.x))

    def _qbar(self, p: np.ndarray, sign: np.ndarray, nu: float) -> np.ndarray:
        if self.family == "independent":
            return np.eye(p.shape[1])
        return super()._qbar(p, sign, nu)

    def _copula_terms(self, p: np.ndarray, sign: np.ndarray, a: float, b: float, nu: float,
                      qbar: np.ndarray | None = None) -> np.ndarray:
        if self.family == "independent":
            return np.zeros(p.shape)
        return super()._copula_terms(p, sign, a, b, nu, qbar)

    def _chain(self, x: np.ndarray, corr: np.ndarray) -> np.ndarray:
        return np.zeros(x.shape) if self.family == "independent" else super()._chain(x, corr)
