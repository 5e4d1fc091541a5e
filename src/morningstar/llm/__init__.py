"""The LLM gateway: one replayable, budgeted, fully traced path for every LLM call.

::

    from morningstar.llm import Gateway, load_template
    gateway = Gateway.from_settings(settings, db=db)      # provider, cache, budgets, monitor
    request = load_template("market_assessment").render(inputs, caller="supervisor")
    result = gateway.call(request)                        # result.value: a MarketAssessment

Modules: ``types`` (requests, replies, the provider port), ``gateway``, ``providers/``
(OpenAI-compatible, Ollama, the offline rule-based analyst), ``capabilities`` (which output mode
each model supports), ``structured`` (schema and JSON extraction), ``schemas`` (answer models),
``prompts/`` (versioned templates), ``cache`` (replay cache), ``pricing`` (price table),
``budget`` (budgets), ``monitor/`` (tracing, history, Prometheus, OTLP), ``compat`` (the
original monitor's functions). See ``docs/llm.md``.
"""

from morningstar.llm.compat import get_active_requests, get_monitor_status, query_ollama_monitored
from morningstar.llm.gateway import Gateway
from morningstar.llm.prompts import PromptTemplate, list_templates, load_template
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.types import (
    LLMProvider,
    LLMRequest,
    LLMResult,
    Message,
    OutputMode,
    ProviderCall,
    ProviderReply,
    Usage,
)

__all__ = [
    "Gateway",
    "LLMProvider",
    "LLMRequest",
    "LLMResult",
    "MarketAssessment",
    "Message",
    "OutputMode",
    "PromptTemplate",
    "ProviderCall",
    "ProviderReply",
    "Usage",
    "get_active_requests",
    "get_monitor_status",
    "list_templates",
    "load_template",
    "query_ollama_monitored",
]
