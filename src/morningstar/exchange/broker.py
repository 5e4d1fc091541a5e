"""The broker port: where the workflow's orders go (simulated, paper or a real exchange).

The trading cycle talks to one :class:`Broker` whatever the mode (architecture principle 1):

* backtest: :class:`~morningstar.exchange.simulated.SimulatedBroker` (the engine's fill model:
  market orders at the next bar's open, protective stops and targets inside the bar, fees and
  slippage);
* paper: the same fill model against live bars from the exchange;
* live (later): the ccxt broker, behind this same port.

Call order per bar: the workflow first gives the broker the bar that just closed
(:meth:`Broker.process_bar`: pending orders fill against it), then decides, then submits the
new orders (:meth:`Broker.submit`), which fill on a later bar.

Idempotency: :meth:`Broker.submit` of a ``client_order_id`` the broker already knows returns its
existing acknowledgement and places nothing (a retry or a restart never duplicates an order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from morningstar.core.orders import Fill, Order, OrderStatus
from morningstar.core.types import Bar

__all__ = ["Broker", "OrderAck"]


@dataclass(frozen=True, slots=True)
class OrderAck:
    """A broker's answer to :meth:`Broker.submit`.

    Attributes:
        client_order_id: the order's id.
        status: ``open`` (accepted, waiting to fill), ``filled``, ``cancelled`` or ``rejected``.
        duplicate: the id was already known: nothing new was placed.
        reason: why it was rejected (one line), else None.
    """

    client_order_id: str
    status: OrderStatus
    duplicate: bool = False
    reason: str | None = None


@runtime_checkable
class Broker(Protocol):
    """The port every broker implements (see the module docstring)."""

    #: ``simulated``, ``paper`` or the exchange's id.
    name: str

    def submit(self, order: Order) -> OrderAck:
        """Place ``order`` (idempotent on its ``client_order_id``); never blocks on a fill.

        Raises:
            TemporaryError: a transport fault (the caller retries with the same id).
            ExchangeError: the exchange refused the request for good.
        """
        ...

    def cancel(self, client_order_id: str) -> bool:
        """Cancel an open order; False when it is not open (filled, cancelled, unknown)."""
        ...

    def process_bar(self, pair: str, bar: Bar) -> list[Fill]:
        """Let the open orders of ``pair`` fill against ``bar`` (just closed); their fills."""
        ...

    def open_orders(self, pair: str | None = None) -> list[Order]:
        """Orders accepted and not yet filled or cancelled (of ``pair``, or all)."""
        ...

    def state(self) -> dict[str, Any]:
        """The broker's state as plain JSON-friendly data (open orders, known ids), persisted
        with each cycle so a restarted run resumes exactly."""
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...
