"""The notebooks in notebooks/ run top to bottom, offline, so they cannot rot.

Each notebook lists in its metadata (``finar.requires``) the finar names it demonstrates; a
missing one fails the test with its name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra: pip install -e '.[dev]'")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra: pip install -e '.[dev]'")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def missing(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    try:
        return not callable(getattr(importlib.import_module(module), attr, None))
    except ImportError:
        return True


def test_there_are_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    absent = [n for n in nb.metadata.get("finar", {}).get("requires", []) if missing(n)]
    assert not absent, f"{path.name} demonstrates {absent}, which finar lacks"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit them without outputs"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
