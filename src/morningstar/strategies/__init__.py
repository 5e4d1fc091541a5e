"""Strategies: typed, bounded parameters and vectorised, point-in-time signal functions (no I/O)."""

from __future__ import annotations

from morningstar.strategies.base import (
    Bars,
    Param,
    ParamValue,
    Signals,
    Strategy,
    cross_above,
    cross_below,
    crossings,
)
from morningstar.strategies.registry import (
    BUILTIN_STRATEGIES,
    available_strategies,
    load_strategy,
    resolve_strategy,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "Bars",
    "Param",
    "ParamValue",
    "Signals",
    "Strategy",
    "available_strategies",
    "cross_above",
    "cross_below",
    "crossings",
    "load_strategy",
    "resolve_strategy",
]
