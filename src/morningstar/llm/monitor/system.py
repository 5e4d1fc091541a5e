"""System metrics for the monitor's status: CPU, memory, process RSS and uptime (psutil).

``cpu_percent`` is the machine's CPU use since the previous reading (non-blocking: the first
reading after start compares with the moment :class:`SystemProbe` was created). Readings are
cached for :data:`CACHE_S` seconds so a busy ``/api/status`` does not hammer ``/proc``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

__all__ = ["CACHE_S", "SystemProbe"]

#: Seconds a reading is reused.
CACHE_S = 1.0


class SystemProbe:
    """Read CPU, memory and process figures, at most once per :data:`CACHE_S` seconds.

    Args:
        clock: a monotonic clock in seconds (for the cache).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        psutil.cpu_percent(interval=None)  # prime the non-blocking reading

    def read(self) -> dict[str, Any]:
        """``{cpu_percent, memory_percent, process_rss_mb, uptime}``.

        ``cpu_percent`` and ``memory_percent`` are of the whole machine (0-100),
        ``process_rss_mb`` is this process's resident memory in MiB, ``uptime`` this process's
        age in seconds.
        """
        now = self._clock()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < CACHE_S:
                return dict(self._cached[1])
            try:
                data: dict[str, Any] = {
                    "cpu_percent": float(psutil.cpu_percent(interval=None)),
                    "memory_percent": float(psutil.virtual_memory().percent),
                    "process_rss_mb": self._process.memory_info().rss / 2**20,
                    "uptime": max(0.0, time.time() - self._process.create_time()),
                }
            except psutil.Error:  # pragma: no cover - /proc unreadable
                data = {
                    "cpu_percent": None,
                    "memory_percent": None,
                    "process_rss_mb": None,
                    "uptime": None,
                }
            self._cached = (now, data)
            return dict(data)
