"""Atomic file writes: a reader never sees a half-written file, an interrupted run loses nothing.

Each writer writes to a temporary file in the target's folder, flushes it to disk and renames it
over the target (``os.replace`` is atomic on POSIX and Windows within one file system).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "write_frame"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. With
    ``overwrite=False`` an existing ``path`` is never replaced: :class:`~finar.errors.FileExistsFinarError`
    is raised before anything is written, and the final move is a hard link that fails if
    another writer created ``path`` meanwhile.
    """
    from finar.errors import FileExistsFinarError

    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsFinarError(f"{str(target)!r} exists; refusing to overwrite it (pass overwrite=True, "
                                   "or --force on the command line)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Created with mode 0666 so the OS applies the process umask itself: reading the umask with
    # os.umask would set it for a moment and race with other threads creating files.
    for _ in range(100):
        tmp_path = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise OSError(f"could not create a temporary file beside {str(target)!r}")
    os.close(fd)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp_path, target)
        else:
            try:
                os.link(tmp_path, target)
            except FileExistsError:
                raise FileExistsFinarError(f"{str(target)!r} appeared while writing; "
                                           "not overwritten") from None
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
