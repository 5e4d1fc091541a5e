"""The OpenAI provider: OpenAI's API or any OpenAI-compatible server (``/v1/chat/completions``).

One attempt per :meth:`OpenAICompatProvider.complete` (the SDK's own retries are off: the
gateway retries). Output modes map to the chat-completions request as follows:

* ``JSON_SCHEMA``: ``response_format={"type": "json_schema", "json_schema": {"name": <schema
  title>, "schema": <schema>, "strict": true}}``;
* ``TOOL``: one function tool whose ``parameters`` are the schema, forced with ``tool_choice``;
  the answer text is the tool call's ``arguments``;
* ``JSON_OBJECT``: ``response_format={"type": "json_object"}``;
* ``PROMPT`` / ``TEXT``: nothing extra.

Reasoning models (``o1*``, ``o3*``, ``o4*``, ``gpt-5*``) refuse ``temperature`` and
``max_tokens``: they get no temperature and ``max_completion_tokens`` instead.

Streaming asks for ``stream_options={"include_usage": true}``; the usage comes from the final
chunk (absent when the server sends none). When a stream is cut (dropped connection, timeout,
malformed chunk, or no chunk with a ``finish_reason``), ``call.on_partial_usage`` receives
``Usage(output_tokens=<content deltas received>)`` (one delta = one token; input tokens
absent) before the error is raised.

Errors: timeout → :class:`~morningstar.errors.LLMTimeoutError`; HTTP 429 →
:class:`~morningstar.errors.LLMRateLimitedError`; refused/reset connection, HTTP 5xx, a body that
is not the protocol's JSON → :class:`~morningstar.errors.LLMTransportError`; other 4xx →
:class:`~morningstar.errors.LLMProviderError`. The API key never appears in a message.
"""

from __future__ import annotations

import logging
import time
from fnmatch import fnmatchcase
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from morningstar.errors import LLMError, LLMProviderError
from morningstar.llm.providers._common import (
    ErrorContext,
    fire_first_token,
    report_partial_usage,
    retry_after_s,
    schema_name,
    server_detail,
)
from morningstar.llm.types import OutputMode, ProviderCall, ProviderReply, Usage

__all__ = ["OpenAICompatProvider"]

log = logging.getLogger(__name__)

_PROTOCOL = "OpenAI chat-completions"
_REASONING = ("o1*", "o3*", "o4*", "gpt-5*")


class _StreamCut(Exception):
    """The stream ended without a final chunk, or ran past the call's deadline."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "cut")
        self.timed_out = timed_out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(raw: Any) -> Usage:
    """Map an OpenAI ``usage`` object (or None) to :class:`Usage` (absent stays None)."""
    if raw is None:
        return Usage()
    details = getattr(raw, "prompt_tokens_details", None)
    return Usage(
        input_tokens=_int(getattr(raw, "prompt_tokens", None)),
        output_tokens=_int(getattr(raw, "completion_tokens", None)),
        cached_input_tokens=_int(getattr(details, "cached_tokens", None)) if details else None,
    )


class OpenAICompatProvider:
    """OpenAI's chat-completions API through the official SDK.

    Args:
        base_url: an OpenAI-compatible ``/v1`` URL (vLLM, LM Studio, llama.cpp server...);
            None = OpenAI's own.
        api_key: the API key; None for servers that need none (``"not-needed"`` is sent).
        timeout_s: the client's default timeout in seconds (each call passes its own).
    """

    name: str = "openai"
    local: bool = False

    def __init__(self, base_url: str | None, api_key: str | None, *, timeout_s: float) -> None:
        self._key = api_key or None
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=timeout_s,
        )
        self._url = str(self._client.base_url)

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()

    # ----------------------------------------------------------------- request
    def _kwargs(self, call: ProviderCall) -> dict[str, Any]:
        req = call.request
        reasoning = any(fnmatchcase(call.model.lower(), p) for p in _REASONING)
        kwargs: dict[str, Any] = {
            "model": call.model,
            "messages": [m.to_dict() for m in req.messages],
            "timeout": call.timeout_s,
        }
        if not reasoning:
            kwargs["temperature"] = req.temperature
        if req.seed is not None:
            kwargs["seed"] = req.seed
        if req.max_tokens is not None:
            kwargs["max_completion_tokens" if reasoning else "max_tokens"] = req.max_tokens
        if call.mode in (OutputMode.JSON_SCHEMA, OutputMode.TOOL) and call.json_schema is None:
            raise LLMProviderError(
                f"output mode {call.mode.value} needs a JSON schema and the call has none",
                where=self._errors(call).where,
                hint="this is a gateway bug: pass ProviderCall.json_schema",
            )
        if call.mode is OutputMode.JSON_SCHEMA:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(call),
                    "schema": call.json_schema,
                    "strict": True,
                },
            }
        elif call.mode is OutputMode.TOOL:
            name = schema_name(call)
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": f"Answer with a {name} object.",
                        "parameters": call.json_schema,
                    },
                }
            ]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif call.mode is OutputMode.JSON_OBJECT:
            kwargs["response_format"] = {"type": "json_object"}
        if req.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def _errors(self, call: ProviderCall) -> ErrorContext:
        return ErrorContext(self.name, call.model, self._url, self._key)

    # ----------------------------------------------------------------- calls
    def complete(self, call: ProviderCall) -> ProviderReply:
        """Make one chat-completions request (streamed when ``call.request.stream``).

        Raises:
            LLMTimeoutError, LLMRateLimitedError, LLMTransportError, LLMProviderError: see the
                module docstring.
        """
        kwargs = self._kwargs(call)
        log.debug(
            "openai call: model=%s mode=%s stream=%s", call.model, call.mode, kwargs.get("stream")
        )
        try:
            response = self._client.chat.completions.create(**kwargs)
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise self._translate(exc, call) from exc
        if call.request.stream:
            return self._read_stream(call, response)
        return self._reply(call, response)

    def _reply(self, call: ProviderCall, completion: Any) -> ProviderReply:
        errors = self._errors(call)
        if not isinstance(completion, ChatCompletion):  # the SDK hands back a non-JSON body as text
            raise errors.malformed(str(completion), _PROTOCOL)
        try:
            choice = completion.choices[0]
            message = choice.message
            text: str | None = None
            if call.mode is OutputMode.TOOL and message.tool_calls:
                function = getattr(message.tool_calls[0], "function", None)
                text = getattr(function, "arguments", None)
            if text is None:
                text = message.content if message.content is not None else message.refusal
            finish = choice.finish_reason
            usage = _usage(getattr(completion, "usage", None))
            model = getattr(completion, "model", None) or call.model
        except (AttributeError, IndexError, TypeError, KeyError) as exc:
            raise errors.malformed(f"{type(exc).__name__}: {exc}", _PROTOCOL) from exc
        return ProviderReply(text=text or "", usage=usage, finish_reason=finish, model=str(model))

    def _read_stream(self, call: ProviderCall, stream: Any) -> ProviderReply:
        deadline = time.monotonic() + call.timeout_s
        content: list[str] = []
        arguments: list[str] = []
        deltas = 0
        usage = Usage()
        finish: str | None = None
        model = call.model
        events = 0
        try:
            with stream:
                for chunk in stream:
                    events += 1
                    if getattr(chunk, "usage", None) is not None:
                        usage = _usage(chunk.usage)
                    model = getattr(chunk, "model", None) or model
                    for choice in chunk.choices or ():
                        if choice.index != 0:
                            continue
                        delta = choice.delta
                        piece = delta.content or "" if delta is not None else ""
                        args = ""
                        if delta is not None and delta.tool_calls:
                            args = "".join(
                                tc.function.arguments or ""
                                for tc in delta.tool_calls
                                if tc.index == 0 and tc.function is not None
                            )
                        if piece or args:
                            if deltas == 0:
                                fire_first_token(call)
                            deltas += 1
                            content.append(piece)
                            arguments.append(args)
                        if choice.finish_reason:
                            finish = choice.finish_reason
                    if time.monotonic() > deadline:
                        raise _StreamCut(timed_out=True)
            if events == 0:  # a 200 body without a single SSE event: not a stream at all
                headers = getattr(getattr(stream, "response", None), "headers", None) or {}
                kind = headers.get("content-type", "no Content-Type")
                raise ValueError(f"no server-sent events in the reply ({kind})")
            if finish is None:
                raise _StreamCut(timed_out=False)
        except (openai.OpenAIError, ValueError, TypeError, AttributeError, _StreamCut) as exc:
            report_partial_usage(call, deltas)
            raise self._translate(exc, call, deltas) from exc
        tool_text = "".join(arguments)
        text = tool_text if call.mode is OutputMode.TOOL and tool_text else "".join(content)
        return ProviderReply(text=text, usage=usage, finish_reason=finish, model=str(model))

    # ----------------------------------------------------------------- errors
    def _translate(
        self, exc: BaseException, call: ProviderCall, deltas: int | None = None
    ) -> LLMError:
        """The ``LLM*`` error for an SDK (or parsing) exception.

        ``deltas`` is None before a stream started, else the deltas received.
        """
        errors = self._errors(call)
        if isinstance(exc, _StreamCut):
            return errors.timeout(call.timeout_s) if exc.timed_out else errors.cut(deltas or 0)
        if isinstance(exc, openai.APITimeoutError):
            return errors.timeout(call.timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            return errors.connection(detail) if deltas is None else errors.cut(deltas, detail)
        if isinstance(exc, openai.APIResponseValidationError):
            return errors.malformed(str(exc.body), _PROTOCOL)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = server_detail(exc.body) if exc.body is not None else exc.message
            retry = retry_after_s(exc.response.headers) if status == 429 else None
            hint = f"check llm.model; the server's models are listed at {errors.url}/models"
            return errors.status(status, detail, retry_after=retry, not_found_hint=hint)
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            return errors.stream_error(exc.message)
        if isinstance(exc, ValueError | TypeError | AttributeError):
            return errors.malformed(f"{type(exc).__name__}: {exc}", _PROTOCOL)
        return LLMProviderError(
            f"unexpected SDK error {type(exc).__name__}: {errors.clean(str(exc))}",
            where=errors.where,
            hint="report this with the log",
        )
