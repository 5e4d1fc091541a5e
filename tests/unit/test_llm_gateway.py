"""The gateway's steps with in-process providers: modes, cache, budgets, retries, tracing.

(The HTTP protocols are exercised in tests/integration/test_llm_gateway_http.py against the local
protocol server.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from morningstar.config import LLMBudget
from morningstar.errors import (
    LLMBudgetExceeded,
    LLMCacheMiss,
    LLMInvalidOutput,
    LLMProviderError,
    LLMRateLimitedError,
    LLMTimeoutError,
    LLMTransportError,
    StorageError,
)
from morningstar.llm.budget import BudgetBook
from morningstar.llm.cache import ReplayCache
from morningstar.llm.gateway import Gateway
from morningstar.llm.monitor import LLMMonitor
from morningstar.llm.pricing import PriceTable
from morningstar.llm.prompts import load_template
from morningstar.llm.providers.offline import OfflineProvider
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.types import LLMProvider, LLMRequest, Message, OutputMode, Usage
from morningstar.retry import RetryPolicy
from morningstar.store import Database, open_database
from tests.fakes.scripted_llm import ScriptedLLM, reply

MARKET: dict[str, Any] = {
    "pair": "BTC/USDT",
    "timeframe": "1h",
    "as_of": "2024-03-01T12:00:00+00:00",
    "close": 61_250.5,
    "signal": 1,
    "confidence": 0.7,
    "trend": 0.012,
    "volatility": 0.55,
    "regime": "trending",
    "atr": 640.0,
    "rsi": 61.0,
    "stop_distance": 1_900.0,
    "target_distance": 2_500.0,
}
VALID = json.dumps(
    {
        "verdict": "reduce",
        "confidence": 0.6,
        "coherence": 0.8,
        "risk": "medium",
        "size_multiplier": 0.5,
        "stop_multiplier": 0.9,
        "take_profit_multiplier": 1.0,
        "reasons": ["volatility is high"],
    }
)


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = open_database(f"sqlite:///{tmp_path / 'llm.sqlite'}")
    yield database
    database.dispose()


def make_gateway(
    provider: LLMProvider,
    *,
    db: Database | None = None,
    cache_mode: str = "off",
    model: str = "gpt-4o-mini",
    budget: LLMBudget | None = None,
    agents: dict[str, LLMBudget] | None = None,
    attempts: int = 4,
    concurrency: int = 4,
) -> Gateway:
    """A gateway with a retry policy that never sleeps."""
    return Gateway(
        provider,
        model=model,
        monitor=LLMMonitor(db=db),
        cache=ReplayCache(db, cache_mode),  # type: ignore[arg-type]
        budgets=BudgetBook(budget or LLMBudget(), agents or {}),
        prices=PriceTable.load(),
        retry=RetryPolicy(max_attempts=attempts, sleep=lambda _s: None, rng=random.Random(1)),
        max_concurrency=concurrency,
    )


def assessment_request(**kwargs: Any) -> LLMRequest:
    return load_template("market_assessment").render(MARKET, caller="supervisor", **kwargs)


def test_offline_analyst_answers_a_structured_request_and_is_traced() -> None:
    gateway = make_gateway(OfflineProvider(), model="rule-based")
    result = gateway.call(assessment_request())
    assert isinstance(result.value, MarketAssessment)
    assert result.rule_based and result.provider == "offline"
    assert result.cost_usd == 0.0
    (record,) = gateway.monitor.history()
    assert record.status == "ok" and record.caller == "supervisor"
    assert record.template_id == "market_assessment" and record.price_status == "free"
    assert gateway.monitor.active() == []
    gateway.close()


def test_json_schema_mode_for_a_capable_model_and_prompt_mode_otherwise() -> None:
    strong = ScriptedLLM([reply(VALID)], name="openai")
    make_gateway(strong, model="gpt-4o-mini").call(assessment_request())
    (call,) = strong.calls
    assert call.mode is OutputMode.JSON_SCHEMA and call.json_schema is not None
    assert call.json_schema["additionalProperties"] is False
    assert "JSON schema" not in call.request.messages[0].content  # decoding is constrained
    weak = ScriptedLLM([reply(VALID)], name="openai")
    make_gateway(weak, model="my-local-vllm-model").call(assessment_request())
    (call,) = weak.calls
    assert call.mode is OutputMode.PROMPT
    system = call.request.messages[0]
    assert system.role == "system" and "JSON schema" in system.content  # described instead


def test_temporary_errors_are_retried_and_counted() -> None:
    provider = ScriptedLLM(
        [LLMRateLimitedError("429"), LLMTransportError("500"), reply(VALID)], name="openai"
    )
    gateway = make_gateway(provider)
    result = gateway.call(assessment_request())
    assert len(provider.calls) == 3 and result.retries == 2
    assert gateway.monitor.history()[0].retries == 2


def test_retries_stop_after_the_policy_and_the_status_is_recorded() -> None:
    provider = ScriptedLLM([LLMTimeoutError("slow")] * 3, name="openai")
    gateway = make_gateway(provider, attempts=3)
    with pytest.raises(LLMTimeoutError):
        gateway.call(assessment_request())
    assert len(provider.calls) == 3
    record = gateway.monitor.history()[0]
    assert record.status == "timeout" and record.error_type == "LLMTimeoutError"
    assert record.retries == 2


def test_a_refusal_is_not_retried() -> None:
    provider = ScriptedLLM([LLMProviderError("model not found")], name="openai")
    gateway = make_gateway(provider)
    with pytest.raises(LLMProviderError):
        gateway.call(assessment_request())
    assert len(provider.calls) == 1
    assert gateway.monitor.history()[0].status == "provider_error"


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("I think you should buy.", "stop", "not_json"),
        (VALID.replace('"size_multiplier": 0.5', '"size_multiplier": 1.5'), "stop", "schema"),
        (VALID.replace('"risk": "medium"', '"risk": "medium", "leverage": 3'), "stop", "schema"),
        (VALID[:60], "length", "truncated"),
    ],
)
def test_an_invalid_answer_is_a_typed_error_with_the_raw_text(
    text: str, finish: str, reason: str
) -> None:
    provider = ScriptedLLM([reply(text, finish_reason=finish)], name="openai")
    gateway = make_gateway(provider)
    with pytest.raises(LLMInvalidOutput) as info:
        gateway.call(assessment_request())
    assert info.value.raw_text == text and info.value.reason == reason
    record = gateway.monitor.history()[0]
    assert record.status == "invalid_output"
    assert record.input_tokens == 10  # the tokens were spent: recorded and charged
    assert gateway.budgets.snapshot()["session"]["tokens"] == 15


def test_free_text_keeps_the_finish_reason() -> None:
    provider = ScriptedLLM([reply("a long answ", finish_reason="length")], name="openai")
    result = make_gateway(provider).call(LLMRequest(messages=(Message("user", "hi"),)))
    assert result.value is None and result.text == "a long answ"
    assert result.finish_reason == "length"


def test_record_then_replay_is_byte_identical_without_calling_the_provider(db: Any) -> None:
    recorder = ScriptedLLM([reply(VALID, input_tokens=120, output_tokens=40)], name="openai")
    first = make_gateway(recorder, db=db, cache_mode="record").call(assessment_request())
    replayer = ScriptedLLM([], name="openai")
    again = make_gateway(replayer, db=db, cache_mode="replay").call(assessment_request())
    assert replayer.calls == []
    assert again.cache_hit and again.text == first.text
    assert again.value == first.value and again.usage == first.usage
    assert json.dumps(again.value.model_dump(mode="json")) == json.dumps(  # type: ignore[union-attr]
        first.value.model_dump(mode="json")  # type: ignore[union-attr]
    )
    other = assessment_request(temperature=0.5)  # another temperature: another key
    with pytest.raises(LLMCacheMiss):
        make_gateway(replayer, db=db, cache_mode="replay").call(other)
    assert replayer.calls == []


def test_record_mode_answers_a_repeated_request_from_the_cache() -> None:
    provider = ScriptedLLM([reply(VALID)], name="openai")
    gateway = make_gateway(provider, cache_mode="record")
    gateway.call(assessment_request())
    second = gateway.call(assessment_request())
    assert len(provider.calls) == 1 and second.cache_hit and second.cost_usd == 0.0
    statuses = [(r.status, r.cache_hit) for r in gateway.monitor.history()]
    assert statuses == [("ok", True), ("ok", False)]  # newest first


def test_a_spent_budget_stops_spending() -> None:
    provider = ScriptedLLM(default=reply(VALID, input_tokens=50, output_tokens=10), name="openai")
    gateway = make_gateway(provider, budget=LLMBudget(tokens=100))
    gateway.call(assessment_request())
    gateway.call(assessment_request())  # 60 spent < 100: allowed, 120 after
    with pytest.raises(LLMBudgetExceeded, match="session"):
        gateway.call(assessment_request())
    assert len(provider.calls) == 2
    assert gateway.monitor.history()[0].status == "budget"


def test_an_agent_budget_stops_only_that_agent() -> None:
    provider = ScriptedLLM(default=reply(VALID, input_tokens=50, output_tokens=10), name="openai")
    gateway = make_gateway(provider, agents={"strategist": LLMBudget(tokens=10)})
    gateway.call(_as("strategist"))  # 60 tokens spent: more than its 10
    with pytest.raises(LLMBudgetExceeded, match="strategist"):
        gateway.call(_as("strategist"))
    gateway.call(_as("supervisor"))
    assert len(provider.calls) == 2


def _as(caller: str) -> LLMRequest:
    return load_template("market_assessment").render(MARKET, caller=caller)


def test_a_usd_budget_refuses_a_model_without_a_price() -> None:
    provider = ScriptedLLM([reply(VALID)], name="openai")
    gateway = make_gateway(provider, model="no-such-model", budget=LLMBudget(usd=1.0))
    with pytest.raises(LLMBudgetExceeded, match="price"):
        gateway.call(assessment_request())
    assert provider.calls == []


def test_an_unknown_price_is_unknown_never_zero() -> None:
    provider = ScriptedLLM([reply("hello")], name="openai")
    result = make_gateway(provider, model="no-such-model").call(
        LLMRequest(messages=(Message("user", "hi"),))
    )
    assert result.cost_usd is None
    assert make_gateway(ScriptedLLM([reply("x")], name="openai")).call(
        LLMRequest(messages=(Message("user", "hi"),))
    ).cost_usd == pytest.approx(10 * 0.15e-6 + 5 * 0.6e-6)  # gpt-4o-mini


def test_absent_usage_stays_absent() -> None:
    provider = ScriptedLLM([reply("hi", input_tokens=None, output_tokens=None)], name="openai")
    gateway = make_gateway(provider)
    result = gateway.call(LLMRequest(messages=(Message("user", "hello"),)))
    assert result.usage.input_tokens is None and result.cost_usd is None
    record = gateway.monitor.history()[0]
    assert record.input_tokens is None and record.output_tokens is None
    assert record.price_status == "unknown"


def test_an_unexpected_provider_failure_becomes_a_typed_error() -> None:
    provider = ScriptedLLM([ZeroDivisionError("bug")], name="openai")
    gateway = make_gateway(provider)
    with pytest.raises(LLMProviderError, match="ZeroDivisionError"):
        gateway.call(LLMRequest(messages=(Message("user", "x"),)))
    assert gateway.monitor.history()[0].status == "provider_error"


def test_a_configured_output_mode_overrides_the_capability_table() -> None:
    provider = ScriptedLLM([reply(VALID), reply("free text")], name="openai")
    gateway = make_gateway(provider, model="my-local-vllm-model")
    gateway.output_mode = OutputMode.JSON_SCHEMA
    gateway.call(assessment_request())
    gateway.call(LLMRequest(messages=(Message("user", "hi"),)))
    assert [c.mode for c in provider.calls] == [OutputMode.JSON_SCHEMA, OutputMode.TEXT]


def test_a_cancelled_call_is_recorded_with_its_partial_usage() -> None:
    class Interrupting(ScriptedLLM):
        def complete(self, call: Any) -> Any:
            call.on_partial_usage(Usage(output_tokens=7))  # 7 tokens streamed, then Ctrl-C
            raise KeyboardInterrupt

    gateway = make_gateway(Interrupting(name="openai"))
    with pytest.raises(KeyboardInterrupt):
        gateway.call(LLMRequest(messages=(Message("user", "x"),), stream=True))
    record = gateway.monitor.history()[0]
    assert record.status == "cancelled" and record.output_tokens == 7
    assert record.input_tokens is None and record.error_type == "KeyboardInterrupt"
    assert gateway.budgets.snapshot()["session"]["tokens"] == 7
    assert gateway.monitor.active() == []


@pytest.mark.parametrize("text", ['{"confidence": 1e999}', "[" * 50_000 + "]" * 50_000])
def test_an_unusable_json_answer_is_invalid_output_and_the_call_is_finished(text: str) -> None:
    gateway = make_gateway(ScriptedLLM([reply(text)], name="openai"))
    with pytest.raises(LLMInvalidOutput) as info:
        gateway.call(assessment_request())
    assert info.value.reason in ("not_json", "schema")
    assert gateway.monitor.active() == []
    assert gateway.monitor.history()[0].status == "invalid_output"


def test_a_cache_failure_still_finishes_the_trace(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'broken.sqlite'}")
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE llm_cache")
        gateway = make_gateway(ScriptedLLM([reply(VALID)], name="openai"), cache_mode="record")
        gateway.cache = ReplayCache(db, "record")
        with pytest.raises(StorageError):
            gateway.call(assessment_request())
        assert gateway.monitor.active() == []
        (record,) = gateway.monitor.history()
        assert record.error_type == "StorageError"
    finally:
        db.dispose()


def test_a_usd_budget_stops_a_provider_that_reports_no_usage() -> None:
    silent = reply(VALID, input_tokens=None, output_tokens=None)
    provider = ScriptedLLM(default=silent, name="openai")
    gateway = make_gateway(provider, model="gpt-4.1", budget=LLMBudget(usd=0.005))
    with pytest.raises(LLMBudgetExceeded):
        for _ in range(100):
            gateway.call(assessment_request())
    assert 1 < len(provider.calls) < 100  # estimated spend (4 chars a token) reached $0.005
    assert all(r.cost_usd is None for r in gateway.monitor.history(limit=200) if r.status == "ok")


def test_tokens_of_an_attempt_cut_short_are_charged_after_a_retry() -> None:
    class CutThenAnswer(ScriptedLLM):
        def complete(self, call: Any) -> Any:
            if not self.calls:
                self.calls.append(call)
                call.on_partial_usage(Usage(output_tokens=500))
                raise LLMTransportError("stream cut")
            return super().complete(call)

    gateway = make_gateway(CutThenAnswer([reply(VALID, input_tokens=10, output_tokens=5)],
                                         name="openai"))  # fmt: skip
    result = gateway.call(assessment_request())
    assert result.retries == 1 and result.usage == Usage(input_tokens=10, output_tokens=505)
    assert gateway.budgets.snapshot()["session"]["tokens"] == 515


def test_a_replayed_result_is_the_recorded_one() -> None:
    cut = reply("a long answ", finish_reason="length", model="gpt-4o-mini-2024-07-18")
    gateway = make_gateway(ScriptedLLM([cut], name="openai"), cache_mode="record")
    request = LLMRequest(messages=(Message("user", "hi"),))
    live = gateway.call(request)
    replayed = gateway.call(request)
    assert replayed.cache_hit
    for name in ("text", "usage", "value", "model", "finish_reason", "provider"):
        assert getattr(replayed, name) == getattr(live, name), name
    assert live.model == "gpt-4o-mini-2024-07-18" and replayed.finish_reason == "length"


def test_a_request_holding_a_secret_is_not_recorded() -> None:
    gateway = make_gateway(ScriptedLLM(default=reply("ok"), name="openai"), cache_mode="record")
    leaked = LLMRequest(messages=(Message("user", "key sk-live-abcdefghijklmnop, trend?"),))
    gateway.call(leaked)
    assert len(gateway.cache) == 0
    assert not gateway.call(leaked).cache_hit
    gateway.call(LLMRequest(messages=(Message("user", "trend?"),)))
    assert len(gateway.cache) == 1
