"""Bar timeframes (``1m``, ``5m``, ``1h``, ``4h``, ``1d``, ``1w``) as exact durations."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Timeframe", "parse_timeframe"]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdwSMHDW])\s*$")
# ccxt uses "M" for months; we support fixed-length units only.


@dataclass(frozen=True, order=True)
class Timeframe:
    """A bar duration. ``str(tf)`` is the canonical form (``"5m"``, ``"1h"``, ``"1d"``)."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"timeframe must be positive, got {self.seconds} seconds")

    @property
    def ms(self) -> int:
        """Duration in milliseconds."""
        return self.seconds * 1000

    @property
    def ns(self) -> int:
        """Duration in nanoseconds."""
        return self.seconds * 1_000_000_000

    @property
    def pandas_freq(self) -> str:
        """The pandas offset alias of this duration (``"5min"``, ``"1h"``, ``"1D"``)."""
        for unit, alias in (("w", "W"), ("d", "D"), ("h", "h"), ("m", "min"), ("s", "s")):
            size = _UNIT_SECONDS[unit]
            if self.seconds % size == 0 and unit != "w":
                return f"{self.seconds // size}{alias}"
        return f"{self.seconds}s"

    def __str__(self) -> str:
        for unit in ("w", "d", "h", "m", "s"):
            size = _UNIT_SECONDS[unit]
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        raise AssertionError("unreachable: every duration is a whole number of seconds")

    def bars_per_year(self, trading_days: float = 365.0, hours_per_day: float = 24.0) -> float:
        """Bars in one year of the given calendar (24/7 crypto by default)."""
        if self.seconds >= 86_400:
            return trading_days * 86_400 / self.seconds
        return trading_days * hours_per_day * 3600 / self.seconds


def parse_timeframe(text: str) -> Timeframe:
    """Parse ``"5m"``, ``"1h"``, ``"1D"``, ``"1w"`` into a :class:`Timeframe`.

    Raises:
        ValueError: the text is not ``<number><unit>`` with unit in s, m, h, d, w.
    """
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"unknown timeframe {text!r}: use <number><unit> with unit s, m, h, d or w "
            "(e.g. 1m, 5m, 1h, 4h, 1d)"
        )
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        raise ValueError(f"unknown timeframe {text!r}: months are not fixed-length; use 1w or 1d")
    return Timeframe(count * _UNIT_SECONDS[unit.lower()])
