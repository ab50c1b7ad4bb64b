"""DCC(1,1): GARCH(1,1)-t marginals with dynamic conditional correlation (Engle 2002).

The marginals are those of :class:`finar.models.copula.CopulaGARCH` (GARCH(1,1)-t per column,
fitted by arch). The dependence is a Gaussian or Student-t copula whose correlation follows the
DCC(1,1) recursion on the copula scores ``x_t = G^{-1}(u_t)`` of the marginal PITs,

.. math::

    Q_t = (1 - a - b) \\bar Q + a\\, x_{t-1} x_{t-1}^\\top + b\\, Q_{t-1}, \\qquad
    R_t = \\operatorname{diag}(Q_t)^{-1/2} Q_t \\operatorname{diag}(Q_t)^{-1/2}, \\qquad Q_0 = \\bar Q,

with correlation targeting (``Qbar`` the second moment of the training scores). For the Gaussian
copula the scores are the normal quantiles of the PITs, so this is Engle's DCC on
PIT-transformed residuals (his Gaussian shocks, with the marginals kept exactly GARCH-t); the
t copula has Student-t joint shocks with one tail parameter ``nu`` (Christoffersen, Errunza,
Jacobs & Langlois 2012). Estimation is Engle's two-step QML: the marginals column by column,
then ``a, b`` (and ``nu``) maximise the copula likelihood on the training PITs, with
``a, b >= 0`` and ``a + b < 1`` enforced by the parameterisation. The recursion is a first-order
linear filter of the outer products (``scipy.signal.lfilter``), started from ``Qbar`` at the
first row of whatever series is scored, so ``log_prob`` is causal on any series.

References
----------
Engle, R. (2002). Dynamic conditional correlation. JBES 20(3), 339-350.
Christoffersen, P., Errunza, V., Jacobs, K. and Langlois, H. (2012). Is the potential for
international diversification disappearing? A dynamic copula approach. RFS 25(12), 3711-3751.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
from scipy import optimize, special

from finar.errors import ConvergenceWarning
from finar.models.base import register
from finar.models.copula import _NU_RANGE, CopulaGARCH

__all__ = ["DCC"]

_PERSISTENCE_MAX = 0.9995  # a + b stays below this (covariance stationarity of Q_t)


@register("dcc")
class DCC(CopulaGARCH):
    """DCC(1,1) over GARCH(1,1)-t marginals, with Student-t (default) or Gaussian joint shocks.

    Parameters
    ----------
    family : {'t', 'gaussian', 't-mix'}, default 't'
        The copula of the joint shocks. ``'t-mix'``: a mixture of t copulas over the degrees of
        freedom of :data:`finar.models.copula.TAIL_GRID` sharing the DCC correlation (fitted after
        the t copula's stage, weights by maximum likelihood on the training PITs): heavier and
        lighter joint tails in one density, with the t copula's ``nu_`` kept for the recursion's
        scores.
    dist : {'t', 'normal'}, default 't'
        The marginals' standardised innovations.
    mean : {'constant', 'zero'}, default 'constant'

    Attributes
    ----------
    a_, b_ : float
        DCC news and decay parameters.
    nu_ : float
        The t copula's degrees of freedom (``inf`` for the Gaussian copula).
    qbar_ : list of lists
        The correlation target ``Qbar``.
    marginals_ : dict
        Per column: ``mu, omega, alpha, beta, nu``, arch's ``backcast`` and training ``loglikelihood``.
    copula_loglik_ : float
        The copula's training log-likelihood.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500-stocks")[["SP500", "JPM", "XOM"]]).loc["2005":"2014"]
    >>> m = finar.models.create("dcc", family="t").fit(r)
    >>> bool(0 < m.a_ < 0.2 and m.a_ + m.b_ < 1)
    True
    >>> m.sample(r, horizon=20, n_paths=100, seed=0).paths.shape
    (100, 20, 3)
    """

    _families: ClassVar[tuple[str, ...]] = ("t", "gaussian", "t-mix")

    @staticmethod
    def _unpack(theta: np.ndarray) -> tuple[float, float, float]:
        """Unconstrained ``theta`` -> ``(a, b, nu)`` with ``a, b >= 0``, ``a + b < 1``, ``nu > 2``."""
        s = _PERSISTENCE_MAX * special.expit(theta[0])
        a = s * special.expit(theta[1])
        nu = min(_NU_RANGE[0] + np.exp(theta[2]), _NU_RANGE[1]) if len(theta) > 2 else np.inf
        return float(a), float(s - a), float(nu)

    def _fit_dependence(self, p: np.ndarray, sign: np.ndarray) -> None:
        t_copula = self.family in ("t", "t-mix")
        x_gauss = self._scores(p, sign, np.inf)
        qbar_gauss = x_gauss.T @ x_gauss / len(x_gauss)

        def nll(theta: np.ndarray) -> float:
            a, b, nu = self._unpack(theta)
            qbar = None if t_copula else qbar_gauss  # t scores (and their target) change with nu
            value = -float(self._copula_terms(p, sign, a, b, nu, qbar).mean())
            return value if np.isfinite(value) else 1e10

        # start near typical daily equity estimates: a + b = 0.97, a = 0.02, nu = 12
        theta0 = np.array([special.logit(0.97 / _PERSISTENCE_MAX), special.logit(0.02 / 0.97)]
                          + ([np.log(12.0 - _NU_RANGE[0])] if t_copula else []))
        res = optimize.minimize(nll, theta0, method="L-BFGS-B", options={"maxiter": 500})
        if not res.success:
            warnings.warn(f"DCC: the copula likelihood's optimiser did not converge ({res.message})",
                          ConvergenceWarning, stacklevel=3)
        self.a_, self.b_, self.nu_ = self._unpack(res.x)
