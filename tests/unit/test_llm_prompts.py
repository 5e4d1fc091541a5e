"""Prompt templates: loading, checking, point-in-time rendering and the shipped prompts."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest

from morningstar.errors import ConfigError, UserInputError
from morningstar.llm.prompts import (
    PromptTemplate,
    format_value,
    list_templates,
    load_template,
    load_template_file,
    parse_template,
)
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.types import LLMRequest

MARKET: dict[str, Any] = {
    "pair": "BTC/USDT",
    "timeframe": "1h",
    "as_of": "2024-05-01T12:00:00+00:00",
    "close": 67234.5612,
    "signal": 1,
    "confidence": 0.62,
    "trend": 0.0123456789,
    "volatility": 0.55,
    "regime": "trending",
    "atr": 812.3,
    "rsi": 61.2,
}

GOLDEN_MARKET_USER = """\
Proposed trade on BTC/USDT, 1h bars, as of 2024-05-01T12:00:00+00:00:
- side proposed by the rules (signal): 1 (1 = long, -1 = short, 0 = no trade)
- confidence of the rules: 0.62 (0..1)
- last close: 67234.561
- trend (fast EMA / slow EMA - 1): 0.012345679
- annualised volatility (fraction): 0.55
- regime: trending
- ATR: 812.3
- RSI: 61.2
- proposed stop-loss distance (quote currency): 1200

Review this trade and give your verdict."""


def _render(inputs: dict[str, Any], **kwargs: Any) -> LLMRequest:
    return load_template("market_assessment", 1).render(inputs, caller="supervisor", **kwargs)


# -- registry ----------------------------------------------------------------------------------


def test_shipped_templates() -> None:
    refs = [t.ref for t in list_templates()]
    assert refs == ["ask@1", "market_assessment@1"]
    assert load_template("market_assessment") is load_template("market_assessment", 1)
    assert load_template("ask").schema is None
    assert load_template("market_assessment").schema is MarketAssessment
    assert load_template("market_assessment").failure == "abstain"
    assert load_template("ask").failure == "show_error"


def test_unknown_template_suggests() -> None:
    with pytest.raises(
        UserInputError,
        match=r"unknown prompt template 'market_asessment' \(did you mean 'market_assessment'\?\)",
    ):
        load_template("market_asessment")
    with pytest.raises(UserInputError, match=r"known: ask, market_assessment"):
        load_template("zzz")
    with pytest.raises(UserInputError, match=r"has no version 7 \(known: 1\)"):
        load_template("ask", 7)


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.ref)
def test_every_template_is_consistent(template: PromptTemplate) -> None:
    for body in (template.system, template.user):
        assert set(string.Template(body).get_identifiers()) <= set(template.inputs)
    for spec in template.inputs.values():
        assert spec.description
    if template.schema is not None:
        for name in template.schema.model_fields:  # the system prompt states the answer format
            assert name in template.system, name
    assert Path(template.source).name == f"{template.id}.v{template.version}.yaml"


# -- market_assessment -------------------------------------------------------------------------


def test_market_assessment_rendering_is_golden() -> None:
    request = _render({**MARKET, "stop_distance": 1200.0}, seed=7, max_tokens=300)
    system, user = request.messages
    assert (system.role, user.role) == ("system", "user")
    assert user.content == GOLDEN_MARKET_USER
    assert "never open a trade the rules did not propose" in system.content
    assert "enlarge its size" in system.content
    assert request.schema is MarketAssessment
    assert (request.template_id, request.template_version) == ("market_assessment", 1)
    assert request.caller == "supervisor"
    assert (request.seed, request.max_tokens) == (7, 300)
    assert request.inputs == {**MARKET, "stop_distance": 1200.0}


def test_optional_inputs_absent_leave_no_trace() -> None:
    user = _render(MARKET).messages[1].content
    assert "stop-loss" not in user and "take-profit" not in user
    assert "\n\n\n" not in user
    assert user == _render({**MARKET, "stop_distance": None}).messages[1].content
    both = _render({**MARKET, "stop_distance": 1.5, "target_distance": 3}).messages[1].content
    assert "- proposed stop-loss distance (quote currency): 1.5\n- proposed take-profit" in both


def test_rendering_is_point_in_time_and_deterministic() -> None:
    first = _render(MARKET)
    assert _render(dict(MARKET)) == first  # same inputs, same request
    later = _render({**MARKET, "close": 70000.0})
    changed = [
        (a, b)
        for a, b in zip(
            first.messages[1].content.splitlines(),
            later.messages[1].content.splitlines(),
            strict=True,
        )
        if a != b
    ]
    assert changed == [("- last close: 67234.561", "- last close: 70000")]
    assert first.messages[0] == later.messages[0]


def test_inputs_are_a_plain_copy() -> None:
    inputs = dict(MARKET)
    request = _render(inputs)
    inputs["close"] = 1.0
    assert request.inputs["close"] == MARKET["close"]
    assert type(request.inputs) is dict


def test_int_is_accepted_for_float() -> None:
    request = _render({**MARKET, "close": 65000})
    assert request.inputs["close"] == 65000.0
    assert "- last close: 65000\n" in request.messages[1].content


INPUT_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("missing", {"close": None}, "missing required input 'close'"),
    ("unknown", {"closee": 1.0}, "unknown input 'closee' (did you mean 'close'?)"),
    ("str for float", {"close": "67000"}, "input 'close' must be a number, got str"),
    ("bool for float", {"atr": True}, "input 'atr' must be a number, got bool"),
    ("float for int", {"signal": 1.0}, "input 'signal' must be an integer, got float"),
    ("int for str", {"pair": 5}, "input 'pair' must be a string, got int"),
    ("nan", {"rsi": float("nan")}, "input 'rsi' must be a finite number, got nan"),
    ("inf", {"trend": float("inf")}, "input 'trend' must be a finite number, got inf"),
    ("choice", {"signal": 2}, "input 'signal' must be one of -1, 0, 1, got 2"),
    ("regime", {"regime": "bull"}, "input 'regime' must be one of trending, ranging, volatile"),
    ("above max", {"confidence": 1.2}, "input 'confidence' must be <= 1, got 1.2"),
    ("below min", {"volatility": -0.1}, "input 'volatility' must be >= 0, got -0.1"),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in INPUT_ERRORS], ids=[c[0] for c in INPUT_ERRORS]
)
def test_input_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError) as info:
        _render({**MARKET, **change})
    text = str(info.value)
    assert text.startswith("prompt market_assessment@1: ")
    assert message in text
    assert "\n" not in text


def test_unknown_request_option() -> None:
    with pytest.raises(
        UserInputError,
        match=r"unknown request option 'temprature' \(did you mean 'temperature'\?\)",
    ):
        _render(MARKET, temprature=0.2)
    with pytest.raises(UserInputError, match="unknown request option 'schema'"):
        _render(MARKET, schema=None)


FORMATS = [
    (2.0, "2"),
    (0.1234567891, "0.12345679"),
    (1e-05, "0.00001"),
    (67234.5612, "67234.561"),
    (-0.0, "0"),
    (-1.5, "-1.5"),
    (123456789.0, "123456790"),
    (3, "3"),
    (-1, "-1"),
    (True, "true"),
    (False, "false"),
    ("BTC/USDT", "BTC/USDT"),
    ({"b": 1.50, "a": "x"}, "- a: x\n- b: 1.5"),
]


@pytest.mark.parametrize(("value", "text"), FORMATS, ids=[repr(v) for v, _ in FORMATS])
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


# -- ask -----------------------------------------------------------------------------------------


def test_ask_without_market() -> None:
    request = load_template("ask").render({"question": "What is an ATR?"}, caller="manual")
    assert request.messages[1].content == "Question: What is an ATR?"
    assert request.schema is None
    assert request.inputs == {"question": "What is an ATR?"}


def test_ask_with_market_snapshot() -> None:
    snapshot = {
        "as_of": "2024-05-01T12:00:00+00:00",
        "pair": "BTC/USDT",
        "close": 67000.0,
        "rsi": 71.25,
    }
    request = load_template("ask").render(
        {"question": "Is it overbought?", "market": snapshot}, caller="manual"
    )
    assert request.messages[1].content == (
        "Market snapshot (as of 2024-05-01T12:00:00+00:00):\n"
        "- close: 67000\n- pair: BTC/USDT\n- rsi: 71.25\n\n"
        "Question: Is it overbought?"
    )
    assert request.inputs["market"] == snapshot
    assert request.inputs["market"] is not snapshot


@pytest.mark.parametrize(
    ("market", "message"),
    [
        ({"close": 1.0}, "input 'market' lacks the key 'as_of' its block needs"),
        (
            {"as_of": "t", "x": {"nested": 1}},
            "key 'x' must be a string, number or boolean, got dict",
        ),
        ({"as_of": "t", "x": float("nan")}, "key 'x' must be a finite number"),
        ({"as_of": "t", 3: 1}, "has a non-string key 3"),
        ("not a mapping", "input 'market' must be a mapping, got str"),
    ],
)
def test_ask_market_errors(market: Any, message: str) -> None:
    with pytest.raises(UserInputError, match=f"^prompt ask@1: .*{message}"):
        load_template("ask").render({"question": "q", "market": market}, caller="manual")


# -- template files ------------------------------------------------------------------------------

GOOD = """\
id: demo
version: 2
description: a demo
schema: null
failure: show_error
inputs:
  name: {type: str, required: true, description: who}
  n: {type: int, required: false, description: how many, minimum: 0, block: "count: $value"}
system: ""
user: |
  Hello ${name}!
  $n
"""


def test_parse_good_template_without_system() -> None:
    template = parse_template(GOOD, source="demo.v2.yaml")
    request = template.render({"name": "Ada", "n": 3}, caller="manual")
    assert [m.role for m in request.messages] == ["user"]
    assert request.messages[0].content == "Hello Ada!\ncount: 3"
    assert template.render({"name": "Ada"}, caller="x").messages[0].content == "Hello Ada!"


def test_load_template_file(tmp_path: Path) -> None:
    path = tmp_path / "demo.v2.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_template_file(path).ref == "demo@2"
    with pytest.raises(ConfigError, match="cannot read prompt template"):
        load_template_file(tmp_path / "absent.v1.yaml")


BAD_TEMPLATES: list[tuple[str, str, str, str]] = [
    ("unknown key", "failure: show_error", "failure: show_error\nfailur: x", "failur: unknown key"),
    ("missing key", "failure: show_error\n", "", "failure: is missing"),
    ("bad version", "version: 2", "version: 0", "version: must be an integer >= 1"),
    ("bad id", "id: demo", "id: Demo", "id: 'Demo' must be lower_snake_case"),
    ("schema", "schema: null", "schema: Nope", "schema: unknown schema 'Nope'"),
    (
        "placeholder",
        "Hello ${name}!",
        "Hello ${nam}!",
        "user: uses $nam, which is not a declared input; did you mean $name?",
    ),
    ("dollar", "Hello ${name}!", "Costs $5", "user: has an invalid placeholder"),
    (
        "input type",
        "type: int, required: false",
        "type: number, required: false",
        "inputs.n.type: must be one of",
    ),
    (
        "required",
        "required: true",
        "required: yes please",
        "inputs.name.required: must be true or false",
    ),
    (
        "input key",
        "description: who}",
        "description: who, default: x}",
        "inputs.name.default: unknown key",
    ),
    (
        "block on required",
        "description: who}",
        'description: who, block: "$value"}',
        "inputs.name.block: only optional inputs",
    ),
    ("choices", "minimum: 0,", "minimum: 0, choices: [a],", "inputs.n.choices: 'a' is not a int"),
    (
        "bounds on str",
        "description: who}",
        "description: who, minimum: 1}",
        "inputs.name.minimum: only int and float",
    ),
    ("yaml", "user: |", "user: [", "not valid YAML"),
]


@pytest.mark.parametrize(
    ("old", "new", "message"), [c[1:] for c in BAD_TEMPLATES], ids=[c[0] for c in BAD_TEMPLATES]
)
def test_bad_templates(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        parse_template(GOOD.replace(old, new, 1), source="demo.v2.yaml")
    text = str(info.value)
    assert text.startswith("demo.v2.yaml")
    assert message in text
    assert "\n" not in text


def test_file_name_must_match() -> None:
    with pytest.raises(
        ConfigError, match=r"the file name 'demo\.v1\.yaml' does not match id 'demo' version 2"
    ):
        parse_template(GOOD, source="templates/demo.v1.yaml")
