"""``finar backtest`` and ``finar anomalies``: rolling backtests and anomaly flags of one series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from finar._estimator import check_seed
from finar._io import write_frame
from finar.cli._common import (
    ColumnOpt,
    DataOpt,
    EndOpt,
    ForceOpt,
    StartOpt,
    check_outputs,
    check_table_path,
    data_path,
    forecaster_names,
    frame_table,
    model_spec,
    stderr,
    stdout,
    working,
    write,
)
from finar.protocols import P1
from finar.reporting.pipeline import (
    anomaly_split,
    backtest_period,
    day,
    load_data,
    run_backtest,
    run_detector,
    span,
)
from finar.reporting.tables import comparison_table, top_anomalies

__all__ = ["anomalies", "backtest"]

ModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="Model as name or name:key=value,key=value (exog=true gives it the day's range "
                          "as a covariate; seeds=3 mixes the network trained from seeds 0, 1, 2); repeat "
                          f"for several. Registered: {forecaster_names()}.")]
CovariatesOpt = Annotated[str, typer.Option(
    "--covariates", help="auto: the day's Parkinson range when the data has high/low prices (models "
                         "marked exog=true get it); range: require it; none: returns only.")]
#: ``finar backtest``'s models when none are named; the last reads the range when the data has it
DEFAULT_BACKTEST = ["garch:dist=t", "ar"]
DEFAULT_WITH_RANGE = "garchx:vol=gjr,dist=t,exog=true"
_ZONE = {"green": "green", "yellow": "yellow", "red": "red"}


def _p(v: Any) -> str:
    return "" if pd.isna(v) else f"{v:.4f}"


def _zone(v: Any) -> str:
    return "" if pd.isna(v) else f"[{_ZONE.get(str(v), 'white')}]{escape(str(v))}[/]"


#: the columns of :func:`finar.reporting.tables.comparison_table` that ``finar backtest`` prints
COMPARISON = {"log_score": ("log score", _p), "crps": ("CRPS", _p), "dm_log_score": ("DM", _p),
              "hit_1": ("hit 1%", lambda v: f"{v:.2%}"), "kupiec_1": ("Kupiec 1% p", _p),
              "christoffersen_cc_1": ("Chr. 1% p", _p), "hit_5": ("hit 5%", lambda v: f"{v:.2%}"),
              "kupiec_5": ("Kupiec 5% p", _p), "traffic_light": ("traffic light", _zone)}


def backtest(
    data: DataOpt = "sp500",
    model: ModelsOpt = None,
    test_start: Annotated[str | None, typer.Option(
        "--test-start", help=f"First test day. Default: {P1.test_start} (protocol P1) when the data has "
                             "500 returns before it, else the start of the last quarter.")] = None,
    test_end: Annotated[str | None, typer.Option("--test-end", help="Last test day.")] = None,
    refit_every: Annotated[int, typer.Option(
        min=1, help="Refit every this many test days.")] = P1.refit_every,
    paths: Annotated[int, typer.Option("--paths", "-n", min=1,
                                       help="Paths per day for models without a closed form.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the daily scores of every model (.parquet or .csv).")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    covariates: CovariatesOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Rolling one-step backtest of one or more models, with VaR tests and DM against the first.

    Without -m: GARCH(1,1)-t, AR, and GJR-X with the day's range when the data has high/low prices.
    An existing --out file is kept unless --force is given.

    Example: `finar backtest --data sp500 -m garch:dist=t -m ar --test-start 2015-01-01`
    """
    check_seed(seed, "--seed")
    check_table_path(out)
    check_outputs({"--out": out}, {"--data": data_path(data)}, force=force)
    specs = [model_spec(t) for t in (model or DEFAULT_BACKTEST)]
    for spec in specs:
        spec.create()  # an unknown model or parameter fails before any work
    d = load_data(data, column, start=start, end=end, covariates=covariates)
    _, r = d.one_series("backtest")
    if model is None and d.exog is not None:
        specs.append(model_spec(DEFAULT_WITH_RANGE))
    for spec in specs:
        spec.covariates(d.exog)  # a model asking for covariates the data lacks fails before any work
    first, last = backtest_period(r.index, test_start, test_end)
    stderr().print(escape(d.exog_note[0].upper() + d.exog_note[1:]), soft_wrap=True)
    results = {}
    for spec in specs:
        with working(f"backtest of {spec.name}"):
            results[spec.name] = run_backtest(r, spec, first, last, refit_every=refit_every, n_paths=paths,
                                              seed=seed, progress=True, exog=d.exog)
        stderr().print(f"backtest of {escape(spec.name)}: {results[spec.name].seconds:.1f} s", soft_wrap=True)
    table = comparison_table(results, baseline=0, seed=seed)
    con = stdout()
    days = next(iter(results.values())).daily.index
    con.print(f"{len(days):,} test days {span(days, count=False)} of {escape(d.label)}; refit every "
              f"{refit_every}; seed {seed}; DM against {escape(specs[0].name)} (positive = better)",
              soft_wrap=True)
    width = max(len(str(n)) for n in table.index)
    rendered = frame_table(table, COMPARISON, index=("model", lambda v: escape(str(v))), no_wrap=True,
                           index_options={"no_wrap": True, "min_width": width})
    Console(highlight=False, width=max(con.width, 140)).print(rendered)  # all columns, even in a pipe
    if out is not None:
        frame = pd.concat({name: b.daily for name, b in results.items()}, names=["model", "time"])
        frame = frame.reset_index()
        write("the daily scores", out, lambda p: write_frame(frame, p, overwrite=force))
        con.print(f"wrote daily scores to [bold]{escape(str(out))}[/]", soft_wrap=True)


def anomalies(
    data: DataOpt = "sp500",
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Detector model as name or name:key=value,...")] = "garch:dist=t",
    level: Annotated[float, typer.Option(help="Flag days whose p-value is below this.")] = 0.01,
    train_end: Annotated[str | None, typer.Option(
        "--train-end", help=f"Last day of the training data; default: the day before the test period "
                            f"({P1.test_start} on sp500, else the last quarter).")] = None,
    top: Annotated[int, typer.Option(min=1, help="Flagged days to print.")] = 15,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write score, p_value and flag of every scored day (.parquet or .csv).")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    covariates: CovariatesOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Flag anomalous days with finar.AnomalyDetector: fit before the test period, score after it.

    An existing --out file is kept unless --force is given.

    Example: `finar anomalies --data sp500 -m garch:dist=t --level 0.01 --out flags.csv`
    """
    check_table_path(out)
    check_outputs({"--out": out}, {"--data": data_path(data)}, force=force)
    spec = model_spec(model)
    spec.create()  # an unknown model or parameter fails before any work
    d = load_data(data, column, start=start, end=end, covariates=covariates)
    _, r = d.one_series("anomalies")
    spec.covariates(d.exog)
    if spec.exog:
        stderr().print(escape(d.exog_note[0].upper() + d.exog_note[1:]), soft_wrap=True)
    train, test = anomaly_split(r, train_end=train_end)
    with working(f"fitting {spec.name} on {len(train):,} returns and scoring {len(test):,} days"):
        flags = run_detector(spec, train, test, level=level, exog=d.exog).flags
    con = stdout()
    n_flag = int(flags["flag"].sum())
    con.print(f"{escape(spec.name)} fitted on {span(train.index, count=False)}; scored {len(flags):,} days"
              + (f" {span(flags.index, count=False)}" if len(flags) else "")
              + f"; {n_flag} flagged at level {level:g}", soft_wrap=True)
    con.print(frame_table(top_anomalies(flags, r, top), {
        "return": ("return (%)", lambda v: f"{v:.2f}"), "score": ("score (-log p)", lambda v: f"{v:.2f}"),
        "p_value": ("p-value", lambda v: f"{v:.2e}")}, index=("day", lambda v: escape(day(v)))))
    if out is not None:
        write("the flags", out, lambda p: write_frame(flags, p, overwrite=force))
        con.print(f"wrote flags to [bold]{escape(str(out))}[/]", soft_wrap=True)
