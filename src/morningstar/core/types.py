"""Small value types shared by every layer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["OHLCV_COLUMNS", "Bar", "Pair", "parse_pair"]

#: Column order of the OHLCV contract; the index is the bar OPEN time in UTC.
OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

_PAIR = re.compile(r"^([A-Za-z0-9.]+)[/_\-]([A-Za-z0-9.]+)(?::([A-Za-z0-9.]+))?$")


@dataclass(frozen=True, order=True)
class Pair:
    """A market ``BASE/QUOTE`` (``BTC/USDT``); ``settle`` is set for derivatives (``BTC/USDT:USDT``)."""

    base: str
    quote: str
    settle: str | None = None

    def __str__(self) -> str:
        text = f"{self.base}/{self.quote}"
        return f"{text}:{self.settle}" if self.settle else text

    @property
    def file_stem(self) -> str:
        """File-name form: ``BTC_USDT`` (``BTC_USDT_USDT`` for a settled derivative)."""
        stem = f"{self.base}_{self.quote}"
        return f"{stem}_{self.settle}" if self.settle else stem


def parse_pair(text: str) -> Pair:
    """Parse ``BTC/USDT``, ``btc_usdt``, ``BTC-USDT`` or ``BTC/USDT:USDT`` into a :class:`Pair`.

    Raises:
        ValueError: the text is not BASE/QUOTE.
    """
    match = _PAIR.match(text.strip())
    if match is None:
        raise ValueError(f"unknown pair {text!r}: write it as BASE/QUOTE, e.g. BTC/USDT or EUR/USD")
    base, quote, settle = match.groups()
    return Pair(base.upper(), quote.upper(), settle.upper() if settle else None)


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar of one market, as a feed delivers it to the workflow.

    Attributes:
        ts: the bar's OPEN time (aware UTC), as in the OHLCV contract.
        open, high, low, close: prices, quote currency.
        volume: base volume.
        close_ts: the bar's CLOSE time (``ts`` + the timeframe): when it became known.
    """

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_ts: datetime
