"""P4 panel part: PixelCNN's joint log-likelihood per asset-day against independent GARCH(1,1)-t.

The bundled ``sp500-stocks`` panel (20 stocks and the S&P 500 index, % log returns), the index
first so that every stock's same-day density conditions on the market (PixelCNN's raster order
is day, then asset left to right). All 21 series have full history over 2000-2018, so no cell is
masked or dropped (the script checks and refuses NaNs). Train on 2000-01-01 .. 2014-12-31
(PixelCNN: the last 20% of it for early stopping); score 2015-01-01 .. 2018-12-31 one day ahead
with parameters fixed:

- PixelCNN: ``log p(r_{t,j} | r_{<t}, r_{t,<j})`` summed over the day's 21 cells (exact joint
  log density of the day given the past);
- GARCH(1,1)-t per series, fitted on the training span and filtered through the test period:
  the sum of the 21 marginal log densities (independence across assets).

Rows: mean log-likelihood per asset-day (nats, in % log-return units) per model and seed, and
a Diebold-Mariano test on the daily joint log-score differences (PixelCNN minus GARCH-t).
``panel_loglik_rows()`` is imported by ``benchmarks/p4_anomaly.py``.

    python benchmarks/_p4_panel.py [--seeds 0 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

import finar
from finar.evaluation.stattests import diebold_mariano

TRAIN, TEST = ("2000-01-01", "2014-12-31"), ("2015-01-01", "2018-12-31")
#: the benchmark's PixelCNN; sized to train in a few minutes on 2 CPU cores
PIXELCNN = dict(channels=16, n_layers=5,
                train=dict(window=96, batch_size=4, max_epochs=25, patience=5, lr=3e-3))


def panel_returns() -> pd.DataFrame:
    """% log returns 2000-2018 of the panel, the S&P 500 index in the first column."""
    px = finar.load("sp500-stocks")
    cols = ["SP500", *[c for c in px.columns if c != "SP500"]]
    px = px[cols].loc[:TEST[1]]
    r = finar.returns(px.loc[px.index[px.index < TRAIN[0]][-1]:])  # the last 1999 close gives 2000's first
    if r.isna().any().any():
        raise finar.FinarError(f"panel has missing returns in {list(r.columns[r.isna().any()])}")
    return r


def panel_loglik_rows(seeds: tuple[int, ...] = (0, 1, 2), params: dict[str, Any] | None = None,
                      verbose: bool = True) -> list[dict[str, Any]]:
    """One row per model (and PixelCNN seed) with the mean log-likelihood per asset-day on 2015-2018."""
    r = panel_returns()
    train = r.loc[:TRAIN[1]]
    t0 = time.perf_counter()
    garch = finar.models.GARCH(dist="t").fit(train)
    g_day = garch.log_prob(r).loc[TEST[0]:].sum(axis=1)  # independent assets: the sum of marginals
    g_seconds = time.perf_counter() - t0
    n_cells = r.shape[1]
    rows = [{"model": "GARCH(1,1)-t per asset (independent)", "seed": None,
             "loglik_per_asset_day": g_day.mean() / n_cells, "joint_loglik_per_day": g_day.mean(),
             "n_days": len(g_day), "n_assets": n_cells, "fit_seconds": g_seconds}]
    if verbose:
        print(f"GARCH-t: {rows[0]['loglik_per_asset_day']:.4f} nats per asset-day", flush=True)
    diffs = []
    for seed in seeds:
        t0 = time.perf_counter()
        m = finar.models.PixelCNN(**{**PIXELCNN, **(params or {})}).set_params(train__seed=seed).fit(train)
        seconds = time.perf_counter() - t0
        p_day = m.joint_log_prob(r).loc[TEST[0]:]
        dm = diebold_mariano(p_day.to_numpy(), g_day.to_numpy())
        diffs.append(p_day - g_day)
        rows.append({"model": "PixelCNN (gated, logistic mixture)", "seed": seed,
                     "loglik_per_asset_day": p_day.mean() / n_cells, "joint_loglik_per_day": p_day.mean(),
                     "diff_vs_garch_per_asset_day": (p_day.mean() - g_day.mean()) / n_cells,
                     "dm_vs_garch": dm.statistic, "dm_p": dm.p_value, "n_days": len(p_day),
                     "n_assets": n_cells, "epochs": len(m.training_.history), "fit_seconds": seconds})
        if verbose:
            print(f"PixelCNN seed {seed}: {rows[-1]['loglik_per_asset_day']:.4f} per asset-day, DM "
                  f"{dm.statistic:.2f} (p {dm.p_value:.3g}), {seconds:.0f} s", flush=True)
    if len(seeds) > 1:
        pix = [row for row in rows if row["seed"] is not None]
        mean = float(np.mean([row["loglik_per_asset_day"] for row in pix]))
        rows.append({"model": f"PixelCNN mean of {len(seeds)} seeds", "seed": None,
                     "loglik_per_asset_day": mean, "joint_loglik_per_day": mean * n_cells,
                     "diff_vs_garch_per_asset_day": mean - rows[0]["loglik_per_asset_day"],
                     "loglik_sd_over_seeds": float(np.std([row["loglik_per_asset_day"] for row in pix],
                                                          ddof=1)),
                     "n_days": len(g_day), "n_assets": n_cells})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (on a shared, loaded 2-core machine 2 ran 4x slower than 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = panel_loglik_rows(tuple(args.seeds))
    write_results("p4_panel_loglik", "P4", rows, columns=[
        "model", "seed", "loglik_per_asset_day", "joint_loglik_per_day", "diff_vs_garch_per_asset_day",
        "dm_vs_garch", "dm_p", "loglik_sd_over_seeds", "epochs", "fit_seconds"],
        extra={"train": list(TRAIN), "test": list(TEST), "columns": list(panel_returns().columns),
               "pixelcnn_params": PIXELCNN, "torch_threads": args.threads},
        notes="Mean log-likelihood per asset-day (nats, % log returns) over 2015-2018, models fitted on "
              "2000-2014 and filtered with fixed parameters. PixelCNN: exact joint density of each day's 21 "
              "cells (S&P 500 index first, then the stocks in the dataset's order; each cell conditions on "
              "earlier days and on the columns to its left). GARCH-t: independent per-asset models. DM: "
              "Diebold-Mariano (HLN) statistic on daily joint log-score differences, PixelCNN minus GARCH-t; "
              "positive favours PixelCNN. No NaNs in the panel over the span: nothing masked or dropped.")


if __name__ == "__main__":
    main()
