"""Atomic file writes: a reader never sees a half-written file, an interrupted run loses nothing.

Each writer writes to a temporary file in the target's folder, flushes it to disk and renames it
over the target (``os.replace`` is atomic on POSIX and Windows within one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "write_frame"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file private (0600); give it the usual permissions under the umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _atomic_write(path: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        write(fh)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(path, "wb", lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _atomic_write(path, "w", lambda fh: fh.write(text))


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame atomically as Parquet (``.parquet``/``.pq``) or CSV (anything else)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        if target.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp)
        else:
            frame.to_csv(tmp)
    return target
