"""The recorded benchmark figures, shipped with finar, for every model it has.

A report runs its own, smaller pipeline; beside it, it shows what the benchmark scripts
recorded for each registered model (:func:`finar.models.registry`) under protocols P1 and P3,
with the command and date that produced them. The figures are read from the JSON results as
written, never recomputed or rounded before display, so a test can check them against the
files.

The benchmark scripts write their results to ``benchmarks/results/*.json`` of the source tree,
which an installed finar does not have; finar carries a verbatim copy of those files as package
data (``finar/reporting/results/``, read with :mod:`importlib.resources`), and the library
never reads ``benchmarks/``. After a benchmark run, refresh the copy from the repository root
with::

    python -m finar.reporting.record --sync benchmarks/results

(``--check benchmarks/results`` only compares, exiting with status 1 when the copy differs).
``tests/report/test_record.py`` fails whenever the copy and ``benchmarks/results`` differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pandas as pd

from finar.errors import DataError
from finar.models import Forecaster, registry
from finar.protocols import P3

__all__ = ["P1_COLUMNS", "P3_COLUMNS", "P3_SEED", "Record", "check_results", "load_record",
           "packaged_results", "read_result", "registry_rows", "sync_results"]

P1_FILE, P3_FILE = "p1_sp500_daily.json", "p3_sp500_facts.json"
#: recorded P1 figures shown per model
P1_COLUMNS = ["log_score", "crps", "hit_1", "kupiec_1", "hit_5", "kupiec_5", "christoffersen_cc_1",
              "traffic_light", "dm_vs_garch_t"]
#: recorded P3 figures shown per model (seed 0; lower is better)
P3_COLUMNS = ["emd_std_1", "dy_1", "dy_20", "dy_100", "acf_abs", "acf_sq", "leverage"]
P3_SEED = P3.record_seed
# registry name -> names its benchmark rows start with, where the class name alone would miss some
_ALIASES = {"garch": ("GARCH", "EGARCH", "GJR-GARCH"), "garchx": ("GARCH-X", "GJR-X"),
            "realgarch": ("Realized GARCH",)}
#: the folder of the packaged copy, inside the ``finar.reporting`` package
RESULTS_FOLDER = "results"


def packaged_results() -> Traversable:
    """The folder of finar's packaged copy of the benchmark results (``*.json``)."""
    return resources.files("finar.reporting").joinpath(RESULTS_FOLDER)


@dataclass(frozen=True)
class Record:
    """The two results files as read (``None`` where a file is missing) and where they came from."""

    p1: dict[str, Any] | None
    p3: dict[str, Any] | None
    source: str


def load_record(directory: str | os.PathLike[str] | None = None) -> Record:
    """Read the P1 and P3 results.

    Parameters
    ----------
    directory : path, optional
        A folder of results files written by the benchmark scripts; default: the copy shipped
        with finar (:func:`packaged_results`).

    Returns
    -------
    Record
    """
    source = "the benchmark results shipped with finar" if directory is None else os.fspath(directory)
    return Record(read_result(P1_FILE, directory), read_result(P3_FILE, directory), source)


def read_result(name: str, directory: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """One results file (``"p5_ticks.json"``) from ``directory``, default the packaged copy; None
    where it is missing."""
    where: Traversable | Path = packaged_results() if directory is None else Path(directory)
    file = where.joinpath(name)
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def _belongs(row_name: str, registry_name: str, cls_name: str) -> bool:
    for word in _ALIASES.get(registry_name, (cls_name,)):
        # a whole word: "GARCH" matches "GARCH(1,1) ..." but not "GARCH-X(range) ..." (garchx)
        if re.match(rf"{re.escape(word)}(?![A-Za-z]|-X\b)", row_name, flags=re.IGNORECASE):
            return True
    return False


def registry_rows(record: Record, models: dict[str, type] | None = None) -> pd.DataFrame:
    """One row per recorded finar model (P1 and P3), grouped under every registered forecaster.

    Parameters
    ----------
    record : Record
    models : dict, optional
        Registered name -> class; default: every registered forecaster
        (``finar.models.registry(Forecaster)``).

    Returns
    -------
    DataFrame
        Columns ``registry`` (registered name), ``model`` (benchmark row name), ``protocol``
        (``P1``/``P3``), then :data:`P1_COLUMNS` or :data:`P3_COLUMNS` as recorded. A
        registered model with no recorded row gets one row with ``protocol`` ``None``.
    """
    if models is None:
        models = registry(Forecaster)
    rows: list[dict[str, Any]] = []
    for key, cls in sorted(models.items()):
        found = False
        for protocol, doc, cols in (("P1", record.p1, P1_COLUMNS), ("P3", record.p3, P3_COLUMNS)):
            for row in (doc or {}).get("rows", []):
                if row.get("kind") != "finar" or not _belongs(str(row["model"]), key, cls.__name__):
                    continue
                if protocol == "P3" and row.get("seed") != P3_SEED:
                    continue
                rows.append({"registry": key, "model": row["model"], "protocol": protocol,
                             **{c: row.get(c) for c in cols}})
                found = True
        if not found:
            rows.append({"registry": key, "model": cls.__name__, "protocol": None})
    return pd.DataFrame(rows, columns=["registry", "model", "protocol", *P1_COLUMNS, *P3_COLUMNS])


# ---- keeping the packaged copy equal to benchmarks/results --------------------------------------
def _packaged_dir() -> Path:
    folder = packaged_results()
    if not isinstance(folder, Path):
        raise DataError("finar is installed as a zip archive; refresh the benchmark results in a source "
                        "checkout installed with `pip install -e .`")
    return folder


def check_results(source: str | os.PathLike[str]) -> dict[str, str]:
    """Differences between the packaged copy and the results files in ``source``.

    Returns
    -------
    dict
        File name -> ``"missing"`` (in ``source``, not in the copy), ``"extra"`` (in the copy
        only) or ``"differs"``; empty when the copy is verbatim.
    """
    src = Path(source)
    if not src.is_dir():
        raise DataError(f"{os.fspath(source)!r} is not a folder of benchmark results")
    ours = packaged_results()
    theirs = {p.name: p for p in src.glob("*.json")}
    mine = {t.name: t for t in ours.iterdir() if t.name.endswith(".json")} if ours.is_dir() else {}
    out = {name: "missing" for name in theirs if name not in mine}
    out.update({name: "extra" for name in mine if name not in theirs})
    for name in set(theirs) & set(mine):
        if theirs[name].read_bytes() != mine[name].read_bytes():
            out[name] = "differs"
    return dict(sorted(out.items()))


def sync_results(source: str | os.PathLike[str]) -> list[str]:
    """Make the packaged copy a verbatim copy of the ``*.json`` files in ``source``.

    Returns
    -------
    list of str
        The names of the files copied or removed.
    """
    changes = check_results(source)
    folder = _packaged_dir()
    folder.mkdir(exist_ok=True)
    for name, what in changes.items():
        if what == "extra":
            (folder / name).unlink()
        else:
            shutil.copyfile(Path(source) / name, folder / name)
    return list(changes)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m finar.reporting.record --sync DIR`` or ``--check DIR``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m finar.reporting.record",
                                     description="Keep finar's packaged benchmark results equal to a "
                                                 "folder of results files (benchmarks/results).")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--sync", metavar="DIR", help="copy DIR/*.json into the package")
    group.add_argument("--check", metavar="DIR", help="exit with status 1 when the copy differs from DIR")
    args = parser.parse_args(argv)
    if args.sync is not None:
        changed = sync_results(args.sync)
        sys.stdout.write("".join(f"updated {name}\n" for name in changed) or "already in sync\n")
        return 0
    diff = check_results(args.check)
    sys.stdout.write("".join(f"{name}: {what}\n" for name, what in diff.items()) or "in sync\n")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
