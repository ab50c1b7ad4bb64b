"""The ``finar`` command: a thin shell over the library, built with typer and rich.

::

    finar datasets
    finar fit --data sp500 --model garch --param dist=t --param vol=gjr --out model.pt
    finar sample --model model.pt --data sp500 --horizon 20 --paths 1000 --seed 0 \\
        --out scenarios.parquet --html reports/scenarios.html
    finar demo
    finar report --data sp500 --out reports/sp500.html
    finar backtest --data sp500 -m garch:dist=t -m ar
    finar anomalies --data sp500 -m garch:dist=t --out flags.csv
    finar ticks --events 50000 --out synthetic.parquet

One module per command group: :mod:`~finar.cli.data` (datasets), :mod:`~finar.cli.models`
(fit, sample), :mod:`~finar.cli.evaluate` (backtest, anomalies), :mod:`~finar.cli.report`
(report, demo), :mod:`~finar.cli.ticks` (ticks); what they share is in
:mod:`~finar.cli._common`. Every command runs the steps of :mod:`finar.reporting.pipeline` and
prints the tables of :mod:`finar.reporting.tables`, the same functions the HTML report uses, so
the command line and the report always agree.

Nothing is lost: no command overwrites an existing file unless ``--force`` is given, and none
writes over one of its own inputs (``--data``, ``--model``, another output) even then; both are
checked before any work, and again atomically when the file is written
(:func:`finar.cli._common.check_outputs`, :func:`finar._io.atomic_path`).

Errors of finar's own (:class:`finar.FinarError`) end the command with one red ``error: ...``
line on stderr and exit status 2; finar's warnings are shown as yellow ``warning: ...`` lines.
Progress spinners go to stderr and only on a terminal, so stdout carries just the results.
"""

from __future__ import annotations

from typing import Annotated

import typer

from finar._version import __version__
from finar.cli import data, evaluate, models, report, ticks
from finar.cli._common import FinarGroup, parse_param, parse_params

__all__ = ["app", "main", "parse_param", "parse_params"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finar {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print finar's version and exit.")] = False,
) -> None:
    """Autoregressive generative models for financial returns: fit, sample scenarios, report.

    `--data` takes a bundled dataset name (see `finar datasets`), a .csv/.parquet file of
    prices, or `yahoo:TICKER`. Models work on daily percent log returns of a price column;
    log scores are in nats. No command overwrites a file without `--force`. Start with `finar demo`.
    """


app = typer.Typer(
    cls=FinarGroup,
    name="finar",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)
app.callback()(_root)
for _command in (data.datasets, models.fit, models.sample, report.report, evaluate.backtest,
                 evaluate.anomalies, ticks.ticks, report.demo):
    app.command()(_command)


def main() -> None:
    """Entry point of the ``finar`` console script."""
    app(prog_name="finar")
