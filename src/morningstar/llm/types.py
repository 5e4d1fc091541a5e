"""The value types of the LLM gateway: requests, replies, usage, and the provider port.

Every LLM call is an :class:`LLMRequest` handed to :class:`morningstar.llm.gateway.Gateway`;
the gateway picks the output mode from the model's capabilities, calls an :class:`LLMProvider`
(OpenAI-compatible, Ollama or the offline rule-based analyst) with a :class:`ProviderCall`, and
returns an :class:`LLMResult`. Providers translate their own errors into the ``LLM*`` errors of
:mod:`morningstar.errors` at their boundary.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

__all__ = [
    "LLMProvider",
    "LLMRequest",
    "LLMResult",
    "Message",
    "OutputMode",
    "ProviderCall",
    "ProviderReply",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        """``{"role": ..., "content": ...}`` as both chat protocols take it."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``None`` means the provider did not report it ("absent"), never 0.

    ``cached_input_tokens`` is the part of ``input_tokens`` served from the provider's prompt
    cache (priced at the cached-input rate).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None

    @property
    def reported(self) -> bool:
        """Whether the provider reported any token count."""
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        """Input + output tokens, or None when neither was reported."""
        if not self.reported:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_dict(self) -> dict[str, int | None]:
        """A JSON-friendly mapping (absent counts stay None)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        """The inverse of :meth:`to_dict` (missing keys are absent)."""
        data = data or {}
        return cls(
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
            cached_input_tokens=data.get("cached_input_tokens"),
        )


class OutputMode(enum.Enum):
    """How a structured answer is asked for, strongest first.

    * ``JSON_SCHEMA``: the provider constrains decoding to the schema (OpenAI
      ``response_format={"type": "json_schema", "strict": true}``; Ollama ``format=<schema>``).
    * ``TOOL``: the schema is a forced tool call's parameters.
    * ``JSON_OBJECT``: the provider guarantees some JSON object (``{"type": "json_object"}`` /
      Ollama ``format="json"``); the schema is described in the prompt.
    * ``PROMPT``: plain text; the schema is described in the prompt and the JSON extracted.
    * ``TEXT``: no schema, free text.
    """

    JSON_SCHEMA = "json_schema"
    TOOL = "tool"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"
    TEXT = "text"


@dataclass(frozen=True)
class LLMRequest:
    """One LLM request, built by a caller from the inputs it passes (point in time).

    Args:
        messages: the chat messages (system first, if any).
        schema: the pydantic model of the structured answer; None for free text.
        template_id, template_version: the prompt template the messages came from
            (``adhoc``/0 for a manual prompt). Part of the replay-cache key.
        inputs: the values the template was rendered from. The offline rule-based analyst
            answers from these numbers; they are not sent to remote providers separately.
        caller: who asks (``supervisor``, ``strategist.critic``, ``manual``...): budgets and
            the monitor's per-caller aggregates use it. Bounded set of names, never an id.
        model: the model to use; None = the configured default.
        temperature: sampling temperature (0 = as deterministic as the provider allows).
        seed: sampling seed, for providers that take one.
        max_tokens: cap on the answer's tokens; None = the provider's default.
        stream: stream the answer (time to first token is measured).
        timeout_s: this call's timeout; None = the configured one.
    """

    messages: tuple[Message, ...]
    schema: type[BaseModel] | None = None
    template_id: str = "adhoc"
    template_version: int = 0
    inputs: Mapping[str, Any] = field(default_factory=dict)
    caller: str = "manual"
    model: str | None = None
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    stream: bool = False
    timeout_s: float | None = None

    def prompt_text(self) -> str:
        """The messages as one text (``role: content`` lines), for excerpts and capture."""
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages)

    def resolved(self, messages: tuple[Message, ...], model: str, seed: int | None) -> LLMRequest:
        """This request with the messages, model and seed the gateway sends (self if equal).

        Same result as :func:`dataclasses.replace`, a tenth of its cost (a shallow copy of
        the fields, already valid: nothing is re-checked).
        """
        if messages is self.messages and model == self.model and seed == self.seed:
            return self
        copy = object.__new__(LLMRequest)
        fields_ = copy.__dict__
        fields_.update(self.__dict__)
        fields_["messages"], fields_["model"], fields_["seed"] = messages, model, seed
        return copy


@dataclass(frozen=True)
class ProviderCall:
    """What the gateway asks a provider to do for one attempt of a request.

    Args:
        request: the caller's request.
        model: the resolved model name.
        mode: the output mode picked from the model's capabilities.
        json_schema: the JSON schema of ``request.schema`` (strict form), or None.
        timeout_s: the timeout of this attempt, in seconds.
        on_first_token: called once when the first streamed token arrives (monitor's TTFT).
        on_partial_usage: called with the usage known so far when a stream is cut short
            (cancellation, timeout), so partial usage is counted.
    """

    request: LLMRequest
    model: str
    mode: OutputMode
    json_schema: dict[str, Any] | None
    timeout_s: float
    on_first_token: Callable[[], None] | None = None
    on_partial_usage: Callable[[Usage], None] | None = None


@dataclass(frozen=True)
class ProviderReply:
    """A provider's answer to one attempt.

    Args:
        text: the answer text (for ``TOOL`` mode: the tool call's JSON arguments).
        usage: reported tokens (absent fields None).
        finish_reason: ``stop``, ``length`` (truncated), ``tool_calls``..., as reported.
        model: the model name the provider reports (may differ from the requested alias).
    """

    text: str
    usage: Usage
    finish_reason: str | None
    model: str


@runtime_checkable
class LLMProvider(Protocol):
    """The port every LLM provider implements (one method and two names).

    ``name`` is the OpenTelemetry ``gen_ai.provider.name`` (``openai``, ``ollama``,
    ``offline``); ``local`` says whether calls cost nothing (local models are priced at 0
    explicitly, remote ones from the price table).
    """

    name: str
    local: bool

    def complete(self, call: ProviderCall) -> ProviderReply:
        """Make one attempt; raise the ``LLM*`` errors of :mod:`morningstar.errors` on failure."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class LLMResult:
    """What the gateway returns for a successful call.

    Args:
        value: the validated pydantic object (``schema`` requests), or None for free text.
        text: the raw answer text.
        usage: tokens (absent fields None).
        cost_usd: the call's cost; None = price unknown (never 0 for an unknown price); 0.0
            for local models and cache hits.
        provider, model: who answered.
        call_id: the monitor's id of this call.
        cache_hit: answered from the replay cache.
        retries: attempts beyond the first.
        latency_s: wall time of the call as the caller saw it.
        rule_based: the answer came from the offline rule-based analyst, not an LLM.
        finish_reason: as the provider reported it (``length``: a free-text answer was cut
            at ``max_tokens``; a structured one would have raised instead). None from the cache.
    """

    value: BaseModel | None
    text: str
    usage: Usage
    cost_usd: float | None
    provider: str
    model: str
    call_id: str
    cache_hit: bool
    retries: int
    latency_s: float
    rule_based: bool = False
    finish_reason: str | None = None
