"""Search a forecaster's settings with Ray Tune, by validation log score (``pip install 'finar[tune]'``).

Every trial builds a forecaster from its configuration, fits it on the returns (and covariates
``exog``) before ``val_start`` and is scored by its mean one-step log score (nats per observation,
in the units of the data: exact and comparable across any settings) over ``[val_start, val_end]``,
each day's forecast conditioning only on the days (and covariate rows) before it.

Early stopping. Networks trained by :func:`finar.models.training.train` report their
validation loss after every epoch (:func:`finar.models.training.on_epoch`), and Ray Tune's
ASHA scheduler stops trials whose loss is in the worse part of those that reached the same
epoch. That per-epoch loss is the training loop's own (on its scaled windows), so it is only
compared between trials at equal epochs; the final ranking uses the validation log score
alone. Classical models (GARCH, AR) have no epochs: each trial reports once, nothing stops
early. A trial stopped early has no validation log score and cannot be best.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finar.errors import DataError, FinarError
from finar.executors import init_ray
from finar.models.base import Forecaster, check_exog, check_returns

__all__ = ["tune", "TuneResult"]


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    best_config : dict
        The configuration with the highest validation log score.
    best_score : float
        Its mean validation log score (nats per observation).
    trials : DataFrame
        One row per trial, best first: the configuration's keys, ``val_log_score`` (NaN if
        stopped early or failed), ``epochs`` (epochs trained, 0 without a training loop),
        ``stopped_early``, ``error``, ``seconds``.
    """

    best_config: dict[str, Any]
    best_score: float
    trials: pd.DataFrame


def _series(frame: pd.DataFrame) -> pd.Series | pd.DataFrame:
    return frame if frame.shape[1] > 1 else frame.iloc[:, 0]


def _trial(config: dict[str, Any], model: Callable[..., Forecaster], r: pd.DataFrame, val_start: Any,
           val_end: Any, exog: pd.DataFrame | None = None) -> None:
    from ray import tune as ray_tune

    from finar.models.training import on_epoch

    last = {"epoch": 0, "val_loss": math.nan}  # epoch 0: before ASHA's first rung, never judged

    def report(row: dict) -> None:
        last.update(epoch=row["epoch"] + 1, val_loss=row["val_loss"])
        ray_tune.report({**last, "train_loss": row["train_loss"]})

    train = r.loc[r.index < pd.Timestamp(val_start)]
    history = r.loc[:val_end] if val_end is not None else r

    def kw(rows: pd.Index) -> dict[str, Any]:  # exog only when given: models without the keyword run
        return {} if exog is None else {"exog": exog.loc[rows]}

    with on_epoch(report):
        m = model(**config).fit(_series(train), **kw(train.index))
    lp = m.log_prob(_series(history), **kw(history.index))
    score = float(np.mean(np.asarray(lp.loc[lp.index >= pd.Timestamp(val_start)], dtype=float)))
    # the last epoch repeated: ASHA has judged it already, and it wants its metric in every result
    ray_tune.report({**last, "val_log_score": score if math.isfinite(score) else math.nan})


def tune(model: Callable[..., Forecaster], r: pd.Series | pd.DataFrame, space: Mapping[str, Any], *,
         val_start: Any, val_end: Any = None, exog: pd.DataFrame | pd.Series | None = None,
         num_samples: int = 8, max_epochs: int = 100,
         grace_period: int = 2, reduction_factor: int = 3, max_concurrent: int | None = None,
         cpus_per_trial: float = 1, seed: int = 0, address: str | None = None,
         storage_path: str | None = None, progress: bool = False) -> TuneResult:
    """Ray Tune search of ``model``'s settings by validation log score, with ASHA early stopping.

    Parameters
    ----------
    model : callable
        ``model(**config)`` returns an unfitted forecaster: a class such as
        ``finar.models.WaveNet``, or e.g. ``lambda lr: finar.models.WaveNet(train={"window": 32, "lr": lr})``.
    r : Series or DataFrame
        Returns; the forecaster is fitted on the rows before ``val_start``.
    space : mapping
        Ray Tune's search space: ``{"lr": tune.loguniform(1e-4, 1e-2), "dist": tune.choice(...)}``;
        plain values are constants, ``tune.grid_search([...])`` lists every value.
    val_start, val_end : date-like
        The validation span (inclusive); ``val_end`` defaults to the end of ``r``.
    exog : DataFrame or Series, optional
        Covariates with exactly the rows of ``r`` (row ``t`` known at the close of day ``t``),
        passed to every trial's ``fit`` (rows before ``val_start``) and ``log_prob``.
    num_samples : int, default 8
        Configurations drawn (times every grid point).
    max_epochs, grace_period, reduction_factor : int
        ASHA's ``max_t``, the epochs every trial gets before it can be stopped, and the
        fraction (1 / ``reduction_factor``) kept at each rung.
    max_concurrent : int, optional
        Trials run at once (default: as many as the CPUs allow).
    cpus_per_trial : float, default 1
        CPUs Ray reserves per trial.
    seed : int, default 0
        Seed of the search (which configurations are drawn). The forecaster's own seed is a
        setting like any other: put it in ``space`` or in ``model``.
    address : str, optional
        Ray cluster address (as :func:`finar.executors.init_ray`); default a local Ray.
    storage_path : str, optional
        Where Ray Tune keeps the experiment; default a temporary folder, removed afterwards.
    progress : bool, default False
        Ray Tune's progress output.

    Returns
    -------
    TuneResult

    Examples
    --------
    >>> import finar
    >>> from ray import tune as rt
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2012":"2018"]
    >>> res = tune(finar.models.GARCH, r, {"dist": rt.grid_search(["normal", "t"])},  # doctest: +SKIP
    ...            val_start="2017-01-01", num_samples=1)
    >>> res.best_config  # doctest: +SKIP
    {'dist': 't'}
    """
    frame = check_returns(r)
    ex = check_exog(exog, frame.index, "tune exog")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError("tune needs returns with a DatetimeIndex (val_start is a date)")
    start = pd.Timestamp(val_start)
    n_train, n_val = int((frame.index < start).sum()), int((frame.index >= start).sum())
    if n_train < 2 or n_val < 1:
        raise DataError(f"val_start={val_start!r} leaves {n_train} training and {n_val} validation days "
                        f"(returns span {frame.index[0]} .. {frame.index[-1]}); pick a date inside the span")
    for name, value in (("num_samples", num_samples), ("max_epochs", max_epochs),
                        ("grace_period", grace_period), ("reduction_factor", reduction_factor)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{name} must be a positive integer; got {value!r}")
    init_ray(address)
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(_trial, model=model, r=frame, val_start=start, val_end=val_end, exog=ex),
        {"cpu": cpus_per_trial})
    # max_t one past the last epoch: ASHA stops a trial at max_t, before its final validation report
    scheduler = ASHAScheduler(time_attr="epoch", metric="val_loss", mode="min", max_t=max_epochs + 1,
                              grace_period=grace_period, reduction_factor=reduction_factor)
    folder = storage_path or tempfile.mkdtemp(prefix="finar-tune-")
    try:
        tuner = ray_tune.Tuner(
            trainable, param_space=dict(space),
            tune_config=ray_tune.TuneConfig(num_samples=num_samples, scheduler=scheduler,
                                            search_alg=BasicVariantGenerator(
                                                max_concurrent=max_concurrent or 0, random_state=seed),
                                            reuse_actors=True),  # a new actor re-imports torch: seconds
            run_config=ray_tune.RunConfig(storage_path=folder, name="finar-tune",
                                          verbose=1 if progress else 0))
        grid = tuner.fit()
        trials = _trials_table(grid, list(space))
    finally:
        if storage_path is None:
            shutil.rmtree(folder, ignore_errors=True)
    scored = trials.dropna(subset=["val_log_score"])
    if scored.empty:
        raise FinarError(f"no trial finished with a validation log score; errors: "
                         f"{trials['error'].dropna().unique().tolist()[:3]}")
    best = scored.iloc[0]
    return TuneResult({k: best[k] for k in space}, float(best["val_log_score"]), trials)


def _trials_table(grid: Any, keys: list[str]) -> pd.DataFrame:
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        epochs = int(history["epoch"].max()) if history is not None and "epoch" in history and \
            history["epoch"].notna().any() else 0
        score = metrics.get("val_log_score", math.nan)
        rows.append({**{k: result.config.get(k) for k in keys},
                     "val_log_score": score, "epochs": epochs,
                     "stopped_early": result.error is None and "val_log_score" not in metrics,
                     "error": None if result.error is None else f"{type(result.error).__name__}: "
                                                                 f"{result.error}",
                     "seconds": metrics.get("time_total_s", math.nan)})
    table = pd.DataFrame(rows)
    return table.sort_values("val_log_score", ascending=False, na_position="last", kind="stable",
                             ignore_index=True)
