"""The LLM monitor: traces, capture and redaction, aggregates, history, stalls, Prometheus, OTLP.

Time is injected (a manual monotonic clock and wall clock); nothing asserts on real durations.
Database recording is tested in ``tests/integration/test_llm_recorder_db.py``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from morningstar.config import Settings
from morningstar.errors import ConfigError, LLMInvalidOutput, LLMTimeoutError, StorageError
from morningstar.llm.monitor import (
    CallRecord,
    LLMMonitor,
    StallAlert,
    capture_text,
    excerpt,
    redact_text,
    span_attributes,
)
from morningstar.llm.monitor.aggregates import (
    Aggregates,
    TableTotals,
    percentile,
    window_stats,
)
from morningstar.llm.monitor.metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from morningstar.llm.monitor.otel import traces_url
from morningstar.llm.monitor.recorder import RECENT_COLUMNS, CachedRead, CallRecorder
from morningstar.llm.types import Usage
from morningstar.logs import register_secrets
from morningstar.store.models import LLM_CALL_STATUSES

REGISTERED = "registered-secret-Zq8w1x"
SK_KEY = "sk-proj-abcdefghijklmnop1234"
IBAN = "GB82 WEST 1234 5698 7654 32"
LEAKS = (REGISTERED, SK_KEY, IBAN, IBAN.replace(" ", ""), "abcdefghijklmnop1234")
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class ManualWall:
    """A wall clock that ticks one second per reading (distinct, ordered start times)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> datetime:
        self.n += 1
        return T0 + timedelta(seconds=self.n)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def monitor(clock: ManualClock) -> Iterator[LLMMonitor]:
    mon = LLMMonitor(clock=clock, wall=ManualWall(), stall_check_every_s=None)
    yield mon
    mon.close()


def call(
    mon: LLMMonitor,
    clock: ManualClock,
    *,
    latency: float = 1.0,
    model: str = "gpt-x",
    caller: str = "supervisor",
    status: str = "ok",
    usage: Usage | None = None,
    cost: float | None = 0.001,
    cache_hit: bool = False,
    prompt: str = "assess BTC/USDT",
    response: str | None = "ok",
    error: BaseException | None = None,
) -> CallRecord:
    trace = mon.start(provider="openai", model=model, caller=caller, prompt=prompt)
    clock.advance(latency)
    return mon.finish(
        trace,
        status=status,
        usage=usage if usage is not None else Usage(100, 20),
        cost_usd=cost,
        price_status="priced" if cost is not None else "unknown",
        cache_hit=cache_hit,
        response=response,
        error=error,
    )


# --------------------------------------------------------------------------- traces


def test_start_registers_an_active_call_with_elapsed_from_the_clock(
    monitor: LLMMonitor, clock: ManualClock
) -> None:
    first = monitor.start(
        provider="ollama",
        model="llama3",
        caller="supervisor",
        prompt="x" * 500,
        template_id="assess",
        template_version=2,
        streamed=True,
    )
    clock.advance(2.5)
    second = monitor.start(provider="openai", model="gpt-x", caller="critic", prompt="hi")
    clock.advance(0.5)
    assert re.fullmatch(r"[0-9a-f]{32}", first.id)
    assert first.prompt_excerpt == "x" * 200
    assert first.started_at.tzinfo is not None and first.operation == "chat"
    active = monitor.active()
    assert [a.id for a in active] == [first.id, second.id]
    assert [a.elapsed_s for a in active] == [3.0, 0.5]
    assert active[0].template_id == "assess" and active[0].streamed and not active[0].stalled
    data = active[0].to_dict()
    assert data["started_at"] == first.started_at.isoformat() and data["elapsed_s"] == 3.0
    monitor.finish(first, status="ok", usage=Usage(), cost_usd=0.0, price_status="free")
    assert [a.id for a in monitor.active()] == [second.id]


def test_first_token_is_recorded_once(monitor: LLMMonitor, clock: ManualClock) -> None:
    trace = monitor.start(provider="p", model="m", caller="c", prompt="p", streamed=True)
    clock.advance(0.25)
    monitor.first_token(trace)
    clock.advance(1.0)
    monitor.first_token(trace)
    assert trace.ttft_s == 0.25
    assert monitor.active()[0].ttft_s == 0.25
    record = monitor.finish(trace, status="ok", usage=Usage(), cost_usd=0.0, price_status="free")
    assert record.ttft_s == 0.25 and record.latency_s == 1.25 and record.streamed


def test_finish_builds_the_record(monitor: LLMMonitor, clock: ManualClock) -> None:
    trace = monitor.start(
        provider="openai", model="gpt-x", caller="supervisor", prompt="p", template_id="t"
    )
    trace.retries = 2
    clock.advance(4.0)
    error = LLMTimeoutError("call to gpt-x timed out\nafter 30 s")
    record = monitor.finish(
        trace,
        status=error.status,
        usage=Usage(input_tokens=50),
        cost_usd=None,
        price_status="unknown",
        error=error,
        cache_key="k" * 64,
    )
    assert record.id == trace.id and record.status == "timeout" and record.retries == 2
    assert record.error_type == "LLMTimeoutError"
    assert record.error_message == "call to gpt-x timed out after 30 s"
    assert record.latency_s == 4.0
    assert record.finished_at == record.started_at + timedelta(seconds=4)
    assert record.input_tokens == 50 and record.output_tokens is None
    assert record.cost_usd is None and record.cache_key == "k" * 64
    assert record.template_id == "t" and record.template_version is None
    data = record.to_dict()
    assert data["started_at"] == record.started_at.isoformat() and data["cost_usd"] is None
    assert set(data) == set(record.to_row())


def test_unknown_status_is_recorded_from_the_error(monitor: LLMMonitor, clock: ManualClock) -> None:
    error = LLMInvalidOutput("not JSON", raw_text="oops", reason="not_json")
    record = call(monitor, clock, status="weird", error=error)
    assert record.status == "invalid_output"
    assert call(monitor, clock, status="weird", error=RuntimeError("x")).status == "provider_error"


def test_finishing_twice_counts_once(monitor: LLMMonitor, clock: ManualClock) -> None:
    trace = monitor.start(provider="p", model="m", caller="c", prompt="p")
    for _ in range(2):
        monitor.finish(trace, status="ok", usage=Usage(1, 1), cost_usd=0.0, price_status="free")
    assert monitor.status()["total_requests"] == 1
    assert len(monitor.history()) == 1


def test_finish_never_raises(monitor: LLMMonitor, clock: ManualClock) -> None:
    class BadStr(Exception):
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    def broken(_record: CallRecord) -> None:
        raise RuntimeError("metrics backend down")

    monitor._metrics.finished = broken  # type: ignore[method-assign]
    record = call(monitor, clock, status="provider_error", error=BadStr())
    assert record.error_type == "BadStr" and record.error_message == "BadStr"
    assert monitor.status()["failed_requests"] == 1
    trace = monitor.start(provider="p", model="m", caller="c", prompt="p")
    bad = monitor.finish(trace, status="ok", usage=None, cost_usd=1.0, price_status="x")  # type: ignore[arg-type]
    assert bad.status == "provider_error" and bad.input_tokens is None and bad.cost_usd is None
    assert monitor.active() == [] and monitor.status()["failed_requests"] == 2


# --------------------------------------------------------------------------- capture, redaction


@pytest.mark.parametrize(
    ("mode", "expected_len"), [("off", None), ("truncated", 2_000), ("full", 5_000)]
)
def test_capture_modes(clock: ManualClock, mode: str, expected_len: int | None) -> None:
    with LLMMonitor(capture=mode, clock=clock, stall_check_every_s=None) as mon:  # type: ignore[arg-type]
        record = call(mon, clock, prompt="p" * 5_000, response="r" * 5_000)
    if expected_len is None:
        assert record.prompt is None and record.response is None
    else:
        assert record.prompt == "p" * expected_len
        assert record.response == "r" * expected_len
    assert record.to_dict()["prompt"] == record.prompt


@pytest.mark.parametrize(
    "text",
    [
        f"use {SK_KEY} now",
        f"pay to {IBAN} today",
        "iban DE89370400440532013000",
        "card 4111 1111 1111 1111 exp 12/27",
        "card 5555-5555-5555-4444",
        "account_id=ACC-99812 please",
        'the "account number": "0012345678"',
        "api_key=abcdef123456",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload",
        "postgresql://user:hunter2pw@host/db",
        f"secret {REGISTERED}",
    ],
)
def test_redact_text_masks_secrets_and_accounts(text: str) -> None:
    register_secrets([REGISTERED])
    out = redact_text(text)
    assert "***" in out
    for leak in (
        SK_KEY,
        IBAN,
        "DE89370400440532013000",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "ACC-99812",
        "0012345678",
        "abcdef123456",
        "eyJhbGciOiJIUzI1NiJ9",
        "hunter2pw",
        REGISTERED,
    ):
        assert leak not in out


@pytest.mark.parametrize(
    "text",
    [
        "BTC/USDT closed at 43125.57 on 2024-01-15 12:30:00 (RSI 71.2)",
        "ts=1700000000000 and 1700000000000123 ns 1700000000000000000",
        "volume 4111111111111111.5 units",
        "US10 YEAR BOND YIELD 4.25%",
        "order 1234567890123456",
        "EMA 10/50 cross on ETH/USDT 5m, ATR 14",
    ],
)
def test_redact_text_keeps_prices_timestamps_and_ordinary_text(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("account number 12345678", "account number ***"),
        ("Account Number: 12345678.", "Account Number: ***"),
        ("account no. 12345678 at the bank", "account no. *** at the bank"),
        ("ACCOUNT NO.12345678", "ACCOUNT NO.***"),
        ("Account #: 12345678", "Account #: ***"),
        ("acct: 12345678", "acct: ***"),
        ("acct no 12345678", "acct no ***"),
        ("acct#77", "acct#***"),
        ("account id=AB-12", "account id=***"),
        ("account_id=ACC-99812 please", "account_id=*** please"),
        ('the "account number": "0012345678"', 'the "account number": "***"'),
        ("{'acct_no': 'X99'}", "{'acct_no': '***'}"),
        ("account 9876-5432", "account ***"),
    ],
)
def test_redact_text_masks_account_numbers(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "take into account the trend",
        "account for volatility before sizing",
        "an account of 3 trades",
        "the account holds 2 BTC",
        "account 123 is small",  # fewer than 4 digits and no explicit separator
        "accounts 12345678 were opened",  # not the word account / acct
        "subaccount 12345678",
        "account number of trades: see above",
        "Accountability matters; accurate accounting too",
    ],
)
def test_redact_text_keeps_prose_about_accounts(text: str) -> None:
    assert redact_text(text) == text


def test_excerpt_and_capture_redact_a_secret_on_the_cut() -> None:
    prompt = "a" * 190 + SK_KEY + "b" * 3_000
    assert "abcdefghijklmnop" not in excerpt(prompt) and len(excerpt(prompt)) == 200
    long_prompt = "a" * 1_995 + SK_KEY
    captured = capture_text(long_prompt, "truncated")
    assert captured is not None and "sk-pro" not in captured and len(captured) == 2_000
    assert capture_text(None, "full") is None


def test_secrets_never_reach_records_metrics_spans_or_logs(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    register_secrets([REGISTERED])
    secret_text = f"key {REGISTERED} and {SK_KEY} to {IBAN}"
    caplog.set_level(logging.DEBUG, logger="morningstar")
    with LLMMonitor(capture="full", clock=clock, stall_check_every_s=None) as mon:
        for _ in range(20):
            call(mon, clock, latency=0.5)
        record = call(
            mon,
            clock,
            status="provider_error",
            prompt=secret_text,
            response=secret_text,
            error=RuntimeError(secret_text),
        )
        trace = mon.start(provider="openai", model="gpt-x", caller="c", prompt=secret_text)
        clock.advance(100)
        assert mon.check_stalls()
        outputs = [
            str(record.to_dict()),
            str(span_attributes(record)),
            generate_latest(mon.registry).decode(),
            str([a.to_dict() for a in mon.active()]),
            str([r.to_dict() for r in mon.history()]),
            str(mon.status()),
            caplog.text,
        ]
        mon.finish(trace, status="cancelled", usage=Usage(), cost_usd=None, price_status="unknown")
    assert record.prompt is not None and "***" in record.prompt
    for output in outputs:
        for leak in LEAKS:
            assert leak not in output


# --------------------------------------------------------------------------- aggregates


def test_percentile_matches_numpy() -> None:
    values = [0.3, 1.7, 0.2, 5.0, 2.2, 2.2, 9.1]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def test_aggregates_are_exact(monitor: LLMMonitor, clock: ManualClock) -> None:
    call(monitor, clock, latency=1.0, usage=Usage(100, 10), cost=0.5)
    call(monitor, clock, latency=2.0, usage=Usage(), cost=None)
    call(monitor, clock, latency=4.0, status="timeout", usage=Usage(30, None), cost=0.25)
    call(monitor, clock, latency=0.5, caller="critic", cache_hit=True, cost=0.0)
    call(monitor, clock, latency=3.0, model="llama3", caller="critic", cost=0.0)
    agg = monitor.aggregates()
    assert list(agg) == ["by_model", "by_caller", "source", "window"]
    assert agg["source"] == "process" and agg["window"] is None
    assert sorted(agg["by_model"]) == ["gpt-x", "llama3"]
    gpt = agg["by_model"]["gpt-x"]
    gpt_latencies = [1.0, 2.0, 4.0, 0.5]
    assert gpt == {
        "count": 4,
        "ok": 3,
        "failed": 1,
        "success_rate": 0.75,
        "avg_latency_s": 7.5 / 4,
        "p50_latency_s": pytest.approx(float(np.percentile(gpt_latencies, 50))),
        "p95_latency_s": pytest.approx(float(np.percentile(gpt_latencies, 95))),
        "input_tokens": 230,
        "output_tokens": 30,
        "calls_usage_absent": 1,
        "cost_usd": 0.75,
        "calls_price_unknown": 1,
        "cache_hits": 1,
    }
    critic = agg["by_caller"]["critic"]
    assert critic["count"] == 2 and critic["cache_hits"] == 1 and critic["cost_usd"] == 0.0
    assert critic["input_tokens"] == 200 and critic["p50_latency_s"] == 1.75
    supervisor = agg["by_caller"]["supervisor"]
    assert supervisor["count"] == 3 and supervisor["failed"] == 1
    status = monitor.status()
    assert status["total_requests"] == 5 and status["successful_requests"] == 4
    assert status["failed_requests"] == 1
    assert status["avg_response_time"] == pytest.approx(10.5 / 5)
    assert status["cost_usd"] == 0.75
    assert status["by_status"] == {s: {"ok": 4, "timeout": 1}.get(s, 0) for s in LLM_CALL_STATUSES}
    assert status["source"] == "process"


def test_status_keys(monitor: LLMMonitor, clock: ManualClock) -> None:
    clock.advance(12.0)
    status = monitor.status()
    assert status["uptime"] == 12.0
    assert status["avg_response_time"] == 0.0 and status["failed_requests"] == 0
    assert status["dropped_records"] == 0 and status["queue_depth"] == 0
    assert status["active_requests"] == 0 and status["stalled_requests"] == 0
    assert set(status["system"]) == {"cpu_percent", "memory_percent", "process_rss_mb", "uptime"}
    assert status["system"]["process_rss_mb"] > 0


def test_window_stats_equal_the_running_aggregates(clock: ManualClock) -> None:
    """The numpy stats over rows equal KeyStats over the same records (exact for these values)."""
    records: list[CallRecord] = []
    with LLMMonitor(clock=clock, wall=ManualWall(), stall_check_every_s=None) as mon:
        for i in range(60):
            records.append(
                call(
                    mon,
                    clock,
                    latency=0.25 * (1 + i % 7),
                    model=("gpt-x", "llama3", "qwen")[i % 3],
                    caller=("supervisor", "critic")[i % 2],
                    status=("ok", "ok", "timeout", "ok", "invalid_output")[i % 5],
                    usage=(Usage(100, 20), Usage(), Usage(30, None), Usage(None, 7))[i % 4],
                    cost=(0.5, None, 0.0, 0.125)[i % 4],
                    cache_hit=i % 6 == 0,
                )
            )
    running = Aggregates()
    for record in records:
        running.add(record)
    rows = [tuple(getattr(r, name) for name in RECENT_COLUMNS) for r in records]
    assert window_stats(rows) == running.to_dict()
    assert window_stats([]) == {"by_model": {}, "by_caller": {}}


def test_table_totals_from_rows() -> None:
    totals = TableTotals.from_rows([("ok", 3, 4.5, 0.25), ("timeout", 2, 60.0, None)])
    assert totals == TableTotals(
        count=5, ok=3, latency_sum=64.5, cost_usd=0.25, by_status={"ok": 3, "timeout": 2}
    )
    assert TableTotals.from_rows([]) == TableTotals(0, 0, 0.0, 0.0, {})


def test_cached_read_refreshes_in_the_background(clock: ManualClock) -> None:
    """The first get waits for the first read; later ones return the cached value at once."""
    values = iter(range(1, 100))
    release = threading.Event()
    release.set()

    def read() -> int:
        assert release.wait(30.0)
        return next(values)

    cached = CachedRead(read, ttl_s=1.0, clock=clock, first_wait_s=30.0)
    assert cached.get() == 1 and cached.reads == 1
    clock.advance(0.9)
    assert cached.get() == 1 and cached.reads == 1  # fresh: no read
    clock.advance(0.1)
    release.clear()  # the next read blocks until released
    assert cached.get() == 1 and cached.reads == 2  # stale: served, one read started
    assert cached.get() == 1 and cached.reads == 2  # never two reads at a time
    assert not cached.wait(0.05)
    release.set()
    assert cached.wait(30.0)
    assert cached.get() == 2 and cached.reads == 2  # the read started at t=1001: still fresh
    clock.advance(1.0)
    assert cached.get() == 2 and cached.wait(30.0) and cached.get() == 3


def test_cached_read_failure_gives_none_and_warns_once_a_minute(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="morningstar")
    fail = [True]

    def read() -> str:
        if fail[0]:
            raise StorageError("query on sqlite:///x failed: database is locked")
        return "value"

    cached = CachedRead(read, ttl_s=1.0, clock=clock, what="call totals", first_wait_s=30.0)
    for _ in range(5):
        assert cached.get() is None
        assert cached.wait(30.0)
        clock.advance(1.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "database is locked" in warnings[0].getMessage()
    clock.advance(60.0)
    assert cached.get() is None and cached.wait(30.0)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    fail[0] = False
    clock.advance(1.0)
    assert cached.get() is None  # the stale (failed) value, while the new read runs
    assert cached.wait(30.0) and cached.get() == "value"


def test_database_error_falls_back_to_this_process(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="morningstar")
    with LLMMonitor(db=_FailingDB(), clock=clock, stall_check_every_s=None, db_wait_s=30.0) as mon:  # type: ignore[arg-type]
        call(mon, clock, latency=2.0)
        call(mon, clock, latency=1.0, status="timeout")
        status = mon.status()
        assert status["source"] == "process"
        assert status["total_requests"] == 2 and status["failed_requests"] == 1
        assert status["avg_response_time"] == 1.5
        assert status["by_status"]["timeout"] == 1
        agg = mon.aggregates()
        assert agg["source"] == "process" and agg["window"] is None
        assert agg["by_model"]["gpt-x"]["count"] == 2
        for _ in range(3):
            clock.advance(2.0)
            assert mon.status()["source"] == "process"
            assert mon.wait_db_reads(30.0)
    warned = [r.getMessage() for r in caplog.records if "reading the LLM" in r.getMessage()]
    assert len(warned) == 2  # once for the totals, once for the aggregates
    assert all("disk I/O error" in message for message in warned)


# --------------------------------------------------------------------------- history (memory)


def test_history_in_memory_filters_and_pages(clock: ManualClock) -> None:
    with LLMMonitor(
        clock=clock, wall=ManualWall(), history_size=8, stall_check_every_s=None
    ) as mon:
        records = [
            call(
                mon,
                clock,
                model=("gpt-x", "llama3")[i % 2],
                caller=("supervisor", "critic", "analyst")[i % 3],
                status="ok" if i % 4 else "timeout",
            )
            for i in range(10)
        ]
        newest_first = records[::-1][:8]  # the ring keeps the last 8
        assert mon.history() == newest_first
        assert mon.history(limit=3, offset=2) == newest_first[2:5]
        assert mon.history(model="llama3") == [r for r in newest_first if r.model == "llama3"]
        assert mon.history(caller="critic", status="ok") == [
            r for r in newest_first if r.caller == "critic" and r.status == "ok"
        ]
        assert mon.history(status="timeout", limit=1) == [records[8]]
        assert mon.history(model="nope") == []
        with pytest.raises(ValueError, match="limit"):
            mon.history(limit=0)


# --------------------------------------------------------------------------- stalls


def test_stall_detection_alerts_once(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    alerts: list[StallAlert] = []
    with LLMMonitor(
        clock=clock, stall_factor=3.0, on_alert=alerts.append, stall_check_every_s=None
    ) as mon:
        for _ in range(19):
            call(mon, clock, latency=2.0)
        slow = mon.start(provider="openai", model="gpt-x", caller="supervisor", prompt="p")
        clock.advance(1_000)
        assert mon.check_stalls() == []  # 19 completed calls: not enough to judge
        mon.finish(slow, status="ok", usage=Usage(), cost_usd=0.0, price_status="free")
        for _ in range(5):
            call(mon, clock, latency=0.0, cache_hit=True)  # not part of the baseline
        other = mon.start(provider="ollama", model="llama3", caller="c", prompt="p")
        trace = mon.start(provider="openai", model="gpt-x", caller="supervisor", prompt="p")
        p95 = float(np.percentile([2.0] * 19 + [1_000.0], 95))
        clock.advance(3.0 * p95 - 0.01)
        assert mon.check_stalls() == []
        clock.advance(0.02)
        caplog.set_level(logging.WARNING, logger="morningstar")
        new = mon.check_stalls()
        assert [a.call_id for a in new] == [trace.id]
        assert new[0].threshold_s == pytest.approx(3.0 * p95) and new[0].p95_s == p95
        assert mon.check_stalls() == []
        assert alerts == new
        assert "stalled" in caplog.text and trace.id in caplog.text
        by_id = {a.id: a for a in mon.active()}
        assert by_id[trace.id].stalled and not by_id[other.id].stalled
        status = mon.status()
        assert status["stalled_requests"] == 1 and status["stalls_total"] == 1
        assert mon.registry.get_sample_value("morningstar_llm_stalls_total") == 1.0
        mon.finish(trace, status="ok", usage=Usage(), cost_usd=0.0, price_status="free")
        assert mon.status()["stalled_requests"] == 0


def test_stall_threshold_is_at_least_one_second(clock: ManualClock) -> None:
    with LLMMonitor(clock=clock, stall_check_every_s=None) as mon:
        for _ in range(20):
            call(mon, clock, latency=0.01)
        mon.start(provider="p", model="gpt-x", caller="c", prompt="p")
        clock.advance(0.5)
        assert mon.check_stalls() == []
        clock.advance(0.6)
        assert len(mon.check_stalls()) == 1


def test_background_stall_timer_alerts(clock: ManualClock) -> None:
    seen = threading.Event()
    with LLMMonitor(clock=clock, on_alert=lambda _a: seen.set(), stall_check_every_s=0.01) as mon:
        for _ in range(20):
            call(mon, clock, latency=1.0)
        mon.start(provider="p", model="gpt-x", caller="c", prompt="p")
        clock.advance(10.0)
        assert seen.wait(10.0), "the stall timer never ran"
        assert mon.status()["stalls_total"] == 1


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_metrics(monitor: LLMMonitor, clock: ManualClock) -> None:
    reg = monitor.registry
    trace = monitor.start(provider="openai", model="gpt-x", caller="c", prompt="p")
    labels = {"provider": "openai", "model": "gpt-x"}
    assert reg.get_sample_value("morningstar_llm_active_requests", labels) == 1.0
    clock.advance(0.3)
    monitor.finish(trace, status="ok", usage=Usage(100, 20), cost_usd=0.5, price_status="priced")
    call(monitor, clock, latency=2.0, usage=Usage(), cost=None)
    call(monitor, clock, status="timeout", error=LLMTimeoutError("slow"), cost=0.25)
    assert reg.get_sample_value("morningstar_llm_active_requests", labels) == 0.0
    duration = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-x",
    }
    assert (
        reg.get_sample_value(
            "gen_ai_client_operation_duration_seconds_count", {**duration, "error_type": ""}
        )
        == 2.0
    )
    assert reg.get_sample_value(
        "gen_ai_client_operation_duration_seconds_sum", {**duration, "error_type": ""}
    ) == pytest.approx(2.3)
    assert (
        reg.get_sample_value(
            "gen_ai_client_operation_duration_seconds_count",
            {**duration, "error_type": "LLMTimeoutError"},
        )
        == 1.0
    )
    tokens = {**duration, "gen_ai_token_type": "input"}
    assert reg.get_sample_value("gen_ai_client_token_usage_count", tokens) == 2.0  # absent: skipped
    assert reg.get_sample_value("gen_ai_client_token_usage_sum", tokens) == 200.0
    assert reg.get_sample_value("morningstar_llm_cost_usd_total", labels) == 0.75
    assert (
        reg.get_sample_value("morningstar_llm_requests_total", {**labels, "status": "timeout"})
        == 1.0
    )
    assert reg.get_sample_value("morningstar_llm_requests_total", {**labels, "status": "ok"}) == 2.0
    assert reg.get_sample_value("morningstar_llm_dropped_records_total") == 0.0
    text = generate_latest(reg).decode()
    le = re.findall(r'gen_ai_client_operation_duration_seconds_bucket\{[^}]*le="([^"]+)"', text)
    assert [float(v) for v in le[: len(DURATION_BUCKETS) + 1]] == [*DURATION_BUCKETS, float("inf")]
    le = re.findall(r'gen_ai_client_token_usage_bucket\{[^}]*le="([^"]+)"', text)
    assert [float(v) for v in le[: len(TOKEN_BUCKETS) + 1]] == [*TOKEN_BUCKETS, float("inf")]
    assert trace.id not in text


def test_prometheus_labels_are_bounded_and_carry_no_ids(clock: ManualClock) -> None:
    registry = CollectorRegistry()
    with LLMMonitor(
        clock=clock, registry=registry, session_id="session-xyz", stall_check_every_s=None
    ) as mon:
        records = [call(mon, clock, model=f"model-{i}") for i in range(60)]
        text = generate_latest(registry).decode()
    models = set(re.findall(r'gen_ai_request_model="([^"]+)"', text))
    assert len(models) == 51 and "other" in models
    assert (
        registry.get_sample_value(
            "morningstar_llm_requests_total",
            {"provider": "openai", "model": "other", "status": "ok"},
        )
        == 10.0
    )
    assert "session-xyz" not in text and "assess BTC" not in text
    assert not any(r.id in text for r in records)


# --------------------------------------------------------------------------- OpenTelemetry


def test_span_attributes(monitor: LLMMonitor, clock: ManualClock) -> None:
    ok = call(monitor, clock, usage=Usage(100, 20, 64), cost=0.5)
    attrs = span_attributes(ok)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-x"
    assert attrs["gen_ai.usage.input_tokens"] == 100
    assert attrs["gen_ai.usage.output_tokens"] == 20
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 64
    assert attrs["morningstar.caller"] == "supervisor" and attrs["morningstar.cost_usd"] == 0.5
    assert attrs["morningstar.cache_hit"] is False and "error.type" not in attrs
    failed = call(
        monitor, clock, status="timeout", usage=Usage(), cost=None, error=LLMTimeoutError("t")
    )
    attrs = span_attributes(failed)
    assert attrs["error.type"] == "LLMTimeoutError"
    for absent in (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "morningstar.cost_usd",
    ):
        assert absent not in attrs


def test_traces_url() -> None:
    assert traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert traces_url("https://c:4318/custom/path") == "https://c:4318/custom/path"
    with pytest.raises(ConfigError, match=r"llm\.otlp_endpoint"):
        traces_url("collector:4318")


class _Collector(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def otlp_collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    bodies: list[tuple[str, bytes]] = []
    handler = type("Handler", (_Collector,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_otlp_export_sends_genai_spans(clock: ManualClock) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    register_secrets([REGISTERED])
    with (
        otlp_collector() as (endpoint, bodies),
        LLMMonitor(
            clock=clock, wall=ManualWall(), otlp_endpoint=endpoint, stall_check_every_s=None
        ) as mon,
    ):
        ok = call(mon, clock, latency=1.5, usage=Usage(100, 20), cost=0.5)
        failed = call(
            mon,
            clock,
            status="provider_error",
            usage=Usage(),
            cost=None,
            error=RuntimeError(f"bad key {SK_KEY} for {REGISTERED}"),
        )
        assert mon.flush(10.0)
    assert bodies and all(path == "/v1/traces" for path, _ in bodies)
    spans = []
    for _, body in bodies:
        for leak in LEAKS:
            assert leak.encode() not in body
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    by_id = {}
    for span in spans:
        attrs = {kv.key: kv.value for kv in span.attributes}
        by_id[attrs["morningstar.call_id"].string_value] = (span, attrs)
    span, attrs = by_id[ok.id]
    assert span.name == "chat gpt-x"
    assert span.end_time_unix_nano - span.start_time_unix_nano == 1_500_000_000
    assert attrs["gen_ai.operation.name"].string_value == "chat"
    assert attrs["gen_ai.provider.name"].string_value == "openai"
    assert attrs["gen_ai.request.model"].string_value == "gpt-x"
    assert attrs["gen_ai.usage.input_tokens"].int_value == 100
    assert attrs["gen_ai.usage.output_tokens"].int_value == 20
    assert attrs["morningstar.cost_usd"].double_value == 0.5
    span, attrs = by_id[failed.id]
    assert attrs["error.type"].string_value == "RuntimeError"
    assert "gen_ai.usage.input_tokens" not in attrs and "morningstar.cost_usd" not in attrs
    assert span.status.code == 2 and "***" in span.status.message


# --------------------------------------------------------------------------- queue, settings


class _FailingDB:
    """A database whose every transaction fails (as :class:`Database` reports it)."""

    @contextmanager
    def session(self, **_kwargs: Any) -> Iterator[Any]:
        raise StorageError("transaction on sqlite:///x failed: disk I/O error")
        yield


def test_database_errors_are_logged_and_counted_as_dropped(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="morningstar")
    with LLMMonitor(db=_FailingDB(), clock=clock, stall_check_every_s=None) as mon:  # type: ignore[arg-type]
        for _ in range(3):
            call(mon, clock)
        assert mon.flush(10.0)
        assert mon.dropped == 3
        assert mon.status()["dropped_records"] == 3
        assert mon.registry.get_sample_value("morningstar_llm_dropped_records_total") == 3.0
    assert "disk I/O error" in caplog.text


def test_recorder_rejects_a_bad_queue_size() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        CallRecorder(_FailingDB(), queue_size=0)  # type: ignore[arg-type]


def test_from_settings(tmp_path: Any) -> None:
    settings = Settings(llm={"capture": "off", "stall_factor": 5.0, "queue_size": 123})
    with LLMMonitor.from_settings(settings, None, session_id="s-1") as mon:
        assert mon.capture == "off" and mon.stall_factor == 5.0 and mon.session_id == "s-1"
        assert mon.db is None and mon.dropped == 0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="capture"):
        LLMMonitor(capture="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stall_factor"):
        LLMMonitor(stall_factor=0)


def test_exported_names() -> None:
    import morningstar.llm.monitor as package

    assert sorted(package.__all__) == [
        "ActiveCall", "CallRecord", "CallTrace", "LLMMonitor", "StallAlert", "capture_text",
        "excerpt", "query_history", "redact_text", "span_attributes",
    ]  # fmt: skip
    for name in package.__all__:
        assert hasattr(package, name)
