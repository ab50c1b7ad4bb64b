"""P5 ("ticks-realism"): TickModel vs Hawkes, ACD and seasonal Poisson on held-out trades.

For each stream (the reference simulator's, and every trades file named on the command line):
fit on the first 70% of the trades, score the last 30% (held-out log-likelihood per event, in
the shared units of :mod:`finar.ticks.events`: nats per trade, a zero gap as a probability, a
positive gap as a density per second, price changes per tick, sizes per unit), generate as many
trades as the held-out part and compare them with it (:func:`finar.ticks.realism`). Then time
the generation of 1,000,000 trades by the fitted TickModel (``tick_generation_speed``).

    python benchmarks/p5_ticks.py                      # the simulator's 200,000 trades
    python benchmarks/p5_ticks.py path/to/trades.csv   # plus a file of trades (time, price, size[, side])
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import write_results

import finar
from finar import ticks

MODELS = {"TickModel": ("finar", ticks.TickModel), "Hawkes": ("reference", ticks.Hawkes),
          "ACD(1,1)": ("reference", ticks.ACD), "SeasonalPoisson": ("reference", ticks.SeasonalPoisson)}
BASELINES = ("Hawkes", "SeasonalPoisson")


def run_stream(name: str, trades, epochs: int, seed: int) -> tuple[list[dict], dict, ticks.TickModel]:
    cut = int(0.7 * len(trades))
    train, test = trades.iloc[:cut], trades.iloc[cut:]
    rows, curves, tick_model = [], {}, None
    for model_name, (kind, cls) in MODELS.items():
        model = cls(max_epochs=epochs, seed=seed) if cls is ticks.TickModel else cls()
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        if cls is ticks.TickModel:
            tick_model = model
        lp = model.log_prob(test).mean()
        t0 = time.perf_counter()
        synth = model.sample(n_events=len(test), seed=seed + 1)
        sample_s = time.perf_counter() - t0
        rep = ticks.realism(test, synth, seed=seed)
        m = rep.metrics
        row = {"data": name, "model": model_name, "kind": kind, "loglik_per_event": lp["total"],
               "ll_time": lp["time"], "ll_side": lp["side"], "ll_dp": lp["dp"], "ll_size": lp["size"],
               **{k: v for k, v in rep.distances().items()},
               "zero_gap_share_synth": m.loc["zero_gap_share", "synthetic"],
               "zero_gap_share_real": m.loc["zero_gap_share", "real"],
               "dp_acf1_synth": m.loc["dp_acf1", "synthetic"], "dp_acf1_real": m.loc["dp_acf1", "real"],
               "auroc": m.loc["discriminator_auroc", "synthetic"],
               "fit_seconds": fit_s, "sample_seconds": sample_s, "n_train": len(train), "n_test": len(test)}
        rows.append(row)
        curves[model_name] = {k: rep.curves[k].to_dict(orient="list") for k in ("signature", "intraday")}
        curves["metrics"] = list(m.index)
        print(f"{name} {model_name}: loglik/event {lp['total']:.4f} (fit {fit_s:.0f}s)", flush=True)
    return rows, curves, tick_model


def verdict(rows: list[dict], metrics: list[str]) -> dict:
    """Acceptance checks of issue 7 for one stream's rows."""
    by = {r["model"]: r for r in rows}
    tm = by["TickModel"]
    out: dict = {"realism_metrics": len(metrics)}
    for b in BASELINES:
        out[f"beats_{b}_loglik"] = bool(tm["loglik_per_event"] > by[b]["loglik_per_event"])
        out[f"wins_vs_{b}"] = int(sum(tm[k] < by[b][k] for k in metrics))
    out["zero_gap_within_3pp"] = bool(abs(tm["zero_gap_share_synth"] - tm["zero_gap_share_real"]) <= 0.03)
    out["dp_acf1_within_0.05"] = bool(abs(tm["dp_acf1_synth"] - tm["dp_acf1_real"]) <= 0.05)
    return out


def speed(model: ticks.TickModel, n_events: int, thread_counts: list[int]) -> list[dict]:
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        synth = model.sample(n_events=n_events, seed=123)
        seconds = time.perf_counter() - t0
        rows += [{"name": f"{len(synth):,} trades, {threads} torch thread(s)", "value": seconds, "unit": "s"},
                 {"name": f"trades per second, {threads} torch thread(s)", "value": len(synth) / seconds,
                  "unit": "trades/s"}]
        print(rows[-2], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="trades files (CSV or Parquet)")
    parser.add_argument("--n-events", type=int, default=200_000, help="trades of the simulator stream")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while fitting and scoring")
    parser.add_argument("--speed-events", type=int, default=1_000_000, help="0 skips the speed test")
    parser.add_argument("--speed-threads", type=int, nargs="+", default=[1],
                        help="torch thread counts to time generation with (on a busy machine 2 threads "
                             "spin-wait and run many times slower than 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    streams = [("simulator", ticks.simulate(n_events=args.n_events, seed=args.seed))]
    for f in args.files:
        trades, report = ticks.read_trades(f)
        print(report.to_string(index=False))
        streams.append((Path(f).name, trades))
    rows, curves, verdicts, model = [], {}, {}, None
    for name, trades in streams:
        r, c, m = run_stream(name, trades, args.epochs, args.seed)
        rows += r
        curves[name] = c
        verdicts[name] = verdict(r, c.pop("metrics"))
        model = model or m
        print(name, verdicts[name], flush=True)
    metric_cols = ["zero_gap_share", "log_gap_w1", "log_gap_tv", "dp_w1", "dp_tv", "log_size_w1",
                   "log_size_tv",
                   "bar_return_w1", "bar_return_tv", "dp_acf1", "gap_cv", "signature", "sign_acf_exponent",
                   "intraday_tv", "bar_kurtosis", "size1_share", "discriminator_auroc"]
    write_results("p5_ticks", "P5", rows, columns=[
        "data", "model", "kind", "loglik_per_event", "ll_time", "ll_side", "ll_dp", "ll_size", *metric_cols,
        "zero_gap_share_synth", "zero_gap_share_real", "dp_acf1_synth", "dp_acf1_real", "fit_seconds"],
        extra={"acceptance": verdicts, "curves": curves, "epochs": args.epochs, "threads": args.threads},
        notes="Fit on the first 70% of each stream, scored and compared on the last 30%. "
              "loglik_per_event: mean held-out log p(e_i | e_<i) in nats per trade (higher is better; "
              "ll_* its time/side/price-change/size terms); units: a shared timestamp is a probability, a "
              "positive gap a density per second, price changes a probability per tick, sizes per unit. "
              "Realism columns are distances between generated and held-out trades (lower is better; "
              "zero_gap_share and dp_acf1 absolute differences, discriminator_auroc |AUROC - 0.5|). "
              f"Acceptance: {verdicts}")
    if args.speed_events and model is not None:
        srows = speed(model, args.speed_events, args.speed_threads)
        write_results("tick_generation_speed", "speed", srows, columns=["name", "value", "unit"],
                      notes="TickModel fitted on the simulator stream; batched generation (parallel session "
                            "segments, WaveNet cached steps). The machine is shared: rerun when it is quiet "
                            f"(load average at the end: {_load()}).")
    print(finar.__version__)


def _load() -> str:
    try:
        import os

        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
