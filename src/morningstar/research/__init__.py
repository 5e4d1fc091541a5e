"""Research API: backtest (and, next, sweeps and walk-forward) over the engine and strategies."""

from __future__ import annotations

from morningstar.research.backtest import Result, backtest, resolve_strategy

__all__ = ["Result", "backtest", "resolve_strategy"]
