"""LLM gateway + tracing overhead per call, against an instant in-process provider.

Run:  .venv/bin/python benchmarks/bench_llm_gateway.py [--calls 5000] [--repeats 7]

The provider answers at once (a fixed reply, priced model ``gpt-4o-mini``), so what is measured
is everything the gateway adds around a call: output-mode choice, cache key, budget check,
concurrency slot, retry wrapper, monitor start/finish (active registry, aggregates, Prometheus,
the record queued for the database), pricing and, for structured requests, JSON-schema
validation. Each call is timed on its own; the overhead is the median (and p99, mean) call time
minus the median time of calling the provider directly, then the median over repeats. The
monitor's writer thread records to the database meanwhile, on the same interpreter (GIL), so
the mean includes the share of its work that lands on the caller. Scenarios:

1. ``text``: a free-text request, replay cache off, monitor recording to a SQLite file;
2. ``structured``: a ``market_assessment`` request answered with valid JSON (schema-validated);
3. ``cache_hit``: the same structured request answered from the replay cache (record mode);
4. ``slow_db``: as ``text`` while another connection holds an exclusive lock on the database
   (the writer thread cannot write): the call time must not change; records beyond the queue
   bound are dropped and counted, never waited for.

Results go to ``benchmarks/results/llm_gateway.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from morningstar.config import LLMBudget
from morningstar.llm.budget import BudgetBook
from morningstar.llm.cache import ReplayCache
from morningstar.llm.gateway import Gateway
from morningstar.llm.monitor import LLMMonitor
from morningstar.llm.pricing import PriceTable
from morningstar.llm.prompts import load_template
from morningstar.llm.types import (
    LLMRequest,
    Message,
    OutputMode,
    ProviderCall,
    ProviderReply,
    Usage,
)
from morningstar.retry import RetryPolicy
from morningstar.store import open_database

ROOT = Path(__file__).resolve().parents[1]

ANSWER = json.dumps(
    {
        "verdict": "approve",
        "confidence": 0.7,
        "coherence": 0.8,
        "risk": "low",
        "size_multiplier": 1.0,
        "stop_multiplier": 1.0,
        "take_profit_multiplier": 1.0,
        "reasons": ["trend and signal agree"],
    }
)
MARKET = {
    "pair": "BTC/USDT", "timeframe": "1h", "as_of": "2024-03-01T12:00:00+00:00",
    "close": 61250.5, "signal": 1, "confidence": 0.7, "trend": 0.012, "volatility": 0.55,
    "regime": "trending", "atr": 640.0, "rsi": 61.0,
}  # fmt: skip


class InstantProvider:
    """Answers at once with a fixed reply (no I/O)."""

    name = "openai"
    local = False

    def __init__(self, text: str) -> None:
        self.reply = ProviderReply(
            text=text, usage=Usage(120, 40), finish_reason="stop", model="gpt-4o-mini"
        )

    def complete(self, call: ProviderCall) -> ProviderReply:
        return self.reply

    def close(self) -> None:
        pass


def gateway(db: Any, provider: InstantProvider, cache_mode: str, queue_size: int) -> Gateway:
    return Gateway(
        provider,
        model="gpt-4o-mini",
        monitor=LLMMonitor(db=db, queue_size=queue_size),
        cache=ReplayCache(db, cache_mode),  # type: ignore[arg-type]
        budgets=BudgetBook(LLMBudget(), {}),
        prices=PriceTable.load(),
        retry=RetryPolicy(max_attempts=4, sleep=lambda _s: None, rng=random.Random(0)),
        max_concurrency=4,
    )


def per_call_us(fn: Any, calls: int) -> tuple[float, float, float]:
    """(median, p99, mean) of ``calls`` timed calls, in µs."""
    times = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    times.sort()
    return (times[len(times) // 2] / 1e3, times[int(len(times) * 0.99)] / 1e3,
            statistics.fmean(times) / 1e3)  # fmt: skip


def direct_us(provider: InstantProvider, request: LLMRequest, calls: int) -> float:
    call = ProviderCall(request, "gpt-4o-mini", OutputMode.TEXT, None, 30.0)
    return per_call_us(lambda: provider.complete(call), calls)[0]


def run(scenario: str, calls: int, folder: Path) -> dict[str, float]:
    db = open_database(f"sqlite:///{folder / (scenario + '.sqlite')}")
    structured = scenario in ("structured", "cache_hit")
    provider = InstantProvider(ANSWER if structured else "hello")
    request = (
        load_template("market_assessment").render(MARKET, caller="supervisor")
        if structured
        else LLMRequest(messages=(Message("user", "Is BTC trending?"),))
    )
    queue_size = 1_000 if scenario == "slow_db" else 100_000
    gw = gateway(db, provider, "record" if scenario == "cache_hit" else "off", queue_size)
    gw.call(request)  # warm-up (and, for cache_hit, the recording)
    lock = None
    if scenario == "slow_db":
        lock = sqlite3.connect(str(folder / "slow_db.sqlite"), timeout=0.1)
        lock.execute("BEGIN EXCLUSIVE")
    median, p99, mean = per_call_us(lambda: gw.call(request), calls)
    base = direct_us(provider, request, calls)
    dropped = gw.monitor.dropped
    if lock is not None:
        lock.rollback()
        lock.close()
    gw.monitor.flush(30.0)
    gw.close()
    db.dispose()
    return {"overhead_us": median - base, "p99_us": p99 - base, "mean_us": mean - base,
            "direct_us": base, "dropped": float(dropped)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    scenarios = ("text", "structured", "cache_hit", "slow_db")
    rounds: dict[str, list[dict[str, float]]] = {s: [] for s in scenarios}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for s in scenarios:
                folder = Path(tmp) / f"r{r}"
                folder.mkdir(exist_ok=True)
                rounds[s].append(run(s, args.calls, folder))
    out: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(),
                           "calls": args.calls, "repeats": args.repeats}  # fmt: skip
    print(f"{'scenario':<12}{'median µs':>11}{'p99 µs':>10}{'mean µs':>10}{'direct µs':>11}"
          f"{'dropped':>9}")  # fmt: skip
    for s in scenarios:
        med = {k: statistics.median(x[k] for x in rounds[s]) for k in rounds[s][0]}
        out[s] = {"median": med, "rounds": rounds[s]}
        print(f"{s:<12}{med['overhead_us']:>11.1f}{med['p99_us']:>10.1f}{med['mean_us']:>10.1f}"
              f"{med['direct_us']:>11.2f}{med['dropped']:>9.0f}")  # fmt: skip
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "llm_gateway.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
