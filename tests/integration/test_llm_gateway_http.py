"""The gateway over the real protocols, against the local OpenAI / Ollama stand-in on 127.0.0.1.

In flight calls in the active registry, retries counted, streaming time to first token, the
concurrency limit, record → replay byte-identical with no network call (also through an exported
session file), and secrets kept out of logs, traces, metrics and the database.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from morningstar.config import LLMBudget
from morningstar.errors import LLMInvalidOutput, LLMProviderError
from morningstar.llm.budget import BudgetBook
from morningstar.llm.cache import ReplayCache
from morningstar.llm.gateway import Gateway
from morningstar.llm.monitor import LLMMonitor
from morningstar.llm.pricing import PriceTable
from morningstar.llm.prompts import load_template
from morningstar.llm.providers.ollama import OllamaProvider
from morningstar.llm.providers.openai_compat import OpenAICompatProvider
from morningstar.llm.types import LLMProvider, LLMRequest, LLMResult, Message
from morningstar.logs import setup_logging
from morningstar.retry import RetryPolicy
from morningstar.store import Database, open_database
from tests.fakes.llm_server import OLLAMA_CHAT, OPENAI_CHAT, FakeLLMServer, Scripted, Tokens
from tests.unit.test_llm_gateway import MARKET

SECRET = "sk-live-Zq81XvB2nR6tY0pLmK4wS9dF"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(max_lifetime_s=60) as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'llm.sqlite'}")
    yield database
    database.dispose()


def gateway(
    provider: LLMProvider,
    db: Database | None = None,
    *,
    cache_mode: str = "off",
    model: str = "gpt-4o-mini",
    concurrency: int = 4,
    capture: str = "truncated",
) -> Gateway:
    return Gateway(
        provider,
        model=model,
        monitor=LLMMonitor(db=db, capture=capture),  # type: ignore[arg-type]
        cache=ReplayCache(db, cache_mode),  # type: ignore[arg-type]
        budgets=BudgetBook(LLMBudget(), {}),
        prices=PriceTable.load(),
        retry=RetryPolicy(max_attempts=4, sleep=lambda _s: None, rng=random.Random(3)),
        timeout_s=10.0,
        max_concurrency=concurrency,
    )


def openai(server: FakeLLMServer, key: str | None = None) -> OpenAICompatProvider:
    return OpenAICompatProvider(server.openai_base_url, key, timeout_s=10.0)


def assessment(**kwargs: Any) -> LLMRequest:
    return load_template("market_assessment").render(MARKET, caller="supervisor", **kwargs)


def test_a_call_is_visible_in_the_active_registry_while_the_server_holds_it(
    server: FakeLLMServer, db: Database
) -> None:
    release = threading.Event()
    server.queue_openai(Scripted(hold=release))
    gw = gateway(openai(server), db)
    results: list[LLMResult] = []
    worker = threading.Thread(target=lambda: results.append(gw.call(assessment())))
    worker.start()
    try:
        assert server.wait_for_requests(1)
        (active,) = gw.monitor.active()
        assert active.caller == "supervisor" and active.model == "gpt-4o-mini"
        assert active.provider == "openai" and len(active.prompt_excerpt) <= 200
    finally:
        release.set()
        worker.join(10)
    assert results and gw.monitor.active() == []
    gw.monitor.flush()
    (record,) = gw.monitor.history()
    assert record.status == "ok" and record.input_tokens == 12 and record.output_tokens == 5
    assert record.cost_usd == pytest.approx(12 * 0.15e-6 + 5 * 0.6e-6)
    gw.close()


def test_retries_over_http_are_counted(server: FakeLLMServer) -> None:
    server.queue_openai(Scripted(status=429, retry_after=0), Scripted(status=500), Scripted())
    gw = gateway(openai(server))
    result = gw.call(assessment())
    assert result.retries == 2 and server.requests[OPENAI_CHAT] == 3
    assert gw.monitor.history()[0].retries == 2
    gw.close()


def test_streaming_records_the_time_to_first_token(server: FakeLLMServer) -> None:
    server.queue_openai(Scripted(content="The trend is up and volatility is low."))
    gw = gateway(openai(server))
    result = gw.call(LLMRequest(messages=(Message("user", "trend?"),), stream=True))
    assert result.text == "The trend is up and volatility is low."
    (record,) = gw.monitor.history()
    assert record.streamed and record.ttft_s is not None and record.ttft_s <= record.latency_s
    assert server.last(OPENAI_CHAT).body["stream_options"] == {"include_usage": True}
    gw.close()


def test_a_truncated_structured_answer_is_invalid_output(server: FakeLLMServer) -> None:
    server.queue_ollama(Scripted(content='{"verdict": "appr', truncated=True))
    gw = gateway(OllamaProvider(server.ollama_base_url, timeout_s=10.0), model="llama3.2")
    with pytest.raises(LLMInvalidOutput) as info:
        gw.call(assessment())
    assert info.value.reason == "truncated" and info.value.raw_text == '{"verdict": "appr'
    body = server.last(OLLAMA_CHAT).body
    assert body["format"]["properties"]["verdict"]["enum"] == ["approve", "reduce", "veto"]
    gw.close()


def test_the_concurrency_limit_holds_calls_back(server: FakeLLMServer) -> None:
    release = threading.Event()
    server.queue_openai(*(Scripted(hold=release) for _ in range(4)))
    gw = gateway(openai(server), concurrency=2)
    workers = [threading.Thread(target=gw.call, args=(assessment(),)) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        assert server.wait_for_requests(2)
        # all four are traced as active, but only two reached the server: two wait for a slot
        deadline = time.monotonic() + 10
        while len(gw.monitor.active()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(gw.monitor.active()) == 4
        assert server.requests[OPENAI_CHAT] == 2
    finally:
        release.set()
        for w in workers:
            w.join(10)
    assert server.requests[OPENAI_CHAT] == 4
    gw.close()


def _session(gw: Gateway) -> bytes:
    """A small recorded 'session': three calls, their answers serialised."""
    out = []
    for req in (
        assessment(),
        assessment(temperature=0.2),
        load_template("ask").render({"question": "Trend?", "market": MARKET}, caller="manual"),
    ):
        res = gw.call(req)
        value = res.value.model_dump(mode="json") if res.value is not None else None
        out.append({"text": res.text, "value": value, "usage": res.usage.to_dict()})
    return json.dumps(out, sort_keys=True).encode()


def test_replay_is_byte_identical_and_makes_no_network_call(
    server: FakeLLMServer, db: Database, tmp_path: Path
) -> None:
    server.queue_openai(
        Scripted(usage=Tokens(300, 60, 100)),
        Scripted(),
        Scripted(content="EUR/USD trends up.", usage=None),
    )
    recorded = _session(gateway(openai(server), db, cache_mode="record"))
    assert server.requests[OPENAI_CHAT] == 3
    # replay through a provider pointed at a closed port: any network call would fail
    closed = OpenAICompatProvider("http://127.0.0.1:9/v1", None, timeout_s=1.0)
    replayed = _session(gateway(closed, db, cache_mode="replay"))
    assert replayed == recorded
    # published: export the cache, import it elsewhere, replay there
    path = tmp_path / "session.jsonl"
    assert ReplayCache(db, "record").export_jsonl(path) == 3
    elsewhere = ReplayCache(None, "replay")
    assert elsewhere.import_jsonl(path) == 3
    other = Gateway(
        closed, model="gpt-4o-mini", monitor=LLMMonitor(), cache=elsewhere,
        budgets=BudgetBook(LLMBudget(), {}), prices=PriceTable.load(),
    )  # fmt: skip
    assert _session(other) == recorded
    assert server.requests[OPENAI_CHAT] == 3


def test_secrets_never_reach_logs_traces_metrics_or_the_database(
    server: FakeLLMServer, db: Database, tmp_path: Path
) -> None:
    log_file = tmp_path / "log.jsonl"
    setup_logging(level="DEBUG", file=log_file, secrets=[SECRET], console=False)
    try:
        keyed = FakeLLMServer(api_key=SECRET, max_lifetime_s=60).start()
        try:
            gw = gateway(openai(keyed, SECRET), db, capture="full", cache_mode="record")
            leaked = LLMRequest(
                messages=(Message("user", f"my key is {SECRET}, is BTC trending?"),),
            )
            gw.call(leaked)
            assert keyed.last(OPENAI_CHAT).headers["authorization"] == f"Bearer {SECRET}"
            bad = gateway(
                openai(keyed, "sk-wrong-key-000000000000"), db, capture="full", cache_mode="record"
            )
            with pytest.raises(LLMProviderError) as info:
                bad.call(leaked)
            assert SECRET not in str(info.value)
            logging.getLogger("morningstar.test").warning("prompt was %s", leaked.prompt_text())
            gw.monitor.flush()
            bad.monitor.flush()
        finally:
            keyed.close()
        texts = [log_file.read_text(encoding="utf-8")]
        texts += [json.dumps(r.to_dict(), default=str) for r in gw.monitor.history()]
        texts += [json.dumps(a.to_dict(), default=str) for a in gw.monitor.active()]
        texts.append(generate_latest(gw.monitor.registry).decode())
        with db.engine.connect() as conn:
            for table in ("llm_calls", "llm_cache"):
                rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
                texts.append(json.dumps([list(map(str, row)) for row in rows]))
        assert gw.monitor.history()[0].prompt is not None  # full capture, redacted
        for text in texts:
            assert SECRET not in text
        gw.close()
        bad.close()
    finally:
        setup_logging(level="WARNING", console=False)
