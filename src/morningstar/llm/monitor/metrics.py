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
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


class MonitorMetrics:
    """The monitor's Prometheus collectors, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.model = LabelCap()
        self.provider = LabelCap()
        self.error_type = LabelCap()
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of GenAI client operations (LLM calls), in seconds.",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per GenAI client operation (only reported counts).",
            [
                "gen_ai_operation_name",
                "gen_ai_provider_name",
                "gen_ai_request_model",
                "gen_ai_token_type",
            ],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "morningstar_llm_requests",
            "Finished LLM calls by outcome.",
            ["provider", "model", "status"],
            registry=registry,
        )
        self.cost = Counter(
            "morningstar_llm_cost_usd",
            "Cost of LLM calls with a known price, in US dollars.",
            ["provider", "model"],
            registry=registry,
        )
        self.active = Gauge(
            "morningstar_llm_active_requests",
            "LLM calls in flight in this process.",
            ["provider", "model"],
            registry=registry,
        )
        self.dropped = Counter(
            "morningstar_llm_dropped_records",
            "Call records not written to the database (queue full or database error).",
            registry=registry,
        )
        self._children: dict[tuple[object, ...], Any] = {}
        self.stalls = Counter(
            "morningstar_llm_stalls",
            "Calls detected as stalled (each call counted once).",
            registry=registry,
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (labels() costs a lock
        and validation per call; the label sets are bounded, so is this dict)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def started(self, provider: str, model: str) -> None:
        """A call started."""
        self._child(self.active, self.provider(provider), self.model(model)).inc()

    def finished(self, record: CallRecord) -> None:
        """A call finished: observe its duration, tokens, outcome and cost."""
        provider = self.provider(record.provider)
        model = self.model(record.model)
        op = record.operation
        self._child(self.active, provider, model).dec()
        error_type = self.error_type(record.error_type) if record.error_type else ""
        self._child(self.duration, op, provider, model, error_type).observe(record.latency_s)
        if record.input_tokens is not None:
            self._child(self.tokens, op, provider, model, "input").observe(record.input_tokens)
        if record.output_tokens is not None:
            self._child(self.tokens, op, provider, model, "output").observe(record.output_tokens)
        self._child(self.requests, provider, model, record.status).inc()
        if record.cost_usd is not None:
            self._child(self.cost, provider, model).inc(max(record.cost_usd, 0.0))
