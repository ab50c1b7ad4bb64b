"""Statistical tests of forecasts: VaR backtests, ES backtest, PIT uniformity, Diebold-Mariano.

Every test takes 1-D arrays or Series (one value per forecast day) and returns a
:class:`TestResult`. As in protocol P1, VaR and ES are *positive losses* and a VaR exception
("hit") on day t is ``r_t < -VaR_t``. scipy supplies the distributions and the KS test; the
backtests are short closed forms written here because neither statsmodels nor arch has them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from scipy.special import xlogy

from finar.errors import DataError, NonFiniteValueError, SeriesTooShortError, format_rows

__all__ = ["TestResult", "kupiec_pof", "christoffersen_independence", "christoffersen_cc",
           "traffic_light", "acerbi_szekely_z2", "pit_uniformity", "diebold_mariano"]

Series1D = npt.ArrayLike | pd.Series
Sampler = Callable[[np.random.Generator, int], np.ndarray]

PIT_EPS = 1e-12  # PITs are clipped to (PIT_EPS, 1 - PIT_EPS) before the normal quantile
_ZONES = ("green", "yellow", "red")


@dataclass(frozen=True)
class TestResult:
    """Outcome of one test: its name, statistic, p-value and test-specific details.

    Examples
    --------
    >>> import numpy as np
    >>> from finar.evaluation.stattests import kupiec_pof
    >>> res = kupiec_pof(np.r_[np.ones(8), np.zeros(242)], alpha=0.01)
    >>> round(res.statistic, 3), round(res.p_value, 4), res.extra["n_hits"]
    (7.734, 0.0054, 8)
    """

    __test__ = False  # not a pytest test class despite the name

    name: str
    statistic: float
    p_value: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of plain Python values (``json.dumps``-ready): name, statistic, p_value
        and the ``extra`` items; arrays become lists, Series dicts keyed by ``str(index)``,
        NaN becomes ``None``."""
        out = {"name": self.name, "statistic": self.statistic, "p_value": self.p_value}
        out.update(self.extra)
        return {k: _plain(v) for k, v in out.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Series | dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and not np.isfinite(v) else v


# --- input checks --------------------------------------------------------------------------

def _as_1d(x: Series1D, name: str, *, need: int = 1, allow_nan: bool = False,
           fix: str = "drop or fill those days before testing") -> tuple[np.ndarray, pd.Index | None]:
    index = x.index if isinstance(x, pd.Series) else None
    try:
        a = x.to_numpy(dtype=float, na_value=np.nan) if isinstance(x, pd.Series) else np.asarray(x, float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from exc
    if a.ndim != 1:
        raise DataError(f"{name} must be one-dimensional (one value per day), got shape {a.shape}; "
                        "test one series at a time")
    _check_length(a, need, name)
    bad = ~np.isfinite(a) if not allow_nan else np.isinf(a)
    if bad.any():
        rows = index[bad] if index is not None else np.flatnonzero(bad)
        raise NonFiniteValueError(f"{name} has non-finite values at rows {format_rows(rows)}; "
                                  f"{fix}")
    return a, index


def _check_alpha(alpha: float) -> float:
    if not isinstance(alpha, int | float | np.number) or not 0 < alpha < 1:
        raise DataError(f"alpha must be a tail probability in (0, 1), e.g. 0.01 for 99% VaR; got {alpha!r}")
    return float(alpha)


def _check_length(a: np.ndarray, needed: int, what: str) -> None:
    if len(a) < needed:
        raise SeriesTooShortError(f"{what} needs at least {needed} observations here, got {len(a)}; "
                                  "pass a longer series")


def _hits(hits: Series1D, need: int = 1) -> tuple[np.ndarray, pd.Index | None]:
    a, index = _as_1d(hits, "hits", need=need)
    bad = (a != 0) & (a != 1)
    if bad.any():
        rows = index[bad] if index is not None else np.flatnonzero(bad)
        raise DataError(f"hits must be 0/1 or boolean exception indicators (1 when r_t < -VaR_t); "
                        f"got {a[bad][:3].tolist()} at rows {format_rows(rows)}")
    return a.astype(bool), index


def _pair(a: Series1D, b: Series1D, names: tuple[str, str], **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    x, ix = _as_1d(a, names[0], **kw)
    y, iy = _as_1d(b, names[1], **kw)
    if len(x) != len(y):
        raise DataError(f"{names[0]} and {names[1]} must have one value per day each; "
                        f"got lengths {len(x)} and {len(y)}")
    if ix is not None and iy is not None and not ix.equals(iy):
        raise DataError(f"{names[0]} and {names[1]} have different indexes; align them first "
                        "(e.g. finar.align or Series.align)")
    return x, y


# --- VaR backtests -------------------------------------------------------------------------

def kupiec_pof(hits: Series1D, alpha: float) -> TestResult:
    """Kupiec (1995) proportion-of-failures likelihood-ratio test of the VaR hit rate.

    With ``x`` hits in ``T`` days and ``p = x / T``,

    .. math::

        LR_{pof} = -2 \\log \\frac{(1-\\alpha)^{T-x} \\alpha^x}{(1-p)^{T-x} p^x}
        \\sim \\chi^2_1,

    using ``0 log 0 = 0``, so zero hits and all hits give finite statistics.

    Parameters
    ----------
    hits : array or Series of 0/1 or bool
        1 on the days where ``r_t < -VaR_t``.
    alpha : float
        Nominal exception probability (0.01 for a 99% VaR).

    Returns
    -------
    TestResult
        ``extra``: ``n_obs``, ``n_hits``, ``hit_rate``, ``expected_hits``, ``alpha``.

    References
    ----------
    Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models.
    Journal of Derivatives 3(2), 73-84.
    """
    h, _ = _hits(hits)
    alpha = _check_alpha(alpha)
    n, x = len(h), int(h.sum())
    # 2 [x log(p / alpha) + (T - x) log((1 - p) / (1 - alpha))]; xlogy makes 0 log 0 = 0
    lr = max(2.0 * float(xlogy(x, x / (n * alpha)) + xlogy(n - x, (n - x) / (n * (1 - alpha)))), 0.0)
    return TestResult("kupiec_pof", lr, float(stats.chi2.sf(lr, 1)),
                      {"n_obs": n, "n_hits": x, "hit_rate": x / n, "expected_hits": n * alpha,
                       "alpha": alpha})


def _nlogn(v: np.ndarray) -> float:
    return float(xlogy(v, v).sum())  # sum of n log n, with 0 log 0 = 0


def christoffersen_independence(hits: Series1D) -> TestResult:
    """Christoffersen (1998) test that VaR hits are independent against a first-order Markov chain.

    With ``n_ij`` the number of days in state ``j`` following a day in state ``i`` (1 = hit),
    ``pi_01 = n_01 / (n_00 + n_01)``, ``pi_11 = n_11 / (n_10 + n_11)`` and
    ``pi = (n_01 + n_11) / (T - 1)``,

    .. math::

        LR_{ind} = -2 \\log \\frac{(1-\\pi)^{n_{00}+n_{10}} \\pi^{n_{01}+n_{11}}}
        {(1-\\pi_{01})^{n_{00}} \\pi_{01}^{n_{01}} (1-\\pi_{11})^{n_{10}} \\pi_{11}^{n_{11}}}
        \\sim \\chi^2_1.

    Empty cells contribute ``0 log 0 = 0`` (no NaN with no hits, all hits or no clustered hits).
    With few hits the test is discrete and the chi-square approximation coarse: the measured
    rejection rate at 5% is about 0.02 for T = 1,000 at alpha = 1%, 0.08 for T = 1,000 at 5%, and
    0.052 for T = 5,000 at 5% (tests/evaluation/test_stattests.py).

    Returns
    -------
    TestResult
        ``extra``: ``n00 n01 n10 n11``, ``pi01`` and ``pi11`` (``None`` when undefined), ``n_obs``.

    References
    ----------
    Christoffersen, P. (1998). Evaluating interval forecasts. Int. Economic Review 39, 841-862.
    """
    h, _ = _hits(hits, need=2)
    n = np.bincount(2 * h[:-1].astype(int) + h[1:], minlength=4).reshape(2, 2)  # n[i, j]: i -> j
    rows = n.sum(axis=1)
    # log L(pi01, pi11) - log L(pi) as sums of n log(n / total): finite with empty cells
    ll_markov = _nlogn(n) - _nlogn(rows)
    ll_iid = _nlogn(n.sum(axis=0)) - _nlogn(n.sum())
    lr = max(2.0 * (ll_markov - ll_iid), 0.0)
    pi = [float(n[i, 1] / rows[i]) if rows[i] else None for i in (0, 1)]
    return TestResult("christoffersen_independence", lr, float(stats.chi2.sf(lr, 1)),
                      {"n00": int(n[0, 0]), "n01": int(n[0, 1]), "n10": int(n[1, 0]),
                       "n11": int(n[1, 1]), "pi01": pi[0], "pi11": pi[1], "n_obs": len(h)})


def christoffersen_cc(hits: Series1D, alpha: float) -> TestResult:
    """Christoffersen (1998) conditional coverage test, ``LR_cc = LR_pof + LR_ind ~ chi2(2)``.

    ``LR_pof`` is :func:`kupiec_pof` on all ``T`` days and ``LR_ind`` the
    :func:`christoffersen_independence` statistic on the ``T - 1`` transitions (the common
    practice; Christoffersen's exact decomposition drops the first day from ``LR_pof``).

    Returns
    -------
    TestResult
        ``extra``: ``lr_pof``, ``lr_ind``, their p-values, and the counts of both tests.
    """
    pof, ind = kupiec_pof(hits, alpha), christoffersen_independence(hits)
    lr = pof.statistic + ind.statistic
    extra = {"lr_pof": pof.statistic, "p_pof": pof.p_value, "lr_ind": ind.statistic,
             "p_ind": ind.p_value, **pof.extra, **{k: v for k, v in ind.extra.items() if k != "n_obs"}}
    return TestResult("christoffersen_cc", lr, float(stats.chi2.sf(lr, 2)), extra)


def traffic_light(hits: Series1D, window: int = 250, alpha: float = 0.01) -> TestResult:
    """Basel traffic light on rolling windows of VaR exceptions.

    A window with ``x`` exceptions out of ``window`` days is *green* when the binomial
    probability ``P(X <= x)``, ``X ~ Bin(window, alpha)``, is below 95%, *yellow* below 99.99%
    and *red* otherwise: for 250 days at 99%, green 0-4, yellow 5-9, red 10 or more.

    ``hits`` (0/1 or bool) needs at least ``window`` days.

    Returns
    -------
    TestResult
        ``statistic``: exceptions in the last ``window`` days; ``p_value``: ``P(X >= x)`` under
        the nominal rate. ``extra``: ``last_zone`` (of the last window), ``cum_prob``
        (``P(X <= x)``), ``zones`` (one per rolling window, labelled by its last day: a Series
        when ``hits`` is one), ``counts`` (windows per zone), ``worst_zone``, ``green_max`` and
        ``yellow_max`` (the largest exception counts of those zones), ``window``, ``alpha``.

    References
    ----------
    Basel Committee on Banking Supervision (1996). Supervisory framework for the use of
    "backtesting" in conjunction with the internal models approach to market risk capital.
    """
    if not isinstance(window, int | np.integer) or isinstance(window, bool) or window < 1:
        raise DataError(f"window must be a positive integer number of days, got {window!r}")
    h, index = _hits(hits)
    _check_length(h, int(window), f"hits (window={window})")
    alpha = _check_alpha(alpha)
    csum = np.concatenate([[0], np.cumsum(h)])
    rolling = csum[window:] - csum[:-window]  # exceptions in each window, by its last day
    bounds = stats.binom.cdf(np.arange(window + 1), window, alpha)  # P(X <= x), x = 0..window
    cum = bounds[rolling]
    zones = np.where(cum < 0.95, "green", np.where(cum < 0.9999, "yellow", "red")).astype(object)
    x = int(rolling[-1])
    extra = {
        "last_zone": str(zones[-1]),
        "cum_prob": float(bounds[x]),
        "zones": pd.Series(zones, index=index[window - 1:], name="zone") if index is not None else zones,
        "counts": {z: int((zones == z).sum()) for z in _ZONES},
        "worst_zone": max(zones, key=_ZONES.index),
        "green_max": int(np.flatnonzero(bounds < 0.95)[-1]),
        "yellow_max": int(np.flatnonzero(bounds < 0.9999)[-1]),
        "window": int(window), "alpha": alpha,
    }
    return TestResult("traffic_light", float(x), float(stats.binom.sf(x - 1, window, alpha)), extra)


# --- expected shortfall --------------------------------------------------------------------

def _z2(r: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float) -> np.ndarray:
    # r: (..., T); the sum over days of r_t 1{r_t < -VaR_t} / (T alpha ES_t), plus 1
    return np.where(r < -var, r / es, 0.0).sum(axis=-1) / (r.shape[-1] * alpha) + 1.0


def _per_day(returns: Series1D, v: Series1D | float, name: str, T: int) -> np.ndarray:
    return np.full(T, float(v)) if np.ndim(v) == 0 else _pair(returns, v, ("returns", name))[1]


def acerbi_szekely_z2(returns: Series1D, var: Series1D | float, es: Series1D | float, alpha: float,
                      sampler: Sampler, n_sims: int = 10_000,
                      seed: int | np.random.Generator | None = 0) -> TestResult:
    """Acerbi & Szekely (2014) test 2 of expected shortfall, with a simulated p-value.

    .. math::

        Z_2 = \\sum_{t=1}^T \\frac{r_t \\, 1\\{r_t < -VaR_t\\}}{T \\alpha ES_t} + 1.

    Under H0 (the predictive distributions are right) ``E[Z2] = 0``; an ES that is too small
    gives ``Z2 < 0``. The test is one-sided: ``p = #{Z2_sim <= Z2_obs} / n_sims``, with
    ``Z2_sim`` computed with the same VaR and ES on returns drawn from each day's predictive.

    Parameters
    ----------
    returns : array or Series, length T
    var, es : array, Series or float
        Positive-loss VaR and ES per day (a float applies to every day); ES must be positive.
    alpha : float
        Tail probability (0.025 in P1).
    sampler : callable ``(rng, n) -> array (n, T)``
        Draws ``n`` return paths, day ``t`` from the predictive distribution of day ``t``.
        Called once, with ``n = n_sims`` (memory ``8 n_sims T`` bytes: 80 MB for P1).
    n_sims : int, default 10_000
    seed : int, Generator or None, default 0

    Returns
    -------
    TestResult
        ``extra``: ``n_hits``, ``n_sims``, ``alpha``, ``sim_mean`` (mean simulated Z2, near 0
        when the sampler matches VaR and ES), ``sim_q05`` (5% quantile of simulated Z2).

    References
    ----------
    Acerbi, C. and Szekely, B. (2014). Backtesting expected shortfall. Risk, December 2014.
    """
    r, _ = _as_1d(returns, "returns")
    T = len(r)
    var_a, es_a = _per_day(returns, var, "var", T), _per_day(returns, es, "es", T)
    if not np.isfinite(var_a).all() or not (es_a > 0).all() or not np.isfinite(es_a).all():
        raise DataError("var must be finite and es finite and positive (ES as a positive loss, "
                        "e.g. 2.3 for a 2.3% expected loss beyond VaR)")
    alpha = _check_alpha(alpha)
    if not isinstance(n_sims, int | np.integer) or n_sims < 1:
        raise DataError(f"n_sims must be a positive integer, got {n_sims!r}")
    if not callable(sampler):
        raise DataError("sampler must be a callable (rng, n) -> array of shape (n, T)")
    rng = np.random.default_rng(seed)
    z_obs = float(_z2(r, var_a, es_a, alpha))
    draws = np.asarray(sampler(rng, int(n_sims)), dtype=float)
    if draws.shape != (n_sims, T) or not np.isfinite(draws).all():
        raise DataError(f"sampler(rng, {n_sims}) must return finite values of shape ({n_sims}, {T}), "
                        f"got shape {draws.shape}")
    sims = _z2(draws, var_a, es_a, alpha)
    return TestResult("acerbi_szekely_z2", z_obs, float(np.mean(sims <= z_obs)),
                      {"n_hits": int((r < -var_a).sum()), "n_sims": int(n_sims), "alpha": alpha,
                       "sim_mean": float(sims.mean()), "sim_q05": float(np.quantile(sims, 0.05))})


# --- density forecasts ---------------------------------------------------------------------

def pit_uniformity(pit: Series1D, method: Literal["berkowitz", "ks"] = "berkowitz") -> TestResult:
    """Test that PIT values ``u_t = F_t(r_t)`` are i.i.d. U(0, 1).

    ``'ks'``: Kolmogorov-Smirnov test against U(0, 1) (``scipy.stats.kstest``); it checks the
    marginal only.

    ``'berkowitz'``: Berkowitz (2001) likelihood ratio. With ``z_t = Phi^{-1}(u_t)`` (PITs
    clipped to ``(1e-12, 1 - 1e-12)`` first, so PITs of exactly 0 or 1 map to about +/-7
    rather than infinity), fit the Gaussian AR(1)
    ``z_t = c + rho z_{t-1} + sigma eps_t`` by maximum likelihood conditional on ``z_1``
    (closed form: OLS, ``sigma^2 = SSR / (T - 1)``) and compare with ``c = 0, rho = 0, sigma = 1``:

    .. math::

        LR = 2 (\\ell_1 - \\ell_0) = \\sum_{t=2}^T z_t^2 - (T-1) \\log \\hat\\sigma^2 - (T-1)
        \\sim \\chi^2_3.

    Berkowitz uses the exact likelihood including ``z_1``; the two differ by O(1/T).

    Returns
    -------
    TestResult
        ``extra``: ``method``, ``n_obs``; for Berkowitz also ``c``, ``rho``, ``sigma2``.

    References
    ----------
    Berkowitz, J. (2001). Testing density forecasts, with applications to risk management.
    JBES 19, 465-474.
    """
    u, _ = _as_1d(pit, "pit")
    if ((u < 0) | (u > 1)).any():
        raise DataError(f"pit values must lie in [0, 1] (u_t = F_t(r_t)), got min {u.min():.4g}, "
                        f"max {u.max():.4g}")
    if method == "ks":
        res = stats.kstest(u, "uniform")
        return TestResult("ks", float(res.statistic), float(res.pvalue), {"method": "ks", "n_obs": len(u)})
    if method != "berkowitz":
        raise DataError(f"method must be 'berkowitz' or 'ks', got {method!r}")
    _check_length(u, 4, "pit (for method='berkowitz')")
    z = stats.norm.ppf(np.clip(u, PIT_EPS, 1 - PIT_EPS))
    y, x = z[1:], z[:-1]
    n = len(y)
    (c, rho), *_ = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)
    s2 = float(np.mean((y - c - rho * x) ** 2))
    if s2 <= 1e-14 * float(y @ y) / n:  # zero up to rounding
        raise DataError("pit is constant or exactly autoregressive, so the Berkowitz likelihood is "
                        "unbounded; check how the PITs were computed")
    lr = max(float(y @ y - n * np.log(s2) - n), 0.0)
    return TestResult("berkowitz", lr, float(stats.chi2.sf(lr, 3)),
                      {"method": "berkowitz", "n_obs": len(u), "c": float(c), "rho": float(rho),
                       "sigma2": s2})


def _newey_west(d: np.ndarray, lags: int) -> float:
    """Bartlett-kernel long-run variance ``g_0 + 2 sum_k (1 - k/(L+1)) g_k``, ``g_k`` with 1/T."""
    u = d - d.mean()
    T = len(u)
    lrv = u @ u / T
    for k in range(1, lags + 1):
        lrv += 2.0 * (1.0 - k / (lags + 1)) * (u[k:] @ u[:-k]) / T
    return float(lrv)


def diebold_mariano(score_a: Series1D, score_b: Series1D, h: int = 1, lags: int | None = None,
                    higher_is_better: bool = True, *, hln: bool = True, dropna: bool = False) -> TestResult:
    """Diebold-Mariano test of equal predictive accuracy on daily scores.

    With ``d_t = a_t - b_t`` and the Newey-West (Bartlett) long-run variance ``S`` of ``d``,

    .. math::

        DM = \\bar d / \\sqrt{S / T}, \\qquad
        DM_{HLN} = DM \\sqrt{(T + 1 - 2h + h(h-1)/T) / T} \\sim t_{T-1}.

    Without ``hln`` the p-value is from N(0, 1). Both are two-sided.

    Parameters
    ----------
    score_a, score_b : array or Series
        Daily scores of two forecasts of the same days (e.g. log predictive densities).
    h : int, default 1
        Forecast horizon.
    lags : int, optional
        HAC truncation lag. Default ``max(h - 1, floor(4 (T/100)^(2/9)))``: the Newey-West
        rule even at ``h = 1``, because score differences are autocorrelated through
        volatility regimes (6 lags for the 1,006 days of P1).
    higher_is_better : bool, default True
        Orientation of the scores (True for log scores, False for CRPS); it only decides
        ``extra['better']``. The statistic always has the sign of ``mean(a - b)``.
    hln : bool, default True
        Harvey, Leybourne & Newbold (1997) small-sample correction with a t(T-1) p-value.
    dropna : bool, default False
        Drop days where either score is NaN; otherwise NaNs raise :class:`DataError`.

    Returns
    -------
    TestResult
        ``extra``: ``mean_diff``, ``better`` (``'a'``, ``'b'`` or ``None`` on a tie), ``lrv``
        (the HAC variance ``S``), ``lags``, ``h``, ``hln``, ``n_obs``.

    References
    ----------
    Diebold, F. X. and Mariano, R. S. (1995). Comparing predictive accuracy. JBES 13, 253-263.
    Harvey, D., Leybourne, S. and Newbold, P. (1997). Testing the equality of prediction mean
    squared errors. Int. Journal of Forecasting 13, 281-291.
    """
    a, b = _pair(score_a, score_b, ("score_a", "score_b"), allow_nan=dropna,
                 fix="drop those days, or pass dropna=True to drop them here")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = (a - b)[keep]
    T = len(d)
    if not isinstance(h, int | np.integer) or h < 1:
        raise DataError(f"h must be a positive integer forecast horizon, got {h!r}")
    _check_length(d, max(3, 2 * h), "the score difference (after dropping NaNs)")
    if lags is None:
        lags = max(h - 1, int(np.floor(4 * (T / 100) ** (2 / 9))))
    if not isinstance(lags, int | np.integer) or not 0 <= lags < T:
        raise DataError(f"lags must be an integer in [0, {T - 1}], got {lags!r}")
    lrv = _newey_west(d, int(lags))
    if lrv <= 1e-14 * float(d @ d) / T:  # zero up to rounding: d is constant
        raise DataError("the score difference a - b is constant, so its variance is zero and the "
                        "DM test is undefined; check that the two score series differ")
    mean = float(d.mean())
    dm = mean / np.sqrt(lrv / T)
    if hln:
        dm *= np.sqrt((T + 1 - 2 * h + h * (h - 1) / T) / T)
        p = 2 * stats.t.sf(abs(dm), T - 1)
    else:
        p = 2 * stats.norm.sf(abs(dm))
    better = None if mean == 0 else ("a" if (mean > 0) == bool(higher_is_better) else "b")
    return TestResult("diebold_mariano", float(dm), float(p),
                      {"mean_diff": mean, "better": better, "lrv": lrv, "lags": int(lags), "h": int(h),
                       "hln": bool(hln), "n_obs": T})
