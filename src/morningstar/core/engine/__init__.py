"""Single-asset backtest engine: one numba kernel over arrays, a thin typed layer around it.

Semantics (fill timing, order within a bar, stops, costs, sizing, end of data) and how they map
to vectorbt and backtesting.py are written down in ``docs/engine.md``.
"""

from __future__ import annotations

from morningstar.core.engine.backtest import simulate
from morningstar.core.engine.result import EngineFrames, EngineResult, to_pandas
from morningstar.core.engine.types import (
    EXIT_REASONS,
    TRADE_DTYPE,
    Costs,
    EngineInputError,
    EngineOptions,
    ExitReason,
    FillTiming,
    FractionSizing,
    IntrabarPolicy,
    NotionalSizing,
    OrderLimits,
    Sizing,
    Stops,
    VolTargetSizing,
)

__all__ = [
    "EXIT_REASONS",
    "TRADE_DTYPE",
    "Costs",
    "EngineFrames",
    "EngineInputError",
    "EngineOptions",
    "EngineResult",
    "ExitReason",
    "FillTiming",
    "FractionSizing",
    "IntrabarPolicy",
    "NotionalSizing",
    "OrderLimits",
    "Sizing",
    "Stops",
    "VolTargetSizing",
    "simulate",
    "to_pandas",
]
