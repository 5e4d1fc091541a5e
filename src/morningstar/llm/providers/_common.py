"""Helpers shared by the HTTP providers: error messages, status mapping, partial usage.

Every error a provider raises is one line, ``<provider> model '<model>' at <url>: <what> —
<hint>``, with the URL stripped of credentials and any secret scrubbed from server text.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from morningstar.errors import (
    LLMError,
    LLMProviderError,
    LLMRateLimitedError,
    LLMTimeoutError,
    LLMTransportError,
)
from morningstar.llm.types import ProviderCall, Usage

__all__ = [
    "ErrorContext",
    "excerpt",
    "fire_first_token",
    "report_partial_usage",
    "retry_after_s",
    "safe_url",
    "schema_name",
    "server_detail",
]

log = logging.getLogger(__name__)

_EXCERPT = 200
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (safe to put in a message)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header in seconds (the delta-seconds form), or None."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def server_detail(body: Any) -> str:
    """The error text of an OpenAI (``{"error": {"message"}}``) or Ollama (``{"error"}``) body."""
    if isinstance(body, str | bytes):
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(raw)
        except ValueError:
            return raw
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            err = err.get("message", err)
        return str(err)
    return str(body)


def fire_first_token(call: ProviderCall) -> None:
    """Call ``call.on_first_token`` (the monitor's time to first token); a failure is logged."""
    if call.on_first_token is None:
        return
    try:
        call.on_first_token()
    except Exception:
        log.warning("on_first_token callback failed for model %s", call.model, exc_info=True)


def schema_name(call: ProviderCall) -> str:
    """The name sent with a schema or tool (``[a-zA-Z0-9_-]{1,64}``).

    The JSON schema's ``title``, else the pydantic model's name (the gateway strips ``title``
    from wire schemas), else ``answer``.
    """
    title = (call.json_schema or {}).get("title")
    if not title and call.request.schema is not None:
        title = call.request.schema.__name__
    name = _NAME_CHARS.sub("_", str(title or "answer"))[:64]
    return name or "answer"


def report_partial_usage(call: ProviderCall, deltas: int) -> None:
    """Tell the gateway the usage known when a stream is cut: ``deltas`` output tokens.

    Each streamed delta counts as one token (both protocols send about one token per delta);
    input tokens stay absent. A failing callback is logged, never hides the provider's error.
    """
    if call.on_partial_usage is None:
        return
    try:
        call.on_partial_usage(Usage(output_tokens=deltas))
    except Exception:
        log.warning("on_partial_usage callback failed for model %s", call.model, exc_info=True)


class ErrorContext:
    """Builds the provider's one-line errors for one call.

    Args:
        provider: the provider's name.
        model: the model of the call.
        url: the server's base URL (credentials are stripped).
        secret: an API key to scrub from any text a server sends back.
    """

    def __init__(self, provider: str, model: str, url: str, secret: str | None = None) -> None:
        self.provider = provider
        self.model = model
        self.url = safe_url(url)
        self._secret = secret or None

    @property
    def where(self) -> str:
        """``<provider> model '<model>' at <url>``."""
        return f"{self.provider} model '{self.model}' at {self.url}"

    def clean(self, text: str) -> str:
        """``text`` on one line, short, with the secret replaced by ``***``."""
        if self._secret:
            text = str(text).replace(self._secret, "***")
        return excerpt(text)

    def timeout(self, timeout_s: float) -> LLMTimeoutError:
        """The call got no (complete) answer within ``timeout_s``."""
        return LLMTimeoutError(
            f"no answer within {timeout_s:g}s",
            where=self.where,
            hint="raise llm.timeout_s (or the request's timeout_s), or use a faster model",
        )

    def connection(self, detail: str) -> LLMTransportError:
        """The connection failed (refused, reset, dropped)."""
        return LLMTransportError(
            f"connection failed: {self.clean(detail)}",
            where=self.where,
            hint=f"check that the server is running at {self.url} (llm.base_url)",
        )

    def cut(self, deltas: int, detail: str | None = None) -> LLMTransportError:
        """A stream ended before its final message (``detail``: the transport's reason)."""
        why = f": {self.clean(detail)}" if detail else ""
        return LLMTransportError(
            f"the stream was cut before the answer was complete ({deltas} deltas received){why}",
            where=self.where,
            hint="the server dropped the connection; the call is retried",
        )

    def stream_error(self, detail: str) -> LLMTransportError:
        """The server sent an error in the middle of a stream."""
        return LLMTransportError(
            f"the server reported an error mid-stream: {self.clean(detail)}",
            where=self.where,
            hint="the server failed while answering; the call is retried",
        )

    def malformed(self, detail: str, protocol: str) -> LLMTransportError:
        """The HTTP body is not the protocol's JSON."""
        return LLMTransportError(
            f"malformed reply, not {protocol} JSON: {self.clean(detail)}",
            where=self.where,
            hint=f"check that llm.base_url ({self.url}) serves the {protocol} API",
        )

    def status(
        self,
        status: int,
        detail: str,
        *,
        retry_after: float | None = None,
        not_found_hint: str | None = None,
    ) -> LLMError:
        """The error for an HTTP error status (429, 5xx, other 4xx)."""
        text = self.clean(detail) or "(no detail)"
        if status == 429:
            wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
            return LLMRateLimitedError(
                f"rate limited (HTTP 429{wait}): {text}",
                where=self.where,
                hint="lower llm.max_concurrency or wait; the call is retried with backoff",
                retry_after_s=retry_after,
            )
        if status >= 500:
            return LLMTransportError(
                f"server error (HTTP {status}): {text}",
                where=self.where,
                hint="the server failed; the call is retried, check the server's logs if it lasts",
            )
        if status in (401, 403):
            return LLMProviderError(
                f"authentication refused (HTTP {status}): {text}",
                where=self.where,
                hint="check llm.api_key (MORNINGSTAR_LLM__API_KEY) and its permissions",
            )
        if status == 404:
            return LLMProviderError(
                f"not found (HTTP 404): {text}",
                where=self.where,
                hint=not_found_hint or "check llm.model and llm.base_url",
            )
        return LLMProviderError(
            f"request refused (HTTP {status}): {text}",
            where=self.where,
            hint="check llm.model and the options this server accepts",
        )
