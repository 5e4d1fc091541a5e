"""Built-in strategies. Each computes its signals on bar closes from ``morningstar.core`` indicators.

Long-only by default; ``allow_short`` adds the mirrored short rules where the strategy declares it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import numpy as np

from morningstar.core.indicators import atr, bollinger, donchian, ema, macd, rsi, sma
from morningstar.errors import StrategyError
from morningstar.strategies.base import (
    Bars,
    FloatArray,
    Param,
    ParamValue,
    Signals,
    Strategy,
    cross_above,
    cross_below,
    crossings,
)

__all__ = [
    "BollingerAtr",
    "DonchianBreakout",
    "EmaCross",
    "MacdTrend",
    "RsiReversion",
    "SmaCross",
]

_SHORT = Param("allow_short", "bool", False, doc="also take the mirrored short trades")


def _i(params: Mapping[str, ParamValue], key: str) -> int:
    return int(params[key])


def _f(params: Mapping[str, ParamValue], key: str) -> float:
    return float(params[key])


def _fast_below_slow(name: str, params: Mapping[str, ParamValue]) -> None:
    if float(params["fast"]) >= float(params["slow"]):
        raise StrategyError(
            f"fast ({params['fast']}) must be smaller than slow ({params['slow']})", where=name
        )


def _with_short(
    long_entries: np.ndarray, long_exits: np.ndarray, allow_short: bool, **extra: object
) -> Signals:
    if allow_short:
        return Signals(long_entries, long_exits, long_exits.copy(), long_entries.copy(), **extra)  # type: ignore[arg-type]
    return Signals(long_entries, long_exits, **extra)  # type: ignore[arg-type]


_AVERAGES: dict[str, Callable[..., FloatArray]] = {"ema": ema, "sma": sma}


class _AverageCross(Strategy):
    """Long when the fast average of the close crosses above the slow one; exit on the cross
    below. Subclasses choose the average by ``label`` (a key of ``_AVERAGES``)."""

    label: ClassVar[str]

    @classmethod
    def check_relations(cls, params: Mapping[str, ParamValue]) -> None:
        """fast < slow."""
        _fast_below_slow(cls.name, params)

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """Crossovers of average(fast) and average(slow) of the close."""
        average = _AVERAGES[self.label]
        fast = bars.ind(average, bars.close, _i(params, "fast"))
        slow = bars.ind(average, bars.close, _i(params, "slow"))
        return _with_short(
            *crossings(fast, slow), bool(params["allow_short"]),
            indicators={f"{self.label}_fast": fast, f"{self.label}_slow": slow},
        )  # fmt: skip


class EmaCross(_AverageCross):
    """Long when the fast EMA crosses above the slow EMA; exit when it crosses below."""

    name = "ema_cross"
    description = "EMA crossover trend follower"
    label = "ema"
    params = (
        Param("fast", "int", 10, 2, 200, 1, "fast EMA period (bars)"),
        Param("slow", "int", 50, 3, 1000, 1, "slow EMA period (bars)"),
        _SHORT,
    )


class SmaCross(_AverageCross):
    """Long when the fast SMA crosses above the slow SMA; exit when it crosses below."""

    name = "sma_cross"
    description = "SMA crossover trend follower"
    label = "sma"
    params = (
        Param("fast", "int", 20, 2, 200, 1, "fast SMA period (bars)"),
        Param("slow", "int", 100, 3, 1000, 1, "slow SMA period (bars)"),
        _SHORT,
    )


class BollingerAtr(Strategy):
    """Mean reversion: long when the close falls below the lower Bollinger band, exit at the
    middle band; stop-loss at ``atr_mult`` × ATR below the entry (distance read at the signal bar).
    """

    name = "bollinger_atr"
    description = "Bollinger-band mean reversion with an ATR stop"
    params = (
        Param("period", "int", 20, 5, 200, 1, "Bollinger period (bars)"),
        Param("k", "float", 2.0, 0.5, 4.0, 0.25, "band width in standard deviations"),
        Param("atr_period", "int", 14, 2, 100, 1, "ATR period (bars)"),
        Param("atr_mult", "float", 2.0, 0.5, 10.0, 0.5, "stop distance in ATRs"),
    )

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """Close crosses below the lower band → entry; close crosses above the middle → exit."""
        middle, _upper, lower = bars.ind(
            bollinger, bars.close, _i(params, "period"), _f(params, "k")
        )
        atr_n = _i(params, "atr_period")
        stop = bars.ind(atr, bars.high, bars.low, bars.close, atr_n) * _f(params, "atr_mult")
        return Signals(
            cross_below(bars.close, lower),
            cross_above(bars.close, middle),
            stop_distance=stop,
            indicators={"bb_middle": middle, "bb_lower": lower, "atr_stop": stop},
        )


class RsiReversion(Strategy):
    """Long when RSI crosses below ``lower`` (oversold); exit when it crosses above ``upper``."""

    name = "rsi_reversion"
    description = "RSI oversold / overbought mean reversion"
    params = (
        Param("period", "int", 14, 2, 100, 1, "RSI period (bars)"),
        Param("lower", "float", 30.0, 5.0, 50.0, 5.0, "oversold level"),
        Param("upper", "float", 70.0, 50.0, 95.0, 5.0, "exit level"),
        _SHORT,
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, ParamValue]) -> None:
        """lower < upper."""
        if float(params["lower"]) >= float(params["upper"]):
            raise StrategyError(
                f"lower ({params['lower']}) must be smaller than upper ({params['upper']})",
                where=cls.name,
            )

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """RSI crossing its thresholds."""
        value = bars.ind(rsi, bars.close, _i(params, "period"))
        lower = np.full(len(bars), _f(params, "lower"))
        upper = np.full(len(bars), _f(params, "upper"))
        long_entries, long_exits = cross_below(value, lower), cross_above(value, upper)
        if bool(params["allow_short"]):
            return Signals(
                long_entries, long_exits, cross_above(value, upper), cross_below(value, lower),
                indicators={"rsi": value},
            )  # fmt: skip
        return Signals(long_entries, long_exits, indicators={"rsi": value})


class MacdTrend(Strategy):
    """Long when the MACD line crosses above its signal line; exit when it crosses below."""

    name = "macd_trend"
    description = "MACD signal-line crossover"
    params = (
        Param("fast", "int", 12, 2, 100, 1, "fast EMA period"),
        Param("slow", "int", 26, 3, 300, 1, "slow EMA period"),
        Param("signal", "int", 9, 2, 100, 1, "signal EMA period"),
        _SHORT,
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, ParamValue]) -> None:
        """fast < slow."""
        _fast_below_slow(cls.name, params)

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """MACD / signal-line crossovers."""
        line, signal, _hist = bars.ind(
            macd, bars.close, _i(params, "fast"), _i(params, "slow"), _i(params, "signal")
        )
        return _with_short(
            *crossings(line, signal), bool(params["allow_short"]),
            indicators={"macd": line, "macd_signal": signal},
        )  # fmt: skip


class DonchianBreakout(Strategy):
    """Long when the close breaks above the previous ``period``-bar high; exit when it breaks
    below the previous ``exit_period``-bar low (channels of bars t-n..t-1: no look-ahead)."""

    name = "donchian_breakout"
    description = "Donchian channel breakout (turtle-style)"
    params = (
        Param("period", "int", 20, 2, 400, 1, "entry channel (bars)"),
        Param("exit_period", "int", 10, 2, 400, 1, "exit channel (bars)"),
        _SHORT,
    )

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """Breakouts of the channels of the previous bars."""
        entry_hi, entry_lo, _ = bars.ind(donchian, bars.high, bars.low, _i(params, "period"))
        exit_hi, exit_lo, _ = bars.ind(donchian, bars.high, bars.low, _i(params, "exit_period"))
        prev = {
            name: np.r_[np.nan, arr[:-1]]
            for name, arr in (("entry_hi", entry_hi), ("entry_lo", entry_lo),
                              ("exit_hi", exit_hi), ("exit_lo", exit_lo))
        }  # fmt: skip
        close = bars.close
        with np.errstate(invalid="ignore"):
            signals = Signals(
                close > prev["entry_hi"],
                close < prev["exit_lo"],
                (close < prev["entry_lo"]) if params["allow_short"] else None,
                (close > prev["exit_hi"]) if params["allow_short"] else None,
                indicators={
                    "donchian_upper": prev["entry_hi"],
                    "donchian_exit_lower": prev["exit_lo"],
                },
            )
        return signals
