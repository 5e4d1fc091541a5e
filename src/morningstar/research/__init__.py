"""Research API: backtests (one asset, or a portfolio sharing one cash balance), sweeps and
walk-forward over the engine and strategies."""

from __future__ import annotations

from morningstar.research.backtest import Result, backtest, resolve_strategy
from morningstar.research.portfolio import PortfolioResult, backtest_portfolio
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
    "PortfolioResult",
    "Result",
    "SweepResult",
    "WalkForwardFold",
    "WalkForwardResult",
    "backtest",
    "backtest_portfolio",
    "parameter_grid",
    "purged_cv",
    "resolve_strategy",
    "sweep",
    "walk_forward",
]
