"""P4 panel part: anomaly flags on the 20-stock cross-section, per-stock detectors against PixelCNN.

The panel of ``benchmarks/_p4_panel.py`` (S&P 500 index first, then the 20 stocks; train
2000-2014, test 2015-2018). Anomalies (the four kinds of P4 plus ``decouple``: one stock moves
5 of its own sigmas on a calm day while the others do not) are injected into the stocks only,
each event into one stock drawn at random, with sigma from per-stock GARCH(1,1)-t fits on the
clean training data. Every stock-day is scored; per kind, AUROC/AUPRC of the labelled
stock-days against the clean ones. PixelCNN scores each stock given the earlier days *and* the
index and the stocks to its left on the same day, so a stock that breaks from its peers stands
out; a per-stock detector only sees the stock's own history.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from _p4_panel import PIXELCNN, TEST, TRAIN, panel_returns
from p4_anomaly import LEVEL, REFERENCES, evaluate, fit_all

import finar
from finar.anomaly import KINDS

PANEL_KINDS = (*KINDS, "decouple")


def panel(seeds: list[int], pixelcnn_seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    r = panel_returns()
    train, test = r.loc[:TRAIN[1]], r.loc[TEST[0]:]
    stocks = [c for c in r.columns if c != "SP500"]
    g = finar.models.GARCH(dist="t").fit(train[stocks])
    pred = g.predictive(r[stocks])
    sigma = pd.DataFrame({c: pred[c].scale for c in stocks}, index=r.index)
    detectors = {
        "finar GARCH(1,1)-t per stock": finar.AnomalyDetector(finar.models.GARCH(dist="t"), level=LEVEL),
        "finar PixelCNN (panel)": finar.AnomalyDetector(
            finar.models.PixelCNN(**{**PIXELCNN, "seed": pixelcnn_seed}), level=LEVEL),
    }
    fit_seconds = fit_all(detectors, train)
    raw: list[dict[str, Any]] = []
    for seed in seeds:
        x_s, lab_s = finar.inject_anomalies(test[stocks], sigma.loc[test.index], n_events=40,
                                            kinds=PANEL_KINDS, seed=seed)
        x = pd.concat([test[["SP500"]], x_s], axis=1)
        labels = lab_s.to_numpy().ravel()
        full = pd.concat([train, x])
        for name, fn in REFERENCES.items():  # per stock, on its own series
            cols = [fn(train[c], full[c]) for c in stocks]
            s = np.column_stack([sc[x.index].to_numpy() for sc, _ in cols])
            thr = np.array([t for _, t in cols])
            raw += [{"detector": name + " (per stock)", "seed": seed, **row}
                    for row in evaluate(s.ravel(), labels, (s >= thr).ravel(), PANEL_KINDS)]
        for name, det in detectors.items():
            t0 = time.perf_counter()
            out = det.score(x, context=train)
            st = out["stat"].unstack("asset")[stocks].to_numpy().ravel()
            fl = out["flag"].unstack("asset")[stocks].to_numpy().ravel()
            raw += [{"detector": name, "seed": seed, **row} for row in evaluate(st, labels, fl, PANEL_KINDS)]
            print(f"panel seed {seed}: scored {name} in {time.perf_counter() - t0:.1f} s", flush=True)
    extra = {"panel_fit_seconds": fit_seconds, "panel_train": list(TRAIN), "panel_test": list(TEST),
             "panel_columns": list(r.columns), "panel_pixelcnn_params": PIXELCNN}
    return raw, extra
