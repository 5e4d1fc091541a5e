"""The ccxt downloader against a local Binance spot stand-in; ccxt itself talks to 127.0.0.1."""

from __future__ import annotations

import io
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from morningstar.data.download import (
    DownloadProgress,
    download_ohlcv,
    make_exchange,
    rich_progress,
    translate_ccxt_error,
)
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import (
    AuthenticationError,
    BadSymbolError,
    ConfigError,
    DataValidationError,
    ExchangeUnavailableError,
    MorningstarError,
    NetworkError,
    RateLimitedError,
    TemporaryError,
    UserInputError,
)
from morningstar.retry import RetryPolicy
from tests.fakes.exchange_server import EXCHANGE_INFO, KLINES, FakeBinance, Fault, make_bars

PAIR = "BTC/USDT"
TF = "5m"
TF_MS = 300_000
N = 2500
BARS = make_bars(N, TF, start="2024-01-01", seed=7)


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def open_ms(i: int) -> int:
    """Open time of source bar ``i`` (may be past the end of the data)."""
    return ms(BARS.index[0]) + i * TF_MS


class Sleeps:
    """A no-op sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def policy(sleeps: Sleeps, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=attempts,
        base_delay_s=0.01,
        max_delay_s=30.0,
        sleep=sleeps,
        rng=random.Random(0),
    )


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance({(PAIR, TF): BARS}, extra_symbols=["ETH/USDT", "BTC/USDC"]) as server:
        yield server


@pytest.fixture
def exchange(fake: FakeBinance) -> Iterator[Any]:
    ex = make_exchange("binance", api_base_url=fake.base_url, timeout_ms=3000)
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture
def store(tmp_path: Path) -> OHLCVStore:
    return OHLCVStore(tmp_path)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def stored(store: OHLCVStore) -> pd.DataFrame:
    return store.load("binance", PAIR, TF)


def assert_same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert not got.index.has_duplicates
    assert got.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(got, want, check_freq=False)


def assert_one_line(err: MorningstarError) -> str:
    text = str(err)
    assert "\n" not in text
    assert "binance" in text
    return text


def download(exchange: Any, store: OHLCVStore, sleeps: Sleeps, **kw: Any) -> Any:
    kw.setdefault("since", BARS.index[0].isoformat())
    kw.setdefault("retry", policy(sleeps))
    return download_ohlcv(exchange, "binance", PAIR, TF, store, **kw)


# --------------------------------------------------------------------------- exchange factory
def test_api_base_url_rewrites_every_url_and_loads_spot_only(
    fake: FakeBinance, exchange: Any
) -> None:
    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)

    urls = list(strings(exchange.urls["api"]))
    assert len(urls) > 10
    assert all(u.startswith(fake.base_url + "/") for u in urls)
    assert exchange.urls["api"]["public"] == fake.base_url + "/api/v3"
    assert exchange.urls["api"]["fapiPublic"] == fake.base_url + "/fapi/v1"
    assert exchange.enableRateLimit is True
    exchange.load_markets()
    assert dict(fake.requests) == {EXCHANGE_INFO: 1}
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDC"} <= set(exchange.symbols)
    market = exchange.market(PAIR)
    assert market["spot"] and market["active"]
    assert market["precision"]["price"] == 0.01
    assert market["limits"]["cost"]["min"] == 5.0


def test_unknown_exchange_id_suggests_close_match() -> None:
    with pytest.raises(UserInputError) as info:
        make_exchange("binanse")
    assert "did you mean binance" in str(info.value)
    assert "\n" not in str(info.value)


def test_sandbox_then_base_url_and_sandbox_refused_where_absent() -> None:
    ex = make_exchange("binance", sandbox=True)
    assert ex.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
    ex = make_exchange("binance", sandbox=True, api_base_url="http://127.0.0.1:1/prefix")
    assert ex.urls["api"]["public"] == "http://127.0.0.1:1/prefix/api/v3"
    with pytest.raises(ConfigError, match=r"exchanges\.kraken\.sandbox: kraken has no sandbox"):
        make_exchange("kraken", sandbox=True)
    with pytest.raises(ConfigError, match=r"exchanges\.binance\.api_base_url: invalid"):
        make_exchange("binance", api_base_url="127.0.0.1:8080")


# --------------------------------------------------------------------------- downloads
def test_full_download_over_pages_equals_source(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    seen: list[DownloadProgress] = []
    result = download(exchange, store, sleeps, page_limit=1000, on_page=seen.append)

    assert_same_bars(stored(store), BARS)
    assert (result.pages, result.bars_fetched, result.bars_added, result.retries) == (3, N, N, 0)
    assert (result.first, result.last) == (BARS.index[0], BARS.index[-1])
    starts = [int(p["startTime"]) for p in fake.klines_requests()]
    assert starts == [open_ms(0), open_ms(1000), open_ms(2000), open_ms(2500)]  # last one: empty
    assert all(int(p["limit"]) <= 1000 for p in fake.klines_requests())
    assert [p.page for p in seen] == [1, 2, 3, 3]
    assert [p.bars_fetched for p in seen] == [1000, 2000, 2500, 2500]
    assert seen[-1].done and seen[-1].fraction == 1.0
    assert seen[0].fraction < seen[1].fraction < seen[2].fraction
    assert sleeps.calls == []


def test_incremental_run_fetches_only_the_missing_tail(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    fake.now_ms = open_ms(2100) + 60_000  # bar 2100 is open
    first = download(exchange, store, sleeps, now_ms=fake.clock_ms)
    assert first.bars_added == 2100
    before = fake.requests[KLINES]

    fake.now_ms = open_ms(2110) + 60_000  # ten more bars have closed
    second = download(exchange, store, sleeps, now_ms=fake.clock_ms)

    assert fake.requests[KLINES] - before == 1
    request = fake.klines_requests()[-1]
    assert int(request["startTime"]) == open_ms(2100)
    assert int(request["limit"]) == 11  # the ten missing bars and the open one
    assert (second.pages, second.bars_fetched, second.bars_added) == (1, 10, 10)
    frame = stored(store)
    assert_same_bars(frame, BARS.iloc[:2110])
    assert (np.diff(pd.DatetimeIndex(frame.index).asi8) == TF_MS * 1_000_000).all()  # no gap


def test_since_is_ignored_when_data_is_stored_unless_full(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    download(exchange, store, sleeps, until=open_ms(1000))
    again = download(exchange, store, sleeps, since=open_ms(500), until=open_ms(1200))
    assert (again.start, again.bars_added) == (BARS.index[1000], 200)

    refreshed = download(exchange, store, sleeps, since=open_ms(500), full=True)
    assert refreshed.start == BARS.index[500]
    assert (refreshed.bars_fetched, refreshed.bars_added) == (N - 500, N - 1200)
    assert_same_bars(stored(store), BARS)


def test_default_start_is_the_lookback_window(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    fake.now_ms = open_ms(N)  # every served bar is closed
    result = download(exchange, store, sleeps, since=None, now_ms=fake.clock_ms)
    first_request = int(fake.klines_requests()[0]["startTime"])
    assert first_request == open_ms(N) - 30 * 86_400_000
    assert result.bars_added == N  # the stand-in's history is shorter than 30 days
    assert_same_bars(stored(store), BARS)


def test_the_still_open_candle_is_not_stored_until_closed(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    fake.now_ms = open_ms(1500) + 1  # bar 1500 just opened
    download(exchange, store, sleeps, now_ms=fake.clock_ms)
    served = exchange.fetch_ohlcv(PAIR, TF, since=open_ms(1500), limit=5)
    assert len(served) == 1 and served[0][4] != BARS["close"].iloc[1500]  # partial candle
    assert stored(store).index[-1] == BARS.index[1499]

    fake.now_ms = open_ms(1501)  # it has closed
    download(exchange, store, sleeps, now_ms=fake.clock_ms)
    assert_same_bars(stored(store), BARS.iloc[:1501])


def test_rich_progress_renders_the_download(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, color_system=None)
    with rich_progress(console=console) as on_page:
        download(exchange, store, sleeps, on_page=on_page)
    text = out.getvalue()
    assert "BTC/USDT 5m" in text
    assert "2,500 bars" in text
    assert "100%" in text


def test_rate_limiter_keeps_requests_apart(fake: FakeBinance, store: OHLCVStore) -> None:
    # The stand-in answers 429 to klines requests closer than 50 ms apart (more than a page's
    # own work takes here); ccxt's limiter spaces them by rate_limit_ms x endpoint cost
    # (250 ms x 0.4 = 100 ms), so none is refused.
    fake.min_klines_interval_s = 0.05
    sleeps = Sleeps()
    ex = make_exchange("binance", api_base_url=fake.base_url, rate_limit_ms=250)
    try:
        result = download(ex, store, sleeps, page_limit=500)
    finally:
        ex.close()
    assert (result.pages, result.retries) == (5, 0)
    assert fake.requests[KLINES] == 6
    assert_same_bars(stored(store), BARS)


# --------------------------------------------------------------------------- temporary errors
def test_429_is_retried_honouring_retry_after(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    fake.inject(Fault.rate_limited(retry_after_s=2), Fault.rate_limited(retry_after_s=2))
    result = download(exchange, store, sleeps)
    assert result.retries == 2
    assert fake.pending_faults == 0
    assert sum(sleeps.calls) == pytest.approx(4.0)  # backoff topped up to Retry-After each time
    assert_same_bars(stored(store), BARS)


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(), Fault.unavailable(), Fault.drop(), Fault.banned(retry_after_s=1)],
    ids=["500", "503", "dropped", "418"],
)
def test_temporary_error_then_success(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps, fault: Fault
) -> None:
    fake.inject(fault)
    result = download(exchange, store, sleeps)
    assert result.retries == 1
    assert len(sleeps.calls) >= 1
    assert_same_bars(stored(store), BARS)


@pytest.mark.parametrize(
    "case",
    [
        (Fault.rate_limited, RateLimitedError),
        (Fault.unavailable, ExchangeUnavailableError),
        (Fault.server_error, ExchangeUnavailableError),
    ],
    ids=["429", "503", "500"],
)
def test_exhausted_retries_give_one_line_error(
    fake: FakeBinance,
    exchange: Any,
    store: OHLCVStore,
    sleeps: Sleeps,
    case: tuple[Callable[[], Fault], type[TemporaryError]],
) -> None:
    make_fault, error = case
    fake.inject(*(make_fault() for _ in range(4)))
    with pytest.raises(error) as info:
        download(exchange, store, sleeps)
    text = assert_one_line(info.value)
    assert f"{fake.base_url}{KLINES}" in text
    assert "?" not in text  # no query string (where signatures would be)
    assert "rerun" in text
    assert fake.requests[KLINES] == 4
    assert not store.exists("binance", PAIR, TF)


def test_non_temporary_error_is_not_retried(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    fake.inject(Fault(401, '{"code":-2014,"msg":"API-key format invalid."}'))
    with pytest.raises(AuthenticationError) as info:
        download(exchange, store, sleeps)
    assert "API-key format invalid" in assert_one_line(info.value)
    assert fake.requests[KLINES] == 1
    assert sleeps.calls == []


# --------------------------------------------------------------------------- interruption
def test_keyboard_interrupt_then_resume_has_no_gap_no_duplicate(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    def stop_after_page_2(p: DownloadProgress) -> None:
        if p.page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(exchange, store, sleeps, page_limit=800, on_page=stop_after_page_2)
    assert_same_bars(stored(store), BARS.iloc[:1600])

    resumed = download(exchange, store, sleeps, page_limit=800)
    assert resumed.start == BARS.index[1600]
    assert resumed.bars_added == N - 1600
    assert_same_bars(stored(store), BARS)


def test_dropped_connections_exhaust_retries_then_resume(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    def drop_after_page_2(p: DownloadProgress) -> None:
        if p.page == 2 and not p.done:
            fake.inject(*(Fault.drop() for _ in range(4)))

    with pytest.raises(NetworkError) as info:
        download(exchange, store, sleeps, page_limit=700, on_page=drop_after_page_2)
    assert "connection closed without a response" in assert_one_line(info.value)
    assert_same_bars(stored(store), BARS.iloc[:1400])

    resumed = download(exchange, store, sleeps, page_limit=700)
    assert int(fake.klines_requests()[-4]["startTime"]) == open_ms(1400)
    assert resumed.bars_added == N - 1400
    assert_same_bars(stored(store), BARS)


# --------------------------------------------------------------------------- user errors
def test_unknown_pair_suggests_close_match(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    with pytest.raises(BadSymbolError) as info:
        download_ohlcv(exchange, "binance", "BTC/USTD", TF, store, retry=policy(sleeps))
    text = assert_one_line(info.value)
    assert "has no market BTC/USTD" in text
    assert "did you mean BTC/USDT" in text
    assert fake.requests[KLINES] == 0


@pytest.mark.parametrize("timeframe", ["7m", "1M"])
def test_unknown_timeframe_lists_supported_ones(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps, timeframe: str
) -> None:
    with pytest.raises(BadSymbolError) as info:
        download_ohlcv(exchange, "binance", PAIR, timeframe, store, retry=policy(sleeps))
    text = assert_one_line(info.value)
    assert timeframe in text
    assert ("1m, 3m, 5m" in text) if timeframe == "7m" else ("fixed" in text)
    assert fake.requests[KLINES] == 0


def test_timeframe_spelling_is_matched_by_duration(
    fake: FakeBinance, exchange: Any, store: OHLCVStore, sleeps: Sleeps
) -> None:
    result = download_ohlcv(
        exchange,
        "binance",
        PAIR,
        "300s",
        store,
        since=open_ms(0),
        until=open_ms(10),
        retry=policy(sleeps),
    )
    assert str(result.timeframe) == TF
    assert fake.klines_requests()[0]["interval"] == TF
    assert_same_bars(stored(store), BARS.iloc[:10])


def test_exchange_down_gives_one_line_network_error(store: OHLCVStore, sleeps: Sleeps) -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    ex = make_exchange("binance", api_base_url=base, timeout_ms=2000)
    try:
        with pytest.raises(NetworkError) as info:
            download_ohlcv(ex, "binance", PAIR, TF, store, retry=policy(sleeps, attempts=3))
    finally:
        ex.close()
    text = assert_one_line(info.value)
    assert text.startswith(f"binance unreachable at {base}")
    assert "connection refused" in text
    assert "exchanges.binance.api_base_url" in text
    assert len(sleeps.calls) == 2  # three attempts


def test_broken_bars_are_rejected_and_earlier_pages_kept(store: OHLCVStore, sleeps: Sleeps) -> None:
    broken = BARS.copy()
    broken.loc[BARS.index[1200], "low"] = broken["high"].iloc[1200] + 1.0
    with FakeBinance({(PAIR, TF): broken}) as server:
        ex = make_exchange("binance", api_base_url=server.base_url)
        try:
            with pytest.raises(DataValidationError) as info:
                download(ex, store, sleeps, page_limit=1000)
        finally:
            ex.close()
    assert BARS.index[1200].strftime("%Y-%m-%dT%H:%M:%SZ") in str(info.value)
    assert "--policy ohlc_inconsistent=drop" in assert_one_line(info.value)
    assert_same_bars(stored(store), BARS.iloc[:1000])
    # the rerun with the suggested policy resumes after the stored bars and drops the broken one
    with FakeBinance({(PAIR, TF): broken}) as server:
        ex = make_exchange("binance", api_base_url=server.base_url)
        try:
            download(ex, store, sleeps, page_limit=1000, policies={"ohlc_inconsistent": "drop"})
        finally:
            ex.close()
    assert_same_bars(stored(store), BARS.drop(BARS.index[1200]))


def test_pages_are_buffered_and_flushed_on_interrupt(store: OHLCVStore, sleeps: Sleeps) -> None:
    """Few store rewrites (buffered pages), and nothing fetched is lost when interrupted."""
    with FakeBinance({(PAIR, TF): BARS}) as server:
        ex = make_exchange("binance", api_base_url=server.base_url)
        pages: list[int] = []

        def stop_after_three(p: DownloadProgress) -> None:
            pages.append(p.page)
            if p.page == 3 and not p.done:
                raise KeyboardInterrupt

        try:
            with pytest.raises(KeyboardInterrupt):
                download_ohlcv(
                    ex, "binance", PAIR, TF, store, since=BARS.index[0], page_limit=500,
                    retry=policy(sleeps), on_page=stop_after_three,
                    flush_bars=10_000,
                )  # fmt: skip
        finally:
            ex.close()
    assert_same_bars(stored(store), BARS.iloc[:1500])  # 3 pages of 500, all flushed at once


def test_wire_errors_are_translated(fake: FakeBinance, exchange: Any) -> None:
    try:
        exchange.public_get_klines({"symbol": "NOPENOPE", "interval": "5m"})
    except Exception as exc:  # a ccxt exception, raised by ccxt parsing the stand-in's answer
        err = translate_ccxt_error(exc, exchange, action="fetching bars")
    else:
        pytest.fail("the stand-in accepted an unknown symbol")
    assert isinstance(err, BadSymbolError)
    text = assert_one_line(err)
    assert "Invalid symbol. (code -1121)" in text
    assert text.startswith(f"{fake.base_url}{KLINES}: ")


# --------------------------------------------------------------------------- real data
@pytest.mark.shared_data
def test_real_binance_slice_round_trips(
    shared_data: Path, store: OHLCVStore, sleeps: Sleeps
) -> None:
    path = shared_data / "genetrader" / "BINANCE_BTC_USDT-5m.csv"
    raw = pd.read_csv(path, nrows=5000)
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="timestamp")
    source = raw.drop(columns="timestamp").set_index(index.as_unit("ns")).astype("float64")
    with FakeBinance({(PAIR, TF): source}) as server:
        ex = make_exchange("binance", api_base_url=server.base_url)
        try:
            result = download_ohlcv(
                ex, "binance", PAIR, TF, store, since=source.index[0], retry=policy(sleeps)
            )
        finally:
            ex.close()
    assert (result.pages, result.bars_added) == (5, 5000)
    assert_same_bars(stored(store), source)
