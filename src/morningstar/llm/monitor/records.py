"""The value types of the LLM monitor: a call in flight, its public view, its record, an alert.

* :class:`CallTrace` is the mutable handle :meth:`LLMMonitor.start` returns and the gateway hands
  back to :meth:`~LLMMonitor.first_token` and :meth:`~LLMMonitor.finish`;
* :class:`ActiveCall` is a frozen snapshot of a call in flight (``GET /api/llm/active``);
* :class:`CallRecord` is one finished call, column for column a row of ``llm_calls``;
* :class:`StallAlert` says that a call runs far longer than its model usually takes.

Every text these types return is redacted (see :mod:`morningstar.llm.monitor.capture`). The
redaction of a call's prompt excerpt, captured prompt and captured response is done on first
read, not by the caller of the LLM: the monitor's writer thread reads them when it stores the
record, the API when it shows it (:class:`RecordTexts`), so it costs the call nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from morningstar.llm.monitor.capture import CaptureMode, capture_text, excerpt

__all__ = ["RECORD_COLUMNS", "ActiveCall", "CallRecord", "CallTrace", "RecordTexts", "StallAlert"]


class RecordTexts:
    """The captured prompt and response of one call, redacted on first read.

    Holds the raw texts until then (in memory only), and drops them once redacted. Safe to read
    from several threads: each reader gets the same redacted pair (the pair is published before
    the raw texts are dropped).

    Args:
        prompt, response: the texts as sent and received (None: none).
        capture: the capture mode applied on first read; None = the texts are already captured
            and redacted (records read back from the database).
    """

    __slots__ = ("_done", "_raw")

    def __init__(
        self, prompt: str | None, response: str | None, capture: CaptureMode | None
    ) -> None:
        if capture is None or (prompt is None and response is None):
            self._done: tuple[str | None, str | None] | None = (prompt, response)
            self._raw: tuple[str | None, str | None, CaptureMode] | None = None
        else:
            self._done = None
            self._raw = (prompt, response, capture)

    def get(self) -> tuple[str | None, str | None]:
        """(prompt, response), captured and redacted."""
        raw = self._raw  # read before _done: a concurrent reader publishes _done first
        done = self._done
        if done is None:
            assert raw is not None  # _raw is only dropped after _done is set
            prompt, response, capture = raw
            done = (capture_text(prompt, capture), capture_text(response, capture))
            self._done = done
            self._raw = None
        return done


NO_TEXT = RecordTexts(None, None, None)


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
    started_at: datetime
    t0: float
    ttft_s: float | None = None
    retries: int = 0
    _prompt: str = field(default="", repr=False, compare=False)  # raw: never shown as is
    _excerpt: str | None = field(default=None, repr=False, compare=False)
    _stalled: bool = field(default=False, repr=False, compare=False)
    _finished: bool = field(default=False, repr=False, compare=False)

    @property
    def prompt_excerpt(self) -> str:
        """The first 200 characters of the prompt, redacted (computed on first read)."""
        text = self._excerpt
        if text is None:
            text = self._excerpt = excerpt(self._prompt)
        return text

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

    ``prompt`` and ``response`` are properties: the texts are redacted on first read
    (:class:`RecordTexts`); ``to_row`` / ``to_dict`` hold them like the other columns.
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
    texts: RecordTexts = field(default=NO_TEXT, repr=False, compare=False)

    @classmethod
    def from_row(cls, values: Sequence[Any]) -> CallRecord:
        """A record from column values in :data:`RECORD_COLUMNS` order (texts already stored)."""
        record = object.__new__(cls)  # the columns are the stored ones: no __init__ needed
        fields_ = record.__dict__
        fields_.update(zip(_FIELD_NAMES, values, strict=False))
        fields_["texts"] = RecordTexts(values[-2], values[-1], None)
        return record

    @property
    def prompt(self) -> str | None:
        """The captured prompt, redacted (None when capture is ``off``)."""
        return self.texts.get()[0]

    @property
    def response(self) -> str | None:
        """The captured response, redacted (None when capture is ``off`` or no answer)."""
        return self.texts.get()[1]

    def without_text(self) -> CallRecord:
        """The same record without its prompt and response."""
        return replace(self, texts=NO_TEXT)

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (``status == "ok"``)."""
        return self.status == "ok"

    @property
    def usage_reported(self) -> bool:
        """Whether the provider reported any token count."""
        return self.input_tokens is not None or self.output_tokens is not None

    def to_row(self) -> dict[str, Any]:
        """The column values for an insert into ``llm_calls`` (redacts the texts if not yet)."""
        row = dict(self.__dict__)  # the fields: a frozen dataclass without slots
        del row["texts"]
        row["prompt"], row["response"] = self.texts.get()
        return row

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (datetimes as ISO-8601, absent values None)."""
        data = self.to_row()
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(CallRecord) if f.name != "texts")

#: The column names of ``llm_calls``, in :class:`CallRecord` order.
RECORD_COLUMNS: tuple[str, ...] = (
    *(f.name for f in fields(CallRecord) if f.name != "texts"),
    "prompt",
    "response",
)


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
