"""Read records of the workflow store: frozen dataclasses, usable after the session closed.

Internal to :mod:`morningstar.store`; import them from :mod:`morningstar.store.workflow`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from morningstar.core.cycle import cycle_id

__all__ = [
    "ResumePoint",
    "StoredCycle",
    "StoredCycleError",
    "StoredFill",
    "StoredOrder",
    "StoredPosition",
    "WorkflowRun",
    "make",
    "run_record",
    "span_times",
]


def span_times(first: datetime, last: datetime | None, bars: int) -> list[datetime]:
    """The open times of the bars of a stored row: a span's ``bars`` contiguous bars from
    ``first`` to ``last``, or ``[first]``."""
    if bars <= 1 or last is None:
        return [first]
    step = (last - first) / (bars - 1)
    return [first + k * step for k in range(bars)]


@dataclass(frozen=True)
class WorkflowRun:
    """One stored run of the trading workflow."""

    run_id: str
    mode: str
    strategy: str
    pairs: tuple[str, ...]
    timeframe: str
    calendar: str
    config: dict[str, Any]
    status: str
    started_at: datetime
    finished_at: datetime | None
    last_bar_ts: datetime | None
    cycles: int
    error: str | None


@dataclass(frozen=True)
class StoredCycle:
    """One stored cycle (JSON documents as dicts; the account after the cycle, if marked), or a
    span of ``bars`` quiet cycles of a backtest, from ``bar_ts`` to ``last_bar_ts``."""

    cycle_id: str
    run_id: str
    seq: int
    pair: str
    bar_ts: datetime
    strategy: str
    prediction: dict[str, Any] | None
    supervision: dict[str, Any] | None
    decision: dict[str, Any] | None
    action: str | None
    llm_verdict: str | None
    equity: float | None
    cash: float | None
    realized_pnl: float | None
    unrealized_pnl: float | None
    fees: float | None
    drawdown: float | None
    risk_state: str | None
    timings: dict[str, float]
    errors: int
    persisted_at: datetime
    bars: int = 1
    last_bar_ts: datetime | None = None

    def last(self) -> StoredCycle:
        """The row's last cycle: a span's last bar (its own cycle id, the row's prediction), or
        ``self``."""
        if self.bars <= 1 or self.last_bar_ts is None:
            return self
        ts = self.last_bar_ts
        return replace(self, bar_ts=ts, bars=1, last_bar_ts=None,
                       cycle_id=cycle_id(self.run_id, self.pair, ts))  # fmt: skip

    def per_bar(self) -> list[StoredCycle]:
        """This row as one cycle per bar: a span's bars (each with its own cycle id and the
        row's ``seq``; the row's prediction on the last), or ``[self]``."""
        times = span_times(self.bar_ts, self.last_bar_ts, self.bars)
        if len(times) == 1:
            return [self]
        last = len(times) - 1
        return [
            replace(self, bar_ts=ts, bars=1, last_bar_ts=None,
                    cycle_id=cycle_id(self.run_id, self.pair, ts) if k else self.cycle_id,
                    prediction=self.prediction if k == last else None)
            for k, ts in enumerate(times)
        ]  # fmt: skip


@dataclass(frozen=True)
class StoredOrder:
    """One stored order and its current status."""

    client_order_id: str
    run_id: str
    cycle_id: str | None
    pair: str
    side: str
    quantity: float
    kind: str
    role: str
    status: str
    reduce_only: bool
    stop_price: float | None
    limit_price: float | None
    reference_price: float | None
    quote_quantity: float | None
    max_cost: float | None
    filled_quantity: float
    created_at: datetime
    bar_ts: datetime
    updated_cycle_id: str | None


@dataclass(frozen=True)
class StoredFill:
    """One stored fill (with the run and the cycle that reported it)."""

    fill_id: str
    client_order_id: str
    run_id: str
    cycle_id: str
    pair: str
    side: str
    quantity: float
    price: float
    fee: float
    ts: datetime
    reason: str
    position: int = 0


@dataclass(frozen=True)
class StoredPosition:
    """One open position of a run, as of the run's latest marked cycle."""

    run_id: str
    pair: str
    cycle_id: str
    side: int
    quantity: float
    entry_price: float
    mark_price: float
    stop_loss: float | None
    take_profit: float | None
    unrealized_pnl: float
    opened_at: datetime
    bar_ts: datetime


@dataclass(frozen=True)
class StoredCycleError:
    """One stored step error."""

    cycle_id: str
    run_id: str
    pair: str
    bar_ts: datetime
    step: str
    error_type: str
    message: str
    outcome: str
    attempts: int
    created_at: datetime


class ResumePoint(NamedTuple):
    """Where a run stopped: unpack as ``last_bar, states = store.last_state(run_id)``.

    Attributes:
        last_bar: the OPEN time of the newest persisted bar, per pair.
        states: the latest resume state stored per pair, in the order they were persisted
            (the last item is the newest: :meth:`latest`).
    """

    last_bar: dict[str, datetime]
    states: dict[str, dict[str, Any]]

    def latest(self) -> dict[str, Any] | None:
        """The most recently persisted state of any pair, ``None`` when none was stored."""
        return next(reversed(self.states.values()), None)


def run_record(row: Any) -> WorkflowRun:
    """A :class:`WorkflowRun` from a ``workflow_runs`` row."""
    m = row._mapping
    return WorkflowRun(
        run_id=m["run_id"], mode=m["mode"], strategy=m["strategy"],
        pairs=tuple(m["pairs"]), timeframe=m["timeframe"], calendar=m["calendar"],
        config=dict(m["config"]), status=m["status"], started_at=m["started_at"],
        finished_at=m["finished_at"], last_bar_ts=m["last_bar_ts"], cycles=int(m["cycles"]),
        error=m["error"],
    )  # fmt: skip


def make(cls: Any, row: Any) -> Any:
    """An instance of the record class ``cls`` from a row with its fields as columns."""
    return cls(**row._mapping)
