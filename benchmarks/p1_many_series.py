"""PROTOCOLS P1m ("many-series"): P1's one-step density forecasts on 22 series, one configuration per model.

Series: the S&P 500 of P1 (``sp500``, adjusted close, 1999-2018, with open/high/low), WTI crude
(``wti``, FRED's spot price from 1986) and each of the 20 stocks of ``sp500-stocks`` (adjusted
closes from 1990; its ``SP500`` column is left out, the S&P 500 being P1's series). Test days:
every trading day of 2015-01-01 .. 2018-12-31 of each series; training: all of the series'
history before 2015 (S&P 500 from 1999 as in P1, WTI from 1986, the stocks from 1990).

Models: the report's default set (:data:`finar.reporting.config.DEFAULT_MODELS`) unchanged, run
through ``finar.backtest`` as P1 runs them: the classical models refitted every 20 test days on
the expanding window, the networks (one seed each, as the report) fitted once on the data before
2015 and only conditioning on the growing context. GJR-X(range) reads the day's Parkinson range,
so it runs only where the series has high and low prices (the S&P 500); elsewhere its row says
"n/a: no high/low". Beside them, not report defaults: the same two networks refitted every 20
test days by warm starts (``CANDIDATES``; each refit fine-tunes the previous block's weights,
kept only if they lower the validation loss), the number of epochs chosen on 2011-2014 inside
the training span (:func:`warm_selection`). Per (series, model): the mean log score, the
Diebold-Mariano t and p (HLN, HAC variance) against GARCH(1,1)-t on the same days, 1% and 5% VaR
hit rates with Kupiec's p.
Per model over the series: wins against GARCH-t, significant wins and losses (DM p < 0.05) and
the median gain in nats/day.

Each (series, model) backtest is stored in ``--cache`` (daily scores as JSON), so a long run can
stop and resume; the results file lists what has not run (``complete: false``), never filling it.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/p1_many_series.py --cache /tmp/p1m/full
    python benchmarks/p1_many_series.py --quick --cache /tmp/p1m-quick     # smoke run
    python benchmarks/p1_many_series.py --series SP500 WTI AAPL --models "GARCH(1,1) Student-t"
    python benchmarks/p1_many_series.py --merge --series RRC --cache /tmp/p1m/rrc   # rerun one series

``--merge`` reruns every model of the given series (and their pretraining check) and keeps the
other series' rows of the recorded results file: after a change that moves some series only (a
GARCH fit that now restarts where arch diverged), without the hours of a full run. The JSON
lists every series rerun this way since the last full run (``merged_series``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
from _common import write_results

import finar
from finar._io import atomic_write_text
from finar.evaluation import stattests
from finar.protocols import P1M
from finar.reporting.config import DEFAULT_MODELS, DEFAULT_NEURAL
from finar.reporting.pipeline import ModelSpec

START, END, REFIT = P1M.test_start, P1M.test_end, P1M.refit_every
BASELINE = P1M.baseline
LEVELS = (0.01, 0.05)
INDEX = "SP500"  # the index column of sp500-stocks: P1's series already, not a stock
NO_RANGE = "n/a: no high/low"
# a smoke run: tiny networks, two epochs (``--quick``)
QUICK_PARAMS = {"wavenet": {"residual_channels": 8, "gate_channels": 8, "skip_channels": 8,
                            "train__max_epochs": 2},
                "transformer": {"config__d_model": 16, "config__n_layers": 1, "train__max_epochs": 2}}
#: network configurations beside the report's defaults (rows with ``default: false``): the same
#: networks refitted every 20 test days by a warm start, a fine-tune of the previous block's weights
#: for WARM_EPOCHS epochs (``train__warm_epochs``, per network). WARM_EPOCHS was chosen inside the
#: training span, on the S&P 500 fitted on data before 2011 and scored on 2011-2014 with the same
#: refits (:func:`warm_selection`, in the results file), by the mean log score: WaveNet 10 epochs
#: (-1.2004 against -1.2190 with 3, -1.4207 fitted once), the Transformer 3 (-1.1986 against
#: -1.2129 with 10, -1.2102 fitted once); GARCH(1,1)-t -1.2278.
WARM_EPOCHS = {"wavenet": 10, "transformer": 3}
NETWORKS = (("WaveNet t-mixture", "wavenet"), ("Transformer t-mixture", "transformer"))
PRETRAINED_NAME = "Transformer t-mixture, pretrained on 22 series, warm refits (3 epochs), seed 0"
CANDIDATES = (*(ModelSpec(f"{name}, warm refits ({WARM_EPOCHS[model]} epochs), seed 0", model,
                          {"train__seed": 0, "train__warm_epochs": WARM_EPOCHS[model]}, refit=True)
                for name, model in NETWORKS),
              # the default's configuration from random weights, three seeds mixed (the default before
              # pretraining was added to it)
              ModelSpec("Transformer t-mixture, warm refits (3 epochs), seeds 0-2", "transformer",
                        {"train__warm_epochs": 3}, seeds=(0, 1, 2)),
              # one seed of the default: warm refits started from the pooled pretraining
              # (finar.models.pretraining: the 22 series up to 2014-12-31, nothing of the test period,
              # trained once and cached under data/cache; not in quick runs)
              ModelSpec(PRETRAINED_NAME, "transformer", {"train__seed": 0, "train__warm_epochs": 3,
                                                         "train__pretrain": True}, refit=True))
SELECTION = ("2011-01-01", "2014-12-31")
SELECTION_MODES = {
    "GARCH(1,1) Student-t, refit every 20 days": ("garch", {"dist": "t"}, True),
    **{f"{name}, fitted once": (model, {"train__seed": 0}, False) for name, model in NETWORKS},
    **{f"{name}, warm refits ({k} epochs)": (model, {"train__seed": 0, "train__warm_epochs": k}, True)
       for name, model in NETWORKS for k in (3, 10)}}

def selection_scores(path: Path, run: bool, spec: ModelSpec, r: pd.Series) -> float | None:
    """The mean daily log score of ``spec`` refitted every 20 days (or fitted once) on ``r``,
    fitted before and scored over :data:`SELECTION`; read from ``path`` when cached there, None
    when not cached and ``run`` is False."""
    if path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
    elif not run:
        return None
    else:
        t0 = time.perf_counter()
        bt = finar.backtest(spec.create(), r, start=SELECTION[0], end=SELECTION[1],
                            refit_every=REFIT if spec.refit else None, seed=0, progress=False)
        doc = {"log_score": bt.daily["log_score"].astype(float).tolist(), "seconds": time.perf_counter() - t0}
        atomic_write_text(path, json.dumps(doc), overwrite=True)  # a cache: several runs may share it
    return float(np.mean(doc["log_score"]))


def warm_selection(cache: Path, run: bool = True) -> dict[str, Any]:
    """The choice of WARM_EPOCHS on training data only: the S&P 500 up to 2014, fitted on the days
    before 2011, scored 2011-2014; the networks fitted once or refitted every 20 days warm.
    ``run=False`` reads the cached rows only (``--no-run``)."""
    r = finar.returns(finar.load("sp500", end=SELECTION[1])["adj_close"])
    rows = []
    for name, (model, params, refit) in SELECTION_MODES.items():
        score = selection_scores(cache / f"selection_{slug(name)}.json", run,
                                 ModelSpec(name, model, params, refit=refit), r)
        if score is None:
            continue
        rows.append({"model": name, "log_score": score})
        print(f"selection {name}: {rows[-1]['log_score']:.4f}", flush=True)
    return {"fit_before": SELECTION[0], "scored": list(SELECTION), "rows": rows,
            "chosen_warm_epochs": dict(WARM_EPOCHS)}


#: the check of pretraining inside the training span, on all 22 series: each series up to 2014,
#: fitted on the days before 2011 and scored 2011-2014 with warm refits every 20 days (seed 0),
#: from random weights and from the network pretrained on the 22 series up to 2010
#: (``train__pretrain``: the corpus is cut at the end of the year before the first fit ends)
PRETRAIN_CHECK = {
    "GARCH(1,1) Student-t, refit every 20 days": ("garch", {"dist": "t"}),
    "Transformer t-mixture, warm refits (3 epochs), seed 0": (
        "transformer", {"train__seed": 0, "train__warm_epochs": 3}),
    "Transformer t-mixture, pretrained, warm refits (3 epochs), seed 0": (
        "transformer", {"train__seed": 0, "train__warm_epochs": 3, "train__pretrain": True}),
}


def pretrain_check(cache: Path, names: list[str], run: bool = True) -> dict[str, Any] | None:
    """Pretraining judged inside the training span on every series (:data:`PRETRAIN_CHECK`):
    per series the mean log scores 2011-2014, and over the series the wins of the pretrained
    network against the same refits from random weights and against GARCH-t. ``run=False`` reads
    the cache only (None when nothing is cached)."""
    data = load_series(end=SELECTION[1])
    rows = []
    for n in names:
        row: dict[str, Any] = {"series": n}
        for label, (model, params) in PRETRAIN_CHECK.items():
            score = selection_scores(cache / f"check_{slug(n)}__{slug(label)}.json", run,
                                     ModelSpec(label, model, params), data[n].returns)
            if score is None:
                continue
            row[label] = score
            print(f"check {n:6s} {label}: {row[label]:.4f}", flush=True)
        rows.append(row)
    garch, warm, pre = PRETRAIN_CHECK
    done = [r for r in rows if all(k in r for k in PRETRAIN_CHECK)]
    if not done:
        return None
    table = [{"series": r["series"], "garch_t": r[garch], "random_warm": r[warm], "pretrained_warm": r[pre],
              "pretrained_minus_random": r[pre] - r[warm], "pretrained_minus_garch_t": r[pre] - r[garch]}
             for r in done]
    return check_summary(table, len(names))


def check_summary(table: list[dict[str, Any]], of: int) -> dict[str, Any]:
    """The pretraining check over its per-series rows (``pretrain_check``'s ``rows``)."""
    vs_warm = np.array([r["pretrained_minus_random"] for r in table])
    vs_garch = np.array([r["pretrained_minus_garch_t"] for r in table])
    warm_vs_garch = np.array([r["random_warm"] - r["garch_t"] for r in table])
    return {"fit_before": SELECTION[0], "scored": list(SELECTION), "pretrained_up_to": "2010-12-31",
            "models": list(PRETRAIN_CHECK), "rows": table, "series_done": len(table), "of": of,
            "pretrained_beats_random_warm": int((vs_warm > 0).sum()), "median_gain_vs_random_warm":
            float(np.median(vs_warm)), "pretrained_beats_garch_t": int((vs_garch > 0).sum()),
            "pretrained_median_gain_vs_garch_t": float(np.median(vs_garch)),
            "random_warm_beats_garch_t": int((warm_vs_garch > 0).sum()),
            "random_warm_median_gain_vs_garch_t": float(np.median(warm_vs_garch))}


@dataclass(frozen=True)
class Series:
    name: str
    source: str  # bundled dataset and column
    returns: pd.Series
    exog: pd.DataFrame | None  # the day's Parkinson range variance, where high/low exist


def load_series(end: str = END) -> dict[str, Series]:
    """The 22 series, returns up to ``end`` (nothing after the test period is read)."""
    out: dict[str, Series] = {}
    px = finar.load("sp500", end=end)
    r = finar.returns(px["adj_close"])
    out["SP500"] = Series("SP500", "sp500 adj_close", r, finar.data.parkinson(px).loc[r.index].to_frame())
    wti = finar.load("wti", end=end)
    out["WTI"] = Series("WTI", "wti close", finar.returns(wti["close"]), None)
    stocks = finar.load("sp500-stocks", end=end)
    for col in stocks.columns:
        if col != INDEX:
            out[col] = Series(col, f"sp500-stocks {col}", finar.returns(stocks[col]), None)
    return out


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def spec_key(spec: ModelSpec) -> dict[str, Any]:
    return {"model": spec.model, "params": {k: spec.params[k] for k in sorted(spec.params)},
            "refit": spec.refit, "exog": spec.exog, **({"seeds": list(spec.seeds)} if spec.seeds else {})}


def run_one(s: Series, spec: ModelSpec, start: str, end: str) -> dict[str, Any]:
    """One backtest: daily log scores and VaR hits, as P1 runs the model."""
    t0 = time.perf_counter()
    bt = finar.backtest(spec.create(), s.returns, start=start, end=end,
                        refit_every=REFIT if spec.refit else None, seed=0, levels=LEVELS,
                        name=spec.name, exog=s.exog if spec.exog else None, progress=False)
    seconds = time.perf_counter() - t0
    d = bt.daily
    return {"series": s.name, "model": spec.name, "spec": spec_key(spec), "start": start, "end": end,
            "train_from": str(s.returns.index[0].date()),
            "n_train": int((s.returns.index < pd.Timestamp(start)).sum()),
            "seconds": seconds, "dates": [str(t.date()) for t in d.index],
            "log_score": d["log_score"].astype(float).tolist(), "crps": d["crps"].astype(float).tolist(),
            # the predictive CDF at the realised return: what a copula over these marginals reads
            "pit": d["pit"].astype(float).tolist(),
            "hit_1": d["hit_1"].astype(bool).tolist(), "hit_5": d["hit_5"].astype(bool).tolist()}


def cached(path: Path, s: Series, spec: ModelSpec, start: str, end: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    same = (doc.get("spec") == json.loads(json.dumps(spec_key(spec))) and doc.get("start") == start
            and doc.get("end") == end and doc.get("series") == s.name)
    return doc if same else None


def row_of(doc: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """The results row of one (series, model): scores, VaR tests and DM against GARCH-t."""
    ls = np.asarray(doc["log_score"], dtype=float)
    row: dict[str, Any] = {"series": doc["series"], "model": doc["model"],
                           "default": doc["model"] in {spec.name for spec in DEFAULT_MODELS},
                           "log_score": float(ls.mean()), "worst_day": float(ls.min()),
                           "crps": float(np.nanmean(doc["crps"])),
                           "n_days": len(ls), "train_from": doc["train_from"], "n_train": doc["n_train"],
                           "fit_seconds": doc["seconds"]}
    for a, tag in zip(LEVELS, ("1", "5"), strict=True):
        hits = np.asarray(doc[f"hit_{tag}"], dtype=bool)
        row[f"hit_{tag}"] = float(hits.mean())
        row[f"kupiec_{tag}"] = stattests.kupiec_pof(hits, a).p_value
    row["christoffersen_cc_1"] = stattests.christoffersen_cc(np.asarray(doc["hit_1"], bool), 0.01).p_value
    row["dm_t"] = row["dm_p"] = row["gain_vs_garch_t"] = None  # the baseline's own row, or no baseline
    if base is not None and doc["model"] != BASELINE:
        a = pd.Series(ls, index=doc["dates"])
        b = pd.Series(base["log_score"], index=base["dates"], dtype=float)
        common = a.index.intersection(b.index)
        dm = stattests.diebold_mariano(a.loc[common].to_numpy(), b.loc[common].to_numpy())
        row["gain_vs_garch_t"] = float(a.loc[common].mean() - b.loc[common].mean())
        row["dm_t"], row["dm_p"] = dm.statistic, dm.p_value
    return row


def summarise(rows: list[dict[str, Any]], models: list[str], n_series: int) -> list[dict[str, Any]]:
    """Per model: wins against GARCH-t over the series, significant wins/losses, median gain."""
    out = []
    for m in models:
        if m == BASELINE:
            continue
        rs = [r for r in rows if r["model"] == m and r["gain_vs_garch_t"] is not None]
        gains = np.array([r["gain_vs_garch_t"] for r in rs])
        sig = [r for r in rs if r["dm_p"] < 0.05]
        out.append({"model": m, "series": len(rs), "of": n_series,
                    "wins": int((gains > 0).sum()),
                    "significant_wins": sum(r["dm_t"] > 0 for r in sig),
                    "significant_losses": sum(r["dm_t"] < 0 for r in sig),
                    "median_gain": float(np.median(gains)) if len(gains) else None,
                    "mean_gain": float(gains.mean()) if len(gains) else None,
                    "wins_without_sp500": sum(r["gain_vs_garch_t"] > 0 for r in rs if r["series"] != "SP500"),
                    "kupiec_1_rejects": sum(r["kupiec_1"] < 0.05 for r in rs),
                    "kupiec_5_rejects": sum(r["kupiec_5"] < 0.05 for r in rs)})
    base = [r for r in rows if r["model"] == BASELINE]
    if base:
        out.append({"model": BASELINE, "series": len(base), "of": n_series,
                    "kupiec_1_rejects": sum(r["kupiec_1"] < 0.05 for r in base),
                    "kupiec_5_rejects": sum(r["kupiec_5"] < 0.05 for r in base)})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", nargs="+", help="series names (SP500, WTI, stock tickers); default: all 22")
    p.add_argument("--models", nargs="+", help="model names of the report's default set; default: all")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "finar" / "p1_many_series",
                   help="folder of per (series, model) results, so a run can resume")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 series, 60 test days, tiny networks; results go to the cache folder")
    p.add_argument("--classical-only", action="store_true", help="run the refitted (classical) models only")
    p.add_argument("--no-run", action="store_true", help="write results from the cache only")
    p.add_argument("--merge", action="store_true",
                   help="rerun every model of the --series given (and their pretraining check) into the "
                        "cache and keep the other series' rows, the warm selection and the other series' "
                        "check rows from the recorded results file; summaries are recomputed")
    p.add_argument("--pretrain-check", action="store_true",
                   help="run only the check of pretraining inside the training span (2011-2014), "
                        "into the cache")
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - the networks then fail on their own
        pass

    data = load_series()
    names = list(data)
    if args.pretrain_check:
        check = pretrain_check(args.cache, [n for n in names if not args.series or n in args.series])
        print({k: v for k, v in (check or {}).items() if k != "rows"})
        return
    if args.merge and (not args.series or args.models or args.quick or args.classical_only or args.no_run):
        p.error("--merge reruns whole series: give --series, without --models, --quick, --classical-only "
                "or --no-run")
    if args.series:
        unknown = set(args.series) - set(names)
        if unknown:
            p.error(f"unknown series {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in args.series]
    elif args.quick:
        names = ["SP500", "AAPL"]
    specs = [*DEFAULT_MODELS, *CANDIDATES]
    if args.models:
        unknown = set(args.models) - {s.name for s in specs}
        if unknown:
            p.error(f"unknown models {sorted(unknown)}; known: {[s.name for s in specs]}")
        specs = [s for s in specs if s.name in args.models or s.name == BASELINE]
    start, end = START, END
    if args.quick:
        start, end = "2015-01-01", "2015-03-31"
        specs = [replace(s, params={**s.params, **QUICK_PARAMS.get(s.model, {})}) for s in specs
                 if s.name != PRETRAINED_NAME]  # a tiny network cannot start from the pretrained one
    args.cache.mkdir(parents=True, exist_ok=True)

    # classical models on every series first (fast), then the networks series by series
    networks = [s for s in specs if not s.refit or s in CANDIDATES]
    plan = [(n, s) for s in specs if s not in networks for n in names]
    if not args.classical_only:
        plan += [(n, s) for n in names for s in networks]
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for n, spec in plan:
        s = data[n]
        if spec.exog and s.exog is None:
            continue
        path = args.cache / f"{slug(n)}__{slug(spec.name)}.json"
        doc = cached(path, s, spec, start, end)
        if doc is None and not args.no_run:
            doc = run_one(s, spec, start, end)
            atomic_write_text(path, json.dumps(doc) + "\n", overwrite=True)
            print(f"{n:6s} {spec.name:58s} {np.mean(doc['log_score']):.4f}  {doc['seconds']:.1f} s",
                  flush=True)
        if doc is not None:
            docs[n, spec.name] = doc

    rows, missing = [], []
    for n in names:
        for spec in specs:
            if spec.exog and data[n].exog is None:
                rows.append({"series": n, "model": spec.name, "default": not args.quick,
                             "log_score": None, "dm_t": None, "note": NO_RANGE})
                continue
            doc = docs.get((n, spec.name))
            if doc is None:
                missing.append([n, spec.name])
                continue
            row = row_of(doc, docs.get((n, BASELINE)))
            rows.append({**row, "default": row["default"] and not args.quick})
    selection = check = merged = None
    if args.merge:  # the other series as recorded: their rows are unaffected by these series' reruns
        recorded = json.loads((_common.RESULTS / "p1_many_series.json").read_text(encoding="utf-8"))
        if not recorded.get("complete"):
            p.error("--merge needs a complete recorded results file to merge into")
        rows = [r for r in recorded["rows"] if r["series"] not in names] + rows
        order = {n: i for i, n in enumerate(recorded["series"])}
        rows.sort(key=lambda r: order[r["series"]])  # stable: the models keep their order
        checked = pretrain_check(args.cache, names)
        kept = [r for r in recorded["pretrain_check_rows"] if r["series"] not in names]
        table = sorted(kept + (checked["rows"] if checked else []), key=lambda r: order[r["series"]])
        check, selection = check_summary(table, len(order)), recorded["warm_selection"]
        names = list(recorded["series"])
        merged = sorted({*(recorded.get("merged_series") or []), *args.series})  # earlier merges too
        print(f"merged into the recorded rows: {args.series}", flush=True)
    scored = [r for r in rows if r["log_score"] is not None]
    summary = summarise(scored, [s.name for s in specs], len(names))
    for r in summary:
        print(r)
    if args.quick:
        _common.RESULTS = args.cache  # a smoke run does not replace the recorded results
    train = {n: str(data[n].returns.index[0].date()) for n in names}
    if not args.quick and not args.merge:
        selection = warm_selection(args.cache, run=not args.no_run)
        check = pretrain_check(args.cache, names, run=False)
    write_results(
        "p1_many_series", "P1m", rows,
        columns=["series", "model", "log_score", "worst_day", "gain_vs_garch_t", "dm_t", "dm_p", "hit_1",
                 "kupiec_1", "hit_5", "kupiec_5", "note", "fit_seconds"],
        extra={"test_period": [start, end], "refit_every": REFIT, "dm_baseline": BASELINE,
               "series": names, "train_from": train, "models": [s.name for s in specs],
               "backtest_seconds": sum(r.get("fit_seconds") or 0.0 for r in rows),
               "merged_series": merged if args.merge else None,
               "quick": args.quick, "complete": not missing, "missing": missing, "summary": summary,
               "warm_selection": selection, "pretrain_check": check,
               "pretrain_check_rows": None if check is None else check["rows"]},
        notes="Log scores in nats/day on % log returns. `gain_vs_garch_t`: mean log score minus "
              "GARCH(1,1)-t's on the same days; `worst_day`: the lowest daily log score (a refit whose "
              "optimiser failed shows here); `dm_t`, `dm_p`: Diebold-Mariano (HLN, HAC variance) "
              "against GARCH(1,1)-t, positive = better. Training: all days before 2015 (S&P 500 from "
              "1999, WTI from 1986, stocks from 1990); classical models refit every 20 test days, "
              "the report's fitted-once networks fitted before 2015 (one seed); the rows 'warm refits' "
              "refit the networks every 20 test days, each refit a fine-tune of the previous block's "
              "network (WaveNet 10 epochs, the Transformer 3), chosen on the S&P 500 in 2011-2014 (fitted "
              f"before 2011; `warm_selection` in the JSON). {DEFAULT_NEURAL} is finar's default neural "
              "forecaster (the report's). 'pretrained on 22 series': the warm Transformer started from "
              "one network pretrained on the 22 series up to 2014. GJR-X(range) needs high/low prices: "
              "only the S&P 500 has them."
              + ("" if not missing else f" INCOMPLETE: {len(missing)} (series, model) not run: "
                 + "; ".join(f"{a} / {b}" for a, b in missing) + ".")
              + "\n\n" + summary_markdown(summary))


def summary_markdown(summary: list[dict[str, Any]]) -> str:
    head = ("| model | series | wins vs GARCH-t | sig. wins | sig. losses | median gain | mean gain | "
            "Kupiec 1% rejects | Kupiec 5% rejects |\n|---|---|---|---|---|---|---|---|---|")
    def f(v: float | None) -> str:
        return "" if v is None else f"{v:+.4f}"

    body = []
    for r in summary:
        body.append(f"| {r['model']} | {r['series']}/{r['of']} | {r.get('wins', '')} | "
                    f"{r.get('significant_wins', '')} | {r.get('significant_losses', '')} | "
                    f"{f(r.get('median_gain'))} | {f(r.get('mean_gain'))} | {r['kupiec_1_rejects']} | "
                    f"{r['kupiec_5_rejects']} |")
    return "\n".join([head, *body])


if __name__ == "__main__":
    main()
