"""The account ledger: cash, positions and P&L built from fills (pure, no I/O, no clock).

The workflow applies every :class:`~morningstar.core.orders.Fill` a broker returns
(:meth:`Ledger.apply`), marks the positions to each bar's close (:meth:`Ledger.mark`) and reads
the account back: an :class:`~morningstar.core.cycle.EquitySnapshot` for the cycle record, a
:class:`~morningstar.core.risk.PortfolioView` for the risk engine, one
:class:`~morningstar.core.cycle.PositionSnapshot` per open position.

Cash model (spot-like, the backtest engine's; amounts in the quote currency):

* a buy pays its notional and its fee: ``cash -= quantity * price + fee``;
* a sell receives its notional less its fee: ``cash += quantity * price - fee`` (a short sale
  too: its proceeds are credited);
* ``equity = cash + Σ signed quantity × mark`` (shorts count negative), so with the same fills and
  marks the equity equals the engine's ``cash + position × close`` exactly.

Positions are netted per pair: a fill in the position's direction adds to it (the entry price
becomes the quantity-weighted average), one against it reduces or closes it and realises
``side × quantity × (price − entry)``, and one larger than the position closes it and opens the
rest the other way at the fill price (a flip). Fees are deducted from the cash, summed in
:attr:`Ledger.fees` and counted in the realised P&L when paid, so that always
``equity == initial_cash + realized_pnl + unrealized_pnl`` (up to rounding).

The ledger never refuses a fill: a fill is a fact. Whether an order may be placed (size, cash,
reduce-only) is checked before: sizes and cash by the risk engine, reduce-only by the broker.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from morningstar.core._intent import Position
from morningstar.core._risk_types import PortfolioView, PositionView
from morningstar.core.cycle import EquitySnapshot, PositionSnapshot

if TYPE_CHECKING:
    from datetime import datetime

    from morningstar.core.orders import Fill

__all__ = ["Ledger"]

#: A remaining quantity at or below this fraction of the quantities involved is rounding dust:
#: the position is closed (e.g. ``0.3 - 0.1 - 0.2``).
_DUST: Final = 1e-12


class _Pos:
    """One open position (mutable, internal)."""

    __slots__ = ("entry", "mark", "opened_at", "qty", "stop_loss", "take_profit")

    def __init__(self, qty: float, entry: float, mark: float, opened_at: datetime) -> None:
        self.qty = qty  # signed: > 0 long, < 0 short
        self.entry = entry
        self.mark = mark
        self.opened_at = opened_at
        self.stop_loss: float | None = None
        self.take_profit: float | None = None


class Ledger:
    """Cash, positions, fees and realised P&L of one account (see the module docstring).

    Args:
        initial_cash: starting cash, quote currency, finite and > 0.
    """

    __slots__ = ("_cash", "_fees", "_initial", "_positions", "_realized", "_realized_by_pair")

    def __init__(self, initial_cash: float) -> None:
        if not (isinstance(initial_cash, int | float) and math.isfinite(initial_cash)
                and initial_cash > 0.0):  # fmt: skip
            raise ValueError(f"initial_cash must be a finite number > 0, got {initial_cash!r}")
        self._initial = float(initial_cash)
        self._cash = float(initial_cash)
        self._fees = 0.0
        self._realized = 0.0
        self._realized_by_pair: dict[str, float] = {}
        self._positions: dict[str, _Pos] = {}

    # ----------------------------------------------------------------- fills and marks
    def apply(self, fill: Fill) -> float:
        """Book one fill: cash, fees, the pair's position; returns the realised P&L it made.

        The realised P&L of a fill is the gain of the quantity it closed (``side × closed ×
        (price − entry)``; 0 when it only opens or adds) minus its fee.
        """
        qty = fill.quantity
        price = fill.price
        fee = fill.fee
        notional = qty * price
        pair = fill.pair
        if fill.side == "buy":
            direction = 1.0
            self._cash -= notional + fee
        else:
            direction = -1.0
            self._cash += notional - fee
        self._fees += fee
        realized = -fee
        pos = self._positions.get(pair)
        if pos is None:
            self._positions[pair] = _Pos(direction * qty, price, price, fill.ts)
        elif pos.qty * direction > 0.0:  # add: average entry
            held = abs(pos.qty)
            pos.entry = (held * pos.entry + notional) / (held + qty)
            pos.qty += direction * qty
        else:  # reduce, close or flip
            held = abs(pos.qty)
            closed = min(qty, held)
            realized += -direction * closed * (price - pos.entry)
            rest = qty - held
            if rest > _DUST * max(qty, held):  # flip: the rest opens the other way
                self._positions[pair] = _Pos(direction * rest, price, price, fill.ts)
            elif -rest <= _DUST * max(qty, held):  # closed
                del self._positions[pair]
            else:
                pos.qty = -direction * (held - closed)
        self._realized += realized
        self._realized_by_pair[pair] = self._realized_by_pair.get(pair, 0.0) + realized
        return realized

    def apply_all(self, fills: Iterable[Fill]) -> float:
        """Book several fills in order; the realised P&L they made together."""
        total = 0.0
        for fill in fills:
            total += self.apply(fill)
        return total

    def mark(self, pair: str, price: float) -> None:
        """Value the position of ``pair`` at ``price`` (the bar's close); no-op when flat."""
        pos = self._positions.get(pair)
        if pos is not None:
            pos.mark = price

    def set_protection(self, pair: str, stop_loss: float | None, take_profit: float | None) -> bool:
        """Record the protective levels in force for the open position of ``pair``.

        They are reported in :meth:`position` and :meth:`portfolio_view` and forgotten when the
        position closes or flips. Returns False (nothing recorded) when ``pair`` is flat.
        """
        pos = self._positions.get(pair)
        if pos is None:
            return False
        pos.stop_loss = stop_loss
        pos.take_profit = take_profit
        return True

    # ----------------------------------------------------------------- reads
    @property
    def initial_cash(self) -> float:
        """The starting cash."""
        return self._initial

    @property
    def cash(self) -> float:
        """Cash balance (fees paid deducted, short proceeds credited)."""
        return self._cash

    @property
    def equity(self) -> float:
        """``cash + Σ signed quantity × mark``."""
        total = self._cash
        for pos in self._positions.values():
            total += pos.qty * pos.mark
        return total

    @property
    def unrealized_pnl(self) -> float:
        """``Σ signed quantity × (mark − entry)`` over the open positions (fees excluded)."""
        total = 0.0
        for pos in self._positions.values():
            total += pos.qty * (pos.mark - pos.entry)
        return total

    @property
    def realized_pnl(self) -> float:
        """Realised P&L since the start, every fee paid included."""
        return self._realized

    @property
    def realized_by_pair(self) -> dict[str, float]:
        """Realised P&L per pair (fees included), a copy."""
        return dict(self._realized_by_pair)

    @property
    def fees(self) -> float:
        """Fees paid since the start."""
        return self._fees

    @property
    def pairs(self) -> tuple[str, ...]:
        """Pairs with an open position, in the order they were opened."""
        return tuple(self._positions)

    def signed_quantity(self, pair: str) -> float:
        """The position of ``pair`` in base units: > 0 long, < 0 short, 0.0 flat."""
        pos = self._positions.get(pair)
        return 0.0 if pos is None else pos.qty

    def position(self, pair: str) -> PositionSnapshot | None:
        """The open position of ``pair``, or None when flat."""
        pos = self._positions.get(pair)
        if pos is None:
            return None
        side = 1 if pos.qty > 0.0 else -1
        return PositionSnapshot(
            pair=pair,
            side=side,
            quantity=abs(pos.qty),
            entry_price=pos.entry,
            mark_price=pos.mark,
            stop_loss=pos.stop_loss,
            take_profit=pos.take_profit,
            unrealized_pnl=pos.qty * (pos.mark - pos.entry),
            opened_at=pos.opened_at,
        )

    def positions(self, first: str | None = None) -> tuple[PositionSnapshot, ...]:
        """Every open position; the one of ``first`` (a pair) comes first when open."""
        order = list(self._positions)
        if first is not None and first in self._positions:
            order.remove(first)
            order.insert(0, first)
        return tuple(snap for pair in order if (snap := self.position(pair)) is not None)

    def rules_position(self, pair: str) -> Position | None:
        """The open position of ``pair`` as the decision rules take it, or None when flat."""
        pos = self._positions.get(pair)
        if pos is None:
            return None
        return Position(
            side=1 if pos.qty > 0.0 else -1,
            quantity=abs(pos.qty),
            entry=pos.entry,
            sl=pos.stop_loss,
            tp=pos.take_profit,
        )

    def snapshot(self, risk_state: str, peak: float) -> EquitySnapshot:
        """The account now; ``drawdown = max(0, 1 − equity / peak)`` (0 when ``peak <= 0``)."""
        equity = self.equity
        drawdown = max(0.0, 1.0 - equity / peak) if peak > 0.0 else 0.0
        return EquitySnapshot(
            cash=self._cash,
            equity=equity,
            realized_pnl=self._realized,
            unrealized_pnl=self.unrealized_pnl,
            fees=self._fees,
            drawdown=drawdown,
            risk_state=risk_state,
        )

    def portfolio_view(
        self, *, peak_equity: float, day_start_equity: float, day: int, bar_index: int
    ) -> PortfolioView:
        """The account as the risk engine sees it (equity now, positions with their stops)."""
        positions = {
            pair: PositionView(
                side=1 if pos.qty > 0.0 else -1,
                quantity=abs(pos.qty),
                entry_price=pos.entry,
                mark_price=pos.mark,
                stop_loss=pos.stop_loss,
            )
            for pair, pos in self._positions.items()
        }
        return PortfolioView(
            equity=self.equity,
            peak_equity=peak_equity,
            day_start_equity=day_start_equity,
            day=day,
            bar_index=bar_index,
            positions=positions,
        )

    # ----------------------------------------------------------------- state
    def to_state(self) -> dict[str, Any]:
        """The ledger as JSON-friendly data (floats exact, times ISO-8601)."""
        return {
            "initial_cash": self._initial,
            "cash": self._cash,
            "fees": self._fees,
            "realized_pnl": self._realized,
            "realized_by_pair": dict(self._realized_by_pair),
            "positions": {
                pair: {
                    "quantity": pos.qty,
                    "entry_price": pos.entry,
                    "mark_price": pos.mark,
                    "opened_at": pos.opened_at.isoformat(),
                    "stop_loss": pos.stop_loss,
                    "take_profit": pos.take_profit,
                }
                for pair, pos in self._positions.items()
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ledger:
        """A ledger restored from :meth:`to_state` (a restarted run continues exactly).

        Raises:
            ValueError: the state is incomplete or malformed.
        """
        import pandas as pd  # lazily: parsing the ISO times of the positions only

        try:
            ledger = cls(float(state["initial_cash"]))
            ledger._cash = float(state["cash"])
            ledger._fees = float(state["fees"])
            ledger._realized = float(state["realized_pnl"])
            ledger._realized_by_pair = {
                str(k): float(v) for k, v in dict(state["realized_by_pair"]).items()
            }
            for pair, raw in dict(state["positions"]).items():
                opened = pd.Timestamp(raw["opened_at"]).to_pydatetime()
                if opened.tzinfo is None:
                    raise ValueError(f"opened_at of {pair} must be aware (UTC)")
                pos = _Pos(float(raw["quantity"]), float(raw["entry_price"]),
                           float(raw["mark_price"]), opened)  # fmt: skip
                if pos.qty == 0.0:
                    raise ValueError(f"position {pair} has a zero quantity")
                pos.stop_loss = _opt_float(raw.get("stop_loss"))
                pos.take_profit = _opt_float(raw.get("take_profit"))
                ledger._positions[str(pair)] = pos
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid ledger state: {exc!r}") from exc
        return ledger


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
