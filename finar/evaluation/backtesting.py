"""Rolling-origin backtests of density forecasts, for any forecaster of the contract.

For every test day ``t`` the model sees only data before ``t``: it is (re)fitted on a window
that ends before the first day of its block of ``refit_every`` days, and its forecast for ``t``
conditions on ``r_<t`` and on the covariates ``exog`` up to day ``t - 1`` (row ``t`` of ``exog``
is known at the close of day ``t`` and conditions ``r_{t+1}``; the model's own rule applies it).

One-step scores are exact: the log score from ``log_prob``, and for every model tagged
``"predictive"`` the PIT, CRPS, VaR, ES, mean and volatility from its predictive distribution
(:mod:`finar.models.predictive`), with no sample path drawn. Only a model without that tag (e.g.
one a user writes with ``sample`` alone) is evaluated from ``n_paths`` one-step paths a day
(fair ensemble CRPS, empirical PIT, VaR and ES); ``one_step="paths"`` forces that fallback, for
comparisons. h-step forecasts of h-day cumulative returns always come from paths, and their log
score is left out (NaN): finar never replaces an exact density by a kernel estimate.

A model that looks ahead is caught: in every block the one-step log scores are recomputed with
the returns after a cut day and the covariates from the cut day on replaced by noise, and must
not change up to that day.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from finar._estimator import check_date, check_int, check_seed
from finar.data.transforms import as_frame
from finar.errors import DataError, LookAheadError, format_rows
from finar.evaluation import scoring, stattests
from finar.executors import ExecutorLike, JoblibExecutor, TaskError, resolve_executor, run_tasks, task_seed
from finar.models.base import Forecaster, check_exog, check_returns, clone
from finar.models.predictive import Predictive

__all__ = ["backtest", "backtest_panel", "BacktestResult", "level_tag"]

Exog = pd.DataFrame | pd.Series | None
OneStep = Literal["auto", "paths"]


def level_tag(alpha: float) -> str:
    """``0.01 -> '1'``, ``0.025 -> '2.5'``: the suffix of per-level columns and keys."""
    return f"{alpha * 100:g}"


def _kw(exog: pd.DataFrame | None) -> dict[str, Any]:
    """``exog=`` only when there are covariates, so models written without the keyword still run."""
    return {} if exog is None else {"exog": exog}


@dataclass(frozen=True, eq=False)
class _PathDraws:
    """A path-only model's predictive distribution: resamples each day's stored one-step paths."""

    draws: np.ndarray  # (n_paths, n_days)

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        pick = rng.integers(0, self.draws.shape[0], size=(k, self.draws.shape[1]))
        return np.take_along_axis(self.draws, pick, axis=0)


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
    source: Predictive | _PathDraws  # what the block's days are drawn from (the ES test)


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
    predictives : list
        Per refit block, the one-step :class:`~finar.models.predictive.Predictive` of its days
        (models tagged ``"predictive"``), or their stored paths (path-only models, ``horizon > 1``).
    """

    name: str
    daily: pd.DataFrame
    levels: tuple[float, ...]
    horizon: int
    settings: dict[str, Any]
    fit_seconds: float
    seconds: float
    predictives: list[Predictive | _PathDraws] = field(repr=False, default_factory=list)
    _summary: dict[tuple[int, int], pd.Series] = field(repr=False, default_factory=dict)

    def sample_predictive(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws ``(n, n_days)`` from each test day's predictive distribution: exact draws
        (:meth:`Predictive.sample`) for predictive models, resampled stored paths otherwise."""
        return np.concatenate([p.sample(rng, n) for p in self.predictives], axis=1)

    def summary(self, es_sims: int = 2000, seed: int = 0) -> pd.Series:
        """Mean scores, hit rates and the forecast tests of PROTOCOLS P1.

        Keys: ``log_score crps n_days``; per level ``hit_{tag} kupiec_{tag}
        christoffersen_ind_{tag} christoffersen_cc_{tag} es_z2_{tag} es_z2_p_{tag}`` (the
        Acerbi-Szekely test simulates ``es_sims`` draws a day from :meth:`sample_predictive`);
        the Basel traffic light at 1% on rolling 250-day windows (``traffic_light`` = zone of the
        last window, ``traffic_light_worst``, ``traffic_light_{green,yellow,red}`` window counts);
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


def _tail_from_paths(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (positive losses) per column of draws ``x`` (n, T)."""
    q = np.quantile(x, alpha, axis=0)
    tail = np.where(x <= q, x, np.nan)
    return -q, -np.nanmean(tail, axis=0)


def _perturbed(x: np.ndarray, cut: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` ``(T, K)`` with every row from ``cut`` on changed: an integer-coded (categorical) column
    moves each value to the next code the column takes, any other column is shuffled and moved by
    noise that keeps it inside the range the column takes (a non-negative covariate such as a
    range variance stays non-negative, so a model with a domain constraint is not pushed out of it)."""
    out = x.copy()
    future = x[cut:]
    shuffled = rng.permutation(future)
    for k in range(x.shape[1]):
        codes = np.unique(x[:, k])
        if len(codes) > 1 and np.all(codes == np.round(codes)):
            out[cut:, k] = codes[(np.searchsorted(codes, future[:, k]) + 1) % len(codes)]
        else:
            lo, hi = float(x[:, k].min()), float(x[:, k].max())
            noisy = shuffled[:, k] + rng.normal(0, 1 + np.std(x[:, k]), len(future))
            out[cut:, k] = lo + np.abs(noisy - lo) if hi > lo else noisy  # reflected at the minimum
    return out


def _check_causality(m: Forecaster, history: pd.Series, exog: pd.DataFrame | None, lp: np.ndarray, cut: int,
                     seed: int) -> None:
    """Scores up to day ``cut`` must not move when the returns after it and the covariates from
    it on change (row ``cut`` of ``exog`` may only condition day ``cut + 1``)."""
    rng = np.random.default_rng(seed)
    tail = len(history) - cut - 1
    if tail <= 0:
        return
    bumped = history.copy()
    bumped.iloc[cut + 1:] = rng.permutation(history.to_numpy()[cut + 1:]) + rng.normal(0, 1, tail)
    kw = {}
    if exog is not None:
        kw["exog"] = pd.DataFrame(_perturbed(exog.to_numpy(dtype=float), cut, rng), index=exog.index,
                                  columns=exog.columns)
    lp2 = m.log_prob(bumped, **kw).to_numpy(dtype=float)
    same = np.isclose(lp2[: cut + 1], lp[: cut + 1], rtol=1e-7, atol=1e-9, equal_nan=True)
    if not same.all():
        bad = int(np.flatnonzero(~same)[0])
        what = "data after" if exog is None else "returns after it or covariates from"
        raise LookAheadError(
            f"{type(m).__name__}: the log score for {history.index[bad]} changed when only {what} "
            f"{history.index[cut]} changed; its forecasts use future data, so no backtest of it is valid"
        )


def _run_block(job: tuple) -> _Block:
    # One BLAS thread everywhere (run_tasks(threads=1)): joblib's and Ray's workers run with one,
    # and a different thread count changes floating-point summation order, so serial and
    # parallel runs would differ in the last digits. Refits of these sizes gain nothing from them.
    return _score_block(*job)


class _WarmChain:
    """The blocks of a warm-start model in order, each refit a fine-tune of the previous block's
    fitted model (a clone of the caller's model first; the caller's own is never changed)."""

    def __init__(self) -> None:
        self.fitted: Forecaster | None = None

    def __call__(self, job: tuple) -> _Block:
        block, self.fitted = _fit_and_score(*job, start_from=self.fitted)
        return block


def _score_block(*job: Any) -> _Block:
    return _fit_and_score(*job)[0]


def _fit_and_score(model: Forecaster, r: pd.Series, exog: pd.DataFrame | None, positions: np.ndarray,
                   train: slice, horizon: int, levels: Sequence[float], n_paths: int, seed: int, check: bool,
                   one_step: OneStep, start_from: Forecaster | None = None) -> tuple[_Block, Forecaster]:
    t0 = time.perf_counter()
    m = (clone(model) if start_from is None else start_from)
    m.fit(r.iloc[train], **_kw(None if exog is None else exog.iloc[train]))
    fit_seconds = time.perf_counter() - t0
    return _score_fitted(m, r, exog, positions, horizon, levels, n_paths, seed, check, one_step,
                         fit_seconds), m


def _score_fitted(m: Forecaster, r: pd.Series, exog: pd.DataFrame | None, positions: np.ndarray,
                  horizon: int, levels: Sequence[float], n_paths: int, seed: int, check: bool,
                  one_step: OneStep, fit_seconds: float) -> _Block:
    values = r.to_numpy(dtype=float)
    first, last = int(positions[0]), int(positions[-1])
    n = len(positions)
    if horizon == 1:
        history = r.iloc[: last + 1]
        ex_hist = None if exog is None else exog.iloc[: last + 1]
        lp_all = m.log_prob(history, **_kw(ex_hist)).to_numpy(dtype=float)
        if check:
            _check_causality(m, history, ex_hist, lp_all, first + n // 2, seed)
        y = values[positions]
        log_score = lp_all[positions]
        if one_step == "auto" and "predictive" in m.tags:
            pred = m.predictive(history, **_kw(ex_hist)).take(positions)
            var = {a: pred.var(a) for a in levels}
            es = {a: pred.es(a) for a in levels}
            return _Block(positions, log_score, pred.crps(y), pred.cdf(y), pred.mean(), pred.std(), var, es,
                          fit_seconds, pred)
    else:
        y = np.array([values[p: p + horizon].sum() for p in positions])
        log_score = np.full(n, np.nan)
    draws = np.empty((n_paths, n))
    for j, p in enumerate(positions):
        sc = m.sample(r.iloc[:p], horizon=horizon, n_paths=n_paths, seed=int(
            np.random.SeedSequence([seed, int(p)]).generate_state(1)[0]),
            **_kw(None if exog is None else exog.iloc[:p]))
        draws[:, j] = sc.paths[:, :, 0].sum(axis=1)
    var, es = {}, {}
    for a in levels:
        var[a], es[a] = _tail_from_paths(draws, a)
    return _Block(positions, log_score, np.asarray(scoring.crps_ensemble(draws.T, y), dtype=float),
                  (draws <= y).mean(axis=0), draws.mean(axis=0), draws.std(axis=0, ddof=1), var, es,
                  fit_seconds, _PathDraws(draws))


@dataclass
class _Plan:
    """The refit blocks of one series' backtest and what assembling its result needs."""

    series: pd.Series
    jobs: list[tuple]
    first: int
    last: int
    settings: dict[str, Any]


def _plan(model: Forecaster, r: pd.Series | pd.DataFrame, exog: Exog, start: Any, end: Any, horizon: int,
          window: Literal["expanding"] | int, refit_every: int | None, levels: tuple[float, ...],
          n_paths: int, seed: int, check_causality: bool, one_step: OneStep) -> _Plan:
    if not isinstance(model, Forecaster):
        hint = (f"; create one with finar.models.create({model!r})" if isinstance(model, str)
                else " such as finar.models.GARCH()")
        raise DataError(f"model must be a finar forecaster, got {type(model).__name__} {model!r}{hint}")
    seed = check_seed(seed)
    if seed is None:
        raise DataError("seed must be an integer >= 0, got None (a backtest is always reproducible)")
    n_paths = check_int("n_paths", n_paths)
    frame = check_returns(r)
    if frame.shape[1] != 1:
        raise DataError(f"backtest takes one series; got {frame.shape[1]} columns "
                        f"({list(frame.columns)[:5]}); run one backtest per column, or backtest_panel")
    series = as_frame(frame).iloc[:, 0]
    ex = check_exog(exog, series.index, "backtest exog")
    if int(horizon) != horizon or horizon < 1:
        raise DataError(f"horizon must be a positive integer, got {horizon!r}")
    if ex is not None and horizon > 1 and "simulates_exog" not in model.tags:
        raise DataError("a backtest of h-step forecasts with exog would need the covariates of the days "
                        "after each forecast, which are not known when it is made; backtest horizon=1, "
                        "use a model that simulates its covariates (e.g. RealizedGARCH), or simulate "
                        "scenarios with model.sample(..., exog_future=...)")
    if refit_every is not None and (int(refit_every) != refit_every or refit_every < 1):
        raise DataError(f"refit_every must be a positive integer or None, got {refit_every!r}")
    if window != "expanding" and (not isinstance(window, int) or window < 1):
        raise DataError(f"window must be 'expanding' or a positive integer, got {window!r}")
    if any(not 0 < a < 0.5 for a in levels):
        raise DataError(f"levels must lie in (0, 0.5), got {levels}")
    if one_step not in ("auto", "paths"):
        raise DataError(f"one_step must be 'auto' or 'paths', got {one_step!r}")
    idx = series.index
    first = _position(idx, start, "start")
    last_target = len(series) - horizon
    last = last_target if end is None else min(last_target, _position(idx, end, "end", side="right") - 1)
    if first < 1 or first > last:
        raise DataError(f"no test days between start={start!r} and end={end!r} with data before them "
                        f"(series spans {idx[0]} .. {idx[-1]})")
    positions = np.arange(first, last + 1)
    size = len(positions) if refit_every is None else int(refit_every)
    blocks = [positions[i: i + size] for i in range(0, len(positions), size)]

    def train_slice(p0: int) -> slice:
        return slice(0 if window == "expanding" else max(0, p0 - int(window)), p0)

    jobs = [(model, series, ex, b, train_slice(int(b[0])), int(horizon), levels, int(n_paths), int(seed),
             bool(check_causality), one_step) for b in blocks]
    settings = {"start": str(idx[first]), "end": str(idx[last]), "horizon": int(horizon),
                "window": window, "refit_every": refit_every, "levels": list(levels),
                "n_paths": int(n_paths), "seed": int(seed), "model": repr(model), "one_step": one_step,
                "exog": [] if ex is None else list(ex.columns)}
    return _Plan(series, jobs, first, last, settings)


def _position(idx: pd.Index, value: Any, what: str, side: Literal["left", "right"] = "left") -> int:
    """Where ``value`` (a date for a DatetimeIndex) falls in ``idx``, or a DataError naming it."""
    key = value
    if isinstance(idx, pd.DatetimeIndex):
        key = check_date(value, what)
    try:
        return int(idx.searchsorted(key, side=side))
    except (TypeError, ValueError) as exc:  # a zone-aware date against naive days, text against numbers
        raise DataError(f"{what}={value!r} cannot be compared with the returns' index "
                        f"({idx.dtype}): {exc}") from exc


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
                          [b.source for b in results])


def _block_name(plan: _Plan, job: tuple) -> str:
    return str(plan.series.index[int(job[3][0])])


def backtest(model: Forecaster, r: pd.Series | pd.DataFrame, start: Any, end: Any = None, *,
             exog: Exog = None, horizon: int = 1, window: Literal["expanding"] | int = "expanding",
             refit_every: int | None = 20, levels: Sequence[float] = (0.01, 0.025, 0.05),
             n_paths: int = 1000, seed: int = 0, n_jobs: int = 1, executor: ExecutorLike | None = None,
             progress: bool = True, check_causality: bool = True, name: str | None = None,
             one_step: OneStep = "auto") -> BacktestResult:
    """Rolling-origin backtest of ``model`` on returns ``r`` over ``[start, end]``.

    Parameters
    ----------
    model : Forecaster
        Any forecaster of the contract; it is cloned, never modified.
    r : Series
        Returns (one series), e.g. ``finar.returns(px)``; :func:`backtest_panel` takes many.
    start, end : date-like
        First and last test day (inclusive); ``end`` defaults to the last day that has a target.
    exog : DataFrame or Series, optional
        Covariates with exactly the rows of ``r`` (row ``t`` known at the close of day ``t``).
        Each refit sees the rows before its block, each forecast the rows before its day (the
        model's rule: row ``t - 1`` conditions day ``t``); the look-ahead check covers them.
        One-step forecasts only (``horizon=1``).
    horizon : int, default 1
        1 for one-step densities; ``h > 1`` scores forecasts of the ``h``-day cumulative return
        starting on each test day, made with data before it (from sample paths).
    window : 'expanding' or int
        Fit on all data before the block, or on the last ``window`` observations before it.
        Forecasts always condition on the whole history before each day.
    refit_every : int or None, default 20
        Refit every this many test days; ``None`` fits once on the data before ``start``. A
        model with ``warm_start`` (a network with ``train__warm_epochs > 0``) refits each block
        from the previous block's fit (a fine-tune), so its blocks run in order in this process
        (``n_jobs=1``, no executor); the first block is a full fit.
    levels : sequence of float
        VaR/ES levels (left tail).
    n_paths : int
        Sample paths per day where scores come from paths (``horizon > 1``, or models without
        an exact predictive distribution).
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
        Recompute each block's scores with perturbed future data (returns and covariates) and
        raise :class:`finar.errors.LookAheadError` if any earlier score changes.
    one_step : {'auto', 'paths'}, default 'auto'
        Where one-step PIT, CRPS, VaR, ES, mean and std come from: ``'auto'``, the model's exact
        predictive distribution when it has the ``"predictive"`` tag, else ``n_paths`` sample
        paths a day (the fallback for models without one); ``'paths'``, always from paths (slow;
        for comparisons). The log score is exact either way.

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
    plan = _plan(model, r, exog, start, end, horizon, window, refit_every, levels, n_paths, seed,
                 check_causality, one_step)
    warm = bool(getattr(model, "warm_start", False)) and len(plan.jobs) > 1
    if warm and (n_jobs != 1 or executor not in (None, "serial")):
        raise DataError("a warm-start model (train__warm_epochs > 0) refits each block from the previous "
                        "block's fit, so its blocks run in order in this process; leave n_jobs=1 and "
                        "executor=None, or set train__warm_epochs=0 to refit blocks independently")
    runner = "serial" if warm else _executor(executor, n_jobs)
    label = name or repr(model)
    t0 = time.perf_counter()
    try:
        results = run_tasks(_WarmChain() if warm else _run_block, plan.jobs, executor=runner,
                            names=[_block_name(plan, j) for j in plan.jobs], progress=progress,
                            description=f"backtest {label}", retries=0 if warm else 1)
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


def _asset_exog(exog: pd.DataFrame | pd.Series | Mapping[str, Any] | None, asset: str, column: Any,
                r: pd.DataFrame) -> pd.DataFrame | pd.Series | None:
    """The covariates of one asset on its own (non-NaN) days: a shared frame, or its mapping entry."""
    if exog is None:
        return None
    if isinstance(exog, Mapping):
        if asset not in exog:
            raise DataError(f"exog has no entry for asset {asset!r}; pass covariates for every column")
        x = exog[asset]
    else:
        x = exog
    rows = r[column].dropna().index
    if isinstance(x, pd.Series | pd.DataFrame) and x.index.equals(r.index):
        return x.loc[rows]
    return x  # checked against the asset's days by backtest's own exog check


def backtest_panel(model: Forecaster | Mapping[str, Forecaster], r: pd.DataFrame, start: Any, end: Any = None,
                   *, exog: pd.DataFrame | Mapping[str, pd.DataFrame | pd.Series] | None = None,
                   horizon: int = 1, window: Literal["expanding"] | int = "expanding",
                   refit_every: int | None = 20, levels: Sequence[float] = (0.01, 0.025, 0.05),
                   n_paths: int = 1000, seed: int = 0, executor: ExecutorLike = "serial", retries: int = 1,
                   progress: bool = True, check_causality: bool = True,
                   one_step: OneStep = "auto") -> dict[str, BacktestResult]:
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
    exog : DataFrame or mapping, optional
        Covariates: one frame with the rows of ``r`` shared by every asset (e.g. a market
        index's range), or ``{asset: frame}`` (e.g. each stock's own range), each with the rows
        of ``r`` or of that asset's non-NaN days; sliced to each asset's days.
    executor, retries
        As in :func:`finar.executors.run_tasks`.
    start, end, horizon, window, refit_every, levels, n_paths, check_causality, one_step
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
    if check_seed(seed) is None:
        raise DataError("seed must be an integer >= 0, got None (a backtest is always reproducible)")
    plans = {a: _plan(models[a], r[c].dropna(), _asset_exog(exog, a, c, r), start, end, horizon, window,
                      refit_every, levels, n_paths, task_seed(seed, a), check_causality, one_step)
             for a, c in zip(assets, r.columns, strict=True)}
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
