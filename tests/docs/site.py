"""The built documentation site, for the tests that read it (tests/docs, tests/report/test_browser.py).

``make test`` builds the site first (``make docs``: ``mkdocs build --strict`` into ``site/``) and
passes its folder in ``$FINAR_DOCS_SITE``, so the tests read that build instead of making a
second one. Without the variable, the first test that asks builds the site once per session
into a temporary folder, with the same strict command (the executed notebooks come from the
cache that ``docs/_scripts/notebooks.py`` keeps, so a rebuild does not execute them again).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the notebooks that become pages, and their pages' folders in the site
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@cache
def _build() -> Path:
    out = Path(tempfile.mkdtemp(prefix="finar-site-"))
    # no --quiet: it silences the warnings that --strict counts, and the build would pass
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if done.returncode != 0:
        raise AssertionError(f"mkdocs build --strict failed:\n{done.stderr[-6000:]}")
    return out


def built_site() -> Path:
    """The folder of the built site: ``$FINAR_DOCS_SITE``, or a strict build made once here."""
    pytest.importorskip("mkdocs", reason="mkdocs is in the docs extra: pip install -e '.[docs]'")
    given = os.environ.get("FINAR_DOCS_SITE")
    if given:
        site = Path(given)
        if not site.is_absolute():
            site = ROOT / site
        if not (site / "index.html").is_file():
            raise AssertionError(f"FINAR_DOCS_SITE={given} has no index.html: run make docs first")
        return site
    return _build()


def page(site: Path, src: str) -> Path:
    """The HTML file of the page whose source is ``docs/<src>`` (``guide/data.md``)."""
    stem = src.removesuffix(".md")
    if stem == "index":
        return site / "index.html"
    if stem.endswith("/index"):
        return site / stem.removesuffix("index") / "index.html"
    return site / stem / "index.html"
