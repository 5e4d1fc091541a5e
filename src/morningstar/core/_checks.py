"""Range checks of the decision core's parameter dataclasses (one message format for all)."""

from __future__ import annotations

import math

__all__ = ["check_range"]


def check_range(
    owner: str, name: str, value: float, low: float, high: float, *, low_open: bool = False
) -> None:
    """Raise ``ValueError("<owner>.<name> must be in [low, high], got value")`` unless ``value``
    is a finite real number (not a bool) in the range (``(low`` when ``low_open``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{owner}.{name} must be in {bracket}{low}, {high}], got {value!r}")
