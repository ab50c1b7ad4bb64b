"""Shared pieces of the benchmark scripts: the results file format of PROTOCOLS.md."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import finar
from finar._io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # torch missing or broken: the benchmark still runs
        gpu = "no GPU"
    return f"{os.cpu_count()} CPU cores ({platform.machine()}), {gpu}, Python {platform.python_version()}"


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return str(v.date())
    return v


def write_results(name: str, protocol: str, rows: list[dict[str, Any]], *, columns: list[str],
                  extra: dict[str, Any] | None = None, notes: str = "") -> Path:
    """Write ``results/<name>.json`` (PROTOCOLS.md shape) and ``results/<name>.md`` atomically."""
    payload = {"protocol": protocol, "finar_version": finar.__version__,
               "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
               "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
               "rows": _plain(rows), **_plain(extra or {})}
    path = RESULTS / f"{name}.json"
    # a rerun of the protocol replaces its own results (they live in git, so nothing is lost)
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n", overwrite=True)
    table = pd.DataFrame(rows, dtype=object)  # object: integer seeds stay integers
    table = table[[c for c in columns if c in table.columns]]
    md = [f"# {protocol}: {name}", "", f"`{payload['command']}` on {payload['machine']}, "
          f"finar {finar.__version__}, {payload['created']}", "", _markdown(table)]
    if notes:
        md += ["", notes]
    atomic_write_text(RESULTS / f"{name}.md", "\n".join(md) + "\n", overwrite=True)
    return path


def _markdown(table: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, float | np.floating):
            return "" if not np.isfinite(v) else f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    head = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, sep, *body])
