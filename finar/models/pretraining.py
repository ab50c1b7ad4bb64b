"""Pooled pretraining on finar's bundled daily series: ``train={"pretrain": True}``.

A network fitted with ``train__pretrain=True`` does not start from random weights: it starts
from one network of the same architecture trained on the returns of the bundled daily series
(:func:`corpus`: the S&P 500, WTI crude oil and the 20 stocks of ``sp500-stocks``, the 22
series of P1m), each standardised by its own mean and standard deviation
(:meth:`~finar.models.neural.NeuralForecaster.pretrain`), and then fine-tunes on its own
series with its own scaler, as ``train={"init": path}`` does.

No look-ahead: the corpus is cut at :func:`cutoff` of the fit's last training day (the end of
the last calendar year the training data covers), so a backtest's first fit pretrains on nothing after
the day before its test window, and a fit for a fan chart on nothing after its origin. Every
series of the corpus shorter than one training and one validation window at the cut is left
out. The pretraining seed is 0 whatever the fit's seed (the members of an
:class:`~finar.models.Ensemble` share one pretrained network and differ in their fine-tunes).

The pretrained network is trained once per (architecture, training settings, cut year) and kept in
``<cache>/pretrained/`` (``<cache>``: the ``cache_dir`` argument, else the environment variable
``FINAR_CACHE_DIR``, else ``data/cache`` under the current directory, as for Yahoo downloads).
The Transformer's pretraining takes a few minutes on 2 CPU cores; later fits load the file.

Measured (``benchmarks/p1_many_series.py``, ``benchmarks/p1_sp500_daily.py``): the
Transformer pretrained up to 2014 and refitted warm every 20 days beats GARCH(1,1)-t on 18 of
the 22 series of P1m with one seed. On training data only (each series scored 2011-2014,
pretrained up to 2010, one seed) it beats the same refits from random weights on 20 of the 22
series, median +0.008 nats/day (S&P 500: -1.1953 against -1.1986).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from finar.data.sources import load
from finar.data.transforms import returns
from finar.errors import DataError

if TYPE_CHECKING:
    from finar.models.neural import NeuralForecaster

__all__ = ["corpus", "cutoff", "pretrained_file"]

log = logging.getLogger(__name__)

#: the bundled series of the corpus: (dataset, column); ``None`` takes every column of the
#: dataset but :data:`INDEX` (the S&P 500 is already in as ``sp500``'s adjusted close)
SOURCES: tuple[tuple[str, str | None], ...] = (
    ("sp500", "adj_close"), ("wti", "close"), ("sp500-stocks", None))
INDEX = "SP500"


def cutoff(last_day: Any) -> pd.Timestamp:
    """The last day of the corpus for a fit whose training data ends on ``last_day``: the end of
    the last calendar year the data covers (``last_day``'s year when the next business day starts
    a new year, else the year before). Fits of the same year share one pretraining, so a backtest
    whose refits start new networks pretrains once a year, not once a refit.

    Examples
    --------
    >>> cutoff("2014-12-31").date(), cutoff("2016-12-30").date(), cutoff("2010-06-15").date()
    (datetime.date(2014, 12, 31), datetime.date(2016, 12, 31), datetime.date(2009, 12, 31))
    """
    t = pd.Timestamp(last_day)
    if t is pd.NaT:
        raise DataError("pretraining needs the date of the last training day")
    return pd.Timestamp(year=(t.normalize() + pd.offsets.BDay(1)).year - 1, month=12, day=31)


def corpus(end: Any) -> dict[str, pd.Series]:
    """Percent log returns of the bundled daily series up to ``end`` (inclusive), by name:
    ``SP500`` (adjusted close), ``WTI`` and the 20 stocks of ``sp500-stocks``, each from its
    first price (series that start after ``end`` are left out).

    Examples
    --------
    >>> r = corpus("2014-12-31")
    >>> len(r), list(r)[:3], max(s.index[-1] for s in r.values()).date()
    (22, ['SP500', 'WTI', 'AAPL'], datetime.date(2014, 12, 31))
    """
    end = pd.Timestamp(end)
    out: dict[str, pd.Series] = {}
    for name, column in SOURCES:
        px = load(name, end=end)
        cols = [column] if column is not None else [c for c in px.columns if c != INDEX]
        for c in cols:
            p = px[c].dropna()
            if len(p) < 2:
                continue
            key = {"sp500": "SP500", "wti": "WTI"}.get(name, str(c))
            out[key] = returns(p).rename(key)
    return out


def _cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    folder = cache_dir if cache_dir is not None else (os.environ.get("FINAR_CACHE_DIR")
                                                      or Path("data") / "cache")
    return Path(folder) / "pretrained"


def _usable(model: NeuralForecaster, series: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """The series long enough for one training and one validation window (as ``pretrain`` cuts)."""
    config = model._train_config()
    R, span = model.min_context, model._span(config)
    keep = {}
    for k, s in series.items():
        cut = round(len(s) * (1 - config.val_fraction))
        if cut - R >= span and len(s) - cut >= span:
            keep[k] = s
    return keep


def pretrained_file(model: NeuralForecaster, last_day: Any, *,
                    cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The model file of the network that a fit of ``model`` ending on ``last_day`` starts from
    (``train={"pretrain": True}``): trained on :func:`corpus` up to :func:`cutoff` ``(last_day)``
    with ``model``'s architecture and training settings (seed 0), or read from the cache.

    Raises
    ------
    DataError
        No bundled series is long enough before the cut (training data ending before about 1992).
    """
    config = model._train_config()
    pre_config = dataclasses.replace(config, seed=0, warm_epochs=0, init=None, pretrain=False,
                                     variance_target=False)
    end = cutoff(last_day)
    series = _usable(model, corpus(end))
    if not series:
        raise DataError(f"train.pretrain: no bundled series has enough days up to {end.date()} (the end of "
                        f"the last calendar year before the fit's last day {pd.Timestamp(last_day).date()}) "
                        "for pretraining; fit without it (train__pretrain=False)")
    last = max(s.index[-1] for s in series.values())  # later cuts with no newer data share the file
    arch = model._architecture()
    # variance_target (always off here) is left out of the key: files cached before it existed stay valid
    train_key = {k: v for k, v in dataclasses.asdict(pre_config).items() if k != "variance_target"}
    key = {"model": type(model).__name__, "architecture": arch, "train": train_key,
           "series": {k: [str(s.index[0].date()), str(s.index[-1].date()), len(s), round(float(s.sum()), 6)]
                      for k, s in series.items()}}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = _cache_dir(cache_dir) / f"{type(model).__name__.lower()}_{last.date()}_{digest}.pt"
    if path.is_file():  # the fit checks that its network fits (NeuralForecaster._start_from)
        return path
    log.info("pretraining %s on %d bundled series up to %s (once; kept in %s)", type(model).__name__,
             len(series), last.date(), path)
    if model.progress:
        print(f"pretraining {type(model).__name__} on {len(series)} bundled series up to {last.date()} "
              f"(once; kept in {path})", flush=True)
    params: dict[str, Any] = {**arch, "train": pre_config, "device": model.device, "progress": model.progress}
    pre = type(model)(**params).pretrain(series)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".pt.part")  # several processes may share the cache
    os.close(fd)
    try:
        pre.save(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

