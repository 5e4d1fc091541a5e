"""A paper run against the local Binance stand-in, in this process or in a child process.

The paper run is :func:`morningstar.workflow.build.build_paper` as the command line builds it: a
ccxt exchange pointed at a :class:`~tests.fakes.exchange_server.FakeBinance` URL, a SQLite file,
a run id. Time is the stand-in's: :class:`ExchangeClock` reads it once, and the workflow's
``sleep`` moves it forward (``GET /_fake/clock?set=<ms>``, or directly on an in-process server)
instead of waiting, so bars close as fast as the run can take them. Once the clock has reached
``end_ms`` (every bar served has closed) the next sleep asks the workflow to stop; a bound on the
number of sleeps stops a run that would not end.

Crash and signal tests need the run in a process of its own that can be killed; importing the
project takes seconds on a loaded machine, so :func:`main` is a *zygote*: it imports everything
once, then for each ``run`` command read from stdin forks a fresh child that builds and runs the
paper run (nothing of a run lives in the zygote: no database, no exchange, no thread), and
reports on stdout, one line each (``<pid> <event> <json>``):

* ``<zygote pid> spawned {"pid": p}`` — a child was forked;
* ``<p> ready {...}`` — the run is built (resumed or new), about to run;
* ``<p> cycle {"pair": ..., "bar": ..., "written": ...}`` — a cycle was persisted;
* ``<p> done {...}`` — the run returned (its summary, and whether the clock reached the end);
* ``<zygote pid> exited {"pid": p, "signal": s, "code": c}`` — the child is gone (``signal`` is
  9 after a ``kill -9``).

A child with ``"signals": true`` turns SIGTERM and SIGINT into ``workflow.request_stop()`` (the
current cycle finishes and is persisted, then the run returns and the child exits 0).

Run it as ``python -m tests.fakes.paper_driver`` from the repository root.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morningstar.config import Settings
from morningstar.core.cycle import CycleRecord
from morningstar.exchange import make_exchange
from morningstar.store import open_database
from morningstar.workflow.build import BuiltRun, build_paper
from tests.fakes.exchange_server import CLOCK

__all__ = [
    "BRACKETS",
    "ExchangeClock",
    "PaperRun",
    "differences",
    "main",
    "paper_settings",
    "read_run",
    "run_paper",
]

PERMISSIVE_RISK = {"max_position_pct": 100, "per_asset_cap_pct": 100,
                   "max_gross_exposure_pct": 100, "daily_loss_limit_pct": 100,
                   "max_drawdown_pct": 100}  # fmt: skip


#: Workflow settings that trade more and keep more state across restarts: faster EMAs, risk
#: sizing, a protective stop and target with each entry (OCO), stops tightened as they move.
BRACKETS: dict[str, Any] = {
    "predictor_params": {"fast": 5, "slow": 20}, "sizing": {"mode": "risk"},
    "bracket_orders": True, "decision": {"min_confidence": 0.5, "adjust_stops": True},
}  # fmt: skip


def paper_settings(pairs: Sequence[str], *, supervisor: bool = False, **workflow: Any) -> Settings:
    """The settings of the paper tests (those of the backtest tests, with ``pairs``):
    ``ema_cross`` on 5-minute bars, all-in fraction sizing, fees and slippage, no brackets;
    ``supervisor=True`` turns on the offline rule-based supervisor (``llm.provider offline``)."""
    wf: dict[str, Any] = {
        "timeframe": "5m", "predictor": "strategy:ema_cross", "fee_bps": 10, "slippage_bps": 5,
        "sizing": {"mode": "fraction", "fraction": 1.0},
        "supervisor": {"enabled": supervisor, "abstain": "keep"}, "bracket_orders": False,
        "decision": {"min_confidence": 0.5, "adjust_stops": False}, "pairs": list(pairs),
    }  # fmt: skip
    wf.update(workflow)
    return Settings(workflow=wf, risk=PERMISSIVE_RISK,
                    llm={"provider": "offline", "cache_mode": "off"})  # fmt: skip


@dataclass
class ExchangeClock:
    """The exchange's clock as the paper run sees it, moved forward by the run's sleeps.

    Args:
        read: the stand-in's clock now (epoch ms), read once.
        advance: moves the stand-in's clock to an instant (epoch ms).
        end_ms: once the clock is here, a sleep asks the run to stop (``on_end``).
        max_sleeps: a sleep past this many stops the run too (``runaway`` is set).
        sync_ms: the stand-in's clock is moved only when a sleep crosses a multiple of this
            (a bar's close: the feed polls only then, so the stand-in is on time for every
            poll) or reaches ``end_ms``; 1 moves it on every sleep.
    """

    read: Callable[[], int]
    advance: Callable[[int], object]
    end_ms: int
    max_sleeps: int = 100_000
    sync_ms: int = 1
    on_end: Callable[[], None] | None = None
    sleeps: int = 0
    ended: bool = False
    runaway: bool = False
    _ms: int | None = field(default=None, repr=False)

    @classmethod
    def over_http(cls, base_url: str, end_ms: int, **kw: Any) -> ExchangeClock:
        """The clock of a stand-in in another process, through ``/_fake/clock``."""

        def call(query: str = "") -> int:
            with urllib.request.urlopen(f"{base_url}{CLOCK}{query}", timeout=5) as resp:
                return int(json.loads(resp.read())["serverTime"])

        def advance(ms: int) -> None:
            call(f"?set={ms}")

        return cls(call, advance, end_ms, **kw)

    @property
    def ms(self) -> int:
        """The clock, epoch ms."""
        if self._ms is None:
            self._ms = self.read()
        return self._ms

    def now(self) -> datetime:
        """The clock (the workflow's and the feed's ``clock``)."""
        return datetime.fromtimestamp(self.ms / 1000, tz=UTC)

    def sleep(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (at most to ``end_ms``) instead of waiting; at the
        end (or past ``max_sleeps``) ask the run to stop."""
        self.sleeps += 1
        if self.ms >= self.end_ms or self.sleeps > self.max_sleeps:
            self.ended = self.ms >= self.end_ms
            self.runaway = not self.ended
            if self.on_end is not None:
                self.on_end()
            return
        target = min(self.ms + max(1, math.ceil(seconds * 1000)), self.end_ms)
        if target // self.sync_ms != self.ms // self.sync_ms or target == self.end_ms:
            self.advance(target)
        self._ms = target


@dataclass
class PaperRun:
    """A built paper run and what it needs closing."""

    built: BuiltRun
    clock: ExchangeClock
    closers: list[Callable[[], None]]

    def close(self) -> None:
        """Close the run, the exchange and the database (idempotent)."""
        self.built.close()
        while self.closers:
            self.closers.pop()()


def run_paper(
    settings: Settings,
    *,
    base_url: str,
    db_path: Path | str,
    run_id: str,
    clock: ExchangeClock,
    on_cycle: Callable[[CycleRecord, bool], None] | None = None,
) -> PaperRun:
    """Build the paper run ``run_id`` (new or resumed) on the stand-in at ``base_url``, with
    its cycles persisted in the SQLite file ``db_path``; ``on_cycle(record, written)`` is told
    of every persisted cycle. Call ``.built.workflow.run()``, then ``.close()``."""
    exchange = make_exchange("binance", api_base_url=base_url, timeout_ms=5_000, rate_limit_ms=1)
    db = open_database(f"sqlite:///{db_path}")
    closers: list[Callable[[], None]] = [db.dispose, exchange.close]
    try:
        built = build_paper(settings, db=db, run_id=run_id, exchange=exchange, clock=clock.now,
                            sleep=clock.sleep)  # fmt: skip
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    clock.on_end = built.workflow.request_stop
    store = built.workflow.p.store
    if on_cycle is not None and store is not None:
        persist_many = store.persist_many

        def persisted(records: Any, states: Any = None) -> int:
            written = persist_many(records, states)  # a time step's cycles, one transaction
            for record in records:
                on_cycle(record, written > 0)
            return written

        store.persist_many = persisted  # type: ignore[method-assign]
    return PaperRun(built, clock, closers)


# --------------------------------------------------------------------------- comparing runs
#: Measurements, not results: when a row was written, how long a step took, which LLM call.
_NOT_RESULTS = frozenset({"persisted_at", "timings", "latency_s", "llm_call_id", "seq",
                          "cycle_id", "updated_cycle_id", "created_at", "run_id", "cache_hit"})  # fmt: skip


def read_run(db_path: Path | str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Everything a run decided, from its database: ``cycles`` (in persist order, a span of
    quiet cycles as its bars), ``orders``
    (by client order id), ``fills`` (by fill id), ``equity`` (per cycle, in persist order), as
    plain dicts without the measurements (times written, latencies, sequence numbers)."""
    from dataclasses import asdict

    from morningstar.store.workflow import WorkflowStore

    db = open_database(f"sqlite:///{db_path}", migrate=False)
    try:
        store = WorkflowStore(db)
        cycles = [bar for row in store.cycles(run_id) for bar in row.per_bar()]
        orders = sorted(store.orders(run_id), key=lambda o: o.client_order_id)
        fills = sorted(store.fills(run_id), key=lambda f: f.fill_id)
        equity = [
            {"bar_ts": r[0], "equity": r[2], "cash": r[3], "realized": r[4], "unrealized": r[5],
             "drawdown": r[6], "risk_state": r[7]}
            for r in store.equity(run_id)
        ]  # fmt: skip
    finally:
        db.dispose()

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in _NOT_RESULTS}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return {
        "cycles": [clean(asdict(c)) for c in cycles],
        "orders": [clean(asdict(o)) for o in orders],
        "fills": [clean(asdict(f)) for f in fills],
        "equity": equity,
    }


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _same_text(a: str, b: str, tol: float) -> bool:
    """Texts equal but for the numbers in them, which are equal to ``tol`` (a reason quoting a
    price computed in another order of operations: ``46542.97530590579`` and ``…058``)."""
    if _NUMBER.split(a) != _NUMBER.split(b):
        return False
    x, y = _NUMBER.findall(a), _NUMBER.findall(b)
    return len(x) == len(y) and all(
        abs(float(u) - float(v)) <= tol for u, v in zip(x, y, strict=True)
    )


def differences(
    got: Any, want: Any, *, tol: float = 1e-9, where: str = "", limit: int = 10
) -> list[str]:
    """Where ``got`` and ``want`` (nested dicts, lists, numbers, strings, times) differ: numbers
    (also those written in strings) to ``tol`` (absolute), the rest exactly; at most ``limit``
    of them."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                out.append(f"{path}: keys {sorted(a.keys() ^ b.keys())} differ")
                return
            for key in a:
                walk(a[key], b[key], f"{path}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{path}: {len(a)} items, want {len(b)}")
            for k, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{path}[{k}]")
        elif (
            isinstance(a, float | int) and isinstance(b, float | int)
            and not isinstance(a, bool) and not isinstance(b, bool)
        ):  # fmt: skip
            if math.isnan(a) and math.isnan(b):
                return
            if not abs(a - b) <= tol:
                out.append(f"{path}: {a!r} != {b!r}")
        elif isinstance(a, str) and isinstance(b, str) and a != b:
            if not _same_text(a, b, tol):
                out.append(f"{path}: {a!r} != {b!r}")
        elif a != b:
            out.append(f"{path}: {a!r} != {b!r}")

    walk(got, want, where)
    return out


# --------------------------------------------------------------------------- the zygote
def _say(pid: int, event: str, data: dict[str, Any]) -> None:
    sys.stdout.write(f"{pid} {event} {json.dumps(data, default=str)}\n")
    sys.stdout.flush()


def _child(job: dict[str, Any]) -> int:
    """One paper run in a forked child: build, report, run, report; the exit code."""
    pid = os.getpid()
    signal.alarm(int(job.get("timeout_s", 60)))  # a hard bound: SIGALRM ends the child
    clock = ExchangeClock.over_http(job["url"], int(job["end_ms"]),
                                    max_sleeps=int(job.get("max_sleeps", 100_000)),
                                    sync_ms=int(job.get("sync_ms", 1)))  # fmt: skip
    settings = paper_settings(job["pairs"], supervisor=bool(job.get("supervisor", False)),
                              **dict(job.get("workflow", {})))  # fmt: skip

    def on_cycle(record: CycleRecord, written: bool) -> None:
        _say(pid, "cycle", {"pair": record.pair, "bar": record.bar_ts.isoformat(),
                            "written": written})  # fmt: skip

    run = run_paper(settings, base_url=job["url"], db_path=job["db"], run_id=job["run_id"],
                    clock=clock, on_cycle=on_cycle)  # fmt: skip
    workflow = run.built.workflow
    if job.get("signals"):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _sig, _frame: workflow.request_stop())
    _say(pid, "ready", {"clock_ms": clock.ms})
    try:
        summary = workflow.run()
    finally:
        run.close()
    _say(pid, "done", {**summary.as_dict(), "ended": clock.ended, "runaway": clock.runaway})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The zygote (see the module docstring): one JSON job per stdin line; ends at EOF."""
    del argv
    zygote = os.getpid()
    signal.alarm(300)  # never outlive a test run
    _say(zygote, "zygote", {})
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: a fresh paper process
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _child(job)
            except BaseException as exc:  # reported, then the child exits non-zero
                _say(os.getpid(), "error", {"error": f"{type(exc).__name__}: {exc}"})
            finally:
                sys.stdout.flush()
                os._exit(code)
        _say(zygote, "spawned", {"pid": pid})
        _pid, status = os.waitpid(pid, 0)
        killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        _say(zygote, "exited", {"pid": pid, "signal": killed_by, "code": exit_code})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
