"""The workflow store on SQLite and on the real PostgreSQL: atomic, idempotent, resumable."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from morningstar.core.cycle import CycleRecord, EquitySnapshot, cycle_id
from morningstar.core.orders import Fill
from morningstar.errors import StorageError
from morningstar.store import Database, open_database
from morningstar.store.workflow import WorkflowStore
from tests.workflow_scenario import (
    BTC,
    ETH,
    O1,
    O2,
    O3,
    RUN,
    SL1,
    SL2,
    SL3,
    STRATEGY,
    T0,
    TP1,
    TP2,
    fill_store,
    records,
    t,
)


def _clock() -> Callable[[], datetime]:
    ticks = iter(range(10**6))
    return lambda: T0 + timedelta(days=30, seconds=next(ticks))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, now=_clock())
    yield database
    database.dispose()


@pytest.fixture
def store(db: Database) -> WorkflowStore:
    return WorkflowStore(db)


def _start(store: WorkflowStore, run_id: str = RUN) -> None:
    store.start_run(run_id, mode="paper", strategy=STRATEGY, pairs=[BTC, ETH], timeframe="1h")


def _count(db: Database, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


_VOLATILE = {"persisted_at", "updated_at", "created_at", "id"}


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every workflow table's rows (clock-stamped columns left out), sorted."""
    out = {}
    meta = sa.MetaData()
    meta.reflect(db.engine)
    with db.engine.connect() as conn:
        for name in ("cycles", "cycle_errors", "orders", "fills", "positions", "workflow_state"):
            table = meta.tables[name]
            cols = [c for c in table.c if c.name not in _VOLATILE]
            out[name] = sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(*cols)))
    return out


def test_scenario_is_stored_with_order_statuses_positions_and_state(
    db: Database, store: WorkflowStore
) -> None:
    fill_store(store)
    assert _count(db, "cycles") == 13 and _count(db, "fills") == 5
    status = {o.client_order_id: o.status for o in store.orders(RUN)}
    assert status == {
        O1.client_order_id: "filled", TP1.client_order_id: "filled",
        SL1.client_order_id: "cancelled",  # OCO: the target closed the position
        O2.client_order_id: "filled", SL2.client_order_id: "filled",
        TP2.client_order_id: "cancelled", O3.client_order_id: "filled",
        SL3.client_order_id: "open",
    }  # fmt: skip
    filled = {o.client_order_id: o.filled_quantity for o in store.orders(RUN, status="filled")}
    assert filled[O2.client_order_id] == 10.0
    positions = store.positions(RUN)
    assert [(p.pair, p.side, p.quantity, p.entry_price, p.mark_price) for p in positions] == [
        (BTC, 1, 1.0, 110.0, 115.0)
    ]
    run = store.get_run(RUN)
    assert run is not None
    assert (run.status, run.cycles, run.last_bar_ts, run.mode) == ("running", 12, t(5), "paper")
    assert run.config == {"exchange": {"api_key": "***", "name": "binance"}}  # never stored
    cycles = store.cycles(RUN, BTC)
    assert [c.bar_ts for c in cycles] == [t(i) for i in range(6)]
    assert [c.seq for c in store.cycles(RUN)] == list(range(1, 13))
    assert cycles[0].action == "open" and cycles[0].llm_verdict == "approve"
    assert cycles[0].decision is not None
    assert cycles[0].decision["final"]["price"] is None  # NaN stored as null (JSON has no NaN)
    errors = store.errors(RUN)
    assert [(e.pair, e.step, e.outcome, e.attempts) for e in errors] == [
        (ETH, "supervise", "abstained", 2)
    ]
    assert [f.fill_id for f in store.fills(RUN, pair=ETH)] == [
        O2.client_order_id + "-f",
        SL2.client_order_id + "-f",
    ]


def test_order_placed_in_one_cycle_is_filled_in_a_later_one(store: WorkflowStore) -> None:
    _start(store)
    first, second = records()[0], records()[2]  # BTC t0 (places O1), BTC t1 (fills it)
    assert store.persist(first)
    assert [(o.status, o.filled_quantity) for o in store.orders(RUN)] == [("open", 0.0)]
    assert store.persist(second)
    by_id = {o.client_order_id: o for o in store.orders(RUN)}
    assert by_id[O1.client_order_id].status == "filled"
    assert by_id[O1.client_order_id].updated_cycle_id == second.cycle_id
    assert by_id[O1.client_order_id].cycle_id == first.cycle_id
    assert {by_id[SL1.client_order_id].status, by_id[TP1.client_order_id].status} == {"open"}


def test_persisting_twice_writes_once(db: Database, store: WorkflowStore) -> None:
    _start(store)
    record = records()[2]
    store.persist(records()[0])
    assert store.persist(record, state={"v": 1}) is True
    before = _snapshot(db)
    assert store.persist(record, state={"v": 2}) is False
    assert _snapshot(db) == before
    assert store.last_state(RUN).states[BTC] == {"v": 1}
    run = store.get_run(RUN)
    assert run is not None and run.cycles == 2
    # a batch with stored and new cycles writes the new ones only
    assert store.persist_many(records()[:5]) == 3
    assert _count(db, "cycles") == 5


def test_concurrent_duplicate_loses_on_the_key_and_writes_nothing(
    db: Database, store: WorkflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The existence check passed (a twin transaction committed in between): the insert hits
    the primary key, the transaction is rolled back, and persist answers False."""
    _start(store)
    record = records()[0]
    assert store.persist(record)
    before = _snapshot(db)
    real = WorkflowStore._existing
    calls = []

    def blind(self: WorkflowStore, ids: Any, conn: Any = None) -> set[str]:
        calls.append(conn)
        return set() if conn is not None and len(calls) == 1 else real(self, ids, conn)

    monkeypatch.setattr(WorkflowStore, "_existing", blind)
    assert store.persist(record, state={"x": 1}) is False
    assert _snapshot(db) == before
    run = store.get_run(RUN)
    assert run is not None and run.cycles == 1  # the counter bump was rolled back


def test_failure_in_the_middle_of_a_persist_leaves_nothing_of_the_cycle(
    db: Database, store: WorkflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(store)
    assert store.persist(records()[0], state={"n": 0})
    before = _snapshot(db)

    def boom(*_args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(WorkflowStore, "_write_positions", boom)
    with pytest.raises(RuntimeError):
        store.persist(records()[2], state={"n": 1})  # cycle, orders, fills written before
    assert _snapshot(db) == before
    run = store.get_run(RUN)
    assert run is not None and run.cycles == 1 and run.last_bar_ts == t(0)
    monkeypatch.undo()
    assert store.persist(records()[2], state={"n": 1}) is True  # the retry writes it


def test_fill_of_an_unknown_order_is_a_one_line_storage_error_and_rolls_back(
    db: Database, store: WorkflowStore
) -> None:
    _start(store)
    stray = Fill("nope-f", "ms-unknown-o", BTC, "buy", 1.0, 100.0, 0.1, t(1), "signal")
    record = CycleRecord(cycle_id(RUN, BTC, t(1)), RUN, BTC, t(1), STRATEGY, None, None, None,
                         fills=(stray,))  # fmt: skip
    with pytest.raises(StorageError) as info:
        store.persist(record)
    assert "\n" not in str(info.value)
    assert _count(db, "cycles") == 0 and _count(db, "fills") == 0


def test_persist_before_start_run_is_a_storage_error(store: WorkflowStore) -> None:
    with pytest.raises(StorageError, match="start_run"):
        store.persist(records()[0])


def test_resume_state_round_trip(store: WorkflowStore) -> None:
    _start(store)
    assert store.last_state(RUN) == ({}, {})
    state = {"broker": {"open_orders": [O1.as_dict()], "cash": 9_899.9},
             "ledger": {"positions": {BTC: {"qty": 1.0, "entry": 100.0}}},
             "risk": {"state": "active", "peak": 10_004.9, "day_pnl": math.inf}}  # fmt: skip
    recs = records()
    store.persist(recs[0], state={"old": True})
    store.persist(recs[1], state={"eth": 1})
    store.persist(recs[2], state=state)
    store.persist(recs[3])  # no state: the ETH state stays the one of t0
    last_bar, states = store.last_state(RUN)
    assert last_bar == {BTC: t(1), ETH: t(1)}
    assert states[ETH] == {"eth": 1}
    expected = {**state, "risk": {**state["risk"], "day_pnl": None}}  # inf is not JSON
    assert states[BTC] == expected
    assert store.last_state(RUN).latest() == expected  # the most recently persisted state


def test_persist_many_equals_persist_one_by_one(db: Database, store: WorkflowStore) -> None:
    fill_store(store, with_old_run=False)
    one_by_one = _snapshot(db)
    db.downgrade("base")
    db.migrate()
    _start(store)
    recs = records()
    states = [{"broker": {"n": i}, "risk": {"state": "active"}} for i in range(len(recs))]
    assert store.persist_many(recs[:5], states[:5]) == 5  # two batches across a trade
    assert store.persist_many(recs[5:], states[5:]) == 7
    assert _snapshot(db) == one_by_one


def test_start_run_resumes_and_refuses_a_different_run(store: WorkflowStore) -> None:
    _start(store)
    store.finish_run(RUN, "failed", error="boom")
    run = store.get_run(RUN)
    assert run is not None and (run.status, run.error) == ("failed", "boom")
    _start(store)  # a restart of the same run
    run = store.get_run(RUN)
    assert run is not None and (run.status, run.error, run.finished_at) == ("running", None, None)
    with pytest.raises(ValueError, match="mode"):
        store.start_run(RUN, mode="live", strategy=STRATEGY, pairs=[BTC, ETH], timeframe="1h")
    with pytest.raises(ValueError, match="status"):
        store.finish_run(RUN, "running")
    with pytest.raises(StorageError):
        store.finish_run("f" * 32, "finished")


def test_runs_are_listed_newest_first(store: WorkflowStore) -> None:
    fill_store(store)
    assert [r.run_id for r in store.runs()] == [RUN, "0" * 32]
    assert [r.run_id for r in store.runs(status="finished")] == ["0" * 32]
    latest = store.latest_run()
    assert latest is not None and latest.run_id == RUN


def test_quiet_cycle_without_equity_keeps_positions(store: WorkflowStore) -> None:
    fill_store(store, with_old_run=False)
    skipped = CycleRecord(cycle_id(RUN, BTC, t(6)), RUN, BTC, t(6), STRATEGY, None, None, None)
    assert store.persist(skipped)
    assert [p.pair for p in store.positions(RUN)] == [BTC]
    flat = CycleRecord(cycle_id(RUN, ETH, t(6)), RUN, ETH, t(6), STRATEGY, None, None, None,
                       equity=EquitySnapshot(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, "active"))  # fmt: skip
    assert store.persist(flat)
    assert store.positions(RUN) == []


def test_quiet_cycles_are_lean_rows_of_the_equity_curve(db: Database, store: WorkflowStore) -> None:
    """A backtest batch mixing full records and lean QuietCycles (more than one id chunk: the
    range check of stored ids), written once; a rerun writes nothing."""
    from morningstar.core.cycle import PositionSnapshot
    from morningstar.store.workflow import QuietCycle

    _start(store)
    items: list[Any] = []
    for i in range(1_200):
        pair = (BTC, ETH)[i % 2]
        ts = T0 + timedelta(hours=i // 2)
        cid = cycle_id(RUN, pair, ts)
        equity = 10_000.0 + i
        if i % 100 == 7:
            items.append(CycleRecord(
                cid, RUN, pair, ts, STRATEGY, {"signal": "up"}, None,
                {"final": {"action": "none"}},
                equity=EquitySnapshot(100.0, equity, 1.0, 2.0, 3.0, 0.01, "active"),
                timings={"fetch": 0.1},
            ))  # fmt: skip
        else:
            items.append(QuietCycle(cid, RUN, pair, ts, STRATEGY, equity, 100.0, 1.0, 2.0, 3.0,
                                    0.01, "active"))  # fmt: skip
    held = PositionSnapshot(BTC, 1, 0.5, 100.0, 101.0, 95.0, None, 0.5, T0)
    items[-1] = items[-1]._replace(prediction={"signal": "neutral"}, positions=(held,))
    assert store.persist_many(items) == 1_200
    assert store.persist_many(items) == 0
    curve = store.equity(RUN)
    assert [row[2] for row in curve] == [10_000.0 + i for i in range(1_200)]
    assert [row[1] for row in curve] == list(range(1, 1_201))
    cycles = store.cycles(RUN, limit=10)
    assert cycles[0].prediction is None and cycles[0].decision is None and cycles[0].timings == {}
    assert (cycles[0].cash, cycles[0].fees, cycles[0].risk_state, cycles[0].errors) == (
        100.0, 3.0, "active", 0)  # fmt: skip
    assert cycles[7].prediction == {"signal": "up"} and cycles[7].action == "none"
    assert store.last_cycles(RUN)[ETH].prediction == {"signal": "neutral"}
    assert [(p.pair, p.quantity) for p in store.positions(RUN)] == [(BTC, 0.5)]


def test_a_span_of_quiet_cycles_is_one_row_read_back_bar_by_bar(
    db: Database, store: WorkflowStore
) -> None:
    """A span (``bars`` quiet cycles of a pair with one account) counts its cycles, numbers them
    (the next row's ``seq`` is ``bars`` further), and reads back as its bars: the equity curve,
    the last bar of the pair (resume point, newest cycle) and ``per_bar``."""
    from morningstar.store.workflow import QuietCycle

    _start(store)
    account = (10_000.0, 10_000.0, 0.0, 0.0, 0.0, 0.0, "active")
    span = QuietCycle(cycle_id(RUN, BTC, T0), RUN, BTC, T0, STRATEGY, *account,
                      prediction={"signal": "neutral"}, bars=5,
                      last_bar_ts=T0 + timedelta(hours=4))  # fmt: skip
    single = QuietCycle(cycle_id(RUN, ETH, T0), RUN, ETH, T0, STRATEGY, *account)
    after = CycleRecord(
        cycle_id(RUN, BTC, T0 + timedelta(hours=5)), RUN, BTC, T0 + timedelta(hours=5), STRATEGY,
        {"signal": "up"}, None, {"final": {"action": "none"}},
        equity=EquitySnapshot(9_000.0, 10_000.0, 0.0, 0.0, 0.0, 0.0, "active"),
    )  # fmt: skip
    assert store.persist_many([span, single, after]) == 7
    assert store.persist_many([span, single, after]) == 0  # idempotent, by the first bar's id
    run = store.get_run(RUN)
    assert run is not None and run.cycles == 7 and run.last_bar_ts == T0 + timedelta(hours=5)
    rows = store.cycles(RUN)
    assert [(c.pair, c.seq, c.bars) for c in rows] == [(BTC, 1, 5), (ETH, 6, 1), (BTC, 7, 1)]
    assert rows[0].last_bar_ts == T0 + timedelta(hours=4) and rows[1].last_bar_ts is None
    assert _count(db, "cycles") == 3
    curve = store.equity(RUN)
    assert [(r[0], r[1]) for r in curve] == [
        *((T0 + timedelta(hours=k), 1) for k in range(5)),
        (T0, 6),
        (T0 + timedelta(hours=5), 7),
    ]
    bars = rows[0].per_bar()
    assert [b.bar_ts for b in bars] == [T0 + timedelta(hours=k) for k in range(5)]
    assert [b.cycle_id for b in bars] == [cycle_id(RUN, BTC, b.bar_ts) for b in bars]
    assert [b.prediction for b in bars] == [None] * 4 + [{"signal": "neutral"}]
    assert rows[0].last() == bars[-1] and rows[1].per_bar() == [rows[1]] == [rows[1].last()]
    # a resume point and the newest cycle of a pair are a span's last bar
    eth = T0 + timedelta(hours=9)
    store.persist_many([replace(after, cycle_id=cycle_id(RUN, ETH, eth), pair=ETH, bar_ts=eth)])
    span2 = span._replace(
        cycle_id=cycle_id(RUN, BTC, T0 + timedelta(hours=6)),
        bar_ts=T0 + timedelta(hours=6),
        last_bar_ts=T0 + timedelta(hours=10),
    )
    store.persist_many([span2])
    assert store.last_state(RUN).last_bar[BTC] == T0 + timedelta(hours=10)
    newest = store.last_cycles(RUN)[BTC]
    assert newest.bar_ts == T0 + timedelta(hours=10) and newest.bars == 1
    assert newest.cycle_id == cycle_id(RUN, BTC, newest.bar_ts)
    assert store.last_account(RUN)["bar_ts"] == T0 + timedelta(hours=10)  # type: ignore[index]
