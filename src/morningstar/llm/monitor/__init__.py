"""The LLM monitor: tracing, history, aggregates, stall alerts, Prometheus, OTLP, ``llm_calls``.

See ``docs/llm_monitor.md``. The gateway drives it::

    trace = monitor.start(provider="openai", model="gpt-4o-mini", caller="supervisor",
                          prompt=request.prompt_text())
    ...                                   # monitor.first_token(trace) when streaming
    monitor.finish(trace, status="ok", usage=usage, cost_usd=0.0012, price_status="priced")
"""

from morningstar.llm.monitor.capture import capture_text, excerpt, redact_text
from morningstar.llm.monitor.monitor import LLMMonitor
from morningstar.llm.monitor.otel import span_attributes
from morningstar.llm.monitor.recorder import query_history
from morningstar.llm.monitor.records import ActiveCall, CallRecord, CallTrace, StallAlert

__all__ = [
    "ActiveCall",
    "CallRecord",
    "CallTrace",
    "LLMMonitor",
    "StallAlert",
    "capture_text",
    "excerpt",
    "query_history",
    "redact_text",
    "span_attributes",
]
