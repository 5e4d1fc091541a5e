"""Value types of the risk engine (import them from :mod:`morningstar.core.risk`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from morningstar.core._checks import check_range
from morningstar.core._intent import OrderIntent

__all__ = [
    "PortfolioView",
    "PositionView",
    "Rejection",
    "RiskDecision",
    "RiskLimits",
    "RiskState",
]


class RiskState(StrEnum):
    """The risk engine's state (transitions: :mod:`morningstar.core.risk`)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


def _check(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    check_range("RiskLimits", name, value, low, high, low_open=low_open)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Hard limits (percentages of equity), mirroring the config's ``RiskSettings``.

    Attributes:
        max_position_pct: notional of one pair's position, (0, 100]. Default 10.
        max_open_positions: number of open positions, >= 1. Default 5.
        max_gross_exposure_pct: total notional of all positions, (0, 1000]. Default 100.
        per_asset_cap_pct: notional on one asset (base currency), (0, 100]. Default 25.
        per_pair_cap_pct: overrides of ``per_asset_cap_pct`` for entries on given pairs
            (e.g. ``{"BTC/USDT": 40}``), each (0, 100]. Default none.
        daily_loss_limit_pct: loss since the UTC day's start that blocks entries for the
            rest of the day, (0, 100]. Default 5.
        max_drawdown_pct: drawdown from peak equity that halts trading, (0, 100]. Default 20.
        cooldown_bars_after_stop: bars without a new entry on a pair after a stop-loss exit
            on it, >= 0. Default 0 (off).
        reduce_at_drawdown_pct: drawdown that switches to REDUCING, (0, max_drawdown_pct];
            ``None`` = half of ``max_drawdown_pct``.
        reducing_size_factor: factor on entries while REDUCING, [0, 1]. Default 0.5.
        flatten_on_halt: close every position when halted. Default False.
        min_notional: smallest entry notional worth sending, >= 0. Default 0.
    """

    max_position_pct: float = 10.0
    max_open_positions: int = 5
    max_gross_exposure_pct: float = 100.0
    per_asset_cap_pct: float = 25.0
    per_pair_cap_pct: Mapping[str, float] = field(default_factory=dict, hash=False)
    daily_loss_limit_pct: float = 5.0
    max_drawdown_pct: float = 20.0
    cooldown_bars_after_stop: int = 0
    reduce_at_drawdown_pct: float | None = None
    reducing_size_factor: float = 0.5
    flatten_on_halt: bool = False
    min_notional: float = 0.0

    def __post_init__(self) -> None:
        _check("max_position_pct", self.max_position_pct, 0.0, 100.0, low_open=True)
        if not isinstance(self.max_open_positions, int) or self.max_open_positions < 1:
            raise ValueError(
                f"RiskLimits.max_open_positions must be an int >= 1, got "
                f"{self.max_open_positions!r}"
            )
        _check("max_gross_exposure_pct", self.max_gross_exposure_pct, 0.0, 1000.0, low_open=True)
        _check("per_asset_cap_pct", self.per_asset_cap_pct, 0.0, 100.0, low_open=True)
        overrides = dict(self.per_pair_cap_pct)
        for pair, pct in overrides.items():
            _check(f"per_pair_cap_pct[{pair!r}]", pct, 0.0, 100.0, low_open=True)
        object.__setattr__(self, "per_pair_cap_pct", overrides)
        _check("daily_loss_limit_pct", self.daily_loss_limit_pct, 0.0, 100.0, low_open=True)
        _check("max_drawdown_pct", self.max_drawdown_pct, 0.0, 100.0, low_open=True)
        if not isinstance(self.cooldown_bars_after_stop, int) or self.cooldown_bars_after_stop < 0:
            raise ValueError(
                f"RiskLimits.cooldown_bars_after_stop must be an int >= 0, got "
                f"{self.cooldown_bars_after_stop!r}"
            )
        if self.reduce_at_drawdown_pct is None:
            object.__setattr__(self, "reduce_at_drawdown_pct", self.max_drawdown_pct / 2.0)
        else:
            _check("reduce_at_drawdown_pct", self.reduce_at_drawdown_pct, 0.0,
                   self.max_drawdown_pct, low_open=True)  # fmt: skip
        _check("reducing_size_factor", self.reducing_size_factor, 0.0, 1.0)
        _check("min_notional", self.min_notional, 0.0, math.inf)

    @property
    def reduce_at(self) -> float:
        """``reduce_at_drawdown_pct`` resolved (never ``None`` after construction)."""
        value = self.reduce_at_drawdown_pct
        return self.max_drawdown_pct / 2.0 if value is None else value

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> RiskLimits:
        """Limits read from any object with the same attribute names (e.g. ``RiskSettings``).

        The seven fields of ``RiskSettings`` are required; the others are read when present
        and default otherwise. ``overrides`` win over both.

        Raises:
            AttributeError: a required field is missing.
            ValueError: a value is out of bounds.
        """
        required = ("max_position_pct", "max_open_positions", "max_gross_exposure_pct",
                    "per_asset_cap_pct", "daily_loss_limit_pct", "max_drawdown_pct",
                    "cooldown_bars_after_stop")  # fmt: skip
        optional = ("per_pair_cap_pct", "reduce_at_drawdown_pct", "reducing_size_factor",
                    "flatten_on_halt", "min_notional")  # fmt: skip
        kwargs: dict[str, Any] = {name: getattr(settings, name) for name in required}
        for name in optional:
            if hasattr(settings, name):
                value = getattr(settings, name)
                if value is not None or name == "reduce_at_drawdown_pct":
                    kwargs[name] = value
        kwargs.update(overrides)
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position, as the risk engine sees it.

    Attributes:
        side: +1 long, -1 short.
        quantity: base units, >= 0.
        entry_price: average entry price.
        mark_price: current price (account currency) used for exposures.
        stop_loss: current stop price, ``None`` unknown / none.
    """

    side: int
    quantity: float
    entry_price: float
    mark_price: float
    stop_loss: float | None = None

    @property
    def notional(self) -> float:
        """``quantity * mark_price`` (absolute)."""
        return abs(self.quantity * self.mark_price)


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """The portfolio at the close of one bar.

    Attributes:
        equity: account equity, account currency.
        peak_equity: highest equity so far (the drawdown's reference).
        day_start_equity: equity at the start of the bar's UTC day (the daily loss' reference).
        day: the bar's UTC day as a number (e.g. days since the epoch): the day boundary.
        bar_index: the bar's index (cooldowns count bars).
        positions: open positions by pair.
    """

    equity: float
    peak_equity: float
    day_start_equity: float
    day: int
    bar_index: int
    positions: Mapping[str, PositionView] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rule that cut or refused an intent, with a human-readable reason."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk engine's answer: the final intent (``none`` when refused) and why.

    Attributes:
        intent: the intent to execute, possibly shrunk; ``action == "none"`` when refused.
        rejections: every rule that cut or refused it, in the order applied.
        state: the engine's state after evaluating the view.
    """

    intent: OrderIntent
    rejections: tuple[Rejection, ...]
    state: RiskState

    @property
    def refused(self) -> bool:
        """An intent that asked for something was turned into ``none``."""
        return self.intent.action == "none" and bool(self.rejections)
