"""Pure domain code: types, timeframes, indicators, engine, metrics. No I/O, no clock, no env."""

from __future__ import annotations

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import OHLCV_COLUMNS, Pair, parse_pair

__all__ = ["OHLCV_COLUMNS", "Pair", "Timeframe", "parse_pair", "parse_timeframe"]
