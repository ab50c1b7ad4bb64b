"""finar's version, in a module of its own so that any part of finar can read it.

``finar/__init__.py`` re-exports it; modules inside finar import it from here
(``from finar._version import __version__``), never from the ``finar`` package itself, whose
``__init__`` imports them back.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("finar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"
