"""LLM providers behind the :class:`~morningstar.llm.types.LLMProvider` port.

* :class:`OpenAICompatProvider` (``openai``): OpenAI's API or any OpenAI-compatible ``/v1``
  server, through the official SDK.
* :class:`OllamaProvider` (``ollama``): Ollama's native ``/api/chat``.
* :class:`OfflineProvider` (``offline``): the deterministic rule-based analyst, for runs without
  any LLM.

Each makes one attempt per call and raises the ``LLM*`` errors of :mod:`morningstar.errors`; the
gateway retries, caches, budgets and traces. :func:`make_provider` picks one from the settings.
"""

from __future__ import annotations

import logging

from morningstar.config import LLMSettings
from morningstar.errors import ConfigError
from morningstar.llm.providers.offline import OfflineProvider
from morningstar.llm.providers.ollama import DEFAULT_OLLAMA_URL, OllamaProvider
from morningstar.llm.providers.openai_compat import OpenAICompatProvider
from morningstar.llm.types import LLMProvider

__all__ = [
    "DEFAULT_OLLAMA_URL",
    "OfflineProvider",
    "OllamaProvider",
    "OpenAICompatProvider",
    "make_provider",
]

log = logging.getLogger(__name__)


def make_provider(settings: LLMSettings) -> LLMProvider:
    """The provider ``settings.provider`` names, configured from ``settings``.

    Args:
        settings: the ``llm`` section; ``base_url``, ``api_key`` (read only here, through
            ``get_secret_value()``) and ``timeout_s`` are used.

    Raises:
        ConfigError: the provider name is unknown.
    """
    kind = settings.provider
    log.debug("llm provider: %s (base_url=%s)", kind, "set" if settings.base_url else "default")
    if kind == "openai":
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        return OpenAICompatProvider(settings.base_url, key, timeout_s=settings.timeout_s)
    if kind == "ollama":
        return OllamaProvider(settings.base_url, timeout_s=settings.timeout_s)
    if kind == "offline":
        return OfflineProvider()
    raise ConfigError(
        f"unknown LLM provider {kind!r}",
        where="llm.provider",
        hint="use one of: offline, openai, ollama",
    )
