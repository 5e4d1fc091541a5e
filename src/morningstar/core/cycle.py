"""The record of one workflow cycle (one pair, one bar): what is persisted, in one transaction.

The workflow builds a :class:`CycleRecord` at the end of each cycle (steps a–f) and hands it to
the store (step g), which writes all of it atomically: the prediction, the LLM supervision, the
decision with its reasons and risk rejections, the orders placed, the fills received, the open
positions, an equity snapshot, the step timings and the errors. The store is idempotent on
:attr:`CycleRecord.cycle_id` (and on order / fill ids): persisting the same cycle twice after a
crash and restart writes it once.

Pure value types: built from plain numbers and strings, JSON-friendly through ``as_dict``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from morningstar.core.orders import Fill, Order

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "ERROR_OUTCOMES",
    "STEPS",
    "CycleRecord",
    "EquitySnapshot",
    "PositionSnapshot",
    "StepError",
    "cycle_id",
]

#: The steps of one cycle, in order (architecture: a. fetch … g. persist).
STEPS: Final = ("fetch", "features", "predict", "supervise", "decide", "execute", "persist")
#: What an error policy did: ``retried`` (and then succeeded), ``skipped`` the rest of the cycle,
#: ``halted`` the run, ``abstained`` (the supervisor failed: the decision took the abstain path).
ErrorOutcome = Literal["retried", "skipped", "halted", "abstained", "rejected"]
ERROR_OUTCOMES: Final = frozenset({"retried", "skipped", "halted", "abstained", "rejected"})


def cycle_id(run_id: str, pair: str, bar_ts: datetime) -> str:
    """The deterministic id of the cycle of ``pair`` at the bar opened at ``bar_ts``.

    32 hex characters of SHA-256 over (run, pair, bar open time in µs): a restarted run
    recomputes the same id for the same bar, so the store writes each cycle once.
    """
    if bar_ts.tzinfo is None:
        raise ValueError(f"bar_ts must be aware (UTC), got {bar_ts.isoformat()}")
    us = round(bar_ts.timestamp() * 1e6)
    return hashlib.sha256(f"{run_id}|{pair}|{us}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StepError:
    """An error in one step and what its policy did about it.

    Attributes:
        step: one of :data:`STEPS`.
        error_type: the exception's class name.
        message: one line (redacted by the caller).
        outcome: ``retried``, ``skipped``, ``halted``, ``abstained`` or ``rejected`` (an order
            the broker refused: not placed, the run goes on).
        attempts: attempts made (1 = no retry).
    """

    step: str
    error_type: str
    message: str
    outcome: ErrorOutcome
    attempts: int = 1

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ValueError(f"StepError.step must be one of {STEPS}, got {self.step!r}")
        if self.outcome not in ERROR_OUTCOMES:
            raise ValueError(f"StepError.outcome must be one of {sorted(ERROR_OUTCOMES)}, got "
                             f"{self.outcome!r}")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        return {"step": self.step, "error_type": self.error_type, "message": self.message,
                "outcome": self.outcome, "attempts": self.attempts}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """One open position after the cycle.

    Attributes:
        pair: the market.
        side: +1 long, -1 short.
        quantity: base units, > 0.
        entry_price: average entry price.
        mark_price: the bar's close.
        stop_loss, take_profit: the protective levels in force (``None`` = none).
        unrealized_pnl: ``side * quantity * (mark - entry)``, quote currency (fees excluded).
        opened_at: when the position was opened (its entry fill's time).
    """

    pair: str
    side: int
    quantity: float
    entry_price: float
    mark_price: float
    stop_loss: float | None
    take_profit: float | None
    unrealized_pnl: float
    opened_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (times ISO-8601)."""
        return {"pair": self.pair, "side": self.side, "quantity": self.quantity,
                "entry_price": self.entry_price, "mark_price": self.mark_price,
                "stop_loss": self.stop_loss, "take_profit": self.take_profit,
                "unrealized_pnl": self.unrealized_pnl,
                "opened_at": self.opened_at.isoformat()}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EquitySnapshot:
    """The account after the cycle (quote currency).

    Attributes:
        cash: cash balance (fees paid deducted).
        equity: cash + the marked value of the open positions.
        realized_pnl: realised P&L since the run started, fees included.
        unrealized_pnl: P&L of the open positions at the bar's close.
        fees: fees paid since the run started.
        drawdown: ``1 - equity / peak`` (a fraction, >= 0).
        risk_state: the risk engine's state (``active``, ``reducing``, ``halted``).
    """

    cash: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    drawdown: float
    risk_state: str

    def __post_init__(self) -> None:
        for name in ("cash", "equity", "realized_pnl", "unrealized_pnl", "fees", "drawdown"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"EquitySnapshot.{name} must be finite, got {value!r}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        return {"cash": self.cash, "equity": self.equity, "realized_pnl": self.realized_pnl,
                "unrealized_pnl": self.unrealized_pnl, "fees": self.fees,
                "drawdown": self.drawdown, "risk_state": self.risk_state}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """Everything one cycle produced, persisted atomically (see the module docstring).

    Attributes:
        cycle_id: :func:`cycle_id` of (run, pair, bar).
        run_id: the workflow run.
        pair: the market.
        bar_ts: the OPEN time of the bar the cycle decided at (aware UTC).
        strategy: the predictor's name (``model:<artifact>`` or ``strategy:<name>``): P&L is
            reported per pair and per strategy.
        prediction: ``Prediction.as_dict()`` (None: no prediction, e.g. warm-up or a skipped
            cycle).
        supervision: ``SupervisionRecord.as_dict()`` plus ``llm_call_id`` / ``latency_s``
            (None: the supervisor was not consulted).
        decision: ``{"proposal": intent, "final": intent, "rejections": [...],
            "risk_state": ...}`` (intents as dicts; None: no decision was taken).
        orders: orders sent this cycle (placed, or refused: see ``rejected``).
        fills: fills received this cycle (of orders placed now or earlier).
        positions: open positions after the cycle, every pair of the run (the pair's own
            position first; others as last known).
        equity: the account after the cycle.
        timings: seconds spent per step (keys from :data:`STEPS`).
        errors: errors and what their policies did.
        rejected: client order ids of ``orders`` the broker refused (stored ``rejected``; the
            reasons are in ``errors``).
    """

    cycle_id: str
    run_id: str
    pair: str
    bar_ts: datetime
    strategy: str
    prediction: dict[str, Any] | None
    supervision: dict[str, Any] | None
    decision: dict[str, Any] | None
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()
    equity: EquitySnapshot | None = None
    timings: dict[str, float] = field(default_factory=dict)
    errors: tuple[StepError, ...] = ()
    rejected: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.bar_ts.tzinfo is None:
            raise ValueError("CycleRecord.bar_ts must be aware (UTC)")
        unknown = sorted(set(self.timings) - set(STEPS))
        if unknown:
            raise ValueError(f"CycleRecord.timings has unknown steps {unknown}; use {STEPS}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (times ISO-8601)."""
        return {
            "cycle_id": self.cycle_id,
            "run_id": self.run_id,
            "pair": self.pair,
            "bar_ts": self.bar_ts.isoformat(),
            "strategy": self.strategy,
            "prediction": self.prediction,
            "supervision": self.supervision,
            "decision": self.decision,
            "orders": [o.as_dict() for o in self.orders],
            "fills": [f.as_dict() for f in self.fills],
            "positions": [p.as_dict() for p in self.positions],
            "equity": None if self.equity is None else self.equity.as_dict(),
            "timings": dict(self.timings),
            "errors": [e.as_dict() for e in self.errors],
            "rejected": list(self.rejected),
        }
