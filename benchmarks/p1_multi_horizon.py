"""P1 at longer horizons: calibration of the 5-, 20- and 60-day cumulative return, 2015-2018.

The data, test period and fitting of P1 (S&P 500 % log returns; classical models refit every 20
test days on an expanding window, networks fitted once on the data before 2015), but each test
day forecasts the sum of the next ``h`` daily returns from ``N_PATHS`` simulated paths
(``finar.backtest(horizon=h)``). Per model and horizon: the CRPS of the ``h``-day return (from the
paths, lower is better), the PIT coverage of the central 50% and 90% intervals (the share of
realised sums inside them: 0.50 and 0.90 when calibrated), the 1% and 5% VaR hit rates, and the
mean PIT. Overlapping ``h``-day sums are serially dependent, so hit rates carry wide error bars;
no test is claimed from them. The networks' tail floors are the values P3 chose on its window
(``benchmarks/results/p3_tails.json``; also for WaveNet with slow volatility states), the
defaults beside them, and the report's default neural forecaster
(:data:`finar.reporting.config.DEFAULT_NEURAL`: the Transformer pretrained on the bundled series
up to 2014, three seeds mixed, warm refits every 20 test days), whose refits make it the slowest
row. ``--only`` reruns some rows and keeps the others as recorded.

``--many`` runs the same on P1m's series (``p1_many_series.load_series``: WTI and the 20 stocks;
the S&P 500 is the P1 run above) for GARCH(1,1)-t, GJR skew-t and the report's two networks as
P1m runs them (seed 0, fitted once on the data before 2015), writing ``p1m_multi_horizon``: one
row per (series, model, horizon) and a summary per (model, horizon) over the series (median CRPS
change against GARCH-t, series where the model's CRPS is lower, mean coverages). Each backtest is
cached in ``--cache`` (JSON), so a long run resumes; what has not run is listed (``complete``
false, ``missing``), never filled in.

    python benchmarks/p1_multi_horizon.py [--only MODEL ...]
    OMP_NUM_THREADS=1 python benchmarks/p1_multi_horizon.py --many --cache /tmp/p1m-h
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results
from p1_many_series import load_series, slug
from p3_sp500_facts import NETWORKS, chosen_floors

import finar
from finar._io import atomic_write_text
from finar.errors import FinarError
from finar.protocols import P1, P1M
from finar.reporting.config import DEFAULT_MODELS, DEFAULT_NEURAL

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
    for name, cls in NETWORKS.items():  # WaveNet, the Transformer, WaveNet with volatility states
        if name in chosen:
            out[f"{name}, df >= {chosen[name]:g}"] = (cls(min_df=chosen[name]), None)
    spec = next(m for m in DEFAULT_MODELS if m.name == DEFAULT_NEURAL)
    out[DEFAULT_NEURAL] = (spec.create(), P1.refit_every)
    return out


def horizon_row(model: finar.models.Forecaster, y: pd.Series, h: int, refit: int | None, name: str,
                start: str, end: str) -> dict[str, Any]:
    """One ``backtest(horizon=h)``: CRPS, PIT coverages and VaR hits of the h-day sum."""
    t0 = time.perf_counter()
    res = finar.backtest(model, y, start, end, horizon=h, refit_every=refit, levels=(0.01, 0.05),
                         n_paths=N_PATHS, seed=SEED, progress=False, check_causality=False, name=name)
    d = res.daily
    pit = d["pit"].to_numpy()
    return {"model": name, "horizon": h, "crps": float(d["crps"].mean()),
            "cover_50": float(np.mean((pit > 0.25) & (pit < 0.75))),
            "cover_90": float(np.mean((pit > 0.05) & (pit < 0.95))),
            "hit_1": float(d["hit_1"].mean()), "hit_5": float(d["hit_5"].mean()),
            "mean_pit": float(pit.mean()), "n_days": len(d), "seconds": round(time.perf_counter() - t0, 1)}


def many_models() -> list[tuple[str, Any, int | None]]:
    """P1m's classical reference pair and the report's two networks, as P1m runs them."""
    return [("GARCH(1,1) Student-t", lambda: finar.models.GARCH(dist="t"), P1M.refit_every),
            ("GJR-GARCH(1,1,1) skew-t", lambda: finar.models.GARCH(vol="gjr", dist="skewt"), P1M.refit_every),
            ("WaveNet t-mixture, seed 0", lambda: finar.models.WaveNet(train={"seed": 0}), None),
            ("Transformer t-mixture, seed 0", lambda: finar.models.Transformer(train={"seed": 0}), None)]


def run_many(cache: Path, only: list[str] | None = None, reverse: bool = False) -> None:
    """P1m's series other than the S&P 500: one cached backtest per (series, model, horizon).

    ``only`` (model names) runs just those models' missing backtests, ``reverse`` takes the series
    from the last (a second process can work on the same cache); the results file is written from
    the whole cache, in the series' order."""
    cache.mkdir(parents=True, exist_ok=True)
    series = {k: v for k, v in load_series().items() if k != "SP500"}
    rows = []
    for name, make, refit in many_models():  # model by model, so a partial run has whole models
        for s in (reversed(series.values()) if reverse else series.values()):
            for h in HORIZONS:
                path = cache / f"{slug(s.name)}__{slug(name)}__h{h}__n{N_PATHS}.json"
                if path.is_file():
                    row = json.loads(path.read_text(encoding="utf-8"))
                elif only is not None and name not in only:
                    continue
                else:
                    try:
                        row = {"series": s.name, **horizon_row(make(), s.returns, h, refit, name,
                                                               P1M.test_start, P1M.test_end)}
                    except FinarError as e:  # recorded as a failure of the model on that series
                        row = {"series": s.name, "model": name, "horizon": h,
                               "error": f"{type(e).__name__}: {e}"}
                        print(f"{s.name} {name} h={h}: failed: {row['error']}", flush=True)
                    else:
                        print(f"{s.name} {name} h={h}: crps {row['crps']:.4f} cover90 {row['cover_90']:.3f} "
                              f"({row['seconds']} s)", flush=True)
                    atomic_write_text(path, json.dumps(row) + "\n", overwrite=True)
                rows.append(row)
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    table = pd.DataFrame(rows)
    base = table[table.model == "GARCH(1,1) Student-t"].set_index(["series", "horizon"])["crps"]
    table["crps_vs_garch_t"] = table["crps"] - [base.get((s, h), np.nan) for s, h in
                                                zip(table.series, table.horizon, strict=True)]
    summary = []
    for (name, h), g in table.groupby(["model", "horizon"], sort=False):
        d = g["crps_vs_garch_t"].dropna()
        below = None if name == "GARCH(1,1) Student-t" else int((d < 0).sum())
        summary.append({"model": name, "horizon": int(h), "n_series": len(g),
                        "median_crps_vs_garch_t": float(d.median()), "series_below_garch_t": below,
                        **{f"mean_{k}": float(g[k].mean()) for k in ("cover_50", "cover_90", "hit_1",
                                                                      "hit_5")}})
    expected = len(series) * len(HORIZONS) * len(many_models())
    missing = expected - len(rows) - len(failed)
    write_results("p1m_multi_horizon", "P1m", summary,
                  columns=["model", "horizon", "n_series", "median_crps_vs_garch_t", "series_below_garch_t",
                           "mean_cover_50", "mean_cover_90", "mean_hit_1", "mean_hit_5"],
                  extra={"test_period": [P1M.test_start, P1M.test_end], "horizons": list(HORIZONS),
                         "n_paths": N_PATHS, "seed": SEED, "series": list(series),
                         "complete": missing == 0, "missing": missing, "failed": failed,
                         "per_series": table.to_dict("records")},
                  notes=(f"P1m's series other than the S&P 500 (that is P1's run, p1_multi_horizon). One row "
                         f"per model and horizon over the series: the median CRPS change against "
                         f"GARCH(1,1)-t (< 0 better), on how many series the CRPS is lower, mean coverages "
                         f"and hit rates; the rows per series are in the JSON (per_series). "
                         f"CRPS of the h-day cumulative % log return from {N_PATHS} paths a day; classical "
                         f"models refitted every {P1M.refit_every} test days, networks fitted once on the "
                         f"data before {P1M.test_start[:4]}."))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many", action="store_true", help="P1m's series instead of P1's S&P 500")
    ap.add_argument("--cache", type=Path, default=Path("data/cache/p1m_multi_horizon"),
                    help="where --many keeps each backtest (resumable)")
    ap.add_argument("--models", nargs="*", default=None,
                    help="with --many: run only these models' missing backtests (none: only write results)")
    ap.add_argument("--reverse", action="store_true",
                    help="with --many: the series in reverse order (a second process meets the first)")
    ap.add_argument("--only", nargs="+", metavar="MODEL", default=None,
                    help="P1: run only these rows and keep the other rows of the recorded results")
    args = ap.parse_args(argv)
    if args.many:
        run_many(args.cache, args.models, args.reverse)
        return
    y = finar.returns(finar.load("sp500")["adj_close"])
    rows, kept = [], []
    chosen = models()
    if args.only is not None:  # these rows only; the recorded rows of the other models are kept
        unknown = set(args.only) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown models {sorted(unknown)}; choose from {list(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.only}
        recorded = Path(__file__).resolve().parent / "results" / "p1_multi_horizon.json"
        kept = [r for r in json.loads(recorded.read_text())["rows"] if r["model"] not in chosen]
    for name, (model, refit) in chosen.items():
        for h in HORIZONS:
            rows.append(horizon_row(model, y, h, refit, name, P1.test_start, P1.test_end))
            print(f"{name} h={h}: crps {rows[-1]['crps']:.4f} cover90 {rows[-1]['cover_90']:.3f} "
                  f"({rows[-1]['seconds']} s)", flush=True)
    table = pd.DataFrame(kept + rows)
    base = table[table.model == "GARCH(1,1) Student-t"].set_index("horizon")["crps"]
    table["crps_vs_garch_t"] = table["crps"] - table["horizon"].map(base)
    write_results("p1_multi_horizon", "P1", table.to_dict("records"),
                  columns=["model", "horizon", "crps", "crps_vs_garch_t", "cover_50", "cover_90", "hit_1",
                           "hit_5", "mean_pit", "n_days"],
                  extra={"test_period": [P1.test_start, P1.test_end], "horizons": list(HORIZONS),
                         "n_paths": N_PATHS, "seed": SEED, "tail_floors_from_p3": chosen_floors(),
                         "rows_kept_from_the_recorded_run": sorted({r["model"] for r in kept})},
                  notes=(f"CRPS of the h-day cumulative % log return from {N_PATHS} paths a day (lower is "
                         "better; crps_vs_garch_t < 0 beats GARCH(1,1)-t); cover_50 / cover_90: share of "
                         "realised sums inside the central 50% / 90% interval; hit_1 / hit_5: share below "
                         "the 1% / 5% VaR. Overlapping sums: hit rates and coverages are serially "
                         "dependent."))


if __name__ == "__main__":
    main()
