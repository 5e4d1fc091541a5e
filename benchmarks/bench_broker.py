"""Micro-benchmark of the per-bar costs of the workflow's execution side: SimulatedBroker,
Ledger and ReplayFeed.

Run:  .venv/bin/python benchmarks/bench_broker.py [--bars 215000] [--repeats 7]

The workflow backtest calls ``broker.process_bar`` and the ledger once per pair per bar
(~215,000 bars) and must sustain >= 50,000 bars/s end to end, so these calls must cost about a
microsecond on the common bar. Measured (median over repeats of ns per call, each repeat
timing a loop of ``--bars`` calls):

* ``process_bar`` with no open order on the pair (the flat bar);
* ``process_bar`` in a position whose stop and target are not touched (the common in-position
  bar: two protective orders scanned);
* ``Ledger.mark`` with an open position, and ``Ledger.equity``;
* building a ``ReplayFeed`` (per bar), and ``ReplayFeed.next_bars`` (one pair: one ``Bar``
  built per call);
* the loop of those together, ``feed → process_bar → apply → mark → equity`` (the feed's
  construction included), on a SYNTHETIC random walk (seed 7) with EMA-10/50-cross market
  orders and a 2 % stop / 4 % target bracket, reported as bars per second.

Results go to ``benchmarks/results/broker.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from morningstar.core.engine import Costs
from morningstar.core.ledger import Ledger
from morningstar.core.orders import Fill, Order, OrderKind, OrderRole, OrderSide
from morningstar.core.types import Bar
from morningstar.data.feeds import ReplayFeed
from morningstar.exchange.simulated import SimulatedBroker

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def _bars(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.001, n)) * close
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC", name="timestamp")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + spread,
                         "low": np.minimum(open_, close) - spread, "close": close,
                         "volume": np.ones(n)}, index=index.as_unit("ns"))  # fmt: skip


def _order(cid: str, side: OrderSide, qty: float, kind: OrderKind, role: OrderRole, at: datetime,
           price: float | None = None) -> Order:  # fmt: skip
    return Order(cid, "bench", PAIR, side, qty, kind, role, at + STEP, at, role != "open",
                 price if kind == "stop" else None, price if kind == "limit" else None)  # fmt: skip


def _per_call_ns(fn: Callable[[int], None], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn(n)
        times.append((time.perf_counter_ns() - start) / n)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=215_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n, repeats = args.bars, args.repeats
    df = _bars(n)
    bar = Bar(T0 + STEP, 100.0, 100.5, 99.5, 100.2, 1.0, T0 + 2 * STEP)

    flat = SimulatedBroker(Costs(fee_bps=10, slippage_bps=5))

    def flat_loop(k: int) -> None:
        process = flat.process_bar
        for _ in range(k):
            process(PAIR, bar)

    held = SimulatedBroker(Costs(fee_bps=10, slippage_bps=5))
    held.submit(_order("e", "buy", 1.0, "market", "open", T0))
    held.process_bar(PAIR, bar)
    held.submit(_order("s", "sell", 1.0, "stop", "stop_loss", T0, 90.0))
    held.submit(_order("t", "sell", 1.0, "limit", "take_profit", T0, 110.0))
    later = Bar(T0 + 3 * STEP, 100.0, 100.5, 99.5, 100.2, 1.0, T0 + 4 * STEP)

    def held_loop(k: int) -> None:
        process = held.process_bar
        for _ in range(k):
            process(PAIR, later)

    ledger = Ledger(10_000.0)
    ledger.apply(Fill("f", "o", PAIR, "buy", 1.0, 100.0, 0.1, T0, "signal"))  # one position

    def mark_loop(k: int) -> None:
        mark = ledger.mark
        for _ in range(k):
            mark(PAIR, 100.2)

    def equity_loop(k: int) -> None:
        for _ in range(k):
            ledger.equity  # noqa: B018

    def feed_build(k: int) -> None:
        ReplayFeed({PAIR: df.iloc[:k]}, "5m")

    def feed_loop(k: int) -> None:
        feed = feeds.pop()
        nxt = feed.next_bars
        for _ in range(k):
            nxt()

    feeds = [ReplayFeed({PAIR: df}, "5m") for _ in range(repeats)]

    results = {
        "process_bar_no_orders_ns": _per_call_ns(flat_loop, n, repeats),
        "process_bar_in_position_untouched_ns": _per_call_ns(held_loop, n, repeats),
        "ledger_mark_ns": _per_call_ns(mark_loop, n, repeats),
        "ledger_equity_ns": _per_call_ns(equity_loop, n, repeats),
        "replay_build_ns_per_bar": _per_call_ns(feed_build, n, repeats),
        "replay_next_bars_ns": _per_call_ns(feed_loop, n, repeats),
    }
    if len(held.open_orders()) != 2:
        raise RuntimeError("the in-position benchmark filled a protective order")

    close = df["close"]
    fast = close.ewm(span=10, adjust=False).mean().to_numpy()
    slow = close.ewm(span=50, adjust=False).mean().to_numpy()
    above = fast > slow
    cross_up = np.zeros(n, bool)
    cross_dn = np.zeros(n, bool)
    cross_up[1:] = above[1:] & ~above[:-1]
    cross_dn[1:] = ~above[1:] & above[:-1]
    up, dn = cross_up.tolist(), cross_dn.tolist()

    def loop_once() -> tuple[float, int, int]:
        start = time.perf_counter()
        feed = ReplayFeed({PAIR: df}, "5m")
        broker = SimulatedBroker(Costs(fee_bps=10, slippage_bps=5))
        book = Ledger(10_000.0)
        n_fills = 0
        t = 0
        while batch := feed.next_bars():
            for pair, b in batch:
                fills = broker.process_bar(pair, b)
                if fills:
                    n_fills += len(fills)
                    for f in fills:
                        book.apply(f)
                book.mark(pair, b.close)
                equity = book.equity
                held_qty = book.signed_quantity(pair)
                if up[t] and held_qty == 0.0:
                    qty = 0.5 * equity / b.close
                    broker.submit(_order(f"o{t}", "buy", qty, "market", "open", b.ts))
                    broker.submit(_order(f"s{t}", "sell", qty, "stop", "stop_loss", b.ts,
                                         b.close * 0.98))  # fmt: skip
                    broker.submit(_order(f"t{t}", "sell", qty, "limit", "take_profit", b.ts,
                                         b.close * 1.04))  # fmt: skip
                elif dn[t] and held_qty > 0.0:
                    for o in broker.open_orders(pair):
                        broker.cancel(o.client_order_id)
                    broker.submit(_order(f"c{t}", "sell", held_qty, "market", "close", b.ts))
                t += 1
        return time.perf_counter() - start, n_fills, t

    runs = [loop_once() for _ in range(max(3, repeats // 2))]
    wall = statistics.median(r[0] for r in runs)
    results["loop_bars"] = runs[0][2]
    results["loop_fills"] = runs[0][1]
    results["loop_wall_s"] = wall
    results["loop_bars_per_s"] = runs[0][2] / wall
    results["python"] = platform.python_version()
    results["machine"] = platform.machine()
    for key, value in results.items():
        print(f"{key:40s} {value:,.1f}" if isinstance(value, float) else f"{key:40s} {value}")
    out = ROOT / "benchmarks" / "results" / "broker.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
