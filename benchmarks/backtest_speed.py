"""Backtest speed: GARCH(1,1)-t refit every day over P1's 1,006 test days.

``finar.backtest`` (with its look-ahead check on) against a hand-written arch loop that computes
the same daily outputs (log score, PIT, closed-form CRPS, VaR and ES at 1/2.5/5%), in one run.
The acceptance bar: finar costs at most 1.2x the hand loop.

    python benchmarks/backtest_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from arch import arch_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

import finar
from finar.evaluation import scoring

START, END, LEVELS = "2015-01-01", "2018-12-31", (0.01, 0.025, 0.05)


def arch_loop(r: pd.Series) -> pd.DataFrame:
    values = r.to_numpy()
    first = int(r.index.searchsorted(pd.Timestamp(START)))
    last = int(r.index.searchsorted(pd.Timestamp(END), side="right")) - 1
    rows = []
    for t in range(first, last + 1):
        res = arch_model(values[:t], mean="Constant", vol="GARCH", p=1, q=1, dist="t",
                         rescale=False).fit(disp="off")
        fc = res.forecast(horizon=1, reindex=False)
        mu, sigma = fc.mean.iloc[-1, 0], np.sqrt(fc.variance.iloc[-1, 0])
        nu, dist, y = res.params["nu"], res.model.distribution, values[t]
        z = (y - mu) / sigma
        row = {"y": y, "log_score": float(dist.loglikelihood([nu], np.array([y - mu]), np.array([sigma**2]))),
               "pit": float(dist.cdf(np.array([z]), [nu])[0]),
               "crps": float(scoring.crps_std_t(y, mu, sigma, nu))}
        for a in LEVELS:
            q = float(dist.ppf(a, [nu]))
            row[f"var_{a}"] = -(mu + sigma * q)
            row[f"es_{a}"] = -(mu + sigma * float(dist.partial_moment(1, q, [nu])) / a)
        rows.append(row)
    return pd.DataFrame(rows, index=r.index[first:last + 1])


def main() -> None:
    r = finar.returns(finar.load("sp500")["adj_close"])
    t0 = time.perf_counter()
    ref = arch_loop(r)
    loop_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    bt = finar.backtest(finar.models.GARCH(dist="t"), r, start=START, end=END, refit_every=1,
                        levels=LEVELS, progress=False)
    finar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    finar.backtest(finar.models.GARCH(dist="t"), r, start=START, end=END, refit_every=1,
                   levels=LEVELS, progress=False, n_jobs=2)
    finar_par_s = time.perf_counter() - t0
    diff = float(np.abs(bt.daily["log_score"].to_numpy() - ref["log_score"].to_numpy()).max())
    rows = [
        {"name": "hand-written arch loop, daily refit", "value": loop_s, "unit": "s"},
        {"name": "finar.backtest, daily refit", "value": finar_s, "unit": "s"},
        {"name": "finar.backtest, daily refit, n_jobs=2", "value": finar_par_s, "unit": "s"},
        {"name": "ratio finar / arch loop", "value": finar_s / loop_s, "unit": "x"},
        {"name": "max |log score difference| finar vs arch loop", "value": diff, "unit": "nats"},
    ]
    for row in rows:
        print(f"{row['name']:50s} {row['value']:.4g} {row['unit']}")
    write_results("backtest_speed", "P1-speed", rows, columns=["name", "value", "unit"],
                  extra={"test_days": len(ref), "model": "GARCH(1,1) Student-t", "refit_every": 1})


if __name__ == "__main__":
    main()
