"""The REST API: every route through FastAPI's TestClient, authentication, and a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from morningstar.api import BackgroundServer, create_app, serve
from morningstar.api.auth import api_token, is_loopback
from morningstar.api.schemas import HistoryOut
from morningstar.config import Settings
from morningstar.errors import ConfigError, LLMTimeoutError
from morningstar.llm.monitor import LLMMonitor
from morningstar.llm.types import Usage
from morningstar.store.db import Database, open_database
from morningstar.store.models import LLM_CALL_STATUSES

TOKEN = "test-api-token-9f8e7d"
T0 = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


class Clocks:
    def __init__(self) -> None:
        self.t = 10.0
        self.n = 0

    def mono(self) -> float:
        return self.t

    def wall(self) -> datetime:
        self.n += 1
        return T0 + timedelta(seconds=self.n)


def settings(host: str = "127.0.0.1", token: str | None = None) -> Settings:
    api: dict[str, object] = {"host": host, "port": 8000}
    if token is not None:
        api["token"] = token
    return Settings(api=api)


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def monitor(clocks: Clocks) -> Iterator[LLMMonitor]:
    mon = LLMMonitor(clock=clocks.mono, wall=clocks.wall, stall_check_every_s=None)
    for i in range(6):
        trace = mon.start(
            provider="openai",
            model=("gpt-x", "llama3")[i % 2],
            caller=("supervisor", "critic")[i % 2],
            prompt=f"prompt {i}",
        )
        clocks.t += 1.0 + i
        failed = i == 5
        mon.finish(
            trace,
            status="timeout" if failed else "ok",
            usage=Usage(10 * (i + 1), 5) if i != 3 else Usage(),
            cost_usd=0.01 if i != 4 else None,
            price_status="priced" if i != 4 else "unknown",
            error=LLMTimeoutError("too slow") if failed else None,
        )
    yield mon
    mon.close()


@pytest.fixture
def client(monitor: LLMMonitor) -> Iterator[TestClient]:
    with TestClient(create_app(settings(), monitor=monitor)) as test_client:
        yield test_client


# --------------------------------------------------------------------------- routes


def test_health_without_database(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "absent"}


def test_health_pings_the_database(tmp_path: Path, monitor: LLMMonitor) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'ms.sqlite'}")
    broken = Database(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    try:
        with TestClient(create_app(settings(), monitor=monitor, db=db)) as c:
            assert c.get("/health").json() == {"status": "ok", "database": "ok"}
        with TestClient(create_app(settings(), monitor=monitor, db=broken)) as c:
            response = c.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "error"}
    finally:
        db.dispose()
        broken.dispose()


def test_status(client: TestClient, clocks: Clocks) -> None:
    clocks.t += 4.0
    body = client.get("/api/status").json()
    assert body["uptime"] == pytest.approx(1 + 2 + 3 + 4 + 5 + 6 + 4.0)
    assert body["total_requests"] == 6 and body["successful_requests"] == 5
    assert body["failed_requests"] == 1
    assert body["avg_response_time"] == pytest.approx(21 / 6)
    assert body["by_status"] == {s: {"ok": 5, "timeout": 1}.get(s, 0) for s in LLM_CALL_STATUSES}
    assert body["active_requests"] == 0 and body["dropped_records"] == 0
    assert set(body["system"]) == {"cpu_percent", "memory_percent", "process_rss_mb", "uptime"}


def test_active(client: TestClient, monitor: LLMMonitor, clocks: Clocks) -> None:
    trace = monitor.start(provider="ollama", model="llama3", caller="critic", prompt="p" * 300)
    clocks.t += 7.5
    body = client.get("/api/llm/active").json()
    assert body["count"] == 1
    item = body["items"][0]
    assert item["id"] == trace.id and item["elapsed_s"] == 7.5
    assert item["prompt_excerpt"] == "p" * 200 and item["stalled"] is False
    monitor.finish(trace, status="cancelled", usage=Usage(), cost_usd=None, price_status="unknown")
    assert client.get("/api/llm/active").json() == {"count": 0, "items": []}


def test_history_filters_and_pages(client: TestClient, monitor: LLMMonitor) -> None:
    everything = [r.id for r in monitor.history(limit=1000)]
    body = client.get("/api/llm/history").json()
    assert body["limit"] == 100 and body["offset"] == 0 and body["count"] == 6
    assert [item["id"] for item in body["items"]] == everything
    page = client.get("/api/llm/history", params={"limit": 2, "offset": 1}).json()
    assert [item["id"] for item in page["items"]] == everything[1:3]
    llama = client.get("/api/llm/history", params={"model": "llama3"}).json()
    assert [i["model"] for i in llama["items"]] == ["llama3"] * 3
    failed = client.get("/api/llm/history", params={"status": "timeout"}).json()
    assert [i["error_type"] for i in failed["items"]] == ["LLMTimeoutError"]
    critic = client.get("/api/llm/history", params={"caller": "critic", "status": "ok"}).json()
    assert critic["count"] == 2
    item = body["items"][2]  # i == 3: usage absent
    assert item["input_tokens"] is None and item["output_tokens"] is None
    assert body["items"][1]["cost_usd"] is None  # i == 4: price unknown


def test_history_leaves_texts_out_unless_asked_and_one_call_whole(
    client: TestClient, monitor: LLMMonitor
) -> None:
    newest = monitor.history(limit=1)[0]
    assert newest.prompt == "prompt 5"  # truncated capture (the default)
    listed = client.get("/api/llm/history", params={"limit": 1}).json()["items"][0]
    assert listed["id"] == newest.id and listed["prompt"] is None and listed["response"] is None
    full = client.get("/api/llm/history", params={"limit": 1, "text": "true"}).json()["items"][0]
    assert full["prompt"] == "prompt 5"
    one = client.get(f"/api/llm/calls/{newest.id}")
    assert one.status_code == 200 and one.json() == full
    missing = client.get("/api/llm/calls/0123abcd")
    assert missing.status_code == 404 and missing.json()["detail"] == "no LLM call '0123abcd'"
    assert client.get("/api/llm/calls/not-hex").status_code == 422


@pytest.mark.parametrize("text", [False, True])
def test_history_json_is_what_the_response_model_gives(
    client: TestClient, monitor: LLMMonitor, text: bool
) -> None:
    """The history page is serialised without re-validation: pin it to the validated model."""
    got = client.get("/api/llm/history", params={"text": str(text).lower()})
    records = monitor.history(limit=100, include_text=text)
    body = {"limit": 100, "offset": 0, "count": len(records), "items": records}
    expected = HistoryOut.model_validate(body, from_attributes=True).model_dump_json()
    assert got.content.decode() == expected
    assert len(records) == 6 and all((r.prompt is not None) == text for r in records)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "limit: Input should be less than or equal to 1000"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
        ({"status": "done"}, "status: 'done' is not one of ok, timeout"),
    ],
)
def test_history_rejects_bad_parameters(
    client: TestClient, params: dict[str, object], message: str
) -> None:
    response = client.get("/api/llm/history", params=params)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_history_database_failure_is_503(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")  # not migrated: no llm_calls
    try:
        mon = LLMMonitor(db=db, stall_check_every_s=None)
        with mon, TestClient(create_app(settings(), monitor=mon)) as c:
            response = c.get("/api/llm/history")
        assert response.status_code == 503
        assert "llm_calls" in response.json()["detail"]
    finally:
        db.dispose()


def test_llm_metrics(client: TestClient, monitor: LLMMonitor) -> None:
    body = client.get("/api/llm/metrics").json()
    expected = monitor.aggregates()
    assert body["by_model"] == expected["by_model"]
    assert body["by_caller"] == expected["by_caller"]
    assert body["source"] == expected["source"] == "process" and body["window"] is None
    gpt = body["by_model"]["gpt-x"]
    assert gpt["count"] == 3 and gpt["calls_price_unknown"] == 1 and gpt["cost_usd"] == 0.02
    llama = body["by_model"]["llama3"]
    assert llama["failed"] == 1 and llama["calls_usage_absent"] == 1


def test_prometheus_metrics(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "gen_ai_client_operation_duration_seconds_bucket" in response.text
    assert (
        'morningstar_llm_requests_total{model="llama3",provider="openai",status="timeout"} 1.0'
        in (response.text)
    )


def test_status_and_metrics_show_the_calls_of_other_processes(tmp_path: Path) -> None:
    """As under ``morningstar serve``: the calls are made (and recorded) by another process."""
    db = open_database(f"sqlite:///{tmp_path / 'ms.sqlite'}")
    try:
        worker_clocks = Clocks()
        with LLMMonitor(
            db=db, clock=worker_clocks.mono, wall=worker_clocks.wall, stall_check_every_s=None
        ) as worker:  # `morningstar llm ask`, a worker, an agent
            for i in range(4):
                trace = worker.start(
                    provider="openai", model=("gpt-x", "llama3")[i % 2], caller="cli", prompt="p"
                )
                worker_clocks.t += 0.5 * (i + 1)
                worker.finish(
                    trace,
                    status="timeout" if i == 3 else "ok",
                    usage=Usage(10, 5) if i != 2 else Usage(),
                    cost_usd=0.25 if i != 1 else None,
                    price_status="priced" if i != 1 else "unknown",
                )
            assert worker.flush(30.0)
        server = LLMMonitor(db=db, stall_check_every_s=None, db_wait_s=60.0)
        with server, TestClient(create_app(settings(), monitor=server, db=db)) as c:
            status = c.get("/api/status").json()
            metrics = c.get("/api/llm/metrics").json()
        assert status["total_requests"] == 4 and status["successful_requests"] == 3
        assert status["failed_requests"] == 1
        assert status["avg_response_time"] == (0.5 + 1.0 + 1.5 + 2.0) / 4
        assert status["by_status"] == {
            s: {"ok": 3, "timeout": 1}.get(s, 0) for s in LLM_CALL_STATUSES
        }
        assert status["cost_usd"] == 0.75 and status["active_requests"] == 0
        assert status["source"] == "database" and metrics["source"] == "database"
        assert metrics["window"] == 10_000
        gpt, llama = metrics["by_model"]["gpt-x"], metrics["by_model"]["llama3"]
        assert gpt["count"] == 2 and gpt["calls_usage_absent"] == 1 and gpt["cost_usd"] == 0.5
        assert gpt["input_tokens"] == 10 and gpt["avg_latency_s"] == 1.0
        assert llama["failed"] == 1 and llama["calls_price_unknown"] == 1
        assert llama["cost_usd"] == 0.25 and llama["output_tokens"] == 10
        assert metrics["by_caller"]["cli"]["count"] == 4
    finally:
        db.dispose()


def test_the_app_builds_and_closes_its_own_monitor(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'ms.sqlite'}")
    try:
        app = create_app(settings(), db=db)
        with TestClient(app) as c:
            assert c.get("/api/status").json()["total_requests"] == 0
        assert app.state.monitor._closed
    finally:
        db.dispose()


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_non_loopback_without_token_refuses_to_start(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_app(settings(host=host))
    message = str(info.value)
    assert "api.token" in message and "MORNINGSTAR_API__TOKEN" in message
    assert "\n" not in message
    with pytest.raises(ConfigError):
        serve(settings(host=host))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False), ("myhost", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_token_is_required_when_configured(host: str, monitor: LLMMonitor) -> None:
    assert api_token(settings(host=host, token=TOKEN).api) == TOKEN.encode()
    with TestClient(create_app(settings(host=host, token=TOKEN), monitor=monitor)) as c:
        assert c.get("/health").status_code == 200
        for path in ("/api/status", "/api/llm/active", "/api/llm/history", "/api/llm/metrics",
                     "/api/llm/calls/0123", "/metrics", "/openapi.json"):  # fmt: skip
            assert c.get(path).status_code in (401, 404), path
            assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code in (401, 404)
        response = c.get("/api/status")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert c.get("/api/status", headers={"X-API-Key": "nope"}).status_code == 401
        assert c.get("/api/status", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/api/status", "/api/llm/active", "/api/llm/history", "/api/llm/metrics",
                     "/metrics"):  # fmt: skip
            assert c.get(path, headers=good).status_code == 200, path
        assert c.get("/api/status", headers={"X-API-Key": TOKEN}).status_code == 200
        assert c.get("/openapi.json", headers=good).status_code == 404  # docs off with a token


def test_open_loopback_api_serves_docs(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200


# --------------------------------------------------------------------------- real server


def test_real_uvicorn_server_on_an_ephemeral_port(monitor: LLMMonitor) -> None:
    app = create_app(settings(token=TOKEN), monitor=monitor)
    with BackgroundServer(app) as server:
        assert server.port > 0 and server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            assert http.get("/health").json()["status"] == "ok"
            assert http.get("/api/status").status_code == 401
            headers = {"Authorization": f"Bearer {TOKEN}"}
            status = http.get("/api/status", headers=headers).json()
            assert status["total_requests"] == 6 and status["failed_requests"] == 1
            history = http.get("/api/llm/history", params={"limit": 2}, headers=headers).json()
            assert history["count"] == 2
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/health", timeout=2.0)


def test_exported_names() -> None:
    import morningstar.api as package

    assert sorted(package.__all__) == ["BackgroundServer", "create_app", "serve"]
    for name in package.__all__:
        assert hasattr(package, name)
