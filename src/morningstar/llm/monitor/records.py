"""The value types of the LLM monitor: a call in flight, its public view, its record, an alert.

* :class:`CallTrace` is the mutable handle :meth:`LLMMonitor.start` returns and the gateway hands
  back to :meth:`~LLMMonitor.first_token` and :meth:`~LLMMonitor.finish`;
* :class:`ActiveCall` is a frozen snapshot of a call in flight (``GET /api/llm/active``);
* :class:`CallRecord` is one finished call, column for column a row of ``llm_calls``;
* :class:`StallAlert` says that a call runs far longer than its model usually takes.

Every text field here is already redacted (see :mod:`morningstar.llm.monitor.capture`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = ["RECORD_COLUMNS", "ActiveCall", "CallRecord", "CallTrace", "StallAlert"]


@dataclass
class CallTrace:
    """One LLM call in flight (mutable: the gateway sets ``retries``).

    Attributes:
        id: the call's id, a uuid4 in hex (32 characters).
        provider: the OpenTelemetry ``gen_ai.provider.name`` (``openai``, ``ollama``, ...).
        model: the requested model.
        caller: who asks (``supervisor``, ``strategist.critic``...): a bounded set of names.
        operation: the GenAI operation name (``chat``).
        template_id, template_version: the prompt template, when there is one.
        streamed: whether the answer is streamed.
        prompt_excerpt: the first 200 characters of the prompt, redacted.
        started_at: wall-clock start, aware UTC.
        t0: the monitor's monotonic clock at start, in seconds.
        ttft_s: time to the first streamed token, in seconds (None until it arrives).
        retries: attempts beyond the first.
    """

    id: str
    provider: str
    model: str
    caller: str
    operation: str
    template_id: str | None
    template_version: int | None
    streamed: bool
    prompt_excerpt: str
    started_at: datetime
    t0: float
    ttft_s: float | None = None
    retries: int = 0
    _prompt: str | None = field(default=None, repr=False, compare=False)
    _stalled: bool = field(default=False, repr=False, compare=False)
    _finished: bool = field(default=False, repr=False, compare=False)

    @property
    def stalled(self) -> bool:
        """Whether a stall alert was raised for this call."""
        return self._stalled

    @property
    def finished(self) -> bool:
        """Whether :meth:`LLMMonitor.finish` was called for this call."""
        return self._finished


@dataclass(frozen=True)
class ActiveCall:
    """A snapshot of one call in flight.

    Attributes:
        elapsed_s: seconds since the call started, on the monitor's monotonic clock.
        stalled: a stall alert was raised for it (see :meth:`LLMMonitor.check_stalls`).
        Other fields: as in :class:`CallTrace`.
    """

    id: str
    provider: str
    model: str
    caller: str
    operation: str
    template_id: str | None
    prompt_excerpt: str
    started_at: datetime
    elapsed_s: float
    streamed: bool
    retries: int
    ttft_s: float | None
    stalled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (``started_at`` as ISO-8601)."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data


@dataclass(frozen=True)
class CallRecord:
    """One finished LLM call: every column of ``llm_calls``.

    Token counts are None when the provider did not report them (never 0); ``cost_usd`` is None
    when the price is unknown (``price_status`` ``unknown``); ``prompt`` / ``response`` are None
    when capture is ``off``. Times: ``started_at`` / ``finished_at`` aware UTC, ``latency_s`` and
    ``ttft_s`` in seconds on the monotonic clock.
    """

    id: str
    session_id: str | None
    provider: str
    model: str
    caller: str
    operation: str
    template_id: str | None
    template_version: int | None
    status: str
    error_type: str | None
    error_message: str | None
    started_at: datetime
    finished_at: datetime
    latency_s: float
    ttft_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cost_usd: float | None
    price_status: str
    cache_hit: bool
    retries: int
    streamed: bool
    cache_key: str | None
    prompt: str | None
    response: str | None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (``status == "ok"``)."""
        return self.status == "ok"

    @property
    def usage_reported(self) -> bool:
        """Whether the provider reported any token count."""
        return self.input_tokens is not None or self.output_tokens is not None

    def to_row(self) -> dict[str, Any]:
        """The column values for an insert into ``llm_calls``."""
        return dict(self.__dict__)  # exactly the fields: a frozen dataclass without slots

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (datetimes as ISO-8601, absent values None)."""
        data = self.to_row()
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


#: The column names of ``llm_calls``, in :class:`CallRecord` order.
RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))


@dataclass(frozen=True)
class StallAlert:
    """A call in flight that runs past ``stall_factor`` times its model's p95 latency.

    Attributes:
        call_id, provider, model, caller, started_at: the call.
        elapsed_s: seconds it has been running when detected.
        p95_s: the model's p95 latency over its recent completed calls, in seconds.
        threshold_s: the limit it crossed (``max(stall_factor * p95_s, 1 s)``).
    """

    call_id: str
    provider: str
    model: str
    caller: str
    started_at: datetime
    elapsed_s: float
    p95_s: float
    threshold_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data
