"""P6 ("joint-panel"): joint scenarios for a portfolio, the classical joint references.

PROTOCOLS.md P6: the index column (SP500, first) and the 20 stocks of the bundled
``sp500-stocks`` panel, % log returns; train 2000-01-01 .. 2014-12-31, test every trading day of
2015-01-01 .. 2018-12-31. Rows: independent GARCH(1,1)-t per series (the product of the
marginals), DCC(1,1) over GARCH(1,1)-t marginals with Student-t and with Gaussian joint shocks,
GARCH-t marginals with static Student-t and Gaussian copulas (finar.models.DCC / Copula), and
finar's neural joint model, NeuralDCC (a DCC-t copula whose weights an MLP sets each day from the
cross-section; refitted on the same schedule, each refit warm-started from the previous network),
with PixelCNN's joint log score quoted from p4_panel_loglik.json. finar.models.MarginalCopula
adds DCC-t over GJR-GARCH skew-t marginals (classical) and the NeuralDCC copula over finar's
pretrained Transformer per column (neural marginals and neural dependence); DCC and NeuralDCC
with family="t-mix" (a mixture of t copulas over a grid of tails), chosen by tail_mixture_check
inside the training span.

Measured per model, refitted every 60 test days (expanding window; NeuralDCC's refits fine-tune
the previous block's network for 15 L-BFGS iterations instead of training from scratch):

- the daily joint log score over the 21 series (nats per day; per asset-day = / 21), and DM
  (HLN) on its daily differences against DCC-t;
- the conditional log score of the 20 stocks given the index's same-day return;
- the energy score and the variogram score (order 0.5) of the 21-vector of 1-day returns from
  1,000 joint scenarios per day, and of 20-day cumulative returns at origins 20 days apart;
- equal-weight and minimum-variance (training covariance) portfolios of the 20 stocks: 1% and
  5% VaR from the 1-day scenarios, hit rates, Kupiec, Christoffersen, the traffic light;
- from 200 unconditional 250-day paths after the training span (fit-once models): the mean
  absolute difference of the stocks' off-diagonal correlations from the real test period's,
  against the block bootstrap's band, and the co-crash frequency (>= 15 of 20 stocks below -2
  own sigmas on one day).

The fit-once scores (parameters fixed through the test period) reproduce the reference figures
of PROTOCOLS.md. ``--quick`` runs a short smoke configuration; ``--scores-only`` skips the
daily scenarios of some models; ``--cache`` keeps each model's results between runs.

    python benchmarks/p6_joint.py [--quick] [--models dcc-t,copula-t] [--seeds 0,1,2]
        [--scores-only copula-t,neural-dcc@1] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results

import finar
from finar.evaluation.joint import (
    co_crash,
    conditional_log_score,
    correlation_distance,
    joint_backtest,
    joint_log_score,
    min_variance_weights,
)
from finar.evaluation.stattests import diebold_mariano, pit_uniformity
from finar.models.copula import TAIL_GRID, Copula, chain_terms, fit_tail_weights, mixture_chain
from finar.models.dcc import DCC
from finar.models.ensemble import JointEnsemble
from finar.models.garch import GARCH
from finar.models.marginal_copula import MarginalCopula
from finar.models.neural_dcc import NeuralDCC
from finar.models.transformer import Transformer

TRAIN, TEST = ("2000-01-01", "2014-12-31"), ("2015-01-01", "2018-12-31")
INDEX = "SP500"
REFIT_EVERY, N_PATHS, HORIZON, SEED = 60, 1000, 20, 0
QUICK = False  # --quick: tiny trainings
N_UNCOND, UNCOND_HORIZON = 200, 250

#: name -> (label, constructor); the baseline of the DM tests is "dcc-t"
MODELS: dict[str, tuple[str, Callable[[], finar.models.Forecaster]]] = {
    "independent": ("GARCH(1,1)-t per series (independent)", lambda: Copula(family="independent")),
    "dcc-t": ("DCC(1,1)-t (t copula)", lambda: DCC(family="t")),
    "dcc-gaussian": ("DCC(1,1) Gaussian copula", lambda: DCC(family="gaussian")),
    "copula-t": ("static t copula", lambda: Copula(family="t")),
    "copula-gaussian": ("static Gaussian copula", lambda: Copula(family="gaussian")),
    "neural-dcc": ("NeuralDCC (t copula, MLP gates; refit every 60 days, warm-started)",
                   lambda: NeuralDCC(warm_start=True)),
    # DCC's tails as a mixture of t copulas (family 't-mix', chosen inside the training span by
    # tail_mixture_check), classical and under NeuralDCC's network
    "dcc-tmix": ("DCC(1,1), mixture of t copulas (t-mix)", lambda: DCC(family="t-mix")),
    "neural-dcc-tmix": ("NeuralDCC, mixture of t copulas (t-mix; refit every 60 days, warm-started)",
                        lambda: NeuralDCC(family="t-mix", warm_start=True)),
    # the strongest classical marginal of P1m (GJR skew-t) under the DCC-t copula: the classical
    # reference that gets what the neural row's marginals get (each column's best univariate law)
    "gjr-dcc-t": ("DCC(1,1)-t over GJR-GARCH(1,1,1) skew-t marginals",
                  lambda: MarginalCopula(GARCH(vol="gjr", dist="skewt"), DCC(family="t"))),
    # finar's default neural forecaster per column (issue 15: pretrained on the 22 bundled series
    # up to the end of the training span, warm refits of 3 epochs), joined by the NeuralDCC copula
    "tf-neural-dcc": ("NeuralDCC copula over pretrained Transformer marginals (warm refits)",
                      lambda: transformer_neural_dcc(0)),
    # the classical counterpart of the ensemble below: the best classical joint model and the one
    # over the best classical marginals, each day's vector from one of them (weights 1/2)
    "classical-ensemble": ("JointEnsemble: DCC t-mix over GARCH-t + DCC-t over GJR skew-t (weights 1/2)",
                           lambda: JointEnsemble([DCC(family="t-mix"),
                                                  MarginalCopula(GARCH(vol="gjr", dist="skewt"),
                                                                 DCC(family="t"))])),
    # the two neural joint models as one: each day's vector from one of them, weights 1/2 each
    # (fixed a priori, not fitted); ensemble_check measures it inside the training span
    "ensemble": ("JointEnsemble: NeuralDCC t-mix over GARCH-t + NeuralDCC over pretrained Transformer "
                 "marginals (weights 1/2)", lambda: joint_ensemble(0)),
}
#: networks: several seeds, kind "finar"; refitted on the classical schedule with warm starts
NETWORKS = {"neural-dcc", "neural-dcc-tmix", "tf-neural-dcc", "ensemble"}


def transformer_neural_dcc(seed: int, quick: bool = False) -> MarginalCopula:
    """Per column the report's default Transformer (one seed: the copula needs each marginal's exact
    quantile path by path, which a mixture of seeds has only by bisection over all its members),
    pretrained and refitted warm; the columns joined by a warm-refitted NeuralDCC copula."""
    train = {"seed": seed, "warm_epochs": 3, "pretrain": True}
    if quick:
        train.update(max_epochs=1, warm_epochs=1, pretrain=False)
    return MarginalCopula(Transformer(train=train),
                          NeuralDCC(seed=seed, warm_start=True,
                                    **({"max_iter": 2, "warm_iter": 1} if quick else {})))


def joint_ensemble(seed: int, quick: bool = False) -> JointEnsemble:
    """The equal-weight mixture of the day densities of NeuralDCC t-mix over GARCH-t marginals and
    the NeuralDCC copula over pretrained Transformer marginals (both with ``seed``)."""
    first = NeuralDCC(family="t-mix", warm_start=True, seed=seed, **({"max_iter": 2, "warm_iter": 1}
                                                                     if quick else {}))
    return JointEnsemble([first, transformer_neural_dcc(seed, quick)])


COLUMNS = ["model", "kind", "seed", "joint_log_score", "log_score_per_asset_day", "dm_t_vs_dcc",
           "dm_t_vs_best_classical",
           "conditional_log_score", "energy_score_1", "dm_energy_1_vs_dcc", "energy_score_20",
           "variogram_score_1", "variogram_score_20", "equal_hit_1", "equal_kupiec_p_1",
           "equal_christoffersen_cc_p_1",
           "equal_hit_5", "equal_kupiec_p_5", "corr_distance", "corr_band_q95", "fit_once_joint_log_score"]


def panel_returns() -> pd.DataFrame:
    """% log returns 2000-2018 of the panel, the S&P 500 index in the first column."""
    px = finar.load("sp500-stocks")
    cols = [INDEX, *[c for c in px.columns if c != INDEX]]
    px = px[cols].loc[:TEST[1]]
    return finar.returns(px.loc[px.index[px.index < TRAIN[0]][-1]:])  # the last 1999 close starts 2000


def _make(key: str, seed: int | None) -> tuple[str, Callable[[], finar.models.Forecaster]]:
    label, make = MODELS[key]
    if seed is None:
        return label, make
    if key == "tf-neural-dcc":
        return f"{label}, seed {seed}", lambda: transformer_neural_dcc(seed, QUICK)
    if key == "ensemble":
        return f"{label}, seed {seed}", lambda: joint_ensemble(seed, QUICK)
    return f"{label}, seed {seed}", lambda: make().set_params(seed=seed)


def run_model(key: str, r: pd.DataFrame, test: tuple[str, str], weights: dict[str, pd.Series],
              n_paths: int, n_uncond: int, seed: int | None = None, scenarios: bool = True) -> dict[str, Any]:
    """Everything P6 measures for one model; plain values (cached as JSON between runs)."""
    label, make = _make(key, seed)
    train = r.loc[:TRAIN[1]]
    stocks = [c for c in r.columns if c != INDEX]
    t0 = time.perf_counter()
    once = make().fit(train)
    fit_once_seconds = time.perf_counter() - t0
    span = r.loc[:test[1]]
    once_daily = joint_log_score(once, span, start=test[0])["joint"]
    once_cond = conditional_log_score(once, span, [INDEX], start=test[0])
    print(f"{label}: fit once {fit_once_seconds:.1f} s, joint {once_daily.mean():.3f} nats/day", flush=True)
    # unconditional year-long paths after the training span, against the real test period
    paths = once.sample(train, horizon=UNCOND_HORIZON, n_paths=n_uncond, seed=SEED)
    real = span.loc[test[0]:, stocks]
    gen = paths.paths[:, :, [r.columns.get_loc(c) for c in stocks]]
    facts = {**correlation_distance(real, gen, seed=SEED), **co_crash(real, gen, seed=SEED)}
    t0 = time.perf_counter()
    # the first block is scored by the fit-once model, later blocks refitted (warm for networks)
    bt = joint_backtest(once, span, test[0], refit_every=REFIT_EVERY, n_paths=n_paths, horizon=HORIZON,
                        weights=weights, given=[INDEX], seed=SEED, label=label, scenarios=scenarios,
                        fitted=True)
    print(f"{label}: refit backtest {time.perf_counter() - t0:.0f} s", flush=True)
    params = copula_params(once)
    return {"key": key, "seed": seed, "label": label, "summary": bt.summary(), "facts": facts,
            "params_fit_once": params, "fit_once_seconds": fit_once_seconds,
            "stress": stress_calibration(once, r, weights),
            "decomposition": decomposition(once, r),
            "fit_once_daily": once_daily.to_list(), "fit_once_conditional": float(once_cond.mean()),
            "daily": bt.daily["joint"].to_list(), "days": [str(d.date()) for d in bt.daily.index],
            **({"daily_energy_1": bt.daily["energy_1"].to_list()} if scenarios else {})}


def copula_params(m: finar.models.Forecaster) -> dict[str, Any]:
    """The fitted dependence parameters (per member of a JointEnsemble)."""
    if isinstance(m, JointEnsemble):
        return {"weights": m.weights_.tolist(), "members": [copula_params(x) for x in m.members_]}
    cop = m.copula_ if isinstance(m, MarginalCopula) else m
    return {"a": cop.a_, "b": cop.b_, "nu": cop.nu_, **({"gates": cop.gate_stats_}
                                                       if isinstance(cop, NeuralDCC) else {})}


#: NeuralDCC's refit schedule, chosen inside the training span: fitted on 2000-2010, then 2011-2014
#: scored with refits every 60 days (expanding), by the mean daily joint log score; DCC-t beside
SELECTION = ("2011-01-01", "2014-12-31")
REFIT_MODES = {"dcc-t": None, "fine-tune (15 L-BFGS iterations)": 15, "network kept (warm_iter=0)": 0}


def refit_selection(r: pd.DataFrame, cache: Path | None) -> dict[str, Any]:
    """The choice of NeuralDCC's refit mode on training data only (seed 0, densities only)."""
    span = r.loc[:SELECTION[1]]
    out: dict[str, Any] = {"fit": [TRAIN[0], "2010-12-31"], "scored": list(SELECTION), "rows": []}
    daily = {}
    for name, warm_iter in REFIT_MODES.items():
        path = cache / f"p6_select_{warm_iter}.json" if cache else None
        if path is not None and path.exists():
            daily[name] = json.loads(path.read_text())["daily"]
        else:
            m = DCC(family="t") if warm_iter is None else NeuralDCC(warm_start=True, warm_iter=warm_iter)
            bt = joint_backtest(m, span, SELECTION[0], refit_every=REFIT_EVERY, scenarios=False)
            daily[name] = bt.daily["joint"].to_list()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"daily": daily[name]}))
    base = np.asarray(daily["dcc-t"])
    for name, d in daily.items():
        dm = diebold_mariano(np.asarray(d), base) if name != "dcc-t" else None
        out["rows"].append({"model": name, "joint_log_score": float(np.mean(d)),
                            "dm_t_vs_dcc": None if dm is None else dm.statistic})
    modes = [row for row in out["rows"] if row["model"] != "dcc-t"]
    out["chosen"] = max(modes, key=lambda row: row["joint_log_score"])["model"]
    print("refit selection:", out["rows"], "->", out["chosen"], flush=True)
    return out


#: the members of the JointEnsemble and the classical rows it is read against, in ensemble_check
ENSEMBLE_CHECK = {"dcc-t": lambda: DCC(family="t"), "dcc-tmix": lambda: DCC(family="t-mix"),
                  "neural-dcc-tmix": lambda: NeuralDCC(family="t-mix", warm_start=True, seed=0),
                  "tf-neural-dcc": lambda: transformer_neural_dcc(0, QUICK)}


def ensemble_check(r: pd.DataFrame, cache: Path | None) -> dict[str, Any]:
    """The JointEnsemble inside the training span only: its two members (seed 0) and DCC-t and
    DCC t-mix fitted on 2000-2010 (the Transformer pretrained up to 2010), 2011-2014 scored with
    P6's refits every 60 days (densities only). The mixture's daily joint log density is the log of
    the mean of its members' (the same fits); DM against each classical row."""
    span = r.loc[:SELECTION[1]]
    daily = {}
    for name, make in ENSEMBLE_CHECK.items():
        path = cache / f"p6_enscheck_{name}.json" if cache else None
        if path is not None and path.exists():
            daily[name] = np.asarray(json.loads(path.read_text())["daily"])
            continue
        t0 = time.perf_counter()
        bt = joint_backtest(make(), span, SELECTION[0], refit_every=REFIT_EVERY, scenarios=False)
        daily[name] = bt.daily["joint"].to_numpy()
        took = time.perf_counter() - t0
        print(f"ensemble check {name}: {daily[name].mean():.4f} ({took:.0f} s)", flush=True)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"daily": daily[name].tolist()}))
    members = np.stack([daily["neural-dcc-tmix"], daily["tf-neural-dcc"]])
    daily["ensemble"] = special.logsumexp(members, axis=0) - np.log(2)
    rows = []
    for name, d in daily.items():
        row: dict[str, Any] = {"model": name, "joint_log_score": float(d.mean())}
        for base in ("dcc-t", "dcc-tmix"):
            if name != base:
                dm = diebold_mariano(d, daily[base])
                row[f"dm_t_vs_{base}"], row[f"dm_p_vs_{base}"] = dm.statistic, dm.p_value
        rows.append(row)
    print("ensemble check:", rows, flush=True)
    return {"fit": [TRAIN[0], "2010-12-31"], "scored": list(SELECTION), "refit_every": REFIT_EVERY,
            "weights": [0.5, 0.5], "rows": rows}


def tail_mixture_check(r: pd.DataFrame) -> dict[str, Any]:
    """The check that chose ``family="t-mix"``, inside the training span only: DCC-t fitted on
    2000-2010 (GARCH-t marginals, its correlations R_t kept), and its copula term on 2011-2014
    against the mixture of t copulas over :data:`finar.models.copula.TAIL_GRID` with the same R_t,
    the weights fitted on 2000-2010 as ``t-mix`` fits them. Copula terms in nats per day (the
    marginals are equal)."""
    span = r.loc[:SELECTION[1]]
    fit = span.index <= "2010-12-31"
    m = DCC(family="t").fit(span.loc[fit])
    st = m._state(span)
    p, sign = m._marginal_tails(st["eps"] / st["sigma"])
    chol = np.linalg.cholesky(st["corr"])
    weights = fit_tail_weights(p[fit], sign[fit], chol[fit])
    mix = mixture_chain(p, sign, chol, weights).sum(axis=1)
    base = chain_terms(st["x"], chol, m.nu_).sum(axis=1)
    dm = diebold_mariano(mix[~fit], base[~fit])
    return {"fit": [TRAIN[0], "2010-12-31"], "scored": list(SELECTION), "dcc_t_nu": m.nu_,
            "grid": [float(v) if np.isfinite(v) else "inf" for v in TAIL_GRID],
            "weights": np.round(weights, 4).tolist(),
            "copula_dcc_t": float(base[~fit].mean()), "copula_mixture": float(mix[~fit].mean()),
            "gain": float((mix - base)[~fit].mean()), "dm_t": dm.statistic, "dm_p": dm.p_value}


def stress_calibration(m: finar.models.Forecaster, r: pd.DataFrame,
                       weights: dict[str, pd.Series]) -> dict[str, Any]:
    """Conditioning on the index (a model fitted once on the training span): the calibration of
    the stocks' conditional PITs given the index's same-day return on the test days, and a stress
    example on the first test day (the index at -5%): the equal-weight portfolio's 1-day VaR and
    ES, stressed and not."""
    span = r.loc[:TEST[1]]
    pit = m.conditional_cdf(span, [INDEX]).loc[TEST[0]:]
    berk = [pit_uniformity(pit[c].to_numpy(), "berkowitz").p_value for c in pit.columns]
    ks = stats.kstest(pit.to_numpy().ravel(), "uniform")
    context, w = span.loc[:TRAIN[1]], weights["equal"]
    free = m.sample(context, horizon=1, n_paths=20_000, seed=SEED).portfolio(w)
    stressed = m.sample(context, horizon=1, n_paths=20_000, seed=SEED, given={INDEX: -5.0}).portfolio(w)
    return {"cond_pit_ks": float(ks.statistic),
            "cond_pit_berkowitz_reject_5": float(np.mean(np.less(berk, 0.05))),
            "stress_equal_var_1": float(stressed.var(0.01).iloc[0, 0]),
            "stress_equal_es_1": float(stressed.es(0.01).iloc[0, 0]),
            "stress_equal_mean": float(stressed.mean().iloc[0, 0]),
            "free_equal_var_1": float(free.var(0.01).iloc[0, 0]),
            "free_equal_es_1": float(free.es(0.01).iloc[0, 0])}


def decomposition(m: finar.models.Forecaster, r: pd.DataFrame) -> dict[str, float]:
    """The fit-once model's daily joint log score split into the sum of its marginal log scores and
    the copula's term (their difference), on the training days and on the test days."""
    span = r.loc[:TEST[1]]
    if isinstance(m, JointEnsemble):  # a mixture of joint densities has no such split
        return {}
    if isinstance(m, MarginalCopula):
        marginal = m._marginals(span)[0].sum(axis=1)
    else:  # a CopulaGARCH: its GARCH marginals' log densities
        marginal = m._state(span)["logf"].sum(axis=1)
    joint = m.joint_log_prob(span).to_numpy()
    out = {}
    for name, rows in (("train", span.index <= TRAIN[1]), ("test", span.index >= TEST[0])):
        ok = rows & np.isfinite(joint)
        out[f"{name}_marginals"] = float(marginal[ok].mean())
        out[f"{name}_copula"] = float((joint[ok] - marginal[ok]).mean())
    return out


def row_of(res: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    s, f = res["summary"], res["facts"]
    row = {"model": res["label"], "kind": "finar" if res["key"] in NETWORKS else "reference",
           "seed": res.get("seed"), "joint_log_score": s["joint_log_score"],
           "log_score_per_asset_day": s["log_score_per_asset_day"],
           "conditional_log_score": s["conditional_score"],
           "energy_score_1": s.get("energy_1"), "energy_score_20": s.get(f"energy_{HORIZON}"),
           "variogram_score_1": s.get("variogram_1"), "variogram_score_20": s.get(f"variogram_{HORIZON}"),
           "corr_distance": f["corr_distance_generated"], "corr_band_q95": f["corr_distance_boot_q95"],
           "corr_within_band": f["corr_within_band"], "co_crash": f["co_crash_generated"],
           "co_crash_real": f["co_crash_real"],
           "co_crash_band": [f["co_crash_boot_q05"], f["co_crash_boot_q95"]],
           "fit_once_joint_log_score": float(np.mean(res["fit_once_daily"])),
           "fit_once_conditional_log_score": res["fit_once_conditional"],
           "params_fit_once": res["params_fit_once"],
           **{f"fit_once_{k}": v for k, v in res.get("decomposition", {}).items()},
           "n_days": s["n_days"], "refit_seconds": s["fit_seconds"]}
    for name in ("equal", "minvar"):
        for tag in ("1", "5"):
            row[f"{name}_hit_{tag}"] = s.get(f"{name}_hit_rate_{tag}")
            row[f"{name}_kupiec_p_{tag}"] = s.get(f"{name}_kupiec_p_{tag}")
            row[f"{name}_christoffersen_cc_p_{tag}"] = s.get(f"{name}_christoffersen_cc_p_{tag}")
        row[f"{name}_traffic_light"] = s.get(f"{name}_traffic_light_worst_1")
    if base is not None and base is not res:
        dm = diebold_mariano(np.asarray(res["daily"]), np.asarray(base["daily"]))
        once = diebold_mariano(np.asarray(res["fit_once_daily"]), np.asarray(base["fit_once_daily"]))
        row.update({"dm_t_vs_dcc": dm.statistic, "dm_p": dm.p_value, "fit_once_dm_t_vs_dcc": once.statistic})
        if "daily_energy_1" in res and "daily_energy_1" in base:  # lower is better: positive favours the row
            dm = diebold_mariano(-np.asarray(res["daily_energy_1"]), -np.asarray(base["daily_energy_1"]))
            row.update({"dm_energy_1_vs_dcc": dm.statistic, "dm_energy_1_p": dm.p_value})
    row.update(res["stress"])
    return row


def mean_row(runs: list[dict[str, Any]], rows: list[dict[str, Any]],
             base: dict[str, Any] | None) -> dict[str, Any]:
    """A network's row averaged over its seeds; DM on the seed-averaged daily scores."""
    mine = [row for row in rows if row["model"] in {res["label"] for res in runs}]
    out: dict[str, Any] = {"model": MODELS[runs[0]["key"]][0], "kind": "finar", "seed": "mean"}
    for k, v in mine[0].items():
        if isinstance(v, float) and all(isinstance(row.get(k), float) for row in mine):
            out[k] = float(np.mean([row[k] for row in mine]))
    out["joint_log_score_sd_over_seeds"] = float(np.std([row["joint_log_score"] for row in mine], ddof=1))
    if base is not None:
        daily = np.mean([res["daily"] for res in runs], axis=0)
        dm = diebold_mariano(daily, np.asarray(base["daily"]))
        out.update({"dm_t_vs_dcc": dm.statistic, "dm_p": dm.p_value})
    return out


def add_dm(row: dict[str, Any], daily: np.ndarray, best: dict[str, Any] | None) -> dict[str, Any]:
    """DM of ``daily`` against the strongest classical row's daily joint log scores."""
    if best is not None and row.get("model") != best["label"]:
        dm = diebold_mariano(daily, np.asarray(best["daily"]))
        row.update({"best_classical": best["label"], "dm_t_vs_best_classical": dm.statistic,
                    "dm_p_vs_best_classical": dm.p_value})
    return row


def mixture_row(runs: list[dict[str, Any]], base: dict[str, Any] | None,
                best: dict[str, Any] | None) -> dict[str, Any]:
    """The equal-weight mixture of a network's seeds as one joint model: its exact daily joint log
    density is the log of the mean of the seeds' densities (densities only, no scenarios)."""
    stack = np.array([res["daily"] for res in runs])
    daily = special.logsumexp(stack, axis=0) - np.log(len(runs))
    seeds = ",".join(str(res["seed"]) for res in runs)
    s = runs[0]["summary"]
    n_assets = round(s["joint_log_score"] / s["log_score_per_asset_day"])
    row: dict[str, Any] = {"model": f"{MODELS[runs[0]['key']][0]}, seeds {seeds} mixed", "kind": "finar",
                           "seed": "mixture", "joint_log_score": float(daily.mean()),
                           "log_score_per_asset_day": float(daily.mean()) / n_assets}
    if base is not None:
        dm = diebold_mariano(daily, np.asarray(base["daily"]))
        row.update({"dm_t_vs_dcc": dm.statistic, "dm_p": dm.p_value})
    return add_dm(row, daily, best)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short smoke run (two months, 200 paths)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated keys of MODELS")
    ap.add_argument("--seeds", default="0", help="seeds of the network rows (comma-separated)")
    ap.add_argument("--scores-only", default="", help="models (key, or key@seed) scored by their exact "
                    "densities only (no daily scenarios: no energy, variogram or VaR), to save time")
    ap.add_argument("--cache", default=None, help="folder for per-model results, reused when present")
    ap.add_argument("--ensemble-check", action="store_true", help="run only the JointEnsemble's check "
                    "inside the training span (cached under --cache) and print it")
    ap.add_argument("--no-write", action="store_true", help="run and cache the models only (parallel "
                    "processes over --cache); a last run over every model writes the results")
    args = ap.parse_args(argv)
    r = panel_returns()
    if args.ensemble_check:
        ensemble_check(r, Path(args.cache) if args.cache else None)
        return
    test = ("2015-01-01", "2015-02-27") if args.quick else TEST
    n_paths, n_uncond = (200, 20) if args.quick else (N_PATHS, N_UNCOND)
    if args.quick:  # a smoke run trains the networks for an iteration or two only
        global QUICK
        QUICK = True
        MODELS["neural-dcc"] = (MODELS["neural-dcc"][0],
                                lambda: NeuralDCC(max_iter=2, warm_iter=1, warm_start=True))
    stocks = [c for c in r.columns if c != INDEX]
    weights = {"equal": pd.Series(1.0 / len(stocks), index=stocks),
               "minvar": min_variance_weights(r.loc[:TRAIN[1], stocks])}
    cache = Path(args.cache) if args.cache else None
    seeds = [int(v) for v in args.seeds.split(",")]
    jobs = [(key, seed) for key in args.models.split(",") for seed in (seeds if key in NETWORKS else [None])]
    results = {}
    for key, seed in jobs:
        name = key if seed is None else f"{key}@{seed}"
        path = cache / f"p6_{name}{'_quick' if args.quick else ''}.json" if cache else None
        if path is not None and path.exists():
            results[name] = json.loads(path.read_text())
        else:
            results[name] = run_model(key, r, test, weights, n_paths, n_uncond, seed,
                                      scenarios=not {key, name} & set(args.scores_only.split(",")))
        missing = {"stress", "decomposition"} - set(results[name])
        if missing:  # a cache from before these measures: the fit-once model again
            fitted = _make(key, seed)[1]().fit(r.loc[:TRAIN[1]])
            if "stress" in missing:
                results[name]["stress"] = stress_calibration(fitted, r, weights)
            if "decomposition" in missing:
                results[name]["decomposition"] = decomposition(fitted, r)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results[name]))
    base = results.get("dcc-t")
    rows = [row_of(res, base) for res in results.values()]
    # the strongest classical row of this run (by the mean daily joint log score): every network
    # row is tested against it too
    classical = [res for res in results.values() if res["key"] not in NETWORKS]
    best = max(classical, key=lambda res: np.mean(res["daily"])) if classical else None
    for row, res in zip(rows, results.values(), strict=True):
        add_dm(row, np.asarray(res["daily"]), best)
    for key in sorted(NETWORKS & set(args.models.split(","))):
        runs = [res for res in results.values() if res["key"] == key]
        if len(runs) > 1:
            seed_mean = np.mean([res["daily"] for res in runs], axis=0)
            rows.append(add_dm(mean_row(runs, rows, base), seed_mean, best))
            rows.append(mixture_row(runs, base, best))
    for row in rows:
        print({k: row.get(k) for k in COLUMNS[:8]}, flush=True)
    if args.quick or args.no_write:
        return
    pixel = _pixelcnn_reference()
    selection = refit_selection(r, cache)
    write_results("p6_joint", "P6", rows + pixel, columns=COLUMNS, extra={
        "neural_refit_selection": selection,
        "tail_mixture_check": tail_mixture_check(r),
        "ensemble_check": ensemble_check(r, cache),
        "train": list(TRAIN), "test": list(TEST), "refit_every": REFIT_EVERY, "n_paths": N_PATHS,
        "horizon": HORIZON, "n_unconditional_paths": N_UNCOND, "unconditional_horizon": UNCOND_HORIZON,
        "min_variance_weights": weights["minvar"].round(4).to_dict()},
        notes=NOTES)


def _pixelcnn_reference() -> list[dict[str, Any]]:
    """PixelCNN's joint log score on the same setup, as measured by ``benchmarks/_p4_panel.py``
    (3 seeds, fitted once); its scenario metrics are not measured here (see the notes)."""
    path = RESULTS / "p4_panel_loglik.json"
    if not path.exists():
        return []
    rows = [row for row in json.loads(path.read_text())["rows"] if "mean of" in str(row.get("model"))]
    return [{"model": "PixelCNN, 3 seeds (from p4_panel_loglik.json, fitted once)", "kind": "finar",
             "seed": "mean", "fit_once_joint_log_score": row["joint_loglik_per_day"],
             "log_score_per_asset_day": row["loglik_per_asset_day"]} for row in rows]


NOTES = """\
Joint log score: nats per day over the 21 series (index first), the exact joint one-step density;
per asset-day = / 21. `joint_log_score`: the protocol's schedule (every model refitted every 60
test days on an expanding window from 2000; NeuralDCC's refits warm-started from the previous
block's network, 15 L-BFGS iterations). `fit_once_joint_log_score`:
fitted once on 2000-2014, parameters fixed through 2018 (the reference figures' setup). DM:
Diebold-Mariano (HLN) on the daily joint log scores against DCC(1,1)-t; positive favours the row.
Conditional log score: the 20 stocks given the index's same-day return (nats per day). Energy and
variogram (p = 0.5) scores of the 21-vector of returns from 1,000 joint scenarios per day (1-day)
or per origin (20-day cumulative returns, origins 20 days apart); lower is better; empty where a
model was scored by its densities only (--scores-only, to fit the run in the session). Portfolios
of the 20 stocks, rebalanced daily, VaR read from the 1-day scenarios: hit rates with Kupiec and
Christoffersen conditional-coverage p-values (the minimum-variance portfolio, the 5% Christoffersen
tests and the traffic light's worst 250-day zone are in the JSON). corr_distance: mean absolute
difference of the 20 stocks' off-diagonal correlations in each of 200 unconditional 250-day paths
(after 2014) from those of the real 2015-2018 returns; corr_band_q95: the 95% quantile of the same
distance for stationary block-bootstrap paths of 250 real days (mean block 20). In the JSON also:
the co-crash frequency (days on which >= 15 of the 20 stocks fall more than 2 own sigmas; real,
generated and the bootstrap band), the calibration of the stocks' PITs given the index (KS distance
pooled, share of stocks whose Berkowitz test rejects at 5%), and a stress example (first test day,
index at -5%: the equal-weight portfolio's 1% VaR and ES against the unconditional ones).
NeuralDCC: one seed with scenarios, further seeds scored by their densities; the mean row averages
the seeds (DM on the seed-averaged daily scores). Its refit mode (fine-tune the previous network,
against keeping it) was chosen inside the training span, fitted on 2000-2010 and scored on
2011-2014 with the same refits (`neural_refit_selection` in the JSON). PixelCNN: joint log score
only, quoted from p4_panel_loglik.json (same data, split and fitting).
MarginalCopula rows: each column's own forecaster joined by a copula. DCC-t over GJR skew-t
marginals is the classical reference with the best univariate laws of P1m; the neural row puts
finar's default Transformer (pretrained on the 22 bundled series up to 2014, warm 3-epoch refits)
on every column under the NeuralDCC copula, refitted every 60 days. `dm_t_vs_best_classical`:
DM against the classical row with the best mean joint log score in this run. "seeds mixed":
the equal-weight mixture of the seeds' joint densities (exact, densities only). In the JSON,
`fit_once_{train,test}_{marginals,copula}` split each fit-once model's daily joint log score into
the sum of its marginal log scores and the copula's term, and `tail_mixture_check` measures,
inside the training span only, a static mixture of t copulas against DCC-t's single tail
parameter: the check that chose family="t-mix" (rows "mixture of t copulas").
JointEnsemble rows: two joint models mixed day by day (each day's vector from one of them, weights
1/2 fixed in advance; exact density, conditional laws and scenarios); the neural one mixes the
NeuralDCC t-mix row and the Transformer-marginal row of the same seed, the classical one DCC t-mix
and DCC-t over GJR skew-t. `ensemble_check` in the JSON: the neural mixture inside the training
span (fitted on 2000-2010, 2011-2014 scored with the same refits). `dm_energy_1_vs_dcc`: DM on the
daily 1-day energy scores against DCC-t (positive: the row's are lower).
"""


if __name__ == "__main__":
    main()
