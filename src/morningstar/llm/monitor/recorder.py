"""Write finished calls to ``llm_calls`` without ever blocking the caller, and read them back.

:class:`CallRecorder` holds a bounded :class:`queue.Queue`. :meth:`CallRecorder.submit` puts a
record with ``put_nowait``; when the queue is full the record is dropped and counted (and a
WARNING logged at most once per :data:`DROP_WARNING_EVERY_S`). A daemon writer thread takes up to
:data:`BATCH_ROWS` records at a time and inserts them in one transaction (SQLAlchemy core insert,
executemany). A database error is logged and its records counted as dropped; it never reaches a
caller. :meth:`CallRecorder.close` drains the queue, then stops the thread.

:func:`query_history` reads calls back, newest first, with the indexes of ``llm_calls``
(``started_at``, ``(model, started_at)``, ``(caller, started_at)``). :func:`query_totals` and
:func:`query_recent` read what the monitor's status and aggregates show (calls of every process);
:class:`CachedRead` keeps such a read for a while and refreshes it in a background thread, so a
reader never waits for the database except the very first time (bounded).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from morningstar.errors import StorageError
from morningstar.llm.monitor.records import RECORD_COLUMNS, CallRecord
from morningstar.store.db import Database
from morningstar.store.models import LLMCallRow

__all__ = [
    "BATCH_ROWS",
    "DROP_WARNING_EVERY_S",
    "READ_WARNING_EVERY_S",
    "RECENT_COLUMNS",
    "CachedRead",
    "CallRecorder",
    "query_history",
    "query_recent",
    "query_totals",
]

logger = logging.getLogger(__name__)

#: Most rows inserted in one transaction.
BATCH_ROWS = 500
#: Seconds the writer waits after the first record of a batch for more to arrive, so a busy
#: caller's records are written a few transactions a second, not one each (the writer then
#: wakes rarely and takes the interpreter from the callers rarely). Flush and close cut it short.
LINGER_S = 0.05
#: Seconds between two "records dropped" warnings.
DROP_WARNING_EVERY_S = 60.0
_TABLE: sa.Table = LLMCallRow.__table__  # type: ignore[assignment]
_COLUMNS = tuple(_TABLE.c[name] for name in RECORD_COLUMNS)
_TEXT_COLUMNS = ("prompt", "response")
_COLUMNS_NO_TEXT = tuple(
    sa.null().label(name) if name in _TEXT_COLUMNS else _TABLE.c[name] for name in RECORD_COLUMNS
)
_STOP = object()
#: Seconds between two "database read failed" warnings of one :class:`CachedRead`.
READ_WARNING_EVERY_S = 60.0
#: The columns :func:`query_recent` reads, in this order.
RECENT_COLUMNS = (
    "model",
    "caller",
    "status",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_hit",
)
_T = TypeVar("_T")


class CallRecorder:
    """A bounded queue of call records and the daemon thread writing them to the database.

    Args:
        db: the database (migrated to a revision with ``llm_calls``).
        queue_size: records waiting at most; beyond that they are dropped and counted.
        on_drop: called with the number of records dropped (queue full or database error).
        clock: monotonic clock in seconds (rate-limits the drop warning).
    """

    def __init__(
        self,
        db: Database,
        *,
        queue_size: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.db = db
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._on_drop = on_drop
        self._clock = clock
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._hurry = threading.Event()  # flush / close: write now, no linger
        self._dropped = 0
        self._written = 0
        self._last_warning: float | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="morningstar-llm-recorder", daemon=True
        )
        self._thread.start()

    # -- callers' side ---------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Records not written: queue full, database error, or submitted after close."""
        return self._dropped

    @property
    def written(self) -> int:
        """Records written to the database."""
        return self._written

    @property
    def depth(self) -> int:
        """Records waiting in the queue."""
        return self._queue.qsize()

    def submit(self, record: CallRecord) -> bool:
        """Queue ``record`` for writing; never blocks.

        Returns:
            False when it was dropped (queue full or recorder closed).
        """
        with self._lock:
            if self._closed:
                accepted = False
            else:
                try:
                    self._queue.put_nowait(record)
                    self._pending += 1
                    accepted = True
                except queue.Full:
                    accepted = False
        if not accepted:
            self._count_dropped(1, "the queue is full" if not self._closed else "closed")
        return accepted

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued record is written (or dropped); True if done in time."""
        deadline = time.monotonic() + timeout_s
        self._hurry.set()
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._hurry.set()
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:  # pragma: no cover - the writer is stuck on the database
            logger.warning("LLM call recorder: queue still full after %.0f s", timeout_s)
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # pragma: no cover - the writer is stuck on the database
            logger.warning(
                "LLM call recorder did not stop within %.0f s; %d records not written",
                timeout_s,
                self._pending,
            )

    # -- writer thread ---------------------------------------------------------------------

    def _count_dropped(self, count: int, why: str) -> None:
        now = self._clock()
        with self._lock:
            self._dropped += count
            warn = self._last_warning is None or now - self._last_warning >= DROP_WARNING_EVERY_S
            if warn:
                self._last_warning = now
            total = self._dropped
        if warn:
            logger.warning(
                "LLM call records dropped (%s): %d so far; they are not in the database",
                why,
                total,
            )
        if self._on_drop is not None:
            try:
                self._on_drop(count)
            except Exception:  # pragma: no cover - a metrics callback failed
                logger.debug("on_drop callback failed", exc_info=True)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[CallRecord] = []
            if item is _STOP:
                stop = True
            else:
                batch.append(item)
                if self._queue.qsize() < BATCH_ROWS:
                    self._hurry.wait(LINGER_S)  # set by flush / close until all is written
            while not stop and len(batch) < BATCH_ROWS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)

    def _write(self, batch: list[CallRecord]) -> None:
        try:
            with self.db.session() as session:
                session.execute(sa.insert(_TABLE), [r.to_row() for r in batch])
        except Exception as exc:
            reason = exc.one_line() if isinstance(exc, StorageError) else type(exc).__name__
            logger.error("writing %d LLM call records failed: %s", len(batch), reason)
            self._count_dropped(len(batch), "database error")
        else:
            with self._lock:
                self._written += len(batch)
        finally:
            with self._idle:
                self._pending -= len(batch)
                if not self._pending:
                    if not self._closed:
                        self._hurry.clear()
                    self._idle.notify_all()


def _record(row: sa.Row[Any]) -> CallRecord:
    return CallRecord.from_row(tuple(row))  # selected in RECORD_COLUMNS order


def query_history(
    db: Database,
    *,
    limit: int = 100,
    offset: int = 0,
    model: str | None = None,
    caller: str | None = None,
    status: str | None = None,
    call_id: str | None = None,
    include_text: bool = True,
) -> list[CallRecord]:
    """Finished calls from ``llm_calls``, newest first (``started_at``, then ``id``, descending).

    Args:
        db: the database.
        limit: most records returned.
        offset: records skipped (pagination).
        model, caller, status, call_id: keep only calls with this value.
        include_text: read the captured prompt and response (False: None in the records, and
            a page stays small: the REST history list reads them per call).

    Raises:
        StorageError: the database cannot be read.
    """
    columns = _COLUMNS if include_text else _COLUMNS_NO_TEXT
    query = sa.select(*columns)
    if call_id is not None:
        query = query.where(_TABLE.c.id == call_id)
    if model is not None:
        query = query.where(_TABLE.c.model == model)
    if caller is not None:
        query = query.where(_TABLE.c.caller == caller)
    if status is not None:
        query = query.where(_TABLE.c.status == status)
    query = (
        query.order_by(_TABLE.c.started_at.desc(), _TABLE.c.id.desc()).limit(limit).offset(offset)
    )
    with db.session(readonly=True) as session:
        rows = session.execute(query).all()
    return [_record(row) for row in rows]


def query_totals(db: Database) -> list[tuple[str, int, float, float | None]]:
    """Per status, over the whole of ``llm_calls``: calls, latency sum (s), cost sum (USD).

    One aggregate query (``GROUP BY status``); the cost sum leaves unknown prices (NULL) out and
    is None when no call of that status has a known price.

    Raises:
        StorageError: the database cannot be read.
    """
    query = sa.select(
        _TABLE.c.status,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(_TABLE.c.latency_s), 0.0),
        sa.func.sum(_TABLE.c.cost_usd),
    ).group_by(_TABLE.c.status)
    with db.session(readonly=True) as session:
        rows = session.execute(query).all()
    return [
        (str(status), int(count), float(latency), None if cost is None else float(cost))
        for status, count, latency, cost in rows
    ]


def query_recent(db: Database, limit: int) -> list[tuple[Any, ...]]:
    """The :data:`RECENT_COLUMNS` of the ``limit`` newest calls (``started_at``, then ``id``).

    Read through the ``started_at`` index: the cost does not grow with the table.

    Raises:
        StorageError: the database cannot be read.
    """
    query = (
        sa.select(*(_TABLE.c[name] for name in RECENT_COLUMNS))
        .order_by(_TABLE.c.started_at.desc(), _TABLE.c.id.desc())
        .limit(limit)
    )
    with db.session(readonly=True) as session:
        rows = session.execute(query).all()
    return [tuple(row) for row in rows]


class CachedRead(Generic[_T]):
    """A database read kept ``ttl_s`` seconds and refreshed in the background.

    :meth:`get` returns the last value read at once; when it is older than ``ttl_s`` it also
    starts one refresh in a daemon thread (never two at a time), so a caller (an ``async`` API
    route) never waits for the database, except the very first :meth:`get`, which waits for the
    first read at most ``first_wait_s`` seconds. A failed read is logged (a WARNING at most every
    :data:`READ_WARNING_EVERY_S` seconds) and makes the value None until a later read succeeds
    (retried after ``ttl_s``).

    Args:
        read: the read (raises on a database error).
        ttl_s: seconds a value (or a failure) is kept before the next read.
        clock: monotonic clock in seconds.
        what: what is read, for the log.
        first_wait_s: longest wait of the first :meth:`get`.
    """

    def __init__(
        self,
        read: Callable[[], _T],
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        what: str = "data",
        first_wait_s: float = 2.0,
    ) -> None:
        self._read = read
        self._ttl = ttl_s
        self._clock = clock
        self._what = what
        self._first_wait = first_wait_s
        self._lock = threading.Lock()
        self._value: _T | None = None
        self._read_at: float | None = None  # clock when the last read started
        self._done = False  # a read finished (ok or not)
        self._thread: threading.Thread | None = None
        self._last_warning: float | None = None
        self._first_deadline: float | None = None  # real monotonic time
        self.reads = 0  # reads started (tests)

    def get(self) -> _T | None:
        """The last value read (None: never read, or the last read failed); see the class."""
        now = self._clock()
        with self._lock:
            stale = self._read_at is None or now - self._read_at >= self._ttl
            if stale and self._thread is None:
                self._read_at = now
                self.reads += 1
                self._thread = threading.Thread(
                    target=self._refresh, name="morningstar-llm-stats", daemon=True
                )
                self._thread.start()
            if self._first_deadline is None:
                self._first_deadline = time.monotonic() + self._first_wait
            thread = None if self._done else self._thread
            if thread is None:
                return self._value
        # no read has finished yet: wait for the first one, until the first get's deadline
        thread.join(max(0.0, self._first_deadline - time.monotonic()))
        with self._lock:
            return self._value

    def wait(self, timeout_s: float = 5.0) -> bool:
        """Wait for the read in progress, if any; True when none is left running."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def _refresh(self) -> None:
        value: _T | None
        try:
            value = self._read()
        except Exception as exc:
            value = None
            self._warn(exc)
        with self._lock:
            self._value = value
            self._done = True
            self._thread = None

    def _warn(self, exc: Exception) -> None:
        now = self._clock()
        with self._lock:
            warn = self._last_warning is None or now - self._last_warning >= READ_WARNING_EVERY_S
            if warn:
                self._last_warning = now
        reason = exc.one_line() if isinstance(exc, StorageError) else type(exc).__name__
        if warn:
            logger.warning(
                "reading the LLM %s from the database failed (%s); this process's figures "
                "are shown instead",
                self._what,
                reason,
            )
        else:
            logger.debug("reading the LLM %s failed again: %s", self._what, reason)
