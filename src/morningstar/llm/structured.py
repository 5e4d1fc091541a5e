"""Structured answers: the JSON schema sent to providers, JSON extraction and strict validation.

Three steps turn an LLM's text into a validated pydantic object or a typed error:

1. :func:`json_schema_for` gives the schema of a :mod:`morningstar.llm.schemas` model in the
   form OpenAI's strict structured outputs accept (every object closed with
   ``additionalProperties: false``, every property required, ``$defs`` inlined, no ``default``
   or ``title``). Ollama's ``format=<schema>`` and OpenAI-compatible servers take the same form.
   :func:`schema_instructions` wraps it in the sentence added to the prompt when the provider
   cannot constrain decoding (``PROMPT`` and ``JSON_OBJECT`` output modes).
2. :func:`extract_json` finds the JSON in the answer: the whole text, a fenced ```json block,
   or the first balanced ``{...}`` object in prose.
3. :func:`parse_answer` validates it against the schema and raises
   :class:`~morningstar.errors.LLMInvalidOutput` (``truncated``, ``not_json`` or ``schema``)
   carrying the raw text otherwise.

Validation policy (strict): the JSON is validated by pydantic in *strict JSON mode*. Unknown
fields, missing fields, out-of-range values and wrong types are all rejected; a JSON number is
accepted for a float field (``1`` for ``1.0``) but a string is not (``"0.5"`` is rejected, not
coerced), nor is ``true`` for a number. ``NaN`` and ``Infinity`` are not JSON and are rejected
as ``not_json``. A caller gets a validated value or a typed error, never a schema default.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from morningstar.errors import LLMInvalidOutput

__all__ = [
    "STRICT_DROPPED_KEYWORDS",
    "extract_json",
    "json_schema_for",
    "parse_answer",
    "schema_instructions",
]

#: JSON-schema keywords removed from the wire schema: ``title``/``default`` (noise, and strict
#: mode forbids defaults) and string-length bounds strict mode does not accept. The pydantic
#: model still enforces every bound when the answer is validated.
STRICT_DROPPED_KEYWORDS = frozenset({"title", "default", "minLength", "maxLength", "examples"})

_REF_PREFIX = "#/$defs/"
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n(.*?)```", re.DOTALL)
_INPUT_REPR_MAX = 60


# -- the JSON schema ---------------------------------------------------------------------------


def json_schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """Return ``model``'s JSON schema in OpenAI strict-mode form.

    Every object gets ``additionalProperties: false`` and lists all its properties in
    ``required``; ``$ref`` to ``$defs`` are inlined (a recursive model keeps its ``$defs`` and
    ``$ref``, which strict mode accepts); :data:`STRICT_DROPPED_KEYWORDS` are removed. Property
    order is the model's field order (providers generate fields in that order).

    Field descriptions (``Field(description=...)``) are kept: the model reads them. Class
    docstrings are not sent: they are written for developers, and sending them would tie the
    replay-cache key to docstring edits.

    The result is stable: the same model gives the same dict (and the same ``json.dumps``
    bytes) every time, so it can be part of the replay-cache key. Each call returns a fresh
    copy the caller may modify.
    """
    return copy.deepcopy(_strict_schema(model))


@functools.cache
def _strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    raw.pop("description", None)  # the class docstring (see json_schema_for)
    defs: dict[str, Any] = raw.pop("$defs", {})
    for definition in defs.values():
        definition.pop("description", None)
    kept: dict[str, Any] = {}

    def inline(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if name in stack:  # recursive model: keep the reference
                if name not in kept:
                    kept[name] = None  # placeholder against re-entry
                    kept[name] = inline(defs[name], (*stack, name))
                return {"$ref": ref}
            resolved = inline(defs[name], (*stack, name))
            resolved.update(inline(siblings, stack))  # e.g. the field's own description
            return resolved
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in STRICT_DROPPED_KEYWORDS:
                continue
            if key in {"properties", "$defs"}:
                out[key] = {name: inline(sub, stack) for name, sub in value.items()}
            else:
                out[key] = inline(value, stack)
        if out.get("type") == "object" or "properties" in out:
            props = out.get("properties", {})
            out["required"] = list(props)
            out["additionalProperties"] = False
        return out

    schema: dict[str, Any] = inline(raw, ())
    if kept:
        schema["$defs"] = kept
    return schema


def schema_instructions(model: type[BaseModel]) -> str:
    """Return the text added to the prompt when the provider cannot enforce the schema.

    Used by the gateway for the ``PROMPT`` and ``JSON_OBJECT`` output modes; templates stay
    provider-neutral and never include it themselves.
    """
    schema = json.dumps(json_schema_for(model), ensure_ascii=False, separators=(",", ":"))
    return (
        "Answer with one JSON object only, matching this JSON schema: "
        f"{schema}\n"
        "Give every field, no other field, no text before or after the object."
    )


# -- extraction --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf: not a JSON number we can use
        raise ValueError(f"{text} is out of the float range")
    return value


def _loads(text: str) -> Any:
    """``json.loads`` without NaN/Infinity/overflowing numbers; a too-deep nesting is a
    ValueError too (not a RecursionError)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
#: Objects tried in prose before giving up (each try is one C-level decode).
_MAX_OBJECT_TRIES = 200


def extract_json(text: str, *, where: str | None = None) -> Any:
    """Find and parse the JSON value in an LLM answer.

    Tried in order: the whole text (stripped); each fenced ```` ```json ```` (or bare ```` ``` ````)
    block; the first ``{...}`` object in the prose that parses (decoded from each ``{`` in turn,
    at most 200 tries). ``NaN``/``Infinity`` and numbers beyond the float range are not accepted.

    Args:
        text: the answer exactly as the provider sent it.
        where: the place named in the error (e.g. ``supervisor: market_assessment@1``).

    Raises:
        LLMInvalidOutput: ``reason="not_json"``, with ``raw_text=text``.
    """
    stripped = text.strip()
    if stripped:
        try:
            return _loads(stripped)
        except ValueError:
            pass
    for match in _FENCE.finditer(text):
        block = match.group(1).strip()
        try:
            return _loads(block)
        except ValueError:
            continue
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_OBJECT_TRIES:
        tries += 1
        try:  # the C decoder reads one value from here and ignores what follows it
            value, _end = _DECODER.raw_decode(text, start)
            return value
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
    excerpt = " ".join(stripped.split())[:_INPUT_REPR_MAX]
    raise LLMInvalidOutput(
        f"the answer is not JSON ({len(text)} chars: {excerpt!r})"
        if stripped
        else "the answer is empty",
        raw_text=text,
        reason="not_json",
        where=where,
        hint="the model ignored the answer format; a model with JSON-schema output is more reliable",
    )


def _loc_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(answer)"


def _short_repr(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= _INPUT_REPR_MAX else text[: _INPUT_REPR_MAX - 1] + "…"


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _describe_validation_error(exc: ValidationError) -> str:
    """One line: the first failing field path, its problem and value, and how many others."""
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return str(exc).splitlines()[0]
    first = errors[0]
    text = f"{_loc_text(tuple(first['loc']))}: {first['msg']}"
    if first["type"] != "missing":
        text += f" (got {_short_repr(first['input'])})"
    others = len(errors) - 1
    if others:
        text += f"; and {others} other error{'s' if others > 1 else ''}"
    return text


def parse_answer(
    text: str, schema: type[BaseModel], *, finish_reason: str | None, where: str
) -> BaseModel:
    """Validate an LLM answer against ``schema`` (strict; see the module docstring).

    Args:
        text: the answer exactly as the provider sent it.
        schema: the pydantic model of the answer (a :mod:`morningstar.llm.schemas` model).
        finish_reason: the provider's finish reason; ``"length"`` means cut off.
        where: who asked and with which prompt, named in the error.

    Returns:
        The validated model instance.

    Raises:
        LLMInvalidOutput: ``reason`` is ``truncated`` (cut at the token limit), ``not_json``
            (no JSON found) or ``schema`` (the message names the first failing field path, the
            problem, the value and the count of other errors). ``raw_text`` is ``text``.
    """
    if finish_reason == "length":
        raise LLMInvalidOutput(
            f"the answer was cut off at the token limit after {len(text)} chars",
            raw_text=text,
            reason="truncated",
            where=where,
            hint="raise max_tokens for this request, or shorten the prompt",
        )
    stripped = text.strip()
    try:  # the usual answer: the whole text is the JSON object (checked finite, then validated)
        _loads(stripped)
        document = stripped
    except ValueError:  # JSON in a fence or in prose: validate the value found, re-serialised
        document = json.dumps(extract_json(text, where=where), ensure_ascii=False, allow_nan=False)
    try:
        return schema.model_validate_json(document, strict=True)
    except ValidationError as exc:
        raise LLMInvalidOutput(
            f"the answer does not match {schema.__name__}: {_describe_validation_error(exc)}",
            raw_text=text,
            reason="schema",
            where=where,
        ) from exc
