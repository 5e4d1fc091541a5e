"""The backtest fast path: quiet cycles (a flat pair whose prediction cannot open a trade) skip
building the Prediction and are persisted as lean rows, and change nothing else.

A backtest over two real pairs (risk sizing, brackets, stop adjustments, the default risk
limits) is run twice: as is, and with the fast path switched off (every row of the batch read as
a Prediction and proposed to the rules). The orders, fills, decisions, supervision records and
the per-bar equity curve must be identical; only quiet cycles lose their prediction document and
their step timings — except the newest cycle of each pair, which keeps its prediction.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from morningstar.config import Settings
from morningstar.store import open_database
from morningstar.store.workflow import WorkflowStore
from morningstar.workflow.build import build_backtest
from morningstar.workflow.runner import TradingWorkflow

pytestmark = pytest.mark.shared_data

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


def test_quiet_cycles_change_nothing_but_their_record(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = {pair: _bars(str(shared_data), file, 4_000) for pair, file in FILES.items()}
    fast, rows = _run(tmp_path, "fast", frames)
    monkeypatch.setattr(TradingWorkflow, "_can_open", lambda self, state, row: True)
    slow, ref = _run(tmp_path, "slow", frames)

    assert fast.bars == slow.bars == fast.cycles_persisted == 8_000
    assert fast.orders == slow.orders > 10 and fast.fills == slow.fills
    assert fast.final_equity == slow.final_equity
    for table in ("orders", "fills", "positions"):
        assert [{k: v for k, v in r.items() if k != "updated_at"} for r in rows[table]] == [
            {k: v for k, v in r.items() if k != "updated_at"} for r in ref[table]
        ]
    assert rows["equity"] == ref["equity"] and len(rows["equity"]) == 8_000
    quiet = 0
    for got, want in zip(rows["cycles"], ref["cycles"], strict=True):
        skip = {"persisted_at", "timings", "prediction"}
        assert {k: v for k, v in got.items() if k not in skip} == {
            k: v for k, v in want.items() if k not in skip
        }
        if got["prediction"] is None and want["prediction"] is not None:
            quiet += 1
            assert got["decision"] is None and got["timings"] == "{}"
        else:
            assert got["prediction"] == want["prediction"]
    assert quiet > 4_000  # most bars are quiet
    # the newest cycle of each pair shows the model's latest answer, as without the fast path
    assert rows["last"] == ref["last"] and all(p is not None for p in rows["last"].values())
