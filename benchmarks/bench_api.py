"""REST API latency benchmark: the monitor's routes over loopback, on 100,000 recorded calls.

Run:  .venv/bin/python benchmarks/bench_api.py [--rows 100000] [--requests 2000] [--clients 4]
                                               [--repeats 5] [--out results.json]

1. a fresh SQLite database (temporary directory) is migrated and filled with ``--rows`` SYNTHETIC
   LLM calls (bulk insert, 500 rows per statement): 5 models, 6 callers, 94 % ``ok``, started
   one every ~26 s over 30 days, prompts of 1,500 characters and responses of 300 (what the
   ``truncated`` capture stores for a supervisor prompt);
2. the real app (``create_app``) is served by uvicorn on 127.0.0.1, ephemeral port, in a thread
   (:class:`morningstar.api.BackgroundServer`), with a token (the auth check is measured too);
3. per route: a warm-up of 100 requests, then ``--requests`` requests spread over ``--clients``
   client threads (one keep-alive ``httpx.Client`` each), each request timed on the client
   (``perf_counter``). The load stops by itself; every response must be 200. The client
   threads run in a separate process by default, as real clients would (``--in-process-clients``
   puts them in the server's process, where they compete for its GIL);
4. the whole load is repeated ``--repeats`` times; the reported p50/p95/p99 are the medians over
   the repeats.

Routes: ``/api/status`` (totals over the whole table, cached and refreshed in the background),
``/api/llm/metrics`` (per model and caller over the 10,000 newest calls, cached),
``/api/llm/history`` (default limit 100, without the captured texts, as the dashboard lists
calls), the same with ``text=true`` (the prompts and responses too), filtered by model, by
caller + status, by status alone, and a deep page (offset 5,000).
The SQLite query plan of each history query is printed (index use).
Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from morningstar.api import BackgroundServer, create_app  # noqa: E402
from morningstar.config import Settings  # noqa: E402
from morningstar.llm.monitor import LLMMonitor  # noqa: E402
from morningstar.llm.monitor.recorder import _TABLE  # noqa: E402
from morningstar.llm.monitor.records import RECORD_COLUMNS  # noqa: E402
from morningstar.llm.types import Usage  # noqa: E402
from morningstar.store.db import Database, open_database  # noqa: E402

TOKEN = "bench-token-0123456789"
MODELS = ["gpt-4o-mini", "gpt-4o", "llama3.1:8b", "qwen2.5:14b", "claude-3-5-haiku"]
CALLERS = ["supervisor", "strategist", "strategist.critic", "analyst", "validator", "manual"]
STATUSES = [("ok", 94), ("timeout", 2), ("invalid_output", 2), ("rate_limited", 1),
            ("provider_error", 1)]  # fmt: skip


def fill(db: Database, rows: int, seed: int = 7) -> float:
    """Insert ``rows`` synthetic calls; return the seconds it took."""
    rng = random.Random(seed)
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = 30 * 86_400 / rows
    prompt = ("Assess the proposed BTC/USDT long at 43125.57 given RSI 71.2, ATR 812.4. " * 25)[
        :1_500
    ]
    t = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for i in range(rows):
        started = start + timedelta(seconds=i * step + rng.random())
        latency = rng.lognormvariate(0.0, 0.6)
        status = rng.choice(statuses)
        reported = rng.random() > 0.05
        batch.append(
            {
                "id": f"{i:032x}",
                "session_id": f"session-{i // 5_000}",
                "provider": "openai" if i % 5 < 2 else "ollama",
                "model": MODELS[i % 5] if rng.random() > 0.02 else MODELS[4],
                "caller": rng.choice(CALLERS),
                "operation": "chat",
                "template_id": "supervisor.assess",
                "template_version": 3,
                "status": status,
                "error_type": None if status == "ok" else "LLMTimeoutError",
                "error_message": None if status == "ok" else "timed out after 30 s",
                "started_at": started,
                "finished_at": started + timedelta(seconds=latency),
                "latency_s": latency,
                "ttft_s": None,
                "input_tokens": rng.randint(400, 1_200) if reported else None,
                "output_tokens": rng.randint(50, 300) if reported else None,
                "cached_input_tokens": None,
                "cost_usd": round(rng.random() / 1_000, 8) if i % 5 < 2 else 0.0,
                "price_status": "priced" if i % 5 < 2 else "free",
                "cache_hit": rng.random() < 0.1,
                "retries": 0,
                "streamed": False,
                "cache_key": f"{i:064x}",
                "prompt": prompt,
                "response": '{"verdict": "approve", "coherence": 0.8, "reasons": ["trend"]}' * 5,
            }
        )
        if len(batch) == 500:
            with db.session() as session:
                session.execute(sa.insert(_TABLE), batch)
            batch = []
    if batch:
        with db.session() as session:
            session.execute(sa.insert(_TABLE), batch)
    return time.perf_counter() - t


def query_plans(db: Database, routes: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """SQLite's plan of each history query (shows which index is used)."""
    plans = {}
    for name, params in routes.items():
        if "history" not in name:
            continue
        query = sa.select(*(_TABLE.c[n] for n in RECORD_COLUMNS))
        for key in ("model", "caller", "status"):
            if key in params:
                query = query.where(_TABLE.c[key] == params[key])
        query = query.order_by(_TABLE.c.started_at.desc(), _TABLE.c.id.desc())
        query = query.limit(params.get("limit", 100)).offset(params.get("offset", 0))
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        with db.engine.connect() as conn:
            plans[name] = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    return plans


def load(url: str, path: str, params: dict[str, Any], requests: int, clients: int) -> list[float]:
    """``requests`` GETs over ``clients`` threads; the latency of each, in seconds."""
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    samples: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30.0) as http:
            for _ in range(per_client[k]):
                t = time.perf_counter()
                response = http.get(path, params=params)
                samples[k].append(time.perf_counter() - t)
                if response.status_code != 200:
                    failures.append(f"{path} {params}: HTTP {response.status_code}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, first: {failures[0]}")
    return [s for chunk in samples for s in chunk]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--in-process-clients",
        action="store_true",
        help="run the client threads in the server's process (they then share its GIL)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    routes: dict[str, tuple[str, dict[str, Any]]] = {
        "status": ("/api/status", {}),
        "metrics": ("/api/llm/metrics", {}),
        "history": ("/api/llm/history", {}),
        "history?model": ("/api/llm/history", {"model": "llama3.1:8b"}),
        "history?caller&status": (
            "/api/llm/history",
            {"caller": "strategist.critic", "status": "timeout"},
        ),
        "history?offset=5000": ("/api/llm/history", {"offset": 5_000}),
        "history?status": ("/api/llm/history", {"status": "ok"}),
        "history?text": ("/api/llm/history", {"text": "true"}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        fill_s = fill(db, args.rows)
        print(f"filled {args.rows:,} rows in {fill_s:.1f} s (SYNTHETIC calls)")
        plans = query_plans(db, {k: p for k, (_, p) in routes.items()})
        for name, plan in plans.items():
            print(f"  plan {name}: {' / '.join(plan)}")
        monitor = LLMMonitor(db=db, stall_check_every_s=None)
        for i in range(500):  # some in-memory state for /api/status
            trace = monitor.start(
                provider="openai", model=MODELS[i % 5], caller="bench", prompt="p"
            )
            monitor.finish(
                trace, status="ok", usage=Usage(10, 5), cost_usd=0.0, price_status="free"
            )
        monitor.flush(30.0)
        settings = Settings(api={"host": "127.0.0.1", "port": 8000, "token": TOKEN})
        app = create_app(settings, monitor=monitor, db=db)
        results: dict[str, Any] = {}
        try:
            clients_pool = (
                None
                if args.in_process_clients
                else ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )

            def run_load(path: str, params: dict[str, Any], requests: int) -> list[float]:
                if clients_pool is None:
                    return load(server.url, path, params, requests, args.clients)
                return clients_pool.submit(
                    load, server.url, path, params, requests, args.clients
                ).result()

            with BackgroundServer(app) as server, clients_pool or nullcontext():
                per_route: dict[str, list[dict[str, float]]] = {k: [] for k in routes}
                for path, params in routes.values():
                    run_load(path, params, 100)  # warm-up
                for _ in range(args.repeats):
                    for name, (path, params) in routes.items():
                        t = time.perf_counter()
                        lat = run_load(path, params, args.requests)
                        wall = time.perf_counter() - t
                        per_route[name].append(
                            {
                                "p50_ms": pct(lat, 50) * 1e3,
                                "p95_ms": pct(lat, 95) * 1e3,
                                "p99_ms": pct(lat, 99) * 1e3,
                                "rps": len(lat) / wall,
                            }
                        )
                for name, runs in per_route.items():
                    results[name] = {
                        key: statistics.median(run[key] for run in runs)
                        for key in ("p50_ms", "p95_ms", "p99_ms", "rps")
                    }
        finally:
            monitor.close()
            db.dispose()
    print(
        f"\n{args.requests} requests/route × {args.repeats} repeats, {args.clients} client "
        f"threads ({'in the server process' if args.in_process_clients else 'separate process'}), "
        "median of repeats (target p99 < 50 ms)"
    )
    print(f"{'route':<24}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>9}")
    for name, figures in results.items():
        print(
            f"{name:<24}{figures['p50_ms']:>9.2f}{figures['p95_ms']:>9.2f}"
            f"{figures['p99_ms']:>9.2f}{figures['rps']:>9.0f}"
        )
    report = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "rows": args.rows,
        "requests_per_route": args.requests,
        "clients": args.clients,
        "repeats": args.repeats,
        "clients_in_server_process": args.in_process_clients,
        "fill_seconds": fill_s,
        "query_plans": plans,
        "routes": results,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written {args.out}")


if __name__ == "__main__":
    main()
