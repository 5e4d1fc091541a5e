"""A scriptable broker for workflow tests: the simulated fill model plus injected transport faults.

:class:`FakeBroker` is a :class:`~morningstar.exchange.simulated.SimulatedBroker` (so fills follow
the engine's model) that records every call and can be told to fail: ``fail_submits(n)`` makes
the next ``n`` :meth:`submit` calls raise a :class:`~morningstar.errors.NetworkError` BEFORE the
order is placed (a lost request), ``fail_after_placing(n)`` raises it AFTER placing (a lost
answer: the retry with the same client order id must come back ``duplicate=True``), and
``fail_process(n)`` makes :meth:`process_bar` raise before doing anything.
"""

from __future__ import annotations

from typing import Any

from morningstar.core.engine import Costs
from morningstar.core.orders import Fill, Order
from morningstar.core.types import Bar
from morningstar.errors import NetworkError
from morningstar.exchange.broker import OrderAck
from morningstar.exchange.simulated import SimulatedBroker

__all__ = ["FakeBroker"]


class FakeBroker(SimulatedBroker):
    """SimulatedBroker with call records and scripted transport faults (module docstring)."""

    name = "fake"

    def __init__(self, costs: Costs | None = None, **kwargs: Any) -> None:
        super().__init__(costs, **kwargs)
        self.submitted: list[Order] = []
        self.acks: list[OrderAck] = []
        self.cancelled: list[str] = []
        self.bars: list[tuple[str, Bar]] = []
        self._fail_before = 0
        self._fail_after = 0
        self._fail_process = 0

    def fail_submits(self, n: int = 1) -> None:
        """The next ``n`` submits raise NetworkError without placing the order."""
        self._fail_before += n

    def fail_after_placing(self, n: int = 1) -> None:
        """The next ``n`` submits place the order, then raise NetworkError (answer lost)."""
        self._fail_after += n

    def fail_process(self, n: int = 1) -> None:
        """The next ``n`` process_bar calls raise NetworkError and fill nothing."""
        self._fail_process += n

    def submit(self, order: Order) -> OrderAck:
        self.submitted.append(order)
        if self._fail_before:
            self._fail_before -= 1
            raise NetworkError(f"fake broker: request lost ({order.client_order_id})")
        ack = super().submit(order)
        self.acks.append(ack)
        if self._fail_after:
            self._fail_after -= 1
            raise NetworkError(f"fake broker: answer lost ({order.client_order_id})")
        return ack

    def cancel(self, client_order_id: str) -> bool:
        self.cancelled.append(client_order_id)
        return super().cancel(client_order_id)

    def process_bar(self, pair: str, bar: Bar) -> list[Fill]:
        self.bars.append((pair, bar))
        if self._fail_process:
            self._fail_process -= 1
            raise NetworkError(f"fake broker: bar {bar.ts.isoformat()} of {pair} not processed")
        return super().process_bar(pair, bar)
