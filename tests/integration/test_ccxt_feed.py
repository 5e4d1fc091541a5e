"""CcxtPollingFeed against the local Binance stand-in: ccxt talks to 127.0.0.1, the clock is the
fake's (advanced by the tests), bars appear progressively as it moves."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from morningstar.core.types import Bar
from morningstar.data.feeds import CcxtPollingFeed, MarketFeed
from morningstar.errors import BadSymbolError, RateLimitedError
from morningstar.exchange.ccxt_client import make_exchange
from morningstar.retry import RetryPolicy
from tests.fakes.exchange_server import KLINES, FakeBinance, Fault, make_bars

BTC, ETH = "BTC/USDT", "ETH/USDT"
TF = "5m"
TF_MS = 300_000
N = 1200
SRC = {BTC: make_bars(N, TF, start="2024-01-01", seed=3),
       ETH: make_bars(N, TF, start="2024-01-01", seed=4, price=50.0)}  # fmt: skip
T0 = int(SRC[BTC].index[0].value // 1_000_000)


def open_ms(i: int) -> int:
    return T0 + i * TF_MS


def dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    bars = {(pair, TF): frame for pair, frame in SRC.items()}
    with FakeBinance(bars, now_ms=open_ms(300) + 60_000, max_lifetime_s=60) as server:
        yield server


@pytest.fixture
def exchange(fake: FakeBinance) -> Iterator[Any]:
    ex = make_exchange("binance", api_base_url=fake.base_url, timeout_ms=3000)
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_feed(fake: FakeBinance, exchange: Any, sleeps: Sleeps, **kw: Any) -> CcxtPollingFeed:
    kw.setdefault("poll_every_s", 10.0)
    kw.setdefault("history", 100)
    return CcxtPollingFeed(
        exchange, kw.pop("pairs", [BTC]), TF, clock=lambda: dt(fake.clock_ms()),
        retry=RetryPolicy(max_attempts=4, base_delay_s=0.01, sleep=sleeps, rng=random.Random(0)),
        **kw,
    )  # fmt: skip


def source_bar(pair: str, i: int) -> tuple[float, ...]:
    row = SRC[pair].iloc[i]
    return (row["open"], row["high"], row["low"], row["close"], row["volume"])


def values(bar: Bar) -> tuple[float, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


def index_of(bar: Bar) -> int:
    return (round(bar.ts.timestamp() * 1000) - T0) // TF_MS


def test_fresh_start_loads_history_then_delivers_each_closed_bar_once(
    fake: FakeBinance, exchange: Any, sleeps: Sleeps
) -> None:
    feed = make_feed(fake, exchange, sleeps)
    assert isinstance(feed, MarketFeed)
    # bar 300 is open: the last closed bar (299) is the starting point, history only
    warm = feed.warmup(BTC, 50)
    pd.testing.assert_frame_equal(warm, SRC[BTC].iloc[250:300], check_freq=False)
    assert feed.next_bars() == []
    assert feed.last_bar(BTC) == dt(open_ms(299))

    fake.now_ms = open_ms(301) + 1_000  # bar 300 closed, bar 301 open (served partial)
    got = feed.next_bars()
    assert [(p, index_of(b)) for p, b in got] == [(BTC, 300)]
    _pair, bar = got[0]
    assert values(bar) == source_bar(BTC, 300)  # the final bar, not a partial one
    assert bar.close_ts == dt(open_ms(301)) and bar.close_ts <= dt(fake.clock_ms())
    before = fake.requests[KLINES]
    assert feed.next_bars() == []  # nothing new can have closed: no request at all
    assert fake.requests[KLINES] == before
    assert feed.seconds_until_next_poll() == pytest.approx((open_ms(302) - fake.clock_ms()) / 1e3)

    fake.now_ms = open_ms(302) + 30_000  # bar 301 closed, 302 open
    assert [index_of(b) for _, b in feed.next_bars()] == [301]
    pd.testing.assert_frame_equal(feed.warmup(BTC, 3), SRC[BTC].iloc[299:302], check_freq=False)
    assert sleeps.calls == []


def test_a_late_poll_fetches_every_missed_bar_in_order_across_pages(
    fake: FakeBinance, exchange: Any, sleeps: Sleeps
) -> None:
    feed = make_feed(fake, exchange, sleeps, pairs=[BTC, ETH], page_limit=7)
    assert feed.next_bars() == []
    fake.now_ms = open_ms(320) + 1  # 20 bars closed while the process was busy
    got = feed.next_bars()
    assert [(p, index_of(b)) for p, b in got] == [
        (p, i) for i in range(300, 320) for p in (BTC, ETH)
    ]
    assert all(values(b) == source_bar(p, index_of(b)) for p, b in got)
    assert all(b.close_ts <= dt(fake.clock_ms()) for _, b in got)
    assert max(int(r["limit"]) for r in fake.klines_requests()) <= 7
    fake.now_ms = open_ms(321) + 1
    assert [(p, index_of(b)) for p, b in feed.next_bars()] == [(BTC, 320), (ETH, 320)]


def test_temporary_faults_are_retried_and_nothing_is_lost(
    fake: FakeBinance, exchange: Any, sleeps: Sleeps
) -> None:
    feed = make_feed(fake, exchange, sleeps)
    feed.next_bars()
    fake.now_ms = open_ms(303) + 1
    fake.inject(Fault.rate_limited(2), Fault.server_error(), Fault.unavailable())
    got = feed.next_bars()
    assert [index_of(b) for _, b in got] == [300, 301, 302]
    assert feed.retries == 3 and len(sleeps.calls) == 3
    assert sleeps.calls[0] >= 2.0  # the 429's Retry-After is honoured
    assert fake.pending_faults == 0

    # retries spent: the error surfaces, the cursor does not move, the next poll catches up
    fake.now_ms = open_ms(305) + 1
    fake.inject(*(Fault.rate_limited(1) for _ in range(4)))
    with pytest.raises(RateLimitedError):
        feed.next_bars()
    fake.now_ms += 10_000  # poll_every_s later
    assert [index_of(b) for _, b in feed.next_bars()] == [303, 304]


def test_a_bar_the_exchange_publishes_late_is_polled_again(
    fake: FakeBinance, exchange: Any, sleeps: Sleeps
) -> None:
    feed = make_feed(fake, exchange, sleeps, poll_every_s=5.0)
    feed.next_bars()
    fake.set_bars(BTC, TF, SRC[BTC].iloc[:300])  # bar 300 closed but not published yet
    fake.now_ms = open_ms(301) + 500
    assert feed.next_bars() == []
    polls = feed.polls
    fake.now_ms += 2_000
    assert feed.next_bars() == [] and feed.polls == polls  # waits poll_every_s
    fake.set_bars(BTC, TF, SRC[BTC])
    fake.now_ms += 3_000
    assert [index_of(b) for _, b in feed.next_bars()] == [300]


def test_restart_resumes_after_the_last_processed_bar(
    fake: FakeBinance, exchange: Any, sleeps: Sleeps
) -> None:
    first = make_feed(fake, exchange, sleeps)
    first.next_bars()
    fake.now_ms = open_ms(304) + 1
    delivered = [index_of(b) for _, b in first.next_bars()]
    assert delivered == [300, 301, 302, 303]
    first.close()
    assert first.next_bars() == []

    # the run persisted bar 302 as its last cycle and crashed; four more bars closed meanwhile
    fake.now_ms = open_ms(308) + 1
    again = make_feed(fake, exchange, sleeps, last_bars={BTC: dt(open_ms(302))})
    pd.testing.assert_frame_equal(again.warmup(BTC, 5), SRC[BTC].iloc[298:303], check_freq=False)
    assert [index_of(b) for _, b in again.next_bars()] == [303, 304, 305, 306, 307]
    assert again.next_bars() == []


def test_unknown_pair_is_not_retried(fake: FakeBinance, exchange: Any, sleeps: Sleeps) -> None:
    feed = make_feed(fake, exchange, sleeps, pairs=["DOGE/USDT"])
    with pytest.raises(BadSymbolError):
        feed.next_bars()
    assert sleeps.calls == []
