"""A local stand-in for OpenAI's chat-completions API and Ollama's chat API, on 127.0.0.1.

:class:`FakeLLMServer` is a threaded HTTP server on an ephemeral port speaking the real protocols:

* OpenAI (base URL :attr:`FakeLLMServer.openai_base_url`, ``http://127.0.0.1:PORT/v1``):
  ``POST /v1/chat/completions`` → a full ``chat.completion`` (``id``, ``object``, ``created``,
  ``model``, ``choices[0].message`` with ``tool_calls`` when tools were requested,
  ``finish_reason``, ``usage`` with ``prompt_tokens_details.cached_tokens``); with
  ``"stream": true`` an SSE stream of ``chat.completion.chunk`` events (chunked transfer
  encoding), a final usage chunk when ``stream_options.include_usage``, then ``data: [DONE]``.
  Errors are OpenAI's ``{"error": {"message", "type", "param", "code"}}``. ``GET /v1/models``.
  When ``api_key`` is set, a request without ``Authorization: Bearer <key>`` gets HTTP 401.
* Ollama (base URL :attr:`FakeLLMServer.ollama_base_url`): ``POST /api/chat`` → ``{model,
  created_at, message, done, done_reason, total_duration, load_duration, prompt_eval_count,
  prompt_eval_duration, eval_count, eval_duration}``; streamed (Ollama's default) as NDJSON
  lines, the last with ``"done": true`` and the counts. Errors are ``{"error": "..."}``.
  ``GET /api/tags``.

Answers are scripted: :meth:`FakeLLMServer.queue_openai` / :meth:`FakeLLMServer.queue_ollama`
queue :class:`Scripted` items, consumed in order by that protocol's chat requests. With an
empty queue the answer is ``default_text``, or ``default_json`` when the request asked for
structure (``response_format``, ``format`` or ``tools``). A :class:`Scripted` item can delay
(``delay_s``), wait for an event (``hold``), answer an HTTP error (``status``: 429 with
``retry_after``, 5xx, 400, 401, 404), send a non-JSON body (``malformed``), report truncation
(``truncated``), stream given deltas (``chunks``) and cut the stream (``cut_after`` drops the
connection, ``stall_after`` stops sending), answer with a tool call (``tool_call``), or drop the
connection without answering (``drop``).

Every request is recorded (:class:`RecordedRequest`: method, path, parsed JSON body, headers)
and counted per path. The server never outlives its test: it stops when its ``with`` block
ends (releasing held, delayed and stalled answers), after ``max_lifetime_s`` in any case, and
answers 503 once ``max_requests`` requests have been served.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "DEFAULT_JSON",
    "DEFAULT_TEXT",
    "OLLAMA_CHAT",
    "OPENAI_CHAT",
    "FakeLLMServer",
    "RecordedRequest",
    "Scripted",
    "Tokens",
]

log = logging.getLogger(__name__)

OPENAI_CHAT = "/v1/chat/completions"
OLLAMA_CHAT = "/api/chat"
DEFAULT_TEXT = "The market is quiet."
#: A valid ``MarketAssessment``, the default answer to structured requests.
DEFAULT_JSON = json.dumps(
    {
        "verdict": "approve",
        "confidence": 0.7,
        "coherence": 0.8,
        "risk": "medium",
        "size_multiplier": 1.0,
        "stop_multiplier": 1.0,
        "take_profit_multiplier": 1.0,
        "reasons": ["signal agrees with the trend"],
    }
)
_CREATED = 1_700_000_000  # fixed timestamps: answers are deterministic
_CREATED_AT = "2024-01-01T00:00:00.000000Z"
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}

_OLLAMA_ERRORS = {
    400: "invalid request",
    404: "model '{model}' not found",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


@dataclass(frozen=True)
class Tokens:
    """Token counts a scripted answer reports (``cached=None`` omits the cached detail)."""

    prompt: int = 12
    completion: int = 5
    cached: int | None = 0


@dataclass(frozen=True)
class Scripted:
    """One scripted answer.

    Args:
        content: the answer text (for a tool call: its JSON arguments); None = the default.
        usage: the reported token counts; None omits usage from the answer.
        status: an HTTP error status to answer instead (429, 500, 503, 400, 401, 404...).
        error_message: the error's message (default: the protocol's usual text).
        retry_after: seconds for a ``Retry-After`` header.
        delay_s: wait this long before answering.
        hold: wait until this event is set before answering.
        malformed: answer HTTP 200 with a body that is not the protocol's JSON.
        raw_body: answer HTTP 200 with exactly this body (e.g. JSON of the wrong shape, an
            error event inside a stream).
        content_type: the Content-Type of a malformed or raw body (default ``text/html``).
        truncated: report ``finish_reason``/``done_reason`` ``"length"``.
        chunks: the streamed deltas (default: the content split after each word).
        cut_after: drop the connection after this many content deltas.
        stall_after: stop sending (without closing) after this many content deltas.
        tool_call: answer with a tool call; None = when the request offered tools.
        drop: close the connection without answering.
        model: the model name reported (default: the requested one).
    """

    content: str | None = None
    usage: Tokens | None = field(default_factory=Tokens)
    status: int = 200
    error_message: str | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    hold: threading.Event | None = None
    malformed: bool = False
    raw_body: str | None = None
    content_type: str = "text/html"
    truncated: bool = False
    chunks: Sequence[str] | None = None
    cut_after: int | None = None
    stall_after: int | None = None
    tool_call: bool | None = None
    drop: bool = False
    model: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received (header names lower-cased; body None if not JSON)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


def _split_words(text: str) -> list[str]:
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces:
            pieces[-1] += " "
        pieces.append(word)
    return [p for p in pieces if p]


class FakeLLMServer:
    """Threaded local OpenAI + Ollama stand-in; use it as a context manager.

    Args:
        default_text: the answer to free-text requests when no item is queued.
        default_json: the answer to structured requests when no item is queued.
        models: the models ``/v1/models`` and ``/api/tags`` list.
        known_models_only: answer 404 (model not found) to a chat for a model not in ``models``.
        api_key: when set, OpenAI requests must carry ``Authorization: Bearer <api_key>``.
        max_requests: requests served before every answer becomes 503.
        max_lifetime_s: the server shuts itself down after this many seconds in any case.
    """

    def __init__(
        self,
        *,
        default_text: str = DEFAULT_TEXT,
        default_json: str = DEFAULT_JSON,
        models: Sequence[str] = ("gpt-4o-mini", "llama3.2"),
        known_models_only: bool = False,
        api_key: str | None = None,
        max_requests: int = 1_000,
        max_lifetime_s: float = 120.0,
    ) -> None:
        self.default_text = default_text
        self.default_json = default_json
        self.models = tuple(models)
        self.known_models_only = known_models_only
        self.api_key = api_key
        self.max_requests = max_requests
        self.max_lifetime_s = max_lifetime_s
        self.requests: Counter[str] = Counter()
        self.log: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Scripted]] = {OPENAI_CHAT: deque(), OLLAMA_CHAT: deque()}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._port = 0

    # ----------------------------------------------------------------- public
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``)."""
        return f"{self.base_url}/v1"

    @property
    def ollama_base_url(self) -> str:
        """The Ollama base URL."""
        return self.base_url

    def queue_openai(self, *items: Scripted) -> None:
        """Queue answers for ``POST /v1/chat/completions``, served in order."""
        with self._cond:
            self._queues[OPENAI_CHAT].extend(items)

    def queue_ollama(self, *items: Scripted) -> None:
        """Queue answers for ``POST /api/chat``, served in order."""
        with self._cond:
            self._queues[OLLAMA_CHAT].extend(items)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to ``path``, oldest first."""
        with self._cond:
            return [r for r in self.log if r.path == path]

    def last(self, path: str) -> RecordedRequest:
        """The latest request to ``path`` (AssertionError when there is none)."""
        found = self.requests_to(path)
        assert found, f"no request to {path}; got {dict(self.requests)}"
        return found[-1]

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until ``count`` requests have arrived (True) or ``timeout_s`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.log) >= count, timeout=timeout_s)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeLLMServer:
        """Bind an ephemeral loopback port and serve in a background thread."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        server = _Server(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _expire(self) -> None:
        log.warning("fake LLM server reached its lifetime of %.0fs", self.max_lifetime_s)
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()

    def close(self) -> None:
        """Stop serving, release waiting answers and the port (idempotent)."""
        self.stopping.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- internals
    def _record(self, request: RecordedRequest) -> tuple[Scripted | None, bool]:
        with self._cond:
            self.requests[request.path] += 1
            self.log.append(request)
            spent = len(self.log) > self.max_requests
            queue = self._queues.get(request.path)
            item = queue.popleft() if queue else None
            self._cond.notify_all()
        return item, spent

    def _wait(self, item: Scripted) -> bool:
        """Honour ``hold`` and ``delay_s``; False when the server stops meanwhile."""
        if item.hold is not None:
            while not item.hold.wait(0.05):
                if self.stopping.is_set():
                    return False
        if item.delay_s > 0 and self.stopping.wait(item.delay_s):
            return False
        return not self.stopping.is_set()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake LLM server: a handler failed (client gone?): %r", sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the owning :class:`FakeLLMServer` (set as a class attribute)."""

    fake: FakeLLMServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLM/1.0"
    timeout = 10

    # ----------------------------------------------------------------- routing
    def do_GET(self) -> None:
        self.fake._record(RecordedRequest("GET", self.path, None, self._headers()))
        if self.path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": _CREATED, "owned_by": "fake"}
                for m in self.fake.models
            ]
            self._json(200, {"object": "list", "data": data})
        elif self.path == "/api/tags":
            models = [
                {"name": m, "model": m, "modified_at": _CREATED_AT, "size": 1, "digest": "0" * 64}
                for m in self.fake.models
            ]
            self._json(200, {"models": models})
        else:
            self._not_found()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        item, spent = self.fake._record(RecordedRequest("POST", self.path, body, self._headers()))
        openai = self.path == OPENAI_CHAT
        if self.path not in (OPENAI_CHAT, OLLAMA_CHAT):
            self._not_found()
            return
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        if spent:
            self._error(openai, 503, model, "stand-in request budget exhausted")
            return
        if not isinstance(body, dict):
            self._error(openai, 400, model, "the request body is not a JSON object")
            return
        key = self.fake.api_key
        if openai and key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            self._error(openai, 401, model, None)
            return
        item = item or Scripted()
        if not self.fake._wait(item):
            self.close_connection = True
            return
        if item.drop:
            self.close_connection = True  # read, never answer: the client sees a reset
            return
        if item.status != 200:
            self._error(openai, item.status, model, item.error_message, item.retry_after)
            return
        if self.fake.known_models_only and model not in self.fake.models:
            self._error(openai, 404, model, None)
            return
        if item.malformed:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._send(200, page, {"Content-Type": item.content_type})
            return
        if item.raw_body is not None:
            self._send(200, item.raw_body.encode(), {"Content-Type": item.content_type})
            return
        if openai:
            self._openai(body, item, model)
        else:
            self._ollama(body, item, model)

    # ----------------------------------------------------------------- OpenAI
    def _openai(self, body: dict[str, Any], item: Scripted, model: str) -> None:
        tools = body.get("tools") or []
        structured = bool(tools) or "response_format" in body
        content = item.content if item.content is not None else self._default(structured)
        tool = item.tool_call if item.tool_call is not None else bool(tools)
        tool_name = tools[0]["function"]["name"] if tools else "answer"
        forced = isinstance(body.get("tool_choice"), dict)
        finish = "length" if item.truncated else ("tool_calls" if tool and not forced else "stop")
        reported = item.model or model
        usage = None
        if item.usage is not None:
            u = item.usage
            usage = {
                "prompt_tokens": u.prompt,
                "completion_tokens": u.completion,
                "total_tokens": u.prompt + u.completion,
            }
            if u.cached is not None:
                usage["prompt_tokens_details"] = {"cached_tokens": u.cached}
        call = {"id": "call_fake0001", "type": "function"}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
            if tool:
                message["content"] = None
                message["tool_calls"] = [
                    {**call, "function": {"name": tool_name, "arguments": content}}
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            answer: dict[str, Any] = {**self._openai_head(reported, "chat.completion")}
            answer["choices"] = [choice]
            if usage is not None:
                answer["usage"] = usage
            self._json(200, answer)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = self._openai_head(reported, "chat.completion.chunk")
        extra = {"usage": None} if include_usage else {}

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return self._sse({**head, "choices": [choice], **extra})

        first: dict[str, Any] = {"role": "assistant", "content": ""}
        if tool:
            fn = {"name": tool_name, "arguments": ""}
            first = {"role": "assistant", "content": None, "tool_calls": [{**call, "index": 0}]}
            first["tool_calls"][0]["function"] = fn
        pieces = item.chunks if item.chunks is not None else _split_words(content)
        if tool:
            deltas = [
                event({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces
            ]
        else:
            deltas = [event({"content": p}) for p in pieces]
        tail = [event({}, finish)]
        if include_usage and usage is not None:
            tail.append(self._sse({**head, "choices": [], "usage": usage}))
        tail.append(b"data: [DONE]\n\n")
        self._stream("text/event-stream; charset=utf-8", [event(first)], deltas, tail, item)

    @staticmethod
    def _openai_head(model: str, obj: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake0001",
            "object": obj,
            "created": _CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
        }

    @staticmethod
    def _sse(data: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(data)}\n\n".encode()

    # ----------------------------------------------------------------- Ollama
    def _ollama(self, body: dict[str, Any], item: Scripted, model: str) -> None:
        tools = body.get("tools") or []
        structured = bool(tools) or "format" in body
        content = item.content if item.content is not None else self._default(structured)
        tool = item.tool_call if item.tool_call is not None else bool(tools)
        reported = item.model or model
        final: dict[str, Any] = {
            "model": reported,
            "created_at": _CREATED_AT,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "length" if item.truncated else "stop",
            "total_duration": 123_456_789,
            "load_duration": 1_234_567,
        }
        if item.usage is not None:
            final |= {
                "prompt_eval_count": item.usage.prompt,
                "prompt_eval_duration": 2_345_678,
                "eval_count": item.usage.completion,
                "eval_duration": 98_765_432,
            }
        message: dict[str, Any] = {"role": "assistant", "content": "" if tool else content}
        if tool:
            try:
                arguments = json.loads(content)
            except ValueError:
                arguments = {"text": content}
            name = tools[0]["function"]["name"] if tools else "answer"
            message["tool_calls"] = [{"function": {"name": name, "arguments": arguments}}]
        if not body.get("stream", True):  # Ollama streams unless told not to
            self._json(200, {**final, "message": message})
            return
        line = {"model": reported, "created_at": _CREATED_AT, "done": False}
        if tool:
            pieces: list[dict[str, Any]] = [message]
        else:
            chunks = item.chunks if item.chunks is not None else _split_words(content)
            pieces = [{"role": "assistant", "content": c} for c in chunks]
        deltas = [(json.dumps({**line, "message": m}) + "\n").encode() for m in pieces]
        tail = [(json.dumps(final) + "\n").encode()]
        self._stream("application/x-ndjson", [], deltas, tail, item)

    # ----------------------------------------------------------------- writing
    def _default(self, structured: bool) -> str:
        return self.fake.default_json if structured else self.fake.default_text

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _stream(
        self,
        content_type: str,
        head: list[bytes],
        deltas: list[bytes],
        tail: list[bytes],
        item: Scripted,
    ) -> None:
        """Send ``head + deltas + tail`` chunked; cut or stall after ``k`` deltas if scripted.

        ``cut_after``/``stall_after`` at or past ``len(deltas)`` cut or stall before the final
        event (all content sent, the answer never completes).
        """
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in head:
                self._chunk(chunk)
            for i in range(len(deltas) + 1):
                if item.cut_after is not None and i == min(item.cut_after, len(deltas)):
                    return  # close mid-body: the client sees an incomplete chunked read
                if item.stall_after is not None and i == min(item.stall_after, len(deltas)):
                    self.fake.stopping.wait(self.fake.max_lifetime_s)
                    return
                if i < len(deltas):
                    self._chunk(deltas[i])
            for chunk in tail:
                self._chunk(chunk)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            log.debug("fake LLM server: client went away mid-stream")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), headers or {})

    def _error(
        self,
        openai: bool,
        status: int,
        model: str,
        message: str | None,
        retry_after: float | None = None,
    ) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        if openai:
            kind, code, default = _OPENAI_ERRORS.get(status, ("server_error", None, "Error."))
            text = message or default.format(model=model)
            body = {"error": {"message": text, "type": kind, "param": None, "code": code}}
        else:
            text = message or _OLLAMA_ERRORS.get(status, "unexpected server error").format(
                model=model
            )
            body = {"error": text}
        self._json(status, body, headers)

    def _not_found(self) -> None:
        self._send(404, b"404 page not found", {"Content-Type": "text/plain"})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            if not any(k.lower() == "content-type" for k in headers):
                self.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("fake LLM server: client went away before the answer")
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("fake LLM server: %s", format % args)
