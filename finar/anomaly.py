"""Likelihood-based anomaly flags on returns: :class:`AnomalyDetector` and :func:`inject_anomalies`.

A forecaster of the contract gives every day's one-step predictive distribution
``F_t = P(R_t <= . | r_<t)``. Under the model the PIT values ``u_t = F_t(r_t)`` are i.i.d.
uniform, so each day has a two-sided tail probability ``p_t = 2 min(u_t, 1 - u_t)`` that is
uniform too. The detector combines three tests of that null, all causal (day ``t`` uses data up
to ``t`` only):

- **tail**: ``p_t`` itself, a jump or a bad print;
- **run**: Fisher's combination of the tail probabilities of the last ``window`` days,
  ``P(chi2_{2k} >= -2 sum log p_s)``: a volatility burst, several large days in a row;
- **flat**: the same combination of ``q_s = P(|R_s| <= |r_s|)`` (uniform too) over the last
  ``flat_window >= 2`` days, the probability of a move *at most as small*: a run of too-quiet
  days, e.g. a frozen price (exact zero returns), which a tail test can never see. ``|r_s|`` is
  floored at the data's ``resolution``. (One day alone is not tested: one unchanged price is
  no news.)

Their Bonferroni minimum ``p = min(1, k min(p_tail, p_run, p_flat))`` (``k`` = 3 distinct tests, 2
when ``window = 1``) is the day's model p-value; the anomaly statistic is ``stat = -log p``. A
window test counts on day ``t`` only when day ``t`` itself leans its way (``gate``, ``flat_gate``),
so flags do not trail a run. A tail day (``p_t <= level``) is *repaired* before it conditions later
days: the model sees it winsorised at its predictive ``level/2`` (or ``1 - level/2``) quantile (the
training median for models without a quantile function), and later windows count it as that
quantile, so one bad print neither inflates tomorrow's volatility forecast nor flags the clean days
after it. A day the flat test flags (``p_flat <= level``) is repaired too: the model sees a typical
move (its predictive quartile on the side the day leaned; the training median ``|r|`` without a
quantile function), so a frozen price does not shrink the volatility forecast, and later flat
windows count it as ``q = level``, so the rest of the frozen run is flagged but an ordinary day
after it is not. Thresholds are calibrated to the false-alarm level ``level`` by rolling-origin
split conformal prediction (default: held-out training blocks, each scored by a model fitted on the
days before it), in sample on the training data, or from the model's own p-values.

Covariates (``exog``, row ``t`` known at the close of day ``t``) reach every fit, CDF and quantile
call, sliced with the returns. A model's capabilities are read from its ``tags``: one tagged
``"predictive"`` is scored from its exact predictive distributions, any other from one-step sample
paths.

**Joint models.** On a panel, ``F_t`` is each asset's law as the model's ``predictive`` gives it:
given the past only for per-asset models and for :class:`~finar.models.Copula` and
:class:`~finar.models.DCC` (their marginals), given the past and the assets to its left on the same
day for PixelCNN (its chain rule). With ``given='others'`` a joint model that has
``conditional_predictive`` (Copula, DCC, MarginalCopula) scores each asset-day by its exact law
given the past *and all the day's other assets*, so an asset that breaks from the cross-section (one stock
reversing on a market day) is improbable even at an ordinary size; ``given='left'`` conditions on
the assets to its left instead, PixelCNN's order.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from finar._estimator import Estimator, plain, rebuild, register, write_model_file
from finar._progress import progress_bar
from finar.errors import DataError, FinarError, SeriesTooShortError
from finar.models.base import Forecaster, UnivariateForecaster, check_exog, check_returns, clone
from finar.models.predictive import Predictive

__all__ = ["KINDS", "AnomalyDetector", "inject_anomalies"]

KINDS = ("jump", "burst", "bad_print", "stale")
_SPAN = {"jump": 1, "burst": 5, "bad_print": 2, "stale": 5, "decouple": 1, "flip": 1}
_TINY = 1e-300


def _kw(ex: pd.DataFrame | None) -> dict[str, Any]:
    """``exog=`` only when there are covariates, so models written without the keyword still run."""
    return {} if ex is None else {"exog": ex}


def _rows(ex: pd.DataFrame | None, lo: int, hi: int) -> pd.DataFrame | None:
    return None if ex is None else ex.iloc[lo:hi]


def _predictives(model: Forecaster, x: pd.DataFrame, ex: pd.DataFrame | None,
                 given: str | None = None) -> list[Predictive]:
    """Each column's one-step predictive distributions over the days of ``x``: the model's own, or
    (``given``) a joint model's law of each column given the same day's other columns too."""
    if given is not None:
        pred = model.conditional_predictive(x, given=given, **_kw(ex))
        return [pred[str(c)] for c in x.columns]
    pred = model.predictive(x, **_kw(ex))
    if isinstance(pred, Predictive):
        return [pred]
    return [pred[str(c)] for c in x.columns]


def _pit(model: Forecaster, x: pd.DataFrame, ex: pd.DataFrame | None, t0: int, n_paths: int, seed: int,
         resolution: np.ndarray, given: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PIT values ``u`` and small-move probabilities ``q`` ``(T, N)`` of ``x`` under ``model`` (rows
    ``t0..`` at least), from its predictive distributions (tag ``"predictive"``), else one-step
    sample paths.

    ``q_t = P(|R_t| <= max(|r_t|, resolution))``: how probable a move at most this small was; the
    floor ``resolution`` (per column) is the data's precision, so an exact zero return is not
    infinitely improbable. With ``given`` (a joint model's ``conditional_predictive``) each cell's law
    also conditions on the same day's other columns, held at their values in ``x``."""
    values = x.to_numpy(dtype=float)
    a = np.maximum(np.abs(values), resolution)
    if "predictive" in model.tags:
        preds = _predictives(model, x, ex, given)
        t0 = min(max(int(t0), 0), len(x))  # the earlier rows only condition: NaN, as from paths
        if t0:
            preds, values, a = [p.take(slice(t0, None)) for p in preds], values[t0:], a[t0:]
        u = np.column_stack([p.cdf(values[:, j]) for j, p in enumerate(preds)])
        hi = np.column_stack([p.cdf(a[:, j]) for j, p in enumerate(preds)])
        lo = np.column_stack([p.cdf(-a[:, j]) for j, p in enumerate(preds)])
        head = np.full((t0, x.shape[1]), np.nan)
        return np.vstack([head, u]), np.vstack([head, np.clip(hi - lo, 0.0, 1.0)])
    # No predictive distribution: u_t = (#{draws < r_t} + V #{draws == r_t}) / n from n one-step draws.
    rng = np.random.default_rng(seed)
    u, q = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for t in progress_bar(range(max(t0, model.min_context, 1), len(x)), description="PIT from paths"):
        paths = model.sample(x.iloc[:t], horizon=1, n_paths=n_paths, seed=int(rng.integers(2**31)),
                             **_kw(_rows(ex, 0, t))).paths[:, 0, :]
        y = values[t]
        u[t] = ((paths < y).sum(0) + rng.uniform(size=len(y)) * (paths == y).sum(0)) / n_paths
        q[t] = (np.abs(paths) <= a[t]).mean(0)
    return u, q


def _quantile(model: Forecaster, x: pd.DataFrame, ex: pd.DataFrame | None, t: int,
              q: np.ndarray, given: str | None = None) -> np.ndarray | None:
    """Day ``t``'s predictive ``q``-quantiles per column (``q`` per column), or None for a model
    without a predictive distribution."""
    if "predictive" not in model.tags:
        return None
    lo = 0 if model.memory is None else max(0, t - model.memory)
    preds = _predictives(model, x.iloc[lo: t + 1], _rows(ex, lo, t + 1), given)
    return np.array([p.take([-1]).ppf(float(q[j]))[0] for j, p in enumerate(preds)])


def _run_stats(model: Forecaster, x: pd.DataFrame, ex: pd.DataFrame | None, t0: int, window: int,
               flat_window: int, gate: float,
               flat_gate: float, level: float, impute: np.ndarray, typical: np.ndarray,
               resolution: np.ndarray, n_paths: int, seed: int,
               given: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PIT ``u`` and statistic ``-log p`` for days ``t0..`` of ``x`` (earlier rows: context only).

    ``impute`` and ``typical`` (per column) stand in for the predictive quantiles of a repair
    when the model has no predictive distribution: the training median and median absolute return.
    ``given``: see :func:`_pit`; a repair then conditions the later days (the same day's other
    columns keep the scores they got given the value as it was)."""
    values = x.to_numpy(dtype=float).copy()
    still = np.abs(values) <= resolution  # no change the data can show: always a flat candidate
    u, small = _pit(model, x, ex, t0, n_paths, seed, resolution, given)
    T, N = values.shape
    lp, lq = np.zeros((T, N)), np.zeros((T, N))  # -log p_s and -log q_s
    stat = np.full((T, N), np.nan)
    for t in range(t0, T):
        p, q = 2 * np.minimum(u[t], 1 - u[t]), small[t]
        ok = np.isfinite(p) & np.isfinite(q)
        lp[t] = np.where(ok, -np.log(np.clip(p, _TINY, 1)), 1.0)  # 1 = E[-log U]: neutral
        lq[t] = np.where(ok, -np.log(np.clip(q, _TINY, 1)), 1.0)
        lo, lo_f = max(t0, t - window + 1), max(t0, t - flat_window + 1)
        # a run counts only while day t itself leans the same way (no flags trailing a run)
        p_run = np.where(p < gate, stats.chi2.sf(2 * lp[lo:t + 1].sum(0), 2 * (t + 1 - lo)), 1.0)
        p_flat = np.where((q < flat_gate) | still[t],
                          stats.chi2.sf(2 * lq[lo_f:t + 1].sum(0), 2 * (t + 1 - lo_f)), 1.0)
        # Bonferroni over the distinct tests (with window 1 the run test is the tail test)
        p_all = np.minimum(1.0, (2 if window == 1 else 3) * np.minimum(np.minimum(p, p_run), p_flat))
        stat[t] = np.where(ok, -np.log(np.clip(p_all, _TINY, 1)), np.nan)
        tail = ok & (p <= level)
        flat = ok & ~tail & (p_flat <= level)
        if (tail.any() or flat.any()) and t + 1 < T:
            # repair: a tail value conditions later days winsorised at its tail quantile, and counts
            # in later windows as that quantile, so one bad print neither inflates tomorrow's
            # volatility nor flags the clean days after it; a flagged flat value conditions them as
            # a typical move (its predictive quartile), so a frozen price does not shrink the
            # volatility, and counts in later flat windows as q = level: small enough that the
            # rest of a frozen run is flagged too, not so small that it flags an ordinary day after
            up = u[t] >= 0.5
            q_rep = np.where(tail, np.where(up, 1 - level / 2, level / 2), np.where(up, 0.75, 0.25))
            frame = pd.DataFrame(values, index=x.index, columns=x.columns)
            rep = _quantile(model, frame, ex, t, q_rep, given)
            if rep is None:
                rep = np.where(tail, impute, np.where(up, typical, -typical))
            fix = tail | flat
            values[t, fix] = rep[fix]
            lp[t, tail], lq[t, tail] = -np.log(level), 0.0  # a tail move is not a small one
            lq[t, flat] = np.minimum(lq[t, flat], -np.log(level))
            # recompute the days the repair can change: all later ones, or those within the memory
            mem = model.memory
            lo, hi = (0, T) if mem is None else (max(0, t + 1 - mem), min(T, t + 1 + mem))
            if hi > t + 1:
                part = pd.DataFrame(values[lo:hi], index=x.index[lo:hi], columns=x.columns)
                u_new, q_new = _pit(model, part, _rows(ex, lo, hi), t + 1 - lo, n_paths, seed, resolution,
                                    given)
                u[t + 1:hi], small[t + 1:hi] = u_new[t + 1 - lo:], q_new[t + 1 - lo:]
    return u[t0:], stat[t0:]


def _asset_stats(item: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray], model: Forecaster,
                 ex: pd.DataFrame | None, t0: int, window: int, flat_window: int, gate: float,
                 flat_gate: float, level: float, n_paths: int, seed: int,
                 given: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One task of the per-asset fan-out, ``item = (one column, its impute, typical and resolution
    values)``; module level so that workers can import it."""
    x, impute, typical, resolution = item
    return _run_stats(model, x, ex, t0, window, flat_window, gate, flat_gate, level, impute, typical,
                      resolution, n_paths, seed, given)


def _stats(det: AnomalyDetector, x: pd.DataFrame, ex: pd.DataFrame | None, t0: int,
           model: Forecaster | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``_run_stats`` over a panel: one task per asset where assets are modelled independently (a
    per-series model gives the same numbers either way, and a repair then recomputes one asset,
    not all), else one joint run."""
    model = det.model_ if model is None else model
    args = dict(model=model, ex=ex, t0=t0, window=int(det.window), flat_window=int(det.flat_window),
                gate=float(det.gate), flat_gate=float(det.flat_gate), level=float(det.level),
                n_paths=int(det.n_paths), seed=int(det.seed), given=det.given)
    if x.shape[1] == 1 or not isinstance(model, UnivariateForecaster):
        return _run_stats(x=x, impute=det.impute_, typical=det.typical_, resolution=det.resolution_, **args)
    from finar.executors import run_tasks

    cols = [str(c) for c in x.columns]
    items = [(x[[c]], det.impute_[j:j + 1], det.typical_[j:j + 1], det.resolution_[j:j + 1])
             for j, c in enumerate(x.columns)]
    out = run_tasks(_asset_stats, items, executor=det.executor, names=cols, common=args, progress=False,
                    description="anomaly scores")
    return np.hstack([u for u, _ in out]), np.hstack([st for _, st in out])


def _real(name: str, value: Any) -> float:
    """``value`` as a finite float, or a DataError naming the setting (text, None, NaN, bools)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise DataError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@register("anomalydetector")
class AnomalyDetector(Estimator):
    """Flag improbable returns with any forecaster's exact one-step predictive distribution.

    An estimator of finar's kernel: ``get_params`` (with the model's settings as
    ``model__...``), ``set_params``, :func:`~finar._estimator.clone`, ``repr``, and ``save`` /
    :func:`finar.models.load` of the fitted detector with its fitted model (a registered one).

    Parameters
    ----------
    model : Forecaster
        Any model of the contract (``finar.models.*``); it is cloned and fitted in :meth:`fit`
        (or used as is with ``refit=False``). A model tagged ``"predictive"`` gives exact PIT values
        and quantiles; any other is scored from ``n_paths`` one-step sample paths per day (slow).
    level : float, default 0.01
        False-alarm rate the threshold is calibrated to: on data like the calibration data, a
        fraction ``level`` of ordinary days is flagged.
    window : int, default 1
        Days combined by the run test (1: the tail test alone). Longer windows add power against
        volatility bursts at the price of more false alarms where the model's volatility lags the
        market (PROTOCOLS P4 reports both).
    flat_window : int, default 2
        Days combined by the flat test (at least 2).
    gate : float, default 0.5
        The run test counts on day ``t`` only if day ``t`` itself leans its way (``p_t < gate``),
        so flags do not trail a run.
    flat_gate : float, default 0.01
        The flat test counts on day ``t`` only if day ``t`` itself is among the ``flat_gate``
        smallest moves (``q_t < flat_gate``) or shows no change at the data's ``resolution``
        (``|r_t| <= resolution``: an exact zero always counts, however coarse the ticks). Chosen on
        training data only: anomalies injected into 2007-2010 for detectors fitted on
        1999-2006 (S&P 500), where mean AUROC rose from 0.906 at 0.5 to 0.936 at 0.01 (bursts
        0.64 to 0.76: fewer ordinary days share the flat test's tail), frozen prices unchanged.
    calibration : {'conformal', 'train', 'model'}
        ``'conformal'`` (default): rolling-origin split conformal prediction. The last
        ``calibration_fraction`` of the training days is cut into ``calibration_folds``
        consecutive blocks; each block is scored by a clone of the model fitted only on the days
        before it, exactly as new data will be scored, and the threshold is the conformal
        ``1 - level`` quantile of all those out-of-sample statistics. The model that scores new
        data (``model_``) is then fitted on all the training days. Several blocks give more
        calibration days and more than one market regime, so the level holds better than with
        one held-out block (at ``level=0.01`` a block of 900 days has only ~9 exceedances).
        ``'train'``: fit on all training data and calibrate on it in sample. ``'model'``: trust
        the model's p-values (no calibration).
    calibration_fraction : float, default 0.5
        Share of the training days (the most recent) that the conformal blocks cover.
    calibration_folds : int, default 2
        Number of conformal blocks, i.e. extra model fits (``1`` is classic split conformal
        with one held-out block, but still with ``model_`` refitted on all the data).
    resolution : float, optional
        Precision of the returns for the flat test: a move is "at most this small" with
        probability ``P(|R_t| <= max(|r_t|, resolution))``, so an exact zero is improbable but
        not impossible. Default: per asset, half the smallest non-zero ``|r|`` of the training
        data (about half a tick for prices quoted in ticks).
    refit : bool, default True
        Fit clones of ``model`` in :meth:`fit`; ``False`` uses the fitted ``model`` as given
        (also for the conformal blocks, which may then be in its training sample).
    n_paths, seed : int
        One-step sample paths per day for models without the ``"predictive"`` tag, and their seed.
    given : {None, 'others', 'left'}, default None
        What same-day information each asset's law conditions on, besides the past. None: the
        model's ``predictive`` (the marginal law for Copula and DCC; for PixelCNN, the assets to
        the left). ``'others'``: every other asset of the same day; ``'left'``: the assets to its
        left (put the index first). Needs a joint model with ``conditional_predictive``
        (:meth:`finar.models.DCC.conditional_predictive`, exact for the Gaussian and t copulas).
        A repaired tail value conditions the later days; the same day's other assets keep the
        scores they got given the value as it was.
    executor : {'serial', 'joblib', 'ray'} or executor object
        Where a panel's assets are scored when the model treats them independently (AR, GARCH):
        one task per asset (:func:`finar.executors.run_tasks`), results identical to serial.

    Attributes
    ----------
    model_ : Forecaster
        The fitted model that scores new data.
    calibration_ : ndarray
        Sorted calibration statistics (asset-days); a day is flagged when ``stat >= threshold_``.
    exog_columns_ : list of str
        The covariates the detector was fitted with (``fit(r_train, exog=x)``); ``score`` needs them.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"])
    >>> det = finar.AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01).fit(r[:"2010"])
    >>> flags = det.score(r["2011":])
    >>> list(flags.columns)
    ['score', 'pit', 'stat', 'p_value', 'flag']
    >>> det.events(flags).columns[:4].tolist()
    ['start', 'end', 'peak', 'n_days']
    """

    def __init__(self, model: Forecaster, level: float = 0.01, *, window: int = 1, flat_window: int = 2,
                 gate: float = 0.5, flat_gate: float = 0.01,
                 calibration: Literal["conformal", "train", "model"] = "conformal",
                 calibration_fraction: float = 0.5, calibration_folds: int = 2,
                 resolution: float | None = None, refit: bool = True, n_paths: int = 1000,
                 seed: int = 0, executor: Any = "serial",
                 given: Literal["others", "left"] | None = None) -> None:
        self.model = model
        self.level = level
        self.window = window
        self.flat_window = flat_window
        self.gate = gate
        self.flat_gate = flat_gate
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.calibration_folds = calibration_folds
        self.resolution = resolution
        self.refit = refit
        self.n_paths = n_paths
        self.seed = seed
        self.executor = executor
        self.given = given

    # ---- fitting ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.model, Forecaster):
            raise DataError(f"model must be a finar forecaster, got {type(self.model).__name__}")
        names = ("level", "window", "flat_window", "gate", "flat_gate", "calibration_fraction",
                 "calibration_folds")
        level, window, flat_window, gate, flat_gate, fraction, folds = (_real(n, getattr(self, n))
                                                                        for n in names)
        if not 0 < level < 0.5:
            raise DataError(f"level must lie in (0, 0.5), got {self.level!r}")
        if int(window) != window or window < 1:
            raise DataError(f"window must be a positive integer, got {self.window!r}")
        if int(flat_window) != flat_window or flat_window < 2:
            raise DataError(f"flat_window must be an integer >= 2, got {self.flat_window!r}")
        if self.calibration not in ("conformal", "train", "model"):
            raise DataError(f"calibration must be 'conformal', 'train' or 'model', got {self.calibration!r}")
        for name, value in (("gate", gate), ("flat_gate", flat_gate)):
            if not 0 < value <= 1:
                raise DataError(f"{name} must lie in (0, 1], got {getattr(self, name)!r}")
        if not 0 < fraction < 1:
            raise DataError(f"calibration_fraction must lie in (0, 1), got {self.calibration_fraction!r}")
        if self.resolution is not None and not _real("resolution", self.resolution) >= 0:
            raise DataError(f"resolution must be a number >= 0 or None, got {self.resolution!r}")
        if int(folds) != folds or folds < 1:
            raise DataError(f"calibration_folds must be a positive integer, got {self.calibration_folds!r}")
        if self.given not in (None, "others", "left"):
            raise DataError(f"given must be None, 'others' or 'left', got {self.given!r}")
        if self.given is not None and not (callable(getattr(self.model, "conditional_predictive", None))
                                           and "predictive" in self.model.tags):
            raise DataError(f"given={self.given!r} needs a joint model with conditional_predictive (e.g. "
                            f"finar.models.DCC or Copula); {type(self.model).__name__} has none, so "
                            "drop given")

    def fit(self, r_train: pd.Series | pd.DataFrame, *, exog: pd.DataFrame | pd.Series | None = None
            ) -> AnomalyDetector:
        """Fit the model on ``r_train`` (and covariates ``exog``, with its rows) and calibrate the
        threshold; returns ``self``."""
        self._check_params()
        frame = check_returns(r_train, what="r_train", fitting=True)
        ex = check_exog(exog, frame.index, "fit exog")
        if ex is not None and "exog" not in self.model.tags:
            raise DataError(f"{type(self.model).__name__} takes no covariates (its tags "
                            f"{sorted(self.model.tags)} lack 'exog'); drop exog or use a model with it")
        self.columns_ = [str(c) for c in frame.columns]
        self.exog_columns_ = [] if ex is None else list(ex.columns)
        values = frame.to_numpy(dtype=float)
        self.impute_ = np.nanmedian(values, axis=0)
        self.typical_ = np.nanmedian(np.abs(values), axis=0)
        if self.resolution is None:  # half the smallest non-zero move seen: the data's precision
            smallest = np.min(np.where(np.abs(values) > 0, np.abs(values), np.inf), axis=0, initial=np.inf)
            self.resolution_ = np.where(np.isfinite(smallest), smallest / 2, 0.0)
        else:
            self.resolution_ = np.full(values.shape[1], float(self.resolution))
        self.calibration_ = np.array([])
        self.calibration_day_ = np.array([])
        if self.calibration == "conformal":
            # rolling origin: each block is scored by a model fitted on the days before it only
            n, k = len(frame), int(self.calibration_folds)
            first = n - round(n * float(self.calibration_fraction))
            cuts = [first + round((n - first) * i / k) for i in range(k + 1)]
            if len(set(cuts)) < len(cuts):
                raise SeriesTooShortError(f"{n} training days cannot make {k} calibration blocks; pass "
                                          "more data or fewer calibration_folds")
            blocks = []
            for a, b in itertools.pairwise(cuts):
                model = self._fitted(r_train.iloc[:a], _rows(ex, 0, a))
                _, st = _stats(self, frame.iloc[:b], _rows(ex, 0, b), max(a, model.min_context), model)
                blocks.append(st)
            self._set_calibration(np.vstack(blocks))
            self.model_ = self._fitted(r_train, ex)
        else:
            self.model_ = self._fitted(r_train, ex)
            if self.calibration == "train":
                self._set_calibration(_stats(self, frame, ex, self.model_.min_context)[1])
        self.threshold_ = self._threshold(self.calibration_)
        return self

    def _fitted(self, r: pd.Series | pd.DataFrame, ex: pd.DataFrame | None) -> Forecaster:
        """A clone of ``model`` fitted on ``r`` (``model`` itself with ``refit=False``)."""
        if self.refit:
            return clone(self.model).fit(r, **_kw(ex))
        if not self.model.is_fitted:
            raise DataError("refit=False needs a fitted model; fit it first or pass refit=True")
        return self.model

    def _set_calibration(self, st: np.ndarray) -> None:
        """Keep the calibration statistics (asset-days, and each day's most anomalous asset)."""
        cal = st[np.isfinite(st)]
        day = np.nanmax(np.where(np.isfinite(st), st, -np.inf), axis=1) if st.size else st
        day = day[np.isfinite(day)]
        need = int(np.ceil(1 / float(self.level))) - 1
        if len(day) < need:
            raise SeriesTooShortError(
                f"calibration needs at least {need} days to reach level {self.level} (1/level - 1); "
                f"got {len(day)}. Pass more training data, a larger calibration_fraction, a higher "
                "level, or calibration='model'")
        self.calibration_, self.calibration_day_ = np.sort(cal), np.sort(day)

    def _threshold(self, cal: np.ndarray) -> float:
        """Smallest statistic whose conformal p-value is at most ``level``."""
        if not len(cal):
            return float(-np.log(self.level))
        k = int(np.floor(float(self.level) * (len(cal) + 1)))  # p = (1 + #{cal >= s}) / (n + 1) <= level
        return float(cal[len(cal) - k]) if k >= 1 else float("inf")

    def _p_values(self, stat: np.ndarray, cal: np.ndarray) -> np.ndarray:
        if not len(cal):
            return np.exp(-stat)
        above = len(cal) - np.searchsorted(cal, stat, side="left")  # #{cal >= s}
        return np.where(np.isfinite(stat), (1 + above) / (len(cal) + 1), np.nan)

    # ---- scoring ---------------------------------------------------------------------------
    def score(self, r: pd.Series | pd.DataFrame, context: pd.Series | pd.DataFrame | None = None,
              *, exog: pd.DataFrame | pd.Series | None = None,
              context_exog: pd.DataFrame | pd.Series | None = None,
              per: Literal["asset", "day"] = "asset") -> pd.DataFrame:
        """Score every day of ``r`` (after ``context``, which only conditions).

        Parameters
        ----------
        r : Series or DataFrame
            Returns to score, with the columns the detector was fitted on. Without ``context``,
            its first ``model.min_context`` rows only condition and get NaN.
        context : Series or DataFrame, optional
            Earlier returns (e.g. the training data) that condition the first days of ``r``.
        exog, context_exog : DataFrame or Series, optional
            The covariates of the days of ``r`` and of ``context`` (exactly their rows), when the
            detector was fitted with covariates.
        per : {'asset', 'day'}
            For a panel: one row per asset-day (MultiIndex ``time, asset``), or one row per day
            scored by its most anomalous asset (calibrated as its own statistic).

        Returns
        -------
        DataFrame
            ``score`` (``-log p(r_t | r_<t)`` in nats, the model's surprisal), ``pit``,
            ``stat`` (``-log`` of the combined model p-value; rank by it), ``p_value`` (calibrated)
            and ``flag`` (``p_value <= level``), plus ``asset`` for ``per='day'``.
        """
        self._check_fitted("score")
        frame = check_returns(r)
        if len(frame) == 0:
            raise SeriesTooShortError("r is empty: there is no day to score; pass the returns of the "
                                      "days to check (and earlier ones as context)")
        same = [str(c) for c in frame.columns] == self.columns_
        if not same and not frame.shape[1] == len(self.columns_) == 1:
            raise DataError(f"r has columns {list(map(str, frame.columns))}; the detector was fitted on "
                            f"{self.columns_}")
        ex = self._score_exog(exog, frame.index, "score exog")
        t0 = 0
        if context is not None:
            ctx = check_returns(context, what="context").set_axis(frame.columns, axis=1)
            if ctx.index[-1] >= frame.index[0]:
                raise DataError(f"context must end before r starts; it ends {ctx.index[-1]}, r starts "
                                f"{frame.index[0]}")
            t0, frame_all = len(ctx), pd.concat([ctx, frame])
            ex_ctx = self._score_exog(context_exog, ctx.index, "context_exog")
            ex = None if ex is None else pd.concat([ex_ctx, ex])
        else:
            frame_all = frame
        t0 = max(t0, self.model_.min_context)
        u = np.full(frame_all.shape, np.nan)
        st = np.full(frame_all.shape, np.nan)
        if t0 < len(frame_all):
            u[t0:], st[t0:] = _stats(self, frame_all, ex, t0)
        lp = np.asarray(self.model_.log_prob(frame_all, **_kw(ex)), dtype=float).reshape(frame_all.shape)
        n_ctx = len(frame_all) - len(frame)
        u, st, lp = u[n_ctx:], st[n_ctx:], lp[n_ctx:]
        cols = list(map(str, frame.columns))
        if per == "day":
            any_ = np.isfinite(st).any(1)
            worst = np.where(any_, np.argmax(np.where(np.isfinite(st), st, -np.inf), 1), 0)
            rows = np.arange(len(frame))
            day_stat = np.where(any_, st[rows, worst], np.nan)
            p = self._p_values(day_stat, self.calibration_day_)
            return pd.DataFrame({"asset": np.array(cols, dtype=object)[worst], "score": -lp[rows, worst],
                                 "pit": u[rows, worst], "stat": day_stat, "p_value": p,
                                 "flag": p <= float(self.level)}, index=frame.index)
        if per != "asset":
            raise DataError(f"per must be 'asset' or 'day', got {per!r}")
        p = self._p_values(st, self.calibration_)
        out = pd.DataFrame({"score": -lp.ravel(), "pit": u.ravel(), "stat": st.ravel(), "p_value": p.ravel(),
                            "flag": (p <= float(self.level)).ravel()},
                           index=pd.MultiIndex.from_product([frame.index, cols], names=["time", "asset"]))
        if isinstance(r, pd.Series):
            return out.droplevel("asset")
        return out

    def events(self, flags: pd.DataFrame, max_gap: int = 1) -> pd.DataFrame:
        """Group flagged days into events: runs of flags at most ``max_gap`` rows apart.

        Returns one row per event (and asset): ``start``, ``end``, ``peak`` (the day with the
        largest ``stat``), ``n_days`` (flagged days), ``peak_stat``, ``min_p_value``.
        """
        if "flag" not in flags:
            raise DataError("events() takes the frame score() returns (it has no 'flag' column)")
        if isinstance(flags.index, pd.MultiIndex):
            parts = [self.events(g.droplevel("asset"), max_gap).assign(asset=a)
                     for a, g in flags.groupby(level="asset", sort=False)]
            cols = ["asset", "start", "end", "peak", "n_days", "peak_stat", "min_p_value"]
            return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
        pos = np.flatnonzero(flags["flag"].to_numpy(dtype=bool))
        rows: list[dict[str, Any]] = []
        if len(pos):
            groups = np.split(pos, np.flatnonzero(np.diff(pos) > max_gap) + 1)
            for g in groups:
                part = flags.iloc[g]
                rows.append({"start": part.index[0], "end": part.index[-1], "peak": part["stat"].idxmax(),
                             "n_days": len(g), "peak_stat": part["stat"].max(),
                             "min_p_value": part["p_value"].min()})
        return pd.DataFrame(rows, columns=["start", "end", "peak", "n_days", "peak_stat", "min_p_value"])

    def _score_exog(self, exog: pd.DataFrame | pd.Series | None, index: pd.Index,
                    what: str) -> pd.DataFrame | None:
        if self.exog_columns_ and exog is None:
            raise DataError(f"{what}: the detector was fitted with covariates {self.exog_columns_}; pass "
                            "them for the same days")
        if exog is not None and not self.exog_columns_:
            raise DataError(f"{what}: the detector was fitted without covariates; drop the argument")
        return check_exog(exog, index, what, self.exog_columns_ or None)

    # ---- model files -----------------------------------------------------------------------
    @staticmethod
    def _model_spec(model: Forecaster, *, fitted: bool) -> dict[str, Any]:
        if not model.registry_name:
            raise FinarError(f"{type(model).__name__} is not registered, so a detector file could not "
                             "rebuild it; decorate the class with finar.models.register(name)")
        spec = {"model": model.registry_name, "params": plain(model.get_params(deep=False))}
        if fitted:
            spec["state"] = model._get_state()
        return spec

    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the fitted detector, with its fitted model, to ``path`` (an existing file only with
        ``overwrite=True``); read it back with :func:`finar.models.load`. The model must be
        registered (every finar model is)."""
        self._check_fitted("save")
        params = {**self.get_params(deep=False), "model": self._model_spec(self.model, fitted=False)}
        return write_model_file(path, {"model": self.registry_name, "params": plain(params),
                                       "state": self._get_state()}, overwrite=overwrite)

    def _get_state(self) -> dict[str, Any]:
        return {"fitted_model": self._model_spec(self.model_, fitted=True), "columns": list(self.columns_),
                "exog_columns": list(self.exog_columns_), "impute": plain(self.impute_),
                "typical": plain(self.typical_), "resolution": plain(self.resolution_),
                "calibration": plain(self.calibration_), "calibration_day": plain(self.calibration_day_),
                "threshold": float(self.threshold_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        if isinstance(self.model, dict):  # the unfitted model's spec, as save wrote it
            self.model = rebuild(self.model.get("model"), self.model.get("params"))
        spec = state["fitted_model"]
        self.model_ = rebuild(spec["model"], spec["params"])  # checked, and on load's device
        self.model_._set_state(spec["state"])
        self.columns_ = list(state["columns"])
        self.exog_columns_ = list(state["exog_columns"])
        for name in ("impute", "typical", "resolution", "calibration", "calibration_day"):
            setattr(self, f"{name}_", np.asarray(state[name], dtype=float))
        self.threshold_ = float(state["threshold"])

    def _check_state(self) -> None:
        self.model_._check_state()


def inject_anomalies(r: pd.Series | pd.DataFrame, sigma: pd.Series | pd.DataFrame, *, n_events: int = 32,
                     kinds: tuple[str, ...] = KINDS, min_gap: int = 12, seed: int = 0
                     ) -> tuple[pd.Series | pd.DataFrame, pd.Series | pd.DataFrame]:
    """Inject labelled anomalies into returns, as in docs/protocols.md P4 ("anomaly-inject").

    Event start days are drawn at random at least ``min_gap`` rows apart (and 5 rows before the
    end); event ``i`` is of kind ``kinds[i % len(kinds)]``. With ``sigma_t`` the conditional
    volatility of a model fitted to clean data:

    - ``jump``: ``r_t += +-U(4, 8) sigma_t`` (one day labelled);
    - ``burst``: ``r_t..r_{t+4}`` multiplied by 3 (five days);
    - ``bad_print``: ``r_t += j`` and ``r_{t+1} -= j``, ``j = +-5 sigma_t`` (two days);
    - ``stale``: ``r_t..r_{t+4}`` set to exactly 0, a frozen price (five days);
    - ``decouple`` (panels): on a day when the panel's median ``|r|`` is below its median over
      ``r``, one asset gets ``+-5`` of its own ``sigma_t`` while the others are untouched;
    - ``flip`` (panels; not in PROTOCOLS): on a market day (the panel's median ``|r|`` above its
      80th percentile), one asset that moved with the market (the sign of the day's median
      return, at least the median size) reverses: ``r_{t,j} = -r_{t,j}``. Its size is ordinary,
      so only a model of the cross-section can see it.

    For a panel every event hits one asset drawn at random (for ``flip``, among those eligible).

    Returns
    -------
    (returns, labels)
        The injected returns (a copy) and labels of the same shape: the kind, or ``""`` if clean.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> r = pd.Series(np.ones(400), index=pd.bdate_range("2020-01-01", periods=400))
    >>> x, lab = inject_anomalies(r, r * 0 + 1.0, n_events=8, seed=0)
    >>> lab.value_counts().sort_index().to_dict()
    {'': 374, 'bad_print': 4, 'burst': 10, 'jump': 2, 'stale': 10}
    """
    frame = check_returns(r)
    sig = check_returns(sigma, what="sigma").set_axis(frame.columns, axis=1).reindex(frame.index)
    if sig.isna().any().any():
        raise DataError("sigma must cover every row of r")
    unknown = sorted(set(kinds) - set(_SPAN))
    if unknown:
        raise DataError(f"unknown anomaly kinds {unknown}; choose from {sorted(_SPAN)}")
    T, N = frame.shape
    rng = np.random.default_rng(seed)
    med = np.median(np.abs(frame.to_numpy()), axis=1)
    calm, busy = med < np.median(med), med > np.quantile(med, 0.8)
    x, s = frame.to_numpy(dtype=float).copy(), sig.to_numpy(dtype=float)
    ok_all = np.ones(T, dtype=bool)
    labels = np.full((T, N), "", dtype=object)
    taken: list[int] = []
    for i in range(int(n_events)):
        kind = kinds[i % len(kinds)]
        ok = np.ones(T - 5, dtype=bool) & {"decouple": calm, "flip": busy}.get(kind, ok_all)[: T - 5]
        for p in taken:
            ok[max(0, p - min_gap + 1): p + min_gap] = False
        if not ok.any():
            raise DataError(f"cannot place {n_events} events at least {min_gap} rows apart in {T} rows; "
                            "pass fewer events or a smaller min_gap")
        t = int(rng.choice(np.flatnonzero(ok)))
        taken.append(t)
        j = int(rng.integers(N))
        sign = rng.choice([-1.0, 1.0])
        if kind == "flip":  # an asset that moved with the market
            day = x[t]
            with_market = np.flatnonzero((np.sign(day) == np.sign(np.median(day)))
                                         & (np.abs(day) >= np.median(np.abs(day))) & (day != 0))
            j = int(rng.choice(with_market)) if len(with_market) else j
        if kind == "jump":
            x[t, j] += sign * rng.uniform(4, 8) * s[t, j]
        elif kind == "burst":
            x[t:t + 5, j] *= 3
        elif kind == "bad_print":
            x[t, j] += sign * 5 * s[t, j]
            x[t + 1, j] -= sign * 5 * s[t, j]
        elif kind == "stale":
            x[t:t + 5, j] = 0.0
        elif kind == "decouple":
            x[t, j] += sign * 5 * s[t, j]
        else:  # flip
            x[t, j] = -x[t, j]
        labels[t:t + _SPAN[kind], j] = kind
    out = pd.DataFrame(x, index=frame.index, columns=frame.columns)
    lab = pd.DataFrame(labels, index=frame.index, columns=frame.columns)
    if isinstance(r, pd.Series):
        return out.iloc[:, 0].rename(r.name), lab.iloc[:, 0].rename(r.name)
    return out, lab
