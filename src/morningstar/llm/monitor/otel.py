"""OpenTelemetry view of a call: GenAI semantic-convention attributes and optional OTLP export.

:func:`span_attributes` maps a :class:`~morningstar.llm.monitor.records.CallRecord` to span
attributes named after the OpenTelemetry GenAI semantic conventions (``gen_ai.*``, ``error.type``)
plus ``morningstar.*`` for what the conventions do not cover. An absent value (tokens the provider
did not report, an unknown price) is omitted, never sent as 0.

:class:`OtlpSpanExporter` sends one span per finished call, named ``"{operation} {model}"``, kind
CLIENT, with the call's start and end times, over OTLP/HTTP (protobuf) through the
opentelemetry-sdk's ``BatchSpanProcessor`` (a background thread: exporting never blocks a
caller). The sdk is imported only when an endpoint is configured, so it stays optional
(``pip install 'morningstar[otel]'``). Prompts and responses are not exported; the redacted error
message is the span status description.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from morningstar.errors import ConfigError
from morningstar.llm.monitor.records import CallRecord

__all__ = ["OtlpSpanExporter", "span_attributes", "traces_url"]

logger = logging.getLogger(__name__)


def span_attributes(record: CallRecord) -> dict[str, str | int | float | bool]:
    """The span attributes of a finished call (GenAI semantic conventions).

    Args:
        record: the finished call.

    Returns:
        ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
        ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens`` /
        ``gen_ai.usage.cache_read.input_tokens`` (when reported), ``error.type`` (failed calls),
        and ``morningstar.call_id``, ``morningstar.session_id`` (when set),
        ``morningstar.caller``, ``morningstar.status``, ``morningstar.cache_hit``,
        ``morningstar.retries``, ``morningstar.streamed``, ``morningstar.price_status``,
        ``morningstar.cost_usd`` (when known), ``morningstar.ttft_s`` (streamed),
        ``morningstar.template_id`` / ``morningstar.template_version`` (when set).
    """
    attrs: dict[str, str | int | float | bool] = {
        "gen_ai.operation.name": record.operation,
        "gen_ai.provider.name": record.provider,
        "gen_ai.request.model": record.model,
    }
    if record.input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = record.input_tokens
    if record.output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = record.output_tokens
    if record.cached_input_tokens is not None:
        attrs["gen_ai.usage.cache_read.input_tokens"] = record.cached_input_tokens
    if record.error_type:
        attrs["error.type"] = record.error_type
    attrs["morningstar.call_id"] = record.id
    if record.session_id:
        attrs["morningstar.session_id"] = record.session_id
    attrs["morningstar.caller"] = record.caller
    attrs["morningstar.status"] = record.status
    attrs["morningstar.cache_hit"] = record.cache_hit
    attrs["morningstar.retries"] = record.retries
    attrs["morningstar.streamed"] = record.streamed
    attrs["morningstar.price_status"] = record.price_status
    if record.cost_usd is not None:
        attrs["morningstar.cost_usd"] = record.cost_usd
    if record.ttft_s is not None:
        attrs["morningstar.ttft_s"] = record.ttft_s
    if record.template_id is not None:
        attrs["morningstar.template_id"] = record.template_id
    if record.template_version is not None:
        attrs["morningstar.template_version"] = record.template_version
    return attrs


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for ``endpoint``: ``/v1/traces`` is added when no path is given.

    Raises:
        ConfigError: the endpoint is not an ``http(s)://`` URL.
    """
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(
            f"invalid OTLP endpoint {endpoint!r}",
            where="llm.otlp_endpoint",
            hint="use e.g. http://127.0.0.1:4318 or http://collector:4318/v1/traces",
        )
    path = parts.path if parts.path not in {"", "/"} else "/v1/traces"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _ns(stamp: datetime) -> int:
    return int(stamp.timestamp() * 1_000_000) * 1_000


class OtlpSpanExporter:
    """Export one span per finished call to an OTLP/HTTP endpoint.

    Args:
        endpoint: the collector's URL (``http://host:4318`` or the full ``.../v1/traces``).
        service_name: the ``service.name`` resource attribute.
        timeout_s: the HTTP timeout of one export, in seconds.

    Raises:
        ConfigError: the endpoint is invalid or the opentelemetry packages are not installed.
    """

    def __init__(
        self, endpoint: str, *, service_name: str = "morningstar", timeout_s: float = 10.0
    ) -> None:
        url = traces_url(endpoint)
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace import SpanKind, Status, StatusCode
        except ImportError as exc:
            raise ConfigError(
                "llm.otlp_endpoint is set but the OpenTelemetry packages are not installed",
                where="llm.otlp_endpoint",
                hint="pip install 'morningstar[otel]' or leave llm.otlp_endpoint empty",
            ) from exc
        self.url = url
        self._kind = SpanKind.CLIENT
        self._status = Status
        self._error = StatusCode.ERROR
        self._provider: Any = TracerProvider(
            resource=Resource.create({"service.name": service_name})
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=timeout_s))
        )
        self._tracer = self._provider.get_tracer("morningstar.llm.monitor")

    def export(self, record: CallRecord) -> None:
        """Queue the span of ``record`` for export (never blocks, never raises)."""
        try:
            span = self._tracer.start_span(
                f"{record.operation} {record.model}",
                kind=self._kind,
                attributes=span_attributes(record),
                start_time=_ns(record.started_at),
            )
            if record.error_type:
                span.set_status(self._status(self._error, record.error_message or ""))
            span.end(end_time=_ns(record.finished_at))
        except Exception:
            logger.warning("OTLP span of LLM call %s not exported", record.id, exc_info=True)

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Send the queued spans now; True when done within ``timeout_s``."""
        return bool(self._provider.force_flush(int(timeout_s * 1000)))

    def shutdown(self) -> None:
        """Flush and stop the export thread."""
        self._provider.shutdown()
