"""P4 panel part: anomaly flags on the 20-stock cross-section: per-stock detectors, PixelCNN and
the classical joint models.

The panel of ``benchmarks/_p4_panel.py`` (S&P 500 index first, then the 20 stocks; train
2000-2014, test 2015-2018). Anomalies are injected into the stocks only, each event into one
stock drawn at random, with sigma from per-stock GARCH(1,1)-t fits on the clean training data:
the four kinds of P4 and the cross-sectional kind ``flip`` (on a market day one stock that moved
with the market reverses its return, an ordinary size in the wrong direction), which make the
headline mean, and ``decouple`` (one stock moves 5 of its own sigmas on a calm day while the
others do not), reported beside it: real one-stock news among the clean stock-days saturates it
near an AUROC of 0.997 for every detector. Every stock-day is scored; per kind, AUROC/AUPRC of
the labelled stock-days against the clean ones.

A per-stock detector only sees the stock's own history. PixelCNN scores each stock given the
earlier days *and* the index and the stocks to its left on the same day, so a stock that breaks
from its peers stands out. The classical joint models are detector references that know the
correlation: ``finar.AnomalyDetector(DCC(family='t'), given='others')`` and the same with a static
t copula score each stock-day by its exact conditional law given the past and *all the day's
other assets* (index and stocks), from the model's joint density
(``conditional_predictive``); a DCC-t row with ``given='left'`` conditions on the index and the
stocks to its left instead, PixelCNN's information. All detectors are fitted once on the
training days, with thresholds at the level calibrated on them (rolling-origin conformal).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from _p4_panel import PIXELCNN, TEST, TRAIN, panel_returns
from p4_anomaly import LEVEL, REFERENCES, evaluate, fit_all
from scipy import stats

import finar
from finar.anomaly import KINDS

#: the headline kinds: P4's four and the cross-sectional ``flip`` (on a market day one stock that
#: moved with the market reverses its return)
PANEL_KINDS = (*KINDS, "flip")
#: reported beside the headline: ``decouple``, saturated by real one-stock news
EXTRA_KINDS = ("decouple",)
#: the kinds injected, in this order (events cycle through it, so it fixes every seed's events)
INJECTED = (*KINDS, "decouple", "flip")
#: the cross-sectional kinds, compared day by day across detectors
CROSS_KINDS = ("flip", "decouple")
GIVEN_OTHERS = "joint, conditional on the day's other assets"


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
            finar.models.PixelCNN(**PIXELCNN).set_params(train__seed=pixelcnn_seed), level=LEVEL),
        f"finar DCC(1,1)-t ({GIVEN_OTHERS})": finar.AnomalyDetector(
            finar.models.DCC(family="t"), level=LEVEL, given="others"),
        f"finar static t copula ({GIVEN_OTHERS})": finar.AnomalyDetector(
            finar.models.Copula(family="t"), level=LEVEL, given="others"),
        "finar DCC(1,1)-t (joint, given the index and the stocks to its left)": finar.AnomalyDetector(
            finar.models.DCC(family="t"), level=LEVEL, given="left"),
    }
    fit_seconds = fit_all(detectors, train)
    raw: list[dict[str, Any]] = []
    shares: dict[tuple[str, str], list[float]] = {}  # (detector, kind) -> per injected stock-day
    for seed in seeds:
        x_s, lab_s = finar.inject_anomalies(test[stocks], sigma.loc[test.index], n_events=48,
                                            kinds=INJECTED, seed=seed)
        x = pd.concat([test[["SP500"]], x_s], axis=1)
        labels = lab_s.to_numpy().ravel()
        full = pd.concat([train, x])
        for name, fn in REFERENCES.items():  # per stock, on its own series
            cols = [fn(train[c], full[c]) for c in stocks]
            s = np.column_stack([sc[x.index].to_numpy() for sc, _ in cols])
            thr = np.array([t for _, t in cols])
            raw += [{"detector": name + " (per stock)", "seed": seed, **row}
                    for row in evaluate(s.ravel(), labels, (s >= thr).ravel(), INJECTED)]
            _collect(shares, name + " (per stock)", s.ravel(), labels)
            if name == "GARCH-t tail probability" and seed == seeds[0]:
                ceiling = decouple_ceiling(s, lab_s, x)
        for name, det in detectors.items():
            t0 = time.perf_counter()
            out = det.score(x, context=train)
            st = out["stat"].unstack("asset")[stocks].to_numpy().ravel()
            fl = out["flag"].unstack("asset")[stocks].to_numpy().ravel()
            raw += [{"detector": name, "seed": seed, **row}
                    for row in evaluate(st, labels, fl, INJECTED)]
            _collect(shares, name, st, labels)
            # the same model's tail test alone (-log 2 min(u, 1 - u)), like the GARCH-t reference:
            # what the cross-section adds, without the flat test's share of the ranking
            u = out["pit"].unstack("asset")[stocks].to_numpy().ravel()
            tail = -np.log(np.clip(2 * np.minimum(u, 1 - u), 1e-300, 1))
            raw += [{"detector": name + ", tail test alone", "seed": seed, **row}
                    for row in evaluate(tail, labels, tail >= -np.log(LEVEL), INJECTED)]
            _collect(shares, name + ", tail test alone", tail, labels)
            print(f"panel seed {seed}: scored {name} in {time.perf_counter() - t0:.1f} s", flush=True)
    extra = {"panel_fit_seconds": fit_seconds, "panel_train": list(TRAIN), "panel_test": list(TEST),
             "panel_columns": list(r.columns), "panel_pixelcnn_params": PIXELCNN, "decouple_ceiling": ceiling,
             "paired_vs_per_stock": paired(shares)}
    return raw, extra


def _collect(shares: dict[tuple[str, str], list[float]], name: str, score: np.ndarray,
             labels: np.ndarray) -> None:
    """Each injected ``flip`` / ``decouple`` stock-day's share of clean stock-days scoring at least as
    high (ties half): one minus its AUROC contribution, paired across detectors (same days)."""
    clean = np.sort(score[(labels == "") & np.isfinite(score)])
    for kind in CROSS_KINDS:
        pos = score[labels == kind]
        hi, lo = np.searchsorted(clean, pos, "right"), np.searchsorted(clean, pos, "left")
        shares.setdefault((name, kind), []).extend(((len(clean) - hi) + 0.5 * (hi - lo)) / len(clean))


def paired(shares: dict[tuple[str, str], list[float]]) -> list[dict[str, Any]]:
    """PixelCNN against each other detector (per-stock and joint) on the cross-sectional kinds: AUROC
    over all seeds and a Wilcoxon signed-rank test on the paired per-day shares (is the difference
    noise?)."""
    out = []
    for kind in CROSS_KINDS:
        for pix in ("finar PixelCNN (panel)", "finar PixelCNN (panel), tail test alone"):
            a = np.array(shares[(pix, kind)])
            for (other, k), b in shares.items():
                if k != kind or "PixelCNN" in other:
                    continue
                b = np.array(b)
                test = stats.wilcoxon(a, b) if np.any(a != b) else None
                out.append({"kind": kind, "pixelcnn": pix, "per_stock": other, "n_days": len(a),
                            "auroc_pixelcnn": round(1 - a.mean(), 4),
                            "auroc_per_stock": round(1 - b.mean(), 4),
                            "pixelcnn_better_days": int(np.sum(a < b)),
                            "per_stock_better_days": int(np.sum(a > b)),
                            "wilcoxon_p": None if test is None else float(test.pvalue)})
    return out


def decouple_ceiling(score: np.ndarray, labels: pd.DataFrame, x: pd.DataFrame) -> dict[str, Any]:
    """What caps every detector's ``decouple`` AUROC: the clean stock-days that are more extreme
    than the median injected decouple (by the per-stock GARCH-t tail statistic ``score``), and how
    many of them fall on days the index moved less than 1% (real one-stock news on a calm day)."""
    lab = labels.to_numpy()
    clean = lab == ""
    above = clean & (score >= np.median(score[lab == "decouple"]))
    t, j = np.nonzero(above)
    index_move = x["SP500"].to_numpy()[t]
    order = np.argsort(-score[t, j])
    examples = [{"date": str(x.index[t[k]].date()), "stock": labels.columns[j[k]],
                 "return_pct": round(float(x.iloc[t[k]][labels.columns[j[k]]]), 2),
                 "index_return_pct": round(float(index_move[k]), 2)} for k in order[:12]]
    return {"seed": "first", "n_clean_stock_days": int(clean.sum()),
            "n_above_median_decouple": int(above.sum()),
            "share_on_calm_index_days": round(float(np.mean(np.abs(index_move) < 1)), 3) if len(t) else None,
            "most_extreme": examples}
