"""``finar ticks``: fit TickModel to trades, sample synthetic trades and measure their realism (P5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from finar._estimator import check_seed
from finar._io import write_frame
from finar.cli._common import (
    ForceOpt,
    check_outputs,
    check_table_path,
    data_path,
    parse_params,
    stdout,
    working,
    write,
)
from finar.data import load
from finar.reporting.config import TICK_PARAMS
from finar.reporting.pipeline import run_tick_model
from finar.reporting.tables import realism_table
from finar.ticks import simulate

__all__ = ["ticks"]


def ticks(
    trades: Annotated[str | None, typer.Option(
        help="Trades file (price, size, side); default: simulate them with finar.ticks.simulate.")] = None,
    events: Annotated[int, typer.Option(
        min=1, help="Events to simulate when no --trades is given.")] = 50_000,
    synthetic: Annotated[int, typer.Option(min=1, help="Synthetic events to sample from the fitted model.")
                         ] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of simulation and sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the synthetic trades (.parquet or .csv).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="TickModel parameter key=value, repeatable, training settings as "
                              "train__<name> (default: the report's small network; e.g. -p channels=16 "
                              "-p train__max_epochs=5).")] = None,
    force: ForceOpt = False,
) -> None:
    """Fit finar.ticks.TickModel to trades, sample synthetic trades and print their realism (P5).

    An existing --out file is kept unless --force is given.

    Example: `finar ticks --events 50000 --synthetic 20000 --out synthetic.parquet`
    """
    check_seed(seed, "--seed")
    check_table_path(out)
    check_outputs({"--out": out}, {"--trades": data_path(trades)}, force=force)
    params = {**TICK_PARAMS, **parse_params(param)}
    with working("loading trades" if trades else f"simulating {events:,} trades"):
        t = load(trades) if trades else simulate(n_events=events, seed=seed)
    with working(f"fitting TickModel on {len(t):,} trades and sampling {synthetic:,}"):
        run = run_tick_model(t, params, n_events=synthetic, seed=seed + 1)
    con = stdout()
    con.print(f"{len(t):,} trades ({escape(trades or f'simulated, seed {seed}')}); {len(run.synthetic):,} "
              f"synthetic, seed {seed + 1}", soft_wrap=True)
    con.print(escape(realism_table(run.realism).to_string()))
    if out is not None:
        write("the synthetic trades", out, lambda p: write_frame(run.synthetic, p, overwrite=force))
        con.print(f"wrote synthetic trades to [bold]{escape(str(out))}[/]", soft_wrap=True)
