"""Scale-out: the 20-stock panel backtest serially, on 2 joblib workers and on a local Ray of 2 workers.

Per stock of the bundled ``sp500-stocks`` panel (the index column left out), returns from
2008: GARCH(1,1)-t refitted every day over the last quarter of 2018 (one task per stock and
day), and a small WaveNet fitted once on the data before the test span (one task per stock),
both through :func:`finar.evaluation.backtesting.backtest_panel`. Wall time per executor (Ray's
start-up reported apart), and whether every stock's daily table equals the serial one exactly.

    python benchmarks/scaleout_panel.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

import finar
from finar.evaluation.backtesting import backtest_panel
from finar.executors import JoblibExecutor

DATA, TEST = "2008-01-01", ("2018-10-01", "2018-12-31")
WORKERS = 2


def models() -> dict[str, tuple[finar.models.Forecaster, int | None]]:
    wavenet = finar.models.WaveNet(residual_channels=16, gate_channels=16, skip_channels=16,
                                   layers_per_cycle=4, window=32, batch_size=64, max_epochs=10, patience=3,
                                   seed=0)
    return {"GARCH(1,1)-t, daily refit": (finar.models.GARCH(dist="t"), 1),
            "WaveNet, fitted once": (wavenet, None)}


def max_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    num = [c for c in a.columns if a[c].dtype.kind in "fi"]
    return float(np.nanmax(np.abs(a[num].to_numpy(dtype=float) - b[num].to_numpy(dtype=float))))


def identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


def main() -> None:
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    import ray

    px = finar.load("sp500-stocks").drop(columns=["SP500"]).loc[DATA:TEST[1]]
    r = finar.returns(px)
    t0 = time.perf_counter()
    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    executors = {"serial": "serial", f"joblib, {WORKERS} workers": JoblibExecutor(WORKERS),
                 f"Ray (local), {WORKERS} workers": "ray"}
    rows, reference, tasks = [], {}, {}
    for model_name, (model, refit) in models().items():
        for ex_name, executor in executors.items():
            t0 = time.perf_counter()
            out = backtest_panel(model, r, start=TEST[0], end=TEST[1], refit_every=refit, n_paths=500,
                                 executor=executor, progress=False)
            seconds = time.perf_counter() - t0
            if ex_name == "serial":
                reference[model_name] = out
                tasks[model_name] = sum(bt.daily["fit_date"].nunique() for bt in out.values())
            ref = reference[model_name]
            same = all(identical(out[a].daily, ref[a].daily) for a in ref)
            diff = max(max_diff(out[a].daily, ref[a].daily) for a in ref)
            serial_s = next((row["wall_s"] for row in rows if row["model"] == model_name
                             and row["executor"] == "serial"), seconds)
            rows.append({"model": model_name, "executor": ex_name, "tasks": tasks[model_name],
                         "wall_s": seconds, "speedup": serial_s / seconds, "identical_to_serial": same,
                         "max_abs_diff": diff})
            print(f"{model_name:28s} {ex_name:24s} {seconds:8.1f} s  identical={same} max diff {diff:.3g}",
                  flush=True)
    per_model = list(rows)
    serial_total = sum(row["wall_s"] for row in per_model if row["executor"] == "serial")
    for ex_name in executors:
        total = sum(row["wall_s"] for row in per_model if row["executor"] == ex_name)
        rows.append({"model": "both", "executor": ex_name, "tasks": sum(tasks.values()), "wall_s": total,
                     "speedup": serial_total / total,
                     "identical_to_serial": all(row["identical_to_serial"] for row in per_model
                                                if row["executor"] == ex_name)})
    ray.shutdown()
    load = os.getloadavg()[0]
    write_results("scaleout_panel", "scale-out", rows, columns=[
        "model", "executor", "tasks", "wall_s", "speedup", "identical_to_serial", "max_abs_diff"],
        extra={"stocks": list(r.columns), "data_start": DATA, "test": list(TEST), "ray_start_s": ray_start,
               "load_average_1min_at_end": load},
        notes=f"Wall seconds of `backtest_panel` over {r.shape[1]} stocks, {TEST[0]} .. {TEST[1]}; Ray's "
              f"start-up ({ray_start:.1f} s) is not included. identical_to_serial: every stock's daily table "
              f"equals the serial one bit for bit. The machine is shared: 1-minute load average {load:.1f} "
              f"on {os.cpu_count()} cores at the end, so speed-ups are below what idle cores give.")


if __name__ == "__main__":
    main()
