"""The backtest fast path: quiet cycles (a flat pair whose prediction cannot open a trade) skip
building the Prediction and are persisted as lean rows, and change nothing else.

A backtest over two real pairs (risk sizing, brackets, stop adjustments, the default risk
limits) is run twice: as is, and with the fast path switched off (every row of the batch read as
a Prediction and proposed to the rules). The orders, fills, decisions, supervision records and
the per-bar equity curve must be identical; only quiet cycles lose their prediction document and
their step timings — except the newest cycle of each pair, which keeps its prediction — and
consecutive quiet cycles of a pair with the same account share one row (a span). Quiet
stretches delivered in bulk must write exactly the rows of the cycles run one by one.
"""

from __future__ import annotations

from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from morningstar.config import Settings
from morningstar.core.cycle import cycle_id
from morningstar.monitoring.performance import bar_equity
from morningstar.store import open_database
from morningstar.store.workflow import WorkflowStore
from morningstar.workflow.build import build_backtest
from morningstar.workflow.runner import TradingWorkflow

pytestmark = pytest.mark.shared_data

_CLOCKS = ("updated_at", "persisted_at", "timings")  # wall-clock values
FILES = {"BTC/USDT": "genetrader/BINANCE_BTC_USDT-5m.csv",
         "ETH/USDT": "genetrader/BINANCE_ETH_USDT-5m.csv"}  # fmt: skip


@cache
def _bars(root: str, file: str, n: int) -> pd.DataFrame:
    df = pd.read_csv(Path(root) / file, index_col="timestamp", nrows=n)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
    return df.astype("float64")


def _settings() -> Settings:
    return Settings(
        workflow={"timeframe": "5m", "predictor": "strategy:ema_cross", "fee_bps": 10,
                  "slippage_bps": 5, "supervisor": {"enabled": False}},
        llm={"cache_mode": "off"},
    )  # fmt: skip


def _run(tmp: Path, name: str, frames: dict[str, pd.DataFrame]) -> tuple[Any, dict[str, Any]]:
    db = open_database(f"sqlite:///{tmp / f'{name}.sqlite'}")
    run = build_backtest(_settings(), frames, db=db, persist_every=700)
    summary = run.workflow.run()
    run.close()
    with db.engine.connect() as conn:
        out = {
            table: [dict(r._mapping) for r in conn.execute(sa.text(
                f"SELECT * FROM {table} WHERE run_id = :r ORDER BY {order}"), {"r": run.run_id})]
            for table, order in (("cycles", "seq"), ("orders", "client_order_id"),
                                 ("fills", "fill_id"), ("positions", "pair"))
        }  # fmt: skip
    store = WorkflowStore(db)
    out["equity"] = store.equity(run.run_id)
    out["last"] = {pair: c.prediction for pair, c in store.last_cycles(run.run_id).items()}
    db.dispose()
    return summary, out


def _per_bar(cycles: list[dict[str, Any]]) -> dict[tuple[str, Any], dict[str, Any]]:
    """The stored cycles one per (pair, bar): a span of quiet cycles expanded into its bars (the
    first keeps the row's id, the last its prediction)."""
    out = {}
    for row in cycles:
        bars, last = row["bars"], row["last_bar_ts"]
        base = {k: v for k, v in row.items() if k not in ("seq", "bars", "last_bar_ts")}
        if bars == 1:
            out[(row["pair"], row["bar_ts"])] = base
            continue
        first = pd.Timestamp(row["bar_ts"])
        step = (pd.Timestamp(last) - first) / (bars - 1)
        for k in range(bars):
            at = (first + k * step).to_pydatetime()  # naive UTC, as SQLite stores it
            ts = at.isoformat(" ", "microseconds")
            item = dict(base, bar_ts=ts, prediction=row["prediction"] if k == bars - 1 else None)
            if k:
                item["cycle_id"] = cycle_id(row["run_id"], row["pair"], at.replace(tzinfo=UTC))
            out[(row["pair"], ts)] = item
    return out


def test_quiet_cycles_change_nothing_but_their_record(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = {pair: _bars(str(shared_data), file, 4_000) for pair, file in FILES.items()}
    fast, rows = _run(tmp_path, "fast", frames)
    monkeypatch.setattr(TradingWorkflow, "_openable",
                        lambda self, batch: np.ones(len(batch.valid), dtype=bool))  # fmt: skip
    slow, ref = _run(tmp_path, "slow", frames)

    assert fast.bars == slow.bars == fast.cycles_persisted == slow.cycles_persisted == 8_000
    assert fast.orders == slow.orders > 10 and fast.fills == slow.fills
    assert fast.final_equity == slow.final_equity
    for table in ("orders", "fills", "positions"):
        assert [{k: v for k, v in r.items() if k != "updated_at"} for r in rows[table]] == [
            {k: v for k, v in r.items() if k != "updated_at"} for r in ref[table]
        ]
    # the same account after every cycle (a span gives one point per bar)
    assert len(rows["equity"]) == len(ref["equity"]) == 8_000
    assert sorted(r[:1] + r[2:] for r in rows["equity"]) == sorted(
        r[:1] + r[2:] for r in ref["equity"]
    )
    assert bar_equity(rows["equity"]) == bar_equity(ref["equity"])
    # quiet cycles of a pair with the same account are one row: far fewer rows
    spans = [r for r in rows["cycles"] if r["bars"] > 1]
    assert len(rows["cycles"]) < 4_000 < len(ref["cycles"]) and spans
    assert sum(r["bars"] for r in rows["cycles"]) == 8_000
    got, want = _per_bar(rows["cycles"]), _per_bar(ref["cycles"])
    assert got.keys() == want.keys()
    quiet = 0
    for key, row in got.items():
        skip = {"persisted_at", "timings", "prediction"}
        assert {k: v for k, v in row.items() if k not in skip} == {
            k: v for k, v in want[key].items() if k not in skip
        }, key
        if row["prediction"] is None and want[key]["prediction"] is not None:
            quiet += 1
            assert row["decision"] is None and row["timings"] == "{}"
        else:
            assert row["prediction"] == want[key]["prediction"]
    assert quiet > 4_000  # most bars are quiet
    # the newest cycle of each pair shows the model's latest answer, as without the fast path
    assert rows["last"] == ref["last"] and all(p is not None for p in rows["last"].values())


def test_skipping_quiet_stretches_writes_the_same_rows(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quiet stretches delivered in bulk (every pair flat, nothing may open until the next
    break) give the very rows the cycles one by one give (ids, seq, spans, account)."""
    frames = {pair: _bars(str(shared_data), file, 4_000) for pair, file in FILES.items()}
    # one pair starts later and has a gap: its first bar and the gap break the stretches
    frames["ETH/USDT"] = frames["ETH/USDT"].iloc[300:].drop(frames["ETH/USDT"].index[1_000:1_010])
    skipped, rows = _run(tmp_path, "skip", frames)
    monkeypatch.setattr(TradingWorkflow, "_quiet_breaks", lambda self: None)
    one_by_one, ref = _run(tmp_path, "one", frames)

    assert skipped.step_seconds.get("quiet", 0.0) > 0.0 and "quiet" not in one_by_one.step_seconds
    assert skipped.bars == one_by_one.bars == skipped.cycles_persisted == 4_000 + 3_690
    for table in ("cycles", "orders", "fills", "positions"):
        assert [{k: v for k, v in r.items() if k not in _CLOCKS}
                for r in rows[table]] == [
            {k: v for k, v in r.items() if k not in _CLOCKS}
            for r in ref[table]
        ]  # fmt: skip
    assert rows["equity"] == ref["equity"] and rows["last"] == ref["last"]


def test_every_pair_of_a_time_step_decides_on_the_same_account(
    shared_data: Path, tmp_path: Path
) -> None:
    """Two-phase time steps: every pair's bar is settled (fills, marks) before any pair decides,
    so the cycles of one time step record one account — orders placed by a decision fill on a
    later bar — while positions are open on both pairs."""
    frames = {pair: _bars(str(shared_data), file, 4_000) for pair, file in FILES.items()}
    _summary, rows = _run(tmp_path, "two-phase", frames)
    by_ts: dict[Any, set[tuple[float, float, float]]] = {}
    for ts, _seq, equity, cash, _realized, unrealized, _dd, _risk in rows["equity"]:
        by_ts.setdefault(ts, set()).add((equity, cash, unrealized))
    assert len(by_ts) == 4_000  # every time step, both pairs
    assert all(len(accounts) == 1 for accounts in by_ts.values())
    # both pairs traded (with one-phase steps the first pair's cycle saw the second at the
    # previous close: this fails)
    assert {r["pair"] for r in rows["fills"]} == set(FILES)
