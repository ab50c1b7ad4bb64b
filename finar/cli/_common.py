"""What every command of ``finar`` shares: consoles, errors, options, parameters, rendering.

The commands compute nothing themselves: they call :mod:`finar.reporting.pipeline` (data,
periods, models, runs) and :mod:`finar.reporting.tables` (result tables as DataFrames), as the
report does, and render the tables with :func:`frame_table`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from finar.data.sources import DATASET_NAMES
from finar.errors import DataError, FileExistsFinarError, FinarError, FinarWarning
from finar.models import Forecaster, registry
from finar.reporting.pipeline import ModelSpec

__all__ = ["EXIT_USAGE", "ColumnOpt", "DataOpt", "EndOpt", "FinarGroup", "ForceOpt", "StartOpt",
           "check_html_path", "check_model_path", "check_outputs", "check_table_path", "data_path",
           "forecaster_names", "frame_table", "model_spec", "parse_param", "parse_params", "stderr", "stdout",
           "working", "write"]

#: exit status for errors the user can fix (bad data, unknown model, bad file); click uses the
#: same status for bad command lines
EXIT_USAGE = 2
TABLE_SUFFIXES = {".parquet", ".pq", ".csv"}
#: what ``finar fit --out`` may be called: a torch file, as ``save`` writes
MODEL_SUFFIXES = {".pt", ".pth"}
HTML_SUFFIXES = {".html", ".htm"}


def stdout() -> Console:
    """The results console (created per call, so colour and width follow this invocation's streams)."""
    return Console(highlight=False)


def stderr() -> Console:
    """The console of progress, warnings and errors."""
    return Console(stderr=True, highlight=False)


class FinarGroup(TyperGroup):
    """Turns :class:`finar.FinarError` from any command into ``error: ...`` and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FinarError as exc:
            stderr().print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None


# ---- options shared by several commands ------------------------------------------------------
DataOpt = Annotated[str, typer.Option(
    "--data", "-d", help="Bundled dataset (see `finar datasets`), a .csv/.parquet price "
                         "file, or `yahoo:TICKER`.")]
ColumnOpt = Annotated[list[str] | None, typer.Option(
    "--column", "-c", help="Price column(s) to model; repeat for several. Default: adj_close if "
                           "present, else close; for a panel such as sp500-stocks, every column.")]
StartOpt = Annotated[str | None, typer.Option(help="First date of data to use (inclusive).")]
EndOpt = Annotated[str | None, typer.Option(help="Last date of data to use (inclusive).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Overwrite output files that exist. An output that is one of the command's "
                    "inputs (--data, --model, ...) is refused even so.")]


def forecaster_names() -> str:
    """The registered forecasters, for help texts: ``'ar, garch, ...'``."""
    return ", ".join(sorted(registry(Forecaster)))


# ---- parameters ------------------------------------------------------------------------------
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


def model_spec(text: str, params: Sequence[str] | None = None) -> ModelSpec:
    """``garch`` or ``garch:dist=t,vol=gjr`` (plus ``--param`` values) -> a spec named ``text``.

    ``exog=true`` is not a model parameter: it gives the model the data's covariates (the range).
    ``seeds=K`` neither: it mixes the network trained from seeds ``0..K-1`` (an Ensemble).

    >>> model_spec("garch:dist=t,p=2").params
    {'dist': 't', 'p': 2}
    >>> model_spec("garchx:vol=gjr,exog=true").exog
    True
    >>> model_spec("transformer:train__warm_epochs=3,seeds=3").seeds
    (0, 1, 2)
    """
    name, _, rest = text.partition(":")
    inline = [p for p in rest.split(",") if p.strip()]
    parsed = parse_params([*inline, *(params or ())])
    exog = parsed.pop("exog", False)
    if not isinstance(exog, bool):
        raise typer.BadParameter(f"exog must be true or false, got {exog!r}")
    seeds = parsed.pop("seeds", 0)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise typer.BadParameter(f"seeds must be a number of seeds (0, 1, 2, ...), got {seeds!r}")
    return ModelSpec(text, name.strip(), parsed, exog=exog, seeds=tuple(range(seeds)))


# ---- running and writing ---------------------------------------------------------------------
@contextlib.contextmanager
def working(message: str, spinner: bool = True) -> Iterator[None]:
    """A spinner on stderr (shown on a terminal only) that also relays finar's warnings."""
    err = stderr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FinarWarning)
        with err.status(escape(message)) if spinner else contextlib.nullcontext():
            yield
    for w in caught:
        if issubclass(w.category, FinarWarning):
            err.print(f"[yellow]warning:[/] {escape(str(w.message))}", soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _check_suffix(path: Path | None, option: str, suffixes: set[str], advice: str) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise DataError(f"{option} {str(path)!r}: {advice}")


def check_table_path(path: Path | None, option: str = "--out") -> None:
    """Refuse an ``--out`` that is not a .parquet or .csv file name, before any work."""
    _check_suffix(path, option, TABLE_SUFFIXES, "use a .parquet or .csv file name")


def check_model_path(path: Path | None, option: str = "--out") -> None:
    """Refuse a model file name without a torch suffix (``fit --out prices.csv``), before any work."""
    _check_suffix(path, option, MODEL_SUFFIXES,
                  "a model file is a torch file; use a .pt file name (e.g. garch.pt)")


def check_html_path(path: Path | None, option: str = "--out") -> None:
    """Refuse an HTML page's file name that does not end in .html or .htm, before any work."""
    _check_suffix(path, option, HTML_SUFFIXES, "the page is HTML; use a .html file name")


def data_path(data: str | os.PathLike[str] | None) -> Path | None:
    """The file behind a ``--data``/``--trades`` value, or None for a bundled dataset or ``yahoo:``."""
    if data is None:
        return None
    text = os.fspath(data)
    if text.lower().startswith("yahoo:"):
        return None
    if text.lower() in DATASET_NAMES and not Path(text).exists():
        return None
    return Path(text)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None] | None = None, *,
                  force: bool, own: Callable[[Path], bool] | None = None) -> None:
    """Refuse, before any work, an output that would destroy a file.

    An output that is one of the command's inputs, or another of its outputs, is refused
    always (``--force`` does not apply: the command would read what it overwrites); an existing
    file is refused unless ``force``, or unless ``own(path)`` says the command wrote it earlier.
    The writers check again, atomically, when they write (:func:`finar._io.atomic_path`).

    Parameters
    ----------
    outputs, inputs : mapping
        Option name (``"--out"``) -> path, or None where the option is not given.
    force : bool
        ``--force``: existing files may be replaced.
    own : callable, optional
        Whether an existing output is the command's own earlier output (``finar demo``).
    """
    ins = {k: Path(v) for k, v in (inputs or {}).items() if v is not None}
    seen: dict[str, Path] = {}
    for option, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        for other, q in [*ins.items(), *seen.items()]:
            if _same_file(path, q):
                raise FileExistsFinarError(
                    f"{option} {str(path)!r} is also {other}; refusing to write over "
                    f"{'an input' if other in ins else 'another output'} of this command, even with "
                    "--force: choose another file name")
        seen[option] = path
        if path.is_dir():
            raise FileExistsFinarError(f"{option} {str(path)!r} is a folder; give a file name")
        if not force and path.exists() and not (own is not None and own(path)):
            raise FileExistsFinarError(f"{option} {str(path)!r} exists; pass --force to overwrite it, or "
                                       "choose another file name")


def write(what: str, path: Path, writer: Callable[[Path], Any]) -> Path:
    """Run ``writer(path)``; a file-system failure becomes a one-line finar error."""
    try:
        writer(path)
    except OSError as exc:
        if isinstance(exc, FinarError):
            raise
        raise FinarError(f"could not write {what} to {str(path)!r}: {exc.strerror or exc}") from exc
    return path


# ---- rendering -------------------------------------------------------------------------------
Format = Callable[[Any], str]


def _number(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:.4f}"


def frame_table(frame: pd.DataFrame, columns: Mapping[str, tuple[str, Format]] | None = None, *,
                index: tuple[str, Format] | None = None, index_options: Mapping[str, Any] | None = None,
                no_wrap: bool = False, **table: Any) -> Table:
    """A result DataFrame as a rich Table, the index first.

    Parameters
    ----------
    frame : DataFrame
        A table of :mod:`finar.reporting.tables`.
    columns : mapping, optional
        Column -> (heading, format) of the columns to show, in order; default: every column,
        numbers to 4 decimals. A format returns rich markup, so it escapes any text it shows; it
        gets ``None`` for a column ``frame`` does not have.
    index : (str, callable), optional
        Heading and format of the index; default: its name, escaped.
    index_options : mapping, optional
        Passed on to :meth:`rich.table.Table.add_column` for the index column.
    no_wrap : bool
        Keep every value on one line.
    **table
        Passed on to :class:`rich.table.Table` (default: no box, no edge padding).
    """
    cols = columns or {str(c): (str(c), _number) for c in frame.columns}
    head, show = index or (str(frame.index.name or ""), lambda v: escape(str(v)))
    out = Table(**{"box": None, "pad_edge": False, **table})
    out.add_column(escape(head), **(index_options or {}))
    for heading, _ in cols.values():
        out.add_column(escape(heading), justify="right", no_wrap=no_wrap)
    # column by column, so that integers stay integers; a column the results lack (a test that
    # needs more days than were scored) is shown blank
    values = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in cols]
    formats = [fmt for _, fmt in cols.values()]
    for i, key in enumerate(frame.index):
        out.add_row(show(key), *(fmt(v[i]) for fmt, v in zip(formats, values, strict=True)))
    return out
