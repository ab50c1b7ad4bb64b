"""mkdocs hook: the module lists of the API pages, and Sphinx roles in docstrings shown as code.

**Module lists.** An API page names its package and the reading order of its modules on a line
of its own::

    <!-- api: finar.ticks io vendors simulator model -->

and the build replaces it with one mkdocstrings block (``::: finar.ticks.io``) per module: the
named ones first, in that order, then every other public module of the package (a ``.py`` file
or a sub-package whose name does not start with ``_``), sorted. A new module is therefore
documented without anyone listing it, and a module that was renamed or removed fails the build
(a warning, and ``mkdocs build --strict``) until the page's order is updated; ``-name`` leaves a
module out. After the build, every public top-level module of finar (but the CLI) must have
appeared on some page.

**Roles.** finar's docstrings are numpydoc, read by mkdocstrings, and some name other objects
the Sphinx way, ``:func:`finar.returns``` or ``:class:`~finar.models.predictive.Predictive```.
mkdocstrings renders the role's text as code but leaves the role itself (``:func:``) in front of
it; this hook removes it, and the ``~`` that asks Sphinx for the short name.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.finar.api")

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!--\s*api:\s*([a-z_.]+)((?:\s+-?[a-z_0-9]+)*)\s*-->\s*$", flags=re.M)
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const|term):(<code>)~?")


def modules(package: str) -> list[str]:
    """The public modules of ``package`` (``finar.ticks`` -> ``['baselines', 'contract', ...]``)."""
    folder = ROOT.joinpath(*package.split("."))
    names = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
    names += [p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    return sorted(n for n in names if not n.startswith("_"))


def expand(package: str, order: list[str], where: str) -> str:
    """The ``:::`` blocks of a marker: ``order`` first, the package's other modules after."""
    found = modules(package)
    if not found:
        log.warning("%s: <!-- api: %s --> names no package of finar", where, package)
        return ""
    left_out = {n[1:] for n in order if n.startswith("-")}
    first = [n for n in order if not n.startswith("-")]
    for name in [*first, *left_out]:
        if name not in found:
            log.warning("%s: <!-- api: %s --> names %s, which %s does not have (renamed or removed?); "
                        "its modules are %s", where, package, name, package, ", ".join(found))
    names = [n for n in first if n in found] + [n for n in found if n not in first and n not in left_out]
    return "\n\n".join(f"::: {package}.{n}" for n in names)


#: top-level parts of finar the API reference leaves to other pages (the CLI: its --help and the guide)
NOT_DOCUMENTED = {"cli"}
_DOCUMENTED: set[str] = set()


def on_pre_build(config: Any) -> None:
    _DOCUMENTED.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Expand each ``<!-- api: package order... -->`` line into mkdocstrings blocks."""
    markdown = MARKER.sub(lambda m: expand(m.group(1), m.group(2).split(), page.file.src_uri), markdown)
    _DOCUMENTED.update(re.findall(r"^::: finar\.([a-z_]+)", markdown, flags=re.M))
    return markdown


def on_post_build(config: Any) -> None:
    """Every public top-level module or package of finar must be on an API page."""
    missing = sorted(set(modules("finar")) - _DOCUMENTED - NOT_DOCUMENTED)
    if missing:
        log.warning("finar modules missing from the API reference (add them to a page of docs/api/): %s",
                    ", ".join(f"finar.{m}" for m in missing))


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Drop the Sphinx role prefixes on the pages under ``api/``."""
    if not page.file.src_uri.startswith("api/"):
        return html
    return _ROLE.sub(r"\1", html)
