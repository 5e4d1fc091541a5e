"""The trading workflow in backtest mode, end to end on real bars.

* Parity: with a strategy predictor and the supervisor off, the workflow's fills and its
  persisted equity curve equal the backtest engine's trades and equity (fees, prices, P&L) to
  1e-9, on the first 20,000 5-minute bars of BTC/USDT.
* The LLM can only reduce risk, end to end: a supervisor that vetoes everything leaves no trade;
  one that halves every size halves the entries and never adds one; a failing one takes the
  abstain path (``keep`` or ``skip``), recorded with its reason.
* Replay: two backtests with the same settings write the same rows (run ids, cycles, orders,
  fills, equity); persisting the same run again writes nothing new.
* Fault policies: a predictor that fails on some bars skips those cycles (recorded); a broker
  that fails transiently is retried with the same client order id (no duplicate order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from morningstar.config import Settings
from morningstar.core.engine import Costs, ExitReason, FractionSizing
from morningstar.errors import LLMTimeoutError, StorageError
from morningstar.llm.budget import BudgetBook
from morningstar.llm.cache import ReplayCache
from morningstar.llm.gateway import Gateway
from morningstar.llm.monitor import LLMMonitor
from morningstar.llm.pricing import PriceTable
from morningstar.research import backtest
from morningstar.store import open_database
from morningstar.store.db import Database
from morningstar.store.workflow import WorkflowStore
from morningstar.workflow.build import build_backtest
from tests.fakes.fake_broker import FakeBroker
from tests.fakes.scripted_llm import ScriptedLLM, reply

pytestmark = pytest.mark.shared_data

FILE = "genetrader/BINANCE_BTC_USDT-5m.csv"
PAIR = "BTC/USDT"
TOL = 1e-9
#: Bars before the replayed range: the supervisor's market snapshot needs 100 of them.
WARM = 300
PERMISSIVE_RISK = {"max_position_pct": 100, "per_asset_cap_pct": 100,
                   "max_gross_exposure_pct": 100, "daily_loss_limit_pct": 100,
                   "max_drawdown_pct": 100}  # fmt: skip


@cache
def _bars(root: str, n: int) -> pd.DataFrame:
    df = pd.read_csv(Path(root) / FILE, index_col="timestamp", nrows=n)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
    return df.astype("float64")


def settings(**workflow: Any) -> Settings:
    wf: dict[str, Any] = {
        "timeframe": "5m", "predictor": "strategy:ema_cross", "fee_bps": 10, "slippage_bps": 5,
        "sizing": {"mode": "fraction", "fraction": 1.0}, "supervisor": {"enabled": False},
        "bracket_orders": False, "decision": {"min_confidence": 0.5, "adjust_stops": False},
    }  # fmt: skip
    wf.update(workflow)
    return Settings(workflow=wf, risk=PERMISSIVE_RISK, llm={"cache_mode": "off"})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'wf.sqlite'}")
    yield database
    database.dispose()


def gateway(provider: ScriptedLLM, db: Database | None = None, mode: str = "off") -> Gateway:
    from morningstar.config import LLMBudget
    from morningstar.retry import RetryPolicy

    return Gateway(
        provider, model="scripted-model", monitor=LLMMonitor(db=db, stall_check_every_s=None),
        cache=ReplayCache(db, mode), budgets=BudgetBook(LLMBudget(), {}),  # type: ignore[arg-type]
        prices=PriceTable.load(), retry=RetryPolicy(max_attempts=2, sleep=lambda _s: None),
    )  # fmt: skip


def verdict(kind: str, size: float) -> str:
    return json.dumps({"verdict": kind, "confidence": 0.8, "coherence": 0.5, "risk": "medium",
                       "size_multiplier": size, "stop_multiplier": 1.0,
                       "take_profit_multiplier": 1.0, "reasons": ["scripted"]})  # fmt: skip


def test_workflow_reproduces_the_engine(shared_data: Path, db: Database) -> None:
    df = _bars(str(shared_data), 20_000)
    run = build_backtest(settings(), {PAIR: df}, db=db)
    summary = run.workflow.run()
    run.close()
    res = backtest(df, "ema_cross", costs=Costs(fee_bps=10, slippage_bps=5),
                   sizing=FractionSizing(1.0))  # fmt: skip
    engine = res.engine
    store = WorkflowStore(db)
    fills = store.fills(run.run_id, limit=100_000)
    fills = sorted(fills, key=lambda f: (f.ts, f.position, f.fill_id))
    assert summary.bars == 20_000 and summary.cycles_persisted == 20_000
    assert len(fills) == summary.fills > 200
    assert abs(summary.final_equity - engine.final_equity) <= TOL
    trades = engine.trades
    entries, exits = fills[0::2], fills[1::2]
    assert len(entries) == engine.n_trades
    worst = 0.0
    for k, row in enumerate(trades):
        entry = entries[k]
        assert pd.Timestamp(entry.ts).value == row["entry_time"]
        for got, want in ((entry.quantity, row["size"]), (entry.price, row["entry_price"]),
                          (entry.fee, row["entry_fee"])):  # fmt: skip
            worst = max(worst, abs(got - want))
        if row["exit_reason"] == ExitReason.OPEN:
            assert k == len(exits)
            continue
        exit_ = exits[k]
        assert pd.Timestamp(exit_.ts).value == row["exit_time"]
        worst = max(worst, abs(exit_.price - row["exit_price"]), abs(exit_.fee - row["exit_fee"]))
    assert worst <= TOL
    curve = store.equity(run.run_id)
    equity = np.array([row[2] for row in curve])
    assert len(equity) == len(engine.equity)
    assert float(np.max(np.abs(equity - engine.equity))) <= TOL


def _entries(db: Database, run_id: str) -> list[Any]:
    return [f for f in WorkflowStore(db).fills(run_id, limit=100_000) if f.reason == "signal"]


def test_the_supervisor_can_only_reduce_risk(shared_data: Path, tmp_path: Path) -> None:
    df = _bars(str(shared_data), 6_000)
    on = settings(supervisor={"enabled": True, "abstain": "keep"})
    results = {}
    for name, text in (("veto", verdict("veto", 0.0)), ("reduce", verdict("reduce", 0.5)),
                       ("approve", verdict("approve", 1.0))):  # fmt: skip
        database = open_database(f"sqlite:///{tmp_path / (name + '.sqlite')}")
        provider = ScriptedLLM(default=reply(text))
        run = build_backtest(on, {PAIR: df}, db=database, gateway=gateway(provider),
                             run_id=name.ljust(32, "0"), start=df.index[WARM])  # fmt: skip
        summary = run.workflow.run()
        run.close()
        decided = [c.decision for c in WorkflowStore(database).cycles(run.run_id)
                   if c.llm_verdict is not None]  # fmt: skip
        results[name] = (summary, _entries(database, run.run_id), len(provider.calls), decided)
        database.dispose()
    off_db = open_database(f"sqlite:///{tmp_path / 'off.sqlite'}")
    off_run = build_backtest(settings(), {PAIR: df}, db=off_db, run_id="off".ljust(32, "0"),
                             start=df.index[WARM])  # fmt: skip
    off = off_run.workflow.run()
    off_entries = _entries(off_db, off_run.run_id)
    off_db.dispose()
    veto, reduce_, approve = results["veto"], results["reduce"], results["approve"]
    # asked once per proposed entry, never about exits
    assert veto[2] == veto[0].supervised == veto[0].vetoed > 10
    assert veto[1] == [] and veto[0].orders == 0  # every entry vetoed: no trade at all
    assert approve[0].supervised == off.fills // 2 + off.fills % 2  # one question per entry
    assert [f.ts for f in approve[1]] == [f.ts for f in off_entries]
    assert approve[0].final_equity == pytest.approx(off.final_equity, abs=TOL)
    # halved sizes: the same entries, each half the size the rules proposed, same side
    assert [f.ts for f in reduce_[1]] == [f.ts for f in off_entries]
    assert reduce_[0].reduced == reduce_[0].supervised == len(reduce_[3])
    for decision in reduce_[3]:
        proposal, final = decision["proposal"], decision["final"]
        assert final["quantity"] == pytest.approx(0.5 * proposal["quantity"], rel=1e-12)
        assert final["side"] == proposal["side"] and final["action"] == "open"
    for cut, full in zip(reduce_[1], off_entries, strict=True):
        assert cut.quantity < full.quantity and cut.side == full.side
    assert all(d["final"]["action"] == "none" for d in veto[3])


def test_a_failing_supervisor_takes_the_abstain_path(shared_data: Path, tmp_path: Path) -> None:
    df = _bars(str(shared_data), 4_000)
    outcomes = {}
    for abstain in ("keep", "skip"):
        database = open_database(f"sqlite:///{tmp_path / (abstain + '.sqlite')}")
        failing = ScriptedLLM(default=LLMTimeoutError("slow", where="scripted"))
        cfg = settings(supervisor={"enabled": True, "abstain": abstain})
        run = build_backtest(cfg, {PAIR: df}, db=database, gateway=gateway(failing),
                             run_id=abstain.ljust(32, "0"), start=df.index[WARM])  # fmt: skip
        summary = run.workflow.run()
        run.close()
        errors = WorkflowStore(database).errors(run.run_id)
        outcomes[abstain] = (summary, errors, _entries(database, run.run_id))
        database.dispose()
    keep, skip = outcomes["keep"], outcomes["skip"]
    assert keep[0].abstained == keep[0].supervised > 0 and keep[2]  # the rules' trades kept
    assert skip[0].abstained == skip[0].supervised > 0 and skip[2] == []  # no new entry
    for summary, errors, _ in (keep, skip):
        assert len(errors) == summary.abstained
        assert {e.outcome for e in errors} == {"abstained"}
        assert all("LLMTimeoutError" in e.message or e.error_type == "LLMTimeoutError"
                   for e in errors)  # fmt: skip


def _rows(db: Database, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with db.engine.connect() as conn:
        for table, order in (("cycles", "bar_ts"), ("orders", "client_order_id"),
                             ("fills", "fill_id")):  # fmt: skip
            rows = conn.execute(sa.text(f"SELECT * FROM {table} WHERE run_id = :r ORDER BY {order}"),
                                {"r": run_id}).all()  # fmt: skip
            # measurements, not results: when a row was written, how long each step took
            out[table] = [tuple(v for k, v in r._mapping.items()
                                if k not in ("persisted_at", "updated_at", "timings"))
                          for r in rows]  # fmt: skip
    return out


def test_two_backtests_write_the_same_rows_and_a_rerun_writes_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    df = _bars(str(shared_data), 5_000)
    tables = []
    for k in range(2):
        database = open_database(f"sqlite:///{tmp_path / f'r{k}.sqlite'}")
        run = build_backtest(settings(), {PAIR: df}, db=database)
        summary = run.workflow.run()
        run.close()
        assert summary.cycles_persisted == 5_000
        tables.append((run.run_id, _rows(database, run.run_id)))
        if k == 1:  # the same backtest again on the same database: nothing new
            again = build_backtest(settings(), {PAIR: df}, db=database)
            assert again.run_id == run.run_id
            assert again.workflow.run().cycles_persisted == 0
            assert _rows(database, run.run_id) == tables[1][1]
        database.dispose()
    (id0, rows0), (id1, rows1) = tables
    assert id0 == id1
    assert rows0 == rows1 and rows0["fills"]
    assert 0 < len(rows0["cycles"]) < 5_000  # quiet stretches are spans


def test_fault_policies(shared_data: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _bars(str(shared_data), 3_000)
    cfg = settings(errors={"predict": "skip", "execute": "retry", "retries": 3, "backoff_s": 0})
    run = build_backtest(cfg, {PAIR: df}, db=db, run_id="f".ljust(32, "0"))
    wf = run.workflow
    broker = FakeBroker(Costs(fee_bps=10, slippage_bps=5))
    wf.p.broker = broker
    broken_rows = set(range(1_000, 1_010))
    original = wf._predict

    def flaky(pair: str, bar: Any, state: Any) -> Any:
        if wf._row(pair) in broken_rows:
            raise ValueError("NaN features")
        return original(pair, bar, state)

    monkeypatch.setattr(wf, "_predict", flaky)
    broker.fail_submits(2)  # the first order's submit fails twice with a temporary error
    summary = wf.run()
    run.close()
    errors = WorkflowStore(db).errors(run.run_id)
    predict_errors = [e for e in errors if e.step == "predict"]
    assert len(predict_errors) == 10 and {e.outcome for e in predict_errors} == {"skipped"}
    assert summary.errors == 10  # the retried submits succeeded: not errors of the run
    orders = WorkflowStore(db).orders(run.run_id, limit=100_000)
    ids = [o.client_order_id for o in orders]
    assert len(ids) == len(set(ids)) == summary.orders  # retried with the same id, once


class _FlakyStore:
    """A WorkflowStore whose first ``failures`` persist calls raise StorageError."""

    def __init__(self, store: WorkflowStore, failures: int) -> None:
        self.store, self.failures, self.calls = store, failures, 0

    def persist_many(self, records: Any, states: Any = None) -> int:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise StorageError("database is locked", where="sqlite")
        return self.store.persist_many(records, states)


def test_a_failing_store_is_retried_then_halts_without_losing_a_cycle(
    shared_data: Path, db: Database
) -> None:
    df = _bars(str(shared_data), 3_000)
    cfg = settings(errors={"persist": "retry", "retries": 3, "backoff_s": 0})
    run = build_backtest(cfg, {PAIR: df}, db=db, run_id="p".ljust(32, "0"), persist_every=1_000)
    wf = run.workflow
    flaky = _FlakyStore(WorkflowStore(db), failures=2)  # twice locked, then fine
    wf.p.store = flaky  # type: ignore[assignment]
    wf.p.steps.retry = replace(wf.p.steps.retry, sleep=lambda _s: None)
    summary = wf.run()
    assert summary.halted is None and summary.cycles_persisted == 3_000
    assert sum(c.bars for c in WorkflowStore(db).cycles(run.run_id)) == 3_000
    assert flaky.calls == 4  # two failures, then two batches (1,000 rows, the rest)

    run2 = build_backtest(cfg, {PAIR: df}, db=db, run_id="q".ljust(32, "0"), persist_every=1_000)
    wf2 = run2.workflow
    wf2.p.store = _FlakyStore(WorkflowStore(db), failures=10**6)  # type: ignore[assignment]
    wf2.p.steps.retry = replace(wf2.p.steps.retry, sleep=lambda _s: None)
    summary2 = wf2.run()  # halts on the first batch, does not raise
    assert summary2.halted is not None and "database is locked" in summary2.halted
    assert summary2.cycles_persisted == 0 and 1_000 < summary2.bars < 3_000  # 1,000 rows
    assert WorkflowStore(db).cycles(run2.run_id) == []


def _open_counts(fills: list[Any]) -> int:
    """The most positions open at once, rebuilt from the fills (netting per pair)."""
    held: dict[str, float] = {}
    most = 0
    for f in sorted(fills, key=lambda f: (f.ts, f.position, f.fill_id)):
        q = held.get(f.pair, 0.0) + (f.quantity if f.side == "buy" else -f.quantity)
        held[f.pair] = 0.0 if abs(q) < 1e-12 else q
        most = max(most, sum(1 for v in held.values() if v != 0.0))
    return most


def test_entries_decided_on_one_bar_count_against_the_limits_and_the_cash(
    shared_data: Path, db: Database
) -> None:
    """Two pairs decide on the same bar: the second sees the first's unfilled entry."""
    btc = _bars(str(shared_data), 3_000)
    eth = pd.read_csv(shared_data / "genetrader/BINANCE_ETH_USDT-5m.csv", index_col="timestamp",
                      nrows=3_000)  # fmt: skip
    eth.index = pd.DatetimeIndex(pd.to_datetime(eth.index, utc=True), name="timestamp")
    frames = {PAIR: btc, "ETH/USDT": eth.astype("float64")}
    risk = {**PERMISSIVE_RISK, "max_open_positions": 1}
    cfg = Settings(workflow=settings().workflow.model_dump(), risk=risk,
                   llm={"cache_mode": "off"})  # fmt: skip
    run = build_backtest(cfg, frames, db=db, run_id="m".ljust(32, "0"))
    summary = run.workflow.run()
    fills = WorkflowStore(db).fills(run.run_id, limit=100_000)
    assert summary.fills > 50 and summary.risk_rejections > 0
    assert _open_counts(fills) == 1
    cash = [row[3] for row in WorkflowStore(db).equity(run.run_id)]
    assert min(cash) >= -1e-6  # fraction sizing never spends cash committed to another entry


def test_order_statuses_follow_the_broker(shared_data: Path, db: Database) -> None:
    df = _bars(str(shared_data), 3_000)
    cfg = settings(bracket_orders=True, decision={"min_confidence": 0.5, "adjust_stops": True,
                                                  "sl_sigma_mult": 3, "tp_sigma_mult": 4})  # fmt: skip
    run = build_backtest(cfg, {PAIR: df}, db=db, run_id="o".ljust(32, "0"))
    wf = run.workflow
    wf.run()
    store = WorkflowStore(db)
    orders = store.orders(run.run_id, limit=100_000)
    by_role: dict[str, dict[str, int]] = {}
    for o in orders:
        by_role.setdefault(o.role, {}).setdefault(o.status, 0)
        by_role[o.role][o.status] += 1
    fills = {f.client_order_id for f in store.fills(run.run_id, limit=100_000)}
    assert all(o.status == "filled" for o in orders if o.client_order_id in fills)
    still_open = {o.client_order_id for o in orders if o.status == "open"}
    assert still_open == {o.client_order_id for o in wf.p.broker.open_orders()}
    assert by_role.get("stop_loss", {}).get("filled", 0) > 0


def test_a_run_that_dies_is_stored_as_failed_and_decide_errors_follow_their_policy(
    shared_data: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from morningstar.services import workflow as service

    df = _bars(str(shared_data), 2_000)
    calls: dict[str, Any] = {"n": 0}

    def interrupt_after_500(built: Any) -> None:
        feed = calls["feed"] = built.workflow.p.feed
        original = feed.next_bars

        def next_bars() -> Any:
            calls["n"] += 1
            if calls["n"] > 500:
                raise KeyboardInterrupt
            return original()

        monkeypatch.setattr(feed, "next_bars", next_bars)

    with pytest.raises(KeyboardInterrupt):
        service.run_backtest(settings(), db, {PAIR: df}, on_built=interrupt_after_500)
    stored = WorkflowStore(db).latest_run()
    assert stored is not None and stored.status == "failed"
    assert stored.error is not None and "KeyboardInterrupt" in stored.error
    # what ran is persisted: every cycle up to the last bar delivered (quiet stretches are
    # delivered in bulk, so more bars than the 500 time steps fetched one by one)
    cycles = WorkflowStore(db).cycles(stored.run_id)
    assert sum(c.bars for c in cycles) == stored.cycles > 500
    assert stored.last_bar_ts == calls["feed"].last_bar(PAIR).ts

    from morningstar.workflow import runner

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("rules exploded")

    monkeypatch.setattr(runner, "propose", broken)
    halted = service.run_backtest(settings(errors={"decide": "halt"}), db, {PAIR: df},
                                  start=str(df.index[100]))  # fmt: skip
    assert halted.summary.halted == "RuntimeError: rules exploded"
    run = WorkflowStore(db).get_run(halted.run_id)
    assert run is not None and run.status == "failed"
    errors = WorkflowStore(db).errors(halted.run_id)
    assert [(e.step, e.outcome) for e in errors] == [("decide", "halted")]
    skipped = service.run_backtest(settings(errors={"decide": "skip"}), db, {PAIR: df},
                                   start=str(df.index[200]))  # fmt: skip
    assert skipped.summary.halted is None and skipped.summary.errors > 10
    assert {e.outcome for e in WorkflowStore(db).errors(skipped.run_id)} == {"skipped"}
