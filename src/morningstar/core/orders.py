"""Orders and fills: what the workflow sends to a broker and what comes back (pure value types).

Every order carries a **deterministic client order id** built from the run, the pair, the bar the
decision was taken at and the order's role (:func:`client_order_id`): a retry or a restart after
a crash rebuilds the same id, and a broker that already knows the id does not place the order
twice (architecture principle 7). A fill's id is derived from its order's id (one fill per order
for the simulated and paper brokers; an exchange's trade id otherwise).

Units: quantities in base units (> 0: the side says the direction), prices and fees in the quote
currency (the account currency), times aware UTC.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "FILL_REASONS",
    "ORDER_KINDS",
    "ORDER_ROLES",
    "Fill",
    "FillReason",
    "Order",
    "OrderKind",
    "OrderRole",
    "OrderSide",
    "OrderStatus",
    "client_order_id",
]

OrderSide = Literal["buy", "sell"]
#: ``market``: fills at the next price (the next bar's open in backtests); ``stop``: a
#: protective stop-loss, fills when the price trades through ``stop_price``; ``limit``: a
#: take-profit, fills when the price reaches ``limit_price``.
OrderKind = Literal["market", "stop", "limit"]
ORDER_KINDS: Final = frozenset({"market", "stop", "limit"})
#: Why the order exists: ``open`` / ``close`` a position, its ``stop_loss`` or ``take_profit``.
OrderRole = Literal["open", "close", "stop_loss", "take_profit"]
ORDER_ROLES: Final = frozenset({"open", "close", "stop_loss", "take_profit"})
OrderStatus = Literal["new", "open", "filled", "cancelled", "rejected"]
#: ``signal`` (a market order of the decision), ``stop_loss``, ``take_profit``, ``end`` (the
#: position closed at the end of a backtest), ``flatten`` (the risk engine's kill switch).
FillReason = Literal["signal", "stop_loss", "take_profit", "end", "flatten"]
FILL_REASONS: Final = frozenset({"signal", "stop_loss", "take_profit", "end", "flatten"})

_ROLE_CODE: Final = {"open": "o", "close": "c", "stop_loss": "s", "take_profit": "t"}


def client_order_id(run_id: str, pair: str, bar_ts: datetime, role: OrderRole, seq: int = 0) -> str:
    """The deterministic client order id of an order (at most 32 characters, ``[0-9a-z-]``).

    ``ms-`` + the first 24 hex digits of SHA-256 over (run, pair, bar open time in ns, role,
    seq) + ``-`` + a one-letter role code: the same decision always gets the same id, two
    different ones never collide in practice (96 bits). Exchanges accept it (Binance allows
    36 characters of ``[.A-Z:/a-z0-9_-]``).

    Args:
        run_id: the workflow run (its id is stable across restarts of the same run).
        pair: the market, e.g. ``"BTC/USDT"``.
        bar_ts: the OPEN time of the bar the decision was taken at (aware UTC).
        role: the order's role.
        seq: a counter for several orders of one role on one bar (0 otherwise).
    """
    if bar_ts.tzinfo is None:
        raise ValueError(f"bar_ts must be aware (UTC), got {bar_ts.isoformat()}")
    ns = round(bar_ts.timestamp() * 1e6) * 1000  # µs precision, as bars are stamped
    text = f"{run_id}|{pair}|{ns}|{role}|{seq}"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    return f"ms-{digest}-{_ROLE_CODE[role]}"


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Order:
    """One order the workflow asks a broker to place.

    Attributes:
        client_order_id: the deterministic id (:func:`client_order_id`).
        run_id: the workflow run that placed it.
        pair: the market.
        side: ``buy`` or ``sell``.
        quantity: base units, > 0.
        kind: ``market``, ``stop`` (needs ``stop_price``) or ``limit`` (needs ``limit_price``).
        role: why it exists (``open``, ``close``, ``stop_loss``, ``take_profit``).
        created_at: when the decision was taken: the CLOSE time of its bar (aware UTC).
        bar_ts: the OPEN time of that bar (the id's input).
        reduce_only: it may only reduce a position (exits, stops, targets).
        stop_price: trigger price of a ``stop`` order.
        limit_price: limit price of a ``limit`` order.
        reference_price: the price the decision saw (the bar's close), for slippage reports.
        quote_quantity: for a ``market`` entry sized at the fill (an exchange's "spend this
            much quote", e.g. Binance ``quoteOrderQty``): the notional to buy or sell at the
            fill price, fees on top; ``quantity`` is then the estimate at ``reference_price``.
        max_cost: with ``quote_quantity``: the most the fill may cost, fee included (the cash
            available); the quantity is cut to fit.
    """

    client_order_id: str
    run_id: str
    pair: str
    side: OrderSide
    quantity: float
    kind: OrderKind
    role: OrderRole
    created_at: datetime
    bar_ts: datetime
    reduce_only: bool = False
    stop_price: float | None = None
    limit_price: float | None = None
    reference_price: float | None = None
    quote_quantity: float | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"Order.side must be buy or sell, got {self.side!r}")
        if self.kind not in ORDER_KINDS:
            raise ValueError(f"Order.kind must be one of {sorted(ORDER_KINDS)}, got {self.kind!r}")
        if self.role not in ORDER_ROLES:
            raise ValueError(f"Order.role must be one of {sorted(ORDER_ROLES)}, got {self.role!r}")
        _positive("Order.quantity", self.quantity)
        if self.kind == "stop":
            _positive("Order.stop_price", self.stop_price)  # type: ignore[arg-type]
        if self.kind == "limit":
            _positive("Order.limit_price", self.limit_price)  # type: ignore[arg-type]
        if self.created_at.tzinfo is None or self.bar_ts.tzinfo is None:
            raise ValueError("Order.created_at and Order.bar_ts must be aware (UTC)")
        if self.quote_quantity is not None:
            _positive("Order.quote_quantity", self.quote_quantity)
            if self.kind != "market" or self.reduce_only:
                raise ValueError("Order.quote_quantity is for market orders that open a position")
        if self.max_cost is not None:
            _positive("Order.max_cost", self.max_cost)

    @property
    def direction(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.side == "buy" else -1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (times ISO-8601)."""
        return {
            "client_order_id": self.client_order_id,
            "run_id": self.run_id,
            "pair": self.pair,
            "side": self.side,
            "quantity": self.quantity,
            "kind": self.kind,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "bar_ts": self.bar_ts.isoformat(),
            "reduce_only": self.reduce_only,
            "stop_price": self.stop_price,
            "limit_price": self.limit_price,
            "reference_price": self.reference_price,
            "quote_quantity": self.quote_quantity,
            "max_cost": self.max_cost,
        }


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order.

    Attributes:
        fill_id: unique id (simulated: ``client_order_id + "-f"``; exchange: its trade id).
        client_order_id: the order filled.
        pair: the market.
        side: ``buy`` or ``sell``.
        quantity: base units, > 0.
        price: fill price, quote currency (slippage included).
        fee: fee paid, quote currency, >= 0.
        ts: when it filled (aware UTC): the open time of the bar whose open or range filled it
            in backtests.
        reason: ``signal``, ``stop_loss``, ``take_profit``, ``end`` or ``flatten``.
    """

    fill_id: str
    client_order_id: str
    pair: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    ts: datetime
    reason: FillReason

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"Fill.side must be buy or sell, got {self.side!r}")
        _positive("Fill.quantity", self.quantity)
        _positive("Fill.price", self.price)
        if not (math.isfinite(self.fee) and self.fee >= 0.0):
            raise ValueError(f"Fill.fee must be a finite number >= 0, got {self.fee!r}")
        if self.reason not in FILL_REASONS:
            raise ValueError(f"Fill.reason must be one of {sorted(FILL_REASONS)}, got "
                             f"{self.reason!r}")  # fmt: skip
        if self.ts.tzinfo is None:
            raise ValueError("Fill.ts must be aware (UTC)")

    @property
    def direction(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.side == "buy" else -1

    @property
    def notional(self) -> float:
        """``quantity * price``, quote currency."""
        return self.quantity * self.price

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (times ISO-8601)."""
        return {
            "fill_id": self.fill_id,
            "client_order_id": self.client_order_id,
            "pair": self.pair,
            "side": self.side,
            "quantity": self.quantity,
            "price": self.price,
            "fee": self.fee,
            "ts": self.ts.isoformat(),
            "reason": self.reason,
        }
