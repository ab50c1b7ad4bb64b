"""Joint evaluation of panel forecasts: joint log scores, multivariate scoring rules, portfolio
VaR backtests, co-crashes and correlation matrices of generated paths (PROTOCOLS.md P6).

Every function works over the forecaster contract, so any joint model (tag ``"joint"``: the
columns of a day form one density, e.g. :class:`finar.models.DCC` or PixelCNN) and any panel of
independent per-column models plug in:

- :func:`joint_log_score`: ``log p(r_t | r_<t)`` of each day's whole row (nats per day, and per
  asset-day), the exact joint density's score;
- :func:`conditional_log_score`: the other columns' score given some columns' same-day returns
  (stress conditioning, e.g. the stocks given the index);
- :func:`energy_score` and :func:`variogram_score`: the multivariate scoring rules of Gneiting &
  Raftery (2007) and Scheuerer & Hamill (2015) computed by the ``scoringrules`` package from
  scenario ensembles (lower is better);
- :func:`var_tests`: hit rate, Kupiec, Christoffersen and the Basel traffic light of a VaR
  forecast (from :mod:`finar.evaluation.stattests`);
- :func:`joint_backtest`: the loop of P6 over a test span with refits, scoring each day from
  joint scenarios: 1-day and h-day energy/variogram scores, portfolio VaR per weighting;
- :func:`co_crash` and :func:`correlation_distance`: facts of generated paths against the
  real panel and a block bootstrap's band.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finar._estimator import check_int, check_number, clone
from finar.data.transforms import as_frame
from finar.errors import DataError, FinarError
from finar.evaluation import stattests
from finar.evaluation.stylized import stationary_bootstrap
from finar.models.base import Forecaster, check_returns
from finar.models.scenarios import portfolio_returns

__all__ = ["joint_log_score", "conditional_log_score", "energy_score", "variogram_score", "var_tests",
           "min_variance_weights", "joint_backtest", "JointBacktest", "co_crash", "correlation_distance"]


# ---- log scores -------------------------------------------------------------------------------
def joint_log_score(model: Forecaster, r: pd.DataFrame, start: Any = None, end: Any = None) -> pd.DataFrame:
    """The joint one-step log score of each day from ``start`` to ``end``.

    Returns a DataFrame with ``joint`` (``log p(r_t | r_<t)`` of the whole row, nats per day) and
    ``per_asset`` (``joint / N``). For a model without the ``"joint"`` tag the row sum treats the
    columns as independent given the past, which is that model's joint density.
    """
    frame = check_returns(r)
    joint = model.joint_log_prob(frame).loc[start:end]
    return pd.DataFrame({"joint": joint, "per_asset": joint / frame.shape[1]})


def conditional_log_score(model: Forecaster, r: pd.DataFrame, given: Sequence[str], start: Any = None,
                          end: Any = None) -> pd.Series:
    """``log p(r_{t,rest} | r_{t,given}, r_<t)`` per day: the other columns given ``given`` on the same day.

    Exact for models with ``conditional_log_prob`` (the copula and DCC models, any ``given``) and
    for joint models whose ``log_prob`` cells are chain-rule conditionals when ``given`` are the
    leading columns (PixelCNN with the index first): then it is the sum of the other cells. A
    model without the ``"joint"`` tag conditions on nothing: its score is the others' marginals.
    """
    frame = check_returns(r)
    names = [str(g) for g in given]
    cols = [str(c) for c in frame.columns]
    if not names or any(g not in cols for g in names):
        raise DataError(f"given must name columns of r ({cols}), got {list(given)}")
    if hasattr(model, "conditional_log_prob"):
        return model.conditional_log_prob(frame, names).loc[start:end]
    lp = as_frame(model.log_prob(frame))
    if "joint" in model.tags and cols[: len(names)] != names:
        raise FinarError(f"{type(model).__name__}: the conditional score given {names} is exact only "
                         f"when they are the leading columns of its order ({cols[:len(names)]}); "
                         "reorder the columns")
    rest = [c for c in cols if c not in names]
    return lp[rest].sum(axis=1, min_count=len(rest)).loc[start:end].rename("conditional_log_prob")


# ---- multivariate scoring rules ---------------------------------------------------------------
def _ensemble(y: Any, paths: Any) -> tuple[np.ndarray, np.ndarray]:
    obs = np.asarray(y, dtype=float)
    fct = np.asarray(paths, dtype=float)
    if fct.ndim != obs.ndim + 1 or fct.shape[:-2] != obs.shape[:-1] or fct.shape[-1] != obs.shape[-1]:
        raise DataError(f"scenarios must be shaped (..., n_members, D) for observations (..., D); got "
                        f"{fct.shape} for {obs.shape}")
    if not (np.isfinite(obs).all() and np.isfinite(fct).all()):
        raise DataError("observations and scenarios must be finite")
    return obs, fct


def energy_score(y: Any, paths: Any) -> np.ndarray:
    """Energy score ``E||X - y|| - E||X - X'|| / 2`` of ensembles ``paths`` (..., M, D) for ``y`` (..., D).

    Computed by ``scoringrules.es_ensemble`` (the unbiased "nrg" estimator over all member pairs).
    Lower is better; in the units of ``y``.
    """
    import scoringrules as sr

    obs, fct = _ensemble(y, paths)
    return np.asarray(sr.es_ensemble(obs, fct))


def variogram_score(y: Any, paths: Any, p: float = 0.5) -> np.ndarray:
    """Variogram score of order ``p``: ``sum_{i,j} (|y_i - y_j|^p - E|X_i - X_j|^p)^2`` over all ordered
    pairs (``scoringrules.vs_ensemble``). It is sensitive to the correlation structure that the
    energy score barely sees (Scheuerer & Hamill 2015). Lower is better."""
    import scoringrules as sr

    obs, fct = _ensemble(y, paths)
    return np.asarray(sr.vs_ensemble(obs, fct, p=check_number("p", p, 0.0, 2.0, low_open=True)))


# ---- portfolio VaR -----------------------------------------------------------------------------
def var_tests(returns: pd.Series | np.ndarray, var: pd.Series | np.ndarray, alpha: float) -> dict[str, Any]:
    """VaR backtest of positive-loss forecasts ``var``: hit rate, Kupiec, Christoffersen, traffic light.

    A hit is ``r_t < -VaR_t``. The traffic light runs on 250-day windows (its zone of the last
    window and the worst zone), only at ``alpha = 0.01`` as Basel does and when there are 250 days.
    """
    r = np.asarray(returns, dtype=float)
    v = np.asarray(var, dtype=float)
    if r.shape != v.shape or r.ndim != 1:
        raise DataError(f"returns and var must be 1-D with one value per day, got {r.shape} and {v.shape}")
    hits = r < -v
    kup = stattests.kupiec_pof(hits, alpha)
    ind = stattests.christoffersen_independence(hits)
    cc = stattests.christoffersen_cc(hits, alpha)
    out = {"alpha": alpha, "n_obs": len(r), "n_hits": int(hits.sum()), "hit_rate": float(hits.mean()),
           "kupiec_stat": kup.statistic, "kupiec_p": kup.p_value, "christoffersen_ind_p": ind.p_value,
           "christoffersen_cc_stat": cc.statistic, "christoffersen_cc_p": cc.p_value}
    if alpha == 0.01 and len(r) >= 250:
        tl = stattests.traffic_light(hits, window=250, alpha=alpha)
        out.update({"traffic_light_last": tl.extra["last_zone"],
                    "traffic_light_worst": tl.extra["worst_zone"],
                    "traffic_light_red_windows": tl.extra["counts"]["red"]})
    return out


def min_variance_weights(r_train: pd.DataFrame) -> pd.Series:
    """Global minimum-variance weights ``Sigma^{-1} 1 / (1' Sigma^{-1} 1)`` from the sample covariance
    of ``r_train`` (short positions allowed; they sum to 1)."""
    frame = check_returns(r_train)
    if len(frame) <= frame.shape[1]:
        raise DataError(f"r_train needs more days ({len(frame)}) than columns ({frame.shape[1]}) for an "
                        "invertible covariance")
    sol = np.linalg.solve(np.cov(frame.to_numpy(dtype=float), rowvar=False), np.ones(frame.shape[1]))
    return pd.Series(sol / sol.sum(), index=frame.columns, name="min_variance")


# ---- the P6 backtest loop ------------------------------------------------------------------------
@dataclass
class JointBacktest:
    """Daily and per-origin scores of a joint backtest (see :func:`joint_backtest`).

    ``daily``: per test day ``joint`` and ``per_asset`` log scores, ``conditional`` (given the
    ``given`` columns), ``energy_1`` and ``variogram_1`` of the 1-day return vector, and per
    portfolio ``<name>_return`` with ``<name>_var_1`` / ``<name>_var_5`` (positive losses from the
    scenarios). ``origins``: per h-day origin ``energy_<h>`` and ``variogram_<h>`` of the
    cumulative return vector.
    """

    label: str
    daily: pd.DataFrame
    origins: pd.DataFrame
    portfolios: list[str]
    n_assets: int
    fit_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Mean scores and the VaR tests of each portfolio at 1% and 5%, as one flat dict."""
        d = self.daily
        out: dict[str, Any] = {"model": self.label, "joint_log_score": float(d["joint"].mean()),
                               "log_score_per_asset_day": float(d["per_asset"].mean()), "n_days": len(d),
                               "fit_seconds": self.fit_seconds}
        for col in ("conditional", "energy_1", "variogram_1"):
            if col in d:
                out[f"{col}_score" if col == "conditional" else col] = float(d[col].mean())
        for col in self.origins.columns:
            out[col] = float(self.origins[col].mean())
        for name in self.portfolios:
            for alpha, tag in ((0.01, "1"), (0.05, "5")):
                tests = var_tests(d[f"{name}_return"], d[f"{name}_var_{tag}"], alpha)
                out.update({f"{name}_{k}_{tag}": v for k, v in tests.items() if k not in ("alpha", "n_obs")})
        return out


def _blocks(n_train: int, n_total: int, refit_every: int | None) -> list[tuple[int, int]]:
    if refit_every is None:
        return [(n_train, n_total)]
    starts = list(range(n_train, n_total, refit_every))
    return [(s, min(s + refit_every, n_total)) for s in starts]


def joint_backtest(model: Forecaster, r: pd.DataFrame, start: Any, end: Any = None, *,
                   refit_every: int | None = 60, n_paths: int = 1000, horizon: int = 20,
                   weights: Mapping[str, Mapping[str, float] | pd.Series] | None = None,
                   given: Sequence[str] | None = None, score_columns: Sequence[str] | None = None,
                   seed: int = 0, label: str | None = None, kind: str = "log",
                   scale: float = 100.0, scenarios: bool = True, fitted: bool = False) -> JointBacktest:
    """P6's loop: fit on the days before each block, score each test day from the exact density and
    from ``n_paths`` joint scenarios.

    Parameters
    ----------
    model : Forecaster
        Cloned and fitted on ``r`` before each block (expanding window from ``r``'s first day).
        A model with ``warm_start=True`` (e.g. :class:`~finar.models.NeuralDCC`) is cloned once
        and refitted in place, so each refit starts from the previous block's fit.
    r : DataFrame
        Returns of all series, training days first.
    start, end
        The test span (labels of ``r``'s index).
    refit_every : int or None, default 60
        Test days per block; ``None`` fits once on the days before ``start``.
    n_paths : int, default 1000
        Scenarios per day (and per ``horizon``-day origin).
    horizon : int, default 20
        Length of the cumulative return vectors scored at origins ``horizon`` days apart.
    weights : mapping, optional
        Portfolio name -> weights by column (missing columns weigh 0): each portfolio's realised
        return and its 1% and 5% VaR read from the 1-day scenarios.
    given : sequence of str, optional
        Columns to condition on for the ``conditional`` score (e.g. ``["SP500"]``).
    score_columns : sequence of str, optional
        Columns of the energy and variogram scores (default all).
    seed : int, default 0
        Day ``t``'s scenarios use seed ``seed + t`` (position in ``r``): reproducible, and the
        same draws for every model with the same sampler.
    label : str, optional
        The row's name in summaries (default the model's class name).
    kind, scale : default 'log', 100
        What ``r`` holds (log returns in percent by default), for the portfolio returns.
    scenarios : bool, default True
        False scores the exact densities only (log scores), without sampling: fast.
    fitted : bool, default False
        ``model`` is already fitted on the days before ``start`` and is scored as it is: on every
        day with ``refit_every=None`` (a network fitted once is not fitted again), else on the
        first block, later blocks being refitted (``model`` itself is never changed).

    Returns
    -------
    JointBacktest
    """
    frame = check_returns(r)
    n_paths, horizon = check_int("n_paths", n_paths, 2), check_int("horizon", horizon, 1)
    test_pos = np.flatnonzero((frame.index >= pd.Timestamp(start))
                              & (frame.index <= (pd.Timestamp(end) if end is not None else frame.index[-1])))
    if len(test_pos) == 0 or test_pos[0] == 0:
        raise DataError(f"the test span from {start} to {end} must lie inside r and leave training days "
                        "before it")
    n0, n1 = int(test_pos[0]), int(test_pos[-1]) + 1
    cols = [str(c) for c in frame.columns]
    score_idx = [cols.index(c) for c in (score_columns or cols)]
    wts = {name: np.array([float(pd.Series(w).get(c, 0.0)) for c in cols])
           for name, w in (weights or {}).items()}
    realised = {name: portfolio_returns(frame.to_numpy(dtype=float), w, kind=kind, scale=scale)
                for name, w in wts.items()}
    rows, origin_rows, seconds = [], [], 0.0
    warm, m = bool(getattr(model, "warm_start", False)), None
    for b0, b1 in _blocks(n0, n1, check_int("refit_every", refit_every, 1) if refit_every else None):
        t0 = time.perf_counter()
        if fitted and (refit_every is None or b0 == n0):
            m = model
        elif warm and m is not None:  # the previous block's fit, refitted (never the caller's model)
            m = (copy.deepcopy(m) if m is model else m).fit(frame.iloc[:b0])
        else:
            m = clone(model).fit(frame.iloc[:b0])
        seconds += time.perf_counter() - t0
        upto = frame.iloc[:b1]
        joint = m.joint_log_prob(upto).to_numpy()
        cond = conditional_log_score(m, upto, given).to_numpy() if given else None
        next_days = getattr(m, "next_day_scenarios", None)
        day_paths = (next_days(upto, range(b0, b1), n_paths, [seed + t for t in range(b0, b1)])
                     if scenarios and next_days is not None else None)
        for t in range(b0, b1):
            row = {"time": frame.index[t], "joint": joint[t], "per_asset": joint[t] / len(cols)}
            if cond is not None:
                row["conditional"] = cond[t]
            rows.append(row)
            if not scenarios:
                continue
            # one pass over the block where the model offers it, else a sample per day (same draws)
            x = (day_paths[t - b0] if day_paths is not None
                 else m.sample(frame.iloc[:t], horizon=1, n_paths=n_paths, seed=seed + t).paths[:, 0, :])
            y = frame.iloc[t].to_numpy(dtype=float)
            row["energy_1"] = float(energy_score(y[score_idx], x[:, score_idx]))
            row["variogram_1"] = float(variogram_score(y[score_idx], x[:, score_idx]))
            for name, w in wts.items():
                port = portfolio_returns(x, w, kind=kind, scale=scale)
                row[f"{name}_return"] = realised[name][t]
                row[f"{name}_var_1"] = -float(np.quantile(port, 0.01))
                row[f"{name}_var_5"] = -float(np.quantile(port, 0.05))
            if (t - n0) % horizon == 0 and t + horizon <= n1:
                paths = m.sample(frame.iloc[:t], horizon=horizon, n_paths=n_paths, seed=seed + t + 1)
                cum = paths.paths.sum(axis=1)[:, score_idx]
                real = frame.iloc[t:t + horizon].to_numpy(dtype=float).sum(axis=0)[score_idx]
                origin_rows.append({"time": frame.index[t],
                                    f"energy_{horizon}": float(energy_score(real, cum)),
                                    f"variogram_{horizon}": float(variogram_score(real, cum))})
    daily = pd.DataFrame(rows).set_index("time")
    origins = pd.DataFrame(origin_rows).set_index("time") if origin_rows else pd.DataFrame()
    portfolios = list(wts) if scenarios else []
    return JointBacktest(label or type(model).__name__, daily, origins, portfolios, len(cols), seconds,
                         {"refit_every": refit_every, "n_paths": n_paths, "horizon": horizon, "seed": seed,
                          "given": list(given or []), "score_columns": [cols[i] for i in score_idx]})


# ---- facts of generated paths -------------------------------------------------------------------
def _paths_array(paths: Any, n_cols: int) -> np.ndarray:
    arr = np.asarray(getattr(paths, "paths", paths), dtype=float)
    if arr.ndim != 3 or arr.shape[2] != n_cols or not np.isfinite(arr).all():
        raise DataError(f"generated paths must be finite and shaped (n_paths, horizon, {n_cols}), "
                        f"got {arr.shape}")
    return arr


def _bootstrap_rows(real: np.ndarray, n_paths: int, length: int, mean_block: float, seed: int) -> np.ndarray:
    """Stationary block bootstrap of whole days (rows), so each day keeps its cross-section."""
    idx = stationary_bootstrap(np.arange(len(real), dtype=float), n_paths, length, mean_block,
                               rng=np.random.default_rng(seed)).astype(int)
    return real[idx]  # (n_paths, length, N)


def _crash_freq(x: np.ndarray, sigma: np.ndarray, k: int, threshold: float) -> np.ndarray:
    return ((x < -threshold * sigma).sum(axis=-1) >= k).mean(axis=-1)


def co_crash(real: pd.DataFrame, generated: Any, k: int = 15, threshold: float = 2.0, n_boot: int = 500,
             mean_block: float = 20.0, seed: int = 0) -> dict[str, float]:
    """How often at least ``k`` series fall more than ``threshold`` of their own sigmas on one day.

    ``sigma`` is each series' standard deviation in its own sample (the real panel's over its
    days; the generated one's over all paths and days). Returns the real frequency, the mean
    over generated paths, and the 5%-95% band of the frequency in block-bootstrap paths of the
    real days as long as the generated ones (``mean_block``-day blocks of whole rows).
    """
    frame = check_returns(real)
    x = frame.to_numpy(dtype=float)
    gen = _paths_array(generated, x.shape[1])
    f_real = float(_crash_freq(x, x.std(axis=0, ddof=1), k, threshold))
    f_gen = _crash_freq(gen, gen.reshape(-1, x.shape[1]).std(axis=0, ddof=1), k, threshold)
    boot = _bootstrap_rows(x, n_boot, gen.shape[1], mean_block, seed)
    f_boot = _crash_freq(boot, x.std(axis=0, ddof=1), k, threshold)
    return {"co_crash_real": f_real, "co_crash_generated": float(f_gen.mean()),
            "co_crash_boot_q05": float(np.quantile(f_boot, 0.05)),
            "co_crash_boot_q95": float(np.quantile(f_boot, 0.95))}


def _offdiag_distance(paths: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the off-diagonal correlations of each path from ``target``.

    A column constant over a path (a window of stale prices) has no correlation there: its pairs
    are left out of that path's mean, and a path with no defined pair gives NaN."""
    z = paths - paths.mean(axis=1, keepdims=True)
    cov = np.einsum("phi,phj->pij", z, z)
    d = np.sqrt(np.einsum("pii->pi", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / (d[:, :, None] * d[:, None, :])
    off = ~np.eye(target.shape[0], dtype=bool)
    dist = np.abs(corr[:, off] - target[off])
    n = np.isfinite(dist).sum(axis=1)
    return np.where(n > 0, np.nansum(dist, axis=1) / np.maximum(n, 1), np.nan)


def correlation_distance(real: pd.DataFrame, generated: Any, n_boot: int = 500, mean_block: float = 20.0,
                         seed: int = 0) -> dict[str, float]:
    """Distance of generated paths' correlation matrices from the real panel's.

    Each generated path of length ``H`` gives a correlation matrix; its distance is the mean
    absolute difference of the off-diagonal entries from the real panel's correlation matrix
    (over all its days). The band: the same distance for block-bootstrap paths of ``H`` real
    days, the sampling noise of an ``H``-day window of the real data. ``within_band`` when the
    generated mean distance is at most the bootstrap's 95% quantile.
    """
    frame = check_returns(real)
    x = frame.to_numpy(dtype=float)
    gen = _paths_array(generated, x.shape[1])
    target = np.corrcoef(x, rowvar=False)
    d_gen = _offdiag_distance(gen, target)
    d_boot = _offdiag_distance(_bootstrap_rows(x, n_boot, gen.shape[1], mean_block, seed), target)
    q95 = float(np.nanquantile(d_boot, 0.95))
    off = ~np.eye(x.shape[1], dtype=bool)
    gen_corr = np.corrcoef(gen.reshape(-1, x.shape[1]), rowvar=False)
    return {"corr_distance_generated": float(np.nanmean(d_gen)),
            "corr_distance_boot_mean": float(np.nanmean(d_boot)),
            "corr_distance_boot_q95": q95, "corr_within_band": bool(np.nanmean(d_gen) <= q95),
            "mean_corr_real": float(target[off].mean()), "mean_corr_generated": float(gen_corr[off].mean())}
