"""The simulated broker: the backtest engine's fill model behind the :class:`Broker` port.

A workflow run driven by :class:`SimulatedBroker` with the engine's signals, sizes and stop levels
reproduces the engine's trades and P&L (``tests/integration/test_broker_engine_parity.py``). The
rules, each with the engine rule it mirrors (``core/engine/kernel.py``, ``docs/engine.md``):

* **Eligibility.** An order takes part in the first bar processed after its decision bar
  (``bar.ts > order.bar_ts``): an order submitted after the close of bar t meets bar t+1 first
  (engine: ``next_open`` timing, a signal on t acts in t+1).
* **Order of events in a bar** (engine: signals at the open, then the stops of the resulting
  position, the one just entered included): first the eligible ``market`` orders of the pair, in
  submission order, at the bar's **open**; then the protective orders (``stop`` / ``limit``) of
  the resulting position.
* **Market fill price**: ``open × (1 + d × slip)``, ``d`` = +1 buy / −1 sell, ``slip =
  slippage_bps / 1e4 + vol_slippage_k × volatility`` (engine ``_slippage``; the volatility is the
  last one given by :meth:`SimulatedBroker.set_volatility`, i.e. of the last closed bar; NaN or
  none adds 0).
* **Quote-sized entries**: a market order with ``quote_quantity`` fills ``quote_quantity / price``
  at the fill price, cut so that ``quantity × price × (1 + fee rate) <= max_cost`` (engine
  ``_entry_quantity``: a fraction of equity at the fill price, fees on top, capped by the cash).
* **Fee**: ``quantity × price × fee_bps / 1e4`` on every fill, protective fills included (engine:
  every fill is a taker fill; ``maker_fee_bps`` is not used, as in the engine).
* **Stop** (a reduce-only ``stop`` order, role ``stop_loss``; a sell stop protects a long, a buy
  stop a short): when the open is already through the stop (gap) it fills at the **open**;
  otherwise when the bar's low (sell) / high (buy) reaches it, at the **stop price**; slippage
  against the trade either way (engine ``_check_stops``: ``fo <= fs`` → open, else the level).
* **Target** (a reduce-only ``limit`` order, role ``take_profit``): an open already beyond the
  limit in the favourable direction fills at the **open** (engine: gap through the target fills
  at the open, with slippage); otherwise when the high (sell) / low (buy) reaches it, at the
  **limit price** (with slippage, as the engine).
* **Both in one bar**: gaps first (stop gap, then target gap, as the engine tests them); then, when
  the range touches both, the stop with ``intrabar="stop_first"`` (default) or the target with
  ``"target_first"`` (engine ``Stops.intrabar``). Among several stops touched the one nearest the
  open fills (the price meets it first); same for targets.
* **OCO**: a filled protective order cancels the other protective orders of its pair on the same
  side (its siblings: the target of a stop, the stop of a target).
* **Reduce-only** (checked here, when the order would fill): a reduce-only order fills at most the
  broker's net position of its pair in the reducing direction; with nothing to reduce it is
  cancelled, not filled (a stop left over from a position closed by a signal, the old stop of a
  position since reversed).
* **Fill ids** are ``client_order_id + "-f"`` (one fill per order); a fill's ``ts`` is the open
  time of the bar that filled it; its reason is ``signal`` for market orders, ``stop_loss`` /
  ``take_profit`` for protective ones.

Matching the engine from a workflow: protective orders submitted together with their entry (same
decision bar) already protect the entry's own bar, as the engine does; submitted only after the
entry's fill is seen, they protect from the following bar on (the entry bar is unprotected). The
engine also sizes an entry and places its stop levels from the entry's FILL price, which a live
decision cannot know; the parity test's driver reads the next open for that, the broker never
looks ahead.

Not modelled (the engine has them): trailing stops (adjust = cancel + resubmit at a bar's close
only), ``close`` fill timing, quantity steps and minimums (the workflow sizes the order).

Who checks what: :class:`~morningstar.core.orders.Order` validates its own fields (side, kind,
role, quantity and prices > 0, aware times); :meth:`SimulatedBroker.submit` rejects what this fill
model cannot execute (a ``stop`` that is not a reduce-only ``stop_loss``, a ``limit`` that is not
a reduce-only ``take_profit``, a ``market`` order with a protective role, any order after
:meth:`close`) with ``status="rejected"`` and a reason; reduce-only is enforced at fill time
(above); cash and size limits are the risk engine's; the ledger books every fill and refuses none.

Speed: :meth:`process_bar` of a pair without open orders is one dict lookup (the backtest calls
it once per pair per bar); see ``benchmarks/bench_broker.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Self

from morningstar.core.engine.types import Costs, IntrabarPolicy
from morningstar.core.orders import Fill, FillReason, Order, OrderStatus
from morningstar.core.types import Bar
from morningstar.exchange.broker import OrderAck

__all__ = ["SimulatedBroker"]

_DUST: Final = 1e-12  # relative: a position this close to zero is flat
_STATE_VERSION: Final = 1


def _rejected(order: Order, reason: str) -> OrderAck:
    return OrderAck(order.client_order_id, "rejected", reason=reason)


def _check(order: Order) -> str | None:
    """Why this fill model cannot execute ``order``, or None."""
    if order.kind == "market":
        if order.role in ("stop_loss", "take_profit"):
            return (f"a market order cannot have role {order.role}: protective orders are "
                    "'stop' (stop_loss) or 'limit' (take_profit) orders")  # fmt: skip
        return None
    if order.kind == "stop" and not (order.role == "stop_loss" and order.reduce_only):
        return "stop orders are protective stop-losses: role stop_loss and reduce_only=True"
    if order.kind == "limit" and not (order.role == "take_profit" and order.reduce_only):
        return "limit orders are protective take-profits: role take_profit and reduce_only=True"
    return None


class SimulatedBroker:
    """The engine's fill model as a :class:`~morningstar.exchange.broker.Broker` (module docstring).

    Args:
        costs: fees and slippage (the engine's :class:`Costs`; default: none).
        intrabar: which of a stop and a target both touched inside one bar fills:
            ``"stop_first"`` (default, conservative) or ``"target_first"``.
        remember_ids: how many finished (filled, cancelled, rejected) order ids are remembered
            for idempotency and kept in :meth:`state`, oldest forgotten first; open orders are
            always remembered.
    """

    name: str = "simulated"

    def __init__(
        self,
        costs: Costs | None = None,
        *,
        intrabar: IntrabarPolicy = "stop_first",
        remember_ids: int = 4096,
    ) -> None:
        costs = Costs() if costs is None else costs
        if intrabar not in ("stop_first", "target_first"):
            raise ValueError(f"intrabar must be 'stop_first' or 'target_first', got {intrabar!r}")
        if remember_ids < 1:
            raise ValueError(f"remember_ids must be >= 1, got {remember_ids!r}")
        self.costs = costs
        self.intrabar: IntrabarPolicy = intrabar
        self.remember_ids = int(remember_ids)
        self._fee_rate = costs.fee_bps / 1e4
        self._slip = costs.slippage_bps / 1e4
        self._slip_k = costs.vol_slippage_k
        self._target_first = intrabar == "target_first"
        self._open: dict[str, list[Order]] = {}  # pair -> open orders, in submission order
        self._by_id: dict[str, Order] = {}  # open orders by id
        self._acks: dict[str, OrderAck] = {}  # first ack of every remembered id
        self._status: dict[str, OrderStatus] = {}  # current status of every remembered id
        self._reasons: dict[str, str] = {}  # why an order was cancelled by the broker
        self._positions: dict[str, float] = {}  # net signed quantity per pair, from our fills
        self._vol: dict[str, float] = {}
        self._revision = 0
        self._closed = False

    # ----------------------------------------------------------------- the port
    def submit(self, order: Order) -> OrderAck:
        """Accept ``order`` (it fills on a later bar) or reject it; idempotent on its id.

        A known ``client_order_id`` returns its first acknowledgement with ``duplicate=True``
        and places nothing.
        """
        known = self._acks.get(order.client_order_id)
        if known is not None:
            return OrderAck(known.client_order_id, known.status, True, known.reason)
        reason = "the broker is closed" if self._closed else _check(order)
        ack = _rejected(order, reason) if reason else OrderAck(order.client_order_id, "open")
        if ack.status == "open":
            self._open.setdefault(order.pair, []).append(order)
            self._by_id[order.client_order_id] = order
        self._remember(order.client_order_id, ack)
        self._revision += 1
        return ack

    def cancel(self, client_order_id: str) -> bool:
        """Cancel an open order; False when it is not open (filled, cancelled, unknown)."""
        order = self._by_id.get(client_order_id)
        if order is None:
            return False
        self._finish(order, "cancelled", None)
        return True

    def process_bar(self, pair: str, bar: Bar) -> list[Fill]:
        """Fill the eligible open orders of ``pair`` against ``bar`` (just closed); their fills.

        See the module docstring for the rules. Orders decided at or after ``bar.ts`` wait.
        """
        orders = self._open.get(pair)
        if not orders:
            return []
        fills: list[Fill] = []
        ts = bar.ts
        protective = False
        for order in tuple(orders):
            if not order.bar_ts < ts:
                continue
            if order.kind == "market":
                fill = self._fill_market(order, bar)
                if fill is not None:
                    fills.append(fill)
            else:
                protective = True
        if protective:
            fill = self._protect(pair, bar)
            if fill is not None:
                fills.append(fill)
        return fills

    def open_orders(self, pair: str | None = None) -> list[Order]:
        """Orders accepted and not yet filled or cancelled (of ``pair``, or all), in order."""
        if pair is not None:
            return list(self._open.get(pair, ()))
        return [o for orders in self._open.values() for o in orders]

    def state(self) -> dict[str, Any]:
        """Open orders, remembered ids with their status, net positions and volatilities
        (JSON-friendly; :meth:`from_state` restores it)."""
        return {
            "version": _STATE_VERSION,
            "name": self.name,
            "open_orders": [o.as_dict() for orders in self._open.values() for o in orders],
            "orders": [
                {
                    "id": cid,
                    "status": self._status[cid],
                    "first": ack.status,
                    "reason": ack.reason,
                    "cancel_reason": self._reasons.get(cid),
                }
                for cid, ack in self._acks.items()
            ],
            "positions": dict(self._positions),
            "volatility": dict(self._vol),
        }

    def close(self) -> None:
        """Refuse new orders from now on (idempotent); nothing to release."""
        self._closed = True

    # ----------------------------------------------------------------- extras
    def set_volatility(self, pair: str, volatility: float | None) -> None:
        """The per-bar volatility (a fraction) known at the last close of ``pair``: it scales
        the slippage of the fills in the pair's next bar (``Costs.vol_slippage_k``).

        None or NaN: unknown (adds no slippage), like a NaN in the engine's array.
        """
        if volatility is None or math.isnan(volatility):
            self._vol.pop(pair, None)
        else:
            self._vol[pair] = float(volatility)

    def status(self, client_order_id: str) -> OrderStatus | None:
        """The current status of a remembered order (None: unknown or forgotten)."""
        return self._status.get(client_order_id)

    def cancel_reason(self, client_order_id: str) -> str | None:
        """Why the broker itself cancelled an order (OCO, nothing to reduce), else None."""
        return self._reasons.get(client_order_id)

    def net_position(self, pair: str) -> float:
        """The broker's net signed quantity of ``pair`` from its own fills (0.0 flat)."""
        return self._positions.get(pair, 0.0)

    @property
    def revision(self) -> int:
        """A counter bumped by every change: :meth:`state` need not be persisted again while
        it is unchanged."""
        return self._revision

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        costs: Costs | None = None,
        *,
        intrabar: IntrabarPolicy = "stop_first",
        remember_ids: int = 4096,
    ) -> Self:
        """A broker restored from :meth:`state` (the costs and policy come from the config).

        Raises:
            ValueError: the state is malformed or of an unknown version.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown broker state version {state.get('version')!r}")
        broker = cls(costs, intrabar=intrabar, remember_ids=remember_ids)
        try:
            for raw in state["orders"]:
                cid = str(raw["id"])
                broker._acks[cid] = OrderAck(cid, raw["first"], reason=raw.get("reason"))
                broker._status[cid] = raw["status"]
                if raw.get("cancel_reason"):
                    broker._reasons[cid] = str(raw["cancel_reason"])
            for raw in state["open_orders"]:
                order = _order_from_dict(raw)
                if broker._status.get(order.client_order_id) != "open":
                    raise ValueError(f"open order {order.client_order_id} is not marked open")
                broker._open.setdefault(order.pair, []).append(order)
                broker._by_id[order.client_order_id] = order
            broker._positions = {str(k): float(v) for k, v in dict(state["positions"]).items()}
            broker._vol = {str(k): float(v) for k, v in dict(state["volatility"]).items()}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid broker state: {exc!r}") from exc
        return broker

    # ----------------------------------------------------------------- fill model
    def _slippage(self, pair: str) -> float:
        slip = self._slip
        if self._slip_k != 0.0:
            vol = self._vol.get(pair)
            if vol is not None:
                slip += self._slip_k * vol
        return slip

    def _reducible(self, order: Order) -> float:
        """How much of the pair's net position ``order`` may reduce (0.0: nothing)."""
        held = -order.direction * self._positions.get(order.pair, 0.0)
        return held if held > 0.0 else 0.0

    def _fill_market(self, order: Order, bar: Bar) -> Fill | None:
        qty = order.quantity
        if order.reduce_only:
            room = self._reducible(order)
            if room <= 0.0:
                self._finish(order, "cancelled", "reduce-only: nothing to reduce")
                return None
            qty = min(qty, room)
        price = bar.open * (1.0 + order.direction * self._slippage(order.pair))
        if order.quote_quantity is not None:  # sized at the fill price (engine sizing)
            qty = order.quote_quantity / price
            if order.max_cost is not None:
                qty = min(qty, order.max_cost / (price * (1.0 + self._fee_rate)))
            if not qty > 0.0:
                self._finish(order, "cancelled", "quote quantity: nothing affordable")
                return None
        return self._execute(order, qty, price, bar, "signal")

    def _protect(self, pair: str, bar: Bar) -> Fill | None:
        """The protective orders of ``pair``'s position inside ``bar``: at most one fills."""
        net = self._positions.get(pair, 0.0)
        sign = 1.0 if net > 0.0 else -1.0
        ts = bar.ts
        # prices times sign: "higher" is better for the position (engine _check_stops); the
        # tightest stop (highest) and the nearest target (lowest) are the ones the price meets
        stop: Order | None = None
        target: Order | None = None
        fs = ft = 0.0
        stale: list[Order] | None = None
        for order in self._open[pair]:
            kind = order.kind
            if kind == "market" or not order.bar_ts < ts:
                continue
            if net == 0.0 or order.direction == sign:  # would not reduce the position
                stale = [order] if stale is None else [*stale, order]
            elif kind == "stop":
                level = sign * order.stop_price  # type: ignore[operator]
                if stop is None or level > fs:
                    stop, fs = order, level
            else:
                level = sign * order.limit_price  # type: ignore[operator]
                if target is None or level < ft:
                    target, ft = order, level
        if stale is not None:
            for order in stale:
                self._finish(order, "cancelled", "reduce-only: nothing to reduce")
        fo = sign * bar.open
        chosen: Order | None = None
        ref = bar.open
        if stop is not None and fo <= fs:  # gap through the stop: at the open
            chosen = stop
        elif target is not None and fo >= ft:  # gap through the target: at the open
            chosen = target
        else:
            stop_hit = stop is not None and (bar.low if sign > 0.0 else -bar.high) <= fs
            target_hit = target is not None and (bar.high if sign > 0.0 else -bar.low) >= ft
            if stop_hit and not (target_hit and self._target_first):
                chosen = stop
            elif target_hit:
                chosen = target
            if chosen is None:
                return None
            ref = sign * (fs if chosen is stop else ft)  # exact: sign is ±1
        qty = min(chosen.quantity, abs(net))
        price = ref * (1.0 + chosen.direction * self._slippage(pair))
        reason: FillReason = "stop_loss" if chosen.kind == "stop" else "take_profit"
        fill = self._execute(chosen, qty, price, bar, reason)
        for order in tuple(self._open.get(pair, ())):  # OCO: cancel the siblings
            if order.kind != "market" and order.direction == chosen.direction:
                self._finish(order, "cancelled", f"OCO: {chosen.client_order_id} filled")
        return fill

    def _execute(
        self, order: Order, qty: float, price: float, bar: Bar, reason: FillReason
    ) -> Fill:
        notional = qty * price
        fill = Fill(
            fill_id=order.client_order_id + "-f",
            client_order_id=order.client_order_id,
            pair=order.pair,
            side=order.side,
            quantity=qty,
            price=price,
            fee=notional * self._fee_rate,
            ts=bar.ts,
            reason=reason,
        )
        before = self._positions.get(order.pair, 0.0)
        after = before + order.direction * qty
        if abs(after) <= _DUST * max(abs(before), qty):
            self._positions.pop(order.pair, None)
        else:
            self._positions[order.pair] = after
        self._finish(order, "filled", None)
        return fill

    # ----------------------------------------------------------------- bookkeeping
    def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None:
        cid = order.client_order_id
        del self._by_id[cid]
        orders = self._open[order.pair]
        orders.remove(order)
        if not orders:
            del self._open[order.pair]
        self._status[cid] = status
        if reason is not None:
            self._reasons[cid] = reason
        self._revision += 1

    def _remember(self, cid: str, ack: OrderAck) -> None:
        self._acks[cid] = ack
        self._status[cid] = ack.status
        excess = len(self._acks) - len(self._by_id) - self.remember_ids
        if excess <= 0:
            return
        victims: list[str] = []  # the oldest finished ids (ids are kept in submission order)
        for old in self._acks:
            if old not in self._by_id:
                victims.append(old)
                if len(victims) == excess:
                    break
        for old in victims:
            del self._acks[old]
            del self._status[old]
            self._reasons.pop(old, None)


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} must be aware (UTC)")
    return value


def _order_from_dict(raw: Mapping[str, Any]) -> Order:
    """The inverse of :meth:`Order.as_dict`."""
    return Order(
        client_order_id=str(raw["client_order_id"]),
        run_id=str(raw["run_id"]),
        pair=str(raw["pair"]),
        side=raw["side"],
        quantity=float(raw["quantity"]),
        kind=raw["kind"],
        role=raw["role"],
        created_at=_time(raw["created_at"]),
        bar_ts=_time(raw["bar_ts"]),
        reduce_only=bool(raw["reduce_only"]),
        stop_price=None if raw.get("stop_price") is None else float(raw["stop_price"]),
        limit_price=None if raw.get("limit_price") is None else float(raw["limit_price"]),
        reference_price=_opt(raw.get("reference_price")),
        quote_quantity=_opt(raw.get("quote_quantity")),
        max_cost=_opt(raw.get("max_cost")),
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
