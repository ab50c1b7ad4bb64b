"""``finar report`` (the main job: the HTML report) and ``finar demo`` (scenarios, offline)."""

from __future__ import annotations

import html
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape

from finar._io import write_frame
from finar.cli._common import (
    DataOpt,
    EndOpt,
    ForceOpt,
    StartOpt,
    check_html_path,
    check_outputs,
    data_path,
    frame_table,
    stderr,
    stdout,
    working,
    write,
)
from finar.models.scenarios import Scenarios
from finar.reporting.builder import report as build_report
from finar.reporting.config import ReportConfig
from finar.reporting.page import Section
from finar.reporting.pipeline import ModelSpec, load_data, span
from finar.reporting.scenarios import scenario_page
from finar.reporting.tables import RISK_LEVELS, score_table, tail_risk

__all__ = ["DEMO_MODELS", "demo", "report"]

#: the demo's models, fitted to the bundled sp500 adjusted close up to ``DEMO_END``
DEMO_MODELS = (ModelSpec("GARCH(1,1)-t", "garch", {"vol": "garch", "p": 1, "q": 1, "dist": "t"}),
               ModelSpec("AR(aic)", "ar", {"order": "aic"}))
DEMO_END = "2017-12-31"
DEMO_TITLE = "S&P 500: scenarios for 2018 from GARCH(1,1)-t and AR(aic)"


def _progress_line(i: int, n: int, section: Section) -> None:
    state = "" if section.available else " [yellow](not available)[/]"
    stderr().print(f"[dim][{i}/{n}][/] {escape(section.title)}: {section.seconds:.1f} s{state}",
                   soft_wrap=True)


def report(
    data: DataOpt = "sp500",
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML report.")] = Path(
        "reports/report.html"),
    config: Annotated[Path | None, typer.Option(
        "--config", help="A report.toml choosing models, periods, sizes and seeds (see "
                         "finar.reporting.config).")] = None,
    fast: Annotated[bool, typer.Option(
        "--fast", help="Two classical models and small sizes: a report in a minute or two.")] = False,
    trades: Annotated[str | None, typer.Option(
        help="Trades file (price, size, side) for the tick-realism section.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the page.")] = None,
    column: Annotated[str | None, typer.Option(
        "--column", "-c", help="Price column; default adj_close, else close.")] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    threads: Annotated[int, typer.Option(
        min=1, help="Torch threads of this process. One is fastest for finar's small networks and "
                    "does not oversubscribe a busy machine.")] = 1,
    force: ForceOpt = False,
) -> None:
    """Build the HTML report: data, model comparison, fans, PIT/VaR, stylized facts, anomalies.

    Runs offline on bundled data. Progress goes to stderr, one line per section. An existing
    --out file is kept unless --force is given (`make demo` passes it to rebuild its report).

    Example: `finar report --data sp500 --out reports/sp500.html` (add `--fast` for a quick one)
    """
    check_html_path(out)
    check_outputs({"--out": out}, {"--data": data_path(data), "--config": config,
                                   "--trades": data_path(trades)}, force=force)
    import torch

    torch.set_num_threads(threads)  # the command owns its process; the library never sets this

    cfg = ReportConfig.from_toml(config, fast=fast) if config is not None else (
        ReportConfig.fast() if fast else ReportConfig())
    cfg = replace(cfg, **{k: v for k, v in (("column", column), ("start", start), ("end", end))
                          if v is not None})
    err = stderr()
    err.print(f"finar report on {escape(data)}: {len(cfg.models)} models "
              f"({escape(', '.join(m.name for m in cfg.models))})", soft_wrap=True)
    t0 = time.perf_counter()
    with working("", spinner=False):
        rep = build_report(data, config=cfg, trades=trades, title=title, progress=True,
                           on_section=_progress_line)
    write("the report", out, lambda p: rep.write_html(p, overwrite=force))
    con = stdout()
    for key, why in rep.unavailable.items():
        con.print(f"[yellow]section {escape(key)} not available:[/] {escape(why)}", soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(out))}[/] ({len(rep.sections)} sections) in "
              f"{time.perf_counter() - t0:.1f} s", soft_wrap=True)


def _demo_output(path: Path) -> bool:
    """Whether ``path`` is what an earlier ``finar demo`` wrote (which a new demo replaces)."""
    try:
        if path.suffix == ".html":
            with open(path, encoding="utf-8", errors="replace") as fh:
                return f"<title>{html.escape(DEMO_TITLE)}</title>" in fh.read(1 << 12)
        import pyarrow.parquet as pq

        return sorted(pq.read_schema(path).names) == ["adj_close", "path", "time"]
    except (OSError, ValueError):  # unreadable, or not Parquet (pyarrow's errors are ValueErrors)
        return False


def demo(
    out_dir: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path("reports"),
    fast: Annotated[bool, typer.Option(
        "--fast", help="250 paths of 20 days instead of 1000 of 250 (a quick check).")] = False,
    force: ForceOpt = False,
) -> None:
    """The offline demo: S&P 500 scenarios for 2018 from GARCH(1,1)-t and AR(aic).

    Fits both models to daily percent log returns of the bundled sp500 adjusted close up to
    2017-12-31, simulates paths from the last date (seed 0), writes the GARCH paths to
    OUT_DIR/sp500_scenarios.parquet and a page with both models to OUT_DIR/sp500.html. Running
    it again replaces those files when an earlier demo wrote them; any other existing file
    there (e.g. the report of `make demo`) is kept unless --force is given.
    """
    parquet, page = out_dir / "sp500_scenarios.parquet", out_dir / "sp500.html"
    check_outputs({"the scenarios file": parquet, "the page": page}, force=force, own=_demo_output)
    t0 = time.perf_counter()
    n_paths, horizon = (250, 20) if fast else (1000, 250)
    d = load_data("sp500", ["adj_close"], end=DEMO_END)
    r = d.returns
    scenarios: dict[str, Scenarios] = {}
    rows = []
    for spec in DEMO_MODELS:
        with working(f"fitting and sampling {spec.name}"):
            m = spec.create().fit(r)
            scores = score_table(m.log_prob(r)).iloc[0]
            scenarios[spec.name] = m.sample(context=r, horizon=horizon, n_paths=n_paths, seed=0)
        risk = tail_risk(scenarios[spec.name], RISK_LEVELS).iloc[0]
        rows.append(pd.concat([scores, risk]).rename(spec.name))
    first = DEMO_MODELS[0].name
    # replaced only where the check above allowed it: an earlier demo's output, or --force
    replace = {p: force or p.exists() for p in (parquet, page)}
    with working("writing outputs"):
        write("the scenarios", parquet, lambda p: write_frame(scenarios[first].to_frame(), p,
                                                              overwrite=replace[parquet]))
        write("the HTML page", page, lambda p: scenario_page(scenarios, d.prices["adj_close"], DEMO_TITLE, p,
                                                             overwrite=replace[page]))

    con = stdout()
    con.print(f"S&P 500 (bundled sp500, adj_close): {len(r):,} daily percent log returns, "
              f"{span(r.index, count=False)}", soft_wrap=True)
    table = pd.DataFrame(rows)
    risk = {c: (c, lambda v: f"{v:.2f}") for c in table.columns if c.startswith(("VaR", "ES"))}
    con.print(frame_table(table, {"log_likelihood": ("log-lik", lambda v: f"{v:,.1f}"),
                                  "mean_log_score": ("mean log score", lambda v: f"{v:.4f}"), **risk},
                          index=("model", lambda v: escape(str(v)))))
    con.print(f"VaR/ES: {horizon}-day cumulative log return in percent, {n_paths:,} paths, seed 0",
              soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(parquet))}[/] ({first} paths, {n_paths:,} x {horizon})",
              soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(page))}[/]", soft_wrap=True)
    con.print(f"done in {time.perf_counter() - t0:.1f} s", soft_wrap=True)
