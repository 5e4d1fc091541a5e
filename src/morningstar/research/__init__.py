"""Research API: backtest (and, next, sweeps and walk-forward) over the engine and strategies."""

from __future__ import annotations

from morningstar.research.backtest import Result, backtest, resolve_strategy
from morningstar.research.sweep import SweepResult, parameter_grid, sweep

__all__ = ["Result", "SweepResult", "backtest", "parameter_grid", "resolve_strategy", "sweep"]
