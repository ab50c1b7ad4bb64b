"""Tails and explosions of long generated paths, against the block bootstrap's band (P3).

A generator can score well on average-type distances while a few of its paths explode: one
draw deep in a heavy tail feeds the next days' volatility, or the scale drifts over thousands
of steps. :func:`tail_diagnostics` puts numbers on that, for each generator and the real series:

- ``kurt_1``, ``kurt_5``, ``kurt_20``: excess kurtosis of the overlapping 1/5/20-day sums, pooled
  over paths (as in :func:`finar.stylized_facts`);
- ``hill_left``, ``hill_right``: Hill tail indices of ``-r`` and ``r`` (top 5%), pooled;
- ``max_loss_median``, ``max_loss_p99``: the median and 99th percentile over paths of the
  largest one-day loss of a path (``-min r``, in the units of the returns);
- ``path_kurt_median``, ``path_kurt_p99``: the same for the excess kurtosis of each path;
- ``share_beyond_2x``: the share of paths with a day whose loss exceeds twice the worst real day;
- ``drift``: the median over paths of the last fifth's standard deviation divided by the
  first fifth's (1 for a path whose scale does not drift).

The pooled facts of a generator are its population values (hundreds of paths), while the real
value is one sample of ``len(real)`` days, and the kurtosis of a sample of a heavy-tailed process
sits mostly below the population value. So each pooled fact is also computed the way the real one
is: on the first ``len(real)`` days of each path (paths at least that long). ``seg_<fact>_q05`` /
``seg_<fact>_q95`` give the 5-95% range of those same-length values, and ``real_pct_<fact>`` the
share of them below the real value: a predictive check of the generator (near 0 or 1: the real
value is implausible under the generator; a generator can be inside the bootstrap band on the
same-length values and still outside it on the population value, or the reverse).

The band: ``n_replicates`` stationary block bootstraps of the real series (Politis-Romano,
mean block 20, as P3's bootstrap row). The pooled facts (kurtosis, Hill) are computed on
replicates as long as the real series, so their 5-95% band is the sampling noise of the real
value itself; the per-path statistics on replicates as long as the generated paths, so the band
is what a path of that length drawn from the real days looks like. A generator is *inside the
floor* on a fact when its value lies in the band (columns ``inside_<fact>``).

Examples
--------
>>> import finar, numpy as np
>>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2009-05-01":"2018-12-31"]
>>> iid = np.random.default_rng(0).choice(r.to_numpy(), size=(50, 1000))
>>> t = tail_diagnostics(r, {"iid": iid}, n_replicates=50)
>>> float(t.loc["iid", "share_beyond_2x"]), bool(t.loc["iid", "inside_hill_left"])
(0.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from finar.errors import DataError
from finar.evaluation.stylized import MEAN_BLOCK, hill, rolling_sums, stationary_bootstrap

__all__ = ["tail_diagnostics", "POOLED_FACTS", "PATH_FACTS"]

POOLED_FACTS = ("kurt_1", "kurt_5", "kurt_20", "hill_left", "hill_right")
PATH_FACTS = ("max_loss_median", "max_loss_p99", "path_kurt_median", "path_kurt_p99")


def _pooled(paths: np.ndarray) -> dict[str, float]:
    r = paths.ravel()
    out = {f"kurt_{t}": float(stats.kurtosis(rolling_sums(paths, t), axis=None)) for t in (1, 5, 20)}
    out["hill_left"], out["hill_right"] = hill(-r), hill(r)
    return out


def _per_path(paths: np.ndarray, worst: float) -> dict[str, float]:
    loss = -paths.min(axis=1)
    kurt = stats.kurtosis(paths, axis=1)
    fifth = max(paths.shape[1] // 5, 2)
    drift = paths[:, -fifth:].std(axis=1) / np.maximum(paths[:, :fifth].std(axis=1), 1e-300)
    return {"max_loss_median": float(np.median(loss)), "max_loss_p99": float(np.quantile(loss, 0.99)),
            "path_kurt_median": float(np.median(kurt)), "path_kurt_p99": float(np.quantile(kurt, 0.99)),
            "share_beyond_2x": float(np.mean(loss > 2 * worst)), "drift": float(np.median(drift))}


def _same_length(paths: np.ndarray, n: int, real: dict[str, float]) -> dict[str, float]:
    """The pooled facts on each path's first ``n`` days (the real length): their 5-95% range and
    the share below the real value (NaN where the paths are shorter than ``n``)."""
    if paths.shape[1] < n:
        return {f"{k}_{f}{q}": math.nan for f in POOLED_FACTS
                for k, q in (("seg", "_q05"), ("seg", "_q95"), ("real_pct", ""))}
    seg = pd.DataFrame([_pooled(p[None, :n]) for p in paths])
    out: dict[str, float] = {}
    for f in POOLED_FACTS:
        v = seg[f].to_numpy()
        out[f"seg_{f}_q05"], out[f"seg_{f}_q95"] = (float(q) for q in np.quantile(v, [0.05, 0.95]))
        out[f"real_pct_{f}"] = float(np.mean(v < real[f]))
    return out


def _band_per_path(boot: np.ndarray) -> dict[str, tuple[float, float]]:
    """5-95% band of each per-path statistic's *value for one path* across bootstrap paths."""
    loss = -boot.min(axis=1)
    kurt = stats.kurtosis(boot, axis=1)
    out = {}
    for name, v in (("max_loss", loss), ("path_kurt", kurt)):
        lo, hi = np.quantile(v, [0.05, 0.95])
        for stat in ("median", "p99"):
            out[f"{name}_{stat}"] = (float(lo), float(hi))
    return out


def tail_diagnostics(real: pd.Series, generated: Mapping[str, np.ndarray], *, n_replicates: int | None = None,
                     seed: int = 0) -> pd.DataFrame:
    """Tails and explosions of each generator's paths beside the block bootstrap's 5-95% band.

    Parameters
    ----------
    real : Series
        The real daily returns (finite).
    generated : dict of name -> array (n_paths, T)
        Each generator's paths (a :class:`~finar.Scenarios`' ``paths[:, :, 0]``).
    n_replicates : int, optional
        Bootstrap replicates of the band; default: as many as the first generator has paths.
    seed : int, default 0
        Seed of the bootstrap replicates.

    Returns
    -------
    DataFrame
        One row per generator and one for ``'real'``: the statistics of the module docstring,
        ``<fact>_q05`` / ``<fact>_q95`` (the band) and ``inside_<fact>`` for the pooled facts and
        the per-path maximum loss and kurtosis. Per-path bands describe one path, so a
        generator's median should fall inside its band and its 99th percentile near its top.
        For generators with paths at least as long as ``real``: ``seg_<fact>_q05``,
        ``seg_<fact>_q95`` and ``real_pct_<fact>`` for the pooled facts (module docstring; NaN
        for shorter paths and for the ``'real'`` row).
    """
    x = np.asarray(real, dtype=float).ravel()
    if x.size < 100 or not np.isfinite(x).all():
        raise DataError("real must hold at least 100 finite returns")
    if not generated:
        raise DataError("generated is empty: pass a dict of name -> paths")
    paths = {}
    for name, p in generated.items():
        a = np.asarray(p, dtype=float)
        a = a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a
        if a.ndim != 2 or a.shape[1] < 100 or not np.isfinite(a).all():
            raise DataError(f"generated {name!r} must be finite paths (n_paths, T >= 100), got shape "
                            f"{a.shape}")
        paths[name] = a
    first = next(iter(paths.values()))
    m = int(n_replicates) if n_replicates is not None else first.shape[0]
    if m < 20:
        raise DataError(f"n_replicates must be at least 20 for a 5-95% band, got {m}")
    rng = np.random.default_rng(seed)
    worst = float(-x.min())
    same_length = stationary_bootstrap(x, m, x.size, MEAN_BLOCK, rng)
    pooled_reps = pd.DataFrame([_pooled(b[None, :]) for b in same_length])
    band = {f: (float(pooled_reps[f].quantile(0.05)), float(pooled_reps[f].quantile(0.95)))
            for f in POOLED_FACTS}
    band.update(_band_per_path(stationary_bootstrap(x, m, first.shape[1], MEAN_BLOCK, rng)))

    real_facts = _pooled(x[None, :])
    rows = [{"model": "real", **real_facts, **_per_path(x[None, :], worst)}]
    rows += [{"model": name, **_pooled(p), **_per_path(p, worst), **_same_length(p, x.size, real_facts)}
             for name, p in paths.items()]
    out = pd.DataFrame(rows).set_index("model")
    for fact, (lo, hi) in band.items():
        out[f"{fact}_q05"], out[f"{fact}_q95"] = lo, hi
        out[f"inside_{fact}"] = [bool(lo <= v <= hi) if math.isfinite(v) else False for v in out[fact]]
    out.attrs.update(worst_real_loss=worst, n_replicates=m, mean_block=MEAN_BLOCK, seed=seed)
    return out
