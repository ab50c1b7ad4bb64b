"""mkdocs hook: the notebooks of ``notebooks/`` as pages of the site, executed, every figure drawn offline.

Each notebook is executed top to bottom (:mod:`nbclient`, as ``tests/test_notebooks.py`` does)
and converted to HTML by :mod:`nbconvert`'s ``basic`` template; the page
``notebooks/<name>.md`` that this hook adds to the site shows that HTML. A cell that raises
fails the build.

Executed notebooks are cached in ``build/docs-notebooks/`` (``$FINAR_NOTEBOOK_CACHE`` moves
it) under a key made of the notebook's bytes, finar's sources and the versions of plotly and
nbconvert, so a build after a change to any of them executes again and a build after none does
not. ``tests/test_notebooks.py`` may read the same cache through :func:`executed`.

The notebooks set ``plotly.io.renderers.default = "notebook"``: the first figure of a notebook
emits plotly.js itself (about 4.6 MB, so that an ``nbconvert --to html`` export works offline)
and each figure a ``<div>`` drawn by an inline script. On the site, that copy of plotly.js is
replaced by one shared file, ``assets/javascripts/plotly.min.js``, written from the installed
plotly package (the version that drew the figures), loaded where the notebook loaded its copy,
so the inline scripts still find ``Plotly`` when they run. plotly's HTML also asks for MathJax
from a CDN; finar's figures hold no LaTeX, so that tag is dropped and the pages fetch nothing
from the network (the build fails if any ``src="http..."`` is left).

Links from a notebook's Markdown to a page of the site are written ``../docs/<page>.md#anchor``
(they then work in Jupyter too); this hook rewrites them to the page's URL and fails the build
when the page does not exist.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.plugins.finar.notebooks")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PLOTLY_ASSET = "assets/javascripts/plotly.min.js"
#: where the notebook pages go in the site
PAGES = "notebooks"
#: the page of each notebook: its src_uri -> the notebook's path
_PAGES: dict[str, Path] = {}

_MATHJAX = re.compile(r'<script[^>]*src="https://[^"]*mathjax[^"]*"[^>]*>\s*</script>', re.IGNORECASE)
_DOC_LINK = re.compile(r'href="\.\./docs/([^"#]+\.md)(#[^"]*)?"')
_REMOTE = re.compile(r'\bsrc="(https?:)?//', re.IGNORECASE)


def cache_dir() -> Path:
    """Where executed notebooks are kept (``$FINAR_NOTEBOOK_CACHE`` or ``build/docs-notebooks``)."""
    return Path(os.environ.get("FINAR_NOTEBOOK_CACHE") or ROOT / "build" / "docs-notebooks")


@cache
def _sources_digest() -> str:
    """A digest of finar's Python sources and the versions that shape a notebook's outputs."""
    import nbconvert
    import plotly

    h = hashlib.sha256(f"plotly {plotly.__version__} nbconvert {nbconvert.__version__}".encode())
    for path in sorted((ROOT / "finar").rglob("*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(path: Path) -> str:
    """The key of ``path``'s executed copy: its bytes, finar's sources, plotly and nbconvert."""
    return hashlib.sha256(path.read_bytes() + _sources_digest().encode()).hexdigest()[:16]


def errors(nb: nbformat.NotebookNode) -> list[str]:
    """The error outputs of an executed notebook, as ``ename: evalue`` lines."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def executed(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """``path`` executed top to bottom, from the cache when its key is there.

    Raises
    ------
    RuntimeError
        When a cell raises (the cell's error is in the message); nothing is cached then.
    """
    import nbclient

    path = Path(path)
    cached = cache_dir() / f"{path.stem}.{cache_key(path)}.ipynb"
    if cached.is_file():
        return nbformat.read(cached, as_version=4)
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:  # a notebook that writes files writes them here
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": work}})
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as exc:
            raise RuntimeError(f"{path.name} fails: {exc}") from exc
    failed = errors(nb)
    if failed:
        raise RuntimeError(f"{path.name} fails: {failed}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    for old in cached.parent.glob(f"{path.stem}.*.ipynb"):  # older keys of the same notebook
        old.unlink()
    tmp = cached.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(cached)
    return nb


def last_executed(path: Path) -> nbformat.NotebookNode | None:
    """The executed copy of ``path`` that the last build used (whatever its key), or None."""
    found = sorted(cache_dir().glob(f"{Path(path).stem}.*.ipynb"), key=lambda p: p.stat().st_mtime)
    return nbformat.read(found[-1], as_version=4) if found else None


def title(path: Path) -> str:
    """The notebook's first Markdown heading (its file name without it)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return m.group(1).strip()
    return path.stem


def to_html(nb: nbformat.NotebookNode, plotly_src: str) -> str:
    """An executed notebook as an HTML fragment that loads plotly.js from ``plotly_src``."""
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    nb = nbformat.from_dict(nb)  # a copy: the cached notebook keeps its own plotly.js
    bundle = f"<script>{get_plotlyjs()}</script>"
    shared = f'<script src="{plotly_src}"></script>'
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/html")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            out["data"]["text/html"] = _MATHJAX.sub("", text.replace(bundle, shared))
    exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return body


def _site_link(m: re.Match[str], source: File, files: Files) -> str:
    """``href="../docs/<page>.md#a"`` of a notebook -> the URL of that page, relative to ``source``."""
    target = files.get_file_from_path(m.group(1))
    if target is None:
        raise PluginError(f"notebook page {source.src_uri} links to ../docs/{m.group(1)}, "
                          "which is not a page of the site")
    return f'href="{target.url_relative_to(source)}{m.group(2) or ""}"'


# ---- mkdocs hooks --------------------------------------------------------------------------------
def on_files(files: Files, config: Any) -> Files:
    """Add one page per notebook and the shared plotly.js."""
    from plotly.offline import get_plotlyjs

    _PAGES.clear()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        uri = f"{PAGES}/{path.stem}.md"
        _PAGES[uri] = path
        files.append(File.generated(config, uri, content=f"# {title(path)}\n"))
    files.append(File.generated(config, PLOTLY_ASSET, content=get_plotlyjs()))
    return files


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """The executed notebook's HTML in place of its page's placeholder."""
    path = _PAGES.get(page.file.src_uri)
    if path is None:
        return html
    try:
        nb = executed(path)
    except RuntimeError as exc:
        raise PluginError(str(exc)) from exc
    asset = files.get_file_from_path(PLOTLY_ASSET)
    body = to_html(nb, asset.url_relative_to(page.file))
    body = _DOC_LINK.sub(lambda m: _site_link(m, page.file, files), body)
    remote = _REMOTE.search(body)
    if remote:
        raise PluginError(f"{page.file.src_uri} would load {body[remote.start():remote.start() + 120]!r} "
                          "from the network; the site must work offline")
    if "plotly-graph-div" in body and 'plotly.min.js"' not in body:
        raise PluginError(f"{page.file.src_uri} has plotly figures but never loads plotly.js: does the "
                          'notebook set plotly.io.renderers.default = "notebook" before its first figure?')
    log.info("notebook page %s from %s", page.file.src_uri, path.name)
    return f'<div class="finar-notebook">\n{body}\n</div>'
