"""Panel benchmark: one global Transformer for 20 stocks against per-stock models.

Train on 2000-01-01 .. 2014-12-31 and score one step ahead on 2015-01-01 .. 2018-12-31, per
stock of the bundled ``sp500-stocks`` panel (the index column left out): the global
Transformer (one model, a series-id embedding) against per-stock GARCH(1,1)-t and per-stock
WaveNet, all fitted once and conditioning on the growing context, with exact log scores.
Per stock: mean log score (nats/day) and the Diebold-Mariano statistic of the global model
against GARCH(1,1)-t.

    python benchmarks/panel_sp500_stocks.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

import finar
from finar.evaluation import stattests

TRAIN, TEST = ("2000-01-01", "2014-12-31"), ("2015-01-01", "2018-12-31")


def main() -> None:
    px = finar.load("sp500-stocks").drop(columns=["SP500"]).loc[TRAIN[0]:TEST[1]]
    r = finar.returns(px)
    train = r.loc[:TRAIN[1]]
    scores, seconds = {}, {}
    t0 = time.perf_counter()
    glob = finar.models.Transformer().fit(train)
    seconds["global Transformer"] = time.perf_counter() - t0
    scores["global Transformer"] = glob.log_prob(r).loc[TEST[0]:]
    for name, make in (("GARCH(1,1)-t", lambda: finar.models.GARCH(dist="t")),
                       ("WaveNet per stock", lambda: finar.models.WaveNet())):
        t0 = time.perf_counter()
        cols = {c: make().fit(train[c]).log_prob(r[c]).loc[TEST[0]:] for c in r.columns}
        seconds[name] = time.perf_counter() - t0
        scores[name] = cols
        print(f"{name}: {seconds[name]:.1f} s", flush=True)
    rows = []
    for c in r.columns:
        g, b, w = scores["global Transformer"][c], scores["GARCH(1,1)-t"][c], scores["WaveNet per stock"][c]
        dm = stattests.diebold_mariano(g.to_numpy(), b.to_numpy())
        rows.append({"stock": c, "global_transformer": g.mean(), "garch_t": b.mean(), "wavenet": w.mean(),
                     "diff_vs_garch": g.mean() - b.mean(), "dm_vs_garch": dm.statistic, "dm_p": dm.p_value})
        print(f"{c:5s} global {g.mean():.4f}  GARCH-t {b.mean():.4f}  WaveNet {w.mean():.4f}  "
              f"DM {dm.statistic:.2f}", flush=True)
    mean = {k: float(np.mean([row[k] for row in rows])) for k in ("global_transformer", "garch_t", "wavenet",
                                                                   "diff_vs_garch")}
    rows.append({"stock": "average", **mean,
                 "stocks_better_than_garch": int(sum(row["diff_vs_garch"] > 0 for row in rows))})
    print(rows[-1])
    write_results("panel_sp500_stocks", "panel", rows, columns=[
        "stock", "global_transformer", "garch_t", "wavenet", "diff_vs_garch", "dm_vs_garch", "dm_p",
        "stocks_better_than_garch"],
        extra={"train": list(TRAIN), "test": list(TEST), "fit_seconds": seconds},
        notes="Mean one-step log score per stock (nats/day on % log returns), all models fitted once on "
              "the training span; DM: Diebold-Mariano statistic of global Transformer minus GARCH(1,1)-t.")


if __name__ == "__main__":
    main()
