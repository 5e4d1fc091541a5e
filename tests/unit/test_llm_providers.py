"""The HTTP LLM providers against a local server speaking the real OpenAI and Ollama protocols.

No mocks: every test is a real HTTP exchange with :class:`tests.fakes.llm_server.FakeLLMServer`.
Most tests run for both providers (``proto`` fixture); the capability table is tested at the end.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from morningstar.config import LLMSettings
from morningstar.errors import (
    LLMError,
    LLMProviderError,
    LLMRateLimitedError,
    LLMTimeoutError,
    LLMTransportError,
)
from morningstar.llm.capabilities import (
    CONSERVATIVE,
    ModelCapabilities,
    capabilities_for,
    pick_mode,
)
from morningstar.llm.providers import (
    DEFAULT_OLLAMA_URL,
    OfflineProvider,
    OllamaProvider,
    OpenAICompatProvider,
    make_provider,
)
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.types import (
    LLMProvider,
    LLMRequest,
    Message,
    OutputMode,
    ProviderCall,
    ProviderReply,
    Usage,
)
from tests.fakes.llm_server import (
    DEFAULT_JSON,
    DEFAULT_TEXT,
    OLLAMA_CHAT,
    OPENAI_CHAT,
    FakeLLMServer,
    Scripted,
    Tokens,
)

SCHEMA = MarketAssessment.model_json_schema()
KEY = "sk-test-SECRET-0123456789"
MESSAGES = (Message("system", "You assess trades."), Message("user", "Assess EUR/USD."))


# ----------------------------------------------------------------------------- helpers
@dataclass
class Recorder:
    """Collects the gateway callbacks a provider fires."""

    first_tokens: int = 0
    partial: list[Usage] = field(default_factory=list)

    def first(self) -> None:
        self.first_tokens += 1


@dataclass
class Proto:
    """One protocol under test: its provider, its queue and its chat path."""

    name: str
    server: FakeLLMServer
    provider: LLMProvider
    queue: Callable[..., None]
    path: str
    model: str

    def call(
        self,
        mode: OutputMode = OutputMode.TEXT,
        *,
        stream: bool = False,
        timeout_s: float = 5.0,
        model: str | None = None,
        recorder: Recorder | None = None,
        **request: Any,
    ) -> ProviderReply:
        rec = recorder or Recorder()
        req = LLMRequest(messages=MESSAGES, stream=stream, **request)
        schema = SCHEMA if mode not in (OutputMode.TEXT, OutputMode.PROMPT) else None
        call = ProviderCall(
            request=req,
            model=model or self.model,
            mode=mode,
            json_schema=schema,
            timeout_s=timeout_s,
            on_first_token=rec.first,
            on_partial_usage=rec.partial.append,
        )
        return self.provider.complete(call)

    def body(self) -> dict[str, Any]:
        body = self.server.last(self.path).body
        assert isinstance(body, dict)
        return body


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_message(err: LLMError, provider: str, model: str) -> None:
    """One line, names provider and model, never the key."""
    text = str(err)
    assert "\n" not in text
    assert provider in text and model in text
    assert KEY not in text


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY, known_models_only=True, max_lifetime_s=60) as srv:
        yield srv


@pytest.fixture(params=["openai", "ollama"])
def proto(request: pytest.FixtureRequest, server: FakeLLMServer) -> Iterator[Proto]:
    provider: LLMProvider
    if request.param == "openai":
        provider = OpenAICompatProvider(server.openai_base_url, KEY, timeout_s=5)
        p = Proto("openai", server, provider, server.queue_openai, OPENAI_CHAT, "gpt-4o-mini")
    else:
        provider = OllamaProvider(server.ollama_base_url, timeout_s=5)
        p = Proto("ollama", server, provider, server.queue_ollama, OLLAMA_CHAT, "llama3.2")
    try:
        yield p
    finally:
        provider.close()


@pytest.fixture
def openai_p(server: FakeLLMServer) -> Iterator[Proto]:
    provider = OpenAICompatProvider(server.openai_base_url, KEY, timeout_s=5)
    try:
        yield Proto("openai", server, provider, server.queue_openai, OPENAI_CHAT, "gpt-4o-mini")
    finally:
        provider.close()


# ----------------------------------------------------------------------------- both protocols
def test_providers_implement_the_port(proto: Proto) -> None:
    assert isinstance(proto.provider, LLMProvider)
    assert proto.provider.name == proto.name
    assert proto.provider.local is (proto.name == "ollama")


def test_plain_answer_and_usage(proto: Proto) -> None:
    proto.queue(Scripted(content="Calm market.", usage=Tokens(prompt=40, completion=3)))
    reply = proto.call()
    assert reply.text == "Calm market."
    assert reply.usage.input_tokens == 40
    assert reply.usage.output_tokens == 3
    assert reply.finish_reason == "stop"
    assert reply.model == proto.model
    body = proto.body()
    assert body["model"] == proto.model
    assert body["messages"] == [m.to_dict() for m in MESSAGES]
    assert body["stream"] is False if proto.name == "ollama" else "stream" not in body


def test_default_answer_when_nothing_is_queued(proto: Proto) -> None:
    assert proto.call().text == DEFAULT_TEXT
    assert proto.call(OutputMode.JSON_SCHEMA, schema=MarketAssessment).text == DEFAULT_JSON
    assert proto.server.requests[proto.path] == 2


def test_usage_omitted_is_absent_not_zero(proto: Proto) -> None:
    proto.queue(Scripted(usage=None))
    reply = proto.call()
    assert reply.usage == Usage()
    assert not reply.usage.reported


def test_sampling_options_are_sent(proto: Proto) -> None:
    proto.call(temperature=0.3, seed=7, max_tokens=128)
    body = proto.body()
    if proto.name == "openai":
        assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.3, 7, 128)
    else:
        assert body["options"] == {"temperature": 0.3, "seed": 7, "num_predict": 128}


def test_unset_seed_and_max_tokens_are_not_sent(proto: Proto) -> None:
    proto.call(seed=None, max_tokens=None)
    body = proto.body()
    options = body if proto.name == "openai" else body["options"]
    assert "seed" not in options
    assert not {"max_tokens", "num_predict", "max_completion_tokens"} & set(options)


def test_truncated_answer_reports_length(proto: Proto) -> None:
    proto.queue(Scripted(content='{"verdict": ', truncated=True))
    reply = proto.call(OutputMode.JSON_OBJECT, schema=MarketAssessment)
    assert reply.finish_reason == "length"
    assert reply.text == '{"verdict": '


def test_streaming_accumulates_text_fires_first_token_once_and_reads_usage(proto: Proto) -> None:
    rec = Recorder()
    proto.queue(Scripted(chunks=["Hel", "lo", " world"], usage=Tokens(prompt=9, completion=3)))
    reply = proto.call(stream=True, recorder=rec)
    assert reply.text == "Hello world"
    assert rec.first_tokens == 1
    assert rec.partial == []
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (9, 3)
    assert reply.finish_reason == "stop"
    body = proto.body()
    assert body["stream"] is True
    if proto.name == "openai":
        assert body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_is_absent(proto: Proto) -> None:
    proto.queue(Scripted(chunks=["a", "b"], usage=None))
    reply = proto.call(stream=True)
    assert reply.text == "ab"
    assert reply.usage == Usage()


def test_streaming_truncated_reports_length(proto: Proto) -> None:
    proto.queue(Scripted(chunks=["x"], truncated=True))
    assert proto.call(stream=True).finish_reason == "length"


def test_cut_stream_is_a_transport_error_with_partial_usage(proto: Proto) -> None:
    rec = Recorder()
    proto.queue(Scripted(chunks=["one ", "two ", "three ", "four"], cut_after=2))
    with pytest.raises(LLMTransportError) as info:
        proto.call(stream=True, recorder=rec)
    check_message(info.value, proto.name, proto.model)
    assert "cut" in str(info.value)
    assert rec.partial == [Usage(output_tokens=2)]
    assert rec.first_tokens == 1


def test_stream_cut_before_the_final_event_is_a_transport_error(proto: Proto) -> None:
    rec = Recorder()
    proto.queue(Scripted(chunks=["all ", "content"], cut_after=99))
    with pytest.raises(LLMTransportError):
        proto.call(stream=True, recorder=rec)
    assert rec.partial == [Usage(output_tokens=2)]


def test_failing_callbacks_never_hide_the_outcome(
    proto: Proto, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("callback bug")

    req = LLMRequest(messages=MESSAGES, stream=True)
    call = ProviderCall(req, proto.model, OutputMode.TEXT, None, 5.0, boom, boom)
    proto.queue(Scripted(chunks=["a", "b"]), Scripted(chunks=["a", "b"], cut_after=1))
    assert proto.provider.complete(call).text == "ab"
    with pytest.raises(LLMTransportError):
        proto.provider.complete(call)
    failed = [r.getMessage() for r in caplog.records if "callback failed" in r.getMessage()]
    assert len(failed) == 3  # first token twice, partial usage once


def test_stalled_stream_times_out_with_partial_usage(proto: Proto) -> None:
    rec = Recorder()
    proto.queue(Scripted(chunks=["a", "b", "c"], stall_after=1))
    with pytest.raises(LLMTimeoutError) as info:
        proto.call(stream=True, timeout_s=0.3, recorder=rec)
    check_message(info.value, proto.name, proto.model)
    assert rec.partial == [Usage(output_tokens=1)]


def test_slow_answer_past_the_timeout(proto: Proto) -> None:
    hold = threading.Event()  # never set: the server answers only when it stops
    proto.queue(Scripted(hold=hold))
    with pytest.raises(LLMTimeoutError) as info:
        proto.call(timeout_s=0.3)
    check_message(info.value, proto.name, proto.model)
    assert "0.3s" in str(info.value)


def test_held_call_is_in_flight_until_released(proto: Proto) -> None:
    hold = threading.Event()
    proto.queue(Scripted(content="released", hold=hold))
    result: list[ProviderReply] = []
    worker = threading.Thread(target=lambda: result.append(proto.call()))
    worker.start()
    assert proto.server.wait_for_requests(1)
    assert result == []  # the server holds the answer
    hold.set()
    worker.join(timeout=10)
    assert result[0].text == "released"


def test_rate_limited_with_retry_after(proto: Proto) -> None:
    proto.queue(Scripted(status=429, retry_after=7))
    with pytest.raises(LLMRateLimitedError) as info:
        proto.call()
    check_message(info.value, proto.name, proto.model)
    assert "retry after 7s" in str(info.value) and info.value.retry_after_s == 7
    assert info.value.status == "rate_limited"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transport_errors(proto: Proto, status: int) -> None:
    proto.queue(Scripted(status=status))
    with pytest.raises(LLMTransportError) as info:
        proto.call()
    check_message(info.value, proto.name, proto.model)
    assert f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize("status", [400, 422])
def test_bad_request_is_a_provider_error(proto: Proto, status: int) -> None:
    proto.queue(Scripted(status=status, error_message="temperature out of range"))
    with pytest.raises(LLMProviderError) as info:
        proto.call()
    check_message(info.value, proto.name, proto.model)
    assert "temperature out of range" in str(info.value)


def test_unknown_model_is_a_provider_error_with_a_hint(proto: Proto) -> None:
    with pytest.raises(LLMProviderError) as info:
        proto.call(model="no-such-model")
    check_message(info.value, proto.name, "no-such-model")
    hint = info.value.hint or ""
    if proto.name == "ollama":
        assert "ollama pull no-such-model" in hint
    else:
        assert "llm.model" in hint and "/models" in hint


@pytest.mark.parametrize(
    "script",
    [
        Scripted(malformed=True),
        Scripted(malformed=True, content_type="application/json"),
        Scripted(malformed=True, content_type="text/plain"),
    ],
    ids=["html", "bad-json", "plain"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_malformed_body_is_a_transport_error(proto: Proto, script: Scripted, stream: bool) -> None:
    proto.queue(script)
    with pytest.raises(LLMTransportError) as info:
        proto.call(stream=stream)
    check_message(info.value, proto.name, proto.model)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    "raw",
    ['{"unexpected": true}', "[1, 2]", '"text"', "{}"],
    ids=["object", "list", "str", "empty"],
)
def test_json_of_the_wrong_shape_is_a_transport_error(proto: Proto, raw: str, stream: bool) -> None:
    proto.queue(Scripted(raw_body=raw, content_type="application/json"))
    with pytest.raises(LLMTransportError) as info:
        proto.call(stream=stream)
    check_message(info.value, proto.name, proto.model)
    assert "malformed" in str(info.value)


def test_error_inside_a_stream_is_a_transport_error(proto: Proto) -> None:
    rec = Recorder()
    if proto.name == "openai":
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
        }
        raw = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps({'error': {'message': 'boom'}})}\n\n"
        proto.queue(Scripted(raw_body=raw, content_type="text/event-stream"))
    else:
        line = {"model": "m", "message": {"role": "assistant", "content": "a"}, "done": False}
        raw = f"{json.dumps(line)}\n{json.dumps({'error': 'boom'})}\n"
        proto.queue(Scripted(raw_body=raw, content_type="application/x-ndjson"))
    with pytest.raises(LLMTransportError) as info:
        proto.call(stream=True, recorder=rec)
    assert "mid-stream: boom" in str(info.value)
    assert rec.partial == [Usage(output_tokens=1)]


def test_dropped_connection_is_a_transport_error(proto: Proto) -> None:
    proto.queue(Scripted(drop=True))
    with pytest.raises(LLMTransportError) as info:
        proto.call()
    check_message(info.value, proto.name, proto.model)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_connection_refused_is_a_transport_error(kind: str, stream: bool) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    provider: LLMProvider
    if kind == "openai":
        provider = OpenAICompatProvider(base + "/v1", KEY, timeout_s=2)
    else:
        provider = OllamaProvider(base, timeout_s=2)
    rec = Recorder()
    request = LLMRequest(messages=MESSAGES, stream=stream)
    call = ProviderCall(request, "m", OutputMode.TEXT, None, 2.0, None, rec.partial.append)
    try:
        with pytest.raises(LLMTransportError) as info:
            provider.complete(call)
    finally:
        provider.close()
    check_message(info.value, kind, "m")
    assert "connection failed" in str(info.value)
    assert rec.partial == []  # nothing was streamed


# ----------------------------------------------------------------------------- output modes
@pytest.mark.parametrize(
    "mode",
    [OutputMode.JSON_SCHEMA, OutputMode.TOOL, OutputMode.JSON_OBJECT, OutputMode.PROMPT],
)
def test_openai_request_body_per_mode(openai_p: Proto, mode: OutputMode) -> None:
    reply = openai_p.call(mode, schema=MarketAssessment)
    body = openai_p.body()
    if mode is OutputMode.JSON_SCHEMA:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "MarketAssessment", "schema": SCHEMA, "strict": True},
        }
        assert "tools" not in body
    elif mode is OutputMode.TOOL:
        (tool,) = body["tools"]
        assert tool["type"] == "function"
        assert tool["function"]["name"] == "MarketAssessment"
        assert tool["function"]["parameters"] == SCHEMA
        assert body["tool_choice"] == {"type": "function", "function": {"name": "MarketAssessment"}}
        assert "response_format" not in body
    elif mode is OutputMode.JSON_OBJECT:
        assert body["response_format"] == {"type": "json_object"}
    else:
        assert "response_format" not in body and "tools" not in body
    if mode is OutputMode.PROMPT:
        assert reply.text == DEFAULT_TEXT
    else:
        MarketAssessment.model_validate_json(reply.text)


@pytest.mark.parametrize("mode", [OutputMode.JSON_SCHEMA, OutputMode.TOOL])
def test_schema_name_without_title_comes_from_the_model(openai_p: Proto, mode: OutputMode) -> None:
    wire = {k: v for k, v in SCHEMA.items() if k != "title"}  # the gateway strips titles
    req = LLMRequest(messages=MESSAGES, schema=MarketAssessment)
    openai_p.provider.complete(ProviderCall(req, "gpt-4o-mini", mode, wire, 5.0))
    body = openai_p.body()
    if mode is OutputMode.JSON_SCHEMA:
        assert body["response_format"]["json_schema"]["name"] == "MarketAssessment"
        assert body["response_format"]["json_schema"]["schema"] == wire
    else:
        assert body["tools"][0]["function"]["name"] == "MarketAssessment"


def test_openai_tool_answer_is_the_tool_arguments(openai_p: Proto) -> None:
    openai_p.queue(Scripted(content='{"a": 1}'))
    assert openai_p.call(OutputMode.TOOL).text == '{"a": 1}'


def test_openai_streamed_tool_arguments_are_accumulated(openai_p: Proto) -> None:
    rec = Recorder()
    openai_p.queue(Scripted(chunks=['{"a"', ": 1", "}"]))
    reply = openai_p.call(OutputMode.TOOL, stream=True, recorder=rec)
    assert reply.text == '{"a": 1}'
    assert rec.first_tokens == 1


def test_openai_tool_mode_falls_back_to_content(openai_p: Proto) -> None:
    openai_p.queue(Scripted(content='{"b": 2}', tool_call=False))
    assert openai_p.call(OutputMode.TOOL).text == '{"b": 2}'


def test_openai_cached_tokens(openai_p: Proto) -> None:
    openai_p.queue(Scripted(usage=Tokens(prompt=1200, completion=40, cached=1024)))
    usage = openai_p.call().usage
    assert usage == Usage(input_tokens=1200, output_tokens=40, cached_input_tokens=1024)


def test_openai_cached_detail_missing_is_absent(openai_p: Proto) -> None:
    openai_p.queue(Scripted(usage=Tokens(prompt=10, completion=2, cached=None)))
    assert openai_p.call().usage.cached_input_tokens is None


def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature(
    server: FakeLLMServer,
) -> None:
    server.models = (*server.models, "o3-mini")
    provider = OpenAICompatProvider(server.openai_base_url, KEY, timeout_s=5)
    try:
        p = Proto("openai", server, provider, server.queue_openai, OPENAI_CHAT, "o3-mini")
        p.call(max_tokens=64, temperature=0.0)
        body = p.body()
    finally:
        provider.close()
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body and "temperature" not in body


def test_openai_reported_model_is_passed_through(openai_p: Proto) -> None:
    openai_p.queue(Scripted(model="gpt-4o-mini-2024-07-18"))
    assert openai_p.call().model == "gpt-4o-mini-2024-07-18"


def test_openai_sends_the_key_and_never_shows_it(server: FakeLLMServer) -> None:
    good = OpenAICompatProvider(server.openai_base_url, KEY, timeout_s=5)
    wrong = OpenAICompatProvider(server.openai_base_url, "sk-wrong-KEY-987", timeout_s=5)
    try:
        p = Proto("openai", server, good, server.queue_openai, OPENAI_CHAT, "gpt-4o-mini")
        p.call()
        assert server.last(OPENAI_CHAT).headers["authorization"] == f"Bearer {KEY}"
        # a server that echoes the key back in its error message
        server.queue_openai(Scripted(status=401, error_message=f"Incorrect API key: {KEY}"))
        with pytest.raises(LLMProviderError) as echoed:
            p.call()
        assert KEY not in str(echoed.value) and "***" in str(echoed.value)
        assert "llm.api_key" in (echoed.value.hint or "")
        w = Proto("openai", server, wrong, server.queue_openai, OPENAI_CHAT, "gpt-4o-mini")
        with pytest.raises(LLMProviderError) as refused:
            w.call()
        assert "sk-wrong-KEY-987" not in str(refused.value)
        assert "HTTP 401" in str(refused.value)
    finally:
        good.close()
        wrong.close()


def test_openai_without_key_sends_a_placeholder() -> None:
    with FakeLLMServer() as srv:
        provider = OpenAICompatProvider(srv.openai_base_url, None, timeout_s=5)
        try:
            Proto("openai", srv, provider, srv.queue_openai, OPENAI_CHAT, "local").call()
        finally:
            provider.close()
        assert srv.last(OPENAI_CHAT).headers["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (OutputMode.JSON_SCHEMA, SCHEMA),
        (OutputMode.JSON_OBJECT, "json"),
        (OutputMode.PROMPT, None),
        (OutputMode.TEXT, None),
    ],
)
def test_ollama_format_per_mode(server: FakeLLMServer, mode: OutputMode, expected: object) -> None:
    provider = OllamaProvider(server.ollama_base_url, timeout_s=5)
    try:
        p = Proto("ollama", server, provider, server.queue_ollama, OLLAMA_CHAT, "llama3.2")
        p.call(mode)
        body = p.body()
    finally:
        provider.close()
    assert body.get("format") == expected
    assert ("format" in body) is (expected is not None)


def test_ollama_tool_mode_reads_the_tool_call_arguments(server: FakeLLMServer) -> None:
    provider = OllamaProvider(server.ollama_base_url, timeout_s=5)
    try:
        p = Proto("ollama", server, provider, server.queue_ollama, OLLAMA_CHAT, "llama3.2")
        p.queue(Scripted(content='{"a": 1}'))
        reply = p.call(OutputMode.TOOL)
        assert p.body()["tools"][0]["function"]["parameters"] == SCHEMA
        p.queue(Scripted(content='{"a": 2}'))
        streamed = p.call(OutputMode.TOOL, stream=True)
    finally:
        provider.close()
    assert reply.text == '{"a": 1}'
    assert streamed.text == '{"a": 2}'


def test_ollama_wrong_base_url_hints_at_the_url(server: FakeLLMServer) -> None:
    provider = OllamaProvider(server.openai_base_url, timeout_s=5)  # ".../v1": not Ollama's URL
    try:
        p = Proto("ollama", server, provider, server.queue_ollama, "/v1/api/chat", "llama3.2")
        with pytest.raises(LLMProviderError) as info:
            p.call()
    finally:
        provider.close()
    assert "without /v1" in (info.value.hint or "")


def test_ollama_default_url() -> None:
    provider = OllamaProvider(timeout_s=1)
    try:
        call = ProviderCall(LLMRequest(messages=MESSAGES), "x", OutputMode.TEXT, None, 1.0)
        with pytest.raises(LLMError) as info:  # refused, or a real Ollama without model "x"
            provider.complete(call)
    finally:
        provider.close()
    assert DEFAULT_OLLAMA_URL in str(info.value)


# ----------------------------------------------------------------------------- factory
def test_make_provider_picks_by_settings(server: FakeLLMServer) -> None:
    offline = make_provider(LLMSettings())
    assert isinstance(offline, OfflineProvider)
    ollama = make_provider(
        LLMSettings(provider="ollama", model="llama3.2", base_url=server.ollama_base_url)
    )
    openai_provider = make_provider(
        LLMSettings(
            provider="openai",
            model="gpt-4o-mini",
            base_url=server.openai_base_url,
            api_key=SecretStr(KEY),
            timeout_s=5,
        )
    )
    try:
        assert isinstance(ollama, OllamaProvider)
        assert isinstance(openai_provider, OpenAICompatProvider)
        p = Proto("openai", server, openai_provider, server.queue_openai, OPENAI_CHAT, "gpt-4o")
        p.call(model="gpt-4o-mini")
        assert server.last(OPENAI_CHAT).headers["authorization"] == f"Bearer {KEY}"
    finally:
        ollama.close()
        openai_provider.close()
        offline.close()


# ----------------------------------------------------------------------------- the fake itself
def test_fake_server_lists_models_and_counts_requests() -> None:
    with FakeLLMServer(models=("a", "b"), max_requests=2) as srv, httpx.Client() as client:
        models = client.get(srv.openai_base_url + "/models").json()
        tags = client.get(srv.ollama_base_url + "/api/tags").json()
        over = client.post(srv.ollama_base_url + OLLAMA_CHAT, json={"model": "a"})
    assert [m["id"] for m in models["data"]] == ["a", "b"]
    assert [m["name"] for m in tags["models"]] == ["a", "b"]
    assert over.status_code == 503 and "error" in over.json()
    assert srv.requests == {"/v1/models": 1, "/api/tags": 1, OLLAMA_CHAT: 1}


# ----------------------------------------------------------------------------- capabilities
ALL = ModelCapabilities(json_schema=True, tool_calls=True, json_object=True, streaming_usage=True)


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", ALL),
        ("openai", "gpt-4o-2024-08-06", ALL),
        ("openai", "GPT-4.1-nano", ALL),
        ("openai", "gpt-5", ALL),
        ("openai", "o1", ALL),
        ("openai", "o3-mini", ALL),
        ("openai", "o4-mini", ALL),
        ("openai", "o1-mini", ModelCapabilities(False, False, False, True)),
        ("openai", "gpt-3.5-turbo-0125", ModelCapabilities(False, True, True, True)),
        ("openai", "Qwen2.5-7B-Instruct", CONSERVATIVE),
        ("openai", "llama-3.1-8b-instruct", CONSERVATIVE),
        ("ollama", "llama3.2", ALL),
        ("ollama", "qwen2.5:7b", ALL),
        ("offline", "rule-based", ModelCapabilities(True, False, False, False)),
        ("mystery", "gpt-4o", CONSERVATIVE),
    ],
)
def test_capability_table(provider: str, model: str, expected: ModelCapabilities) -> None:
    assert capabilities_for(provider, model) == expected


@pytest.mark.parametrize(
    ("caps", "has_schema", "mode"),
    [
        (ALL, True, OutputMode.JSON_SCHEMA),
        (ModelCapabilities(False, True, True, True), True, OutputMode.TOOL),
        (ModelCapabilities(False, False, True, False), True, OutputMode.JSON_OBJECT),
        (CONSERVATIVE, True, OutputMode.PROMPT),
        (ALL, False, OutputMode.TEXT),
        (CONSERVATIVE, False, OutputMode.TEXT),
    ],
)
def test_pick_mode_takes_the_strongest(
    caps: ModelCapabilities, has_schema: bool, mode: OutputMode
) -> None:
    assert pick_mode(caps, has_schema) is mode


def test_capabilities_are_frozen() -> None:
    with pytest.raises(AttributeError):
        ALL.json_schema = False  # type: ignore[misc]
