"""What each provider's models can do, and the output mode the gateway picks from it.

The gateway asks for a structured answer in the strongest mode the model supports
(:func:`pick_mode`): ``JSON_SCHEMA`` > ``TOOL`` > ``JSON_OBJECT`` > ``PROMPT``; a request without
a schema is ``TEXT``. Rows are matched in order, the first ``fnmatch`` pattern (case-insensitive)
that fits the model name wins:

============  ==================  ===========  ==========  ===========  ===============
provider      model pattern       json_schema  tool_calls  json_object  streaming_usage
============  ==================  ===========  ==========  ===========  ===============
openai        ``o1-mini*``        no           no          no           yes
openai        ``o1-preview*``     no           no          no           yes
openai        ``gpt-4o*``         yes          yes         yes          yes
openai        ``gpt-4.1*``        yes          yes         yes          yes
openai        ``gpt-5*``          yes          yes         yes          yes
openai        ``o1*``             yes          yes         yes          yes
openai        ``o3*``             yes          yes         yes          yes
openai        ``o4*``             yes          yes         yes          yes
openai        ``gpt-3.5-turbo*``  no           yes         yes          yes
openai        anything else       no           no          no           no
ollama        ``*``               yes          yes         yes          yes
offline       ``*``               yes          no          no           no
============  ==================  ===========  ==========  ===========  ===============

"anything else" on ``openai`` is an OpenAI-compatible server behind ``llm.base_url`` (vLLM,
LM Studio, llama.cpp server...) serving a model we know nothing about: the conservative answer
is ``PROMPT`` mode (the schema described in the prompt, the JSON extracted from the text), which
every server supports. Many of them do support ``json_schema``: set
``llm.output_mode: json_schema`` (or ``tool`` / ``json_object``) when yours does. Ollama accepts
a JSON schema in ``format`` since 0.5. An unknown provider gets the conservative row as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase

from morningstar.llm.types import OutputMode

__all__ = ["CAPABILITY_TABLE", "CONSERVATIVE", "ModelCapabilities", "capabilities_for", "pick_mode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCapabilities:
    """What a model accepts.

    Args:
        json_schema: constrained decoding to a JSON schema (OpenAI ``response_format``
            ``json_schema`` strict; Ollama ``format=<schema>``).
        tool_calls: function tools with a forced tool choice.
        json_object: "some JSON object" mode (``{"type": "json_object"}`` / ``format="json"``).
        streaming_usage: a streamed answer reports token usage at its end.
    """

    json_schema: bool
    tool_calls: bool
    json_object: bool
    streaming_usage: bool


_ALL = ModelCapabilities(json_schema=True, tool_calls=True, json_object=True, streaming_usage=True)
#: The capabilities assumed for a model nobody described: plain prompts only.
CONSERVATIVE = ModelCapabilities(
    json_schema=False, tool_calls=False, json_object=False, streaming_usage=False
)
_NO_STRUCTURE = ModelCapabilities(
    json_schema=False, tool_calls=False, json_object=False, streaming_usage=True
)
_GPT35 = ModelCapabilities(
    json_schema=False, tool_calls=True, json_object=True, streaming_usage=True
)
_OFFLINE = ModelCapabilities(
    json_schema=True, tool_calls=False, json_object=False, streaming_usage=False
)

#: ``(provider, fnmatch pattern, capabilities)`` rows, first match wins (see the module table).
CAPABILITY_TABLE: tuple[tuple[str, str, ModelCapabilities], ...] = (
    ("openai", "o1-mini*", _NO_STRUCTURE),
    ("openai", "o1-preview*", _NO_STRUCTURE),
    ("openai", "gpt-4o*", _ALL),
    ("openai", "gpt-4.1*", _ALL),
    ("openai", "gpt-5*", _ALL),
    ("openai", "o1*", _ALL),
    ("openai", "o3*", _ALL),
    ("openai", "o4*", _ALL),
    ("openai", "gpt-3.5-turbo*", _GPT35),
    ("ollama", "*", _ALL),
    ("offline", "*", _OFFLINE),
)


def capabilities_for(provider: str, model: str) -> ModelCapabilities:
    """The capabilities of ``model`` served by ``provider`` (first matching table row).

    Args:
        provider: ``openai``, ``ollama`` or ``offline`` (the provider's ``name``).
        model: the model name as sent to the provider; matched case-insensitively.

    Returns:
        The row's capabilities, or :data:`CONSERVATIVE` when no row matches.
    """
    name = model.strip().lower()
    for row_provider, pattern, caps in CAPABILITY_TABLE:
        if row_provider == provider and fnmatchcase(name, pattern):
            return caps
    log.debug("no capability row for %s model %r: assuming plain prompts only", provider, model)
    return CONSERVATIVE


def pick_mode(caps: ModelCapabilities, has_schema: bool) -> OutputMode:
    """The strongest output mode ``caps`` supports.

    Args:
        caps: the model's capabilities.
        has_schema: whether the request asks for a structured answer.

    Returns:
        ``TEXT`` without a schema; else ``JSON_SCHEMA`` > ``TOOL`` > ``JSON_OBJECT`` > ``PROMPT``.
    """
    if not has_schema:
        return OutputMode.TEXT
    if caps.json_schema:
        return OutputMode.JSON_SCHEMA
    if caps.tool_calls:
        return OutputMode.TOOL
    if caps.json_object:
        return OutputMode.JSON_OBJECT
    return OutputMode.PROMPT
