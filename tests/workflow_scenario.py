"""A hand-built two-pair run (golden numbers) for the store, monitoring and API tests.

Run ``RUN`` (1h bars, crypto calendar, ``strategy:ema_cross``), bars t0..t5 (hourly), both pairs
each bar. Starting cash 10,000.

* BTC trade 1: open order at t0 (LLM ``approve``), filled t1 buy 1 @ 100 fee 0.10, stop 90 /
  target 120 placed t1; target hit t2: sell 1 @ 120 fee 0.12 (take_profit). Net +19.78.
* ETH trade: open order at t1 (LLM ``reduce``), filled t2 buy 10 @ 10 fee 0.05, stop 9 /
  target 12 placed t2; stop hit t3: sell 10 @ 9 fee 0.045 (stop_loss). Net -10.095.
* BTC trade 2: open order at t3 (LLM ``approve``), filled t4 buy 1 @ 110 fee 0.11, stop 100
  placed t4; still open at t5, marked 115: unrealised +5.

Equity at the end of each bar (the ETH cycle is persisted last each bar): see ``EQUITY``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from morningstar.core.cycle import (
    CycleRecord,
    EquitySnapshot,
    PositionSnapshot,
    StepError,
    cycle_id,
)
from morningstar.core.orders import Fill, Order, client_order_id

RUN = "a" * 32
OLD_RUN = "0" * 32
BTC, ETH = "BTC/USDT", "ETH/USDT"
STRATEGY = "strategy:ema_cross"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def t(i: int) -> datetime:
    return T0 + i * H


def oid(pair: str, bar: int, role: str) -> str:
    return client_order_id(RUN, pair, t(bar), role)  # type: ignore[arg-type]


def order(pair: str, bar: int, role: str, side: str, qty: float, kind: str = "market",
          stop: float | None = None, limit: float | None = None) -> Order:  # fmt: skip
    return Order(oid(pair, bar, role), RUN, pair, side, qty, kind, role,  # type: ignore[arg-type]
                 created_at=t(bar) + H, bar_ts=t(bar), reduce_only=role != "open",
                 stop_price=stop, limit_price=limit, reference_price=None)  # fmt: skip


def fill(o: Order, bar: int, price: float, fee: float, reason: str) -> Fill:
    return Fill(o.client_order_id + "-f", o.client_order_id, o.pair, o.side, o.quantity, price,
                fee, t(bar), reason)  # type: ignore[arg-type]  # fmt: skip


O1 = order(BTC, 0, "open", "buy", 1.0)
SL1 = order(BTC, 1, "stop_loss", "sell", 1.0, "stop", stop=90.0)
TP1 = order(BTC, 1, "take_profit", "sell", 1.0, "limit", limit=120.0)
O2 = order(ETH, 1, "open", "buy", 10.0)
SL2 = order(ETH, 2, "stop_loss", "sell", 10.0, "stop", stop=9.0)
TP2 = order(ETH, 2, "take_profit", "sell", 10.0, "limit", limit=12.0)
O3 = order(BTC, 3, "open", "buy", 1.0)
SL3 = order(BTC, 4, "stop_loss", "sell", 1.0, "stop", stop=100.0)
F1 = fill(O1, 1, 100.0, 0.10, "signal")
F2 = fill(TP1, 2, 120.0, 0.12, "take_profit")
F3 = fill(O2, 2, 10.0, 0.05, "signal")
F4 = fill(SL2, 3, 9.0, 0.045, "stop_loss")
F5 = fill(O3, 4, 110.0, 0.11, "signal")

#: Equity after each bar (the last cycle of the bar): t0..t5.
EQUITY = [10_000.0, 10_004.9, 10_019.73, 10_009.685, 10_009.575, 10_014.575]
#: (realized, unrealized, fees, drawdown) after each bar.
ACCOUNT = [
    (0.0, 0.0, 0.0, 0.0),
    (-0.10, 5.0, 0.10, 0.0),
    (19.73, 0.0, 0.27, 0.0),
    (9.685, 0.0, 0.315, 1 - 10_009.685 / 10_019.73),
    (9.575, 0.0, 0.425, 1 - 10_009.575 / 10_019.73),
    (9.575, 5.0, 0.425, 1 - 10_014.575 / 10_019.73),
]

_INTENT = {"pair": "", "action": "none", "side": 1, "quantity": 0.0, "price": float("nan"),
           "stop_loss": None, "take_profit": None, "reasons": ["hold"]}  # fmt: skip


def _supervision(verdict: str) -> dict[str, Any]:
    return {"consulted": True, "abstained": False, "verdict": verdict, "size_multiplier": 1.0,
            "stop_multiplier": 1.0, "take_profit_multiplier": 1.0, "clamped": False,
            "changed": verdict != "approve", "reason": f"LLM {verdict}", "coherence": 0.8,
            "risk": "medium", "llm_reasons": ["trend intact"]}  # fmt: skip


def _decision(pair: str, action: str) -> dict[str, Any]:
    intent = dict(_INTENT, pair=pair, action=action)
    return {"proposal": intent, "final": intent, "rejections": [], "risk_state": "active"}


# per bar: (pair, orders, fills, action, verdict, positions after)
_OPEN_BTC1 = PositionSnapshot(BTC, 1, 1.0, 100.0, 105.0, 90.0, 120.0, 5.0, t(1))
_OPEN_ETH = PositionSnapshot(ETH, 1, 10.0, 10.0, 10.0, 9.0, 12.0, 0.0, t(2))
_OPEN_BTC2_T4 = PositionSnapshot(BTC, 1, 1.0, 110.0, 110.0, 100.0, None, 0.0, t(4))
_OPEN_BTC2_T5 = PositionSnapshot(BTC, 1, 1.0, 110.0, 115.0, 100.0, None, 5.0, t(4))
_PLAN: dict[tuple[str, int], tuple[tuple[Order, ...], tuple[Fill, ...], str, str | None]] = {
    (BTC, 0): ((O1,), (), "open", "approve"),
    (BTC, 1): ((SL1, TP1), (F1,), "none", None),
    (ETH, 1): ((O2,), (), "open", "reduce"),
    (BTC, 2): ((), (F2,), "none", None),
    (ETH, 2): ((SL2, TP2), (F3,), "none", None),
    (ETH, 3): ((), (F4,), "none", None),
    (BTC, 3): ((O3,), (), "open", "approve"),
    (BTC, 4): ((SL3,), (F5,), "none", None),
}
_POSITIONS = {1: (_OPEN_BTC1,), 2: (_OPEN_ETH,), 3: (), 4: (_OPEN_BTC2_T4,), 5: (_OPEN_BTC2_T5,)}


def prediction(pair: str, bar: int) -> dict[str, Any]:
    return {"signal": "up", "signal_value": 1, "confidence": 0.5 + bar / 100,
            "volatility": 0.01, "pair_hint": pair}  # fmt: skip


def records(run_id: str = RUN) -> list[CycleRecord]:
    """The run's 12 cycles in persist order (per bar: BTC then ETH)."""
    out = []
    for bar in range(6):
        for pair in (BTC, ETH):
            orders, fills, action, verdict = _PLAN.get((pair, bar), ((), (), "none", None))
            realized, unrealized, fees, dd = ACCOUNT[bar]
            eq = EQUITY[bar] if pair == ETH else EQUITY[bar] - 0.001  # BTC cycle: mid-bar
            errors: tuple[StepError, ...] = ()
            if (pair, bar) == (ETH, 5):
                errors = (StepError("supervise", "LLMTimeoutError", "timed out", "abstained", 2),)
            out.append(CycleRecord(
                cycle_id=cycle_id(run_id, pair, t(bar)), run_id=run_id, pair=pair, bar_ts=t(bar),
                strategy=STRATEGY, prediction=prediction(pair, bar),
                supervision=None if verdict is None else _supervision(verdict),
                decision=_decision(pair, action), orders=orders, fills=fills,
                positions=_POSITIONS.get(bar, ()),
                equity=EquitySnapshot(10_000.0, eq, realized, unrealized, fees, dd, "active"),
                timings={"predict": 0.001, "decide": 0.0005}, errors=errors,
            ))  # fmt: skip
    return out


def fill_store(store: Any, *, with_old_run: bool = True) -> None:
    """Start an older run (one quiet cycle) and ``RUN``, and persist ``records()`` one by one."""
    if with_old_run:
        store.start_run(OLD_RUN, mode="backtest", strategy="strategy:old", pairs=[BTC],
                        timeframe="1d")  # fmt: skip
        store.persist(CycleRecord(cycle_id(OLD_RUN, BTC, t(0)), OLD_RUN, BTC, t(0),
                                  "strategy:old", None, None, None))  # fmt: skip
        store.finish_run(OLD_RUN, "finished")
    store.start_run(RUN, mode="paper", strategy=STRATEGY, pairs=[BTC, ETH], timeframe="1h",
                    config={"exchange": {"api_key": "k-123456", "name": "binance"}})  # fmt: skip
    for i, record in enumerate(records()):
        assert store.persist(record, state={"broker": {"n": i}, "risk": {"state": "active"}})
