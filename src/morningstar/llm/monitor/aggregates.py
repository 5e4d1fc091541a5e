"""Running aggregates of finished LLM calls, per model and per caller.

Counts, tokens and cost are exact running totals over the calls this process finished. Latency
percentiles (p50, p95) are computed over a bounded window: the last :data:`LATENCY_WINDOW`
latencies of each key (linear interpolation between closest ranks, as ``numpy.percentile``). The
average latency is exact (running sum / count).

Stall detection uses a separate window per model holding only the calls that reached the
provider: cache hits and calls that made no request (``budget``, ``cache_miss``) would otherwise
pull the p95 towards zero.

Not thread-safe on its own: :class:`~morningstar.llm.monitor.LLMMonitor` calls it under its lock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from morningstar.llm.monitor.records import CallRecord

__all__ = ["LATENCY_WINDOW", "NO_REQUEST_STATUSES", "Aggregates", "KeyStats", "percentile"]

#: Latencies kept per key for the percentiles.
LATENCY_WINDOW = 10_000
#: Statuses of calls that never reached the provider (excluded from the stall baseline).
NO_REQUEST_STATUSES = frozenset({"budget", "cache_miss"})


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values`` with linear interpolation; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    return ordered[lo] + (ordered[hi] - ordered[lo]) * frac


@dataclass
class KeyStats:
    """Running totals of one model or one caller."""

    count: int = 0
    ok: int = 0
    latency_sum: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    calls_usage_absent: int = 0
    cost_usd: float = 0.0
    calls_price_unknown: int = 0
    cache_hits: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def add(self, record: CallRecord) -> None:
        """Count one finished call."""
        self.count += 1
        self.ok += record.ok
        self.latency_sum += record.latency_s
        self.latencies.append(record.latency_s)
        if record.usage_reported:
            self.input_tokens += record.input_tokens or 0
            self.output_tokens += record.output_tokens or 0
        else:
            self.calls_usage_absent += 1
        if record.cost_usd is None:
            self.calls_price_unknown += 1
        else:
            self.cost_usd += record.cost_usd
        self.cache_hits += record.cache_hit

    def to_dict(self) -> dict[str, Any]:
        """The stats as the API shows them (latencies in seconds, None when no call)."""
        return {
            "count": self.count,
            "ok": self.ok,
            "failed": self.count - self.ok,
            "success_rate": self.ok / self.count if self.count else None,
            "avg_latency_s": self.latency_sum / self.count if self.count else None,
            "p50_latency_s": percentile(self.latencies, 50),
            "p95_latency_s": percentile(self.latencies, 95),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "calls_usage_absent": self.calls_usage_absent,
            "cost_usd": self.cost_usd,
            "calls_price_unknown": self.calls_price_unknown,
            "cache_hits": self.cache_hits,
        }


class Aggregates:
    """Per-model and per-caller :class:`KeyStats`, plus process totals and the stall baseline."""

    def __init__(self) -> None:
        self.by_model: dict[str, KeyStats] = {}
        self.by_caller: dict[str, KeyStats] = {}
        self.total = KeyStats(latencies=deque(maxlen=1))
        self.by_status: dict[str, int] = {}
        self._provider_latencies: dict[str, deque[float]] = {}
        self._baseline_cache: dict[str, tuple[int, float]] = {}
        self._provider_counts: dict[str, int] = {}

    def add(self, record: CallRecord) -> None:
        """Count one finished call under its model, its caller and the totals."""
        self.by_model.setdefault(record.model, KeyStats()).add(record)
        self.by_caller.setdefault(record.caller, KeyStats()).add(record)
        self.total.add(record)
        self.by_status[record.status] = self.by_status.get(record.status, 0) + 1
        if not record.cache_hit and record.status not in NO_REQUEST_STATUSES:
            window = self._provider_latencies.setdefault(record.model, deque(maxlen=LATENCY_WINDOW))
            window.append(record.latency_s)
            self._provider_counts[record.model] = self._provider_counts.get(record.model, 0) + 1

    def stall_baseline(self, model: str, min_calls: int) -> float | None:
        """The p95 latency of ``model``'s calls that reached the provider, in seconds.

        Returns None until the model has ``min_calls`` such calls. Cached until the next call of
        that model finishes (the stall timer asks every second).
        """
        seen = self._provider_counts.get(model, 0)
        if seen < min_calls:
            return None
        cached = self._baseline_cache.get(model)
        if cached is not None and cached[0] == seen:
            return cached[1]
        value = percentile(self._provider_latencies[model], 95)
        if value is None:  # pragma: no cover - seen >= min_calls >= 1
            return None
        self._baseline_cache[model] = (seen, value)
        return value

    def to_dict(self) -> dict[str, Any]:
        """``{"by_model": {model: stats}, "by_caller": {caller: stats}}``, keys sorted."""
        return {
            "by_model": {k: self.by_model[k].to_dict() for k in sorted(self.by_model)},
            "by_caller": {k: self.by_caller[k].to_dict() for k in sorted(self.by_caller)},
        }
