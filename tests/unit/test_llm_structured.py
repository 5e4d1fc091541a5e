"""Structured answers: the strict JSON schema, JSON extraction and strict validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from morningstar.errors import LLMInvalidOutput
from morningstar.llm.schemas import SCHEMAS, MarketAssessment
from morningstar.llm.structured import (
    STRICT_DROPPED_KEYWORDS,
    extract_json,
    json_schema_for,
    parse_answer,
    schema_instructions,
)

VALID: dict[str, Any] = {
    "verdict": "reduce",
    "confidence": 0.7,
    "coherence": 0.4,
    "risk": "medium",
    "size_multiplier": 0.5,
    "stop_multiplier": 0.8,
    "take_profit_multiplier": 1,
    "reasons": ["trend and signal disagree", "volatility is high"],
}


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every dict in a JSON value."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


class Leg(BaseModel):
    """A developer docstring that must not reach the wire."""

    model_config = ConfigDict(extra="forbid")
    price: float = Field(description="the price", title="Price")
    note: str | None = Field(default=None, min_length=1)


class Tree(BaseModel):
    name: str
    children: list[Tree]


class Outer(BaseModel):
    leg: Leg = Field(description="the main leg")
    legs: list[Leg]
    tree: Tree


# -- json_schema_for ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [*SCHEMAS.values(), Outer])
def test_schema_is_strict_mode_form(model: type[BaseModel]) -> None:
    schema = json_schema_for(model)
    objects = [n for n in _walk(schema) if n.get("type") == "object" or "properties" in n]
    assert objects
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    for node in _walk(schema):
        if "properties" in node:
            for name, sub in node["properties"].items():
                assert not (set(sub) & STRICT_DROPPED_KEYWORDS), name
        assert "default" not in node


def test_market_assessment_schema_keeps_bounds_and_order() -> None:
    schema = json_schema_for(MarketAssessment)
    assert list(schema["properties"]) == list(MarketAssessment.model_fields)
    size = schema["properties"]["size_multiplier"]
    assert (size["type"], size["minimum"], size["maximum"]) == ("number", 0.0, 1.0)
    assert schema["properties"]["verdict"]["enum"] == ["approve", "reduce", "veto"]
    reasons = schema["properties"]["reasons"]
    assert (reasons["minItems"], reasons["maxItems"]) == (1, 5)
    assert reasons["items"] == {"type": "string"}  # string length is checked by pydantic
    assert "description" not in schema  # class docstrings are not sent
    assert "$defs" not in schema


def test_schema_is_stable_and_a_fresh_copy() -> None:
    first = json_schema_for(MarketAssessment)
    text = json.dumps(first)
    first["properties"].clear()
    assert json.dumps(json_schema_for(MarketAssessment)) == text


def test_refs_are_inlined_and_field_descriptions_kept() -> None:
    schema = json_schema_for(Outer)
    leg = schema["properties"]["leg"]
    assert leg["description"] == "the main leg"
    assert leg["properties"]["price"] == {"description": "the price", "type": "number"}
    assert leg["required"] == ["price", "note"]  # strict mode: every property required
    assert schema["properties"]["legs"]["items"]["properties"]["price"]["type"] == "number"
    assert "A developer docstring" not in json.dumps(schema)


def test_recursive_model_keeps_a_ref() -> None:
    schema = json_schema_for(Outer)
    assert schema["properties"]["tree"]["properties"]["children"]["items"] == {
        "$ref": "#/$defs/Tree"
    }
    tree = schema["$defs"]["Tree"]
    assert tree["additionalProperties"] is False
    assert tree["required"] == ["name", "children"]


def test_schema_instructions() -> None:
    text = schema_instructions(MarketAssessment)
    assert text.startswith("Answer with one JSON object only, matching this JSON schema: {")
    embedded = text.split("JSON schema: ", 1)[1].split("\n", 1)[0]
    assert json.loads(embedded) == json_schema_for(MarketAssessment)
    assert schema_instructions(MarketAssessment) == text


# -- extract_json ------------------------------------------------------------------------------

EXTRACT_CASES = [
    ("whole", '{"a": 1}', {"a": 1}),
    ("whole with spaces", '  \n{"a": [1, 2]}\n ', {"a": [1, 2]}),
    ("whole array", "[1, 2]", [1, 2]),
    ("json fence", 'Sure:\n```json\n{"a": 1}\n```\nDone.', {"a": 1}),
    ("bare fence", 'x\n```\n{"a": 2}\n```', {"a": 2}),
    ("second fence valid", '```json\n{bad}\n```\n```json\n{"a": 3}\n```', {"a": 3}),
    ("prose", 'My verdict is {"a": {"b": 1}} as asked.', {"a": {"b": 1}}),
    (
        "braces in strings",
        'Note: {"a": "}{ not a brace", "b": "\\"}"} end',
        {"a": "}{ not a brace", "b": '"}'},
    ),
    ("first object invalid", 'use {x} then {"a": 1}', {"a": 1}),
    ("nested first", 'text {"outer": {"inner": {}}} {"other": 1}', {"outer": {"inner": {}}}),
    ("unicode", 'Réponse : {"raison": "tendance haussière ✓"}', {"raison": "tendance haussière ✓"}),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in EXTRACT_CASES], ids=[c[0] for c in EXTRACT_CASES]
)
def test_extract_json(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


NOT_JSON = [
    ("empty", ""),
    ("blank", "  \n "),
    ("prose", "I think you should buy."),
    ("unbalanced", 'here {"a": 1'),
    ("nan", '{"a": NaN}'),
    ("infinity", '{"a": Infinity}'),
    ("single quotes", "{'a': 1}"),
]


@pytest.mark.parametrize("text", [c[1] for c in NOT_JSON], ids=[c[0] for c in NOT_JSON])
def test_extract_json_not_json(text: str) -> None:
    with pytest.raises(LLMInvalidOutput) as info:
        extract_json(text, where="supervisor")
    assert info.value.reason == "not_json"
    assert info.value.raw_text == text
    assert info.value.status == "invalid_output"
    assert str(info.value).startswith("supervisor: ")
    assert "\n" not in str(info.value)


# -- parse_answer ------------------------------------------------------------------------------


def test_parse_valid_answer() -> None:
    value = parse_answer(json.dumps(VALID), MarketAssessment, finish_reason="stop", where="s")
    assert isinstance(value, MarketAssessment)
    assert value.take_profit_multiplier == 1.0  # a JSON integer is accepted for a float
    assert value.model_dump(mode="json") == {**VALID, "take_profit_multiplier": 1.0}


def test_parse_answer_in_fence_and_prose() -> None:
    text = f"Here is my assessment:\n```json\n{json.dumps(VALID, indent=2)}\n```"
    assert parse_answer(text, MarketAssessment, finish_reason=None, where="s").verdict == "reduce"


def test_truncated_answer_wins_over_valid_json() -> None:
    text = json.dumps(VALID)
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer(text, MarketAssessment, finish_reason="length", where="supervisor")
    assert info.value.reason == "truncated"
    assert info.value.raw_text == text


def test_not_json_answer() -> None:
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer("approve", MarketAssessment, finish_reason="stop", where="supervisor")
    assert (info.value.reason, info.value.raw_text) == ("not_json", "approve")


SCHEMA_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "size above 1",
        {"size_multiplier": 1.5},
        "size_multiplier: Input should be less than or equal to 1 (got 1.5)",
    ),
    (
        "stop below bound",
        {"stop_multiplier": 0.1},
        "stop_multiplier: Input should be greater than or equal to 0.25 (got 0.1)",
    ),
    (
        "string number",
        {"confidence": "0.5"},
        'confidence: Input should be a valid number (got "0.5")',
    ),
    ("bool number", {"confidence": True}, "confidence: Input should be a valid number (got true)"),
    (
        "unknown verdict",
        {"verdict": "buy"},
        "verdict: Input should be 'approve', 'reduce' or 'veto'",
    ),
    ("extra field", {"leverage": 3}, "leverage: Extra inputs are not permitted (got 3)"),
    ("no reasons", {"reasons": []}, "reasons: List should have at least 1 item"),
    ("six reasons", {"reasons": ["r"] * 6}, "reasons: List should have at most 5 items"),
    (
        "long reason",
        {"reasons": ["x" * 201]},
        "reasons[0]: String should have at most 200 characters",
    ),
    ("blank reason", {"reasons": ["   "]}, "reasons[0]: String should have at least 1 character"),
    ("reason not text", {"reasons": [1]}, "reasons[0]: Input should be a valid string (got 1)"),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_schema_violations(change: dict[str, Any], message: str) -> None:
    text = json.dumps({**VALID, **change})
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer(text, MarketAssessment, finish_reason="stop", where="supervisor")
    error = info.value
    assert error.reason == "schema"
    assert error.raw_text == text
    assert message in str(error)
    assert str(error).startswith("supervisor: the answer does not match MarketAssessment: ")
    assert "other error" not in str(error)
    assert "\n" not in str(error)


def test_missing_field_and_count_of_other_errors() -> None:
    answer = {k: v for k, v in VALID.items() if k != "verdict"}
    answer.update(confidence=2, risk="extreme")
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer(json.dumps(answer), MarketAssessment, finish_reason="stop", where="s")
    text = str(info.value)
    # errors come in field order: the missing verdict first
    assert text.endswith("MarketAssessment: verdict: Field required; and 2 other errors")


def test_missing_field_alone() -> None:
    answer = {k: v for k, v in VALID.items() if k != "risk"}
    with pytest.raises(LLMInvalidOutput, match=r"risk: Field required$"):
        parse_answer(json.dumps(answer), MarketAssessment, finish_reason="stop", where="s")


@pytest.mark.parametrize("text", ["[1, 2]", '"approve"', "42", "null"])
def test_answer_that_is_not_an_object(text: str) -> None:
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer(text, MarketAssessment, finish_reason="stop", where="s")
    assert info.value.reason == "schema"
    assert "(answer): Input should be an object" in str(info.value)


def test_long_values_are_cut_in_the_message() -> None:
    text = json.dumps({**VALID, "verdict": "v" * 500})
    with pytest.raises(LLMInvalidOutput) as info:
        parse_answer(text, MarketAssessment, finish_reason="stop", where="s")
    assert len(str(info.value)) < 250
    assert info.value.raw_text == text


_unit = st.floats(min_value=0, max_value=1, allow_nan=False)
_mult = st.floats(min_value=0.25, max_value=1, allow_nan=False)
_reason = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)  # no timing assertions
@given(
    answer=st.fixed_dictionaries(
        {
            "verdict": st.sampled_from(["approve", "reduce", "veto"]),
            "confidence": _unit,
            "coherence": _unit,
            "risk": st.sampled_from(["low", "medium", "high"]),
            "size_multiplier": _unit,
            "stop_multiplier": _mult,
            "take_profit_multiplier": _mult,
            "reasons": st.lists(_reason, min_size=1, max_size=5),
        }
    ),
    prefix=st.sampled_from(["", "Assessment: ", "```json\n"]),
    suffix=st.sampled_from(["", "\nThat is all.", "\n```"]),
)
def test_valid_answers_round_trip_in_any_wrapping(
    answer: dict[str, Any], prefix: str, suffix: str
) -> None:
    # the verdict fixes the size: veto 0, approve 1, reduce strictly between
    size = answer["size_multiplier"]
    answer["size_multiplier"] = {"veto": 0.0, "approve": 1.0}.get(
        answer["verdict"], min(max(size, 0.01), 0.99)
    )
    text = prefix + json.dumps(answer, ensure_ascii=False) + suffix
    value = parse_answer(text, MarketAssessment, finish_reason="stop", where="s")
    assert value.model_dump(mode="json") == answer


@pytest.mark.parametrize(
    ("verdict", "size"), [("veto", 1.0), ("veto", 0.5), ("approve", 0.5), ("reduce", 1.0),
                          ("reduce", 0.0), ("approve", 0.0)],
)  # fmt: skip
def test_a_verdict_and_its_size_must_agree(verdict: str, size: float) -> None:
    answer = {**VALID, "verdict": verdict, "size_multiplier": size}
    with pytest.raises(LLMInvalidOutput, match=f"verdict '{verdict}' needs size_multiplier"):
        parse_answer(json.dumps(answer), MarketAssessment, finish_reason="stop", where="s")
