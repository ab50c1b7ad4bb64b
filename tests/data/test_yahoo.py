"""Tests of finar.data.yahoo, with Yahoo's HTTP answers served from fixtures in its v8 format.

Only the HTTP layer is replaced: a curl_cffi ``Session`` whose ``request`` answers each URL from
``fixtures/yahoo`` (or raises a DNS error while "offline"), so yfinance's own request, cookie and
parsing code runs as it does against Yahoo. Any real connection attempt fails the test.
"""

from __future__ import annotations

import json
import re
import socket
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit

import curl_cffi
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yfinance.base
import yfinance.cache
import yfinance.data
from curl_cffi.requests import Response, Session
from curl_cffi.requests.exceptions import DNSError
from curl_cffi.requests.headers import Headers

from finar.data.yahoo import cache_path, load_yahoo
from finar.errors import DataError, DataSourceError, FinarError, FinarWarning, StaleCacheWarning

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
SPY = json.loads((FIXTURES / "chart_SPY_1d.json").read_text())["chart"]["result"][0]
DATES = pd.DatetimeIndex(pd.to_datetime(SPY["timestamp"], unit="s", utc=True)
                         .tz_convert("America/New_York").date, name="time").as_unit("us")
START, END = "2024-01-02", "2024-01-17"  # all ten fixture bars

# yfinance on pandas 3 warns about its own sort_index(inplace=True); not ours to fix here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")


class FakeYahoo(Session):
    """A curl_cffi session that answers from the Yahoo fixtures and never opens a socket."""

    def __init__(self, charts: dict[str, str] | None = None) -> None:
        super().__init__()
        self.charts = {"SPY": "chart_SPY_1d.json"} if charts is None else charts
        self.calls: list[str] = []
        self.down = False

    def request(self, method: str, url: str, params: dict | None = None, **kwargs) -> Response:
        self.calls.append(url)
        if self.down:
            raise DNSError(f"Failed to perform, curl: (6) Could not resolve host: "
                           f"{urlsplit(url).hostname}", 6)
        path = urlsplit(url).path
        if path.startswith("/v8/finance/chart/"):
            symbol = path.rsplit("/", 1)[1]
            if symbol in self.charts:
                return _response(url, 200, _chart(self.charts[symbol], params or {}))
            return _response(url, 404, (FIXTURES / "chart_not_found_404.json").read_bytes())
        if path.endswith("/getcrumb"):
            return _response(url, 200, b"kQ3jDq1xJ9a", "text/plain")
        if urlsplit(url).hostname == "guce.yahoo.com":
            return _response(url, 200, b"<html><body></body></html>", "text/html")
        return _response(url, 404, b"", "text/html")  # fc.yahoo.com, quoteSummary, ...


def _response(url: str, status: int, body: bytes, kind: str = "application/json") -> Response:
    r = Response()
    r.url, r.status_code, r.content = url, status, body
    r.ok, r.reason = status < 400, "OK" if status < 400 else "Not Found"
    r.headers = Headers({"content-type": f"{kind};charset=utf-8"})
    return r


def _chart(name: str, params: dict) -> bytes:
    """The fixture's bars in [period1, period2), or the last bar for ``range`` (as Yahoo does)."""
    doc = json.loads((FIXTURES / name).read_text())
    res = doc["chart"]["result"][0]
    ts = res["timestamp"]
    if "period1" in params:
        keep = [i for i, t in enumerate(ts) if params["period1"] <= t < params["period2"]]
    else:
        keep = [len(ts) - 1]
    res["timestamp"] = [ts[i] for i in keep]
    for series in (res["indicators"]["quote"][0], res["indicators"]["adjclose"][0]):
        for key, values in series.items():
            series[key] = [values[i] for i in keep]
    return json.dumps(doc).encode()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail the test on any real connection, by Python sockets or by libcurl."""

    def refuse(*args, **kwargs):
        pytest.fail(f"a test tried to open a real network connection ({args!r})")  # BaseException

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(curl_cffi.Curl, "perform", refuse)


@pytest.fixture(autouse=True)
def fresh_yfinance(monkeypatch):
    """Isolate yfinance's process-wide state: session singleton, response memo, disk caches."""
    monkeypatch.setattr(yfinance.data.YfData, "_instances", {})
    monkeypatch.setattr(yfinance.cache, "get_tz_cache", yfinance.cache._TzCacheDummy)
    monkeypatch.setattr(yfinance.cache, "get_cookie_cache", yfinance.cache._CookieCacheDummy)
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
    yfinance.data.YfData.cache_get.cache_clear()
    yield
    yfinance.data.YfData.cache_get.cache_clear()


@pytest.fixture
def yahoo():
    fake = FakeYahoo()
    yield fake
    fake.close()


def go_offline(fake: FakeYahoo) -> None:
    fake.down = True
    yfinance.data.YfData.cache_get.cache_clear()  # a new process would not have yfinance's memo


def test_download_gives_the_fixture_bars_normalised(tmp_path, yahoo):
    px = load_yahoo("spy", START, END, cache_dir=tmp_path, session=yahoo)
    assert px.columns.tolist() == ["open", "high", "low", "close", "adj_close", "volume"]
    assert px.index.name == "time" and px.index.tz is None
    assert px.index.equals(DATES) and (px.index == px.index.normalize()).all()
    quote = SPY["indicators"]["quote"][0]
    for col in ("open", "high", "low", "close", "volume"):
        assert px[col].tolist() == quote[col]
    assert px["adj_close"].tolist() == SPY["indicators"]["adjclose"][0]["adjclose"]
    assert any("/v8/finance/chart/SPY" in url for url in yahoo.calls)


def test_download_is_clipped_to_start_inclusive_end_exclusive(tmp_path, yahoo):
    px = load_yahoo("SPY", "2024-01-04", "2024-01-11", cache_dir=tmp_path, session=yahoo)
    assert px.index.equals(DATES[2:7])  # 01-04 ... 01-10; 01-11 is the exclusive end


def test_cache_file_is_written_as_valid_parquet(tmp_path, yahoo):
    px = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    path = cache_path("SPY", "1d", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary files left
    assert pq.read_table(path).num_rows == 10
    cached = pd.read_parquet(path)
    cached.attrs = {}  # the cache also records the span it covers
    pd.testing.assert_frame_equal(cached, px)


def test_network_down_with_cache_warns_and_returns_cached_rows(tmp_path, yahoo):
    online = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    go_offline(yahoo)
    path = cache_path("SPY", "1d", tmp_path)
    with pytest.warns(StaleCacheWarning) as caught:
        px = load_yahoo("SPY", "2024-01-03", "2024-01-10", cache_dir=tmp_path, session=yahoo)
    [message] = [str(w.message) for w in caught if w.category is StaleCacheWarning]
    assert "SPY" in message and str(path) in message and "Could not resolve host" in message
    assert "2024-01-02" in message and "2024-01-16" in message  # the cached span
    pd.testing.assert_frame_equal(px, online.loc["2024-01-03":"2024-01-09"])


def test_network_down_uses_a_parquet_file_the_user_put_in_the_cache(tmp_path, yahoo):
    path = cache_path("SPY", "1d", tmp_path)
    closes = pd.DataFrame({"Close": [470.0, 471.5]}, index=pd.Index(DATES[:2], name="Date"))
    closes.to_parquet(path)  # what the DataSourceError message suggests doing
    go_offline(yahoo)
    with pytest.warns(StaleCacheWarning, match="2 rows"):
        px = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    assert px.columns.tolist() == ["close"] and px["close"].tolist() == [470.0, 471.5]


def test_download_replaces_a_cache_of_another_shape_and_says_so(tmp_path, yahoo):
    path = cache_path("SPY", "1d", tmp_path)
    pd.DataFrame({"close": [470.0]}, index=pd.Index(DATES[:1], name="time")).to_parquet(path)
    with pytest.warns(FinarWarning, match="replaced by the download"):
        px = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    assert len(px) == 10 and pd.read_parquet(path).columns.tolist() == px.columns.tolist()


def test_network_down_without_cache_raises_an_actionable_error(tmp_path, yahoo):
    go_offline(yahoo)
    with pytest.raises(DataSourceError) as info:
        load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    message = str(info.value)
    assert "Yahoo Finance could not be reached" in message
    assert str(cache_path("SPY", "1d", tmp_path)) in message
    assert "finar.datasets()" in message and "Could not resolve host" in message
    assert isinstance(info.value, FinarError) and isinstance(info.value.__cause__, DNSError)
    assert list(tmp_path.iterdir()) == []


def test_unknown_symbol_404_without_cache_raises(tmp_path, yahoo):
    with pytest.raises(DataSourceError, match="NOSUCHTICKER") as info:
        load_yahoo("NOSUCHTICKER", START, END, cache_dir=tmp_path, session=yahoo)
    assert re.search(r"404|delisted|no data", str(info.value), re.IGNORECASE)


def test_network_down_and_cache_outside_the_span_raises(tmp_path, yahoo):
    load_yahoo("SPY", START, "2024-01-05", cache_dir=tmp_path, session=yahoo)
    go_offline(yahoo)
    with pytest.raises(DataSourceError, match="nothing in the requested span"):
        load_yahoo("SPY", "2024-01-10", END, cache_dir=tmp_path, session=yahoo)


def test_download_merges_into_the_cache_and_new_rows_win(tmp_path, yahoo):
    path = cache_path("SPY", "1d", tmp_path)
    first = load_yahoo("SPY", START, "2024-01-09", cache_dir=tmp_path, session=yahoo)
    assert first.index.equals(DATES[:5])
    stale = pd.read_parquet(path)
    stale.loc["2024-01-08", "close"] = 999.0  # a value the next download must overwrite
    stale.to_parquet(path)

    second = load_yahoo("SPY", "2024-01-08", END, cache_dir=tmp_path, session=yahoo)
    assert second.index.equals(DATES[4:])
    cached = pd.read_parquet(path)
    assert cached.index.equals(DATES)  # 01-02 ... 01-05 kept from the first download
    assert cached.loc["2024-01-08", "close"] == SPY["indicators"]["quote"][0]["close"][4]
    quiet = FakeYahoo()  # the two overlapping downloads now cover 01-02 ... 01-17 together
    load_yahoo("SPY", START, END, cache_dir=tmp_path, session=quiet, refresh=False)
    assert quiet.calls == []


def test_a_gap_between_downloads_is_not_taken_as_covered(tmp_path, yahoo):
    load_yahoo("SPY", START, "2024-01-05", cache_dir=tmp_path, session=yahoo)
    load_yahoo("SPY", "2024-01-10", END, cache_dir=tmp_path, session=yahoo)
    fake = FakeYahoo()
    px = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=fake, refresh=False)
    assert fake.calls and px.index.equals(DATES)


def test_failed_write_leaves_the_old_cache_intact(tmp_path, yahoo, monkeypatch):
    load_yahoo("SPY", START, "2024-01-09", cache_dir=tmp_path, session=yahoo)
    path = cache_path("SPY", "1d", tmp_path)
    before = path.read_bytes()

    def half_write(self, target, *args, **kwargs):
        Path(target).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        patch.setattr(pd.DataFrame, "to_parquet", half_write)
        load_yahoo("SPY", "2024-01-08", END, cache_dir=tmp_path, session=yahoo)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert pd.read_parquet(path).index.equals(DATES[:5])


@pytest.mark.parametrize("ticker", ["^GSPC", "BRK-B", "EURUSD=X", "BRK.B", "../etc/x", "A:B*?", "CON"])
def test_cache_file_names_are_safe_and_distinct(tmp_path, ticker):
    path = cache_path(ticker, "1d", tmp_path)
    assert path.parent == tmp_path
    assert re.fullmatch(r"yahoo_[A-Za-z0-9._%-]+_1d\.parquet", path.name)
    assert unquote(path.name[len("yahoo_"):-len("_1d.parquet")]) == ticker.upper()


def test_unsafe_ticker_is_cached_under_its_safe_name(tmp_path):
    fake = FakeYahoo({"^GSPC": "chart_SPY_1d.json"})  # SPY's bars stand in for the index's
    load_yahoo("^GSPC", START, END, cache_dir=tmp_path, session=fake)
    assert [p.name for p in tmp_path.iterdir()] == ["yahoo_%5EGSPC_1d.parquet"]
    assert cache_path("EURUSD=X").name == "yahoo_EURUSD%3DX_1d.parquet"
    assert cache_path("BRK-B").name == "yahoo_BRK-B_1d.parquet"


def test_refresh_false_uses_a_covering_cache_without_the_network(tmp_path, yahoo):
    online = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=yahoo)
    quiet = FakeYahoo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no StaleCacheWarning either
        px = load_yahoo("SPY", "2024-01-05", "2024-01-12", cache_dir=tmp_path, session=quiet,
                        refresh=False)
        whole = load_yahoo("SPY", START, None, cache_dir=tmp_path, session=quiet, refresh=False)
    assert quiet.calls == []
    pd.testing.assert_frame_equal(px, online.loc["2024-01-05":"2024-01-11"])
    pd.testing.assert_frame_equal(whole, online)


def test_refresh_false_downloads_what_the_cache_does_not_cover(tmp_path, yahoo):
    load_yahoo("SPY", "2024-01-08", END, cache_dir=tmp_path, session=yahoo)
    fake = FakeYahoo()
    px = load_yahoo("SPY", START, END, cache_dir=tmp_path, session=fake, refresh=False)
    assert fake.calls and px.index.equals(DATES)


def test_cache_folder_comes_from_argument_env_var_or_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINAR_CACHE_DIR", raising=False)
    assert cache_path("SPY") == Path("data/cache/yahoo_SPY_1d.parquet")
    monkeypatch.setenv("FINAR_CACHE_DIR", str(tmp_path / "env"))
    assert cache_path("SPY", "1wk") == tmp_path / "env" / "yahoo_SPY_1wk.parquet"
    assert cache_path("SPY", cache_dir=tmp_path / "arg").parent == tmp_path / "arg"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"ticker": ""}, "ticker"),
    ({"ticker": "   "}, "ticker"),
    ({"ticker": None}, "ticker"),
    ({"start": "2024-02-01", "end": "2024-01-01"}, "before"),
    ({"start": "2024-01-05", "end": "2024-01-05"}, "before"),
    ({"start": "not a date"}, "start"),
    ({"end": ""}, "end"),
    ({"interval": "2d"}, "interval"),
    ({"start": pd.Timestamp("2024-01-02", tz="UTC"), "end": "2024-01-05"}, "time zone"),
])
def test_bad_arguments_raise_data_error_before_any_request(tmp_path, yahoo, kwargs, match):
    args = {"ticker": "SPY", "cache_dir": tmp_path, "session": yahoo, **kwargs}
    with pytest.raises(DataError, match=match):
        load_yahoo(**args)
    assert yahoo.calls == [] and list(tmp_path.iterdir()) == []


def test_finar_load_routes_yahoo_names_here(tmp_path, yahoo):
    import finar

    px = finar.load("yahoo:SPY", start=START, end=END, cache_dir=tmp_path, session=yahoo)
    pd.testing.assert_frame_equal(px, load_yahoo("SPY", START, END, cache_dir=tmp_path,
                                                 session=yahoo, refresh=False))


def test_the_network_guard_refuses_real_connections():
    with pytest.raises(pytest.fail.Exception, match="real network connection"):
        socket.create_connection(("query2.finance.yahoo.com", 443))
    with pytest.raises(pytest.fail.Exception, match="real network connection"):
        curl_cffi.requests.get("https://query2.finance.yahoo.com/v8/finance/chart/SPY")
