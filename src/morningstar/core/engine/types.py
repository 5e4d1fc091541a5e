"""Typed, validated settings of the backtest engine and the layout of its trade records.

Every settings class is a frozen dataclass that checks its fields on construction and raises
:class:`EngineInputError` (a :class:`~morningstar.errors.UserInputError` that is also a
:class:`ValueError`) naming the field, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

from morningstar.core.engine import kernel as _k
from morningstar.errors import UserInputError

__all__ = [
    "EXIT_REASONS",
    "PORTFOLIO_TRADE_DTYPE",
    "TRADE_DTYPE",
    "Costs",
    "EngineInputError",
    "EngineOptions",
    "ExitReason",
    "FillTiming",
    "FractionSizing",
    "IntrabarPolicy",
    "NotionalSizing",
    "OrderLimits",
    "Sizing",
    "Stops",
    "VolTargetSizing",
]

FillTiming = Literal["next_open", "close"]
IntrabarPolicy = Literal["stop_first", "target_first"]


class EngineInputError(UserInputError, ValueError):
    """An engine setting or input array is invalid (catch it as ``ValueError`` too)."""


class ExitReason(IntEnum):
    """Why a trade ended; ``OPEN`` marks a trade still open at the end of the data."""

    OPEN = _k.REASON_OPEN
    SIGNAL = _k.REASON_SIGNAL
    STOP_LOSS = _k.REASON_STOP_LOSS
    TAKE_PROFIT = _k.REASON_TAKE_PROFIT
    TRAILING_STOP = _k.REASON_TRAILING_STOP
    END_OF_DATA = _k.REASON_END_OF_DATA

    @property
    def label(self) -> str:
        """Lower-case name used in data frames: ``stop_loss``, ``end_of_data``, ..."""
        return self.name.lower()


#: Exit-reason labels indexed by their code.
EXIT_REASONS: tuple[str, ...] = tuple(r.label for r in sorted(ExitReason))

#: One row per trade. Times are int64 nanoseconds since the epoch (UTC) or bar numbers when the
#: simulation had no timestamps. ``side`` is +1 (long) or -1 (short); ``size`` is the absolute
#: quantity; prices are fill prices (slippage included); ``pnl`` is net of both fees and
#: ``return`` is ``pnl / (size * entry_price)``. Open trades are marked at the last close with no
#: exit fee and ``exit_reason == ExitReason.OPEN``.
TRADE_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("entry_time", np.int64),
        ("exit_time", np.int64),
        ("side", np.int8),
        ("size", np.float64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("entry_fee", np.float64),
        ("exit_fee", np.float64),
        ("pnl", np.float64),
        ("return", np.float64),
        ("exit_reason", np.int8),
    ]
)

#: A portfolio's trades: ``asset`` (the asset's column number) followed by the fields of
#: :data:`TRADE_DTYPE`.
PORTFOLIO_TRADE_DTYPE = np.dtype([("asset", np.int32), *TRADE_DTYPE.descr])


def _fail(owner: str, name: str, value: object, allowed: str) -> EngineInputError:
    return EngineInputError(
        f"{name}={value!r} is invalid", where=f"{owner}.{name}", hint=f"allowed: {allowed}"
    )


def check_number(
    owner: str,
    name: str,
    value: object,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a finite real number in the range."""
    lo_sym = "(" if low_open else "["
    hi_sym = ")" if high_open or math.isinf(high) else "]"
    allowed = f"a finite number in {lo_sym}{low:g}, {high:g}{hi_sym}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise _fail(owner, name, value, allowed)
    number = float(value)
    if not math.isfinite(number):
        raise _fail(owner, name, value, allowed)
    if number < low or (low_open and number == low):
        raise _fail(owner, name, value, allowed)
    if number > high or (high_open and number == high):
        raise _fail(owner, name, value, allowed)
    return number


def _check_choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(owner, name, value, " or ".join(repr(c) for c in choices))


@dataclass(frozen=True, slots=True)
class Costs:
    """Trading costs; every fill of this version is a taker (market) fill.

    Attributes:
        fee_bps: taker fee in basis points of the fill notional, paid on entry and exit.
        maker_fee_bps: maker fee in basis points, reserved for limit fills (not used yet).
        slippage_bps: fixed slippage in basis points, always against the trade.
        vol_slippage_k: volatility-scaled slippage: the fill price moves against the trade by
            ``vol_slippage_k * volatility[v]`` (a fraction), where ``volatility`` is the per-bar
            estimate given to ``simulate`` and ``v`` the last bar closed at the fill time.
    """

    fee_bps: float = 0.0
    maker_fee_bps: float = 0.0
    slippage_bps: float = 0.0
    vol_slippage_k: float = 0.0

    def __post_init__(self) -> None:
        check_number("Costs", "fee_bps", self.fee_bps, high=1000.0)
        check_number("Costs", "maker_fee_bps", self.maker_fee_bps, low=-1000.0, high=1000.0)
        check_number("Costs", "slippage_bps", self.slippage_bps, high=10_000.0, high_open=True)
        check_number("Costs", "vol_slippage_k", self.vol_slippage_k, high=100.0)


@dataclass(frozen=True, slots=True)
class FractionSizing:
    """Invest ``fraction`` of equity (the notional, fees on top, capped by the cash)."""

    fraction: float = 1.0

    def __post_init__(self) -> None:
        check_number("FractionSizing", "fraction", self.fraction, low_open=True, high=1.0)


@dataclass(frozen=True, slots=True)
class NotionalSizing:
    """Invest a fixed notional (quote currency, fees on top, capped by the cash)."""

    notional: float

    def __post_init__(self) -> None:
        check_number("NotionalSizing", "notional", self.notional, low_open=True)


@dataclass(frozen=True, slots=True)
class VolTargetSizing:
    """Volatility targeting: fraction of equity ``target_vol / (vol * sqrt(periods_per_year))``.

    ``vol`` is the per-bar volatility estimate of the signal bar (``volatility`` argument of
    ``simulate``, a fraction such as the rolling standard deviation of bar returns). The
    fraction is capped at ``max_fraction`` (no leverage: at most 1). A NaN or non-positive
    estimate skips the entry (counted in ``EngineResult.n_skipped``).
    """

    target_vol: float
    periods_per_year: float
    max_fraction: float = 1.0

    def __post_init__(self) -> None:
        check_number("VolTargetSizing", "target_vol", self.target_vol, low_open=True)
        check_number("VolTargetSizing", "periods_per_year", self.periods_per_year, low_open=True)
        check_number("VolTargetSizing", "max_fraction", self.max_fraction, low_open=True, high=1.0)

    @property
    def target_per_bar(self) -> float:
        """The target volatility de-annualised to one bar."""
        return self.target_vol / math.sqrt(self.periods_per_year)


Sizing = FractionSizing | NotionalSizing | VolTargetSizing


@dataclass(frozen=True, slots=True)
class Stops:
    """Stop-loss, take-profit and trailing stop as fractions of the entry fill price.

    Per-bar price distances (ATR multiples, ...) are given to ``simulate`` as arrays instead
    (``stop_loss_dist``, ...); a stop cannot have both forms.

    Attributes:
        stop_loss: exit when the price moves against the trade by this fraction of the entry.
        take_profit: exit when the price moves in favour by this fraction of the entry.
        trailing_stop: exit when the price retraces this fraction from the best price since the
            entry (highest high for a long, lowest low for a short; the entry price at first).
        intrabar: which of a stop and the target is assumed hit first when both are inside one
            bar: ``"stop_first"`` (conservative, default) or ``"target_first"``.
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    intrabar: IntrabarPolicy = "stop_first"

    def __post_init__(self) -> None:
        if self.stop_loss is not None:
            check_number(
                "Stops", "stop_loss", self.stop_loss, low_open=True, high=1.0, high_open=True
            )
        if self.take_profit is not None:
            check_number("Stops", "take_profit", self.take_profit, low_open=True)
        if self.trailing_stop is not None:
            check_number(
                "Stops",
                "trailing_stop",
                self.trailing_stop,
                low_open=True,
                high=1.0,
                high_open=True,
            )
        _check_choice("Stops", "intrabar", self.intrabar, ("stop_first", "target_first"))


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """Exchange order limits; 0 disables each one.

    Quantities are rounded DOWN to a multiple of ``qty_step``; an entry whose rounded quantity
    is zero, below ``min_size`` (base units) or below ``min_notional`` (quote currency) is
    skipped and counted in ``EngineResult.n_skipped``.
    """

    min_size: float = 0.0
    min_notional: float = 0.0
    qty_step: float = 0.0

    def __post_init__(self) -> None:
        check_number("OrderLimits", "min_size", self.min_size)
        check_number("OrderLimits", "min_notional", self.min_notional)
        check_number("OrderLimits", "qty_step", self.qty_step)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Fill timing and end-of-data handling.

    Attributes:
        fill_timing: ``"next_open"`` (default): a signal on the close of bar t fills at the open
            of bar t+1. ``"close"``: it fills at the close of bar t itself (only realistic when
            the signal can be computed just before the close).
        close_at_end: ``False`` (default, like vectorbt): a position still open at the last bar
            stays open, is marked to market in the equity and reported with exit reason
            ``open``. ``True``: it is closed at the last close (fees and slippage paid), exit
            reason ``end_of_data``.
    """

    fill_timing: FillTiming = "next_open"
    close_at_end: bool = False

    def __post_init__(self) -> None:
        _check_choice("EngineOptions", "fill_timing", self.fill_timing, ("next_open", "close"))
        if not isinstance(self.close_at_end, bool):
            raise _fail("EngineOptions", "close_at_end", self.close_at_end, "True or False")
