"""The ``finar`` command: a thin shell over the library, built with typer and rich.

::

    finar datasets
    finar fit --data sp500 --model garch --param dist=t --param vol=gjr --out model.pt
    finar sample --model model.pt --data sp500 --horizon 20 --paths 1000 --seed 0 \\
        --out scenarios.parquet --html reports/scenarios.html
    finar demo

Every command loads data with :func:`finar.load`, works on percent log returns
(:func:`finar.returns`) and calls the model contract (``fit``, ``log_prob``, ``sample``,
``save``, :func:`finar.models.load`). Errors of finar's own (:class:`finar.FinarError`) end the
command with one red ``error: ...`` line on stderr and exit status 2; finar's warnings are shown
as yellow ``warning: ...`` lines. Progress spinners go to stderr and only on a terminal, so
stdout carries just the results.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

import finar
from finar._io import write_frame
from finar.data.validate import normalize_columns
from finar.errors import DataError, FinarError, FinarWarning, MissingColumnsError
from finar.models import Forecaster, Scenarios

__all__ = ["app", "main", "parse_param", "parse_params"]

#: exit status for errors the user can fix (bad data, unknown model, bad file); click uses the
#: same status for bad command lines
EXIT_USAGE = 2
#: VaR/ES levels and quantiles printed by ``sample`` and ``demo``
RISK_LEVELS = (0.01, 0.05)
PRINT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TABLE_SUFFIXES = {".parquet", ".pq", ".csv"}


def _stdout() -> Console:
    # created per call, so colour and width follow the streams of this invocation
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


class _FinarGroup(TyperGroup):
    """Turns :class:`finar.FinarError` from any command into ``error: ...`` and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FinarError as exc:
            _stderr().print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None


app = typer.Typer(
    cls=_FinarGroup,
    name="finar",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)


# ---- small helpers ----------------------------------------------------------------------
def parse_param(text: str) -> tuple[str, Any]:
    """Parse one ``--param key=value``.

    The value becomes an ``int``, a ``float``, a ``bool`` (``true``/``false``), ``None``
    (``none``/``null``), or else stays a string; quotes force a string (``order='5'``).

    >>> parse_param("dist=t"), parse_param("p=2"), parse_param("o=none")
    (('dist', 't'), ('p', 2), ('o', None))
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier():
        raise typer.BadParameter(f"{text!r} is not key=value (e.g. --param dist=t)", param_hint="--param")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return key, raw[1:-1]
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    for convert in (int, float):
        try:
            return key, convert(raw)
        except ValueError:
            pass
    return key, raw


def parse_params(values: Sequence[str] | None) -> dict[str, Any]:
    """Parse repeated ``--param key=value`` options into keyword arguments."""
    out: dict[str, Any] = {}
    for text in values or ():
        key, value = parse_param(text)
        if key in out:
            raise typer.BadParameter(f"{key!r} is given twice", param_hint="--param")
        out[key] = value
    return out


def _create(name: str, params: dict[str, Any]) -> Forecaster:
    """``finar.models.create`` with the model's parameters named when one is unknown."""
    cls = finar.models.registry().get(name.lower())
    if cls is not None:
        sig = inspect.signature(cls)
        known = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        if len(known) == len(sig.parameters):
            unknown = sorted(set(params) - {p.name for p in known})
            if unknown:
                hint = ", ".join(f"{p.name}={p.default!r}" for p in known)
                raise FinarError(f"model {name!r} has no parameter(s) {unknown}; its parameters "
                                 f"(with defaults) are: {hint}")
    return finar.models.create(name, **params)


def _pick_columns(prices: pd.DataFrame, columns: Sequence[str] | None, source: str,
                  prefer: Sequence[str] | None = None) -> pd.DataFrame:
    """The price columns to model.

    ``--column`` names (field names matched like file headers; asset names case-insensitively,
    so ``msft`` finds ``MSFT``);
    else ``prefer`` (a saved model's columns) when the data has them all; else ``adj_close``,
    else ``close``; else, for a panel of prices such as ``sp500-stocks``, every column.
    """
    if columns:
        asked = list(dict.fromkeys(normalize_columns(pd.DataFrame(columns=list(columns))).columns))
        by_case = {str(c).casefold(): c for c in prices.columns}
        wanted = [c if c in prices.columns else by_case.get(str(c).casefold(), c) for c in asked]
        missing = [c for c in wanted if c not in prices.columns]
        if missing:
            raise MissingColumnsError(f"{source} has no column(s) {missing}; its columns are "
                                      f"{list(map(str, prices.columns))}")
        return prices[wanted]
    if prefer and all(c in prices.columns for c in prefer):
        return prices[list(prefer)]
    for col in ("adj_close", "close"):
        if col in prices.columns:
            return prices[[col]]
    if {"price", "size"} <= set(prices.columns):
        raise DataError(f"{source} holds trades (price, size, ...), not price bars; pass daily "
                        "bars or a panel of prices")
    return prices


def _load_returns(data: str, columns: Sequence[str] | None, start: str | None, end: str | None,
                  prefer: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Prices of the chosen columns and their percent log returns (a Series for one column)."""
    prices = _pick_columns(finar.load(data, start=start, end=end), columns, data, prefer)
    r = finar.returns(prices.iloc[:, 0] if prices.shape[1] == 1 else prices)
    return prices, r


@contextlib.contextmanager
def _working(message: str) -> Iterator[None]:
    """A spinner on stderr (shown on a terminal only) that also relays finar's warnings."""
    err = _stderr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FinarWarning)
        with err.status(escape(message)):
            yield
    for w in caught:
        if issubclass(w.category, FinarWarning):
            err.print(f"[yellow]warning:[/] {escape(str(w.message))}", soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _check_table_path(path: Path | None) -> None:
    if path is not None and path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"--out {str(path)!r}: use a .parquet or .csv file name")


def _write(what: str, path: Path, write: Any) -> Path:
    """Run ``write(path)``; a file-system failure becomes a one-line finar error."""
    try:
        write(path)
    except OSError as exc:
        if isinstance(exc, FinarError):
            raise
        raise FinarError(f"could not write {what} to {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def _span(index: pd.Index) -> str:
    def day(x: object) -> str:
        return str(x.date()) if isinstance(x, pd.Timestamp) else str(x)

    return f"{day(index[0])} to {day(index[-1])}"


def _label(data: str, prices: pd.DataFrame) -> str:
    cols = list(map(str, prices.columns))
    return f"{data}[{', '.join(cols) if len(cols) <= 4 else f'{len(cols)} columns'}]"


def _score_table(lp: pd.Series | pd.DataFrame) -> Table:
    """Observations, total log-likelihood and mean log score per series (and in total)."""
    frame = lp.to_frame() if isinstance(lp, pd.Series) else lp
    table = Table(box=None, pad_edge=False)
    for name, justify in (("series", "left"), ("obs", "right"), ("log-likelihood", "right"),
                          ("mean log score / day", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for col in frame.columns:
        v = frame[col].dropna()
        table.add_row(escape(str(col)), f"{len(v):,}", f"{v.sum():,.2f}", f"{v.mean():.4f}")
    if frame.shape[1] > 1:
        joint = frame.sum(axis=1, min_count=frame.shape[1]).dropna()
        table.add_row("[bold]all (sum)[/]", f"{len(joint):,}", f"{joint.sum():,.2f}", f"{joint.mean():.4f}")
    return table


def _risk_table(sc: Scenarios) -> Table:
    """Quantiles, VaR and ES of the return accumulated over the whole horizon."""
    qs = sc.quantile(list(PRINT_QUANTILES), cumulative=True).iloc[-1]
    table = Table(box=None, pad_edge=False)
    table.add_column("statistic")
    for col in sc.columns:
        table.add_column(escape(str(col)), justify="right")
    for q in PRINT_QUANTILES:
        table.add_row(f"quantile {q:.0%}", *(f"{qs[(q, c)]:.2f}" for c in sc.columns))
    table.add_row("mean", *(f"{v:.2f}" for v in sc.mean(cumulative=True).iloc[-1]))
    for a in RISK_LEVELS:
        table.add_row(f"VaR {a:.0%}", *(f"{v:.2f}" for v in sc.var(a, cumulative=True).iloc[-1]))
        table.add_row(f"ES {a:.0%}", *(f"{v:.2f}" for v in sc.es(a, cumulative=True).iloc[-1]))
    return table


def _risk_heading(sc: Scenarios) -> str:
    start, end = (str(x.date()) if isinstance(x, pd.Timestamp) else str(x)
                  for x in (sc.index[0], sc.index[-1]))
    return (f"Cumulative log return in percent over {sc.horizon} steps ({start} to {end}); "
            f"{sc.n_paths:,} paths, seed {sc.seed}; VaR and ES are positive losses")


# ---- commands ---------------------------------------------------------------------------
def _version(value: bool) -> None:
    if value:
        typer.echo(f"finar {finar.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print finar's version and exit.")] = False,
) -> None:
    """Autoregressive generative models for financial returns: fit, sample scenarios, report.

    `--data` takes a bundled dataset name (see `finar datasets`), a .csv/.parquet file of
    prices, or `yahoo:TICKER`. Models work on daily percent log returns of a price column;
    log scores are in nats. Start with `finar demo`.
    """


DataOpt = Annotated[str, typer.Option(
    "--data", "-d", help="Bundled dataset (see `finar datasets`), a .csv/.parquet price "
                         "file, or `yahoo:TICKER`.")]
ColumnOpt = Annotated[list[str] | None, typer.Option(
    "--column", "-c", help="Price column(s) to model; repeat for several. Default: adj_close if "
                           "present, else close; for a panel such as sp500-stocks, every column.")]
StartOpt = Annotated[str | None, typer.Option(help="First date of data to use (inclusive).")]
EndOpt = Annotated[str | None, typer.Option(help="Last date of data to use (inclusive).")]


@app.command()
def datasets() -> None:
    """List the datasets bundled with finar (they load offline)."""
    table = Table(title="Bundled datasets (pass the name to --data)", box=box.SIMPLE_HEAD)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("span", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("description and license", overflow="fold")
    for row in finar.datasets().itertuples(index=False):
        table.add_row(escape(row.name), f"{row.start} to {row.end}", f"{row.rows:,}",
                      f"{escape(row.description)}\n[dim]license: {escape(row.license)}[/]")
    _stdout().print(table)


@app.command()
def fit(
    data: DataOpt,
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Registered model name: "
                              f"{', '.join(sorted(finar.models.registry()))}.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where to save the fitted model (read it back with "
                            "`finar sample --model`). Without it nothing is saved.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Model parameter key=value, repeatable: e.g. -p dist=t -p vol=gjr. "
                              "Values are read as int, float, true/false, none, else text.")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Fit a model to percent log returns and save it.

    Example: `finar fit --data sp500 --end 2017-12-31 --model garch -p dist=t --out garch.pt`
    """
    params = parse_params(param)
    m = _create(model, params)
    prices, r = _load_returns(data, column, start, end)
    with _working(f"fitting {type(m).__name__} on {len(r):,} returns of {_label(data, prices)}"):
        t0 = time.perf_counter()
        m.fit(r)
        seconds = time.perf_counter() - t0
        lp = m.log_prob(r)
    con = _stdout()
    con.print(f"[bold]{escape(repr(m))}[/]", soft_wrap=True)
    con.print(f"fitted in {seconds:.2f} s on {len(r):,} daily percent log returns of "
              f"{escape(_label(data, prices))}, {_span(r.index)}; log scores in nats", soft_wrap=True)
    con.print(_score_table(lp))
    if out is not None:
        _write("the model", out, m.save)
        con.print(f"saved model to [bold]{escape(str(out))}[/]", soft_wrap=True)


@app.command()
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
) -> None:
    """Simulate future return paths from a saved model, after the data up to --end.

    Prints quantiles, VaR and ES of the return accumulated over the horizon.

    Example: `finar sample -m garch.pt --data sp500 --end 2017-12-31 --horizon 20 --out sc.parquet`
    """
    _check_table_path(out)
    with _working(f"loading {model}"):
        m = finar.models.load(model)
    prices, r = _load_returns(data, column, start, end, prefer=getattr(m, "columns_", None))
    with _working(f"sampling {paths:,} paths of {horizon} steps"):
        sc = m.sample(context=r, horizon=horizon, n_paths=paths, seed=seed)
    con = _stdout()
    con.print(f"[bold]{escape(repr(m))}[/] from {escape(str(model))}", soft_wrap=True)
    con.print(f"context: {len(r):,} returns of {escape(_label(data, prices))}, {_span(r.index)}",
              soft_wrap=True)
    con.print(_risk_heading(sc), soft_wrap=True)
    con.print(_risk_table(sc))
    if out is not None:
        _write("the scenarios", out, lambda p: write_frame(sc.to_frame(), p))
        con.print(f"wrote {sc.n_paths:,} x {sc.horizon} x {len(sc.columns)} paths to "
                  f"[bold]{escape(str(out))}[/]", soft_wrap=True)
    if html is not None:
        from finar.report import scenario_page

        page_title = title or f"{type(m).__name__} scenarios for {data} from {sc.index[0]:%Y-%m-%d}" \
            if isinstance(sc.index, pd.DatetimeIndex) else title or f"{type(m).__name__} scenarios for {data}"
        _write("the HTML page", html,
               lambda p: scenario_page({type(m).__name__: sc}, prices, page_title, p))
        con.print(f"wrote page to [bold]{escape(str(html))}[/]", soft_wrap=True)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path("reports"),
    fast: Annotated[bool, typer.Option(
        "--fast", help="250 paths of 20 days instead of 1000 of 250 (a quick check).")] = False,
) -> None:
    """The offline demo: S&P 500 scenarios for 2018 from GARCH(1,1)-t and AR(aic).

    Fits both models to daily percent log returns of the bundled sp500 adjusted close up to
    2017-12-31, simulates paths from the last date (seed 0), writes the GARCH paths to
    OUT_DIR/sp500_scenarios.parquet and a page with both models to OUT_DIR/sp500.html.
    """
    from finar.report import scenario_page

    t0 = time.perf_counter()
    n_paths, horizon = (250, 20) if fast else (1000, 250)
    prices, r = _load_returns("sp500", ["adj_close"], None, "2017-12-31")
    models = {"GARCH(1,1)-t": finar.models.GARCH(vol="garch", p=1, q=1, dist="t"),
              "AR(aic)": finar.models.AR(order="aic")}
    scenarios: dict[str, Scenarios] = {}
    scores = {}
    for name, m in models.items():
        with _working(f"fitting and sampling {name}"):
            m.fit(r)
            scores[name] = m.log_prob(r).dropna()
            scenarios[name] = m.sample(context=r, horizon=horizon, n_paths=n_paths, seed=0)
    parquet, page = out_dir / "sp500_scenarios.parquet", out_dir / "sp500.html"
    with _working("writing outputs"):
        _write("the scenarios", parquet, lambda p: write_frame(scenarios["GARCH(1,1)-t"].to_frame(), p))
        _write("the HTML page", page, lambda p: scenario_page(
            scenarios, prices["adj_close"], "S&P 500: scenarios for 2018 from GARCH(1,1)-t and AR(aic)", p))

    con = _stdout()
    con.print(f"S&P 500 (bundled sp500, adj_close): {len(r):,} daily percent log returns, "
              f"{_span(r.index)}", soft_wrap=True)
    table = Table(box=None, pad_edge=False)
    for col in ("model", "log-lik", "mean log score", *(f"{k} {a:.0%}" for a in RISK_LEVELS
                                                        for k in ("VaR", "ES"))):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, sc in scenarios.items():
        risk = [f"{float(f(a, cumulative=True).iloc[-1, 0]):.2f}" for a in RISK_LEVELS
                for f in (sc.var, sc.es)]
        table.add_row(name, f"{scores[name].sum():,.1f}", f"{scores[name].mean():.4f}", *risk)
    con.print(table)
    con.print(f"VaR/ES: {horizon}-day cumulative log return in percent, {n_paths:,} paths, seed 0",
              soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(parquet))}[/] (GARCH(1,1)-t paths, {n_paths:,} x {horizon})",
              soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(page))}[/]", soft_wrap=True)
    con.print(f"done in {time.perf_counter() - t0:.1f} s", soft_wrap=True)


def main() -> None:
    """Entry point of the ``finar`` console script."""
    app(prog_name="finar")


if __name__ == "__main__":
    main()
