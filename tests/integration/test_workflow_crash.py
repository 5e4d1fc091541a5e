"""Crash safety and graceful stop of a paper run, in a process of its own.

The exchange stand-in (:class:`~tests.fakes.exchange_server.FakeBinance`) lives in this test
process, so it survives the kills; the paper run is a child process
(:mod:`tests.fakes.paper_driver`: forked from a zygote that imported the project once) pointed at
it on 127.0.0.1, with its own SQLite file and a fixed run id. The run's sleeps move the
stand-in's clock forward (``/_fake/clock``), so 5-minute bars close as fast as the run takes
them; time keeps going while a run is down (a restart catches up the bars closed meanwhile).

* Crash: the run is killed with SIGKILL at seeded-random moments — while it starts (opening the
  database, loading markets and history, the first cycles) or a random number of cycles in,
  plus a random delay (inside a cycle: the broker, the decision, the persist transaction) —
  at least 20 times, restarted with the same run id after each kill, until every bar is done.
  Against an uninterrupted run of the same bars (same run id, its own database): the same
  cycles (one per pair and bar: none duplicated, none missing, numbered without a gap), the
  same orders and fills (by client order id and fill id, to 1e-9) and the same equity curve.
* Graceful stop: SIGTERM (SIGINT) mid-run; the child's handlers call
  ``workflow.request_stop()``: it exits 0 within seconds, what it persisted is exactly the
  uninterrupted run's first cycles (the last one complete, with its orders and fills), and
  started again it resumes with no gap or duplicate and ends equal to the uninterrupted run.

Bounded: every child has a hard alarm, every wait a timeout, the zygote and the stand-in a
lifetime; loopback only.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fakes.exchange_server import FakeBinance
from tests.fakes.paper_driver import BRACKETS, differences, read_run

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="the paper driver forks its runs"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = {"BTC/USDT": "genetrader/BINANCE_BTC_USDT-5m.csv",
         "ETH/USDT": "genetrader/BINANCE_ETH_USDT-5m.csv"}  # fmt: skip
PAIRS = list(FILES)
TF_MS = 300_000
WARM = 700  # history bars before the first decision (the paper window is 649)
N = 400  # decision bars per pair
RUN_ID = "c4a5b".ljust(32, "0")
TOL = 1e-9
KILLS = 24
SEED = 6
CHILD_TIMEOUT_S = 60  # a child's hard bound (its own alarm)
WAIT_S = 45.0  # the longest this test waits for any one event


@cache
def _bars(root: str, n: int) -> dict[str, pd.DataFrame]:
    out = {}
    for pair, file in FILES.items():
        df = pd.read_csv(Path(root) / file, index_col="timestamp", nrows=n)
        df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
        out[pair] = df.astype("float64")
    return out


def _open_ms(frames: dict[str, pd.DataFrame], i: int) -> int:
    return int(frames[PAIRS[0]].index[0].value // 1_000_000) + i * TF_MS


@dataclass
class Event:
    pid: int
    kind: str
    data: dict[str, Any]


def _of(pid: int, *kinds: str) -> Callable[[Event], bool]:
    """Matches the events of child ``pid`` of these kinds (``exited``: the zygote's report)."""

    def match(e: Event) -> bool:
        if e.kind == "exited":
            return "exited" in kinds and e.data["pid"] == pid
        return e.pid == pid and e.kind in kinds

    return match


class Zygote:
    """The driver process: forks one paper child per job; its events arrive on a queue."""

    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.paper_driver"], cwd=REPO_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.events: queue.Queue[Event | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.expect(lambda e: e.kind == "zygote", timeout=120)  # imports: seconds when loaded

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            pid, kind, data = line.rstrip("\n").split(" ", 2)
            self.events.put(Event(int(pid), kind, json.loads(data)))
        self.events.put(None)

    def expect(self, match: Callable[[Event], bool], timeout: float = WAIT_S) -> Event:
        """The next event that ``match``es (those before it are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no expected event within {timeout:.0f}s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError("the zygote ended")
            if event.kind == "error":
                raise AssertionError(f"child {event.pid} failed: {event.data['error']}")
            if match(event):
                return event

    def spawn(self, **job: Any) -> int:
        """Fork a paper child for ``job``; its pid."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"timeout_s": CHILD_TIMEOUT_S, **job}) + "\n")
        self.proc.stdin.flush()
        return int(self.expect(lambda e: e.kind == "spawned").data["pid"])

    def exited(self, pid: int, timeout: float = WAIT_S) -> Event:
        return self.expect(_of(pid, "exited"), timeout)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the zygote ends
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> dict[str, pd.DataFrame]:
    return _bars(str(shared_data), WARM + N)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    z = Zygote(tmp_path_factory.mktemp("zygote") / "stderr.log")
    try:
        yield z
    finally:
        z.close()


def _server(frames: dict[str, pd.DataFrame]) -> FakeBinance:
    return FakeBinance({(pair, "5m"): df for pair, df in frames.items()},
                       now_ms=_open_ms(frames, WARM) + 1_000, max_requests=100_000,
                       max_lifetime_s=300)  # fmt: skip


def _job(fake: FakeBinance, frames: dict[str, pd.DataFrame], db: Path, **kw: Any) -> dict[str, Any]:
    return {"url": fake.base_url, "db": str(db), "run_id": RUN_ID, "pairs": PAIRS,
            "end_ms": _open_ms(frames, len(frames[PAIRS[0]])), "max_sleeps": 6 * N + 100,
            "sync_ms": TF_MS,
            "workflow": BRACKETS, **kw}  # fmt: skip


def _run_to_end(zygote: Zygote, job: dict[str, Any]) -> dict[str, Any]:
    pid = zygote.spawn(**job)
    done = zygote.expect(_of(pid, "done"))
    assert zygote.exited(pid).data["code"] == 0
    assert done.data["ended"] and not done.data["runaway"]
    return done.data


@pytest.fixture(scope="module")
def reference(
    frames: dict[str, pd.DataFrame], zygote: Zygote, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[dict[str, Any]]]:
    """The uninterrupted run: every table it wrote."""
    db = tmp_path_factory.mktemp("reference") / "paper.sqlite"
    with _server(frames) as fake:
        summary = _run_to_end(zygote, _job(fake, frames, db))
    assert summary["cycles_persisted"] == summary["bars"] == len(PAIRS) * N
    rows = read_run(db, RUN_ID)
    assert len(rows["fills"]) >= 40  # enough trading to compare
    roles = {(o["role"], o["status"]) for o in rows["orders"]}
    assert {
        ("stop_loss", "filled"),
        ("stop_loss", "cancelled"),
        ("take_profit", "cancelled"),
    } <= roles
    return rows


def _assert_complete(got: dict[str, list[dict[str, Any]]], want: dict[str, Any]) -> None:
    keys = [(c["pair"], c["bar_ts"]) for c in got["cycles"]]
    assert len(keys) == len(set(keys)) == len(PAIRS) * N  # one cycle per pair and bar
    for table in ("cycles", "orders", "fills", "equity"):
        assert differences(got[table], want[table], tol=TOL, where=table) == []


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    frames: dict[str, pd.DataFrame], zygote: Zygote, reference: dict[str, Any], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "paper.sqlite"
    kills: list[tuple[str, int]] = []  # (where, cycles the killed child persisted)
    rewritten = 0
    deadline = time.monotonic() + 240
    with _server(frames) as fake:
        job = _job(fake, frames, db)
        while len(kills) < KILLS:
            assert time.monotonic() < deadline, f"only {len(kills)} kills in time"
            pid = zygote.spawn(**job)
            # a kill while it starts (the first run's too: before any cycle was persisted)
            started = not kills or rng.random() < 0.25
            cycles = 0
            finished = False
            gone: Event | None = None
            if started:
                # the first: after the run is registered, before its first cycle (on this
                # machine); later ones: anywhere in the start (database, markets, history)
                time.sleep(rng.uniform(0.15, 0.4) if not kills else rng.uniform(0.0, 0.6))
            else:
                target = rng.randint(1, 30)
                while cycles < target and not finished:
                    event = zygote.expect(_of(pid, "cycle", "done", "exited"))
                    if event.kind == "cycle":
                        cycles += 1
                        rewritten += not event.data["written"]
                    finished = event.kind in ("done", "exited")
                    gone = event if event.kind == "exited" else None
                time.sleep(rng.uniform(0.0, 0.012))  # somewhere inside the next cycle
            if not finished:
                with contextlib.suppress(ProcessLookupError):  # it may have just finished
                    os.kill(pid, signal.SIGKILL)
            gone = gone or zygote.exited(pid)
            if gone.data["signal"] == signal.SIGKILL:
                kills.append(("start" if started else "run", cycles))
            else:
                assert gone.data["code"] == 0, gone.data  # it finished before the kill
                break
        rest = _run_to_end(zygote, job)
    got = read_run(db, RUN_ID)
    seqs = [c for c in _seqs(db)]
    assert seqs == list(range(1, len(PAIRS) * N + 1))  # numbered in order, no gap, no repeat
    assert len(kills) >= 20 and sum(w == "start" for w, _ in kills) >= 3
    assert rewritten == 0  # no cycle was ever decided twice
    assert rest["bars"] < len(PAIRS) * N  # the last start resumed; it did not start over
    _assert_complete(got, reference)
    print(
        f"{len(kills)} kills ({sum(w == 'start' for w, _ in kills)} while starting), cycles "
        f"seen before each: {[c for _, c in kills]}; {len(got['cycles'])} cycles, "
        f"{len(got['orders'])} orders, {len(got['fills'])} fills compared"
    )


def _seqs(db: Path) -> list[int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute(
            "SELECT seq FROM cycles WHERE run_id = ? ORDER BY seq", (RUN_ID,))]  # fmt: skip


def _stop(zygote: Zygote, job: dict[str, Any], sig: signal.Signals, after: int) -> dict[str, Any]:
    """A paper child with signal handlers, sent ``sig`` once it persisted ``after`` cycles: it
    must exit 0 within seconds, having persisted at most a few cycles more."""
    pid = zygote.spawn(**job, signals=True)
    for _ in range(after):
        zygote.expect(_of(pid, "cycle"))
    time.sleep(0.003)  # somewhere inside the next cycle
    os.kill(pid, sig)
    sent = time.monotonic()
    done = zygote.expect(_of(pid, "done"), timeout=15)
    assert zygote.exited(pid, timeout=15).data == {"pid": pid, "signal": 0, "code": 0}
    assert time.monotonic() - sent < 15
    assert done.data["stopped"] and not done.data["ended"]
    # the current time step finishes (2 pairs), then it stops; the rest is the pipe's lag
    assert after <= done.data["cycles_persisted"] <= after + 100
    return done.data


@pytest.mark.parametrize(
    ("sig", "outage"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-while-catching-up"],
)
def test_a_signal_finishes_the_cycle_persists_and_exits(
    frames: dict[str, pd.DataFrame], zygote: Zygote, reference: dict[str, Any], tmp_path: Path,
    sig: signal.Signals, outage: bool,
) -> None:  # fmt: skip
    db = tmp_path / "paper.sqlite"
    with _server(frames) as fake:
        job = _job(fake, frames, db)
        if outage:  # stopped early, then down while every other bar closes: one big catch-up
            _stop(zygote, job, signal.SIGTERM, 40)
            fake.advance_to(job["end_ms"])
        _stop(zygote, job, sig, 233 if sig == signal.SIGINT else 100)
        stopped = read_run(db, RUN_ID)
        n = len(stopped["cycles"])
        assert n < len(PAIRS) * N
        # what it persisted is the uninterrupted run's first n cycles, the last one complete
        assert differences(stopped["cycles"], reference["cycles"][:n], tol=TOL) == []
        assert differences(stopped["equity"], reference["equity"][:n], tol=TOL) == []
        last = {c["pair"]: c["bar_ts"] for c in stopped["cycles"]}
        fills = [f for f in reference["fills"] if f["ts"] <= last[f["pair"]]]
        assert differences(stopped["fills"], fills, tol=TOL) == []
        placed = {o["client_order_id"]: o for o in reference["orders"]
                  if o["bar_ts"] <= last[o["pair"]]}  # fmt: skip
        assert sorted(o["client_order_id"] for o in stopped["orders"]) == sorted(placed)
        for order in stopped["orders"]:
            want = placed[order["client_order_id"]]
            for key in ("pair", "side", "role", "kind", "bar_ts", "quantity"):
                assert order[key] == want[key] or abs(order[key] - want[key]) <= TOL
        # started again: it resumes after the last persisted bar and ends equal
        rest = _run_to_end(zygote, job)
    assert rest["bars"] == len(PAIRS) * N - n
    _assert_complete(read_run(db, RUN_ID), reference)
