"""Rolling-origin backtests of density forecasts, for any forecaster of the contract.

For every test day ``t`` the model sees only data before ``t``: it is (re)fitted on a window
that ends before the first day of its block of ``refit_every`` days, and its forecast for ``t``
conditions on ``r_<t``. One-step scores come from the model's exact densities (``log_prob``)
and, where it has one, its closed-form predictive distribution (``predictive``: PIT, VaR, ES,
closed-form CRPS); otherwise from ``n_paths`` sample paths (fair ensemble CRPS, empirical PIT,
VaR and ES). h-step forecasts of h-day cumulative returns always come from paths, and their
log score is left out (NaN): finar never replaces an exact density by a kernel estimate.

A model that looks ahead is caught: in every block the one-step log scores are recomputed
with all data after a cut day replaced by noise, and must not change up to that day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from finar._progress import progress_bar
from finar.data.transforms import as_frame
from finar.errors import DataError, LookAheadError
from finar.evaluation import scoring, stattests
from finar.models.base import Forecaster, check_returns, clone

__all__ = ["backtest", "BacktestResult", "level_tag"]


def level_tag(alpha: float) -> str:
    """``0.01 -> '1'``, ``0.025 -> '2.5'``: the suffix of per-level columns and keys."""
    return f"{alpha * 100:g}"


@dataclass
class _Block:
    positions: np.ndarray  # test-day positions in the series
    log_score: np.ndarray
    crps: np.ndarray
    pit: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    var: dict[float, np.ndarray]
    es: dict[float, np.ndarray]
    fit_seconds: float
    sampler: Callable[[np.random.Generator, int], np.ndarray]  # draws (n, len(positions))


@dataclass
class BacktestResult:
    """What :func:`backtest` measured: one row per test day, and the settings used.

    Attributes
    ----------
    daily : DataFrame
        Per test day: ``y`` (realised, h-day cumulative for ``horizon > 1``), ``log_score``
        (nats), ``crps``, ``pit``, ``mean`` and ``std`` of the forecast (``std`` is the predicted
        volatility that :func:`finar.evaluation.strategy.vol_target` takes), and per VaR level
        ``a`` (tag ``level_tag(a)``):
        ``var_{tag}``, ``es_{tag}`` (positive losses) and ``hit_{tag}`` (``y < -var``), plus
        ``fit_date`` (first day of the refit block).
    """

    name: str
    daily: pd.DataFrame
    levels: tuple[float, ...]
    horizon: int
    settings: dict[str, Any]
    fit_seconds: float
    seconds: float
    _samplers: list[Callable[[np.random.Generator, int], np.ndarray]] = field(
        repr=False, default_factory=list)
    _summary: dict[tuple[int, int], pd.Series] = field(repr=False, default_factory=dict)

    def sample_predictive(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws ``(n, n_days)`` from each test day's predictive distribution."""
        return np.concatenate([s(rng, n) for s in self._samplers], axis=1)

    def summary(self, es_sims: int = 2000, seed: int = 0) -> pd.Series:
        """Mean scores, hit rates and the forecast tests of PROTOCOLS P1.

        Keys: ``log_score crps n_days``; per level ``hit_{tag} kupiec_{tag}
        christoffersen_ind_{tag} christoffersen_cc_{tag} es_z2_{tag} es_z2_p_{tag}``; the Basel
        traffic light at 1% on rolling 250-day windows (``traffic_light`` = zone of the last
        window, ``traffic_light_worst``, ``traffic_light_{green,yellow,red}`` window counts);
        PIT uniformity ``pit_berkowitz_p pit_ks_p``; ``fit_seconds seconds``.
        """
        key = (es_sims, seed)
        if key in self._summary:
            return self._summary[key].copy()
        d = self.daily
        out: dict[str, Any] = {"model": self.name, "n_days": len(d),
                               "log_score": d["log_score"].mean(skipna=False) if self.horizon == 1
                               else np.nan, "crps": d["crps"].mean()}
        draws = self.sample_predictive(np.random.default_rng(seed), es_sims) if es_sims else None
        for a in self.levels:
            tag = level_tag(a)
            hits = d[f"hit_{tag}"].to_numpy(dtype=bool)
            out[f"hit_{tag}"] = hits.mean()
            out[f"kupiec_{tag}"] = stattests.kupiec_pof(hits, a).p_value
            out[f"christoffersen_ind_{tag}"] = stattests.christoffersen_independence(hits).p_value
            out[f"christoffersen_cc_{tag}"] = stattests.christoffersen_cc(hits, a).p_value
            if draws is not None and self.horizon == 1:
                z2 = stattests.acerbi_szekely_z2(
                    d["y"].to_numpy(), d[f"var_{tag}"].to_numpy(), d[f"es_{tag}"].to_numpy(), a,
                    sampler=lambda rng, n, draws=draws: draws[:n], n_sims=es_sims, seed=seed)
                out[f"es_z2_{tag}"], out[f"es_z2_p_{tag}"] = z2.statistic, z2.p_value
        if 0.01 in self.levels and len(d) >= 250:
            tl = stattests.traffic_light(d[f"hit_{level_tag(0.01)}"].to_numpy(dtype=bool), 250, 0.01)
            out["traffic_light"] = tl.extra["last_zone"]
            out["traffic_light_worst"] = tl.extra["worst_zone"]
            for zone in ("green", "yellow", "red"):
                out[f"traffic_light_{zone}"] = tl.extra["counts"][zone]
        pit = d["pit"].to_numpy()
        out["pit_berkowitz_p"] = stattests.pit_uniformity(pit, method="berkowitz").p_value
        out["pit_ks_p"] = stattests.pit_uniformity(pit, method="ks").p_value
        out["fit_seconds"], out["seconds"] = self.fit_seconds, self.seconds
        self._summary[key] = pd.Series(out, name=self.name)
        return self._summary[key].copy()

    def to_dict(self) -> dict[str, Any]:
        """Settings and summary as plain values, for JSON results files."""
        s = self.summary()
        return {"name": self.name, "settings": self.settings,
                "summary": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in s.items()}}


@dataclass(frozen=True, eq=False)
class _PathSampler:
    """Resamples each day's stored paths: the predictive distribution of a path-only model."""

    draws: np.ndarray  # (n_paths, n_days)

    def __call__(self, rng: np.random.Generator, k: int) -> np.ndarray:
        pick = rng.integers(0, self.draws.shape[0], size=(k, self.draws.shape[1]))
        return np.take_along_axis(self.draws, pick, axis=0)


def _tail_from_paths(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (positive losses) per column of draws ``x`` (n, T)."""
    q = np.quantile(x, alpha, axis=0)
    tail = np.where(x <= q, x, np.nan)
    return -q, -np.nanmean(tail, axis=0)


def _check_causality(m: Forecaster, history: pd.Series, lp: np.ndarray, cut: int, seed: int) -> None:
    bumped = history.copy()
    rng = np.random.default_rng(seed)
    tail = len(history) - cut - 1
    if tail <= 0:
        return
    bumped.iloc[cut + 1:] = rng.permutation(history.to_numpy()[cut + 1:]) + rng.normal(0, 1, tail)
    lp2 = m.log_prob(bumped).to_numpy(dtype=float)
    if not np.allclose(lp2[: cut + 1], lp[: cut + 1], rtol=1e-7, atol=1e-9, equal_nan=True):
        bad = int(np.flatnonzero(~np.isclose(lp2[: cut + 1], lp[: cut + 1], rtol=1e-7, atol=1e-9,
                                             equal_nan=True))[0])
        raise LookAheadError(
            f"{type(m).__name__}: the log score for {history.index[bad]} changed when only data after "
            f"{history.index[cut]} changed; its forecasts use future data, so no backtest of it "
            "is valid"
        )


def _run_block(model: Forecaster, r: pd.Series, positions: np.ndarray, train: slice, horizon: int,
               levels: Sequence[float], n_paths: int, seed: int, check: bool) -> _Block:
    # One BLAS thread everywhere: joblib's workers run with one, and a different thread count
    # changes floating-point summation order, so serial and parallel runs would differ in the
    # last digits. Refits of these sizes gain nothing from BLAS threads.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _score_block(model, r, positions, train, horizon, levels, n_paths, seed, check)


def _score_block(model: Forecaster, r: pd.Series, positions: np.ndarray, train: slice, horizon: int,
                 levels: Sequence[float], n_paths: int, seed: int, check: bool) -> _Block:
    t0 = time.perf_counter()
    m = clone(model).fit(r.iloc[train])
    fit_seconds = time.perf_counter() - t0
    values = r.to_numpy(dtype=float)
    first, last = int(positions[0]), int(positions[-1])
    n = len(positions)
    if horizon == 1:
        history = r.iloc[: last + 1]
        lp_all = m.log_prob(history).to_numpy(dtype=float)
        if check:
            _check_causality(m, history, lp_all, first + n // 2, seed)
        y = values[positions]
        log_score = lp_all[positions]
        pred = m.predictive(history)
    else:
        y = np.array([values[p: p + horizon].sum() for p in positions])
        log_score = np.full(n, np.nan)
        pred = None
    if pred is not None:
        pred = pred.take(positions)
        pit, mean, std = pred.cdf(y), pred.mean(), pred.std()
        var = {a: pred.var(a) for a in levels}
        es = {a: pred.es(a) for a in levels}
        crps = _closed_form_crps(pred, y)
        if crps is None:
            crps = scoring.crps_ensemble(pred.sample(np.random.default_rng([seed, first]), n_paths).T, y)
        sampler = pred.sample
    else:
        draws = np.empty((n_paths, n))
        for j, p in enumerate(positions):
            sc = m.sample(r.iloc[:p], horizon=horizon, n_paths=n_paths, seed=int(
                np.random.SeedSequence([seed, int(p)]).generate_state(1)[0]))
            draws[:, j] = sc.paths[:, :, 0].sum(axis=1)
        pit = (draws <= y).mean(axis=0)
        mean, std = draws.mean(axis=0), draws.std(axis=0, ddof=1)
        crps = scoring.crps_ensemble(draws.T, y)
        var, es = {}, {}
        for a in levels:
            var[a], es[a] = _tail_from_paths(draws, a)
        sampler = _PathSampler(draws)

    return _Block(positions, log_score, np.asarray(crps, dtype=float), pit, mean, std, var, es, fit_seconds,
                  sampler)


def _closed_form_crps(pred: Any, y: np.ndarray) -> np.ndarray | None:
    if pred.dist == "normal":
        return scoring.crps_normal(y, pred.loc, pred.scale)
    if pred.dist == "t":
        return scoring.crps_std_t(y, pred.loc, pred.scale, pred.params[0])
    return None


def backtest(model: Forecaster, r: pd.Series | pd.DataFrame, start: Any, end: Any = None, *,
             horizon: int = 1, window: Literal["expanding"] | int = "expanding",
             refit_every: int | None = 20, levels: Sequence[float] = (0.01, 0.025, 0.05),
             n_paths: int = 1000, seed: int = 0, n_jobs: int = 1, progress: bool = True,
             check_causality: bool = True, name: str | None = None) -> BacktestResult:
    """Rolling-origin backtest of ``model`` on returns ``r`` over ``[start, end]``.

    Parameters
    ----------
    model : Forecaster
        Any forecaster of the contract; it is cloned, never modified.
    r : Series
        Returns (one series), e.g. ``finar.returns(px)``.
    start, end : date-like
        First and last test day (inclusive); ``end`` defaults to the last day that has a target.
    horizon : int, default 1
        1 for one-step densities; ``h > 1`` scores forecasts of the ``h``-day cumulative return
        starting on each test day, made with data before it (from sample paths).
    window : 'expanding' or int
        Fit on all data before the block, or on the last ``window`` observations before it.
        Forecasts always condition on the whole history before each day.
    refit_every : int or None, default 20
        Refit every this many test days; ``None`` fits once on the data before ``start``.
    levels : sequence of float
        VaR/ES levels (left tail).
    n_paths : int
        Sample paths per day where there is no closed form (and for CRPS of the skew-t).
    seed : int
        All randomness derives from it; results do not depend on ``n_jobs``.
    n_jobs : int
        Refit blocks run in parallel with joblib when > 1 (-1: all cores).
    progress : bool
        Show a progress bar on stderr.
    check_causality : bool
        Recompute each block's scores with perturbed future data and raise
        :class:`finar.errors.LookAheadError` if any earlier score changes.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"])
    >>> bt = finar.backtest(finar.models.GARCH(dist="t"), r, start="2018-01-01", refit_every=60,
    ...                     progress=False)
    >>> bool(bt.summary()["hit_1"] <= 0.05)
    True
    """
    frame = check_returns(r)
    if frame.shape[1] != 1:
        raise DataError(f"backtest takes one series; got {frame.shape[1]} columns "
                        f"({list(frame.columns)[:5]}); run one backtest per column")
    series = as_frame(frame).iloc[:, 0]
    if int(horizon) != horizon or horizon < 1:
        raise DataError(f"horizon must be a positive integer, got {horizon!r}")
    if refit_every is not None and (int(refit_every) != refit_every or refit_every < 1):
        raise DataError(f"refit_every must be a positive integer or None, got {refit_every!r}")
    if window != "expanding" and (not isinstance(window, int) or window < 1):
        raise DataError(f"window must be 'expanding' or a positive integer, got {window!r}")
    levels = tuple(float(a) for a in levels)
    if any(not 0 < a < 0.5 for a in levels):
        raise DataError(f"levels must lie in (0, 0.5), got {levels}")
    idx = series.index
    first = int(idx.searchsorted(pd.Timestamp(start) if isinstance(idx, pd.DatetimeIndex) else start))
    last_target = len(series) - horizon
    last = last_target if end is None else min(
        last_target, int(idx.searchsorted(pd.Timestamp(end) if isinstance(idx, pd.DatetimeIndex)
                                          else end, side="right")) - 1)
    if first < 1 or first > last:
        raise DataError(f"no test days between start={start!r} and end={end!r} with data before them "
                        f"(series spans {idx[0]} .. {idx[-1]})")
    positions = np.arange(first, last + 1)
    size = len(positions) if refit_every is None else int(refit_every)
    blocks = [positions[i: i + size] for i in range(0, len(positions), size)]

    def train_slice(p0: int) -> slice:
        return slice(0 if window == "expanding" else max(0, p0 - int(window)), p0)

    jobs = [(model, series, b, train_slice(int(b[0])), int(horizon), levels, int(n_paths), int(seed),
             bool(check_causality)) for b in blocks]
    label = name or repr(model)
    t0 = time.perf_counter()
    if n_jobs == 1:
        results = [_run_block(*job) for job in progress_bar(jobs, total=len(jobs), enabled=progress,
                                                            description=f"backtest {label}")]
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_run_block)(*job) for job in jobs)
        results = list(progress_bar(gen, total=len(jobs), enabled=progress, description=f"backtest {label}"))
    seconds = time.perf_counter() - t0

    cat = np.concatenate
    daily = pd.DataFrame({
        "y": cat([np.array([series.to_numpy()[p: p + horizon].sum() for p in b.positions])
                  for b in results]),
        "log_score": cat([b.log_score for b in results]),
        "crps": cat([b.crps for b in results]),
        "pit": cat([b.pit for b in results]),
        "mean": cat([b.mean for b in results]),
        "std": cat([b.std for b in results]),
    }, index=idx[positions])
    for a in levels:
        tag = level_tag(a)
        daily[f"var_{tag}"] = cat([b.var[a] for b in results])
        daily[f"es_{tag}"] = cat([b.es[a] for b in results])
        daily[f"hit_{tag}"] = daily["y"] < -daily[f"var_{tag}"]
    daily["fit_date"] = np.repeat([idx[b.positions[0]] for b in results], [len(b.positions) for b in results])
    settings = {"start": str(idx[first]), "end": str(idx[last]), "horizon": int(horizon),
                "window": window, "refit_every": refit_every, "levels": list(levels),
                "n_paths": int(n_paths), "seed": int(seed), "n_jobs": n_jobs,
                "model": repr(model)}
    return BacktestResult(label, daily, levels, int(horizon), settings,
                          float(sum(b.fit_seconds for b in results)), seconds,
                          [b.sampler for b in results])
