"""Round trips (closed trades) rebuilt from a run's fills.

A round trip starts with the fill that opens a position on a pair (from flat) and ends with the
fill that brings it back to flat. Fills in the same direction add to it (average entry price);
opposite fills reduce it (average exit price). A fill larger than the open quantity closes the
trade and opens a new one in the other direction with the rest (its fee split pro rata).

P&L conventions (quote currency): ``gross_pnl = side * quantity * (exit - entry)``; ``fees`` are
every fee of the entry and exit fills; ``pnl = gross_pnl - fees`` (what the trade added to the
account); ``return_pct = pnl / (entry_price * quantity) * 100``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from morningstar.store.workflow import StoredFill

__all__ = ["OpenLot", "RoundTrip", "round_trips"]

_EPS = 1e-12


@dataclass(frozen=True)
class RoundTrip:
    """One closed trade.

    Attributes:
        pair: the market.
        side: +1 long, -1 short.
        quantity: base units traded (entry = exit).
        entry_time, exit_time: the first entry fill's and the last exit fill's times.
        entry_price, exit_price: average fill prices.
        gross_pnl: P&L before fees, quote currency.
        fees: entry and exit fees, quote currency.
        pnl: ``gross_pnl - fees``.
        return_pct: ``pnl`` as a percentage of the entry notional.
        exit_reason: the last exit fill's reason (``signal``, ``stop_loss``, ...).
        entry_order_id: the client order id of the first entry fill.
        exit_order_id: the client order id of the last exit fill.
        strategy: the strategy of the cycle that placed the entry order (``None``: unknown).
        llm_verdict: the supervisor's verdict on the entry (``approve``, ``reduce``,
            ``abstain``...; ``None``: not consulted or unknown).
    """

    pair: str
    side: int
    quantity: float
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float
    pnl: float
    return_pct: float
    exit_reason: str
    entry_order_id: str
    exit_order_id: str
    strategy: str | None
    llm_verdict: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (times as datetimes)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class OpenLot:
    """A position being rebuilt (internal state of :func:`round_trips`)."""

    side: int
    quantity: float
    entry_cost: float
    entry_fees: float
    entry_time: datetime
    entry_order_id: str
    exit_quantity: float = 0.0
    exit_value: float = 0.0
    exit_fees: float = 0.0


def round_trips(
    fills: Iterable[StoredFill],
    entry_info: Callable[[str], tuple[str | None, str | None]] | Mapping[str, Any] | None = None,
) -> list[RoundTrip]:
    """The closed trades of ``fills`` (any order: sorted as they happened — time, then the
    broker's order within a bar: an entry before the stop that closes it in its own bar), oldest
    first.

    Args:
        fills: the fills of one run.
        entry_info: ``order id -> (strategy, llm_verdict)`` of the entry order (a callable or a
            mapping); ``None``: unknown.
    """
    lookup: Callable[[str], tuple[str | None, str | None]]
    if entry_info is None:
        lookup = lambda _oid: (None, None)  # noqa: E731
    elif callable(entry_info):
        lookup = entry_info
    else:
        table = entry_info
        lookup = lambda oid: table.get(oid, (None, None))  # noqa: E731
    lots: dict[str, OpenLot] = {}
    out: list[RoundTrip] = []
    for fill in sorted(fills, key=lambda f: (f.ts, f.position, f.fill_id)):
        direction = 1 if fill.side == "buy" else -1
        qty, price, fee = fill.quantity, fill.price, fill.fee
        lot = lots.get(fill.pair)
        if lot is not None and direction == lot.side:
            lot.quantity += qty
            lot.entry_cost += qty * price
            lot.entry_fees += fee
            continue
        if lot is not None:  # reduces (and maybe flips) the position
            left = lot.quantity - lot.exit_quantity
            used = min(qty, left)
            share = used / qty
            lot.exit_quantity += used
            lot.exit_value += used * price
            lot.exit_fees += fee * share
            if lot.quantity - lot.exit_quantity > _EPS * max(1.0, lot.quantity):
                continue
            out.append(_close(fill.pair, lot, fill, lookup))
            del lots[fill.pair]
            qty -= used
            fee -= fee * share
            if qty <= _EPS * max(1.0, fill.quantity):
                continue
        lots[fill.pair] = OpenLot(direction, qty, qty * price, fee, fill.ts, fill.client_order_id)
    return out


def _close(
    pair: str,
    lot: OpenLot,
    last: StoredFill,
    lookup: Callable[[str], tuple[str | None, str | None]],
) -> RoundTrip:
    entry = lot.entry_cost / lot.quantity
    exit_ = lot.exit_value / lot.exit_quantity
    gross = lot.side * lot.quantity * (exit_ - entry)
    fees = lot.entry_fees + lot.exit_fees
    pnl = gross - fees
    strategy, verdict = lookup(lot.entry_order_id)
    return RoundTrip(
        pair=pair, side=lot.side, quantity=lot.quantity, entry_time=lot.entry_time,
        exit_time=last.ts, entry_price=entry, exit_price=exit_, gross_pnl=gross, fees=fees,
        pnl=pnl, return_pct=pnl / lot.entry_cost * 100.0, exit_reason=last.reason,
        entry_order_id=lot.entry_order_id, exit_order_id=last.client_order_id,
        strategy=strategy, llm_verdict=verdict,
    )  # fmt: skip
