"""Atomic writes: nothing half-written, nothing overwritten unless asked, the umask respected."""

import errno
import os
import threading

import pandas as pd
import pytest

from finar._io import atomic_path, atomic_write_text, write_frame
from finar.errors import FileExistsFinarError


def test_atomic_write_keeps_an_existing_file_unless_asked(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    with pytest.raises(FileExistsFinarError, match="refusing to overwrite"):
        atomic_write_text(p, "two")
    assert p.read_text() == "one"
    atomic_write_text(p, "two", overwrite=True)
    assert p.read_text() == "two"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]  # no temporary files left


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_is_never_replaced(tmp_path, overwrite):
    folder = tmp_path / "out.csv"
    folder.mkdir()
    with pytest.raises(FileExistsFinarError, match="is a folder"):
        write_frame(pd.DataFrame({"a": [1]}), folder, overwrite=overwrite)
    assert folder.is_dir()


def test_write_frame_refuses_an_existing_file_unless_asked(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("keep me")
    with pytest.raises(FileExistsFinarError, match=r"prices\.csv"):
        write_frame(pd.DataFrame({"a": [1.0]}), p)
    assert p.read_text() == "keep me"
    write_frame(pd.DataFrame({"a": [1.0]}), p, overwrite=True)
    assert pd.read_csv(p, index_col=0)["a"].tolist() == [1.0]


def test_no_overwrite_without_hard_links(tmp_path, monkeypatch):
    """On a file system without hard links the exclusive move still refuses a file that appeared."""
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    p = tmp_path / "new.txt"
    atomic_write_text(p, "fresh")
    assert p.read_text() == "fresh"
    q = tmp_path / "race.txt"
    with pytest.raises(FileExistsFinarError, match="appeared"), atomic_path(q) as tmp:
        tmp.write_text("mine")
        q.write_text("theirs")
    assert q.read_text() == "theirs"


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
    with pytest.raises(RuntimeError), atomic_path(p, overwrite=True) as tmp:
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
