"""Shared internals of :mod:`morningstar.data.validation`: working arrays, findings, formatting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from morningstar.data.ohlcv import OHLCV_COLUMNS

__all__: list[str] = []

_PRICES = ("open", "high", "low", "close")


def _ts(ns: int | np.integer) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def _iso(ns: int | np.integer) -> str:
    return str(_ts(ns).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _iso_ts(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else str(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _n(count: int, noun: str) -> str:
    """``"1 bar"``, ``"3 bars"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.nonzero(edges == 1)[0]
    ends = np.nonzero(edges == -1)[0]
    return starts, ends - starts


@dataclass
class _Found:
    """A check's raw finding: positions in the working arrays and how to describe one of them.

    ``detail(k)`` describes ``idx[k]``; it is called only for the examples kept (lazy, so that a
    million flagged bars cost no string formatting).
    """

    idx: np.ndarray
    detail: Callable[[int], str]
    summary: str
    order: np.ndarray | None = None  # example order (default: time order)


class _Work:
    """Working arrays, always in time order once the non_monotonic step is done."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.t = np.asarray(cast(pd.DatetimeIndex, frame.index).asi8, dtype=np.int64).copy()
        self.cols = {c: frame[c].to_numpy(dtype=np.float64, copy=True) for c in OHLCV_COLUMNS}
        self.pos = np.arange(len(frame), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: np.ndarray) -> None:
        self.t = self.t[index]
        self.pos = self.pos[index]
        self.cols = {c: v[index] for c, v in self.cols.items()}
