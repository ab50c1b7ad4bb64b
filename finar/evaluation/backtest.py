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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from finar.data.transforms import as_frame
from finar.errors import DataError, LookAheadError, format_rows
from finar.evaluation import scoring, stattests
from finar.executors import ExecutorLike, JoblibExecutor, TaskError, resolve_executor, run_tasks, task_seed
from finar.models.base import Forecaster, check_returns, clone

__all__ = ["backtest", "backtest_panel", "BacktestResult", "level_tag"]


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


def _run_block(job: tuple) -> _Block:
    # One BLAS thread everywhere (run_tasks(threads=1)): joblib's and Ray's workers run with one,
    # and a different thread count changes floating-point summation order, so serial and
    # parallel runs would differ in the last digits. Refits of these sizes gain nothing from them.
    return _score_block(*job)


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


@dataclass
class _Plan:
    """The refit blocks of one series' backtest and what assembling its result needs."""

    series: pd.Series
    jobs: list[tuple]
    first: int
    last: int
    settings: dict[str, Any]


def _plan(model: Forecaster, r: pd.Series | pd.DataFrame, start: Any, end: Any, horizon: int,
          window: Literal["expanding"] | int, refit_every: int | None, levels: tuple[float, ...],
          n_paths: int, seed: int, check_causality: bool) -> _Plan:
    frame = check_returns(r)
    if frame.shape[1] != 1:
        raise DataError(f"backtest takes one series; got {frame.shape[1]} columns "
                        f"({list(frame.columns)[:5]}); run one backtest per column, or backtest_panel")
    series = as_frame(frame).iloc[:, 0]
    if int(horizon) != horizon or horizon < 1:
        raise DataError(f"horizon must be a positive integer, got {horizon!r}")
    if refit_every is not None and (int(refit_every) != refit_every or refit_every < 1):
        raise DataError(f"refit_every must be a positive integer or None, got {refit_every!r}")
    if window != "expanding" and (not isinstance(window, int) or window < 1):
        raise DataError(f"window must be 'expanding' or a positive integer, got {window!r}")
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
    settings = {"start": str(idx[first]), "end": str(idx[last]), "horizon": int(horizon),
                "window": window, "refit_every": refit_every, "levels": list(levels),
                "n_paths": int(n_paths), "seed": int(seed), "model": repr(model)}
    return _Plan(series, jobs, first, last, settings)


def _assemble(plan: _Plan, results: list[_Block], label: str, seconds: float) -> BacktestResult:
    series, idx = plan.series, plan.series.index
    horizon, levels = plan.settings["horizon"], tuple(plan.settings["levels"])
    cat = np.concatenate
    daily = pd.DataFrame({
        "y": cat([np.array([series.to_numpy()[p: p + horizon].sum() for p in b.positions])
                  for b in results]),
        "log_score": cat([b.log_score for b in results]),
        "crps": cat([b.crps for b in results]),
        "pit": cat([b.pit for b in results]),
        "mean": cat([b.mean for b in results]),
        "std": cat([b.std for b in results]),
    }, index=idx[plan.first: plan.last + 1])
    for a in levels:
        tag = level_tag(a)
        daily[f"var_{tag}"] = cat([b.var[a] for b in results])
        daily[f"es_{tag}"] = cat([b.es[a] for b in results])
        daily[f"hit_{tag}"] = daily["y"] < -daily[f"var_{tag}"]
    daily["fit_date"] = np.repeat([idx[b.positions[0]] for b in results], [len(b.positions) for b in results])
    return BacktestResult(label, daily, levels, horizon, dict(plan.settings),
                          float(sum(b.fit_seconds for b in results)), seconds,
                          [b.sampler for b in results])


def _block_name(plan: _Plan, job: tuple) -> str:
    return str(plan.series.index[int(job[2][0])])


def backtest(model: Forecaster, r: pd.Series | pd.DataFrame, start: Any, end: Any = None, *,
             horizon: int = 1, window: Literal["expanding"] | int = "expanding",
             refit_every: int | None = 20, levels: Sequence[float] = (0.01, 0.025, 0.05),
             n_paths: int = 1000, seed: int = 0, n_jobs: int = 1, executor: ExecutorLike | None = None,
             progress: bool = True, check_causality: bool = True, name: str | None = None) -> BacktestResult:
    """Rolling-origin backtest of ``model`` on returns ``r`` over ``[start, end]``.

    Parameters
    ----------
    model : Forecaster
        Any forecaster of the contract; it is cloned, never modified.
    r : Series
        Returns (one series), e.g. ``finar.returns(px)``; :func:`backtest_panel` takes many.
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
        All randomness derives from it; results do not depend on ``n_jobs`` or ``executor``.
    n_jobs : int
        Refit blocks run in parallel with joblib when > 1 (-1: all cores); the same as
        ``executor=finar.executors.JoblibExecutor(n_jobs)``.
    executor : 'serial', 'joblib', 'ray' or executor object, optional
        Where the refit blocks run, one task each (:mod:`finar.executors`); default: joblib
        when ``n_jobs != 1``, else serial. A failed block is retried once unless it raised a
        ``FinarError``; then its error is raised as it is.
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
    levels = tuple(float(a) for a in levels)
    plan = _plan(model, r, start, end, horizon, window, refit_every, levels, n_paths, seed, check_causality)
    runner = _executor(executor, n_jobs)
    label = name or repr(model)
    t0 = time.perf_counter()
    try:
        results = run_tasks(_run_block, plan.jobs, executor=runner,
                            names=[_block_name(plan, j) for j in plan.jobs], progress=progress,
                            description=f"backtest {label}")
    except TaskError as err:  # one series: a failed block leaves no valid table, so raise its error
        raise next(iter(err.exceptions.values()), err) from None
    out = _assemble(plan, results, label, time.perf_counter() - t0)
    out.settings["n_jobs"] = n_jobs
    return out


def _executor(executor: ExecutorLike | None, n_jobs: int) -> Any:
    if executor is None:
        return "serial" if n_jobs == 1 else JoblibExecutor(n_jobs)
    if n_jobs != 1 and executor != "joblib":
        raise DataError(f"n_jobs={n_jobs} only applies to joblib; with executor={executor!r} leave n_jobs=1")
    return resolve_executor(executor, n_jobs if n_jobs != 1 else None)


def backtest_panel(model: Forecaster | Mapping[str, Forecaster], r: pd.DataFrame, start: Any, end: Any = None,
                   *, horizon: int = 1, window: Literal["expanding"] | int = "expanding",
                   refit_every: int | None = 20, levels: Sequence[float] = (0.01, 0.025, 0.05),
                   n_paths: int = 1000, seed: int = 0, executor: ExecutorLike = "serial", retries: int = 1,
                   progress: bool = True, check_causality: bool = True) -> dict[str, BacktestResult]:
    """:func:`backtest` of every column of ``r``, all assets' refit blocks fanned out as one set of tasks.

    Each (asset, refit block) is one task named ``"<asset>/<first test day>"``, so a cluster
    stays busy across assets. Each asset's randomness comes from
    :func:`finar.executors.task_seed` of ``seed`` and its name: an asset gets the same table
    whichever assets run with it and on any executor, but not the table of
    ``backtest(..., seed=seed)``.

    Parameters
    ----------
    model : Forecaster or mapping
        One model for every asset, or ``{asset: model}`` covering every column.
    r : DataFrame
        Returns, one column per asset; each asset is backtested on its own non-NaN rows.
    executor, retries
        As in :func:`finar.executors.run_tasks`.
    start, end, horizon, window, refit_every, levels, n_paths, check_causality
        As in :func:`backtest`.

    Returns
    -------
    dict
        ``asset -> BacktestResult`` in the column order of ``r``.

    Raises
    ------
    finar.executors.TaskError
        If some blocks failed after their retries: the message names them by asset and date;
        ``.results`` holds the ``BacktestResult`` of every asset whose blocks all succeeded and
        ``.failures`` the failed tasks.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500-stocks")[["AAPL", "MSFT"]]).loc["2016":"2018"]
    >>> bts = backtest_panel(finar.models.GARCH(dist="t"), r, start="2018-07-01", refit_every=60,
    ...                      progress=False)
    >>> list(bts)
    ['AAPL', 'MSFT']
    """
    if not isinstance(r, pd.DataFrame):
        raise DataError(f"backtest_panel takes a DataFrame with one column per asset; got {type(r).__name__}")
    assets = [str(c) for c in r.columns]
    models = model if isinstance(model, Mapping) else dict.fromkeys(assets, model)
    missing = [a for a in assets if a not in models]
    if missing:
        raise DataError(f"model has no entry for assets {format_rows(missing)}; pass one model per column")
    levels = tuple(float(a) for a in levels)
    plans = {a: _plan(models[a], r[c].dropna(), start, end, horizon, window, refit_every, levels, n_paths,
                      task_seed(seed, a), check_causality) for a, c in zip(assets, r.columns, strict=True)}
    jobs = [(a, job) for a, plan in plans.items() for job in plan.jobs]
    names = [f"{a}/{_block_name(plans[a], job)}" for a, job in jobs]
    t0 = time.perf_counter()
    try:
        blocks = dict(zip(names, run_tasks(_run_block, [job for _, job in jobs], executor=executor,
                                           names=names, retries=retries, progress=progress,
                                           description="backtest_panel"), strict=True))
        failed = None
    except TaskError as err:
        blocks, failed = err.results, err
    seconds = time.perf_counter() - t0
    out = {}
    for a, plan in plans.items():
        mine = [n for (asset, _), n in zip(jobs, names, strict=True) if asset == a]
        if all(n in blocks for n in mine):
            out[a] = _assemble(plan, [blocks[n] for n in mine], a, seconds)
            out[a].settings["asset"] = a
    if failed is not None:
        bad = sorted({n.rsplit("/", 1)[0] for n in failed.failures.index})
        raise TaskError(f"backtest_panel: {len(bad)} of {len(assets)} assets failed ({format_rows(bad)}); "
                        f"{failed}", out, failed.failures, failed.exceptions) from failed
    return out
