"""The Ollama provider: Ollama's native ``POST /api/chat`` over one reused ``httpx.Client``.

Request body: ``{"model", "messages", "stream", "options": {"temperature", "seed",
"num_predict"}}`` (``seed`` and ``num_predict`` only when set), plus ``"format": <schema>`` for
``JSON_SCHEMA`` (Ollama ≥ 0.5), ``"format": "json"`` for ``JSON_OBJECT``, and one function tool
for ``TOOL`` (Ollama cannot force a tool; without a tool call the content is the answer).

Reply: ``message.content`` (or the first tool call's ``arguments``, serialised as JSON),
``prompt_eval_count`` → input tokens, ``eval_count`` → output tokens (absent when missing; Ollama
reports no cached tokens), ``done_reason`` → finish reason.

Streaming: NDJSON lines, the last one with ``"done": true`` and the counts.
``call.on_first_token`` fires at the first non-empty delta. When a stream is cut (dropped
connection, timeout, malformed line, an ``error`` line, or no ``done`` line),
``call.on_partial_usage`` receives ``Usage(output_tokens=<content deltas received>)`` (one delta
= one token; input tokens absent) before the error is raised.

Errors: timeout → :class:`~morningstar.errors.LLMTimeoutError`; HTTP 429 →
:class:`~morningstar.errors.LLMRateLimitedError`; refused/reset connection, HTTP 5xx, a body that
is not Ollama's JSON → :class:`~morningstar.errors.LLMTransportError`; other 4xx →
:class:`~morningstar.errors.LLMProviderError` (a 404 ``model 'x' not found`` hints
``ollama pull x``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

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

__all__ = ["DEFAULT_OLLAMA_URL", "OllamaProvider"]

log = logging.getLogger(__name__)

#: Where Ollama listens by default.
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_PROTOCOL = "Ollama /api/chat"
_CHAT = "/api/chat"


class _StreamCut(Exception):
    """The stream ended without its ``done`` line, or ran past the call's deadline."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "cut")
        self.timed_out = timed_out


class _StreamErrorLine(Exception):
    """The server sent ``{"error": ...}`` in the middle of a stream."""


_CUT_ERRORS = (httpx.HTTPError, ValueError, AttributeError, _StreamCut, _StreamErrorLine)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(data: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=_int(data.get("prompt_eval_count")),
        output_tokens=_int(data.get("eval_count")),
    )


def _tool_arguments(message: Mapping[str, Any]) -> str | None:
    """The first tool call's arguments as JSON text, or None when there is no tool call."""
    calls = message.get("tool_calls") or []
    if not calls:
        return None
    args = (calls[0].get("function") or {}).get("arguments")
    if args is None:
        return None
    return args if isinstance(args, str) else json.dumps(args)


class OllamaProvider:
    """Ollama's native chat API.

    Args:
        base_url: the Ollama server (``http://host:11434``, without ``/v1``); None = the default
            :data:`DEFAULT_OLLAMA_URL`.
        timeout_s: the client's default timeout in seconds (each call passes its own).
    """

    name: str = "ollama"
    local: bool = True

    def __init__(self, base_url: str | None = None, *, timeout_s: float) -> None:
        self._url = (base_url or DEFAULT_OLLAMA_URL).rstrip("/")
        self._client = httpx.Client(base_url=self._url, timeout=timeout_s)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _errors(self, call: ProviderCall) -> ErrorContext:
        return ErrorContext(self.name, call.model, self._url)

    def _body(self, call: ProviderCall) -> dict[str, Any]:
        req = call.request
        options: dict[str, Any] = {"temperature": req.temperature}
        if req.seed is not None:
            options["seed"] = req.seed
        if req.max_tokens is not None:
            options["num_predict"] = req.max_tokens
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [m.to_dict() for m in req.messages],
            "stream": req.stream,
            "options": options,
        }
        if call.mode in (OutputMode.JSON_SCHEMA, OutputMode.TOOL) and call.json_schema is None:
            raise LLMProviderError(
                f"output mode {call.mode.value} needs a JSON schema and the call has none",
                where=self._errors(call).where,
                hint="this is a gateway bug: pass ProviderCall.json_schema",
            )
        if call.mode is OutputMode.JSON_SCHEMA:
            body["format"] = call.json_schema
        elif call.mode is OutputMode.JSON_OBJECT:
            body["format"] = "json"
        elif call.mode is OutputMode.TOOL:
            name = schema_name(call)
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": f"Answer with a {name} object.",
                        "parameters": call.json_schema,
                    },
                }
            ]
        return body

    def complete(self, call: ProviderCall) -> ProviderReply:
        """Make one ``/api/chat`` request (streamed when ``call.request.stream``).

        Raises:
            LLMTimeoutError, LLMRateLimitedError, LLMTransportError, LLMProviderError: see the
                module docstring.
        """
        body = self._body(call)
        log.debug("ollama call: model=%s mode=%s stream=%s", call.model, call.mode, body["stream"])
        if call.request.stream:
            return self._stream(call, body)
        try:
            response = self._client.post(_CHAT, json=body, timeout=call.timeout_s)
        except httpx.HTTPError as exc:
            raise self._translate(exc, call) from exc
        if response.status_code != 200:
            raise self._status_error(call, response)
        try:
            data = response.json()
        except ValueError as exc:
            raise self._errors(call).malformed(response.text, _PROTOCOL) from exc
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise self._errors(call).malformed(json.dumps(data)[:200], _PROTOCOL)
        message = data["message"]
        try:
            text = _tool_arguments(message) if call.mode is OutputMode.TOOL else None
        except (AttributeError, TypeError, IndexError) as exc:
            raise self._errors(call).malformed(f"bad tool_calls: {exc}", _PROTOCOL) from exc
        if text is None:
            text = str(message.get("content") or "")
        return ProviderReply(
            text=text,
            usage=_usage(data),
            finish_reason=data.get("done_reason"),
            model=str(data.get("model") or call.model),
        )

    def _stream(self, call: ProviderCall, body: dict[str, Any]) -> ProviderReply:
        deadline = time.monotonic() + call.timeout_s
        content: list[str] = []
        tool_text: str | None = None
        deltas = 0
        final: dict[str, Any] | None = None
        model = call.model
        try:
            with self._client.stream("POST", _CHAT, json=body, timeout=call.timeout_s) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._status_error(call, response)
                try:
                    for line in response.iter_lines():
                        if not line.strip():
                            continue
                        data = json.loads(line)
                        if not isinstance(data, dict):
                            raise ValueError(f"not a JSON object: {line[:100]}")
                        if "error" in data:
                            raise _StreamErrorLine(str(data["error"]))
                        if "message" not in data and "done" not in data:
                            raise ValueError(f"not an Ollama chat line: {line[:100]}")
                        model = str(data.get("model") or model)
                        message = data.get("message") or {}
                        piece = str(message.get("content") or "")
                        args = _tool_arguments(message)
                        if args is not None:
                            tool_text = args
                        if piece or args is not None:
                            if deltas == 0:
                                fire_first_token(call)
                            deltas += 1
                            content.append(piece)
                        if data.get("done"):
                            final = data
                            break
                        if time.monotonic() > deadline:
                            raise _StreamCut(timed_out=True)
                    if final is None:
                        raise _StreamCut(timed_out=False)
                except _CUT_ERRORS as exc:
                    report_partial_usage(call, deltas)
                    raise self._translate(exc, call, deltas) from exc
        except httpx.HTTPError as exc:  # before the answer started
            raise self._translate(exc, call) from exc
        text = tool_text if call.mode is OutputMode.TOOL and tool_text is not None else None
        return ProviderReply(
            text=text if text is not None else "".join(content),
            usage=_usage(final),
            finish_reason=final.get("done_reason"),
            model=model,
        )

    def _status_error(self, call: ProviderCall, response: httpx.Response) -> LLMError:
        errors = self._errors(call)
        status = response.status_code
        text = response.text
        detail = server_detail(text)
        hint: str | None = None
        if status == 404:
            try:
                ollama_json = isinstance(json.loads(text), dict)
            except ValueError:
                ollama_json = False
            hint = (
                f"run `ollama pull {call.model}` on the Ollama host, or check llm.model"
                if ollama_json
                else f"check that llm.base_url ({errors.url}) is the Ollama URL, without /v1"
            )
        retry = retry_after_s(response.headers) if status == 429 else None
        return errors.status(status, detail, retry_after=retry, not_found_hint=hint)

    def _translate(
        self, exc: BaseException, call: ProviderCall, deltas: int | None = None
    ) -> LLMError:
        """The ``LLM*`` error for an httpx (or parsing) exception.

        ``deltas`` is None before a stream started, else the deltas received.
        """
        errors = self._errors(call)
        if isinstance(exc, _StreamCut):
            return errors.timeout(call.timeout_s) if exc.timed_out else errors.cut(deltas or 0)
        if isinstance(exc, _StreamErrorLine):
            return errors.stream_error(str(exc))
        if isinstance(exc, httpx.TimeoutException):
            return errors.timeout(call.timeout_s)
        if isinstance(exc, httpx.TransportError):
            detail = f"{type(exc).__name__}: {exc}"
            return errors.connection(detail) if deltas is None else errors.cut(deltas, detail)
        if isinstance(exc, ValueError | AttributeError):
            return errors.malformed(f"{type(exc).__name__}: {exc}", _PROTOCOL)
        return errors.connection(f"{type(exc).__name__}: {exc}")
