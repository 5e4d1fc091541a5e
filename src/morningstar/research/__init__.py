"""Research API: backtest (and, next, sweeps and walk-forward) over the engine and strategies."""

from __future__ import annotations

from morningstar.research.backtest import Result, backtest, resolve_strategy
from morningstar.research.sweep import SweepResult, parameter_grid, sweep
from morningstar.research.walkforward import (
    CVFold,
    CVResult,
    WalkForwardFold,
    WalkForwardResult,
    purged_cv,
    walk_forward,
)

__all__ = [
    "CVFold",
    "CVResult",
    "Result",
    "SweepResult",
    "WalkForwardFold",
    "WalkForwardResult",
    "backtest",
    "parameter_grid",
    "purged_cv",
    "resolve_strategy",
    "sweep",
    "walk_forward",
]
