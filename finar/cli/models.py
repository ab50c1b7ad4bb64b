"""``finar fit`` and ``finar sample``: fit a model to returns and save it; simulate paths from it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape

from finar._estimator import check_seed
from finar._io import write_frame
from finar.cli._common import (
    ColumnOpt,
    DataOpt,
    EndOpt,
    ForceOpt,
    StartOpt,
    check_html_path,
    check_model_path,
    check_outputs,
    check_table_path,
    data_path,
    forecaster_names,
    frame_table,
    parse_params,
    stdout,
    working,
    write,
)
from finar.errors import ModelFileError
from finar.models import Forecaster
from finar.models import load as load_model
from finar.reporting.pipeline import ModelSpec, load_data, span
from finar.reporting.scenarios import scenario_page
from finar.reporting.tables import ALL_SERIES, risk_table, score_table

__all__ = ["fit", "sample"]


def _series(name: object) -> str:
    return "[bold]all (sum)[/]" if name == ALL_SERIES else escape(str(name))


def fit(
    data: DataOpt,
    model: Annotated[str, typer.Option(
        "--model", "-m", help=f"Registered model name: {forecaster_names()}.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where to save the fitted model, a .pt file (read it back with "
                            "`finar sample --model`). Without it nothing is saved.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Model parameter key=value, repeatable: e.g. -p dist=t -p vol=gjr. "
                              "Values are read as int, float, true/false, none, else text.")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    force: ForceOpt = False,
) -> None:
    """Fit a model to percent log returns and save it.

    An existing --out file is kept unless --force is given.

    Example: `finar fit --data sp500 --end 2017-12-31 --model garch -p dist=t --out garch.pt`
    """
    check_model_path(out)
    check_outputs({"--out": out}, {"--data": data_path(data)}, force=force)
    m = ModelSpec(model, model, parse_params(param)).create()
    d = load_data(data, column, start=start, end=end)
    r = d.returns
    with working(f"fitting {type(m).__name__} on {len(r):,} returns of {d.label}"):
        t0 = time.perf_counter()
        m.fit(r)
        seconds = time.perf_counter() - t0
        lp = m.log_prob(r)
    con = stdout()
    con.print(f"[bold]{escape(repr(m))}[/]", soft_wrap=True)
    con.print(f"fitted in {seconds:.2f} s on {len(r):,} daily percent log returns of "
              f"{escape(d.label)}, {span(r.index, count=False)}; log scores in nats", soft_wrap=True)
    con.print(frame_table(score_table(lp), {
        "obs": ("obs", lambda v: f"{v:,}"),
        "log_likelihood": ("log-likelihood", lambda v: f"{v:,.2f}"),
        "mean_log_score": ("mean log score / day", lambda v: f"{v:.4f}")}, index=("series", _series)))
    if out is not None:
        write("the model", out, lambda p: m.save(p, overwrite=force))
        con.print(f"saved model to [bold]{escape(str(out))}[/]", soft_wrap=True)


def sample(
    model: Annotated[Path, typer.Option(
        "--model", "-m", help="Model file written by `finar fit --out`.")],
    data: DataOpt,
    horizon: Annotated[int, typer.Option(min=1, help="Steps (trading days) to simulate.")] = 20,
    paths: Annotated[int, typer.Option("--paths", "-n", min=1, help="Number of paths.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same paths.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the paths (long format: path, time, one column per series) "
                            "as .parquet or .csv.")] = None,
    html: Annotated[Path | None, typer.Option(
        help="Also write a self-contained HTML page with the fan chart and VaR/ES.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the HTML page.")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: Annotated[str | None, typer.Option(
        help="Last date of context: paths start on the next business day.")] = None,
    force: ForceOpt = False,
) -> None:
    """Simulate future return paths from a saved model, after the data up to --end.

    Prints quantiles, VaR and ES of the return accumulated over the horizon. Existing --out and
    --html files are kept unless --force is given.

    Example: `finar sample -m garch.pt --data sp500 --end 2017-12-31 --horizon 20 --out sc.parquet`
    """
    check_seed(seed, "--seed")
    check_table_path(out)
    check_html_path(html, "--html")
    check_outputs({"--out": out, "--html": html}, {"--data": data_path(data), "--model": model},
                  force=force)
    with working(f"loading {model}"):
        m = load_model(model)
    if not isinstance(m, Forecaster):
        raise ModelFileError(f"{str(model)!r} holds a {type(m).__name__}, not a forecaster of returns; "
                             "write one with `finar fit --out`")
    d = load_data(data, column, start=start, end=end, prefer=getattr(m, "columns_", None))
    r = d.returns
    with working(f"sampling {paths:,} paths of {horizon} steps"):
        sc = m.sample(context=r, horizon=horizon, n_paths=paths, seed=seed)
    con = stdout()
    con.print(f"[bold]{escape(repr(m))}[/] from {escape(str(model))}", soft_wrap=True)
    con.print(f"context: {len(r):,} returns of {escape(d.label)}, {span(r.index, count=False)}",
              soft_wrap=True)
    con.print(f"Cumulative log return in percent over {sc.horizon} steps ({span(sc.index, count=False)}); "
              f"{sc.n_paths:,} paths, seed {sc.seed}; VaR and ES are positive losses", soft_wrap=True)
    risk = risk_table(sc)
    con.print(frame_table(risk, {c: (c, lambda v: f"{v:.2f}") for c in risk.columns}))
    if out is not None:
        write("the scenarios", out, lambda p: write_frame(sc.to_frame(), p, overwrite=force))
        con.print(f"wrote {sc.n_paths:,} x {sc.horizon} x {len(sc.columns)} paths to "
                  f"[bold]{escape(str(out))}[/]", soft_wrap=True)
    if html is not None:
        name = type(m).__name__
        default = f"{name} scenarios for {data}" + (
            f" from {sc.index[0]:%Y-%m-%d}" if isinstance(sc.index, pd.DatetimeIndex) else "")
        write("the HTML page", html, lambda p: scenario_page({name: sc}, d.prices, title or default, p,
                                                           overwrite=force))
        con.print(f"wrote page to [bold]{escape(str(html))}[/]", soft_wrap=True)
