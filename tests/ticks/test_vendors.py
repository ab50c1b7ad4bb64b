"""Vendor layouts read as they come (hand-made fixtures in tests/data/vendors/), garbled files
refused with errors naming the problem, and the E-mini wheel read offline from a zip built here."""

from __future__ import annotations

import gzip
import hashlib
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, DataSourceError, InvalidTimestampError
from finar.ticks import emini, read_trades
from tests.conftest import raises_exactly

VENDORS = Path(__file__).resolve().parents[1] / "data" / "vendors"
EMINI = VENDORS / "emini" / "ES_trades_2014-03-02.csv"
DATABENTO = VENDORS / "databento" / "glbx-mdp3-20240102.trades.csv"
DATABENTO_RAW = VENDORS / "databento" / "xnas-itch-20240102.trades.raw.csv"
BINANCE_MS = VENDORS / "binance" / "BTCUSDT-aggTrades-2024-01-02.csv"
BINANCE_US = VENDORS / "binance" / "BTCUSDT-aggTrades-2025-01-02.csv"
LOBSTER = VENDORS / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_1.csv"


def _rows(report: pd.DataFrame) -> dict[str, int]:
    return report.set_index("rule")["rows"].to_dict()


def _layout(report: pd.DataFrame) -> str:
    return str(report.set_index("rule").loc["layout", "action"])


def test_every_fixture_has_a_readme_saying_it_is_hand_made():
    for folder in ("emini", "databento", "binance", "lobster"):
        text = (VENDORS / folder / "README.md").read_text()
        assert "hand-made" in text.lower()


# --- E-mini: DateTime, Price, Volume; no side ---------------------------------------------------


def test_emini_layout_loads_as_it_comes_and_signs_by_the_tick_rule():
    trades, report = read_trades(EMINI)
    assert trades.index[0] == pd.Timestamp("2014-03-02 17:00:00.021") and trades.index.tz is None
    assert trades["price"].tolist()[:3] == [1850.25, 1850.25, 1850.5]
    assert trades["size"].tolist() == [4, 1, 2, 1, 7, 3, 1, 12, 2, 5]
    assert trades["side"].tolist() == [1, 1, 1, 1, -1, -1, -1, -1, 1, 1]
    assert _rows(report)["side_inferred"] == 10 and _rows(report)["total"] == 0
    assert "Volume -> size" in _layout(report) and "tick rule" in _layout(report)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_emini_layout_with_other_delimiters(tmp_path, sep):
    path = tmp_path / "es.txt"
    path.write_text(EMINI.read_text().replace(",", sep))
    expected, _ = read_trades(EMINI)
    pd.testing.assert_frame_equal(read_trades(path)[0], expected)


@pytest.mark.parametrize("kind", ["gz", "zip"])
def test_compressed_files_are_read_by_their_content(tmp_path, kind):
    path = tmp_path / f"es.csv.{kind}"
    if kind == "gz":
        path.write_bytes(gzip.compress(EMINI.read_bytes()))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.write(EMINI, "ES_trades.csv")
    pd.testing.assert_frame_equal(read_trades(path)[0], read_trades(EMINI)[0])


# --- Databento ------------------------------------------------------------------------------------


def test_databento_pretty_csv():
    trades, report = read_trades(DATABENTO)
    assert str(trades.index.tz) == "UTC"
    assert trades.index[3] == pd.Timestamp("2024-01-02T14:30:00.250800000Z")  # ts_event, to the ns
    assert trades["price"].tolist() == [4795.25, 4795.25, 4795.0, 4795.0, 4795.25, 4795.5]
    # B -> +1, A -> -1; the N trade (row 4 once sorted by ts_event) is an up-tick: +1
    assert trades["side"].tolist() == [1, 1, -1, -1, 1, 1]
    r = _rows(report)
    assert (r["out_of_order"], r["side_inferred"], r["not_a_trade"], r["total"]) == (1, 1, 0, 0)
    assert "Databento" in _layout(report)


def test_databento_plain_csv_in_nanoseconds_and_fixed_point_prices():
    trades, report = read_trades(DATABENTO_RAW)
    assert trades.index[0] == pd.Timestamp("2024-01-02T14:30:00.000100001Z")
    assert trades.index[-1] == pd.Timestamp("2024-01-02T14:30:00.999999999Z")
    np.testing.assert_allclose(trades["price"], [185.64, 185.63, 185.65, 185.64])
    assert trades["side"].tolist() == [1, -1, 1, -1]
    assert "1e-9" in _layout(report)


def test_databento_non_trade_records_are_skipped_and_null_prices_dropped(tmp_path):
    lines = DATABENTO_RAW.read_text().splitlines()
    undefined = lines[2].replace("185630000000", str(np.iinfo(np.int64).max))
    quote = lines[3].replace(",T,", ",A,")  # an order added to the book (MBP/MBO), not a trade
    path = tmp_path / "mbp.csv"
    path.write_text("\n".join([lines[0], lines[1], undefined, quote, lines[4]]) + "\n")
    trades, report = read_trades(path)
    r = _rows(report)
    assert (r["not_a_trade"], r["bad_price"], len(trades), r["total"]) == (1, 1, 2, 2)


def test_databento_file_of_several_instruments_needs_symbol(tmp_path):
    text = DATABENTO.read_text()
    path = tmp_path / "two.csv"
    path.write_text(text + text.splitlines()[3].replace("ESH4", "ESM4").replace("4916", "5002") + "\n")
    with raises_exactly(DataError, r"2 instruments in column 'symbol': ESH4 \(6 rows\), ESM4 \(1 rows\); "
                                   r"pass symbol="):
        read_trades(path)
    assert len(read_trades(path, symbol="ESM4")[0]) == 1
    assert len(read_trades(path, symbol="ESH4")[0]) == 6
    with raises_exactly(DataError, "no rows of symbol='NQH4'"):
        read_trades(path, symbol="NQH4")


def test_databento_parquet_and_frames_go_through_the_same_layout(tmp_path):
    raw = pd.read_csv(DATABENTO_RAW)
    path = tmp_path / "trades.parquet"
    raw.to_parquet(path)
    expected, _ = read_trades(DATABENTO_RAW)
    pd.testing.assert_frame_equal(read_trades(path)[0], expected)
    pd.testing.assert_frame_equal(read_trades(raw)[0], expected)


# --- Binance --------------------------------------------------------------------------------------


def test_binance_aggtrades_milliseconds():
    trades, report = read_trades(BINANCE_MS)
    assert trades.index[0] == pd.Timestamp("2024-01-02 00:00:00.012", tz="UTC")
    assert trades["size"].tolist() == [0.012, 0.15, 0.0005, 0.4, 0.02]
    assert trades["side"].tolist() == [-1, 1, 1, -1, -1]  # buyer is maker -> seller-initiated
    assert _rows(report)["side_inferred"] == 0 and "Binance aggTrades" in _layout(report)


def test_binance_aggtrades_microseconds_and_a_mix_of_both(tmp_path):
    trades, _ = read_trades(BINANCE_US)
    assert trades.index[0] == pd.Timestamp("2025-01-02 00:00:00.004521", tz="UTC")
    assert trades["side"].tolist() == [1, -1, 1]
    path = tmp_path / "BTCUSDT-aggTrades-2024-12-31_2025-01-02.csv"  # files concatenated across the switch
    path.write_text(BINANCE_MS.read_text() + BINANCE_US.read_text())
    both, _ = read_trades(path, band=math.inf)  # the price doubled in a year: no bad prints here
    assert both.index[4] == pd.Timestamp("2024-01-02 00:00:00.240", tz="UTC")
    assert both.index[5] == pd.Timestamp("2025-01-02 00:00:00.004521", tz="UTC")


def test_binance_futures_header_and_plain_trades_files(tmp_path):
    futures = tmp_path / "BTCUSDT-aggTrades-2024-01-02-um.csv"
    body = "\n".join(",".join(line.split(",")[:7]) for line in BINANCE_MS.read_text().splitlines())
    futures.write_text("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                       "is_buyer_maker\n" + body.replace("True", "true").replace("False", "false") + "\n")
    expected, _ = read_trades(BINANCE_MS)
    pd.testing.assert_frame_equal(read_trades(futures)[0], expected)
    plain = tmp_path / "BTCUSDT-trades-2024-01-02.csv"  # id, price, qty, quoteQty, time, maker, best
    plain.write_text("1,42301.5,0.5,21150.75,1704153600012,True,True\n"
                     "2,42301.6,0.25,10575.4,1704153600020,False,True\n")
    trades, report = read_trades(plain)
    assert trades["side"].tolist() == [-1, 1] and trades["size"].tolist() == [0.5, 0.25]
    assert "Binance trades" in _layout(report)


# --- LOBSTER --------------------------------------------------------------------------------------


def test_lobster_message_file_executions_with_the_aggressor_side():
    trades, report = read_trades(LOBSTER)
    assert trades.index.tolist() == [pd.Timestamp("2012-06-21 09:30:00.201781600"),
                                     pd.Timestamp("2012-06-21 09:30:00.205573550"),
                                     pd.Timestamp("2012-06-21 09:30:00.212076000"),
                                     pd.Timestamp("2012-06-21 09:30:02.504188000")]
    assert trades["price"].tolist() == [585.91, 585.95, 585.33, 585.33]
    assert trades["size"].tolist() == [18, 18, 10, 100]
    # a sell limit order executed is a buy; the hidden execution (direction masked as 1) is an
    # up-tick, so the tick rule makes it a buy where -direction would have said sell
    assert trades["side"].tolist() == [1, 1, -1, -1]
    r = _rows(report)
    assert (r["layout"], r["not_a_trade"], r["side_inferred"], r["total"]) == (10, 6, 1, 6)
    assert "hidden" in report.set_index("rule").loc["side_inferred", "action"]


def test_lobster_date_from_argument_when_the_file_is_renamed(tmp_path):
    path = tmp_path / "messages.csv"
    shutil.copy(LOBSTER, path)
    with raises_exactly(DataError, r"not the date; pass date='YYYY-MM-DD'"):
        read_trades(path)
    trades, _ = read_trades(path, date="2012-06-21")
    pd.testing.assert_frame_equal(trades, read_trades(LOBSTER)[0])
    with raises_exactly(DataError, "the file name says 2012-06-21"):
        read_trades(LOBSTER, date="2012-06-22")
    with raises_exactly(DataError, "calendar day"):
        read_trades(path, date="2012-06-21 09:30")


def test_lobster_garbled_rows_are_named(tmp_path):
    lines = LOBSTER.read_text().splitlines()
    path = tmp_path / LOBSTER.name
    path.write_text("\n".join([*lines, "34203.1,9,1,1,5853300,1"]) + "\n")  # event type 9: no such type
    with raises_exactly(DataError, r"event types are 1 to 7; 1 row\(s\) have others, at rows 10"):
        read_trades(path)
    path.write_text("\n".join([*lines, "34203.x,4,1,1,5853300,1"]) + "\n")
    with raises_exactly(InvalidTimestampError, r"1 missing or unparseable"):
        read_trades(path)
    path.write_text("\n".join([*lines, "34203.2,4,1,1,5853300,0"]) + "\n")  # direction 0: not a side
    with raises_exactly(DataError, r"1 execution\(s\) have others, at rows 10 \(counting from 0\), e.g. '0'"):
        read_trades(path)


def test_frames_read_without_a_header_are_recognised():
    raw = pd.read_csv(BINANCE_MS, header=None)
    pd.testing.assert_frame_equal(read_trades(raw)[0], read_trades(BINANCE_MS)[0])
    raw = pd.read_csv(LOBSTER, header=None, dtype={0: str})
    pd.testing.assert_frame_equal(read_trades(raw, date="2012-06-21")[0], read_trades(LOBSTER)[0])


# --- layouts asked for, unknown, garbled ----------------------------------------------------------


def test_layout_argument_is_checked():
    with raises_exactly(DataError, "layout='lobster' asked for, but the file looks like 'binance'"):
        read_trades(BINANCE_MS, layout="lobster")
    with raises_exactly(DataError, "layout must be 'auto' or one of"):
        read_trades(BINANCE_MS, layout="nasdaq")
    with raises_exactly(DataError, "date= applies to LOBSTER message files only"):
        read_trades(EMINI, date="2014-03-02")
    with raises_exactly(DataError, "symbol= does not apply"):
        read_trades(LOBSTER, symbol="AAPL")
    assert len(read_trades(DATABENTO, layout="databento")[0]) == 6


def test_binary_junk_is_refused(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_bytes(b"DateTime,Price,Volume\n" + bytes(range(256)) * 8)
    with raises_exactly(DataError, r"not a text \(CSV\) file: it holds binary data \(a NUL byte at "
                                   r"byte 22\)"):
        read_trades(path)
    path.write_bytes(bytes(np.random.default_rng(0).integers(1, 256, 4096, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"not a text \(CSV\) file"):
        read_trades(path)


def test_corrupt_parquet_is_refused(tmp_path):
    good = tmp_path / "good.parquet"
    read_trades(EMINI)[0].to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with raises_exactly(DataError, "not a readable Parquet file .* truncated or corrupt"):
        read_trades(cut)
    text = tmp_path / "text.parquet"
    text.write_text(EMINI.read_text())
    with raises_exactly(DataError, "does not start with Parquet's magic bytes"):
        read_trades(text)
    pd.testing.assert_frame_equal(read_trades(good)[0], read_trades(EMINI)[0])


def test_other_unreadable_files(tmp_path):
    with raises_exactly(DataError, "file not found"):
        read_trades(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with raises_exactly(DataError, "is empty"):
        read_trades(empty)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.write(EMINI, "a.csv")
        z.write(EMINI, "b.csv")
    with raises_exactly(DataError, r"zip archive of 2 files"):
        read_trades(two)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(EMINI.read_bytes())[:40])
    with pytest.raises(DataError, match="gzip"):
        read_trades(broken)
    header_only = tmp_path / "header.csv"
    header_only.write_text("DateTime,Price,Volume\n")
    with raises_exactly(DataError, "a header but no rows"):
        read_trades(header_only)


# --- the E-mini sample: the wheel is read offline from a zip built here ------------------------------


def _wheel(tmp_path: Path, text: str = EMINI.read_text()) -> Path:
    path = tmp_path / emini.EMINI_WHEEL
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mlfinpy/__init__.py", "")
        z.writestr(emini.EMINI_MEMBER, text)
    return path


def test_wheel_member_is_read_as_it_comes(tmp_path):
    trades, report = emini.read_wheel_trades(_wheel(tmp_path))
    pd.testing.assert_frame_equal(trades, read_trades(EMINI)[0])
    assert (tmp_path / "mlfinpy-0.1.2-py3-none-any" / "tick_data.csv").is_file()
    assert "Volume -> size" in _layout(report)


def test_wheel_without_the_member_or_not_a_zip(tmp_path):
    with raises_exactly(DataError, r"has no 'demo/ticks.csv'; its data files are \['mlfinpy/dataset/data/"):
        emini.read_wheel_trades(_wheel(tmp_path), "demo/ticks.csv")
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with raises_exactly(DataError, "not a readable wheel"):
        emini.read_wheel_trades(bad)


def test_fetch_runs_pip_download_with_this_interpreter_and_checks_the_hash(tmp_path, monkeypatch):
    index = tmp_path / "index"
    index.mkdir()
    source = _wheel(index)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        shutil.copy(source, Path(cmd[cmd.index("-d") + 1]) / emini.EMINI_WHEEL)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(emini.subprocess, "run", fake_run)
    cache = tmp_path / "cache"
    with raises_exactly(DataError, "not the published file"):  # the real hash is not the test zip's
        emini.fetch_wheel(cache)
    assert not (cache / emini.EMINI_WHEEL).exists()
    monkeypatch.setattr(emini, "EMINI_SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    trades, _ = emini.emini_trades(cache)
    assert len(trades) == 10 and (cache / emini.EMINI_WHEEL).is_file()
    assert calls[0][:4] == [sys.executable, "-m", "pip", "download"]
    assert {"mlfinpy==0.1.2", "--no-deps"} <= set(calls[0])
    emini.emini_trades(cache)  # cached: pip is not run again
    assert len(calls) == 2


def test_fetch_offline_gives_a_finar_error(tmp_path, monkeypatch):
    def offline(cmd, **kwargs):
        stderr = "WARNING: Retrying ...\nERROR: Could not find a version that satisfies mlfinpy==0.1.2"
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(emini.subprocess, "run", offline)
    with raises_exactly(DataSourceError, r"could not download mlfinpy==0.1.2 with pip \(offline.*"
                                         r"Could not find a version.*put mlfinpy-0.1.2-py3-none-any.whl"):
        emini.emini_trades(tmp_path / "cache")
    assert isinstance(DataSourceError("x"), finar.FinarError)


def test_a_cached_wheel_that_is_not_the_published_file_is_refused(tmp_path, monkeypatch):
    _wheel(tmp_path)
    monkeypatch.setattr(emini.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    with raises_exactly(DataError, "its SHA-256 differs"):
        emini.fetch_wheel(tmp_path)
