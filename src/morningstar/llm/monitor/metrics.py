"""Prometheus metrics of the LLM monitor, on the monitor's own registry.

Names follow the OpenTelemetry GenAI semantic conventions where they exist (dots become
underscores, the unit a suffix), ``morningstar_llm_*`` otherwise:

==============================================  =========  ==========================================
metric                                          type       labels
==============================================  =========  ==========================================
gen_ai_client_operation_duration_seconds        histogram  gen_ai_operation_name, gen_ai_provider_name,
                                                           gen_ai_request_model, error_type
gen_ai_client_token_usage                       histogram  gen_ai_operation_name, gen_ai_provider_name,
                                                           gen_ai_request_model, gen_ai_token_type
morningstar_llm_requests_total                  counter    provider, model, status
morningstar_llm_cost_usd_total                  counter    provider, model
morningstar_llm_active_requests                 gauge      provider, model
morningstar_llm_dropped_records_total           counter    (none)
morningstar_llm_stalls_total                    counter    (none)
==============================================  =========  ==========================================

Labels have bounded cardinality: never a call id, a prompt or a session id. Models, providers and
error types are capped at :data:`MAX_LABEL_VALUES` distinct values each; later ones are counted
under ``other``. ``error_type`` is empty for successful calls. Token histograms observe only
reported counts (absent usage is not observed as 0); the cost counter adds only known costs.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from morningstar.llm.monitor.records import CallRecord

__all__ = [
    "DURATION_BUCKETS",
    "MAX_LABEL_VALUES",
    "OTHER",
    "TOKEN_BUCKETS",
    "LabelCap",
    "MonitorMetrics",
]

#: Bucket bounds of the duration histogram, in seconds (OTel GenAI semconv advice).
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
#: Bucket bounds of the token histogram (OTel GenAI semconv advice).
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
#: Distinct values kept per label (model, provider, error type) before ``other``.
MAX_LABEL_VALUES = 50
OTHER = "other"


class LabelCap:
    """Keep at most ``limit`` distinct label values; map any later value to ``other``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        """Return ``value`` if it is known or there is room, else ``other``."""
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


class _Histogram:
    """Bucket counts and sum of one label set (bounds as Prometheus ``le``: value <= bound)."""

    __slots__ = ("counts", "total")

    def __init__(self, n_buckets: int) -> None:
        self.counts = [0] * (n_buckets + 1)  # the last one is +Inf
        self.total = 0.0

    def cumulative(self, bounds: tuple[str, ...]) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` per bucket; ``bounds`` are the ``le`` labels."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


def _le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The ``le`` label values Prometheus' own histograms give these bounds (+Inf last)."""
    go_float = cast(Callable[[float], str], floatToGoString)
    return tuple(go_float(b) for b in (*bounds, float("inf")))


_DURATION_LE = _le_labels(DURATION_BUCKETS)
_TOKEN_LE = _le_labels(TOKEN_BUCKETS)


class MonitorMetrics:
    """The monitor's Prometheus metrics, registered on ``registry`` as one collector.

    Recording a call costs a few dictionary updates under one lock (no Prometheus client
    object per sample): the families are built from these plain counters when Prometheus
    scrapes (:meth:`collect`). The exposition is what ``Histogram`` / ``Counter`` / ``Gauge``
    of ``prometheus_client`` would produce (buckets with ``le``, ``_sum``, ``_count``,
    ``_total``), without the ``_created`` samples.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.model = LabelCap()
        self.provider = LabelCap()
        self.error_type = LabelCap()
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], int] = {}
        self._duration: dict[tuple[str, str, str, str], _Histogram] = {}
        self._tokens: dict[tuple[str, str, str, str], _Histogram] = {}
        self._requests: dict[tuple[str, str, str], int] = {}
        self._cost: dict[tuple[str, str], float] = {}
        self._dropped = 0
        self._stalls = 0
        registry.register(self)

    # -- recording ----------------------------------------------------------------------------

    def started(self, provider: str, model: str) -> None:
        """A call started."""
        key = (self.provider(provider), self.model(model))
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1

    def finished(self, record: CallRecord) -> None:
        """A call finished: observe its duration, tokens, outcome and cost."""
        provider = self.provider(record.provider)
        model = self.model(record.model)
        op = record.operation
        error_type = self.error_type(record.error_type) if record.error_type else ""
        with self._lock:
            key = (provider, model)
            self._active[key] = self._active.get(key, 0) - 1
            self._observe(self._duration, (op, provider, model, error_type), record.latency_s,
                          DURATION_BUCKETS)  # fmt: skip
            if record.input_tokens is not None:
                self._observe(self._tokens, (op, provider, model, "input"), record.input_tokens,
                              TOKEN_BUCKETS)  # fmt: skip
            if record.output_tokens is not None:
                self._observe(self._tokens, (op, provider, model, "output"),
                              record.output_tokens, TOKEN_BUCKETS)  # fmt: skip
            status = (provider, model, record.status)
            self._requests[status] = self._requests.get(status, 0) + 1
            if record.cost_usd is not None:
                self._cost[key] = self._cost.get(key, 0.0) + max(record.cost_usd, 0.0)

    @staticmethod
    def _observe(
        table: dict[tuple[str, str, str, str], _Histogram],
        key: tuple[str, str, str, str],
        value: float,
        bounds: tuple[float, ...],
    ) -> None:
        hist = table.get(key)
        if hist is None:
            hist = table[key] = _Histogram(len(bounds))
        hist.counts[bisect_left(bounds, value)] += 1
        hist.total += value

    def dropped(self, count: int = 1) -> None:
        """Records not written to the database."""
        with self._lock:
            self._dropped += count

    def stalled(self) -> None:
        """A call was detected as stalled."""
        with self._lock:
            self._stalls += 1

    # -- exposition -----------------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        """No fixed description: the registry then calls :meth:`collect` to learn the names."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families, built from the counters (called by each scrape)."""
        with self._lock:
            duration = {k: (h.cumulative(_DURATION_LE), h.total) for k, h in self._duration.items()}
            tokens = {k: (h.cumulative(_TOKEN_LE), h.total) for k, h in self._tokens.items()}
            requests = dict(self._requests)
            cost = dict(self._cost)
            active = dict(self._active)
            dropped, stalls = self._dropped, self._stalls
        op_labels = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
        histograms = (
            ("gen_ai_client_operation_duration_seconds",
             "Duration of GenAI client operations (LLM calls), in seconds.",
             [*op_labels, "error_type"], duration),
            ("gen_ai_client_token_usage",
             "Tokens used per GenAI client operation (only reported counts).",
             [*op_labels, "gen_ai_token_type"], tokens),
        )  # fmt: skip
        for name, doc, labels, series in histograms:
            family = HistogramMetricFamily(name, doc, labels=labels)
            for key, (buckets, total) in series.items():
                family.add_metric(list(key), buckets, total)
            yield family
        labelled: tuple[tuple[type[Any], str, str, list[str], Mapping[Any, float]], ...] = (
            (CounterMetricFamily, "morningstar_llm_requests", "Finished LLM calls by outcome.",
             ["provider", "model", "status"], requests),
            (CounterMetricFamily, "morningstar_llm_cost_usd",
             "Cost of LLM calls with a known price, in US dollars.", ["provider", "model"], cost),
            (GaugeMetricFamily, "morningstar_llm_active_requests",
             "LLM calls in flight in this process.", ["provider", "model"], active),
        )  # fmt: skip
        for kind, name, doc, labels, values in labelled:
            metric = kind(name, doc, labels=labels)
            for key, value in values.items():
                metric.add_metric(list(key), value)
            yield metric
        yield CounterMetricFamily(
            "morningstar_llm_dropped_records",
            "Call records not written to the database (queue full or database error).",
            value=dropped,
        )
        yield CounterMetricFamily(
            "morningstar_llm_stalls", "Calls detected as stalled (each call counted once).",
            value=stalls,
        )  # fmt: skip
