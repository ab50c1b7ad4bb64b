"""Stylized facts of daily returns, real against generated (docs/protocols.md P3).

Every statistic is computed by the same code for the real series (one path) and for each
generator (``M`` paths of ``T`` days; an array's rows are paths, its last axis is time).

Distances (lower is better), with :math:`S^{(t)}` the overlapping ``t``-day sums of returns:

- ``emd_t``: :math:`W_1` (``scipy.stats.wasserstein_distance``) between the real
  :math:`S^{(t)}` and the generated :math:`S^{(t)}` pooled over paths; ``emd_std_t`` divides
  both by the real ``t``-day standard deviation (``ddof=1``), i.e. ``emd_t / sd_t``.
- ``dy_t``: :math:`\\sum_b (\\log p_{real}(b) - \\log p_{gen}(b))^2` over 70 equal-width bins
  spanning the real range of :math:`S^{(t)}`, bins where both densities are positive;
  densities are ``np.histogram(..., density=True)`` on those bins (each integrates to one over
  the real range: generated mass outside it is left to the EMD).
- ``acf_id``, ``acf_abs``, ``acf_sq``: root mean square over lags ``1..lags`` of
  :math:`\\rho_{f(r)}^{real}(k) - \\bar\\rho_{f(r)}^{gen}(k)` for ``f`` the identity, ``|.|`` and
  ``(.)^2``, the bar a mean over paths of per-path ACFs (statsmodels' ``acf``: global mean,
  denominator ``n``).
- ``leverage``: Euclidean norm over lags ``1..lags`` of the same difference for
  :math:`L(k) = \\mathrm{Corr}(r_t, r_{t+k}^2)`, a Pearson correlation over the ``n - k`` pairs.

Cont's (2001) facts, one value per row. *Pooled* (all paths' values as one sample):
``skew``, ``kurt_t`` (excess kurtosis of overlapping ``t``-day sums: aggregational
Gaussianity), ``hill_left`` / ``hill_right`` / ``hill_abs`` (Hill tail index of ``-r``, ``r``
and ``|r|``, top 5%), ``gain_wait_*`` / ``loss_wait_*`` (median and mode of the days from each
start until the cumulative log return first reaches ``+theta`` / ``-theta``; starts that never
get there are left out). *Mean over paths* (the statistic of the path-averaged curve):
``acf_abs_lag1``, ``leverage_lag1``, ``acf_abs_decay`` (:math:`\\beta` in
:math:`\\rho_{|r|}(k) \\propto k^{-\\beta}`, log-log least squares over lags 1..100 with positive
ACF), ``acf_id_max20`` (:math:`\\max_{k \\le 20} |\\bar\\rho_r(k)|`: systematic linear
autocorrelation), ``cf_asym_1`` (coarse-fine volatility asymmetry, :func:`coarse_fine`);
``ljung_box_p`` is the Ljung-Box p-value at 20 lags, the median over paths for a generator.

The two reference rows (``references=True``): ``GARCH(1,1)-normal`` fitted to the real series
and simulated unconditionally (the real series is the context, the first 500 simulated days
are dropped as burn-in), and ``block bootstrap`` (Politis-Romano stationary bootstrap of the
real series, mean block 20): the sampling-noise floor of the distributional metrics. Its blocks
keep little dependence beyond ~20 days, so its ACF scores are no floor (on the S&P 500 window
its ``acf_abs`` is above GARCH's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import fft, stats

from finar.errors import DataError, NonFiniteValueError, SeriesTooShortError, format_rows
from finar.executors import ExecutorLike, run_tasks
from finar.models.garch import GARCH
from finar.models.scenarios import Scenarios

__all__ = ["StylizedFacts", "stylized_facts", "acf", "lagged_corr", "leverage", "hill", "power_law_exponent",
           "ljung_box_pvalue", "waiting_times", "coarse_fine", "rolling_sums", "stationary_bootstrap",
           "dy_terms"]

HORIZONS = (1, 5, 20, 100)   # days aggregated for EMD, DY and kurtosis
DY_BINS = 70
TAIL_FRACTION = 0.05         # Hill estimator: the top 5% order statistics
DECAY_LAGS = 100             # lags of the ACF(|r|) power-law fit
LINEAR_LAGS = 20             # lags of max |ACF(r)| and of the Ljung-Box test
CF_TAU, CF_MAX_LAG = 5, 20   # coarse-fine volatility: 5-day windows, lags -20..20
BURN_IN = 500                # days dropped from the start of each GARCH reference path
MEAN_BLOCK = 20.0            # stationary bootstrap mean block length
MIN_OBS = 300                # shortest real series accepted
CURVE_POINTS = 200           # points kept per QQ / tail curve
GARCH_NAME, BOOTSTRAP_NAME = "GARCH(1,1)-normal", "block bootstrap"
_REFERENCES = (GARCH_NAME, BOOTSTRAP_NAME)
DISTANCE_KEYS = [f"{m}_{t}" for m in ("emd", "emd_std", "dy") for t in HORIZONS] + [
    "acf_id", "acf_abs", "acf_sq", "leverage"]

Paths = np.ndarray  # (n_paths, T)


# --- array primitives: rows are paths, the last axis is time ----------------------------------

def rolling_sums(x: np.ndarray, t: int) -> np.ndarray:
    """Overlapping ``t``-day sums along the last axis: shape ``(..., T - t + 1)``."""
    c = np.cumsum(x, axis=-1)
    head = c[..., t - 1:t]
    return np.concatenate([head, c[..., t:] - c[..., :-t]], axis=-1)


def _fft_len(n: int, nlags: int) -> int:
    return fft.next_fast_len(n + nlags, real=True)  # long enough that lags <= nlags do not wrap


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelations at lags ``0..nlags`` along the last axis, by FFT.

    :math:`\\hat\\rho(k) = \\sum_{t<n-k} (x_t - \\bar x)(x_{t+k} - \\bar x) /
    \\sum_t (x_t - \\bar x)^2`, as ``statsmodels.tsa.stattools.acf`` (``adjusted=False``).
    Vectorised over leading axes: 500 paths of 4,000 days take milliseconds.
    """
    x = np.asarray(x, dtype=float)
    xc = x - x.mean(axis=-1, keepdims=True)
    size = _fft_len(x.shape[-1], nlags)
    spec = fft.rfft(xc, n=size, axis=-1)
    acov = fft.irfft(spec * spec.conj(), n=size, axis=-1)[..., :nlags + 1]
    return acov / acov[..., :1]


def lagged_corr(a: np.ndarray, b: np.ndarray, nlags: int) -> np.ndarray:
    """:math:`\\mathrm{Corr}(a_t, b_{t+k})` for ``k = 0..nlags`` along the last axis.

    A Pearson correlation over the ``n - k`` pairs, exactly
    ``np.corrcoef(a[:n-k], b[k:])[0, 1]``: the cross products come from one FFT and the partial
    sums from cumulative sums, vectorised over leading axes.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = a.shape[-1]
    a = a - a.mean(axis=-1, keepdims=True)  # correlation is shift-invariant; centring helps rounding
    b = b - b.mean(axis=-1, keepdims=True)
    size = _fft_len(n, nlags)
    sab = fft.irfft(fft.rfft(a, n=size, axis=-1).conj() * fft.rfft(b, n=size, axis=-1),
                    n=size, axis=-1)[..., :nlags + 1]  # sum_t a_t b_{t+k}
    last = n - 1 - np.arange(nlags + 1)  # pairs use a[:n-k] (a prefix) and b[k:] (a suffix)
    sa, saa = np.cumsum(a, axis=-1)[..., last], np.cumsum(a * a, axis=-1)[..., last]
    b_rev = b[..., ::-1]
    sb, sbb = np.cumsum(b_rev, axis=-1)[..., last], np.cumsum(b_rev * b_rev, axis=-1)[..., last]
    m = last + 1.0
    return (sab - sa * sb / m) / np.sqrt((saa - sa ** 2 / m) * (sbb - sb ** 2 / m))


def leverage(x: np.ndarray, nlags: int) -> np.ndarray:
    """The leverage correlation :math:`L(k) = \\mathrm{Corr}(r_t, r_{t+k}^2)`, ``k = 0..nlags``,
    over the ``n - k`` pairs (:func:`lagged_corr`)."""
    x = np.asarray(x, dtype=float)
    return lagged_corr(x, x ** 2, nlags)


def hill(x: np.ndarray, fraction: float = TAIL_FRACTION) -> float:
    """Hill estimator of the right-tail index of the values in ``x`` (any shape, pooled).

    With :math:`x_{(1)} \\ge x_{(2)} \\ge \\dots` and ``k = floor(fraction * n)``,
    :math:`\\hat\\alpha = \\big(\\frac1k \\sum_{i=1}^{k} \\log(x_{(i)} / x_{(k+1)})\\big)^{-1}`.
    Use ``hill(-r)`` for the left tail and ``hill(np.abs(r))`` for both. NaN when the
    threshold :math:`x_{(k+1)}` is not positive or ``k < 2``.
    """
    y = np.ravel(np.asarray(x, dtype=float))
    k = int(fraction * y.size)
    if k < 2:
        return math.nan
    top = np.partition(y, y.size - k - 1)[y.size - k - 1:]  # x_(k+1), then the k largest
    if top[0] <= 0:
        return math.nan
    return float(1.0 / np.mean(np.log(top[1:] / top[0])))


def power_law_exponent(rho: np.ndarray, max_lag: int = DECAY_LAGS) -> float:
    """:math:`\\beta` of :math:`\\rho(k) \\approx c\\, k^{-\\beta}`: least squares of
    :math:`\\log \\rho(k)` on :math:`\\log k` over lags ``1..max_lag`` where :math:`\\rho(k) > 0`.

    ``rho`` is indexed by lag (``rho[0]`` is lag 0). NaN with fewer than 3 positive values.
    """
    lags = np.arange(1, min(max_lag, len(rho) - 1) + 1)
    values = np.asarray(rho, dtype=float)[lags]
    keep = values > 0
    if keep.sum() < 3:
        return math.nan
    return float(-np.polyfit(np.log(lags[keep]), np.log(values[keep]), 1)[0])


def ljung_box_pvalue(rho: np.ndarray, n: int, lags: int = LINEAR_LAGS) -> np.ndarray | float:
    """Ljung-Box p-value from autocorrelations ``rho[..., 0..]`` of series of length ``n``:
    :math:`Q = n(n+2) \\sum_{k=1}^{h} \\hat\\rho_k^2 / (n-k)`, :math:`p = P(\\chi^2_h > Q)`
    (as ``statsmodels.stats.diagnostic.acorr_ljungbox``)."""
    k = np.arange(1, lags + 1)
    q = n * (n + 2.0) * np.sum(np.asarray(rho)[..., k] ** 2 / (n - k), axis=-1)
    return stats.chi2.sf(q, lags)


def waiting_times(x: np.ndarray, theta: float, chunk: int = 64) -> np.ndarray:
    """Days until the cumulative return first reaches ``+theta``, from every start, pooled.

    From each day ``i`` of each row, :math:`\\tau_i = \\min\\{j > i: S_j - S_i \\ge \\theta\\}
    - i` with :math:`S` the cumulative sum (``S_0 = 0``); starts that never reach the level
    are left out. Use ``-x`` for losses. Exact and vectorised: a sparse table of running
    maxima and a binary search over it (``O(M T log T)``), ``chunk`` rows at a time.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    n = x.shape[1]
    levels = max(1, int(np.ceil(np.log2(n + 1))))
    out = []
    for rows in np.array_split(x, max(1, math.ceil(len(x) / chunk))):
        s = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(rows, axis=1)], axis=1)  # (m, n+1)
        table = [s]  # table[l][:, j] = max(s[:, j : j + 2**l]); +inf where the block runs past the end
        for level in range(1, levels):
            prev, half = table[-1], 2 ** (level - 1)
            nxt = np.full_like(prev, np.inf)
            nxt[:, :n + 1 - half] = np.maximum(prev[:, :n + 1 - half], prev[:, half:])
            table.append(nxt)
        start = np.broadcast_to(np.arange(n), (len(rows), n))
        target = s[:, :n] + theta
        pos = start.copy()  # invariant: s[i+1 .. pos] < target
        for level in reversed(range(levels)):
            step = 2 ** level
            ok = pos + step <= n
            block = np.take_along_axis(table[level], np.minimum(pos + 1, n), axis=1)
            pos = np.where(ok & (block < target), pos + step, pos)
        found = pos < n
        out.append((pos + 1 - start)[found])
    return np.concatenate(out)


def coarse_fine(x: np.ndarray, tau: int = CF_TAU, max_lag: int = CF_MAX_LAG) -> np.ndarray:
    """Coarse-fine volatility correlations :math:`\\rho(k)`, ``k = -max_lag..max_lag`` (days).

    After Müller et al. (1997) and Gavrishchaka & Ganguli (2003): the coarse volatility
    :math:`v_c(t) = |\\sum_{i=0}^{\\tau-1} r_{t+i}|` and the fine volatility
    :math:`v_f(t) = \\sum_{i=0}^{\\tau-1} |r_{t+i}|` over the same ``tau`` days;
    :math:`\\rho(k) = \\mathrm{Corr}(v_c(t), v_f(t+k))`. The asymmetry
    :math:`\\Delta\\rho(k) = \\rho(k) - \\rho(-k)` is positive when coarse volatility predicts
    future fine volatility better than the reverse (as in real markets). Shape ``(..., 2 max_lag + 1)``.
    """
    x = np.asarray(x, dtype=float)
    vc, vf = np.abs(rolling_sums(x, tau)), rolling_sums(np.abs(x), tau)
    future = lagged_corr(vc, vf, max_lag)                 # rho(k), k >= 0
    past = lagged_corr(vf, vc, max_lag)[..., :0:-1]       # rho(-k) = Corr(v_f(s), v_c(s + k)), k > 0
    return np.concatenate([past, future], axis=-1)


def stationary_bootstrap(x: np.ndarray, n_paths: int, length: int, mean_block: float = MEAN_BLOCK,
                         rng: np.random.Generator | None = None) -> np.ndarray:
    """Politis & Romano's (1994) stationary bootstrap: ``(n_paths, length)`` resampled paths.

    Blocks start at uniform positions of ``x``, have geometric lengths with mean
    ``mean_block`` and wrap around the end. Written here because ``arch.bootstrap`` only draws
    resamples as long as the data.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(x, dtype=float)
    new_block = rng.random((n_paths, length)) < 1.0 / mean_block
    new_block[:, 0] = True
    starts = rng.integers(0, len(x), size=(n_paths, length))
    t = np.arange(length)
    block_start = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)
    idx = (np.take_along_axis(starts, block_start, axis=1) + t - block_start) % len(x)
    return x[idx]


# --- one summary per sample, then facts and distances ------------------------------------------

@dataclass
class _Summary:
    """The curves and pooled samples of one set of paths, computed once."""

    paths: Paths
    acf: dict[str, np.ndarray]   # 'id' / 'abs' / 'sq' -> (M, nlags + 1)
    lev: np.ndarray              # (M, lags + 1)
    sums: dict[int, np.ndarray]  # t -> pooled t-day sums, sorted
    cf: np.ndarray               # (M, 2 CF_MAX_LAG + 1)
    gains: np.ndarray            # pooled waiting times to +theta
    losses: np.ndarray           # ... and to -theta


def _summarise(paths: Paths, lags: int, theta: float) -> _Summary:
    nlags = max(lags, DECAY_LAGS, LINEAR_LAGS)
    return _Summary(
        paths=paths,
        acf={"id": acf(paths, nlags), "abs": acf(np.abs(paths), nlags), "sq": acf(paths ** 2, nlags)},
        lev=leverage(paths, lags),
        sums={t: np.sort(rolling_sums(paths, t), axis=None) for t in HORIZONS},  # sorted: W1 is faster
        cf=coarse_fine(paths), gains=waiting_times(paths, theta), losses=waiting_times(-paths, theta))


def _wait_stats(w: np.ndarray) -> tuple[float, float]:
    if w.size == 0:
        return math.nan, math.nan
    return float(np.median(w)), float(np.bincount(w).argmax())


def _facts(s: _Summary) -> dict[str, float]:
    """Cont's facts of one sample (pooled or mean over paths, as the module docstring says)."""
    r = s.paths.ravel()
    mean_abs = s.acf["abs"].mean(axis=0)
    cf = s.cf.mean(axis=0)
    gain_med, gain_mode = _wait_stats(s.gains)
    loss_med, loss_mode = _wait_stats(s.losses)
    return {"skew": float(stats.skew(r)),
            **{f"kurt_{t}": float(stats.kurtosis(s.sums[t])) for t in HORIZONS},
            "hill_left": hill(-r), "hill_right": hill(r), "hill_abs": hill(np.abs(r)),
            "acf_abs_lag1": float(mean_abs[1]), "leverage_lag1": float(s.lev[:, 1].mean()),
            "acf_abs_decay": power_law_exponent(mean_abs),
            "acf_id_max20": float(np.abs(s.acf["id"].mean(axis=0)[1:LINEAR_LAGS + 1]).max()),
            "ljung_box_p": float(np.median(ljung_box_pvalue(s.acf["id"], s.paths.shape[1]))),
            "gain_wait_median": gain_med, "loss_wait_median": loss_med,
            "gain_wait_mode": gain_mode, "loss_wait_mode": loss_mode,
            "cf_asym_1": float(cf[CF_MAX_LAG + 1] - cf[CF_MAX_LAG - 1])}


def dy_terms(real: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DY's bins and terms: ``DY_BINS`` equal-width bins spanning the real values (edges,
    ``DY_BINS + 1``) and each bin's ``(log p_real - log p_gen)^2`` (0 where either is empty).

    The real tail bins hold one or two days each, so a few of them can carry most of DY: P3
    reports the share of the bin of the worst real day.
    """
    real = np.sort(np.asarray(real, dtype=float).ravel())
    edges = np.linspace(real[0], real[-1], DY_BINS + 1)
    p_real = np.histogram(real, edges, density=True)[0]
    p_gen = np.histogram(gen, edges, density=True)[0]
    both = (p_real > 0) & (p_gen > 0)
    terms = np.zeros(DY_BINS)
    terms[both] = (np.log(p_real[both]) - np.log(p_gen[both])) ** 2
    return edges, terms


def _dy(real: np.ndarray, gen: np.ndarray) -> float:
    return float(dy_terms(real, gen)[1].sum())


def _distances(real: _Summary, gen: _Summary, lags: int) -> dict[str, float]:
    """The P3 metrics of one generator against the real series."""
    out: dict[str, float] = {}
    for t in HORIZONS:
        out[f"emd_{t}"] = float(stats.wasserstein_distance(real.sums[t], gen.sums[t]))
    for t in HORIZONS:
        out[f"emd_std_{t}"] = out[f"emd_{t}"] / float(np.std(real.sums[t], ddof=1))
    for t in HORIZONS:
        out[f"dy_{t}"] = _dy(real.sums[t], gen.sums[t])
    for f in ("id", "abs", "sq"):
        diff = real.acf[f][0, 1:lags + 1] - gen.acf[f][:, 1:lags + 1].mean(axis=0)
        out[f"acf_{f}"] = float(np.sqrt(np.mean(diff ** 2)))
    out["leverage"] = float(np.linalg.norm(real.lev[0, 1:] - gen.lev[:, 1:].mean(axis=0)))
    return out


def _band(name: str, curves: np.ndarray, lags: np.ndarray) -> pd.DataFrame:
    """Mean over paths with the 5% and 95% quantiles (NaN bands for the single real path)."""
    q05, q95 = np.quantile(curves, [0.05, 0.95], axis=0) if len(curves) > 1 else (np.nan, np.nan)
    return pd.DataFrame({"model": name, "lag": lags, "mean": curves.mean(axis=0), "q05": q05, "q95": q95})


def _tail_frame(name: str, r: np.ndarray) -> pd.DataFrame:
    """Descending order statistics of each tail with their empirical survival probability."""
    parts = []
    for side, y in (("left", -r), ("right", r)):
        y = np.sort(y[y > 0])[::-1]
        if y.size == 0:
            continue
        ranks = np.unique(np.geomspace(1, max(len(y), 1), CURVE_POINTS).astype(int))
        parts.append(pd.DataFrame({"model": name, "side": side, "value": y[ranks - 1],
                                   "ccdf": ranks / r.size}))
    return pd.concat(parts, ignore_index=True)


def _curves(summaries: dict[str, _Summary], lags: int) -> dict[str, pd.DataFrame]:
    lag_axis = np.arange(1, lags + 1)
    real_r = summaries["real"].paths.ravel()
    probs = (np.arange(CURVE_POINTS) + 0.5) / CURVE_POINTS
    names = ("acf_id", "acf_abs", "acf_sq", "leverage", "coarse_fine", "tails", "qq")
    out: dict[str, list[pd.DataFrame]] = {k: [] for k in names}
    for name, s in summaries.items():
        for f in ("id", "abs", "sq"):
            out[f"acf_{f}"].append(_band(name, s.acf[f][:, 1:lags + 1], lag_axis))
        out["leverage"].append(_band(name, s.lev[:, 1:], lag_axis))
        out["coarse_fine"].append(_band(name, s.cf, np.arange(-CF_MAX_LAG, CF_MAX_LAG + 1)))
        out["tails"].append(_tail_frame(name, s.paths.ravel()))
        if name != "real":
            out["qq"].append(pd.DataFrame({"model": name, "p": probs, "real": np.quantile(real_r, probs),
                                           "generated": np.quantile(s.paths.ravel(), probs)}))
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in out.items()}


# --- inputs ------------------------------------------------------------------------------------

def _check_real(real: pd.Series | pd.DataFrame, lags: int) -> pd.Series:
    if isinstance(real, pd.DataFrame) and real.shape[1] == 1:
        real = real.iloc[:, 0]
    if not isinstance(real, pd.Series):
        raise DataError(f"real must be a pandas Series of daily returns, got {type(real).__name__}")
    try:
        values = real.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"real must be numeric: {exc}") from exc
    bad = ~np.isfinite(values)
    if bad.any():
        raise NonFiniteValueError(f"real has NaN or infinite returns at {format_rows(real.index[bad])}; "
                                  "drop them first (finar.returns gives NaN-free returns)")
    if len(values) < max(MIN_OBS, lags + 1):
        raise SeriesTooShortError(f"real has {len(values)} returns; stylized facts need at least "
                                  f"{max(MIN_OBS, lags + 1)} (and more than lags={lags})")
    if np.std(values) == 0:
        raise DataError("real is constant; its autocorrelations are undefined")
    return pd.Series(values, index=real.index, name=real.name)


def _min_length(lags: int) -> int:
    return max(lags, *HORIZONS, CF_MAX_LAG + CF_TAU) + 1


def _as_paths(name: str, value: Any, lags: int) -> Paths:
    if isinstance(value, Scenarios):
        if value.paths.shape[2] != 1:
            raise DataError(f"generated {name!r} has {value.paths.shape[2]} series; stylized facts "
                            "take one: pass sc.paths[:, :, j] for series j")
        value = value.paths
    if not isinstance(value, np.ndarray):
        raise DataError(f"generated {name!r} must be finar.Scenarios or an ndarray of paths, "
                        f"got {type(value).__name__}")
    paths = value[..., 0] if value.ndim == 3 and value.shape[2] == 1 else value
    if paths.ndim != 2:
        raise DataError(f"generated {name!r} must have shape (n_paths, T) or (n_paths, T, 1), got "
                        f"{value.shape}; a single path is x.reshape(1, -1)")
    try:
        paths = paths.astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"generated {name!r} must be numeric: {exc}") from exc
    bad = ~np.isfinite(paths).all(axis=1)
    if bad.any():
        raise NonFiniteValueError(f"generated {name!r} has NaN or infinite values in paths "
                                  f"{format_rows(np.flatnonzero(bad))}")
    need = _min_length(lags)
    if paths.shape[0] < 1 or paths.shape[1] < need:
        raise SeriesTooShortError(f"generated {name!r} has shape {paths.shape}; paths need at least "
                                  f"{need} days for lags={lags} (pass a smaller lags for short paths)")
    flat = paths.std(axis=1) == 0
    if flat.any():
        raise DataError(f"generated {name!r} has constant paths {format_rows(np.flatnonzero(flat))}; "
                        "their autocorrelations are undefined")
    return paths


def _check_generated(generated: Any, lags: int) -> dict[str, Paths]:
    if generated is None:
        return {}
    if not isinstance(generated, Mapping):
        generated = {"generated": generated}
    out = {}
    for name, value in generated.items():
        if not isinstance(name, str) or name == "real" or name in _REFERENCES:
            raise DataError(f"generator names must be strings other than 'real', {GARCH_NAME!r} and "
                            f"{BOOTSTRAP_NAME!r}; got {name!r}")
        out[name] = _as_paths(name, value, lags)
    return out


def _reference_paths(real: pd.Series, n_paths: int, horizon: int, seed: int) -> dict[str, Paths]:
    """GARCH(1,1)-normal (unconditional after a burn-in) and stationary-bootstrap paths."""
    garch_seed, boot_seed = np.random.SeedSequence(seed).generate_state(2)
    garch = GARCH(dist="normal").fit(real)
    sc = garch.sample(context=real, horizon=BURN_IN + horizon, n_paths=n_paths, seed=int(garch_seed))
    boot = stationary_bootstrap(real.to_numpy(), n_paths, horizon, MEAN_BLOCK,
                                np.random.default_rng(int(boot_seed)))
    return {GARCH_NAME: sc.paths[:, BURN_IN:, 0], BOOTSTRAP_NAME: boot}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _reference_shape(gens: dict[str, Paths], n_paths: int | None, horizon: int | None,
                     lags: int) -> tuple[int, int]:
    """``(n_paths, horizon)`` of the reference paths: as given, else the first generator's."""
    first = next(iter(gens.values()), None)
    if first is None and (n_paths is None or horizon is None):
        raise DataError("with generated=None, references=True needs n_paths and horizon")
    m = _positive_int("n_paths", n_paths if n_paths is not None else first.shape[0])  # type: ignore[union-attr]
    h = _positive_int("horizon", horizon if horizon is not None else first.shape[1])  # type: ignore[union-attr]
    if h < _min_length(lags):
        raise SeriesTooShortError(f"horizon={h} is too short: lags={lags} needs at least {_min_length(lags)}")
    return m, h


# --- the public result and function ------------------------------------------------------------

def _plain(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True)
class StylizedFacts:
    """Stylized facts of a real series against one or more generators (docs/protocols.md P3).

    Attributes
    ----------
    rows : DataFrame
        Indexed by ``model``: ``'real'`` (the real series' own facts; the distance columns are
        NaN), each generator, and the reference rows; columns ``kind``, ``n_paths``,
        ``length``, the P3 keys ``emd_t``, ``emd_std_t``, ``dy_t``, ``acf_id``, ``acf_abs``,
        ``acf_sq``, ``leverage``, then Cont's facts (see the module docstring).
    curves : dict of DataFrame
        Tidy frames for plots: ``acf_id``, ``acf_abs``, ``acf_sq``, ``leverage`` (by ``lag``:
        ``mean`` over paths with ``q05`` / ``q95`` bands), ``coarse_fine`` (``mean`` of
        :math:`\\rho(k)` by ``lag``), ``tails`` (``side``, descending ``value``, ``ccdf`` for
        log-log tail plots), ``qq`` (``real`` and pooled ``generated`` quantiles at ``p``).
    settings : dict
        The constants and inputs the numbers depend on.

    Examples
    --------
    >>> import finar, numpy as np
    >>> from finar.evaluation.stylized import stylized_facts
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2009-05-01":"2018-12-31"]
    >>> iid = np.random.default_rng(0).choice(r.to_numpy(), size=(20, 1000))
    >>> facts = stylized_facts(r, iid)
    >>> bool(facts.table().loc["generated", "acf_abs"] > 0.05)  # i.i.d. draws lose vol clustering
    True
    """

    rows: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    settings: dict[str, Any]

    def table(self) -> pd.DataFrame:
        """One row per model (real, generators, references), P3 keys and Cont's facts as columns."""
        return self.rows.copy()

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        """JSON-ready ``settings`` and ``rows`` (records with ``model``), ``curves`` if asked; NaN -> None."""
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: _plain(v) for k, v in rec.items()} for rec in df.to_dict("records")]

        out: dict[str, Any] = {"settings": dict(self.settings), "rows": records(self.rows.reset_index())}
        if curves:
            out["curves"] = {k: records(v) for k, v in self.curves.items()}
        return out


def stylized_facts(real: pd.Series, generated: Scenarios | np.ndarray | Mapping[str, Scenarios | np.ndarray]
                   | None, *, references: bool = False, seed: int = 0, n_paths: int | None = None,
                   horizon: int | None = None, lags: int = 250, theta: float = 5.0,
                   executor: ExecutorLike = "serial", progress: bool = False) -> StylizedFacts:
    """docs/protocols.md P3 distances and Cont's stylized facts, real against generated.

    Parameters
    ----------
    real : Series
        Daily log returns in percent (``finar.returns``), finite, at least 300 of them.
    generated : Scenarios, ndarray or dict of them, or None
        Paths of one series: ``Scenarios`` with one column, or an array ``(n_paths, T)`` or
        ``(n_paths, T, 1)``; a dict ``name -> paths`` puts several generators in one table.
        ``None`` only with ``references=True`` (then ``n_paths`` and ``horizon`` are needed).
    references : bool, default False
        Add the ``GARCH(1,1)-normal`` and ``block bootstrap`` rows (module docstring).
    seed : int, default 0
        Seed of the reference paths.
    n_paths, horizon : int, optional
        Number and length of the reference paths; default: those of the first generator.
    lags : int, default 250
        Lags ``1..lags`` of the ACF and leverage scores.
    theta : float, default 5.0
        Level of the gain/loss waiting times, in the units of the returns (5 = 5%).
    executor : 'serial', 'joblib', 'ray' or executor object, default 'serial'
        Where the per-sample summaries (real, each generator, each reference) are computed,
        one task each (:func:`finar.executors.run_tasks`); the numbers do not depend on it.
    progress : bool, default False
        A progress bar over those tasks.

    Returns
    -------
    StylizedFacts
    """
    lags = _positive_int("lags", lags)
    if not (isinstance(theta, int | float) and math.isfinite(theta) and theta > 0):
        raise DataError(f"theta must be a positive number, got {theta!r}")
    r = _check_real(real, lags)
    gens = _check_generated(generated, lags)
    if references:
        gens.update(_reference_paths(r, *_reference_shape(gens, n_paths, horizon, lags), seed))
    elif not gens:
        raise DataError("generated is None: pass paths, or references=True with n_paths and horizon")

    samples = {"real": r.to_numpy()[None, :], **gens}
    done = run_tasks(_summarise, samples.values(), executor=executor, names=list(samples),
                     common={"lags": lags, "theta": theta}, progress=progress, description="stylized facts")
    summaries = dict(zip(samples, done, strict=True))
    rows = []
    for name, s in summaries.items():
        kind = "real" if name == "real" else "reference" if name in _REFERENCES else "generated"
        dist = (dict.fromkeys(DISTANCE_KEYS, math.nan) if name == "real"
                else _distances(summaries["real"], s, lags))
        rows.append({"model": name, "kind": kind, "n_paths": s.paths.shape[0],
                     "length": s.paths.shape[1], **dist, **_facts(s)})
    settings = {"horizons": list(HORIZONS), "lags": lags, "dy_bins": DY_BINS, "tail_fraction": TAIL_FRACTION,
                "decay_lags": DECAY_LAGS, "linear_lags": LINEAR_LAGS, "cf_tau": CF_TAU, "theta": float(theta),
                "references": bool(references), "seed": seed, "burn_in": BURN_IN, "mean_block": MEAN_BLOCK,
                "real_start": str(r.index[0]), "real_end": str(r.index[-1]), "n_real": len(r),
                "generated": "distributional facts pooled over paths; ACF-type facts of the mean over paths"}
    return StylizedFacts(rows=pd.DataFrame(rows).set_index("model"), curves=_curves(summaries, lags),
                         settings=settings)
