"""The LLM monitor writes its records to ``llm_calls`` on SQLite and PostgreSQL.

Rows equal records (absent usage and unknown prices stay NULL), history, status and aggregates
are read back from the database (so another monitor sharing it, as the API server's, sees the
calls), and a slow database never blocks the caller: records pile up to the queue's bound, then
are dropped and counted.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from morningstar.errors import LLMTimeoutError
from morningstar.llm.monitor import CallRecord, LLMMonitor
from morningstar.llm.monitor.aggregates import DB_WINDOW
from morningstar.llm.monitor.records import RECORD_COLUMNS
from morningstar.llm.types import Usage
from morningstar.store.db import Database, open_database
from morningstar.store.models import LLM_CALL_STATUSES, LLMCallRow

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


class Clocks:
    """A manual monotonic clock and a wall clock one second apart per reading."""

    def __init__(self) -> None:
        self.t = 50.0
        self.n = 0

    def mono(self) -> float:
        return self.t

    def wall(self) -> datetime:
        self.n += 1
        return T0 + timedelta(seconds=self.n)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.dispose()


def make_monitor(db: Database, clocks: Clocks, **kwargs: object) -> LLMMonitor:
    return LLMMonitor(
        db=db,
        session_id="sess-1",
        clock=clocks.mono,
        wall=clocks.wall,
        stall_check_every_s=None,
        db_wait_s=60.0,
        **kwargs,  # type: ignore[arg-type]
    )


def finish_one(
    mon: LLMMonitor,
    clocks: Clocks,
    *,
    model: str = "gpt-x",
    caller: str = "supervisor",
    status: str = "ok",
    usage: Usage | None = None,
    cost: float | None = 0.002,
    latency: float = 1.25,
    error: BaseException | None = None,
) -> CallRecord:
    trace = mon.start(
        provider="openai",
        model=model,
        caller=caller,
        prompt="assess BTC/USDT at 43125.57, key sk-abcdefghijklmnop",
        template_id="assess",
        template_version=3,
        streamed=True,
    )
    clocks.t += 0.5
    mon.first_token(trace)
    clocks.t += latency - 0.5
    return mon.finish(
        trace,
        status=status,
        usage=usage if usage is not None else Usage(120, 30, 64),
        cost_usd=cost,
        price_status="priced" if cost is not None else "unknown",
        response='{"verdict": "approve"}',
        error=error,
        cache_key="c" * 64,
    )


def read_rows(db: Database) -> dict[str, dict[str, object]]:
    table = LLMCallRow.__table__
    with db.session(readonly=True) as session:
        rows = session.execute(sa.select(table)).mappings().all()
    return {str(row["id"]): dict(row) for row in rows}


def test_rows_equal_records(db: Database) -> None:
    clocks = Clocks()
    with make_monitor(db, clocks) as mon:
        records = [
            finish_one(mon, clocks),
            finish_one(mon, clocks, usage=Usage(), cost=None),
            finish_one(
                mon,
                clocks,
                status="timeout",
                usage=Usage(input_tokens=77),
                error=LLMTimeoutError("timed out after 30 s"),
            ),
        ]
        assert mon.flush(30.0)
        assert mon.dropped == 0
    rows = read_rows(db)
    assert sorted(rows) == sorted(r.id for r in records)
    for record in records:
        assert rows[record.id] == record.to_row()
    absent = rows[records[1].id]
    assert absent["input_tokens"] is None and absent["output_tokens"] is None
    assert absent["cached_input_tokens"] is None
    assert absent["cost_usd"] is None and absent["price_status"] == "unknown"
    failed = rows[records[2].id]
    assert failed["error_type"] == "LLMTimeoutError" and failed["output_tokens"] is None
    for row in rows.values():
        assert "abcdefghijklmnop" not in str(row["prompt"])
        assert "43125.57" in str(row["prompt"])


def test_history_reads_the_database_shared_by_monitors(db: Database) -> None:
    clocks = Clocks()
    with make_monitor(db, clocks) as writer:
        written = [
            finish_one(
                writer,
                clocks,
                model=("gpt-x", "llama3")[i % 2],
                caller=("supervisor", "critic", "analyst")[i % 3],
                status="ok" if i % 4 else "timeout",
            )
            for i in range(12)
        ]
        assert writer.flush(30.0)
    newest_first = written[::-1]
    with make_monitor(db, Clocks()) as reader:  # another process, in effect
        assert reader.history() == newest_first
        assert reader.history(limit=4, offset=3) == newest_first[3:7]
        assert reader.history(model="llama3") == [r for r in newest_first if r.model == "llama3"]
        assert reader.history(caller="critic", status="ok") == [
            r for r in newest_first if r.caller == "critic" and r.status == "ok"
        ]
        assert (
            reader.history(status="timeout", limit=2, offset=1)
            == [r for r in newest_first if r.status == "timeout"][1:3]
        )
        assert reader.history(model="absent") == []
        assert reader.status()["total_requests"] == 12  # every process's calls
        assert writer.status()["total_requests"] == 12


def test_status_and_aggregates_show_every_process_calls(db: Database) -> None:
    """Calls recorded by one monitor show, exactly, in another's status and aggregates."""
    clocks = Clocks()
    with make_monitor(db, clocks) as writer:
        written = [
            finish_one(writer, clocks, latency=1.25),
            finish_one(writer, clocks, latency=0.5, usage=Usage(), cost=None),
            finish_one(
                writer,
                clocks,
                latency=30.0,
                status="timeout",
                usage=Usage(input_tokens=77),
                error=LLMTimeoutError("timed out after 30 s"),
            ),
            finish_one(writer, clocks, model="llama3", caller="critic", latency=2.0, cost=0.0),
            finish_one(writer, clocks, model="llama3", caller="critic", status="invalid_output"),
        ]
        assert writer.flush(30.0)
    reader_clocks = Clocks()
    with make_monitor(db, reader_clocks) as reader:  # the API server's monitor, in effect
        status = reader.status()
        assert status["source"] == "database"
        assert status["total_requests"] == 5 and status["successful_requests"] == 3
        assert status["failed_requests"] == 2
        assert status["avg_response_time"] == (1.25 + 0.5 + 30.0 + 2.0 + 1.25) / 5
        assert status["cost_usd"] == 0.002 * 3
        assert status["by_status"] == {
            s: {"ok": 3, "timeout": 1, "invalid_output": 1}.get(s, 0) for s in LLM_CALL_STATUSES
        }
        # in-process figures stay the reader's own
        assert status["active_requests"] == 0 and status["queue_depth"] == 0
        agg = reader.aggregates()
        assert agg["source"] == "database" and agg["window"] == DB_WINDOW
        assert sorted(agg["by_model"]) == ["gpt-x", "llama3"]
        gpt = agg["by_model"]["gpt-x"]
        assert gpt == {
            "count": 3,
            "ok": 2,
            "failed": 1,
            "success_rate": 2 / 3,
            "avg_latency_s": (1.25 + 0.5 + 30.0) / 3,
            "p50_latency_s": 1.25,
            "p95_latency_s": pytest.approx(1.25 + (30.0 - 1.25) * 0.9),
            "input_tokens": 120 + 77,
            "output_tokens": 30,
            "calls_usage_absent": 1,
            "cost_usd": 0.002 * 2,
            "calls_price_unknown": 1,
            "cache_hits": 0,
        }
        llama = agg["by_model"]["llama3"]
        assert llama["count"] == 2 and llama["failed"] == 1 and llama["cost_usd"] == 0.002
        assert llama["input_tokens"] == 240 and llama["calls_price_unknown"] == 0
        assert agg["by_caller"]["critic"] == llama
        assert agg["by_caller"]["supervisor"] == gpt
        assert reader.history(limit=1)[0] == written[-1]
        assert reader.status()["total_requests"] == 5  # the reader itself made none


def test_database_figures_are_cached(db: Database) -> None:
    """Status is read again after 1 s, aggregates after 2 s (the injected clock, no sleep)."""
    clocks = Clocks()
    reader_clocks = Clocks()
    with make_monitor(db, clocks) as writer, make_monitor(db, reader_clocks) as reader:
        finish_one(writer, clocks)
        assert writer.flush(30.0)
        assert reader.status()["total_requests"] == 1
        assert reader.aggregates()["by_model"]["gpt-x"]["count"] == 1
        finish_one(writer, clocks, status="timeout")
        assert writer.flush(30.0)
        reader_clocks.t += 0.9  # both still fresh: no read
        assert reader.status()["total_requests"] == 1
        assert reader.aggregates()["by_model"]["gpt-x"]["count"] == 1
        assert reader.wait_db_reads(30.0)
        assert reader.status()["total_requests"] == 1
        reader_clocks.t += 0.1  # the status is stale: served once more while it is read again
        assert reader.status()["total_requests"] == 1
        assert reader.wait_db_reads(30.0)
        status = reader.status()
        assert status["total_requests"] == 2 and status["failed_requests"] == 1
        assert reader.aggregates()["by_model"]["gpt-x"]["count"] == 1  # kept 2 s
        reader_clocks.t += 1.0
        assert reader.aggregates()["by_model"]["gpt-x"]["count"] == 1  # stale: served
        assert reader.wait_db_reads(30.0)
        assert reader.aggregates()["by_model"]["gpt-x"]["failed"] == 1


def test_aggregates_cover_the_newest_calls(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-model window holds the DB_WINDOW newest calls (3 here); totals cover them all."""
    monkeypatch.setattr("morningstar.llm.monitor.monitor.DB_WINDOW", 3)
    clocks = Clocks()
    with make_monitor(db, clocks) as writer:
        for model in ("old", "old", "new-a", "new-b", "new-b"):
            finish_one(writer, clocks, model=model)
        assert writer.flush(30.0)
    with make_monitor(db, Clocks()) as reader:
        agg = reader.aggregates()
        assert agg["window"] == 3
        assert {k: v["count"] for k, v in agg["by_model"].items()} == {"new-a": 1, "new-b": 2}
        assert reader.status()["total_requests"] == 5


def test_a_slow_database_never_blocks_the_caller(sqlite_url: str) -> None:
    """Hold SQLite's write lock from another connection: finish() keeps returning at once."""
    db = open_database(sqlite_url)
    path = Path(sa.engine.make_url(sqlite_url).database or "")
    clocks = Clocks()
    queue_size = 5
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        with make_monitor(db, clocks, queue_size=queue_size) as mon:
            blocker.execute("BEGIN EXCLUSIVE")
            first = finish_one(mon, clocks)
            # wait (bounded) until the writer has taken it and is stuck on the lock
            deadline = time.monotonic() + 20
            while mon.status()["queue_depth"] and time.monotonic() < deadline:
                time.sleep(0.01)
            assert mon.status()["queue_depth"] == 0
            later = [finish_one(mon, clocks) for _ in range(20)]
            # every finish() returned while the lock is still held
            assert blocker.in_transaction
            assert mon.status()["queue_depth"] == queue_size
            assert mon.dropped == 20 - queue_size
            assert mon.registry.get_sample_value("morningstar_llm_dropped_records_total") == 15.0
            assert read_rows_sqlite(path) == 0  # nothing written yet (readers pass in WAL mode)
            blocker.execute("ROLLBACK")
            assert mon.flush(30.0)
            stored = read_rows(db)
        assert set(stored) == {first.id, *(r.id for r in later[:queue_size])}
    finally:
        blocker.close()
        db.dispose()


def read_rows_sqlite(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
    conn.close()
    return count


def test_close_drains_the_queue(db: Database) -> None:
    clocks = Clocks()
    mon = make_monitor(db, clocks)
    records = [finish_one(mon, clocks) for _ in range(50)]
    mon.close()
    mon.close()  # idempotent
    assert sorted(read_rows(db)) == sorted(r.id for r in records)
    assert set(RECORD_COLUMNS) == {c.name for c in LLMCallRow.__table__.columns}
