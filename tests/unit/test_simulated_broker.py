"""SimulatedBroker / PaperBroker: hand-built candle scenarios of the engine's fill model, OCO,
cancel, idempotent submit, rejections, reduce-only, and the state round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from morningstar.core.engine import Costs
from morningstar.core.orders import Fill, Order, OrderKind, OrderRole, OrderSide
from morningstar.core.types import Bar
from morningstar.exchange.broker import Broker
from morningstar.exchange.paper import PaperBroker
from morningstar.exchange.simulated import SimulatedBroker

PAIR = "BTC/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def bar(i: int, o: float, h: float, lo: float, c: float) -> Bar:
    return Bar(T0 + i * STEP, o, h, lo, c, 1.0, T0 + (i + 1) * STEP)


def order(cid: str, side: OrderSide, kind: OrderKind = "market", role: OrderRole = "open", *,
          qty: float = 1.0, at: int = 0, price: float | None = None, pair: str = PAIR,
          reduce_only: bool | None = None) -> Order:  # fmt: skip
    return Order(
        client_order_id=cid, run_id="r", pair=pair, side=side, quantity=qty, kind=kind, role=role,
        created_at=T0 + (at + 1) * STEP, bar_ts=T0 + at * STEP,
        reduce_only=(role != "open") if reduce_only is None else reduce_only,
        stop_price=price if kind == "stop" else None,
        limit_price=price if kind == "limit" else None,
    )  # fmt: skip


def bracket(side: OrderSide, sl: float, tp: float, qty: float = 1.0) -> list[Order]:
    """Entry at the next open + its protective stop and target, submitted after bar 0."""
    exit_side: OrderSide = "sell" if side == "buy" else "buy"
    return [order("entry", side, qty=qty),
            order("sl", exit_side, "stop", "stop_loss", qty=qty, price=sl),
            order("tp", exit_side, "limit", "take_profit", qty=qty, price=tp)]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    side: OrderSide
    sl: float
    tp: float
    bars: tuple[tuple[float, float, float, float], ...]  # bars 1.. (o, h, l, c)
    expected: tuple[tuple[int, str, str, float], ...]  # (bar, reason, side, price)
    intrabar: str = "stop_first"
    slippage_bps: float = 0.0
    open_after: tuple[str, ...] = field(default=())  # ids still open at the end


N = (100.0, 101.0, 99.0, 100.0)  # a quiet bar around 100
SCENARIOS = {
    "market_fills_at_next_open": Scenario("buy", 95, 110, ((100, 101, 99, 100),),
                                          ((1, "signal", "buy", 100),), open_after=("sl", "tp")),
    "nothing_touched": Scenario("buy", 95, 110, (N, (100, 109, 96, 105)),
                                ((1, "signal", "buy", 100),), open_after=("sl", "tp")),
    "stop_hit_at_stop": Scenario("buy", 95, 110, (N, (99, 100, 94, 96)),
                                 ((1, "signal", "buy", 100), (2, "stop_loss", "sell", 95))),
    "stop_exact_touch": Scenario("buy", 95, 110, (N, (99, 100, 95, 96)),
                                 ((1, "signal", "buy", 100), (2, "stop_loss", "sell", 95))),
    "stop_gapped_at_open": Scenario("buy", 95, 110, (N, (93, 94, 90, 92)),
                                    ((1, "signal", "buy", 100), (2, "stop_loss", "sell", 93))),
    "target_hit_at_limit": Scenario("buy", 95, 110, (N, (101, 111, 100, 108)),
                                    ((1, "signal", "buy", 100), (2, "take_profit", "sell", 110))),
    "target_gapped_at_open": Scenario("buy", 95, 110, (N, (112, 113, 111, 112)),
                                      ((1, "signal", "buy", 100),
                                       (2, "take_profit", "sell", 112))),
    "both_in_bar_stop_first": Scenario("buy", 95, 110, (N, (100, 111, 94, 100)),
                                       ((1, "signal", "buy", 100), (2, "stop_loss", "sell", 95))),
    "both_in_bar_target_first": Scenario("buy", 95, 110, (N, (100, 111, 94, 100)),
                                         ((1, "signal", "buy", 100),
                                          (2, "take_profit", "sell", 110)),
                                         intrabar="target_first"),
    "stop_on_the_entry_bar": Scenario("buy", 95, 110, ((100, 101, 94, 96),),
                                      ((1, "signal", "buy", 100), (1, "stop_loss", "sell", 95))),
    "entry_gaps_through_its_stop": Scenario("buy", 101, 110, ((100, 101, 99, 100),),
                                            ((1, "signal", "buy", 100),
                                             (1, "stop_loss", "sell", 100))),
    "short_stop_hit": Scenario("sell", 105, 90, (N, (101, 106, 100, 104)),
                               ((1, "signal", "sell", 100), (2, "stop_loss", "buy", 105))),
    "short_stop_gapped": Scenario("sell", 105, 90, (N, (107, 108, 106, 107)),
                                  ((1, "signal", "sell", 100), (2, "stop_loss", "buy", 107))),
    "short_target_hit": Scenario("sell", 105, 90, (N, (99, 100, 89, 92)),
                                 ((1, "signal", "sell", 100), (2, "take_profit", "buy", 90))),
    "short_target_gapped": Scenario("sell", 105, 90, (N, (88, 89, 87, 88)),
                                    ((1, "signal", "sell", 100), (2, "take_profit", "buy", 88))),
    "short_both_stop_first": Scenario("sell", 105, 90, (N, (100, 106, 89, 100)),
                                      ((1, "signal", "sell", 100), (2, "stop_loss", "buy", 105))),
    "short_both_target_first": Scenario("sell", 105, 90, (N, (100, 106, 89, 100)),
                                        ((1, "signal", "sell", 100),
                                         (2, "take_profit", "buy", 90)), intrabar="target_first"),
    "slippage_against_each_fill": Scenario("buy", 95, 110, (N, (99, 100, 94, 96)),
                                           ((1, "signal", "buy", 100 * 1.001),
                                            (2, "stop_loss", "sell", 95 * 0.999)),
                                           slippage_bps=10),
    "slippage_on_gapped_target": Scenario("sell", 105, 90, (N, (88, 89, 87, 88)),
                                          ((1, "signal", "sell", 100 * 0.999),
                                           (2, "take_profit", "buy", 88 * 1.001)),
                                          slippage_bps=10),
}  # fmt: skip


def run(broker: SimulatedBroker, bars: list[Bar]) -> list[Fill]:
    fills: list[Fill] = []
    for b in bars:
        fills.extend(broker.process_bar(PAIR, b))
    return fills


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_candle_scenarios(name: str) -> None:
    sc = SCENARIOS[name]
    broker = SimulatedBroker(Costs(fee_bps=10, slippage_bps=sc.slippage_bps),
                             intrabar=sc.intrabar)  # type: ignore[arg-type]  # fmt: skip
    for o in bracket(sc.side, sc.sl, sc.tp):
        assert broker.submit(o).status == "open"
    assert broker.process_bar(PAIR, bar(0, 100, 100, 100, 100)) == []  # decided on bar 0
    fills = run(broker, [bar(i + 1, *ohlc) for i, ohlc in enumerate(sc.bars)])
    got = [(round((f.ts - T0) / STEP), f.reason, f.side, f.price) for f in fills]
    assert got == [(i, r, s, pytest.approx(p, rel=1e-15)) for i, r, s, p in sc.expected]
    for f in fills:
        assert f.fee == pytest.approx(f.quantity * f.price * 1e-3, rel=1e-15)
        assert f.fill_id == f.client_order_id + "-f"
    assert sorted(o.client_order_id for o in broker.open_orders()) == sorted(sc.open_after)
    if len(fills) == 2:  # OCO: the sibling of the protective fill is cancelled
        sibling = "tp" if fills[1].reason == "stop_loss" else "sl"
        assert broker.status(sibling) == "cancelled"
        assert broker.cancel_reason(sibling) == f"OCO: {fills[1].client_order_id} filled"
        assert broker.net_position(PAIR) == 0.0


def test_market_orders_fill_before_protective_ones_and_a_reversal_cancels_old_stops() -> None:
    broker = SimulatedBroker()
    for o in bracket("buy", 95, 110):
        broker.submit(o)
    run(broker, [bar(1, 100, 101, 99, 100)])
    # reverse at the next open: close the long, open a short with its own bracket; the old
    # stop and target are not cancelled by the caller: they have nothing left to reduce
    broker.submit(order("close", "sell", role="close", at=1))
    broker.submit(order("short", "sell", at=1, qty=2))
    broker.submit(order("ssl", "buy", "stop", "stop_loss", at=1, qty=2, price=108))
    fills = run(broker, [bar(2, 104, 109, 103, 105)])  # the new stop (108) is touched
    assert [(f.client_order_id, f.price) for f in fills] == [("close", 104), ("short", 104),
                                                            ("ssl", 108)]  # fmt: skip
    assert broker.status("sl") == "cancelled" and broker.status("tp") == "cancelled"
    assert broker.cancel_reason("sl") == "reduce-only: nothing to reduce"
    assert broker.net_position(PAIR) == 0.0


def test_orders_wait_for_a_bar_after_their_decision_bar() -> None:
    broker = SimulatedBroker()
    broker.submit(order("a", "buy", at=3))
    assert broker.process_bar(PAIR, bar(3, 100, 101, 99, 100)) == []  # its own decision bar
    assert broker.process_bar("ETH/USDT", bar(4, 100, 101, 99, 100)) == []  # another pair
    assert [f.client_order_id for f in broker.process_bar(PAIR, bar(4, 100, 101, 99, 100))] == [
        "a"]  # fmt: skip


def test_reduce_only_is_clipped_or_cancelled() -> None:
    broker = SimulatedBroker()
    broker.submit(order("x", "sell", role="close"))  # nothing to reduce
    broker.submit(order("buy", "buy", qty=2))
    broker.submit(order("y", "sell", role="close", qty=5))  # more than held: clipped
    fills = run(broker, [bar(1, 100, 101, 99, 100)])
    assert [(f.client_order_id, f.quantity) for f in fills] == [("buy", 2.0), ("y", 2.0)]
    assert broker.status("x") == "cancelled"
    assert broker.cancel_reason("x") == "reduce-only: nothing to reduce"


def test_cancel_duplicate_and_rejections() -> None:
    broker = SimulatedBroker()
    assert isinstance(broker, Broker)
    first = broker.submit(order("a", "buy"))
    assert (first.status, first.duplicate) == ("open", False)
    again = broker.submit(order("a", "sell", qty=7))  # same id, whatever the content
    assert (again.status, again.duplicate) == ("open", True)
    assert len(broker.open_orders()) == 1
    assert broker.cancel("a") and not broker.cancel("a") and not broker.cancel("nope")
    assert broker.status("a") == "cancelled" and broker.submit(order("a", "buy")).duplicate
    assert run(broker, [bar(1, 100, 101, 99, 100)]) == []

    bad = {
        "s1": order("s1", "sell", "stop", "stop_loss", price=90, reduce_only=False),
        "s2": order("s2", "sell", "stop", "open", price=90, reduce_only=True),
        "l1": order("l1", "sell", "limit", "open", price=110),
        "m1": order("m1", "sell", "market", "stop_loss"),
    }
    for cid, o in bad.items():
        ack = broker.submit(o)
        assert ack.status == "rejected" and ack.reason, cid
        assert broker.submit(o) == type(ack)(cid, "rejected", True, ack.reason)
    broker.close()
    broker.close()
    assert broker.submit(order("late", "buy")).reason == "the broker is closed"
    assert broker.open_orders() == []


def test_volatility_slippage_uses_the_last_closed_bars_estimate() -> None:
    broker = SimulatedBroker(Costs(slippage_bps=5, vol_slippage_k=2.0))
    broker.submit(order("a", "buy"))
    broker.set_volatility(PAIR, 0.01)
    [f] = run(broker, [bar(1, 100, 101, 99, 100)])
    assert f.price == 100 * (1.0 + (5 / 1e4 + 2.0 * 0.01))
    broker.set_volatility(PAIR, float("nan"))  # unknown: fixed slippage only
    broker.submit(order("b", "sell", role="close", at=1))
    [g] = run(broker, [bar(2, 100, 101, 99, 100)])
    assert g.price == 100 * (1.0 - 5 / 1e4)


def test_state_round_trip_resumes_exactly() -> None:
    costs = Costs(fee_bps=10, slippage_bps=3)
    bars = [bar(1, 100, 101, 99, 100), bar(2, 100, 104, 99, 103), bar(3, 103, 111, 102, 109)]
    straight = SimulatedBroker(costs)
    for o in bracket("buy", 95, 110, qty=0.37):
        straight.submit(o)
    expected = run(straight, bars)

    broker = SimulatedBroker(costs)
    for o in bracket("buy", 95, 110, qty=0.37):
        broker.submit(o)
    broker.set_volatility(PAIR, 0.002)
    run(broker, bars[:1])
    state = json.loads(json.dumps(broker.state()))
    resumed = SimulatedBroker.from_state(state, costs)
    assert resumed.state() == broker.state()
    assert resumed.submit(order("entry", "buy")).duplicate  # known ids survive
    resumed.set_volatility(PAIR, None)
    assert expected[:1] + run(resumed, bars[1:]) == expected
    with pytest.raises(ValueError, match="version"):
        SimulatedBroker.from_state({"version": 99})


def test_finished_ids_are_forgotten_oldest_first() -> None:
    broker = SimulatedBroker(remember_ids=2)
    for i in range(4):
        broker.submit(order(f"c{i}", "buy", at=i))
        broker.cancel(f"c{i}")
    broker.submit(order("open", "buy", at=9))
    assert broker.status("c0") is None and broker.status("c1") is None
    assert broker.status("c3") == "cancelled" and broker.status("open") == "open"
    assert len(broker.state()["orders"]) == 3


def test_paper_broker_is_the_same_fill_model_and_ignores_replayed_bars() -> None:
    broker = PaperBroker(Costs(fee_bps=10))
    assert broker.name == "paper" and isinstance(broker, Broker)
    for o in bracket("buy", 95, 110):
        broker.submit(o)
    b1 = bar(1, 100, 101, 99, 100)
    assert len(broker.process_bar(PAIR, b1)) == 1
    assert broker.process_bar(PAIR, b1) == []  # re-delivered: nothing fills twice
    assert broker.last_bar(PAIR) == b1.ts
    state = json.loads(json.dumps(broker.state()))
    resumed = PaperBroker.from_state(state, Costs(fee_bps=10))
    assert isinstance(resumed, PaperBroker) and resumed.last_bar(PAIR) == b1.ts
    assert resumed.process_bar(PAIR, b1) == []
    [f] = resumed.process_bar(PAIR, bar(2, 99, 100, 94, 96))
    assert (f.reason, f.price) == ("stop_loss", 95)


def test_fake_broker_scripts_lost_requests_and_lost_answers() -> None:
    from morningstar.errors import NetworkError, TemporaryError
    from morningstar.retry import RetryPolicy, retry_call
    from tests.fakes.fake_broker import FakeBroker

    broker = FakeBroker()
    assert isinstance(broker, Broker)
    broker.fail_submits(1)
    broker.fail_after_placing(1)
    policy = RetryPolicy(max_attempts=4, sleep=lambda _s: None)
    ack = retry_call(lambda: broker.submit(order("a", "buy")), policy)
    assert ack.duplicate and ack.status == "open"  # the lost answer's order was placed once
    assert len(broker.submitted) == 3 and len(broker.open_orders()) == 1
    broker.fail_process(1)
    with pytest.raises(TemporaryError):
        broker.process_bar(PAIR, bar(1, 100, 101, 99, 100))
    assert [f.client_order_id for f in broker.process_bar(PAIR, bar(1, 100, 101, 99, 100))] == [
        "a"]  # fmt: skip
    assert issubclass(NetworkError, TemporaryError)


def test_quote_sized_entries_fill_at_the_fill_price_within_the_cash() -> None:
    """A ``quote_quantity`` entry buys that notional at the fill price (engine sizing), cut to
    ``max_cost`` with the fee on top; an impossible one is refused at once."""
    from dataclasses import replace

    broker = SimulatedBroker(Costs(fee_bps=10.0, slippage_bps=10.0))
    wants = replace(order("q1", "buy"), quote_quantity=1_000.0, max_cost=10_000.0)
    capped = replace(order("q2", "sell", pair="ETH/USDT"), quote_quantity=1_000.0, max_cost=500.0)
    assert broker.submit(wants).status == "open" and broker.submit(capped).status == "open"
    (fill,) = broker.process_bar(PAIR, bar(1, 200.0, 201.0, 199.0, 200.0))
    assert fill.price == pytest.approx(200.0 * 1.001)
    assert fill.quantity == pytest.approx(1_000.0 / (200.0 * 1.001), rel=1e-15)
    (short,) = broker.process_bar("ETH/USDT", bar(1, 50.0, 51.0, 49.0, 50.0))
    price = 50.0 * (1 - 0.001)
    assert short.quantity == pytest.approx(500.0 / (price * 1.001), rel=1e-15)
    assert short.quantity * short.price + short.fee == pytest.approx(500.0, rel=1e-12)
    with pytest.raises(ValueError, match="quote_quantity is for market orders"):
        replace(order("q3", "sell", "stop", "stop_loss", price=90.0), quote_quantity=10.0)
