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
def _working(message: str, spinner: bool = True) -> Iterator[None]:
    """A spinner on stderr (shown on a terminal only) that also relays finar's warnings."""
    err = _stderr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FinarWarning)
        with err.status(escape(message)) if spinner else contextlib.nullcontext():
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
        from finar.reporting import scenario_page

        page_title = title or f"{type(m).__name__} scenarios for {data} from {sc.index[0]:%Y-%m-%d}" \
            if isinstance(sc.index, pd.DatetimeIndex) else title or f"{type(m).__name__} scenarios for {data}"
        _write("the HTML page", html,
               lambda p: scenario_page({type(m).__name__: sc}, prices, page_title, p))
        con.print(f"wrote page to [bold]{escape(str(html))}[/]", soft_wrap=True)


# ---- the main job and the evaluation commands -------------------------------------------------
def _progress_line(i: int, n: int, section: Any) -> None:
    state = "" if section.available else " [yellow](not available)[/]"
    _stderr().print(f"[dim][{i}/{n}][/] {escape(section.title)}: {section.seconds:.1f} s{state}",
                    soft_wrap=True)


@app.command()
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
) -> None:
    """Build the HTML report: data, model comparison, fans, PIT/VaR, stylized facts, anomalies.

    Runs offline on bundled data. Progress goes to stderr, one line per section.

    Example: `finar report --data sp500 --out reports/sp500.html` (add `--fast` for a quick one)
    """
    from dataclasses import replace

    import torch

    from finar.reporting import ReportConfig

    torch.set_num_threads(threads)  # the command owns its process; the library never sets this

    cfg = ReportConfig.from_toml(config, fast=fast) if config is not None else (
        ReportConfig.fast() if fast else ReportConfig())
    cfg = replace(cfg, **{k: v for k, v in (("column", column), ("start", start), ("end", end))
                          if v is not None})
    err = _stderr()
    err.print(f"finar report on {escape(data)}: {len(cfg.models)} models "
              f"({escape(', '.join(m.name for m in cfg.models))})", soft_wrap=True)
    t0 = time.perf_counter()
    with _working("", spinner=False):
        rep = finar.report(data, config=cfg, trades=trades, title=title, progress=True,
                           on_section=_progress_line)
    _write("the report", out, rep.write_html)
    con = _stdout()
    for key, why in rep.unavailable.items():
        con.print(f"[yellow]section {escape(key)} not available:[/] {escape(why)}", soft_wrap=True)
    con.print(f"wrote [bold]{escape(str(out))}[/] ({len(rep.sections)} sections) in "
              f"{time.perf_counter() - t0:.1f} s", soft_wrap=True)


def _model_spec(text: str) -> tuple[str, Forecaster]:
    """``garch`` or ``garch:dist=t,vol=gjr`` -> (label, model)."""
    name, _, rest = text.partition(":")
    params = parse_params([p for p in rest.split(",") if p.strip()])
    return text, _create(name.strip(), params)


ModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="Model as name or name:key=value,key=value; repeat for several. "
                          f"Registered: {', '.join(sorted(finar.models.registry()))}.")]


def _test_start(r: pd.Series, start: str | None) -> tuple[Any, Any]:
    from finar.reporting.builder import default_test_period

    first, last = default_test_period(r.index)
    return (start, None) if start is not None else (first, last)


@app.command()
def backtest(
    data: DataOpt = "sp500",
    model: ModelsOpt = None,
    test_start: Annotated[str | None, typer.Option(
        "--test-start", help="First test day. Default: 2015-01-01 (PROTOCOLS P1) when the data has "
                             "500 returns before it, else the start of the last quarter.")] = None,
    test_end: Annotated[str | None, typer.Option("--test-end", help="Last test day.")] = None,
    refit_every: Annotated[int, typer.Option(min=1, help="Refit every this many test days.")] = 20,
    paths: Annotated[int, typer.Option("--paths", "-n", min=1,
                                       help="Paths per day for models without a closed form.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the daily scores of every model (.parquet or .csv).")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Rolling one-step backtest of one or more models, with VaR tests and DM against the first.

    Example: `finar backtest --data sp500 -m garch:dist=t -m ar --test-start 2015-01-01`
    """
    _check_table_path(out)
    specs = [_model_spec(t) for t in (model or ["garch:dist=t", "ar"])]
    prices, r = _load_returns(data, column, start, end)
    if isinstance(r, pd.DataFrame):
        raise DataError(f"backtest takes one price series; {data} gives {r.shape[1]} columns: pick one "
                        "with --column")
    first, last = _test_start(r, test_start)
    last = test_end if test_end is not None else last
    results = []
    for label, m in specs:
        with _working(f"backtest of {label}"):
            results.append(finar.backtest(m, r, first, last, refit_every=refit_every, n_paths=paths,
                                          seed=seed, name=label))
        _stderr().print(f"backtest of {escape(label)}: {results[-1].seconds:.1f} s", soft_wrap=True)
    table = finar.compare(results, baseline=0, seed=seed)
    con = _stdout()
    d = results[0].daily.index
    con.print(f"{len(d):,} test days {_span(d)} of {escape(_label(data, prices))}; refit every "
              f"{refit_every}; seed {seed}; DM against {escape(results[0].name)} (positive = better)",
              soft_wrap=True)
    out_table = Table(box=None, pad_edge=False)
    cols = [("log_score", "log score"), ("crps", "CRPS"), ("dm_log_score", "DM"), ("hit_1", "hit 1%"),
            ("kupiec_1", "Kupiec 1% p"), ("christoffersen_cc_1", "Chr. 1% p"), ("hit_5", "hit 5%"),
            ("kupiec_5", "Kupiec 5% p"), ("traffic_light", "traffic light")]
    out_table.add_column("model", no_wrap=True, min_width=max(len(str(n)) for n in table.index))
    for _, head in cols:
        out_table.add_column(head, justify="right", no_wrap=True)
    colour = {"green": "green", "yellow": "yellow", "red": "red"}
    for name, row in table.iterrows():
        cells = []
        for key, _ in cols:
            v = row.get(key)
            if key == "traffic_light":
                cells.append("" if pd.isna(v) else f"[{colour.get(str(v), 'white')}]{escape(str(v))}[/]")
            elif key.startswith("hit"):
                cells.append(f"{v:.2%}")
            else:
                cells.append("" if pd.isna(v) else f"{v:.4f}")
        out_table.add_row(escape(str(name)), *cells)
    Console(highlight=False, width=max(con.width, 140)).print(out_table)  # all columns, even in a pipe
    if out is not None:
        frame = pd.concat({b.name: b.daily for b in results}, names=["model", "time"]).reset_index()
        _write("the daily scores", out, lambda p: write_frame(frame, p))
        con.print(f"wrote daily scores to [bold]{escape(str(out))}[/]", soft_wrap=True)


@app.command()
def anomalies(
    data: DataOpt = "sp500",
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Detector model as name or name:key=value,...")] = "garch:dist=t",
    level: Annotated[float, typer.Option(help="Flag days whose p-value is below this.")] = 0.01,
    train_end: Annotated[str | None, typer.Option(
        "--train-end", help="Last day of the training data; default: the day before the test period "
                            "(2015-01-01 on sp500, else the last quarter).")] = None,
    top: Annotated[int, typer.Option(min=1, help="Flagged days to print.")] = 15,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write score, p_value and flag of every scored day (.parquet or .csv).")] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Flag anomalous days with finar.AnomalyDetector: fit before the test period, score after it.

    Example: `finar anomalies --data sp500 -m garch:dist=t --level 0.01 --out flags.csv`
    """
    _check_table_path(out)
    detector = finar.AnomalyDetector
    label, m = _model_spec(model)
    _, r = _load_returns(data, column, start, end)
    if isinstance(r, pd.DataFrame):
        raise DataError(f"anomalies takes one price series; {data} gives {r.shape[1]} columns: pick one "
                        "with --column")
    if train_end is None:
        first, _ = _test_start(r, None)
        train = r.loc[r.index < pd.Timestamp(first)]
    else:
        train = r.loc[:train_end]
    test = r.iloc[len(train):]
    if len(test) == 0:
        raise DataError(f"no days to score after the training data ({_span(train.index)}); pass an earlier "
                        "--train-end")
    with _working(f"fitting {label} on {len(train):,} returns and scoring {len(test):,} days"):
        det = detector(m, level=level).fit(train)
        flags = det.score(test, context=train)
    con = _stdout()
    n_flag = int(flags["flag"].sum())
    con.print(f"{escape(label)} fitted on {_span(train.index)}; scored {len(flags):,} days"
              + (f" {_span(flags.index)}" if len(flags) else "")
              + f"; {n_flag} flagged at level {level:g}", soft_wrap=True)
    table = Table(box=None, pad_edge=False)
    for head in ("day", "return (%)", "score (-log p)", "p-value"):
        table.add_column(head, justify="left" if head == "day" else "right")
    for day, row in flags[flags["flag"]].sort_values("score", ascending=False).head(top).iterrows():
        table.add_row(_span(pd.Index([day])).split(" to ")[0], f"{r.loc[day]:.2f}", f"{row['score']:.2f}",
                      f"{row['p_value']:.2e}")
    con.print(table)
    if out is not None:
        _write("the flags", out, lambda p: write_frame(flags, p))
        con.print(f"wrote flags to [bold]{escape(str(out))}[/]", soft_wrap=True)


@app.command()
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
        "--param", "-p", help="TickModel parameter key=value, repeatable (default: the report's small "
                              "network, e.g. -p max_epochs=5 -p channels=16).")] = None,
) -> None:
    """Fit finar.ticks.TickModel to trades, sample synthetic trades and print their realism (P5).

    Example: `finar ticks --events 50000 --synthetic 20000 --out synthetic.parquet`
    """
    from finar.reporting.sections import tick_module

    _check_table_path(out)
    mod = tick_module()
    from finar.reporting.config import TICK_PARAMS

    params = {**TICK_PARAMS, **parse_params(param)}
    with _working("loading trades" if trades else f"simulating {events:,} trades"):
        t = finar.load(trades) if trades else mod.simulate(n_events=events, seed=seed)
    with _working(f"fitting TickModel on {len(t):,} trades and sampling {synthetic:,}"):
        tm = mod.TickModel(**params).fit(t)
        synth = tm.sample(n_events=synthetic, seed=seed + 1)
        res = mod.realism(t, synth)
    con = _stdout()
    con.print(f"{len(t):,} trades ({escape(trades or f'simulated, seed {seed}')}); {len(synth):,} synthetic, "
              f"seed {seed + 1}", soft_wrap=True)
    frame = res if isinstance(res, pd.DataFrame) else (
        res.table() if hasattr(res, "table") else pd.Series(res, name="value").to_frame())
    con.print(escape(frame.to_string()))
    if out is not None:
        _write("the synthetic trades", out, lambda p: write_frame(synth, p))
        con.print(f"wrote synthetic trades to [bold]{escape(str(out))}[/]", soft_wrap=True)


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
    from finar.reporting import scenario_page

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
