"""Orders, fills and cycle records: deterministic ids, validation, JSON round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from morningstar.core.cycle import (
    STEPS,
    CycleRecord,
    EquitySnapshot,
    PositionSnapshot,
    StepError,
    cycle_id,
)
from morningstar.core.orders import Fill, Order, client_order_id

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RUN = "0" * 31 + "1"


def order(**kw: object) -> Order:
    base: dict[str, object] = {
        "client_order_id": client_order_id(RUN, "BTC/USDT", T0, "open"),
        "run_id": RUN, "pair": "BTC/USDT", "side": "buy", "quantity": 0.5, "kind": "market",
        "role": "open", "created_at": T0 + timedelta(hours=1), "bar_ts": T0,
    }  # fmt: skip
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def test_client_order_id_is_deterministic_short_and_distinct() -> None:
    a = client_order_id(RUN, "BTC/USDT", T0, "open")
    assert a == client_order_id(RUN, "BTC/USDT", T0, "open")  # a restart rebuilds the same id
    # the same instant written in another time zone is the same bar
    assert a == client_order_id(
        RUN, "BTC/USDT", T0.astimezone(timezone(timedelta(hours=2))), "open"
    )
    others = {
        client_order_id(RUN, "ETH/USDT", T0, "open"),
        client_order_id(RUN, "BTC/USDT", T0 + timedelta(minutes=5), "open"),
        client_order_id(RUN, "BTC/USDT", T0, "close"),
        client_order_id(RUN, "BTC/USDT", T0, "open", seq=1),
        client_order_id("f" * 32, "BTC/USDT", T0, "open"),
    }
    assert a not in others and len(others) == 5
    assert len(a) <= 36 and a.startswith("ms-") and a.endswith("-o")
    assert set(a) <= set("0123456789abcdefms-o")
    with pytest.raises(ValueError, match="aware"):
        client_order_id(RUN, "BTC/USDT", datetime(2024, 1, 1), "open")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"side": "long"}, "Order.side must be buy or sell"),
        ({"kind": "iceberg"}, "Order.kind must be one of"),
        ({"role": "hedge"}, "Order.role must be one of"),
        ({"quantity": 0.0}, "Order.quantity must be a finite number > 0"),
        ({"quantity": float("nan")}, "Order.quantity must be a finite number > 0"),
        ({"kind": "stop"}, "Order.stop_price must be a finite number > 0"),
        ({"kind": "limit", "limit_price": -1.0}, "Order.limit_price must be"),
        ({"bar_ts": datetime(2024, 3, 1)}, "must be aware"),
    ],
)
def test_bad_orders_are_refused_with_the_field_named(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        order(**changes)


def test_order_and_fill_serialise_to_json() -> None:
    stop = order(kind="stop", role="stop_loss", side="sell", stop_price=95.0, reduce_only=True)
    assert stop.direction == -1 and order().direction == 1
    data = json.loads(json.dumps(stop.as_dict()))
    assert data["stop_price"] == 95.0 and data["bar_ts"] == "2024-03-01T12:00:00+00:00"
    fill = Fill(f"{stop.client_order_id}-f", stop.client_order_id, "BTC/USDT", "sell", 0.5, 95.0,
                0.0475, T0 + timedelta(hours=2), "stop_loss")  # fmt: skip
    assert fill.notional == 47.5 and fill.direction == -1
    assert json.loads(json.dumps(fill.as_dict()))["reason"] == "stop_loss"
    with pytest.raises(ValueError, match=r"Fill\.fee"):
        Fill("f", "c", "BTC/USDT", "buy", 1.0, 1.0, -0.1, T0, "signal")
    with pytest.raises(ValueError, match=r"Fill\.reason"):
        Fill("f", "c", "BTC/USDT", "buy", 1.0, 1.0, 0.0, T0, "luck")  # type: ignore[arg-type]


def test_cycle_record_ids_validation_and_json() -> None:
    cid = cycle_id(RUN, "BTC/USDT", T0)
    assert (
        cid == cycle_id(RUN, "BTC/USDT", T0) != cycle_id(RUN, "BTC/USDT", T0 + timedelta(hours=1))
    )
    assert len(cid) == 32
    equity = EquitySnapshot(9_950.0, 10_020.0, -30.0, 70.0, 5.0, 0.01, "active")
    position = PositionSnapshot("BTC/USDT", 1, 0.5, 100.0, 240.0, 95.0, None, 70.0, T0)
    record = CycleRecord(
        cid, RUN, "BTC/USDT", T0, "strategy:ema_cross", {"signal": "up"}, None,
        {"final": {"action": "open"}}, orders=(order(),), positions=(position,), equity=equity,
        timings={"predict": 0.001, "persist": 0.0005},
        errors=(StepError("supervise", "LLMTimeoutError", "timed out", "abstained"),),
    )  # fmt: skip
    data = json.loads(json.dumps(record.as_dict()))
    assert data["equity"]["equity"] == 10_020.0 and data["positions"][0]["unrealized_pnl"] == 70.0
    assert data["errors"][0]["outcome"] == "abstained" and data["orders"][0]["role"] == "open"
    with pytest.raises(ValueError, match="unknown steps"):
        CycleRecord(cid, RUN, "BTC/USDT", T0, "s", None, None, None, timings={"think": 1.0})
    with pytest.raises(ValueError, match=r"StepError\.step"):
        StepError("dream", "X", "m", "skipped")
    with pytest.raises(ValueError, match=r"EquitySnapshot\.equity must be finite"):
        EquitySnapshot(1.0, float("nan"), 0.0, 0.0, 0.0, 0.0, "active")
    assert STEPS[0] == "fetch" and STEPS[-1] == "persist"
