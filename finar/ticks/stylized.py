"""How real does a synthetic trade stream look? The metrics of PROTOCOLS.md P5, and their curves.

:func:`realism` compares a real and a synthetic trades frame on: the zero-gap share; Wasserstein-1
and total-variation distances of log inter-arrival times (positive gaps, log seconds), of price
changes in ticks, of log sizes and of 1-minute bar returns (basis points); the lag-1
autocorrelation of price changes (bid-ask bounce); the inter-arrival coefficient of variation;
the signature plot (realized variance against sampling interval); the trade-sign ACF power-law
exponent; the intraday activity profile; the excess kurtosis of 1-minute returns; the share of
size-1 trades; and a discriminator's AUROC (gradient-boosted trees on windows of 64 events,
5-fold cross-validated; 0.5 means indistinguishable). Every metric has a ``distance`` (lower is
better) so that several generators can be ranked metric by metric.

A distance means something only against the noise floor of real data: :func:`real_vs_real`
compares the first and second halves of a real stream by the same metrics, and
:func:`uninformative` flags the distances that are no larger than that floor.
:func:`discriminator_features` says which window features the discriminator tells two streams
apart by (each feature alone, and the discriminator without it).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from finar.data.validate import clean_trades
from finar.errors import SeriesTooShortError
from finar.evaluation.stylized import acf, power_law_exponent
from finar.ticks.io import infer_tick_size, session_ids, tick_rule

__all__ = ["RealismReport", "realism", "real_vs_real", "uninformative", "discriminator_features",
           "SIGNATURE_SECONDS", "WINDOW_FEATURES"]

SIGNATURE_SECONDS = (1, 2, 5, 10, 30, 60, 120, 300)
WINDOW = 64          # events per discriminator window
SIGN_LAGS = 1000     # trade-sign ACF up to this lag
N_INTRADAY = 13      # intraday profile bins per session
#: the discriminator's inputs: summaries of each window of WINDOW consecutive events (see _windows)
WINDOW_FEATURES = ("zero_gap_share", "log_gap_mean", "log_gap_std", "abs_dp_mean", "dp_nonzero_share",
                   "dp_acf1", "side_mean", "side_persistence", "log_size_mean", "log_size_std",
                   "dp_sign_is_side")


@dataclass
class _Stream:
    gaps: np.ndarray       # within-session gaps, seconds
    dp: np.ndarray         # within-session price changes, ticks
    log_size: np.ndarray
    side: np.ndarray
    bar_ret: np.ndarray    # 1-minute log returns, basis points
    rv: np.ndarray         # mean realized variance per session at SIGNATURE_SECONDS
    intraday: np.ndarray   # share of trades per intraday bin
    sign_acf: np.ndarray
    windows: np.ndarray    # discriminator features, one row per window


def _stream(trades: pd.DataFrame, tick: float, session_length: float) -> _Stream:
    t = clean_trades(trades, source="realism")
    if len(t) < 4 * WINDOW:
        raise SeriesTooShortError(f"realism needs at least {4 * WINDOW} trades, got {len(t)}")
    sid = session_ids(t.index)
    same = np.r_[False, np.diff(sid) == 0]
    ns, price = t.index.as_unit("ns").asi8, t["price"].to_numpy(dtype=float)
    gaps = (np.diff(ns) / 1e9)[same[1:]]
    dp = np.round(np.diff(price) / tick)[same[1:]]
    side = t["side"].to_numpy(dtype=float) if "side" in t else tick_rule(price).astype(float)
    logp = np.log(price)
    bar_ret, rv, intraday = [], np.zeros(len(SIGNATURE_SECONDS)), np.zeros(N_INTRADAY)
    n_sessions = 0
    for k in np.unique(sid):
        m = sid == k
        secs = (ns[m] - ns[m][0]) / 1e9
        lp = logp[m]
        n_sessions += 1
        for j, tau in enumerate(SIGNATURE_SECONDS):
            grid = np.arange(0, secs[-1] + tau, tau)
            sampled = lp[np.searchsorted(secs, grid, side="right") - 1]
            rv[j] += np.sum(np.diff(sampled) ** 2)
            if tau == 60:
                bar_ret.append(1e4 * np.diff(sampled))
        b = np.minimum((secs / session_length * N_INTRADAY).astype(int), N_INTRADAY - 1)
        intraday += np.bincount(b, minlength=N_INTRADAY)
    return _Stream(gaps=gaps, dp=dp, log_size=np.log(t["size"].to_numpy(dtype=float)), side=side,
                   bar_ret=np.concatenate(bar_ret), rv=rv / n_sessions, intraday=intraday / intraday.sum(),
                   sign_acf=acf(side, min(SIGN_LAGS, len(side) // 4)), windows=_windows(gaps, dp, side, t))


def _windows(gaps: np.ndarray, dp: np.ndarray, side: np.ndarray, t: pd.DataFrame) -> np.ndarray:
    """Summary features of consecutive windows of events (the discriminator's inputs)."""
    n = min(len(gaps), len(dp)) // WINDOW
    g = gaps[:n * WINDOW].reshape(n, WINDOW)
    d = dp[:n * WINDOW].reshape(n, WINDOW)
    s = side[1:n * WINDOW + 1].reshape(n, WINDOW)
    size = np.log(t["size"].to_numpy(dtype=float)[1:n * WINDOW + 1]).reshape(n, WINDOW)
    lg = np.log(np.where(g > 0, g, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows of zero gaps only: their mean is 0
        feats = [np.mean(g == 0, 1), np.nan_to_num(np.nanmean(lg, 1)), np.nan_to_num(np.nanstd(lg, 1)),
                 np.mean(np.abs(d), 1), np.mean(d != 0, 1),
                 np.sum(d[:, 1:] * d[:, :-1], 1) / (np.sum(d * d, 1) + 1e-9),
                 np.mean(s, 1), np.mean(s[:, 1:] == s[:, :-1], 1), np.mean(size, 1), np.std(size, 1),
                 np.sum((np.sign(d) == s) & (d != 0), 1) / (np.sum(d != 0, 1) + 1e-9)]
    return np.stack(feats, 1)


def _tv_continuous(a: np.ndarray, b: np.ndarray, bins: int = 40) -> float:
    lo, hi = np.quantile(a, [0.005, 0.995])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.r_[-np.inf, np.linspace(lo, hi, bins + 1), np.inf]
    pa = np.histogram(a, edges)[0] / len(a)
    pb = np.histogram(b, edges)[0] / len(b)
    return float(0.5 * np.abs(pa - pb).sum())


def _tv_discrete(a: np.ndarray, b: np.ndarray) -> float:
    va, ca = np.unique(a, return_counts=True)
    vb, cb = np.unique(b, return_counts=True)
    pa = pd.Series(ca / ca.sum(), index=va)
    pb = pd.Series(cb / cb.sum(), index=vb)
    return float(0.5 * pa.sub(pb, fill_value=0).abs().sum())


def _labelled(real: np.ndarray, synth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2,000 windows of each stream (drawn with ``seed``), labels 1 for real."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synth), 2000)
    x = np.vstack([real[rng.choice(len(real), n, replace=False)],
                   synth[rng.choice(len(synth), n, replace=False)]])
    return x, np.r_[np.ones(n), np.zeros(n)]


def _cv_auroc(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    # one OpenMP thread: the data are small, and on a busy machine threads spin-waiting on each
    # other make the trees many times slower
    with threadpool_limits(1, user_api="openmp"):
        p = cross_val_predict(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                              method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def _auroc(real: np.ndarray, synth: np.ndarray, seed: int) -> float:
    x, y = _labelled(real, synth, seed)
    return _cv_auroc(x, y, seed) if len(y) >= 40 else math.nan


def _cv(g: np.ndarray) -> float:
    return float(np.std(g) / np.mean(g)) if np.mean(g) > 0 else math.nan


def _scales(real: pd.DataFrame, tick_size: float | None, session_length: float | None) -> tuple[float, float]:
    """The tick size (inferred from the real prices) and session length (the median real session
    span, seconds) where not given."""
    t = clean_trades(real, source="realism")
    tick = tick_size or infer_tick_size(t["price"].to_numpy())
    if session_length is None:
        sid = session_ids(t.index)
        span = pd.Series(t.index.as_unit("ns").asi8).groupby(sid).agg(lambda v: (v.max() - v.min()) / 1e9)
        session_length = float(max(span.median(), 1.0))
    return float(tick), float(session_length)


@dataclass
class RealismReport:
    """Result of :func:`realism`: ``metrics`` (one row per metric: ``real``, ``synthetic``,
    ``distance``) and ``curves`` (DataFrames for plots: signature plot, sign ACF, intraday profile,
    histograms)."""

    metrics: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return self.metrics.copy()

    def distances(self) -> dict[str, float]:
        """``{metric: distance}``, e.g. for a results row."""
        return {k: float(v) for k, v in self.metrics["distance"].items()}

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": self.metrics.reset_index().to_dict(orient="records")}
        if curves:
            out["curves"] = {k: v.to_dict(orient="list") for k, v in self.curves.items()}
        return out


def realism(real: pd.DataFrame, synthetic: pd.DataFrame, *, tick_size: float | None = None,
            session_length: float | None = None, seed: int = 0) -> RealismReport:
    """Compare a synthetic trade stream with a real one (PROTOCOLS.md P5 metrics).

    Parameters
    ----------
    real, synthetic : DataFrame
        Trades (``time`` index; ``price``, ``size``, optional ``side``: the tick rule otherwise).
    tick_size : float, optional
        Inferred from the real prices when not given.
    session_length : float, optional
        Seconds per session for the intraday profile (default: the median real session span).
    seed : int, default 0
        Subsampling and cross-validation of the discriminator.

    Examples
    --------
    >>> import finar
    >>> real = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> synth = finar.ticks.simulate(n_events=20_000, seed=1)
    >>> rep = realism(real, synth)
    >>> bool(rep.metrics.loc["zero_gap_share", "distance"] < 0.02)
    True
    """
    tick, session_length = _scales(real, tick_size, session_length)
    a, b = _stream(real, tick, session_length), _stream(synthetic, tick, session_length)
    rows: dict[str, tuple[float, float, float]] = {}

    def both(name: str, fa: float, fb: float, rel: bool = False) -> None:
        rows[name] = (fa, fb, abs(fb - fa) / (abs(fa) if rel and fa else 1.0))

    both("zero_gap_share", float(np.mean(a.gaps == 0)), float(np.mean(b.gaps == 0)))
    la, lb = np.log(a.gaps[a.gaps > 0]), np.log(b.gaps[b.gaps > 0])
    for name, xa, xb in (("log_gap", la, lb), ("log_size", a.log_size, b.log_size),
                         ("bar_return", a.bar_ret, b.bar_ret)):
        rows[f"{name}_w1"] = (float(np.mean(xa)), float(np.mean(xb)),
                              float(stats.wasserstein_distance(xa, xb)))
        rows[f"{name}_tv"] = (float(np.std(xa)), float(np.std(xb)), _tv_continuous(xa, xb))
    rows["dp_w1"] = (float(np.mean(np.abs(a.dp))), float(np.mean(np.abs(b.dp))),
                     float(stats.wasserstein_distance(a.dp, b.dp)))
    rows["dp_tv"] = (float(np.mean(a.dp != 0)), float(np.mean(b.dp != 0)), _tv_discrete(a.dp, b.dp))
    both("dp_acf1", float(acf(a.dp, 1)[1]), float(acf(b.dp, 1)[1]))
    both("gap_cv", _cv(a.gaps), _cv(b.gaps), rel=True)
    ra, rb = a.rv[0] / a.rv[-1], b.rv[0] / b.rv[-1]
    rows["signature"] = (ra, rb, float(np.mean(np.abs(np.log(b.rv / a.rv)))))  # values: RV(1s)/RV(5min)
    both("sign_acf_exponent", power_law_exponent(a.sign_acf, len(a.sign_acf) - 1),
         power_law_exponent(b.sign_acf, len(b.sign_acf) - 1))
    def open_to_midday(x: np.ndarray) -> float:  # NaN, not a warning, when no trade falls at midday
        return float(x[0] / x[N_INTRADAY // 2]) if x[N_INTRADAY // 2] > 0 else math.nan

    rows["intraday_tv"] = (open_to_midday(a.intraday), open_to_midday(b.intraday),
                           float(0.5 * np.abs(a.intraday - b.intraday).sum()))  # values: open / midday
    both("bar_kurtosis", float(stats.kurtosis(a.bar_ret)), float(stats.kurtosis(b.bar_ret)), rel=True)
    both("size1_share", float(np.mean(a.log_size == 0)), float(np.mean(b.log_size == 0)))
    auc = _auroc(a.windows, b.windows, seed)
    rows["discriminator_auroc"] = (0.5, auc, abs(auc - 0.5))
    metrics = pd.DataFrame.from_dict(rows, orient="index", columns=["real", "synthetic", "distance"])
    metrics.index.name = "metric"
    lags = np.arange(1, min(len(a.sign_acf), len(b.sign_acf)))
    curves = {
        "signature": pd.DataFrame({"seconds": SIGNATURE_SECONDS, "real": a.rv, "synthetic": b.rv}),
        "sign_acf": pd.DataFrame({"lag": lags, "real": a.sign_acf[lags], "synthetic": b.sign_acf[lags]}),
        "intraday": pd.DataFrame({"bin": np.arange(N_INTRADAY), "real": a.intraday, "synthetic": b.intraday}),
    }
    for name, xa, xb in (("log_gap", la, lb), ("log_size", a.log_size, b.log_size),
                         ("bar_return", a.bar_ret, b.bar_ret)):
        edges = np.linspace(*np.quantile(np.r_[xa, xb], [0.001, 0.999]), 61)
        curves[f"hist_{name}"] = pd.DataFrame({"left": edges[:-1],
                                               "real": np.histogram(xa, edges, density=True)[0],
                                               "synthetic": np.histogram(xb, edges, density=True)[0]})
    va = np.arange(-10, 11)
    curves["hist_dp"] = pd.DataFrame({"ticks": va, "real": [np.mean(a.dp == v) for v in va],
                                      "synthetic": [np.mean(b.dp == v) for v in va]})
    return RealismReport(metrics, curves)


def real_vs_real(trades: pd.DataFrame, *, tick_size: float | None = None,
                 session_length: float | None = None, seed: int = 0) -> RealismReport:
    """The noise floor of every realism metric: :func:`realism` of the first half of ``trades``
    (as "real") against the second half (as "synthetic").

    A generator whose distance on a metric is no smaller than this one is indistinguishable from
    real data *by that metric* (see :func:`uninformative`). Pass the held-out trades of a
    benchmark, and the same ``tick_size``/``session_length`` as for the generators' rows.

    Examples
    --------
    >>> import finar
    >>> floor = real_vs_real(finar.ticks.simulate(n_events=20_000, seed=0))
    >>> bool(floor.metrics.loc["zero_gap_share", "distance"] < 0.03)
    True
    """
    t = clean_trades(trades, source="real_vs_real")
    half = len(t) // 2
    return realism(t.iloc[:half], t.iloc[half:], tick_size=tick_size, session_length=session_length,
                   seed=seed)


def uninformative(distances: pd.DataFrame, floor: pd.Series | dict[str, float]) -> pd.DataFrame:
    """Where a generator's distance is within the real-vs-real noise floor (the metric cannot tell it
    from real data, so it is no evidence either way).

    Parameters
    ----------
    distances : DataFrame
        One row per generator, one column per metric (:meth:`RealismReport.distances`).
    floor : Series or dict
        The distances of :func:`real_vs_real`, by metric.

    Returns
    -------
    DataFrame of bool
        ``True`` where ``distance <= floor`` (NaN distances are never flagged).

    Examples
    --------
    >>> d = pd.DataFrame({"dp_w1": [0.01, 0.2]}, index=["model A", "model B"])
    >>> uninformative(d, {"dp_w1": 0.05})["dp_w1"].tolist()
    [True, False]
    """
    floor = pd.Series(floor, dtype=float).reindex(distances.columns)
    return distances.astype(float).le(floor, axis=1)


def discriminator_features(real: pd.DataFrame, synthetic: pd.DataFrame, *, tick_size: float | None = None,
                           seed: int = 0) -> pd.DataFrame:
    """Which window features tell a synthetic stream from a real one.

    For each of :data:`WINDOW_FEATURES` (summaries of windows of 64 events, the discriminator's
    inputs): its mean in real and synthetic windows, the AUROC of the feature alone (as a score,
    folded to ``>= 0.5``), and the cross-validated AUROC of :func:`realism`'s discriminator
    *without* it (the drop below the full AUROC is the feature's importance). The full AUROC is
    in ``frame.attrs["auroc"]``.

    Examples
    --------
    >>> import finar
    >>> real = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> fast = finar.ticks.simulate(n_events=20_000, seed=1, mu=0.4)
    >>> imp = discriminator_features(real, fast)
    >>> imp["auroc_alone"].idxmax()
    'log_gap_mean'
    """
    from sklearn.metrics import roc_auc_score

    tick, session_length = _scales(real, tick_size, None)
    x, y = _labelled(_stream(real, tick, session_length).windows,
                     _stream(synthetic, tick, session_length).windows, seed)
    full = _cv_auroc(x, y, seed)
    rows = []
    for j, name in enumerate(WINDOW_FEATURES):
        alone = float(roc_auc_score(y, x[:, j]))
        rows.append({"feature": name, "real_mean": float(x[y == 1, j].mean()),
                     "synthetic_mean": float(x[y == 0, j].mean()), "auroc_alone": max(alone, 1 - alone),
                     "auroc_without": _cv_auroc(np.delete(x, j, axis=1), y, seed)})
    out = pd.DataFrame(rows).set_index("feature")
    out["importance"] = full - out["auroc_without"]
    out.attrs["auroc"] = full
    return out.sort_values("auroc_alone", ascending=False)
