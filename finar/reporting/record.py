"""The recorded benchmark figures (``benchmarks/results``) for every model finar has.

A report runs its own, smaller pipeline; beside it, it shows what the benchmark scripts
recorded for each registered model (:func:`finar.models.registry`) under PROTOCOLS.md P1 and P3,
with the command and date that produced them. The figures are read from the JSON results as
written, never recomputed or rounded before display, so a test can check them against the
files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["P1_COLUMNS", "P3_COLUMNS", "Record", "default_results_dir", "load_record", "registry_rows"]

P1_FILE, P3_FILE = "p1_sp500_daily.json", "p3_sp500_facts.json"
#: recorded P1 figures shown per model
P1_COLUMNS = ["log_score", "crps", "hit_1", "kupiec_1", "hit_5", "kupiec_5", "christoffersen_cc_1",
              "traffic_light", "dm_vs_garch_t"]
#: recorded P3 figures shown per model (seed 0; lower is better)
P3_COLUMNS = ["emd_std_1", "dy_1", "dy_20", "dy_100", "acf_abs", "acf_sq", "leverage"]
P3_SEED = 0
# registry name -> names its benchmark rows start with, where the class name alone would miss some
_ALIASES = {"garch": ("GARCH", "EGARCH", "GJR-GARCH")}


def default_results_dir() -> Path | None:
    """``benchmarks/results`` of the source tree finar runs from, if there is one."""
    root = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    return root if root.is_dir() else None


@dataclass(frozen=True)
class Record:
    """The two results files as read (``None`` where a file is missing)."""

    p1: dict[str, Any] | None
    p3: dict[str, Any] | None
    directory: Path | None


def load_record(directory: str | Path | None = None) -> Record:
    """Read P1 and P3 results from ``directory`` (default :func:`default_results_dir`)."""
    where = Path(directory) if directory is not None else default_results_dir()

    def read(name: str) -> dict[str, Any] | None:
        if where is None or not (where / name).is_file():
            return None
        return json.loads((where / name).read_text(encoding="utf-8"))

    return Record(read(P1_FILE), read(P3_FILE), where)


def _belongs(row_name: str, registry_name: str, cls_name: str) -> bool:
    for word in _ALIASES.get(registry_name, (cls_name,)):
        if re.match(rf"{re.escape(word)}(?![A-Za-z])", row_name, flags=re.IGNORECASE):
            return True
    return False


def registry_rows(record: Record, registry: dict[str, type] | None = None) -> pd.DataFrame:
    """One row per recorded finar model (P1 and P3), grouped under every registered model.

    Columns: ``registry`` (registered name), ``model`` (benchmark row name), ``protocol``
    (``P1``/``P3``), then :data:`P1_COLUMNS` or :data:`P3_COLUMNS` as recorded. A registered
    model with no recorded row gets one row with ``protocol`` ``None``.
    """
    if registry is None:
        from finar.models import registry as get_registry

        registry = get_registry()
    rows: list[dict[str, Any]] = []
    for key, cls in sorted(registry.items()):
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
