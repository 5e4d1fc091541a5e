"""Workflow store throughput: quiet backtest cycles persisted per second (SQLite, WAL).

Run:  .venv/bin/python benchmarks/bench_workflow_store.py [--cycles 100000] [--batch 5000]
                                                          [--repeats 5] [--url sqlite:///...]
                                                          [--out results.json]

Per repeat: a fresh SQLite file in a temporary directory (or the ``--url`` database, emptied) is
migrated, a run is started, and ``--cycles`` SYNTHETIC quiet cycles (two pairs, hourly bars, no
orders, no fills: what most backtest bars are) are written with
:meth:`WorkflowStore.persist_many` in batches of ``--batch``, each batch with the resume state
of its last cycle. Each cycle carries what a real quiet cycle carries: a prediction (signal,
confidence, probabilities, volatility), no supervision (the LLM is consulted on entries only),
a ``none`` decision (proposal, final intent, rejections, risk state), one open position, the
equity snapshot and the step timings. The CycleRecords are built before the clock starts; the
time covers the store only. Also timed: :meth:`WorkflowStore.persist` one cycle per transaction
(paper mode's path) on 2,000 cycles. Reported: the median over the repeats.
Target: >= 50,000 quiet cycles/s with persist_many on SQLite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from morningstar.core.cycle import (  # noqa: E402
    CycleRecord,
    EquitySnapshot,
    PositionSnapshot,
    cycle_id,
)
from morningstar.store.db import open_database  # noqa: E402
from morningstar.store.workflow import WorkflowStore  # noqa: E402

RUN = "b" * 32
PAIRS = ("BTC/USDT", "ETH/USDT")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def quiet_cycles(n: int, run_id: str = RUN) -> list[CycleRecord]:
    """``n`` quiet cycles alternating over two pairs, one bar per pair per hour."""
    out = []
    opened = T0
    for i in range(n):
        pair = PAIRS[i % 2]
        ts = T0 + timedelta(hours=i // 2)
        price = 40_000.0 + (i % 97)
        intent = {"pair": pair, "action": "none", "side": 1, "quantity": 0.0, "price": price,
                  "stop_loss": None, "take_profit": None, "reasons": ["hold"]}  # fmt: skip
        position = PositionSnapshot(PAIRS[0], 1, 0.1, 39_900.0, price, 39_000.0, 42_000.0,
                                    0.1 * (price - 39_900.0), opened)  # fmt: skip
        out.append(CycleRecord(
            cycle_id=cycle_id(run_id, pair, ts), run_id=run_id, pair=pair, bar_ts=ts,
            strategy="strategy:ema_cross",
            prediction={"signal": "up", "signal_value": 1, "confidence": 0.52,
                        "probabilities": {"down": 0.2, "neutral": 0.28, "up": 0.52},
                        "volatility": 0.004},
            supervision=None,
            decision={"proposal": intent, "final": intent, "rejections": [],
                      "risk_state": "active"},
            positions=(position,),
            equity=EquitySnapshot(10_000.0, 10_000.0 + i % 50, 12.5, 3.0, 1.5, 0.001, "active"),
            timings={"fetch": 1e-5, "features": 2e-5, "predict": 3e-5, "decide": 1e-5,
                     "execute": 1e-6},
        ))  # fmt: skip
    return out


def _fresh(url: str | None, tmp: Path, k: int) -> tuple[Any, WorkflowStore]:
    db = open_database(url or f"sqlite:///{tmp / f'bench{k}.sqlite'}")
    if url:
        db.downgrade("base")
        db.migrate()
    store = WorkflowStore(db)
    store.start_run(RUN, mode="backtest", strategy="strategy:ema_cross", pairs=list(PAIRS),
                    timeframe="1h")  # fmt: skip
    return db, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--url", default=None, help="a database URL (default: a SQLite file)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    records = quiet_cycles(args.cycles)
    state = {"broker": {"open_orders": [], "cash": 10_000.0}, "ledger": {"positions": {}},
             "risk": {"state": "active", "peak": 10_050.0}}  # fmt: skip
    many: list[float] = []
    single: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            db, store = _fresh(args.url, Path(tmp), 2 * k)
            t = time.perf_counter()
            for start in range(0, len(records), args.batch):
                chunk = records[start : start + args.batch]
                states: list[dict[str, Any] | None] = [None] * len(chunk)
                states[-1] = state
                store.persist_many(chunk, states)
            many.append(len(records) / (time.perf_counter() - t))
            with db.engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM cycles")).scalar_one()
            assert stored == len(records), stored
            db.dispose()

            db, store = _fresh(args.url, Path(tmp), 2 * k + 1)
            t = time.perf_counter()
            for record in records[: args.single]:
                store.persist(record, state=state)
            single.append(args.single / (time.perf_counter() - t))
            db.dispose()
            print(f"repeat {k + 1}: persist_many {many[-1]:,.0f} cycles/s, "
                  f"persist {single[-1]:,.0f} cycles/s", flush=True)  # fmt: skip
    result = {
        "benchmark": "workflow_store",
        "backend": "sqlite" if args.url is None else args.url.split(":", 1)[0],
        "cycles": args.cycles,
        "batch": args.batch,
        "repeats": args.repeats,
        "persist_many_cycles_per_s": round(statistics.median(many)),
        "persist_cycles_per_s": round(statistics.median(single)),
        "target_persist_many_cycles_per_s": 50_000,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
