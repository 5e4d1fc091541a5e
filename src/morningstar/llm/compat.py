"""The original LLM monitor's interface, kept for scripts written against it.

``query_ollama_monitored(prompt, model=...)`` sends one free-text prompt through the gateway (so
it is traced, cached, budgeted and retried like every call) and returns the answer text;
``get_active_requests()`` and ``get_monitor_status()`` read the gateway's monitor. They use one
process-wide gateway built from the settings on first use (``config/config.yaml`` or
``MORNINGSTAR_CONFIG``), or the one given to :func:`set_default_gateway`.
"""

from __future__ import annotations

import threading
from typing import Any

from morningstar.llm.gateway import Gateway
from morningstar.llm.types import LLMRequest, Message

__all__ = [
    "get_active_requests",
    "get_default_gateway",
    "get_monitor_status",
    "query_ollama_monitored",
    "set_default_gateway",
]

_lock = threading.Lock()
_default: Gateway | None = None


def set_default_gateway(gateway: Gateway | None) -> None:
    """Use ``gateway`` for the functions of this module (None: build from settings again)."""
    global _default
    with _lock:
        _default = gateway


def get_default_gateway() -> Gateway:
    """The process-wide gateway (built from the settings, with the database, on first use)."""
    global _default
    with _lock:
        if _default is None:
            from morningstar.bootstrap import build_app

            application = build_app(log_to_file=False)
            _default = Gateway.from_settings(application.settings, db=application.db)
        return _default


def query_ollama_monitored(
    prompt: str,
    model: str | None = None,
    *,
    system: str | None = None,
    caller: str = "manual",
    timeout_s: float | None = None,
) -> str:
    """Send ``prompt`` to the configured provider (Ollama or any other) and return the answer.

    Args:
        prompt: the user message.
        model: the model (default: ``llm.model``).
        system: an optional system message.
        caller: the caller name recorded in the monitor.
        timeout_s: this call's timeout (default: ``llm.timeout_s``).

    Raises:
        LLMError: the typed errors of :meth:`Gateway.call`.
    """
    messages = ((Message("system", system),) if system else ()) + (Message("user", prompt),)
    request = LLMRequest(messages=messages, caller=caller, model=model, timeout_s=timeout_s)
    return get_default_gateway().call(request).text


def get_active_requests() -> list[dict[str, Any]]:
    """The calls in flight in this process: id, provider, model, caller, prompt excerpt, elapsed."""
    return [call.to_dict() for call in get_default_gateway().monitor.active()]


def get_monitor_status() -> dict[str, Any]:
    """Monitor status: ``uptime``, ``total_requests``, ``failed_requests``,
    ``avg_response_time``, ``active_requests``, system metrics..."""
    return get_default_gateway().monitor.status()
