"""The monitoring routes through FastAPI's TestClient, on a SQLite store filled by the workflow
store with the hand-built run of ``tests/workflow_scenario.py`` (golden numbers)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from morningstar.api import create_app
from morningstar.config import Settings
from morningstar.errors import StorageError
from morningstar.llm.monitor import LLMMonitor
from morningstar.monitoring import MonitoringService
from morningstar.store import Database, open_database
from morningstar.store.workflow import WorkflowStore
from tests.workflow_scenario import BTC, EQUITY, ETH, OLD_RUN, RUN, STRATEGY, T0, fill_store

TOKEN = "monitoring-token-5a4b3c"
NOW = T0 + timedelta(days=30)


def _settings(token: str | None = None) -> Settings:
    api: dict[str, object] = {"host": "127.0.0.1", "port": 8000}
    if token is not None:
        api["token"] = token
    return Settings(api=api)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'api.sqlite'}", now=lambda: NOW)
    fill_store(WorkflowStore(database))
    yield database
    database.dispose()


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    monitor = LLMMonitor(stall_check_every_s=None)
    with monitor, TestClient(create_app(_settings(), monitor=monitor, db=db)) as test_client:
        yield test_client


def test_pnl(client: TestClient) -> None:
    body = client.get("/api/pnl").json()
    assert body["run_id"] == RUN and body["as_of"] == "2024-01-01T05:00:00Z"
    assert body["total"]["realized_pnl"] == pytest.approx(9.575)
    assert body["total"]["unrealized_pnl"] == pytest.approx(5.0)
    assert body["by_pair"][BTC]["realized_pnl"] == pytest.approx(19.78)
    assert body["by_pair"][ETH]["realized_pnl"] == pytest.approx(-10.095)
    assert body["by_strategy"][STRATEGY]["trades"] == 2
    old = client.get("/api/pnl", params={"run_id": OLD_RUN}).json()
    assert old["run_id"] == OLD_RUN and old["total"] is None


def test_equity_positions_and_trades(client: TestClient) -> None:
    points = client.get("/api/equity").json()["points"]
    assert [p["equity"] for p in points] == pytest.approx(EQUITY)
    since = client.get("/api/equity", params={"since": "2024-01-01T04:00:00Z"}).json()
    assert [p["ts"] for p in since["points"]] == ["2024-01-01T04:00:00Z", "2024-01-01T05:00:00Z"]
    positions = client.get("/api/positions").json()["positions"]
    assert [(p["pair"], p["quantity"], p["unrealized_pnl"]) for p in positions] == [(BTC, 1.0, 5.0)]
    trades = client.get("/api/trades", params={"limit": 5}).json()["trades"]
    assert [(tr["pair"], tr["exit_reason"], tr["llm_verdict"]) for tr in trades] == [
        (ETH, "stop_loss", "reduce"), (BTC, "take_profit", "approve"),
    ]  # fmt: skip
    assert trades[1]["pnl"] == pytest.approx(19.78) and trades[1]["fees"] == pytest.approx(0.22)
    assert len(client.get("/api/trades", params={"limit": 1}).json()["trades"]) == 1


def test_predictions_and_llm_analysis(client: TestClient) -> None:
    preds = client.get("/api/predictions/latest").json()["predictions"]
    assert preds[ETH]["bar_ts"] == "2024-01-01T05:00:00Z"
    assert preds[ETH]["prediction"]["signal"] == "up"
    analysis = client.get("/api/llm/analysis/latest").json()["analysis"]
    assert (analysis["pair"], analysis["verdict"]) == (BTC, "approve")
    assert analysis["bar_ts"] == "2024-01-01T03:00:00Z"
    none = client.get("/api/llm/analysis/latest", params={"run_id": OLD_RUN}).json()
    assert none == {"run_id": OLD_RUN, "analysis": None}


def test_system_runs_and_one_run(client: TestClient) -> None:
    system = client.get("/api/system").json()
    assert system["running"] == 1 and system["errors_last_hour"] == 1
    assert system["runs"][0]["last_cycle"][BTC]["bar_ts"] == "2024-01-01T05:00:00Z"
    assert set(system["process"]) == {"cpu_percent", "memory_percent", "process_rss_mb", "uptime"}
    runs = client.get("/api/runs").json()
    assert runs["count"] == 2 and [r["run_id"] for r in runs["items"]] == [RUN, OLD_RUN]
    finished = client.get("/api/runs", params={"status": "finished"}).json()
    assert [r["run_id"] for r in finished["items"]] == [OLD_RUN]
    one = client.get(f"/api/runs/{RUN}").json()
    assert one["cycles"] == 12 and one["account"]["equity"] == pytest.approx(EQUITY[-1])
    assert one["last_cycles"][ETH]["cycle_id"]
    assert client.get(f"/api/runs/{'f' * 32}").status_code == 404


def test_performance(client: TestClient) -> None:
    body = client.get("/api/performance", params={"window": 3}).json()
    eq = np.asarray(EQUITY)
    r = eq[1:] / eq[:-1] - 1.0
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(8760)
    assert body["periods_per_year"] == 8760.0 and body["window"] == 3
    assert body["inception"]["sharpe"] == pytest.approx(sharpe)
    assert body["inception"]["win_rate"] == 0.5
    assert body["inception"]["profit_factor"] == pytest.approx(19.78 / 10.095)
    assert body["rolling"]["bars"] == 3


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/trades", {"limit": 0}),
        ("/api/trades", {"limit": 5000}),
        ("/api/pnl", {"run_id": "bad id!"}),
        ("/api/equity", {"since": "yesterday"}),
        ("/api/equity", {"since": "2024-01-01T00:00:00"}),  # naive
        ("/api/runs", {"status": "exploded"}),
        ("/api/runs", {"mode": "casino"}),
        ("/api/performance", {"window": 1}),
    ],
)
def test_invalid_query_parameters_are_422(
    client: TestClient, path: str, params: dict[str, object]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_storage_error_is_503(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise StorageError("transaction on sqlite:///x failed: disk I/O error")

    monkeypatch.setattr(MonitoringService, "get_latest_pnl", broken)
    monkeypatch.setattr(MonitoringService, "get_run", broken)
    response = client.get("/api/pnl")
    assert response.status_code == 503 and "disk I/O error" in response.json()["detail"]
    assert client.get(f"/api/runs/{RUN}").status_code == 503


def test_without_database_the_routes_are_503() -> None:
    monitor = LLMMonitor(stall_check_every_s=None)
    with monitor, TestClient(create_app(_settings(), monitor=monitor)) as c:
        response = c.get("/api/positions")
        assert response.status_code == 503 and "database" in response.json()["detail"]


def test_token_is_required(db: Database) -> None:
    monitor = LLMMonitor(stall_check_every_s=None)
    app = create_app(_settings(token=TOKEN), monitor=monitor, db=db)
    with monitor, TestClient(app) as c:
        for path in ("/api/pnl", "/api/system", "/api/runs", f"/api/runs/{RUN}"):
            assert c.get(path).status_code == 401, path
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/api/pnl", headers=good).json()["run_id"] == RUN
