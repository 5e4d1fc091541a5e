"""``morningstar llm ask|status|history`` end to end: offline (the rule-based analyst, with a
point-in-time snapshot of stored data) and against the local OpenAI / Ollama protocol server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morningstar.store import open_database
from tests.e2e.test_cli import env, error_lines, run  # noqa: F401  (fixture)
from tests.fakes.llm_server import OLLAMA_CHAT, OPENAI_CHAT, FakeLLMServer, Scripted


def test_ask_offline_with_a_snapshot_of_stored_data(
    env: Path,  # noqa: F811
    shared_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "llm", "ask", "Is the trend strong?")
    assert code == 0, err
    assert out.startswith("[rule-based analyst]") and "rule-based analyst, not an LLM" in out
    code, _, err = run(
        capsys, "data", "import", str(shared_data / "genetrader" / "BINANCE_BTC_USDT-1h.csv")
    )
    assert code == 0, err
    args = ["llm", "ask", "Hold a long?", "--pair", "BTC/USDT", "--as-of", "2024-06-01", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["rule_based"] and answer["provider"] == "offline"
    market = answer["market"]
    assert market["venue"] == "binance" and market["timeframe"] == "1h"
    assert market["as_of"] <= "2024-06-01T00:00:00+00:00"  # point in time: nothing after it
    assert market["regime"] in ("trending", "ranging", "volatile")
    assert answer["answer"].startswith("[rule-based analyst] BTC/USDT 1h at " + market["as_of"])
    code, out, _ = run(capsys, "llm", "status")
    assert code == 0 and "offline/" in out and "100%" in out
    code, out, _ = run(capsys, "llm", "history", "--limit", "5")
    assert code == 0 and out.count("manual") == 2 and "free" in out


def test_ask_bad_input_is_one_line(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "llm", "ask", "   ")
    assert code == 1 and error_lines(err) == [
        'error: llm ask: the question is empty — llm ask "Is ..."'
    ]
    code, _, err = run(capsys, "llm", "ask", "x", "--pair", "BTC/USDT")
    assert code == 1 and "no stored data for BTC/USDT" in err
    code, _, err = run(capsys, "llm", "ask", "x", "--venue", "binance")
    assert code == 2 and "need --pair" in err


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_ask_against_the_local_protocol_server(
    provider: str,
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeLLMServer(max_lifetime_s=60) as server:
        scripted = Scripted(content="EUR/USD is range-bound.")
        if provider == "openai":
            server.queue_openai(Scripted(status=503), scripted)
            url, path, model = server.openai_base_url, OPENAI_CHAT, "gpt-4o-mini"
        else:
            server.queue_ollama(Scripted(status=503), scripted)
            url, path, model = server.ollama_base_url, OLLAMA_CHAT, "llama3.2"
        monkeypatch.setenv("MORNINGSTAR_LLM__PROVIDER", provider)
        monkeypatch.setenv("MORNINGSTAR_LLM__BASE_URL", url)
        monkeypatch.setenv("MORNINGSTAR_LLM__MODEL", model)
        code, out, err = run(capsys, "llm", "ask", "Where is EUR/USD going?")
        assert code == 0, err
        assert "EUR/USD is range-bound." in out and "(LLM)" in out and "1 retries" in out
        assert server.requests[path] == 2
        monkeypatch.setenv("MORNINGSTAR_LLM__CACHE_MODE", "replay")
        code, out, err = run(capsys, "llm", "ask", "Where is EUR/USD going?")
        assert code == 0 and "cache hit" in out and server.requests[path] == 2
        code, _, err = run(capsys, "llm", "ask", "Something never asked")
        assert code == 1 and "replay" in err and server.requests[path] == 2
    db = open_database(f"sqlite:///{env / 'morningstar.sqlite'}")
    try:
        with db.engine.connect() as conn:
            statuses = [r[0] for r in conn.exec_driver_sql("SELECT status FROM llm_calls")]
    finally:
        db.dispose()
    assert sorted(statuses) == ["cache_miss", "ok", "ok"]
