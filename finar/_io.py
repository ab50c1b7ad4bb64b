"""Atomic file writes: a reader never sees a half-written file, an interrupted run loses nothing.

Each writer writes to a temporary file in the target's folder, flushes it to disk and renames it
over the target (``os.replace`` is atomic on POSIX and Windows within one file system).

Nothing is overwritten unless asked: every writer takes ``overwrite=False`` by default and then
refuses an existing target with :class:`~finar.errors.FileExistsFinarError`, both before writing
and, atomically, at the final move (so a file another process created meanwhile survives too).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_target", "write_frame"]

#: errors of ``os.link`` on a file system that has no hard links
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. With
    ``overwrite=False`` (the default) an existing ``path`` is never replaced:
    :class:`~finar.errors.FileExistsFinarError` is raised before anything is written, and the
    final move is a hard link that fails if another writer created ``path`` meanwhile.
    ``overwrite=True`` replaces a file (never a folder).
    """
    from finar.errors import FileExistsFinarError

    target = check_target(path, overwrite=overwrite)
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
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                # a file system without hard links (FAT, some network mounts): exclusive
                # creation still refuses a file that appeared meanwhile, then the move fills it
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                except FileExistsError:
                    raise FileExistsFinarError(f"{str(target)!r} appeared while writing; "
                                               "not overwritten") from None
                os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def check_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse an output ``path`` before any work: a folder always, an existing file unless
    ``overwrite``. Raises :class:`~finar.errors.FileExistsFinarError`; returns ``Path(path)``."""
    from finar.errors import FileExistsFinarError

    target = Path(path)
    if target.is_dir():
        raise FileExistsFinarError(f"{str(target)!r} is a folder; give a file name to write to")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise FileExistsFinarError(f"{str(target)!r} exists; refusing to overwrite it (pass overwrite=True, "
                                   "or --force on the command line)")
    return target


def _atomic_write(path: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], Any],
                  overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, mode) as fh:
        write(fh)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (an existing file only with ``overwrite=True``)."""
    _atomic_write(path, "wb", lambda fh: fh.write(data), overwrite)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (an existing file only with ``overwrite=True``)."""
    _atomic_write(path, "w", lambda fh: fh.write(text), overwrite)


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a DataFrame atomically as Parquet (``.parquet``/``.pq``) or CSV (anything else).

    An existing ``path`` is replaced only with ``overwrite=True``; otherwise
    :class:`~finar.errors.FileExistsFinarError` is raised and the file is left as it was.
    """
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        if target.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp)
        else:
            frame.to_csv(tmp)
    return target
