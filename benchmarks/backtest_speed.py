"""Backtest speed, in one run: classical refits against a hand loop, neural scoring before and after.

1. GARCH(1,1)-t refit every day over P1's 1,006 test days: ``finar.backtest`` (with its
   look-ahead check on) against a hand-written arch loop that computes the same daily outputs
   (log score, PIT, closed-form CRPS, VaR and ES at 1/2.5/5%). The bar: finar costs at most 1.2x
   the hand loop.
2. The neural P1 backtests (WaveNet and Transformer t-mixture, seed 0, fitted once on the data
   before 2015 as in P1), one-step, scored two ways: *before*, the old path that draws 1,000
   one-step sample paths a day (``one_step="paths"``, still the fallback for models without a
   predictive distribution), and *after*, the exact predictive distribution of the head
   (``one_step="auto"``: no path drawn). Both backtests train the same network (same seed), so
   the scoring time is the backtest's time minus its fit time. The log scores must be identical;
   the PIT, VaR, ES and CRPS of the paths differ from the exact values by Monte Carlo error.
   Expected: the exact scoring at least 5x faster.

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
from finar.protocols import P1, SPEED

START, END, LEVELS = P1.test_start, P1.test_end, SPEED.backtest_levels
NEURAL = {"WaveNet t-mixture, seed 0": lambda: finar.models.WaveNet(train={"seed": P1.seed}),
          "Transformer t-mixture, seed 0": lambda: finar.models.Transformer(train={"seed": P1.seed})}


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


def classical_rows(r: pd.Series) -> tuple[list[dict], int]:
    t0 = time.perf_counter()
    ref = arch_loop(r)
    loop_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    bt = finar.backtest(finar.models.GARCH(dist="t"), r, start=START, end=END,
                        refit_every=SPEED.backtest_refit_every, levels=LEVELS, progress=False)
    finar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    finar.backtest(finar.models.GARCH(dist="t"), r, start=START, end=END,
                   refit_every=SPEED.backtest_refit_every, levels=LEVELS, progress=False, n_jobs=2)
    finar_par_s = time.perf_counter() - t0
    diff = float(np.abs(bt.daily["log_score"].to_numpy() - ref["log_score"].to_numpy()).max())
    return [
        {"name": "hand-written arch loop, daily refit", "value": loop_s, "unit": "s"},
        {"name": "finar.backtest, daily refit", "value": finar_s, "unit": "s"},
        {"name": "finar.backtest, daily refit, n_jobs=2", "value": finar_par_s, "unit": "s"},
        {"name": "ratio finar / arch loop", "value": finar_s / loop_s, "unit": "x"},
        {"name": "max |log score difference| finar vs arch loop", "value": diff, "unit": "nats"},
    ], len(ref)


def neural_rows(r: pd.Series, name: str, make) -> list[dict]:
    """The same P1 backtest scored from 1,000 paths a day (before) and exactly (after)."""
    runs = {}
    for how in ("paths", "auto"):
        t0 = time.perf_counter()
        bt = finar.backtest(make(), r, start=START, end=END, refit_every=None, levels=LEVELS, seed=P1.seed,
                            n_paths=P1.crps_draws, progress=False, one_step=how)
        runs[how] = (bt, time.perf_counter() - t0)
    (old, old_s), (new, new_s) = runs["paths"], runs["auto"]
    a, b = old.daily, new.daily
    score_old, score_new = old_s - old.fit_seconds, new_s - new.fit_seconds
    rows = [
        {"name": f"{name}: backtest, 1,000 paths a day (before)", "value": old_s, "unit": "s"},
        {"name": f"{name}: backtest, exact predictive (after)", "value": new_s, "unit": "s"},
        {"name": f"{name}: scoring without the fit, before", "value": score_old, "unit": "s"},
        {"name": f"{name}: scoring without the fit, after", "value": score_new, "unit": "s"},
        {"name": f"{name}: speed-up of the scoring", "value": score_old / score_new, "unit": "x"},
        {"name": f"{name}: speed-up of the whole backtest", "value": old_s / new_s, "unit": "x"},
        {"name": f"{name}: log scores identical",
         "value": bool(np.array_equal(a["log_score"], b["log_score"])), "unit": ""},
        {"name": f"{name}: max |PIT paths - exact|", "value": float((a["pit"] - b["pit"]).abs().max()),
         "unit": ""},
        {"name": f"{name}: mean CRPS paths - exact", "value": float((a["crps"] - b["crps"]).mean()),
         "unit": "%"},
    ]
    for tag in ("1", "2.5", "5"):
        rows.append({"name": f"{name}: max |VaR {tag}% paths / exact - 1|",
                     "value": float((a[f"var_{tag}"] / b[f"var_{tag}"] - 1).abs().max()), "unit": ""})
        rows.append({"name": f"{name}: max |ES {tag}% paths / exact - 1|",
                     "value": float((a[f"es_{tag}"] / b[f"es_{tag}"] - 1).abs().max()), "unit": ""})
    return rows


def main() -> None:
    r = finar.returns(finar.load(P1.dataset)[P1.column])
    rows, n_days = classical_rows(r)
    for name, make in NEURAL.items():
        rows += neural_rows(r, name, make)
    for row in rows:
        print(f"{row['name']:70s} {row['value']:.4g} {row['unit']}")
    write_results("backtest_speed", "P1-speed", rows, columns=["name", "value", "unit"],
                  extra={"test_days": n_days, "model": "GARCH(1,1) Student-t", "refit_every": 1,
                         "neural": list(NEURAL), "neural_paths_per_day": P1.crps_draws},
                  notes="Neural rows: P1 one-step backtests fitted once on the data before 2015; 'before' "
                        "draws 1,000 one-step sample paths a day (one_step='paths'), 'after' scores from "
                        "the head's exact predictive distribution (no paths). Differences of PIT, VaR, ES "
                        "and CRPS are the Monte Carlo error of 1,000 paths.")


if __name__ == "__main__":
    main()
