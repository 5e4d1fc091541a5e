"""Versioned prompt templates: ``templates/<id>.v<version>.yaml``.

A template declares its inputs (name, type, required, description), a system and a user text
with ``$name`` / ``${name}`` placeholders (``string.Template``: no Jinja, no code), the schema
of the answer (a :data:`~morningstar.llm.schemas.SCHEMAS` name, or null for free text) and what
the caller does when the call fails. :meth:`PromptTemplate.render` builds an
:class:`~morningstar.llm.types.LLMRequest` from the inputs passed and nothing else (point in
time)::

    from morningstar.llm.prompts import load_template

    request = load_template("market_assessment").render(
        {"pair": "BTC/USDT", "timeframe": "1h", "as_of": "2024-05-01T12:00:00+00:00", ...},
        caller="supervisor",
    )

A released version is never edited: the version is part of the replay-cache key, so a change
is a new file ``<id>.v<version+1>.yaml`` (``docs/PROMPTS_GUIDE.md``).
"""

from __future__ import annotations

from morningstar.llm.prompts._loader import (
    list_templates,
    load_template,
    load_template_file,
    parse_template,
)
from morningstar.llm.prompts._template import (
    FLOAT_DIGITS,
    INPUT_TYPES,
    InputSpec,
    PromptTemplate,
    format_value,
)

__all__ = [
    "FLOAT_DIGITS",
    "INPUT_TYPES",
    "InputSpec",
    "PromptTemplate",
    "format_value",
    "list_templates",
    "load_template",
    "load_template_file",
    "parse_template",
]
