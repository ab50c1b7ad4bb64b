"""Names of a package imported on first access (PEP 562), so ``import finar`` stays light.

A package lists its lazy names in a module-level dict ``_LAZY`` (name -> module) and asks
:func:`lazy_exports` for its ``__getattr__`` and ``__dir__``::

    _LAZY = {"WaveNet": "finar.models.wavenet", "ticks": "finar.ticks"}
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

A name maps to the module that defines it; when the module is the package's own submodule of
that name (``"ticks": "finar.ticks"`` in ``finar``), the name is the submodule itself. The module
is imported the first time the name is read and the value is then stored in the package, so
later reads cost nothing. ``tests/test_imports.py`` reads the ``_LAZY`` dicts as imports of the
package when it checks finar's import graph for cycles.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, lazy: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` of ``package`` that import the names of ``lazy`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    lazy : mapping of str to str
        Name -> the module that defines it (or the submodule ``<package>.<name>`` itself).

    Returns
    -------
    (callable, callable)
        The module-level ``__getattr__(name)`` and ``__dir__()`` of the package.
    """

    def __getattr__(name: str) -> Any:
        target = lazy.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(target)
        value = module if target == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(lazy))

    return __getattr__, __dir__
