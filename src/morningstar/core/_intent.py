"""The decision step's value types: :class:`Position` and :class:`OrderIntent`.

Shared by the rules (:mod:`morningstar.core.decision`), the supervision step and the risk engine
(:mod:`morningstar.core.risk`); import them from :mod:`morningstar.core.decision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["ACTIONS", "Action", "OrderIntent", "Position"]

Action = Literal["open", "close", "adjust", "none"]
#: Every :data:`Action`.
ACTIONS: Final = frozenset({"open", "close", "adjust", "none"})


@dataclass(frozen=True, slots=True)
class Position:
    """An open position on one pair, as the rules see it.

    Attributes:
        side: +1 long, -1 short.
        quantity: base units, >= 0 (0 = flat).
        entry: average entry price.
        sl: current stop-loss price, ``None`` = no stop.
        tp: current take-profit price, ``None`` = no target.
    """

    side: int
    quantity: float
    entry: float
    sl: float | None = None
    tp: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError(f"Position.side must be +1 or -1, got {self.side!r}")
        if not self.quantity >= 0.0:
            raise ValueError(f"Position.quantity must be >= 0, got {self.quantity!r}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the decision step wants done on one pair (not yet an order: the risk engine decides).

    Attributes:
        pair: the market, e.g. ``"BTC/USDT"``.
        action: ``open`` a position, ``close`` it, ``adjust`` its stop/target, or ``none``.
        side: +1 / -1: the side of the position opened, closed or adjusted (0 only with
            ``none`` when there is no side).
        quantity: base units, >= 0: the size to open or to close; the position's size for an
            ``adjust`` (it does not trade); 0 for ``none``.
        price: reference price (the bar's close) the stops and sizes were computed from.
        stop_loss: stop-loss price, ``None`` = none.
        take_profit: take-profit price, ``None`` = none.
        reasons: human-readable reasons, in the order the steps added them.
    """

    pair: str
    action: Action
    side: int
    quantity: float = 0.0
    price: float = math.nan
    stop_loss: float | None = None
    take_profit: float | None = None
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"OrderIntent.action must be one of {sorted(ACTIONS)}, got "
                             f"{self.action!r}")  # fmt: skip
        if self.side not in (1, -1) and not (self.side == 0 and self.action == "none"):
            raise ValueError(f"OrderIntent.side must be +1 or -1, got {self.side!r}")
        if not self.quantity >= 0.0:
            raise ValueError(f"OrderIntent.quantity must be >= 0, got {self.quantity!r}")

    def stop_distance(self) -> float | None:
        """``side * (price - stop_loss)``: > 0 for a stop on the losing side; ``None`` if none."""
        if self.stop_loss is None:
            return None
        return self.side * (self.price - self.stop_loss)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly fields, for persistence."""
        return {
            "pair": self.pair,
            "action": self.action,
            "side": self.side,
            "quantity": self.quantity,
            "price": self.price,
            "stop_loss": self.stop_loss,
            "take_profit": self.take_profit,
            "reasons": list(self.reasons),
        }
