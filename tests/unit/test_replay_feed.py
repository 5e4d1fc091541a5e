"""ReplayFeed: every bar once, pairs merged in time order, point-in-time warm-up."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from morningstar.core.types import Bar
from morningstar.data.feeds import MarketFeed, ReplayFeed
from morningstar.errors import UserInputError
from tests.fakes.exchange_server import make_bars

BTC = make_bars(30, "1h", start="2024-01-01", seed=1)
# ETH starts 5 hours later and misses two bars
ETH = make_bars(25, "1h", start="2024-01-01 05:00", seed=2).drop(
    pd.DatetimeIndex(["2024-01-01 10:00", "2024-01-01 11:00"], tz="UTC")
)


def drain(feed: ReplayFeed) -> list[list[tuple[str, Bar]]]:
    steps = []
    while batch := feed.next_bars():
        steps.append(batch)
    return steps


def test_merges_pairs_in_time_order_and_delivers_each_bar_once() -> None:
    feed = ReplayFeed({"BTC/USDT": BTC, "ETH/USDT": ETH}, "1h")
    assert isinstance(feed, MarketFeed)
    steps = drain(feed)
    assert feed.done and feed.next_bars() == []
    flat = [(pair, b) for step in steps for pair, b in step]
    assert len(flat) == len(BTC) + len(ETH)
    assert len(steps) == len(BTC.index.union(ETH.index))
    times = [b.ts for _, b in flat]
    assert times == sorted(times)
    for step in steps:  # one time per step, pairs in the frames' order
        assert len({b.ts for _, b in step}) == 1
        assert [p for p, _ in step] == sorted(p for p, _ in step)
    for pair, frame in (("BTC/USDT", BTC), ("ETH/USDT", ETH)):
        mine = [b for p, b in flat if p == pair]
        assert [pd.Timestamp(b.ts) for b in mine] == list(frame.index)
        row = frame.iloc[7]
        b = mine[7]
        assert (b.open, b.high, b.low, b.close, b.volume) == tuple(row)
        assert b.close_ts - b.ts == timedelta(hours=1) and b.ts.tzinfo is not None


def test_start_end_and_point_in_time_warmup() -> None:
    feed = ReplayFeed({"BTC/USDT": BTC, "ETH/USDT": ETH}, "1h", start="2024-01-01 08:00",
                      end="2024-01-01 20:00")  # fmt: skip
    assert feed.cursor("BTC/USDT") == 8
    warm = feed.warmup("BTC/USDT", 5)  # history before start is available
    pd.testing.assert_frame_equal(warm, BTC.iloc[3:8])
    assert len(feed.warmup("ETH/USDT", 100)) == 3  # 05:00..07:00
    first = feed.next_bars()
    assert [(p, pd.Timestamp(b.ts)) for p, b in first] == [
        ("BTC/USDT", BTC.index[8]), ("ETH/USDT", ETH.index[3])]  # fmt: skip
    assert feed.warmup("BTC/USDT", 2).index[-1] == BTC.index[8]  # up to the bar delivered
    steps = drain(feed)
    assert pd.Timestamp(steps[-1][0][1].ts) == pd.Timestamp("2024-01-01 19:00", tz="UTC")
    assert feed.warmup("BTC/USDT", 0).empty
    assert len(feed.frames["BTC/USDT"]) == len(BTC)  # full frames for batched predictions


def test_bad_inputs() -> None:
    with pytest.raises(UserInputError):
        ReplayFeed({}, "1h")
    with pytest.raises(UserInputError, match="strictly increasing"):
        ReplayFeed({"BTC/USDT": BTC.iloc[::-1]}, "1h")
    with pytest.raises(UserInputError):
        ReplayFeed({"BTC/USDT": BTC}, "fortnight")
    empty = ReplayFeed({"BTC/USDT": BTC}, "1h", start="2030-01-01")
    assert empty.done and empty.next_bars() == []
