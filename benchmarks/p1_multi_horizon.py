"""P1 at longer horizons: calibration of the 5-, 20- and 60-day cumulative return, 2015-2018.

The data, test period and fitting of P1 (S&P 500 % log returns; classical models refit every 20
test days on an expanding window, networks fitted once on the data before 2015), but each test
day forecasts the sum of the next ``h`` daily returns from ``N_PATHS`` simulated paths
(``finar.backtest(horizon=h)``). Per model and horizon: the CRPS of the ``h``-day return (from the
paths, lower is better), the PIT coverage of the central 50% and 90% intervals (the share of
realised sums inside them: 0.50 and 0.90 when calibrated), the 1% and 5% VaR hit rates, and the
mean PIT. Overlapping ``h``-day sums are serially dependent, so hit rates carry wide error bars;
no test is claimed from them. The networks' tail floors are the values P3 chose on its window
(``benchmarks/results/p3_tails.json``), and the defaults beside them.

    python benchmarks/p1_multi_horizon.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results
from p3_sp500_facts import chosen_floors

import finar
from finar.protocols import P1

HORIZONS = (5, 20, 60)
N_PATHS = 200
SEED = 0


def models() -> dict[str, tuple[finar.models.Forecaster, int | None]]:
    chosen = chosen_floors()
    out: dict[str, tuple[finar.models.Forecaster, int | None]] = {
        "GARCH(1,1) Student-t": (finar.models.GARCH(dist="t"), P1.refit_every),
        "GJR-GARCH(1,1,1) skew-t": (finar.models.GARCH(vol="gjr", dist="skewt"), P1.refit_every),
        "WaveNet t-mixture": (finar.models.WaveNet(), None),
        "Transformer t-mixture": (finar.models.Transformer(), None),
    }
    networks = {"WaveNet t-mixture": finar.models.WaveNet, "Transformer t-mixture": finar.models.Transformer}
    for name, cls in networks.items():
        if name in chosen:
            out[f"{name}, df >= {chosen[name]:g}"] = (cls(min_df=chosen[name]), None)
    return out


def main() -> None:
    y = finar.returns(finar.load("sp500")["adj_close"])
    rows = []
    for name, (model, refit) in models().items():
        for h in HORIZONS:
            t0 = time.perf_counter()
            res = finar.backtest(model, y, P1.test_start, P1.test_end, horizon=h, refit_every=refit,
                                 levels=(0.01, 0.05), n_paths=N_PATHS, seed=SEED, progress=False,
                                 check_causality=False, name=name)
            d = res.daily
            pit = d["pit"].to_numpy()
            rows.append({"model": name, "horizon": h, "crps": float(d["crps"].mean()),
                         "cover_50": float(np.mean((pit > 0.25) & (pit < 0.75))),
                         "cover_90": float(np.mean((pit > 0.05) & (pit < 0.95))),
                         "hit_1": float(d["hit_1"].mean()), "hit_5": float(d["hit_5"].mean()),
                         "mean_pit": float(pit.mean()), "n_days": len(d),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(f"{name} h={h}: crps {rows[-1]['crps']:.4f} cover90 {rows[-1]['cover_90']:.3f} "
                  f"({rows[-1]['seconds']} s)", flush=True)
    table = pd.DataFrame(rows)
    base = table[table.model == "GARCH(1,1) Student-t"].set_index("horizon")["crps"]
    table["crps_vs_garch_t"] = table["crps"] - table["horizon"].map(base)
    write_results("p1_multi_horizon", "P1", table.to_dict("records"),
                  columns=["model", "horizon", "crps", "crps_vs_garch_t", "cover_50", "cover_90", "hit_1",
                           "hit_5", "mean_pit", "n_days"],
                  extra={"test_period": [P1.test_start, P1.test_end], "horizons": list(HORIZONS),
                         "n_paths": N_PATHS, "seed": SEED, "tail_floors_from_p3": chosen_floors()},
                  notes=(f"CRPS of the h-day cumulative % log return from {N_PATHS} paths a day (lower is "
                         "better; crps_vs_garch_t < 0 beats GARCH(1,1)-t); cover_50 / cover_90: share of "
                         "realised sums inside the central 50% / 90% interval; hit_1 / hit_5: share below "
                         "the 1% / 5% VaR. Overlapping sums: hit rates and coverages are serially "
                         "dependent."))


if __name__ == "__main__":
    main()
