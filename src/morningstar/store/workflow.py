"""The trading workflow's store: runs, cycles, orders, fills, positions and resume state.

:class:`WorkflowStore` is step g of the trading cycle. It writes everything one
:class:`~morningstar.core.cycle.CycleRecord` holds in ONE transaction, together with the resume
state (broker, ledger, risk engine) the workflow hands in::

    store = WorkflowStore(db)
    store.start_run(run_id, mode="paper", strategy="strategy:ema_cross", pairs=["BTC/USDT"],
                    timeframe="1h", config=settings_as_dict(settings))
    store.persist(record, state={"broker": ..., "ledger": ..., "risk": ...})   # True
    store.persist(record, state=...)                                           # False: a no-op
    last_bar, states = store.last_state(run_id)                                # on restart

Tables (see :mod:`morningstar.store.models`):

* ``workflow_runs``: one row per run; ``cycles`` counts its persisted cycles and numbers them
  (``seq``, the persist order); ``last_bar_ts`` is the newest bar persisted.
* ``cycles``: one row per (run, pair, bar), unique; the equity snapshot is folded into it. A
  backtest's span of consecutive quiet cycles of a pair with the same account is ONE row of
  ``bars`` cycles (``bar_ts`` to ``last_bar_ts``; its ``seq`` numbers its first cycle, the
  next row's ``seq`` is ``bars`` further): see :class:`QuietCycle`.
* ``cycle_errors``: the step errors of a cycle.
* ``orders``: keyed by the deterministic client order id. Inserted ``open`` when placed (a
  re-sent order keeps its row), ``rejected`` when the broker refused it (the record's
  ``rejected``; the reason is in ``cycle_errors``); ``filled`` once its fills add up to its quantity
  (``filled_quantity`` is their sum; a ``market`` order and a reduce-only exit at their first
  fill, as their quantity may be an estimate or an upper bound: quote-sized entries, the
  protective orders covering them). Cancellations follow the brokers' contract: when a fill
  closes a position (its order's role is ``close``, ``stop_loss`` or ``take_profit``) the other
  open reduce-only orders of the run and pair are ``cancelled`` (OCO), and a new ``stop_loss``
  (``take_profit``) order replaces the open one of the run and pair (an *adjust*).
* ``fills``: inserted once by fill id (a fill sent again is ignored).
* ``positions``: the LATEST open positions of each run: a cycle with an equity snapshot replaces
  the run's rows by its ``positions`` (a cycle without one, e.g. a skipped cycle, leaves them).
* ``workflow_state``: the latest resume state per (run, pair).

Idempotency: a cycle whose id is stored already is skipped, writing nothing (:meth:`persist`
returns False); a concurrent duplicate that passes the check loses on the primary key, its
transaction is rolled back, and it counts as skipped too. Throughput: :meth:`persist_many`
writes a backtest's cycles in batches with one ``executemany`` per table (see
``benchmarks/bench_workflow_store.py``); it also takes lean :class:`QuietCycle` records (a
backtest cycle that decided nothing: its equity snapshot, no documents).

Errors: database failures are one-line :class:`~morningstar.errors.StorageError`; invalid
arguments (unknown mode or status, naive datetimes) are :class:`ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from morningstar.core.cycle import CycleRecord, PositionSnapshot
from morningstar.errors import StorageError
from morningstar.logs import redact
from morningstar.store._workflow_records import (
    ResumePoint,
    StoredCycle,
    StoredCycleError,
    StoredFill,
    StoredOrder,
    StoredPosition,
    WorkflowRun,
    make,
    run_record,
    span_times,
)
from morningstar.store.db import Database
from morningstar.store.models import (
    ORDER_STATUSES,
    WORKFLOW_MODES,
    WORKFLOW_RUN_STATUSES,
    CycleErrorRow,
    CycleRow,
    FillRow,
    OrderRow,
    PositionRow,
    WorkflowRunRow,
    WorkflowStateRow,
    dumps_json,
)

__all__ = [
    "CLOSING_ROLES",
    "QuietCycle",
    "ResumePoint",
    "StoredCycle",
    "StoredCycleError",
    "StoredFill",
    "StoredOrder",
    "StoredPosition",
    "WorkflowRun",
    "WorkflowStore",
]

_RUNS = cast(sa.Table, WorkflowRunRow.__table__)
_CYCLES = cast(sa.Table, CycleRow.__table__)
_ERRORS = cast(sa.Table, CycleErrorRow.__table__)
_ORDERS = cast(sa.Table, OrderRow.__table__)
_FILLS = cast(sa.Table, FillRow.__table__)
_POSITIONS = cast(sa.Table, PositionRow.__table__)
_STATE = cast(sa.Table, WorkflowStateRow.__table__)

#: Roles of the orders whose fill closes the position (and cancels its other exits).
CLOSING_ROLES = ("close", "stop_loss", "take_profit")
#: The open time of a row's last bar (a span's ``last_bar_ts``).
_LAST_BAR = sa.func.coalesce(_CYCLES.c.last_bar_ts, _CYCLES.c.bar_ts, type_=_CYCLES.c.bar_ts.type)
#: Cycle ids checked per ``IN (...)`` query.
_CHUNK = 500
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|private[_-]?key|credential", re.I)
_LIVE = ("new", "open")


class QuietCycle(NamedTuple):
    """A backtest cycle that decided, ordered, filled and failed nothing: its lean record.

    Persisted by :meth:`WorkflowStore.persist_many` like a :class:`CycleRecord` with no
    supervision, decision, orders, fills, errors nor step timings, and this equity snapshot
    (its ``cycles`` row has the same columns: the JSON documents NULL, ``timings`` ``{}``).
    ``prediction`` is usually None (none was evaluated: a flat pair whose prediction could not
    open a trade); ``positions`` matter for the last cycle of a batch only (the ``positions``
    table holds the latest ones).

    A *span*: ``bars`` > 1 consecutive quiet cycles of the pair, one per bar from ``bar_ts`` to
    ``last_bar_ts`` (contiguous bars: ``bar_ts + k * step``), each leaving this same account —
    stored as one row that counts ``bars`` cycles (``prediction``: its last bar's, if any).
    """

    cycle_id: str
    run_id: str
    pair: str
    bar_ts: datetime
    strategy: str
    equity: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    drawdown: float
    risk_state: str
    prediction: dict[str, Any] | None = None
    positions: tuple[PositionSnapshot, ...] = ()
    bars: int = 1
    last_bar_ts: datetime | None = None


AnyCycle = CycleRecord | QuietCycle


class _Duplicate(Exception):
    """Internal: an insert hit a unique key (maybe a concurrent duplicate of a cycle)."""

    def __init__(self, original: sa.exc.IntegrityError) -> None:
        super().__init__(str(original))
        self.original = original


# -- helpers ----------------------------------------------------------------------------------


def _scrub(value: Any, key: str = "") -> Any:
    """A JSON-safe copy of a config with secrets masked (secret-looking keys, SecretStr)."""
    if hasattr(value, "get_secret_value"):
        return "***"
    if key and _SECRET_KEY.search(key) and value not in (None, "", {}, []):
        return "***"
    if isinstance(value, Mapping):
        return {str(k): _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return redact(str(value))


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware (UTC); got naive {value.isoformat()}")


def _verdict(supervision: Mapping[str, Any] | None) -> str | None:
    if not supervision:
        return None
    if supervision.get("abstained"):
        return "abstain"
    verdict = supervision.get("verdict")
    return None if verdict is None else str(verdict)[:16]


def _action(decision: Mapping[str, Any] | None) -> str | None:
    if not decision:
        return None
    final = decision.get("final")
    if isinstance(final, Mapping) and final.get("action") is not None:
        return str(final["action"])[:16]
    return None


_CYCLE_COLUMNS = (
    "cycle_id", "run_id", "seq", "pair", "bar_ts", "strategy", "prediction", "supervision",
    "decision", "action", "llm_verdict", "equity", "cash", "realized_pnl", "unrealized_pnl",
    "fees", "drawdown", "risk_state", "timings", "errors", "persisted_at", "bars", "last_bar_ts",
)  # fmt: skip
# the hot path of backtests on SQLite: one executemany of plain tuples, values converted here
# exactly as the column types would (UTCDateTime: naive UTC text; JSONDocument: compact JSON)
_SQLITE_CYCLE_INSERT = (
    f"INSERT INTO cycles ({', '.join(_CYCLE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_CYCLE_COLUMNS))})"
)
_NO_ACCOUNT = (None,) * 7


def _cycle_row(record: AnyCycle, seq: int, now: datetime) -> tuple[Any, ...]:
    if isinstance(record, QuietCycle):
        return (
            record.cycle_id, record.run_id, seq, record.pair, record.bar_ts, record.strategy,
            record.prediction, None, None, None, None, *record[5:12], {}, 0, now, record.bars,
            record.last_bar_ts,
        )  # fmt: skip
    eq = record.equity
    account = _NO_ACCOUNT if eq is None else (
        eq.equity, eq.cash, eq.realized_pnl, eq.unrealized_pnl, eq.fees, eq.drawdown,
        eq.risk_state,
    )  # fmt: skip
    return (
        record.cycle_id, record.run_id, seq, record.pair, record.bar_ts, record.strategy,
        record.prediction, record.supervision, record.decision, _action(record.decision),
        _verdict(record.supervision), *account, record.timings, len(record.errors), now, 1, None,
    )  # fmt: skip


def _sqlite_ts(value: datetime) -> str:
    """The text :class:`UTCDateTime` stores on SQLite (naive UTC, microseconds)."""
    _aware("bar_ts", value)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_JSON_AT = tuple(_CYCLE_COLUMNS.index(c) for c in ("prediction", "supervision", "decision",
                                                   "timings"))  # fmt: skip
_TIME_AT = tuple(_CYCLE_COLUMNS.index(c) for c in ("bar_ts", "persisted_at", "last_bar_ts"))


def _sqlite_cycle_rows(
    records: Sequence[AnyCycle], seqs: Sequence[int], now: datetime
) -> list[tuple[Any, ...]]:
    """:func:`_cycle_row` of each record with the values converted as the column types would
    on SQLite (JSON documents as compact text, times as naive UTC text): one ``executemany``."""
    rows = []
    for record, seq in zip(records, seqs, strict=True):
        row = list(_cycle_row(record, seq, now))
        for i in _JSON_AT:
            if row[i] is not None:
                row[i] = dumps_json(row[i])
        for i in _TIME_AT:
            if row[i] is not None:
                row[i] = _sqlite_ts(row[i])
        rows.append(tuple(row))
    return rows


def _bars(record: AnyCycle) -> int:
    """The cycles a record stands for (a span of quiet cycles: its ``bars``)."""
    return record.bars if type(record) is QuietCycle else 1


def _last_bar(record: AnyCycle) -> datetime:
    """The open time of the record's last bar."""
    last = record.last_bar_ts if type(record) is QuietCycle else None
    return record.bar_ts if last is None else last


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class WorkflowStore:
    """Reads and writes of the trading workflow's tables (module docstring).

    Args:
        db: the database (migrated to revision 0004 or later).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        if db.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._insert: Any = pg_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._insert = sqlite_insert
        self._order_update = (
            sa.update(_ORDERS)
            .where(_ORDERS.c.client_order_id == sa.bindparam("b_oid"))
            .values(
                filled_quantity=self._filled_sum(),
                # a market order fills whole (its quantity may be an estimate: quote-sized
                # entries), so does a reduce-only exit (its quantity is an upper bound: the
                # broker fills what the position holds); other orders when their fills add
                # up to the quantity
                status=sa.case(
                    (_ORDERS.c.kind == "market", "filled"),
                    (_ORDERS.c.reduce_only.is_(True), "filled"),
                    (self._filled_sum() >= _ORDERS.c.quantity * (1.0 - 1e-9), "filled"),
                    else_=_ORDERS.c.status,
                ),
                updated_cycle_id=sa.bindparam("b_cid"),
            )
        )
        # the statements of the eventful cycles, built once (SQLAlchemy caches their compiled
        # form by statement: building them per cycle cost more than running them)
        self._orders_insert = self._insert(_ORDERS).on_conflict_do_nothing()
        self._fills_insert = self._insert(_FILLS).on_conflict_do_nothing()
        o = _ORDERS.c
        live = (o.run_id == sa.bindparam("b_run"), o.pair == sa.bindparam("b_pair"),
                o.status.in_(_LIVE), o.reduce_only.is_(True),
                o.client_order_id != sa.bindparam("b_keep"))  # fmt: skip
        cancelled = {"status": "cancelled", "updated_cycle_id": sa.bindparam("b_cid")}
        self._cancel_any = _ORDERS.update().where(*live).values(**cancelled)
        self._cancel_role = (
            _ORDERS.update().where(*live, o.role == sa.bindparam("b_role")).values(**cancelled)
        )
        self._closing = sa.select(o.client_order_id, o.pair).where(
            o.client_order_id.in_(sa.bindparam("b_ids", expanding=True)),
            o.role.in_(CLOSING_ROLES),
            o.status == "filled",
        )

    @property
    def db(self) -> Database:
        """The database this store works on."""
        return self._db

    @staticmethod
    def _filled_sum() -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.coalesce(sa.func.sum(_FILLS.c.quantity), 0.0))
            .where(_FILLS.c.client_order_id == _ORDERS.c.client_order_id)
            .scalar_subquery()
        )

    # -- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        *,
        mode: str,
        strategy: str,
        pairs: Sequence[str],
        timeframe: str,
        config: Mapping[str, Any] | None = None,
        calendar: str = "crypto",
    ) -> WorkflowRun:
        """Record that run ``run_id`` starts (or resumes: its row is set ``running`` again).

        Args:
            run_id: the run's id (32 hex characters, stable across restarts).
            mode: ``backtest``, ``paper`` or ``live``.
            strategy: the predictor's name (``model:<artifact>`` or ``strategy:<name>``).
            pairs: the markets traded.
            timeframe: the bar length (``1h``): the metrics' annualisation comes from it.
            config: the run's settings as plain values; secrets are masked before storing
                (``SecretStr`` values and keys that look like passwords, tokens or API keys).
            calendar: the market calendar of the annualisation (``crypto``, ``forex``, ...).

        Raises:
            ValueError: an unknown mode, or a resumed run whose mode, strategy, pairs or
                timeframe differ from the stored ones.
            StorageError: the database failed.
        """
        if mode not in WORKFLOW_MODES:
            raise ValueError(f"mode must be one of {', '.join(WORKFLOW_MODES)}; got {mode!r}")
        if not pairs:
            raise ValueError("pairs must name at least one market")
        now = self._db.now()
        values = {
            "mode": mode, "strategy": strategy, "pairs": list(pairs), "timeframe": timeframe,
            "calendar": calendar, "config": _scrub(dict(config or {})),
        }  # fmt: skip
        with self._db.session() as s:
            conn = s.connection()
            row = conn.execute(sa.select(_RUNS).where(_RUNS.c.run_id == run_id)).first()
            if row is None:
                conn.execute(
                    _RUNS.insert().values(
                        run_id=run_id, status="running", started_at=now, finished_at=None,
                        last_bar_ts=None, cycles=0, error=None, **values,
                    )
                )  # fmt: skip
            else:
                stored = run_record(row)
                for name in ("mode", "strategy", "timeframe"):
                    if getattr(stored, name) != values[name]:
                        raise ValueError(
                            f"run {run_id} was started with {name}={getattr(stored, name)!r}; "
                            f"cannot resume it with {values[name]!r}"
                        )
                if list(stored.pairs) != values["pairs"]:
                    raise ValueError(
                        f"run {run_id} trades {list(stored.pairs)}; cannot resume it with "
                        f"{values['pairs']}"
                    )
                conn.execute(
                    _RUNS.update()
                    .where(_RUNS.c.run_id == run_id)
                    .values(status="running", finished_at=None, error=None, config=values["config"])
                )
            out = conn.execute(sa.select(_RUNS).where(_RUNS.c.run_id == run_id)).one()
        return run_record(out)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """Mark run ``run_id`` ``finished``, ``failed`` or ``stopped`` now.

        Raises:
            ValueError: ``status`` is not a final status.
            StorageError: no run has this id, or the database failed.
        """
        final = WORKFLOW_RUN_STATUSES[1:]
        if status not in final:
            raise ValueError(f"status must be one of {', '.join(final)}; got {status!r}")
        with self._db.session() as s:
            result = s.connection().execute(
                _RUNS.update()
                .where(_RUNS.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=self._db.now(),
                    error=None if error is None else redact(error),
                )
            )
            if result.rowcount == 0:
                raise StorageError(f"no workflow run {run_id!r}", hint="call start_run() first")

    def get_run(self, run_id: str) -> WorkflowRun | None:
        """Run ``run_id``, or ``None``."""
        with self._db.session(readonly=True) as s:
            row = s.connection().execute(sa.select(_RUNS).where(_RUNS.c.run_id == run_id)).first()
        return None if row is None else run_record(row)

    def runs(
        self, *, status: str | None = None, mode: str | None = None, limit: int = 50
    ) -> list[WorkflowRun]:
        """Runs, newest first, optionally of one status or mode (at most ``limit``)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1; got {limit}")
        query = sa.select(_RUNS)
        if status is not None:
            query = query.where(_RUNS.c.status == status)
        if mode is not None:
            query = query.where(_RUNS.c.mode == mode)
        query = query.order_by(_RUNS.c.started_at.desc(), _RUNS.c.run_id.desc()).limit(limit)
        with self._db.session(readonly=True) as s:
            rows = s.connection().execute(query).all()
        return [run_record(r) for r in rows]

    def latest_run(self) -> WorkflowRun | None:
        """The most recently started run, or ``None`` when there is none."""
        found = self.runs(limit=1)
        return found[0] if found else None

    # -- writes -------------------------------------------------------------------------------

    def persist(self, record: CycleRecord, *, state: Mapping[str, Any] | None = None) -> bool:
        """Write one cycle and its resume state in one transaction.

        Args:
            record: what the cycle produced.
            state: the resume state after the cycle (JSON-friendly: the broker's, the ledger's
                and the risk engine's states), stored as the latest state of the record's pair.

        Returns:
            True when written; False when this cycle id was stored already (nothing written).

        Raises:
            StorageError: the run was not started, an order of a fill is unknown, or the
                database failed; nothing of the cycle is written.
        """
        return self._persist_batch([(record, state)]) == 1

    def persist_many(
        self,
        records: Sequence[CycleRecord | QuietCycle],
        states: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Write many cycles (a backtest's batch) in one transaction, like :meth:`persist` each.

        Args:
            records: cycles in the order they ran (full records, or lean :class:`QuietCycle`
                ones of cycles that decided nothing).
            states: the resume state after each cycle (same length), or ``None``. Only the
                last state per (run, pair) of the batch is kept, as one-by-one persists would.

        Returns:
            The number of cycles written (already stored ones are skipped).

        Raises:
            ValueError: ``states`` and ``records`` differ in length.
            StorageError: as :meth:`persist`; nothing of the batch is written.
        """
        if states is not None and len(states) != len(records):
            raise ValueError(f"states has {len(states)} items for {len(records)} records")
        if not records:
            return 0
        pairs = list(zip(records, states if states is not None else [None] * len(records),
                         strict=True))  # fmt: skip
        return self._persist_batch(pairs)

    def _persist_batch(self, batch: list[tuple[AnyCycle, Mapping[str, Any] | None]]) -> int:
        for attempt in range(3):
            try:
                with self._db.session() as s:
                    return self._write(s.connection(), batch)
            except _Duplicate as dup:
                ids = [r.cycle_id for r, _ in batch]
                if attempt == 2 or not self._existing(ids):
                    raise self._db.storage_error(dup.original, "persisting a cycle in") from dup
        raise AssertionError("unreachable")  # pragma: no cover

    def _existing(self, ids: Sequence[str], conn: Connection | None = None) -> set[str]:
        if conn is None:
            with self._db.session(readonly=True) as s:
                return self._existing(ids, s.connection())
        found: set[str] = set()
        column = _CYCLES.c.cycle_id
        for chunk in _chunks(ids):
            found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        return found

    def _existing_in_range(self, conn: Connection, records: Sequence[AnyCycle]) -> set[str]:
        """The stored ids among ``records``' cycle ids: one range query per (run, pair) over
        the bars of the batch (the unique index), not the ids one by one — a new backtest
        batch finds nothing past its run's last bar at once."""
        bounds: dict[tuple[str, str], list[datetime]] = {}
        for r in records:
            b = bounds.get((r.run_id, r.pair))
            if b is None:
                bounds[(r.run_id, r.pair)] = [r.bar_ts, r.bar_ts]
            elif r.bar_ts < b[0]:
                b[0] = r.bar_ts
            elif r.bar_ts > b[1]:
                b[1] = r.bar_ts
        c = _CYCLES.c
        found: set[str] = set()
        for (run_id, pair), (lo, hi) in bounds.items():
            _aware("bar_ts", lo)
            _aware("bar_ts", hi)
            found.update(conn.execute(
                sa.select(c.cycle_id).where(c.run_id == run_id, c.pair == pair,
                                            c.bar_ts >= lo, c.bar_ts <= hi)
            ).scalars())  # fmt: skip
        return found

    def _write(
        self, conn: Connection, batch: list[tuple[AnyCycle, Mapping[str, Any] | None]]
    ) -> int:
        records_in = [r for r, _ in batch]
        if len(batch) > _CHUNK:
            existing = self._existing_in_range(conn, records_in)
        else:
            existing = self._existing([r.cycle_id for r in records_in], conn)
        todo: list[tuple[AnyCycle, Mapping[str, Any] | None]] = []
        for item in batch:
            cid = item[0].cycle_id
            if cid not in existing:
                existing.add(cid)
                todo.append(item)
        if not todo:
            return 0
        now = self._db.now()
        seqs = self._claim_seqs(conn, [r for r, _ in todo])
        error_rows: list[dict[str, Any]] = []
        active: list[CycleRecord] = []
        for record, _ in todo:
            if type(record) is QuietCycle:
                continue
            assert isinstance(record, CycleRecord)
            for i, err in enumerate(record.errors):
                error_rows.append({
                    "cycle_id": record.cycle_id, "run_id": record.run_id, "position": i,
                    "pair": record.pair, "bar_ts": record.bar_ts, "step": err.step,
                    "error_type": err.error_type[:128], "message": redact(err.message),
                    "outcome": err.outcome, "attempts": err.attempts, "created_at": now,
                })  # fmt: skip
            if record.orders or record.fills:
                active.append(record)
        records = [r for r, _ in todo]
        try:
            if self._db.backend == "sqlite":
                conn.exec_driver_sql(_SQLITE_CYCLE_INSERT, _sqlite_cycle_rows(records, seqs, now))
            else:
                rows = [dict(zip(_CYCLE_COLUMNS, _cycle_row(r, q, now), strict=True))
                        for r, q in zip(records, seqs, strict=True)]  # fmt: skip
                conn.execute(_CYCLES.insert(), rows)
        except sa.exc.IntegrityError as exc:
            raise _Duplicate(exc) from exc
        if error_rows:
            conn.execute(_ERRORS.insert(), error_rows)
        for record in active:
            self._write_orders_and_fills(conn, record)
        self._write_positions(conn, records)
        self._write_states(conn, todo, seqs, now)
        return sum(_bars(r) for r in records)

    def _claim_seqs(self, conn: Connection, records: Sequence[AnyCycle]) -> list[int]:
        """Bump each run's cycle counter (row lock on PostgreSQL) and number the records: a
        record's ``seq`` is the number of its first cycle in the run (a span numbers ``bars``)."""
        by_run: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            by_run.setdefault(record.run_id, []).append(i)
        seqs = [0] * len(records)
        for run_id, indexes in by_run.items():
            last_bar = max(_last_bar(records[i]) for i in indexes)
            counts = [_bars(records[i]) for i in indexes]
            total = sum(counts)
            bar = sa.literal(last_bar, _RUNS.c.last_bar_ts.type)
            result = conn.execute(
                _RUNS.update()
                .where(_RUNS.c.run_id == run_id)
                .values(
                    cycles=_RUNS.c.cycles + total,
                    last_bar_ts=sa.case(
                        (sa.or_(_RUNS.c.last_bar_ts.is_(None), _RUNS.c.last_bar_ts < bar), bar),
                        else_=_RUNS.c.last_bar_ts,
                    ),
                )
            )
            if result.rowcount == 0:
                raise StorageError(
                    f"no workflow run {run_id!r}: cannot persist its cycles",
                    hint="call WorkflowStore.start_run() before persisting cycles",
                )
            end = int(
                conn.execute(sa.select(_RUNS.c.cycles).where(_RUNS.c.run_id == run_id)).scalar_one()
            )
            seq = end - total + 1
            for i, count in zip(indexes, counts, strict=True):
                seqs[i] = seq
                seq += count
        return seqs

    def _write_orders_and_fills(self, conn: Connection, record: CycleRecord) -> None:
        cid = record.cycle_id
        if record.orders:
            refused = set(record.rejected)
            rows = [{
                "client_order_id": o.client_order_id, "run_id": o.run_id, "cycle_id": cid,
                "pair": o.pair, "side": o.side, "quantity": o.quantity, "kind": o.kind,
                "role": o.role, "reduce_only": o.reduce_only,
                "status": "rejected" if o.client_order_id in refused else "open",
                "stop_price": o.stop_price, "limit_price": o.limit_price,
                "reference_price": o.reference_price,
                "quote_quantity": getattr(o, "quote_quantity", None),
                "max_cost": getattr(o, "max_cost", None), "filled_quantity": 0.0,
                "created_at": o.created_at, "bar_ts": o.bar_ts, "updated_cycle_id": cid,
            } for o in record.orders]  # fmt: skip
            conn.execute(self._orders_insert, rows)
        if record.fills:
            rows = [{
                "fill_id": f.fill_id, "client_order_id": f.client_order_id,
                "run_id": record.run_id, "cycle_id": cid, "pair": f.pair, "side": f.side,
                "quantity": f.quantity, "price": f.price, "fee": f.fee, "ts": f.ts,
                "reason": f.reason, "position": i,
            } for i, f in enumerate(record.fills)]  # fmt: skip
            try:
                conn.execute(self._fills_insert, rows)
            except sa.exc.IntegrityError as exc:  # an order nobody stored: a caller bug
                raise StorageError(
                    self._db.storage_error(exc, "storing the fills of a cycle in").one_line(),
                    hint="persist every order (in its cycle's record) before its fills",
                ) from exc
            ids = sorted({f.client_order_id for f in record.fills})
            conn.execute(self._order_update, [{"b_oid": i, "b_cid": cid} for i in ids])
            closing = conn.execute(self._closing, {"b_ids": ids}).all()
            for oid, pair in closing:  # OCO: the position is closed, its other exits go
                self._cancel(conn, record.run_id, pair, cid, exclude=oid)
        for order in record.orders:  # a new stop (target) replaces the open one: an adjust
            if order.role in ("stop_loss", "take_profit") and (
                order.client_order_id not in record.rejected
            ):
                self._cancel(conn, record.run_id, order.pair, cid, exclude=order.client_order_id,
                             role=order.role)  # fmt: skip

    def _cancel(
        self, conn: Connection, run_id: str, pair: str, cycle_id: str, *, exclude: str,
        role: str | None = None,
    ) -> None:  # fmt: skip
        """Cancel the live reduce-only orders of the run and pair but ``exclude`` (of ``role``)."""
        params = {"b_run": run_id, "b_pair": pair, "b_keep": exclude, "b_cid": cycle_id}
        if role is None:
            conn.execute(self._cancel_any, params)
        else:
            conn.execute(self._cancel_role, {**params, "b_role": role})

    def _write_positions(self, conn: Connection, records: Sequence[AnyCycle]) -> None:
        last: dict[str, AnyCycle] = {}
        for record in records:
            if record.equity is not None:
                last[record.run_id] = record
        for run_id, record in last.items():
            conn.execute(_POSITIONS.delete().where(_POSITIONS.c.run_id == run_id))
            if record.positions:
                conn.execute(_POSITIONS.insert(), [{
                    "run_id": run_id, "pair": p.pair, "cycle_id": record.cycle_id,
                    "side": p.side, "quantity": p.quantity, "entry_price": p.entry_price,
                    "mark_price": p.mark_price, "stop_loss": p.stop_loss,
                    "take_profit": p.take_profit, "unrealized_pnl": p.unrealized_pnl,
                    "opened_at": p.opened_at, "bar_ts": record.bar_ts,
                } for p in {q.pair: q for q in record.positions}.values()])  # fmt: skip

    def _write_states(
        self,
        conn: Connection,
        todo: Sequence[tuple[AnyCycle, Mapping[str, Any] | None]],
        seqs: Sequence[int],
        now: datetime,
    ) -> None:
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for (record, state), seq in zip(todo, seqs, strict=True):
            if state is None:
                continue
            latest[(record.run_id, record.pair)] = {
                "run_id": record.run_id, "pair": record.pair, "cycle_id": record.cycle_id,
                "seq": seq, "bar_ts": record.bar_ts, "state": dict(state), "updated_at": now,
            }  # fmt: skip
        if not latest:
            return
        stmt = self._insert(_STATE)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_STATE.c.run_id, _STATE.c.pair],
            set_={name: stmt.excluded[name] for name in
                  ("cycle_id", "seq", "bar_ts", "state", "updated_at")},
        )  # fmt: skip
        conn.execute(stmt, list(latest.values()))

    # -- reads --------------------------------------------------------------------------------

    def last_state(self, run_id: str) -> ResumePoint:
        """The newest persisted bar per pair and the latest resume states of run ``run_id``."""
        with self._db.session(readonly=True) as s:
            conn = s.connection()
            bars = conn.execute(
                sa.select(_CYCLES.c.pair, sa.func.max(_LAST_BAR, type_=_CYCLES.c.bar_ts.type))
                .where(_CYCLES.c.run_id == run_id)
                .group_by(_CYCLES.c.pair)
            ).all()
            states = conn.execute(
                sa.select(_STATE.c.pair, _STATE.c.state)
                .where(_STATE.c.run_id == run_id)
                .order_by(_STATE.c.seq, _STATE.c.pair)
            ).all()
        return ResumePoint(
            {pair: ts for pair, ts in bars}, {pair: dict(state) for pair, state in states}
        )

    def _all(self, query: sa.Select[Any]) -> list[Any]:
        with self._db.session(readonly=True) as s:
            return list(s.connection().execute(query).all())

    def cycles(
        self,
        run_id: str,
        pair: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[StoredCycle]:
        """The cycles of a run in persist order (``seq``), optionally of one pair.

        Args:
            run_id: the run.
            pair: only this market.
            since: only bars opened at or after this time.
            until: only bars opened before this time.
            limit: at most this many (the first ones, or the newest with ``newest_first``).
            newest_first: newest first.
        """
        _aware("since", since)
        _aware("until", until)
        query = sa.select(_CYCLES).where(_CYCLES.c.run_id == run_id)
        if pair is not None:
            query = query.where(_CYCLES.c.pair == pair)
        if since is not None:
            query = query.where(_CYCLES.c.bar_ts >= since)
        if until is not None:
            query = query.where(_CYCLES.c.bar_ts < until)
        query = query.order_by(_CYCLES.c.seq.desc() if newest_first else _CYCLES.c.seq)
        if limit is not None:
            query = query.limit(limit)
        return [make(StoredCycle, r) for r in self._all(query)]

    def last_cycles(self, run_id: str) -> dict[str, StoredCycle]:
        """The newest cycle of each pair of the run (of a span: its last bar, see
        :meth:`StoredCycle.last`)."""
        newest = (
            sa.select(_CYCLES.c.pair, sa.func.max(_CYCLES.c.seq).label("seq"))
            .where(_CYCLES.c.run_id == run_id)
            .group_by(_CYCLES.c.pair)
            .subquery()
        )
        query = (
            sa.select(_CYCLES)
            .join(newest, sa.and_(_CYCLES.c.pair == newest.c.pair, _CYCLES.c.seq == newest.c.seq))
            .where(_CYCLES.c.run_id == run_id)
            .order_by(_CYCLES.c.pair)
        )
        return {r.pair: make(StoredCycle, r).last() for r in self._all(query)}

    def last_supervised_cycle(self, run_id: str) -> StoredCycle | None:
        """The newest cycle of the run whose supervision is recorded, or ``None``."""
        query = (
            sa.select(_CYCLES)
            .where(_CYCLES.c.run_id == run_id, _CYCLES.c.llm_verdict.is_not(None))
            .order_by(_CYCLES.c.seq.desc())
            .limit(1)
        )
        rows = self._all(query)
        return make(StoredCycle, rows[0]) if rows else None

    def equity(self, run_id: str) -> list[tuple[datetime, int, float, float, float, float, float,
                                                 str | None]]:  # fmt: skip
        """The account after each marked cycle of the run, in persist order, as tuples
        ``(bar_ts, seq, equity, cash, realized_pnl, unrealized_pnl, drawdown, risk_state)``
        (a light read for equity curves: no JSON documents). A span of quiet cycles gives one
        tuple per bar (its ``seq`` each; see :class:`QuietCycle`)."""
        c = _CYCLES.c
        query = (
            sa.select(
                c.bar_ts,
                c.seq,
                c.equity,
                c.cash,
                c.realized_pnl,
                c.unrealized_pnl,
                c.drawdown,
                c.risk_state,
                c.bars,
                c.last_bar_ts,
            )
            .where(c.run_id == run_id, c.equity.is_not(None))
            .order_by(c.seq)
        )
        out: list[Any] = []
        for row in self._all(query):
            bars, last = row[8], row[9]
            if bars <= 1 or last is None:
                out.append(tuple(row[:8]))
                continue
            rest = tuple(row[1:8])
            out.extend((ts, *rest) for ts in span_times(row[0], last, bars))
        return out

    def last_account(self, run_id: str) -> dict[str, Any] | None:
        """The account after the newest marked cycle of the run (one row read), or None:
        ``bar_ts``, ``equity``, ``cash``, ``realized_pnl``, ``unrealized_pnl``, ``fees``,
        ``drawdown``, ``risk_state``."""
        c = _CYCLES.c
        columns = (_LAST_BAR.label("bar_ts"), c.equity, c.cash, c.realized_pnl,
                   c.unrealized_pnl, c.fees, c.drawdown, c.risk_state)  # fmt: skip
        query = (
            sa.select(*columns)
            .where(c.run_id == run_id, c.equity.is_not(None))
            .order_by(c.seq.desc())
            .limit(1)
        )
        rows = self._all(query)
        return None if not rows else dict(zip((col.name for col in columns), rows[0], strict=True))

    def orders(
        self,
        run_id: str,
        *,
        pair: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[StoredOrder]:
        """The orders of a run, oldest first, optionally of one pair or status."""
        if status is not None and status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ORDER_STATUSES)}; got {status!r}")
        query = sa.select(_ORDERS).where(_ORDERS.c.run_id == run_id)
        if pair is not None:
            query = query.where(_ORDERS.c.pair == pair)
        if status is not None:
            query = query.where(_ORDERS.c.status == status)
        query = query.order_by(_ORDERS.c.created_at, _ORDERS.c.client_order_id)
        if limit is not None:
            query = query.limit(limit)
        return [make(StoredOrder, r) for r in self._all(query)]

    def fills(
        self, run_id: str, *, pair: str | None = None, limit: int | None = None
    ) -> list[StoredFill]:
        """The fills of a run in the order they happened (time, then the broker's order within
        a bar), optionally of one pair."""
        query = sa.select(_FILLS).where(_FILLS.c.run_id == run_id)
        if pair is not None:
            query = query.where(_FILLS.c.pair == pair)
        query = query.order_by(_FILLS.c.ts, _FILLS.c.position, _FILLS.c.fill_id)
        if limit is not None:
            query = query.limit(limit)
        return [make(StoredFill, r) for r in self._all(query)]

    def order_origins(self, run_id: str) -> dict[str, tuple[str, str | None]]:
        """``client order id -> (strategy, llm_verdict)`` of the cycle that placed each order of
        role ``open`` (for attributing trades to a strategy and to the supervisor's verdict)."""
        query = (
            sa.select(_ORDERS.c.client_order_id, _CYCLES.c.strategy, _CYCLES.c.llm_verdict)
            .join(_CYCLES, _CYCLES.c.cycle_id == _ORDERS.c.cycle_id)
            .where(_ORDERS.c.run_id == run_id, _ORDERS.c.role == "open")
        )
        return {oid: (strategy, verdict) for oid, strategy, verdict in self._all(query)}

    def positions(self, run_id: str) -> list[StoredPosition]:
        """The open positions of a run as of its latest marked cycle, by pair."""
        query = (
            sa.select(_POSITIONS).where(_POSITIONS.c.run_id == run_id).order_by(_POSITIONS.c.pair)
        )
        return [make(StoredPosition, r) for r in self._all(query)]

    def errors(
        self, run_id: str | None = None, *, since: datetime | None = None, limit: int = 100
    ) -> list[StoredCycleError]:
        """Step errors, newest first, of one run or all, persisted at or after ``since``."""
        _aware("since", since)
        e = _ERRORS.c
        query = sa.select(
            e.cycle_id, e.run_id, e.pair, e.bar_ts, e.step, e.error_type, e.message, e.outcome,
            e.attempts, e.created_at,
        )  # fmt: skip
        if run_id is not None:
            query = query.where(e.run_id == run_id)
        if since is not None:
            query = query.where(e.created_at >= since)
        query = query.order_by(e.created_at.desc(), e.id.desc()).limit(limit)
        return [make(StoredCycleError, r) for r in self._all(query)]

    def count_errors(self, *, since: datetime, run_id: str | None = None) -> int:
        """The number of step errors persisted at or after ``since`` (of one run or all)."""
        _aware("since", since)
        query = sa.select(sa.func.count()).select_from(_ERRORS).where(_ERRORS.c.created_at >= since)
        if run_id is not None:
            query = query.where(_ERRORS.c.run_id == run_id)
        return int(self._all(query)[0][0])
