"""The report's sections, one function each: ``build(ctx, section)`` fills one :class:`Section`.

Every number shown comes from finar's own functions (:func:`finar.backtest`,
:func:`finar.compare`, :func:`finar.stylized_facts`, :class:`finar.Scenarios`,
``finar.AnomalyDetector``, ``finar.ticks.realism``), run by the steps of
:mod:`finar.reporting.pipeline` and tabulated by :mod:`finar.reporting.tables` (the ``finar``
command calls the same ones), or, in the benchmark record, from the results files the benchmark
scripts wrote (:mod:`finar.reporting.record`). Each section states its data span, settings and
seeds. A section raises :class:`SectionUnavailable` (or any :class:`finar.FinarError`) when it
cannot run on the data; the report then shows the reason in its place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from finar import evaluation, ticks
from finar.evaluation.joint import correlation_distance
from finar.protocols import P1, P3
from finar.reporting import figures
from finar.reporting.context import Context
from finar.reporting.page import Cell, Section, fmt, frame_html, p_value_cell, zone_cell
from finar.reporting.pipeline import (
    ModelSpec,
    SectionUnavailable,
    anomaly_split,
    run_detector,
    run_tick_model,
    span,
)
from finar.reporting.portfolio import PORTFOLIO_MODELS, PortfolioRun, realised_portfolio, run_portfolio
from finar.reporting.record import (
    P1_COLUMNS,
    P3_COLUMNS,
    P3_SEED,
    load_record,
    read_result,
    registry_rows,
)
from finar.reporting.scenarios import fan_chart
from finar.reporting.tables import (
    RISK_LEVELS,
    comparison_table,
    portfolio_risk,
    realism_table,
    tail_risk,
    top_anomalies,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["SECTIONS", "anomalies", "benchmark_record", "data_overview", "fan_charts", "model_comparison",
           "pit_and_var", "portfolio", "recorded_real_trades", "stylized_facts", "tick_realism"]

VAR_TAG = "1"  # the VaR level drawn in the exceedance plots (1%)


def _model_names(ctx: Context) -> list[str]:
    return [m.name for m in ctx.config.models]


def _palette(ctx: Context) -> dict[str, str]:
    return figures.colors(["real", *_model_names(ctx)])


# --- data overview -------------------------------------------------------------------------------

def data_overview(ctx: Context, sec: Section) -> None:
    """Prices, daily returns and rolling volatility, with basic statistics."""
    r, px = ctx.returns, ctx.prices
    sec.note(f"Data: {ctx.label}, column {r.name}; prices {span(px.index)}; returns {span(r.index)}.")
    if ctx.panel is not None:
        sec.note(f"The data has {ctx.panel.shape[1]} price columns ({', '.join(ctx.panel.columns)}): this "
                 f"section and the single-series ones model {r.name}; the portfolio section models them "
                 "jointly.")
    sec.note("Returns are daily log returns in percent (finar.returns); volatility is the rolling "
             "standard deviation times sqrt(252).")
    desc = r.describe()
    ann = float(r.std() * np.sqrt(figures.ANNUALISE))
    sec.table(["returns", "first", "last", "mean (%)", "std (%)", "annualised vol (%)", "min (%)", "max (%)",
               "skewness", "excess kurtosis"],
              [[int(desc["count"]), fmt(r.index[0]), fmt(r.index[-1]), desc["mean"], desc["std"], ann,
                desc["min"], desc["max"], float(r.skew()), float(r.kurt())]])
    sec.figure(figures.prices_figure(px, str(r.name)), "Price, log scale.")
    sec.figure(figures.returns_and_volatility(r), "Daily returns and 20- and 60-day rolling volatility.")


# --- model comparison (P1) ----------------------------------------------------------------------

def _scenario_models(ctx: Context) -> list[ModelSpec]:
    """The models that generate scenarios: those without covariates (simulating a model with
    covariates needs future covariate paths, which finar does not model yet)."""
    return [m for m in ctx.config.models if not m.exog]


def _note_no_covariate_scenarios(ctx: Context, sec: Section) -> None:
    left_out = [m.name for m in ctx.config.models if m.exog]
    if left_out:
        sec.note(f"Left out here: {', '.join(left_out)}. Scenarios of a model with covariates need the "
                 "covariates' future path (sample(..., exog_future=...)), which this report does not model.")


def _settings_note(ctx: Context) -> str:
    start, end = ctx.test_period()
    c = ctx.config
    refit = [m.name for m in c.models if not m.refit]
    once = f"; fitted once on the data before {fmt(start)}: {', '.join(refit)}" if refit else ""
    with_x = [m.name for m in c.models if m.exog]
    cov = (f" Models given the covariate ({', '.join(with_x)}): {ctx.data.exog_note}." if with_x
           else f" {ctx.data.exog_note[0].upper()}{ctx.data.exog_note[1:]}.")
    pre = [m.name for m in c.models if m.params.get("train__pretrain")]
    pretrained = (f" Started from a network pretrained on finar's bundled daily series (the S&P 500, WTI "
                  f"and 20 stocks) up to the end of the last year before {fmt(start)}, nothing of the test "
                  f"days (finar.models.pretraining): "
                  f"{', '.join(pre)}." if pre else "")
    return (f"Test days {fmt(start)} to {fmt(end)}, one-step density forecasts, expanding window refitted "
            f"every {c.refit_every} test days{once}. {c.backtest_paths:,} paths per day where a model has no "
            f"closed form; seed {c.seed}.{cov}{pretrained} Protocol: P1 (docs/protocols.md#p1).")


def model_comparison(ctx: Context, sec: Section) -> None:
    """The P1 table: scores, Diebold-Mariano against the baseline, VaR tests and traffic lights."""
    bts = ctx.backtests()
    base = ctx.config.baseline_name
    table = comparison_table(bts, baseline=base, seed=ctx.config.seed)
    sec.note(_settings_note(ctx))
    sec.note(f"DM: Diebold-Mariano statistic of the daily log-score difference against {base} (positive = "
             "better), HAC variance. Chr.: Christoffersen conditional coverage; ES Z2: Acerbi-Szekely; "
             "PIT Berk.: Berkowitz test of the PIT. p-values below 5% are shaded, below 1% darker. Traffic "
             "light: Basel zone of the last 250 days of 1% VaR exceedances.")
    n = int(table["n_days"].iloc[0])
    best = table["log_score"].max()
    rows = []
    for name, row in table.iterrows():
        hits1, hits5 = int(row["hits_1"]), int(row["hits_5"])
        rows.append([
            Cell(str(name)), Cell(fmt(row["log_score"]), "num best" if row["log_score"] == best else "num"),
            row["crps"], Cell(fmt(row["dm_log_score"], 2), "num"), p_value_cell(row["dm_log_score_p"]),
            Cell(f"{hits1} ({row['hit_1']:.2%})", "num"), p_value_cell(row["kupiec_1"]),
            p_value_cell(row["christoffersen_cc_1"]),
            Cell(f"{hits5} ({row['hit_5']:.2%})", "num"), p_value_cell(row["kupiec_5"]),
            p_value_cell(row.get("es_z2_p_2.5")), p_value_cell(row["pit_berkowitz_p"]),
            zone_cell(row.get("traffic_light"))])
    sec.table(["model", "log score", "CRPS", "DM", "DM p", "hits 1%", "Kupiec 1% p", "Chr. 1% p",
               "hits 5%", "Kupiec 5% p", "ES Z2 2.5% p", "PIT Berk. p", "traffic light"], rows,
              caption=f"{n:,} test days; expected hits {0.01 * n:.1f} at 1% and {0.05 * n:.1f} at 5%. "
                      "Log score in nats per day (higher is better), CRPS in % (lower is better).")
    if len(bts) > 1:
        sec.figure(figures.score_difference({k: b.daily["log_score"] for k, b in bts.items()}, base),
                   f"Cumulative daily log score of each model minus {base}: rising = better on those days.")


def benchmark_record(ctx: Context, sec: Section) -> None:
    """Every registered model with its recorded P1 and P3 figures, this run's beside them."""
    record = load_record(ctx.results_dir)
    if record.p1 is None and record.p3 is None:
        raise SectionUnavailable(f"no benchmark results (p1_sp500_daily.json, p3_sp500_facts.json) in "
                                 f"{record.source}")
    rows = registry_rows(record)
    for doc, what in ((record.p1, "P1"), (record.p3, "P3")):
        if doc is not None:
            sec.note(f"{what}: `{doc.get('command')}` on {doc.get('machine')}, finar "
                     f"{doc.get('finar_version')}, {doc.get('created')}.")
    p1_days = " to ".join((record.p1 or {}).get("test_period", []))
    p3 = record.p3 or {}
    sec.note(f"Figures as recorded by the benchmark scripts in benchmarks/results, read from "
             f"{record.source} (shown to 4 decimals): P1 test days {p1_days} "
             f"(docs/protocols.md); P3 seed {P3_SEED} of {p3.get('seeds')}, {p3.get('n_paths')} paths of "
             f"{p3.get('length')} days after a {p3.get('burn_in')}-day burn-in. This run's own figures are "
             "in the sections above; its P1 log score is set beside the record where the settings match.")
    own: dict[str, float] = {}
    if ctx.is_p1_data and "backtests" in ctx.cache:
        start, end = ctx.test_period()
        if (fmt(start), fmt(end)) == P1.test_period and ctx.config.refit_every == P1.refit_every:
            own = {k: float(b.summary()["log_score"]) for k, b in ctx.backtests().items()}
    p1 = rows[rows["protocol"].ne("P3")]
    sec.heading("P1: one-step density forecasts (recorded)")
    out = []
    for rec in p1.itertuples(index=False):
        d = rec._asdict()
        if pd.isna(d["protocol"]):
            out.append([d["registry"], d["model"], Cell("not benchmarked yet", "bad"),
                        *([""] * len(P1_COLUMNS))])
            continue
        this = own.get(str(d["model"]))
        match = "" if this is None else ("same" if round(this, 4) == round(d["log_score"], 4)
                                         else f"differs ({this:.4f})")
        out.append([d["registry"], d["model"], *[_recorded_cell(k, d[k]) for k in P1_COLUMNS],
                    Cell(match, "best" if match == "same" else "bad" if match else "")])
    sec.table(["registry", "benchmark row", *(LABELS.get(k, k) for k in P1_COLUMNS), "this run"], out)
    sec.heading("P3: stylized facts of generated paths (recorded, seed 0)")
    sec.table(["registry", "benchmark row", *(LABELS.get(k, k) for k in P3_COLUMNS)],
              [[d.registry, d.model, *[_recorded_cell(k, getattr(d, k)) for k in P3_COLUMNS]]
               for d in rows[rows["protocol"] == "P3"].itertuples(index=False)])


LABELS = {"log_score": "log score", "crps": "CRPS", "hit_1": "hit 1%", "kupiec_1": "Kupiec 1% p",
          "hit_5": "hit 5%", "kupiec_5": "Kupiec 5% p", "christoffersen_cc_1": "Chr. 1% p",
          "traffic_light": "traffic light", "dm_vs_garch_t": "DM vs GARCH-t"}


def _recorded_cell(key: str, value: object) -> Cell:
    if key == "traffic_light":
        return zone_cell(value)
    if key.startswith(("kupiec", "christoffersen")):
        return p_value_cell(value)
    return Cell(fmt(value), "num")


# --- fan charts -----------------------------------------------------------------------------------

def fan_charts(ctx: Context, sec: Section) -> None:
    """Scenario fans per model: from the last date, and ``horizon`` days earlier with the realised path."""
    c, r, px = ctx.config, ctx.returns, ctx.prices
    h = c.fan_horizon
    window = min(250, max(60, 2 * h))  # days of history drawn before each fan
    has_realised = len(r) > h + 250
    origin = r.index[-h - 1] if has_realised else r.index[-1]
    sec.note(f"Each model is fitted on the returns {span(r.loc[:origin].index)}; "
             f"{c.fan_paths:,} paths of {h} days, seed {c.seed}. Bands: 5-95% and 25-75% of the simulated "
             "price; line: median.")
    if has_realised:
        sec.note(f"Left: from {fmt(origin)}, with the realised price path (red) over the next {h} days. "
                 f"Right: from the last date, {fmt(r.index[-1])}, conditioning on all returns with the same "
                 "fitted parameters.")
    else:
        sec.note(f"The data is too short to hold out {h} days, so only fans from the last date are drawn.")
    _note_no_covariate_scenarios(ctx, sec)
    for spec in _scenario_models(ctx):
        m = spec.create().fit(r.loc[:origin])
        panels = []
        if has_realised:
            sc = m.sample(context=r.loc[:origin], horizon=h, n_paths=c.fan_paths, seed=c.seed)
            fig = fan_chart(sc, px.loc[:origin], sc.columns[0], kind="price", window=window)
            real = px.loc[origin:].iloc[: h + 1]
            fig.add_scatter(x=real.index, y=real.to_numpy(), mode="lines", name="realised",
                            line={"color": figures.HIT_COLOR, "width": 1.4})
            q = tail_risk(sc, (0.01,))["VaR 1%"].iloc[0]
            panels.append((fig, f"{spec.name}: from {fmt(origin)}; {h}-day 1% VaR of the log return "
                                f"{q:.2f}%."))
        fwd = m.sample(context=r, horizon=h, n_paths=c.fan_paths, seed=c.seed)
        q, es = tail_risk(fwd, (0.01,)).iloc[0][["VaR 1%", "ES 1%"]]
        panels.append((fan_chart(fwd, px, fwd.columns[0], kind="price", window=window),
                       f"{spec.name}: from {fmt(r.index[-1])}; {h}-day 1% VaR {q:.2f}%, ES {es:.2f}%."))
        sec.heading(spec.name)
        sec.grid(lambda panels=panels: [sec.figure(f, cap) for f, cap in panels])


# --- portfolio (panels) ----------------------------------------------------------------------------

def portfolio(ctx: Context, sec: Section) -> None:
    """A panel's portfolio: joint (DCC-t) and independent scenarios, unconditional and given a fall
    of the index, with their 1-day and horizon VaR/ES and the correlation of the generated paths."""
    c, r, plan = ctx.config, ctx.panel, ctx.plan
    if r is None or plan is None:
        raise SectionUnavailable("the portfolio section needs data with several price columns")
    start, _ = ctx.test_period()
    h, fall, lead = c.portfolio_horizon, c.stress_fall, plan.lead
    runs = {spec.name: run_portfolio(r, spec, plan, train_end=start, fall=fall, horizon=h,
                                     n_paths=c.portfolio_paths, seed=c.seed)
            for spec in PORTFOLIO_MODELS}
    train = next(iter(runs.values())).train
    held = plan.held
    stress = f"{lead} {fall:+g}% on day 1"
    sec.note(f"Panel: {ctx.label}, {r.shape[1]} columns ({', '.join(r.columns)}); returns {span(r.index)}. "
             f"Each model is fitted on the returns before the test period, {span(train.index)}, and draws "
             f"{c.portfolio_paths:,} paths of {h} days from the last date, {fmt(r.index[-1])}, "
             f"conditioning on all returns with the fitted parameters; seed {c.seed}.")
    sec.note(f"Portfolio: {plan.rule}, rebalanced daily (Scenarios.portfolio): "
             + ", ".join(f"{col} {plan.weights[col]:.4g}" for col in held) + ". Index: "
             + (f"{plan.index}." if plan.index is not None else
                f"none named like one, so the stress falls on the first column, {lead}."))
    sec.note(f"Stress: {lead} returns {fall:g}% (log) on the first day of every path; the other columns "
             "are drawn from each model's exact conditional law given it "
             f"(sample(..., given={{{lead!r}: {fall:g}}})), and the paths go on from there.")
    sec.note("DCC-t: DCC(1,1) with a Student-t copula over GARCH(1,1)-t marginals, joint across assets. "
             "Independent GARCH-t: the same marginals drawn independently (Copula(family='independent')), "
             "labelled independent across assets: its columns share no shocks, so its portfolio is too "
             "diversified and a fall of the index moves no other column - the reference a joint model must "
             "beat, not a forecast of the joint risk.")
    scenarios = {}
    for name, run in runs.items():
        scenarios[(name, "unconditional")] = run.portfolio
        scenarios[(name, stress)] = run.portfolio_stressed
    risk = portfolio_risk(scenarios)
    sec.results.update(runs=runs, plan=plan, risk=risk)
    levels = [f"{a:.0%}" for a in RISK_LEVELS]
    head = ["model", "dependence", "scenario",
            *(f"{m} {a} {t}" for t in ("1-day", f"{h}-day") for a in levels for m in ("VaR", "ES"))]
    rows = []
    for (name, scenario), row in risk.iterrows():
        cells = [row[f"{m} {a} {t}"] for t in ("1-day", "horizon") for a in levels for m in ("VaR", "ES")]
        rows.append([Cell(str(name)), Cell(runs[name].dependence), Cell(str(scenario)),
                     *[Cell(fmt(v, 2), "num") for v in cells]])
    sec.table(head, rows,
              caption="The portfolio's value at risk and expected shortfall as positive losses, in percent "
                      f"log return: of the first day and of the return over all {h} days.")
    hist = realised_portfolio(r, plan.weights)
    window = min(250, max(60, 3 * h))
    for name, run in runs.items():
        sec.heading(f"{name} ({run.dependence})")
        sec.grid(lambda run=run: [
            sec.figure(fan_chart(run.portfolio, hist, "portfolio", kind="returns", window=window),
                       f"{run.name}, {run.dependence}: the portfolio's cumulative return, unconditional; "
                       f"{h}-day 1% VaR {_risk(risk, run.name, 'unconditional', 'horizon')}."),
            sec.figure(_stress_fan(run, hist, lead, fall, window),
                       f"{run.name}, {run.dependence}: given {stress} (dashed: the median path of {lead}); "
                       f"{h}-day 1% VaR {_risk(risk, run.name, stress, 'horizon')}.")])
    _correlation_table(ctx, sec, runs)


def _risk(risk: pd.DataFrame, name: str, scenario: str, tag: str) -> str:
    return f"{risk.loc[(name, scenario), f'VaR 1% {tag}']:.2f}%"


def _stress_fan(run: PortfolioRun, hist: pd.Series, lead: str, fall: float, window: int) -> go.Figure:
    """The stressed portfolio's fan, with the median cumulative path of the stressed column."""
    fig = fan_chart(run.portfolio_stressed, hist, "portfolio", kind="returns", window=window)
    med = run.stressed.quantile(0.5, cumulative=True)[lead].to_numpy()
    fig.add_scatter(x=[hist.index[-1], *run.stressed.index], y=[0.0, *med], mode="lines",
                    name=figures.label(f"{lead} median (given {fall:g}% on day 1)"),
                    line={"color": figures.HIT_COLOR, "width": 1.3, "dash": "dash"})
    return fig


def _correlation_table(ctx: Context, sec: Section, runs: dict[str, PortfolioRun]) -> None:
    """Correlation distance of each model's unconditional paths from the real panel's correlation."""
    r, c = ctx.panel, ctx.config
    rows, dist = [], {}
    for name, run in runs.items():
        d = correlation_distance(r, run.scenarios.paths, seed=c.seed)
        dist[name] = d
        rows.append([Cell(name), Cell(run.dependence), d["mean_corr_real"], d["mean_corr_generated"],
                     d["corr_distance_generated"], d["corr_distance_boot_q95"],
                     Cell(fmt(d["corr_within_band"]), "best" if d["corr_within_band"] else "bad")])
    sec.results["correlation"] = dist
    sec.heading("Correlation of the generated paths")
    sec.table(["model", "dependence", "mean corr. (real)", "mean corr. (generated)", "distance",
               "bootstrap 95%", "within band"], rows,
              caption=f"Mean pairwise correlation of the real returns ({span(r.index, count=False)}) and "
                      "of the unconditional paths (pooled); distance: mean absolute difference of each "
                      "path's pairwise correlations from the real ones, against the same for block-bootstrap "
                      f"windows of {c.portfolio_horizon} real days "
                      "(finar.evaluation.joint.correlation_distance).")


# --- PIT and VaR -------------------------------------------------------------------------------

def pit_and_var(ctx: Context, sec: Section) -> None:
    """PIT histograms and 1% VaR exceedances of every model's backtest."""
    bts = ctx.backtests()
    palette = _palette(ctx)
    sec.note(_settings_note(ctx))
    sec.note("PIT: probability integral transform of each realised return under its one-step forecast; "
             "calibrated forecasts give a flat histogram (dotted: 95% band per bin under uniformity). "
             "VaR: realised returns against minus the 1% VaR forecast; crosses mark exceedances.")
    for name, bt in bts.items():
        s = bt.summary()
        n = len(bt.daily)
        hits = int(bt.daily[f"hit_{VAR_TAG}"].sum())
        sec.heading(name)
        sec.grid(lambda name=name, bt=bt, s=s, n=n, hits=hits: [
            sec.figure(figures.pit_histogram(bt.daily["pit"], palette[name]),
                       f"PIT: Berkowitz p = {s['pit_berkowitz_p']:.3f}, KS p = {s['pit_ks_p']:.3f}."),
            sec.figure(figures.var_exceedances(bt.daily, VAR_TAG, palette[name]),
                       f"1% VaR: {hits} exceedances in {n:,} days (expected {0.01 * n:.1f}); Kupiec p = "
                       f"{s['kupiec_1']:.3f}, Christoffersen p = {s['christoffersen_cc_1']:.3f}.")])


# --- stylized facts (P3) -------------------------------------------------------------------------

SCORE_KEYS = ["emd_std_1", "emd_std_20", "dy_1", "dy_20", "dy_100", "acf_id", "acf_abs", "acf_sq", "leverage"]
FACT_KEYS = ["skew", "kurt_1", "kurt_20", "hill_left", "hill_right", "acf_abs_lag1", "leverage_lag1",
             "acf_abs_decay", "cf_asym_1"]


def stylized_facts(ctx: Context, sec: Section) -> None:
    """P3 scorecard of each generator against the real series, with ACF, leverage, tail and QQ plots."""
    c = ctx.config
    real = ctx.facts_window()
    gens = {}
    _note_no_covariate_scenarios(ctx, sec)
    for spec in _scenario_models(ctx):
        m = spec.create().fit(real)
        sc = m.sample(context=real, horizon=c.facts_burn_in + c.facts_length, n_paths=c.facts_paths,
                      seed=c.seed)
        gens[spec.name] = sc.paths[:, c.facts_burn_in:, 0]
    facts = evaluation.stylized_facts(real, gens, references=True, seed=c.seed, lags=c.facts_lags)
    table = facts.table()
    sec.note(f"Real series: {span(real.index)}. Each generator is fitted on it and simulates "
             f"{c.facts_paths:,} paths of {c.facts_length:,} days after a {c.facts_burn_in}-day burn-in "
             f"(dropped), conditioned on the real series; seed {c.seed}; ACF and leverage lags "
             f"1-{c.facts_lags}. P3's benchmark uses {P3.n_paths} paths of "
             f"{P3.length:,} days (see the benchmark record).")
    sec.note("References: GARCH(1,1)-normal simulated unconditionally and a stationary block bootstrap of "
             "the real series (mean block 20) - the sampling-noise floor of the distributional scores.")
    scored = table[table["kind"] != "real"]
    best = {k: scored[k].min() for k in SCORE_KEYS}
    sec.table(["generator", "kind", *SCORE_KEYS],
              [[Cell(str(name)), Cell(str(row["kind"])),
                *[Cell(fmt(row[k]), "num best" if row[k] == best[k] else "num") for k in SCORE_KEYS]]
               for name, row in scored.iterrows()],
              caption="Distances to the real series, lower is better (best per column in green): EMD of "
                      "standardised 1- and 20-day returns, DY histogram distance at 1, 20, 100 days, RMS ACF "
                      "errors of r, |r|, r^2, and the leverage-curve error.")
    sec.table(["series", *FACT_KEYS], [[Cell(str(name)), *[row[k] for k in FACT_KEYS]]
                                       for name, row in table.iterrows()],
              caption="Cont's stylized facts: skewness, excess kurtosis of 1- and 20-day returns, Hill tail "
                      "indices (top 5%), ACF of |r| at lag 1, leverage at lag 1, power-law decay of the ACF "
                      "of |r|, coarse-fine volatility asymmetry.")
    palette = figures.colors(["real", *gens, "GARCH(1,1)-normal", "block bootstrap"])
    cv = facts.curves
    sec.grid(lambda: [
        sec.figure(figures.band_figure(cv["acf_abs"], "ACF of |r|", palette, bands=list(gens)),
                   "Volatility clustering: ACF of absolute returns (mean over paths; bands 5-95%)."),
        sec.figure(figures.band_figure(cv["acf_id"], "ACF of r", palette),
                   "Linear autocorrelation of returns (mean over paths)."),
        sec.figure(figures.band_figure(cv["leverage"], "Corr(r_t, r_t+k^2)", palette),
                   "Leverage: correlation of today's return with future squared returns."),
        sec.figure(figures.tail_figure(cv["tails"], "left", palette),
                   "Left tail, log-log: probability of a daily loss above x."),
        sec.figure(figures.qq_figure(cv["qq"], palette),
                   "QQ: generated against real quantiles, pooled over paths."),
    ])


# --- anomalies ---------------------------------------------------------------------------------

def _anomaly_spec(ctx: Context) -> ModelSpec:
    return next(m for m in ctx.config.models if m.name == ctx.config.anomaly_name)


def anomalies(ctx: Context, sec: Section) -> None:
    """Flagged days of ``finar.AnomalyDetector`` on the test period: timeline and the largest events."""
    c, r = ctx.config, ctx.returns
    train, test = anomaly_split(r, test_start=c.backtest_start, test_end=c.backtest_end)
    spec = _anomaly_spec(ctx)
    run = run_detector(spec, train, test, level=c.anomaly_level, exog=ctx.data.exog)
    flags = run.flags
    if spec.exog:
        sec.note(f"The detector's model is given the {ctx.data.exog_note}.")
    sec.note(f"Detector: {run.name}, fitted on {span(train.index)}; days {fmt(test.index[0])} to "
             f"{fmt(test.index[-1])} scored from their one-step predictive distribution (tail and flat "
             f"tests); flagged when the calibrated p-value is at most {c.anomaly_level:g}; seed {c.seed}.")
    n_flag = int(flags["flag"].sum())
    sec.text(f"{n_flag} of {len(flags):,} days flagged (expected about {c.anomaly_level * len(flags):.1f} "
             "under a calibrated model).")
    sec.figure(figures.anomaly_timeline(r, flags),
               "Returns with flagged days (top) and the anomaly score (bottom).")
    events = run.detector.events(flags)
    if len(events):
        sec.heading("Events (consecutive flagged days grouped)")
        sec.parts.append(frame_html(events.head(15), index=False))
    top = top_anomalies(flags, r, 10)
    if len(top):
        sec.heading("Most anomalous days")
        sec.table(["day", "return (%)", "score (-log p)", "p-value"],
                  [[fmt(d), row["return"], row["score"], Cell(f"{row['p_value']:.2e}", "num")]
                   for d, row in top.iterrows()])


# --- ticks -----------------------------------------------------------------------------------

def tick_realism(ctx: Context, sec: Section) -> None:
    """``finar.ticks.realism`` of a TickModel fitted to the given trades against the trades."""
    t, c = ctx.trades, ctx.config
    if t is None:
        raise SectionUnavailable("no trades were given (pass trades= or --trades)")
    run = run_tick_model(t, c.tick_params, n_events=c.tick_events, seed=c.seed)
    sec.note(f"Trades: {ctx.trades_label}, {len(t):,} events, {fmt(t.index[0])} to {fmt(t.index[-1])}. "
             f"TickModel({', '.join(f'{k}={v!r}' for k, v in c.tick_params.items())}); {c.tick_events:,} "
             f"synthetic events, seed {c.seed}. "
             "Metrics: protocol P5 (docs/protocols.md#p5).")
    sec.results.update(synthetic=run.synthetic, realism=run.realism)
    sec.parts.append(frame_html(realism_table(run.realism)))
    closes = {"real": ticks.to_bars(t, "1min")["close"],
              "synthetic": ticks.to_bars(run.synthetic, "1min")["close"]}
    sec.figure(figures.bar_closes(closes), "One-minute closes of the real and the synthetic trades "
                                           "(finar.ticks.to_bars), by minute from each stream's start.")
    recorded_real_trades(ctx, sec)


#: the recorded P5 columns shown for real trades: (key, heading)
P5_REAL_COLUMNS = [("loglik_per_event", "log-lik / trade"), ("auroc", "discriminator AUROC"),
                   ("auroc_range", "AUROC, lowest to highest stream"),
                   ("zero_gap_share_synth", "zero-gap share"),
                   ("dp_acf1_synth", "lag-1 ACF of price changes"),
                   ("dp_acf1_range", "lag-1 ACF, lowest to highest stream"),
                   ("bar_kurtosis_synth", "1-min bar kurtosis"),
                   ("closer_than_hawkes", "closer than Hawkes")]


def recorded_real_trades(ctx: Context, sec: Section) -> None:
    """The recorded P5 rows on real E-mini trades, beside the real-vs-real floor (the first and
    second halves of the held-out trades compared by the same metrics)."""
    doc = read_result("p5_ticks.json", ctx.results_dir)
    rows = [r for r in (doc or {}).get("rows", []) if r.get("data") == "emini"]
    if not rows:
        return
    sec.heading("Recorded P5 on real trades (E-mini S&P 500 futures)")
    # the real values of a model row: the whole held-out part (the floor row's are its second half)
    real = next((r for r in rows if r.get("kind") != "floor"), rows[0])
    sec.table(["model", *(h for _, h in P5_REAL_COLUMNS)],
              [[r["model"], *(r.get(k) for k, _ in P5_REAL_COLUMNS)] for r in rows] +
              [["held-out trades (real)", None, None, None, real.get("zero_gap_share_real"),
                real.get("dp_acf1_real"), None, real.get("bar_kurtosis_real"), None]])
    streams = len(real.get("by_seed") or [None])  # files written before several streams: one
    sec.note(f"Recorded P5 on real trades: `{doc.get('command')}`, {doc.get('created')}, "
             f"{doc.get('machine')}: "
             "fitted on the first 70% of 500,000 E-mini trades (2013-09-01 to 2013-09-03, from the "
             "MIT-licensed mlfinpy 0.1.2 wheel; original source undocumented), compared with the last "
             f"30%. Generated figures are means over {streams} generated stream(s) per model, each as "
             "long as the held-out part; the ranges show how far one stream moves them. The 'real vs "
             "real' row compares the two halves of the held-out trades: the noise floor of every metric "
             "and of the discriminator (0.5: indistinguishable). Protocol P5 (docs/protocols.md#p5).")


#: the report's sections in page order: (key, heading, build)
SECTIONS: list[tuple[str, str, Callable[[Context, Section], None]]] = [
    ("overview", "Data overview", data_overview),
    ("comparison", "Model comparison (one-step density forecasts)", model_comparison),
    ("fans", "Scenario fan charts", fan_charts),
    ("portfolio", "Portfolio scenarios and stress", portfolio),
    ("pit-var", "PIT histograms and VaR exceedances", pit_and_var),
    ("facts", "Stylized facts of generated paths", stylized_facts),
    ("anomalies", "Anomaly timeline", anomalies),
    ("ticks", "Tick realism", tick_realism),
    ("record", "Benchmark record: every finar model", benchmark_record),
]
