"""Atomic writes: nothing half-written, nothing overwritten unless asked, the umask respected."""

import os
import threading

import pytest

from finar._io import atomic_path, atomic_write_text
from finar.errors import FileExistsFinarError


def test_atomic_write_replaces_by_default(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]  # no temporary files left


def test_no_overwrite_refuses_and_keeps_the_file(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("keep me")
    with pytest.raises(FileExistsFinarError, match="refusing to overwrite"), atomic_path(p, overwrite=False):
        pass
    assert p.read_text() == "keep me"
    q = tmp_path / "new.csv"
    with atomic_path(q, overwrite=False) as tmp:
        tmp.write_text("fresh")
    assert q.read_text() == "fresh"


def test_no_overwrite_catches_a_file_created_meanwhile(tmp_path):
    p = tmp_path / "race.txt"
    with pytest.raises(FileExistsFinarError, match="appeared"), atomic_path(p, overwrite=False) as tmp:
        tmp.write_text("mine")
        p.write_text("theirs")
    assert p.read_text() == "theirs"


def test_failed_write_leaves_target_untouched(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def test_umask_is_applied_and_never_changed(tmp_path):
    old = os.umask(0o027)
    try:
        seen = []
        stop = threading.Event()

        def watch():  # another thread reading the umask while files are written
            while not stop.is_set():
                u = os.umask(0o027)
                os.umask(u)
                seen.append(u)

        t = threading.Thread(target=watch)
        t.start()
        for i in range(200):
            atomic_write_text(tmp_path / f"f{i}.txt", "x")
        stop.set()
        t.join()
        mode = (tmp_path / "f0.txt").stat().st_mode & 0o777
        assert mode == 0o640
        assert set(seen) == {0o027}
    finally:
        os.umask(old)
