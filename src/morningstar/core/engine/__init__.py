"""Backtest engine: numba kernels over arrays, a thin typed layer around them.

``simulate`` backtests one asset (the fast path of sweeps); ``simulate_portfolio`` several assets
sharing one cash balance, with the same per-asset rules. Semantics (fill timing, order within a
bar, stops, costs, sizing, end of data, the portfolio's shared cash) and how they map to
vectorbt and backtesting.py are written down in ``docs/engine.md``.
"""

from __future__ import annotations

from morningstar.core.engine.backtest import simulate
from morningstar.core.engine.portfolio import simulate_portfolio
from morningstar.core.engine.result import (
    EngineFrames,
    EngineResult,
    PortfolioEngineResult,
    PortfolioFrames,
    to_pandas,
)
from morningstar.core.engine.types import (
    EXIT_REASONS,
    PORTFOLIO_TRADE_DTYPE,
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
    "PORTFOLIO_TRADE_DTYPE",
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
    "PortfolioEngineResult",
    "PortfolioFrames",
    "Sizing",
    "Stops",
    "VolTargetSizing",
    "simulate",
    "simulate_portfolio",
    "to_pandas",
]
