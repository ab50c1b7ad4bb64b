"""P5 ("ticks-realism"): TickModel against four classical tick models, on simulated and real trades.

Two streams (PROTOCOLS.md P5, settings from :data:`finar.protocols.P5`): the reference simulator's
200,000 trades, and 500,000 real E-mini S&P 500 futures trades fetched at run time
(:func:`finar.ticks.emini_trades`; provenance in :data:`finar.ticks.emini.EMINI_PROVENANCE`,
never committed; no side column, so sides come from the tick rule). Each stream is split in
time order: fit on the first 70%, score and compare on the last 30%:

- held-out log-likelihood per trade, in the shared units of :mod:`finar.ticks.events` (nats per
  trade; a zero gap a probability, a positive gap a density per second, price changes per tick,
  sizes per unit);
- as many generated trades as the held-out part, compared with it by the realism metrics of
  :func:`finar.ticks.realism` (17 distances, lower is better);
- a **real-vs-real row**: the first and second halves of the held-out part compared by the same
  metrics, the noise floor every metric is read against; a model's distance at or below the
  floor is marked uninformative (the metric cannot tell that model from real data);
- a second real row, **the end of training**: the training span's last trades (as many as held out)
  compared with the held-out part, i.e. what a model that reproduced the end of its training data
  exactly would score; a market that changes between the fitted hours and the held-out ones (the
  E-mini afternoon) separates them by itself;
- every model generates ``GEN_SEEDS`` streams (seeds ``seed + 1``, ...): one stream's AUROC and lag-1
  autocorrelation move by about 0.03 and 0.02 from seed to seed, as much as the bars' margins, so
  the rows are the means over the streams (with the lowest and highest AUROC and lag-1 beside
  them, the per-stream figures in the JSON), and the bars are checked on the means;
- what the discriminator tells TickModel's trades apart by
  (:func:`finar.ticks.stylized.discriminator_features`).

Rows: TickModel (finar), TickModel x3 (finar: an equal-weight mixture, event by event, of the
networks of seeds ``seed``, ``seed + 1`` and ``seed + 2``, ``TickModel(members=3)``), exponential
Hawkes, ACD(1,1) and seasonal Poisson with i.i.d. marks, and exponential Hawkes with Markov marks
(:class:`finar.ticks.markov.MarkovHawkes`). The mixture's size was chosen on the training span
only: fitted on the first 80% of the E-mini training trades, generating the last 20%, over two
training seeds and three generation seeds (the held-out 30% not read). The acceptance bars are
checked for each finar row. Then the
generation of 1,000,000 trades by the simulator's TickModel is timed (``tick_generation_speed``).

    python benchmarks/p5_ticks.py                     # simulator and E-mini (downloads the wheel once)
    python benchmarks/p5_ticks.py --streams simulator # no network
    python benchmarks/p5_ticks.py --files my_trades.csv   # plus a trades file of one's own
    python benchmarks/p5_ticks.py --streams emini --merge # rerun one stream, keep the other's rows
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_results

import finar
from finar import ticks
from finar.protocols import P5
from finar.ticks.emini import EMINI_PROVENANCE
from finar.ticks.markov import MarkovHawkes
from finar.ticks.stylized import discriminator_features, real_vs_real, uninformative

FLOOR = "real vs real"
#: the real reference row: the training span's last trades against the held-out ones
BEFORE = "real, end of training"
#: networks of TickModel's mixture row (chosen on the training span: see the module docstring)
MEMBERS = 3
MIXTURE = f"TickModel x{MEMBERS}"
#: generated streams per model (seeds seed + 1, ...); distances and headline values are their means
GEN_SEEDS = 3


def _tick_model(epochs: int | None, seed: int, members: int = 1) -> ticks.TickModel:
    return ticks.TickModel(members=members,
                           train={"seed": seed} if epochs is None else {"max_epochs": epochs, "seed": seed})


MODELS: dict[str, tuple[str, Any]] = {
    "TickModel": ("finar", _tick_model),
    MIXTURE: ("finar", lambda epochs, seed: _tick_model(epochs, seed, MEMBERS)),
    "Hawkes": ("reference", lambda epochs, seed: ticks.Hawkes()),
    "ACD(1,1)": ("reference", lambda epochs, seed: ticks.ACD()),
    "SeasonalPoisson": ("reference", lambda epochs, seed: ticks.SeasonalPoisson()),
    "MarkovHawkes": ("reference", lambda epochs, seed: MarkovHawkes()),
}
METRICS = ["zero_gap_share", "log_gap_w1", "log_gap_tv", "dp_w1", "dp_tv", "log_size_w1", "log_size_tv",
           "bar_return_w1", "bar_return_tv", "dp_acf1", "gap_cv", "signature", "sign_acf_exponent",
           "intraday_tv", "bar_kurtosis", "size1_share", "discriminator_auroc"]
HEADLINE = ["data", "model", "kind", "loglik_per_event", "auroc", "auroc_range", "zero_gap_share_synth",
            "zero_gap_share_real", "dp_acf1_synth", "dp_acf1_range", "dp_acf1_real", "bar_kurtosis_synth",
            "bar_kurtosis_real", "closer_than_hawkes", "closer_than_markov", "n_uninformative", "fit_seconds"]


def values(rep: ticks.RealismReport) -> dict[str, float]:
    """The headline values of a realism report: generated (``_synth``) beside real (``_real``)."""
    m, out = rep.metrics, {}
    for key in ("zero_gap_share", "dp_acf1", "bar_kurtosis"):
        out[f"{key}_synth"], out[f"{key}_real"] = m.loc[key, "synthetic"], m.loc[key, "real"]
    out["auroc"] = m.loc["discriminator_auroc", "synthetic"]
    return {k: float(v) for k, v in out.items()}


def run_stream(name: str, trades: pd.DataFrame, args: argparse.Namespace) -> tuple[list[dict], dict, Any]:
    """Rows of one stream (the real-vs-real floor, then every model), curves, the fitted TickModel."""
    cut = int(P5.train_fraction * len(trades))
    train, test = trades.iloc[:cut], trades.iloc[cut:]
    tick = ticks.infer_tick_size(train["price"].to_numpy())
    sid = ticks.session_ids(test.index)
    span = pd.Series(test.index.as_unit("ns").asi8).groupby(sid).agg(lambda v: (v.max() - v.min()) / 1e9)
    scale = {"tick_size": tick, "session_length": float(max(span.median(), 1.0)), "seed": args.seed}
    floor = real_vs_real(test, **scale)
    rows = [{"data": name, "model": FLOOR, "kind": "floor", **floor.distances(), **values(floor),
             "n_train": len(train), "n_test": len(test)}]
    # the training span's last trades, as many as held out, against the held-out part: what a model
    # that reproduced the end of its training data exactly would score (a market that changes from
    # the fitted hours to the held-out ones separates them by itself)
    before = ticks.realism(test, train.iloc[-len(test):], **scale)
    rows.append({"data": name, "model": BEFORE, "kind": "floor", **before.distances(), **values(before),
                 "n_train": len(train), "n_test": len(test)})
    print(f"{name}: {len(train)} trades to fit, {len(test)} held out; floor AUROC {rows[0]['auroc']:.3f}, "
          f"end of training against held out {rows[1]['auroc']:.3f}", flush=True)
    extra: dict[str, Any] = {"curves": {}, "importance": {}}
    tick_model = None
    for model_name, (kind, make) in MODELS.items():
        if model_name not in args.models:
            continue
        model = make(args.epochs, args.seed)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        lp = model.log_prob(test).mean()
        # several generated streams (seeds seed + 1, seed + 2, ...): one stream's AUROC and lag-1 move
        # by about 0.01-0.03 from seed to seed, as much as the bars' margins
        by_seed, sample_s = [], []
        for j in range(args.gen_seeds):
            t0 = time.perf_counter()
            synth = model.sample(n_events=len(test), seed=args.seed + 1 + j)
            sample_s.append(time.perf_counter() - t0)
            rep = ticks.realism(test, synth, **scale)
            by_seed.append({"gen_seed": args.seed + 1 + j, **rep.distances(), **values(rep)})
            if j == 0:  # curves and the discriminator's features: the first stream
                extra["curves"][model_name] = {k: rep.curves[k].to_dict(orient="list")
                                               for k in ("signature", "intraday")}
                if kind == "finar" and args.importance:
                    imp = discriminator_features(test, synth, tick_size=tick, seed=args.seed)
                    extra["importance"][model_name] = imp.reset_index().to_dict(orient="records")
                    print(imp.round(3).to_string(), flush=True)
        mean = pd.DataFrame(by_seed).drop(columns="gen_seed").mean().to_dict()
        rows.append({"data": name, "model": model_name, "kind": kind, "loglik_per_event": lp["total"],
                     "ll_time": lp["time"], "ll_side": lp["side"], "ll_dp": lp["dp"], "ll_size": lp["size"],
                     **mean, "auroc_range": _range(by_seed, "auroc"),
                     "dp_acf1_range": _range(by_seed, "dp_acf1_synth"),
                     "by_seed": by_seed, "fit_seconds": fit_s, "sample_seconds": float(np.mean(sample_s)),
                     "n_train": len(train), "n_test": len(test)})
        if model_name == "TickModel":
            tick_model = model
        print(f"{name} {model_name}: loglik/trade {lp['total']:.4f}, AUROC {rows[-1]['auroc']:.3f}, zero-gap "
              f"{rows[-1]['zero_gap_share_synth']:.3f} (real {rows[-1]['zero_gap_share_real']:.3f}), lag-1 "
              f"{rows[-1]['dp_acf1_synth']:.3f} (real {rows[-1]['dp_acf1_real']:.3f}); fit {fit_s:.0f}s, "
              f"sample {np.mean(sample_s):.0f}s per stream ({args.gen_seeds})", flush=True)
    compare(rows)
    return rows, extra, tick_model


def _range(by_seed: list[dict], key: str) -> str:
    """``min-max`` of ``key`` over the generated streams."""
    v = [r[key] for r in by_seed]
    return f"{min(v):.3f} to {max(v):.3f}"


def compare(rows: list[dict]) -> None:
    """Add to every model row: on how many metrics it is closer than Hawkes and than MarkovHawkes
    (``k/17``), and which of its distances are within the real-vs-real floor."""
    floor = rows[0]
    models = {r["model"]: r for r in rows[1:] if r["kind"] != "floor"}
    dist = pd.DataFrame([{k: r[k] for k in METRICS} for r in models.values()], index=list(models))
    flags = uninformative(dist, {k: floor[k] for k in METRICS})
    for name, row in models.items():
        for other, key in (("Hawkes", "closer_than_hawkes"), ("MarkovHawkes", "closer_than_markov")):
            if other in models and other != name:
                row[key] = f"{sum(row[k] < models[other][k] for k in METRICS)}/{len(METRICS)}"
        for other in models:
            if other != name:
                row[f"wins_vs_{other}"] = int(sum(row[k] < models[other][k] for k in METRICS))
        if "Hawkes" in models and name != "Hawkes":  # stream j against Hawkes's stream j
            row["wins_vs_Hawkes_by_seed"] = [int(sum(a[k] < b[k] for k in METRICS)) for a, b in
                                             zip(row["by_seed"], models["Hawkes"]["by_seed"], strict=True)]
        row["uninformative"] = [k for k in METRICS if flags.loc[name, k]]
        row["n_uninformative"] = len(row["uninformative"])


def verdict(rows: list[dict], model: str = "TickModel") -> dict[str, Any]:
    """PROTOCOLS.md P5's bars for one of finar's rows (``model``) on one stream; its log-likelihood
    is compared with the reference rows'."""
    by = {r["model"]: r for r in rows}
    if model not in by:
        return {}
    tm = by[model]
    others = [r for r in rows[1:] if r["kind"] == "reference"]
    return {"auroc": tm["auroc"], "auroc_within_bar": bool(tm["auroc"] <= P5.auroc_bar),
            "auroc_within_goal": bool(tm["auroc"] <= P5.auroc_goal),
            "zero_gap_within_3pp": bool(abs(tm["zero_gap_share_synth"] - tm["zero_gap_share_real"])
                                        <= P5.zero_gap_tolerance),
            "dp_acf1_within_0.05": bool(abs(tm["dp_acf1_synth"] - tm["dp_acf1_real"])
                                        <= P5.dp_acf1_tolerance),
            "wins_vs_Hawkes": tm.get("wins_vs_Hawkes"),
            "wins_vs_Hawkes_at_least_13": bool(tm.get("wins_vs_Hawkes", 0) >= P5.min_wins_vs_hawkes),
            "best_loglik": bool(all(tm["loglik_per_event"] > r["loglik_per_event"] for r in others)),
            "generated_streams": len(tm["by_seed"]),
            "auroc_by_seed": [round(r["auroc"], 4) for r in tm["by_seed"]],
            "dp_acf1_by_seed": [round(r["dp_acf1_synth"], 4) for r in tm["by_seed"]],
            "zero_gap_by_seed": [round(r["zero_gap_share_synth"], 4) for r in tm["by_seed"]],
            "wins_vs_Hawkes_by_seed": tm.get("wins_vs_Hawkes_by_seed")}


def distance_table(rows: list[dict]) -> str:
    """Markdown: the 17 distances of every row, ``*`` where a model is within the real-vs-real floor."""
    head = "| data | model | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for r in rows:
        cells = [f"{r[k]:.4f}" + ("*" if k in r.get("uninformative", ()) else "") for k in METRICS]
        lines.append(f"| {r['data']} | {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_notes(rows: list[dict], sources: dict[str, str], verdicts: dict, gen_seeds: int,
                  seed: int) -> str:
    """The notes under the results table: protocol, data, units, the real rows, the distances."""
    return ("Fit on the first 70% of each stream in time order, scored and compared on the last 30%. "
            f"Data: {'; '.join(f'{k}: {v}' for k, v in sources.items())}. "
            "loglik_per_event: mean held-out log p(e_i | e_<i) in nats per trade (higher is better); units: "
            "a shared timestamp is a probability, a positive gap a density per second, price changes a "
            f"probability per tick, sizes per unit. Every model generates {gen_seeds} streams as long as "
            f"the held-out part (seeds {seed + 1} to {seed + gen_seeds}); "
            "its realism figures are their means, with the lowest and highest stream's AUROC and lag-1 "
            "autocorrelation beside them (each stream's figures in the JSON, by_seed). The 'real vs real' "
            "row compares the first and second halves of the held-out part by the same metrics: the noise "
            "floor. The 'real, end of training' row compares the training span's last trades (as many as "
            "held out) with the held-out part: what a model that reproduced the end of its training data "
            "exactly would score. closer_than_X: on how many of the 17 realism metrics the row's mean "
            "distance is lower than X's. auroc: the discriminator's (0.5: indistinguishable).\n\n"
            "Realism distances (lower is better; zero_gap_share, dp_acf1, size1_share absolute "
            "differences, gap_cv and bar_kurtosis relative ones, discriminator_auroc |AUROC - 0.5|); "
            "`*`: within the real-vs-real floor, i.e. uninformative for that model:\n\n"
            + distance_table(rows) + f"\n\nAcceptance (PROTOCOLS.md P5, TickModel): {verdicts}")


def speed(model: ticks.TickModel, n_events: int) -> list[dict]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    synth = model.sample(n_events=n_events, seed=123)
    seconds = time.perf_counter() - t0
    rows = [{"name": f"{len(synth):,} trades, 1 torch thread", "value": seconds, "unit": "s"},
            {"name": "trades per second, 1 torch thread", "value": len(synth) / seconds, "unit": "trades/s"}]
    print(rows, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", nargs="+", default=["simulator", "emini"],
                        choices=["simulator", "emini"])
    parser.add_argument("--files", nargs="*", default=[], help="more trades files (CSV or Parquet)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--n-events", type=int, default=P5.n_events, help="trades of the simulator stream")
    parser.add_argument("--epochs", type=int, default=None,
                        help="TickModel's max_epochs (default: the model's own, "
                             f"{ticks.TickModel.default_train.max_epochs})")
    parser.add_argument("--threads", type=int, default=P5.threads, help="torch threads")
    parser.add_argument("--speed-events", type=int, default=P5.speed_events, help="0 skips the speed test")
    parser.add_argument("--cache-dir", default="data/cache", help="where the E-mini wheel is kept")
    parser.add_argument("--no-importance", dest="importance", action="store_false",
                        help="skip the discriminator's feature importances")
    parser.add_argument("--seed", type=int, default=P5.seed)
    parser.add_argument("--gen-seeds", type=int, default=GEN_SEEDS,
                        help="generated streams per model (seeds seed + 1, ...); the rows are their means")
    parser.add_argument("--name", default="p5_ticks", help="results file name")
    parser.add_argument("--merge", action="store_true",
                        help="keep the recorded streams of results/<name>.json that this run does not run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    streams, sources = [], {}
    if "simulator" in args.streams:
        streams.append(("simulator", ticks.simulate(n_events=args.n_events, seed=args.seed)))
        sources["simulator"] = f"finar.ticks.simulate(n_events={args.n_events}, seed={args.seed})"
    if "emini" in args.streams:
        print(f"E-mini data: {EMINI_PROVENANCE}", flush=True)
        trades, report = ticks.emini_trades(cache_dir=args.cache_dir)
        print(report.to_string(index=False), flush=True)
        streams.append(("emini", trades))
        sources["emini"] = EMINI_PROVENANCE + "; sides by the tick rule (the file has none)"
    for f in args.files:
        trades, report = ticks.read_trades(f)
        print(report.to_string(index=False), flush=True)
        streams.append((Path(f).name, trades))
        sources[Path(f).name] = str(f)
    rows, extra, verdicts, fitted = [], {}, {}, {}
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    for name, trades in streams:
        r, e, fitted[name] = run_stream(name, trades, args)
        rows += r
        extra[name] = {**e, "command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        verdicts[name] = {x["model"]: verdict(r, x["model"]) for x in r if x["kind"] == "finar"}
        print(name, verdicts[name], flush=True)
    if args.merge:  # the recorded streams not run now stay as they were
        recorded = json.loads((RESULTS / f"{args.name}.json").read_text(encoding="utf-8"))
        for name, e in recorded["streams"].items():
            if name not in extra:
                rows = [r for r in recorded["rows"] if r["data"] == name] + rows
                extra = {name: e, **extra}
                verdicts = {name: recorded["acceptance"][name], **verdicts}
                sources = {name: recorded["sources"][name], **sources}
    notes = results_notes(rows, sources, verdicts, args.gen_seeds, args.seed)
    write_results(args.name, "P5", rows, columns=HEADLINE,
                  extra={"acceptance": verdicts, "streams": extra, "sources": sources,
                         "epochs": args.epochs or ticks.TickModel.default_train.max_epochs,
                         "threads": args.threads, "metrics": METRICS}, notes=notes)
    if args.speed_events and fitted.get("simulator") is not None:
        write_results("tick_generation_speed", "speed", speed(fitted["simulator"], args.speed_events),
                      columns=["name", "value", "unit"],
                      notes="TickModel fitted on the simulator stream's first 70%: the rest of its last "
                            "session, then whole sessions from their open, one stream per session (a "
                            "session is drawn trade by trade from the model, so its trades run in "
                            "sequence). The machine is shared: rerun when it is quiet (load average at "
                            f"the end: {_load()}).")
    print(finar.__version__)


def _load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
