"""The :class:`PromptTemplate` value type and its rendering into an :class:`LLMRequest`.

Rendering is a pure function of the template and the inputs passed: no clock, no globals, no
code execution (``string.Template`` substitution only), so a prompt is point in time and the
same inputs always give the same messages, byte for byte (the replay-cache key depends on it).
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from morningstar.errors import UserInputError
from morningstar.llm.types import LLMRequest, Message

__all__ = [
    "FLOAT_DIGITS",
    "INPUT_TYPES",
    "InputSpec",
    "InputType",
    "PromptTemplate",
    "format_value",
]

InputType = Literal["str", "int", "float", "bool", "mapping"]
#: The input types a template may declare.
INPUT_TYPES: tuple[InputType, ...] = ("str", "int", "float", "bool", "mapping")
#: Significant digits of a rendered float.
FLOAT_DIGITS = 8
#: ``LLMRequest`` fields a caller may set through :meth:`PromptTemplate.render`.
REQUEST_OPTIONS = ("model", "temperature", "seed", "max_tokens", "stream", "timeout_s")

_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a template.

    Args:
        name: the placeholder name (``$name`` / ``${name}``).
        type: ``str``, ``int``, ``float`` (accepts ints), ``bool`` or ``mapping`` (a flat
            mapping of names to str / int / float / bool).
        required: whether the caller must pass it. An optional input that is absent (or None)
            renders as the empty string.
        description: what it is, with its unit.
        choices: the allowed values (``str`` / ``int`` inputs), or None.
        minimum, maximum: inclusive bounds (``int`` / ``float`` inputs), or None.
        block: for optional inputs, a ``string.Template`` rendered in place of the input when it
            is given: ``$value`` is the formatted value and, for a mapping, each of its keys is a
            placeholder too (``$value`` then lists only the keys the block does not name).
    """

    name: str
    type: InputType
    required: bool
    description: str
    choices: tuple[str | int, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    block: str | None = None


def format_value(value: Any) -> str:
    """Render one input value as prompt text, deterministically.

    * ``float``: :data:`FLOAT_DIGITS` (8) significant digits, positional notation, no trailing
      zeros, ``-0`` as ``0``: ``2.0`` → ``2``, ``0.1234567891`` → ``0.12345679``,
      ``1e-05`` → ``0.00001``, ``67234.5612`` → ``67234.561``.
    * ``bool``: ``true`` / ``false``. ``int`` and ``str``: as is.
    * a mapping: one ``- key: value`` line per key, keys sorted.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(f"{value:.{FLOAT_DIGITS}g}"), "f")
        return "0" if text in {"-0", "0"} else text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "\n".join(f"- {key}: {format_value(value[key])}" for key in sorted(value))
    return str(value)


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known)) or '-'}"


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned prompt: ``templates/<id>.v<version>.yaml`` (see ``docs/PROMPTS_GUIDE.md``).

    Args:
        id: the template's name (``market_assessment``).
        version: its version; a released version is never edited (a new one is added), because
            the version is part of the replay-cache key.
        description: what the prompt is for.
        schema_name: the :data:`~morningstar.llm.schemas.SCHEMAS` name of the answer, or None for
            free text.
        schema: the pydantic model of that name, or None.
        inputs: the declared inputs, by name, in file order.
        system: the system message (may be empty: no system message).
        user: the user message.
        failure: what the caller does when the call fails (``abstain``, ``show_error``...).
        source: the file it was read from (for messages).
    """

    id: str
    version: int
    description: str
    schema_name: str | None
    schema: type[BaseModel] | None
    inputs: Mapping[str, InputSpec]
    system: str
    user: str
    failure: str
    source: str = field(default="", compare=False)

    @property
    def ref(self) -> str:
        """``id@version``, as named in messages and logs."""
        return f"{self.id}@{self.version}"

    def render(
        self, inputs: Mapping[str, Any], *, caller: str, **request_kwargs: Any
    ) -> LLMRequest:
        """Build the request from ``inputs`` only (point in time).

        Args:
            inputs: the values of the template's inputs. Unknown names, missing required ones,
                wrong types (``bool`` is not a number; ``int`` is accepted for ``float``),
                non-finite numbers, values outside ``choices`` or bounds are refused. None is
                the same as absent.
            caller: who asks (``supervisor``, ``manual``...): budgets and monitor aggregates.
            **request_kwargs: any of ``model``, ``temperature``, ``seed``, ``max_tokens``,
                ``stream``, ``timeout_s`` (see :class:`~morningstar.llm.types.LLMRequest`).

        Returns:
            An :class:`LLMRequest` with a system message (when the template has one) and a user
            message, ``schema``, ``template_id``, ``template_version`` and ``inputs`` (a plain
            dict copy of the inputs given) set.

        Raises:
            UserInputError: one line naming ``id@version``, the input and what is wrong, with a
                did-you-mean for misspelt names.
        """
        for option in request_kwargs:
            if option not in REQUEST_OPTIONS:
                raise UserInputError(
                    f"unknown request option {option!r} ({_did_you_mean(option, list(REQUEST_OPTIONS))})",
                    where=f"prompt {self.ref}",
                )
        given = {name: value for name, value in inputs.items() if value is not None}
        for name in given:
            if name not in self.inputs:
                raise UserInputError(
                    f"unknown input {name!r} ({_did_you_mean(name, list(self.inputs))})",
                    where=f"prompt {self.ref}",
                )
        values: dict[str, str] = {}
        copied: dict[str, Any] = {}
        for name, spec in self.inputs.items():
            if name not in given:
                if spec.required:
                    raise UserInputError(
                        f"missing required input {name!r} ({spec.description})",
                        where=f"prompt {self.ref}",
                    )
                values[name] = ""
                continue
            value = self._check(spec, given[name])
            copied[name] = dict(value) if isinstance(value, Mapping) else value
            values[name] = self._render_input(spec, value)
        messages = []
        if self.system.strip():
            messages.append(Message("system", _substitute(self.system, values)))
        messages.append(Message("user", _substitute(self.user, values)))
        return LLMRequest(
            messages=tuple(messages),
            schema=self.schema,
            template_id=self.id,
            template_version=self.version,
            inputs=copied,
            caller=caller,
            **request_kwargs,
        )

    # -- checks ------------------------------------------------------------------------------

    def _fail(self, spec: InputSpec, problem: str) -> UserInputError:
        return UserInputError(f"input {spec.name!r} {problem}", where=f"prompt {self.ref}")

    def _check(self, spec: InputSpec, value: Any) -> Any:
        kind = spec.type
        if kind == "str" and not isinstance(value, str):
            raise self._fail(spec, f"must be a string, got {type(value).__name__}")
        if kind == "bool" and not isinstance(value, bool):
            raise self._fail(spec, f"must be true or false, got {type(value).__name__}")
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._fail(spec, f"must be an integer, got {type(value).__name__}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._fail(spec, f"must be a number, got {type(value).__name__}")
            value = float(value)
        if kind in {"int", "float"}:
            self._check_number(spec, value)
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(str(c) for c in spec.choices)
            raise self._fail(spec, f"must be one of {allowed}, got {value!r}")
        if kind == "mapping":
            self._check_mapping(spec, value)
        return value

    def _check_number(self, spec: InputSpec, value: float) -> None:
        if not math.isfinite(value):
            raise self._fail(spec, f"must be a finite number, got {value!r}")
        if spec.minimum is not None and value < spec.minimum:
            raise self._fail(spec, f"must be >= {format_value(spec.minimum)}, got {value!r}")
        if spec.maximum is not None and value > spec.maximum:
            raise self._fail(spec, f"must be <= {format_value(spec.maximum)}, got {value!r}")

    def _check_mapping(self, spec: InputSpec, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise self._fail(spec, f"must be a mapping, got {type(value).__name__}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise self._fail(spec, f"has a non-string key {key!r}")
            if not isinstance(item, str | int | float | bool):
                raise self._fail(
                    spec,
                    f"key {key!r} must be a string, number or boolean, got {type(item).__name__}",
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise self._fail(spec, f"key {key!r} must be a finite number, got {item!r}")

    def _render_input(self, spec: InputSpec, value: Any) -> str:
        if spec.block is None:
            return format_value(value)
        block = string.Template(spec.block)
        names = set(block.get_identifiers())
        fields: dict[str, str] = {}
        if isinstance(value, Mapping):
            for key in names - {"value"}:
                if key not in value:
                    raise self._fail(spec, f"lacks the key {key!r} its block needs")
                fields[key] = format_value(value[key])
            rest = {k: v for k, v in value.items() if k not in names}
            fields["value"] = format_value(rest)
        else:
            fields["value"] = format_value(value)
        return block.substitute(fields).strip("\n")


def _substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders, then tidy: deterministic whitespace.

    A line holding only the placeholder of an absent optional input is dropped; trailing
    spaces are removed; runs of blank lines become one; the text is stripped.
    """
    kept = []
    for line in text.splitlines():
        bare = line.strip()
        name = bare[2:-1] if bare.startswith("${") and bare.endswith("}") else bare[1:]
        if bare.startswith("$") and values.get(name) == "":
            continue
        kept.append(line)
    filled = string.Template("\n".join(kept)).substitute(values)
    lines = [line.rstrip() for line in filled.strip().splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines))
