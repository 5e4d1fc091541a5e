"""Running aggregates of finished LLM calls, per model and per caller.

Counts, tokens and cost are exact running totals over the calls this process finished. Latency
percentiles (p50, p95) are computed over a bounded window: the last :data:`LATENCY_WINDOW`
latencies of each key (linear interpolation between closest ranks, as ``numpy.percentile``). The
average latency is exact (running sum / count).

Stall detection uses a separate window per model holding only the calls that reached the
provider: cache hits and calls that made no request (``budget``, ``cache_miss``) would otherwise
pull the p95 towards zero.

Not thread-safe on its own: :class:`~morningstar.llm.monitor.LLMMonitor` calls it under its lock.

With a database, the monitor shows the calls of every process instead: :class:`TableTotals`
(from one ``GROUP BY status`` query over ``llm_calls``) and :func:`window_stats` (the same stats
as :class:`KeyStats`, computed with numpy over the :data:`DB_WINDOW` newest rows).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from morningstar.llm.monitor.records import CallRecord

__all__ = [
    "DB_WINDOW",
    "LATENCY_WINDOW",
    "NO_REQUEST_STATUSES",
    "Aggregates",
    "KeyStats",
    "TableTotals",
    "percentile",
    "window_stats",
]

#: Latencies kept per key for the percentiles.
LATENCY_WINDOW = 10_000
#: Statuses of calls that never reached the provider (excluded from the stall baseline).
NO_REQUEST_STATUSES = frozenset({"budget", "cache_miss"})
#: Newest calls of ``llm_calls`` the per-model / per-caller aggregates are computed over.
DB_WINDOW = 10_000


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


@dataclass(frozen=True)
class TableTotals:
    """Totals over every call of ``llm_calls`` (all processes).

    Attributes:
        count: calls.
        ok: calls with status ``ok``.
        latency_sum: sum of their latencies, seconds.
        cost_usd: sum of the known costs, USD.
        by_status: calls per status present in the table.
    """

    count: int
    ok: int
    latency_sum: float
    cost_usd: float
    by_status: dict[str, int]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, int, float, float | None]]) -> TableTotals:
        """From :func:`~morningstar.llm.monitor.recorder.query_totals` rows."""
        by_status = {status: count for status, count, _, _ in rows}
        return cls(
            count=sum(by_status.values()),
            ok=by_status.get("ok", 0),
            latency_sum=math.fsum(latency for _, _, latency, _ in rows),
            cost_usd=math.fsum(cost for _, _, _, cost in rows if cost is not None),
            by_status=by_status,
        )


def window_stats(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Per-model and per-caller stats of ``rows`` (:data:`RECENT_COLUMNS` order), with numpy.

    The stats are those of :meth:`KeyStats.to_dict`, over these rows only (percentiles over all
    of a key's rows, linear interpolation as ``numpy.percentile``).

    Returns:
        ``{"by_model": {model: stats}, "by_caller": {caller: stats}}``, keys sorted.
    """
    n = len(rows)
    if n == 0:
        return {"by_model": {}, "by_caller": {}}
    models, callers, statuses, latencies, inputs, outputs, costs, hits = zip(*rows, strict=True)
    columns = {
        "latency": np.fromiter(latencies, np.float64, n),
        "ok": np.fromiter((s == "ok" for s in statuses), bool, n),
        "reported": np.fromiter(
            (i is not None or o is not None for i, o in zip(inputs, outputs, strict=True)), bool, n
        ),
        "input": np.fromiter((v or 0 for v in inputs), np.float64, n),
        "output": np.fromiter((v or 0 for v in outputs), np.float64, n),
        "priced": np.fromiter((c is not None for c in costs), bool, n),
        "cost": np.fromiter((c or 0.0 for c in costs), np.float64, n),
        "hit": np.fromiter((bool(h) for h in hits), bool, n),
    }
    return {"by_model": _grouped(models, columns), "by_caller": _grouped(callers, columns)}


def _grouped(keys: Sequence[str], col: dict[str, Any]) -> dict[str, dict[str, Any]]:
    index: dict[str, int] = {}
    group = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.intp, len(keys))
    m = len(index)

    def total(weights: Any) -> Any:
        return np.bincount(group, weights=weights, minlength=m)

    def count(mask: Any) -> Any:
        return np.bincount(group[mask], minlength=m)

    counts = np.bincount(group, minlength=m)
    ok = count(col["ok"])
    latency_sum = total(col["latency"])
    input_tokens = total(col["input"])  # unreported rows hold 0
    output_tokens = total(col["output"])
    absent = count(~col["reported"])
    cost = total(col["cost"])
    unknown = count(~col["priced"])
    hits = count(col["hit"])
    order = np.lexsort((col["latency"], group))  # by key, then latency
    ends = np.cumsum(counts)
    ordered = col["latency"][order]
    stats: dict[str, dict[str, Any]] = {}
    for key, g in index.items():
        c = int(counts[g])
        p50, p95 = np.percentile(ordered[ends[g] - c : ends[g]], [50, 95])
        stats[key] = {
            "count": c,
            "ok": int(ok[g]),
            "failed": c - int(ok[g]),
            "success_rate": int(ok[g]) / c,
            "avg_latency_s": float(latency_sum[g]) / c,
            "p50_latency_s": float(p50),
            "p95_latency_s": float(p95),
            "input_tokens": int(input_tokens[g]),
            "output_tokens": int(output_tokens[g]),
            "calls_usage_absent": int(absent[g]),
            "cost_usd": float(cost[g]),
            "calls_price_unknown": int(unknown[g]),
            "cache_hits": int(hits[g]),
        }
    return {k: stats[k] for k in sorted(stats)}
