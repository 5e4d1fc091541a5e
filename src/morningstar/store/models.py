"""SQLAlchemy 2 ORM models of the Morningstar database.

Every timestamp column is a :class:`UTCDateTime`: stored as ``TIMESTAMP WITH TIME ZONE`` on
PostgreSQL and as naive UTC text on SQLite, and always read back as a timezone-aware UTC
:class:`~datetime.datetime`. Naive datetimes are refused on write, so a local time can never be
stored by mistake.

Constraint and index names follow :data:`NAMING_CONVENTION`, so a later migration can drop or alter
them by name on both engines (SQLite needs names for Alembic's batch mode).

These classes are the storage schema only; read methods of
:mod:`morningstar.store.repositories` return plain dataclasses, never these objects. A change here
needs a new migration in ``store/migrations/versions`` (see :mod:`morningstar.store`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ISSUE_SEVERITIES",
    "LLM_CALL_STATUSES",
    "NAMING_CONVENTION",
    "ORDER_STATUSES",
    "RUN_STATUSES",
    "VALIDATION_STATUSES",
    "WORKFLOW_MODES",
    "WORKFLOW_RUN_STATUSES",
    "Base",
    "CliRunRow",
    "CycleErrorRow",
    "CycleRow",
    "DataImportRow",
    "FillRow",
    "JSONDocument",
    "LLMCacheRow",
    "LLMCallRow",
    "OrderRow",
    "PositionRow",
    "UTCDateTime",
    "ValidationIssueRow",
    "ValidationReportRow",
    "WorkflowRunRow",
    "WorkflowStateRow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "ok", "error")
VALIDATION_STATUSES = ("clean", "warnings", "errors")
ISSUE_SEVERITIES = ("error", "warning", "info")
#: Outcome of one LLM call (``status`` of :class:`LLMCallRow`).
LLM_CALL_STATUSES = (
    "ok",
    "timeout",
    "rate_limited",
    "transport_error",
    "provider_error",
    "invalid_output",
    "budget",
    "cache_miss",
    "cancelled",
)


#: Modes of a workflow run (``mode`` of :class:`WorkflowRunRow`).
WORKFLOW_MODES = ("backtest", "paper", "live")
#: States of a workflow run.
WORKFLOW_RUN_STATUSES = ("running", "finished", "failed", "stopped")
#: States of a stored order (``core.orders.OrderStatus``).
ORDER_STATUSES = ("new", "open", "filled", "cancelled", "rejected")


def _in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({listed})"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine.

    Writes convert any aware datetime to UTC (naive values raise :class:`ValueError`); reads
    return aware UTC datetimes, also on SQLite, which has no time-zone type.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC text on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


def _finite(value: Any) -> Any:
    """``value`` with every NaN / infinity replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def dumps_json(value: Any) -> str:
    """Compact JSON of ``value``; NaN and infinities become ``null`` (PostgreSQL refuses them)."""
    try:
        return _ENCODE(value)
    except ValueError:
        return _ENCODE(_finite(value))


class JSONDocument(sa.TypeDecorator[Any]):
    """A JSON column whose ``None`` is SQL ``NULL`` and whose NaN / infinities are stored as null.

    Python ``None`` is SQL ``NULL`` (not the JSON ``null``), so ``IS NULL`` finds absent
    documents. On SQLite the value is serialised once, compactly, by :func:`dumps_json`.
    """

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """SQLite: one compact ``json.dumps``; other engines: the driver's JSON adaptation."""
        if dialect.name == "sqlite":
            return _sqlite_json_bind
        return super().bind_processor(dialect)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Replace non-finite floats by ``None`` (engines other than SQLite)."""
        return None if value is None else _finite(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Return the decoded document unchanged."""
        return value


def _sqlite_json_bind(value: Any) -> str | None:
    return None if value is None else dumps_json(value)


class Base(DeclarativeBase):
    """Declarative base of every Morningstar table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), list[Any]: sa.JSON()}


class CliRunRow(Base):
    """One invocation of a ``morningstar`` command."""

    __tablename__ = "cli_runs"
    __table_args__ = (sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    command: Mapped[str] = mapped_column(sa.String(200))
    argv: Mapped[list[Any]] = mapped_column(sa.JSON())
    status: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.Text())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[str] = mapped_column(sa.String(64))


class DataImportRow(Base):
    """One import of market data into the Parquet store (CSV, download, demo, resample)."""

    __tablename__ = "data_imports"
    __table_args__ = (sa.Index(None, "venue", "pair", "timeframe"),)

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(
        sa.String(32), sa.ForeignKey("cli_runs.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    source: Mapped[str] = mapped_column(sa.Text())
    venue: Mapped[str] = mapped_column(sa.String(64))
    pair: Mapped[str] = mapped_column(sa.String(64))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    rows_read: Mapped[int] = mapped_column(sa.BigInteger())
    rows_stored: Mapped[int] = mapped_column(sa.BigInteger())
    rows_added: Mapped[int] = mapped_column(sa.BigInteger())
    first_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ValidationReportRow(Base):
    """The summary of one validation of a bar frame against the OHLCV contract."""

    __tablename__ = "validation_reports"
    __table_args__ = (sa.CheckConstraint(_in("status", VALIDATION_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    import_id: Mapped[int | None] = mapped_column(
        sa.Integer(), sa.ForeignKey("data_imports.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(sa.Text())
    venue: Mapped[str | None] = mapped_column(sa.String(64))
    pair: Mapped[str | None] = mapped_column(sa.String(64))
    timeframe: Mapped[str | None] = mapped_column(sa.String(16))
    calendar: Mapped[str] = mapped_column(sa.String(32))
    bars_in: Mapped[int] = mapped_column(sa.BigInteger())
    bars_out: Mapped[int] = mapped_column(sa.BigInteger())
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    issues: Mapped[list[ValidationIssueRow]] = relationship(
        back_populates="report",
        order_by="ValidationIssueRow.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ValidationIssueRow(Base):
    """One failed check of a validation report, with what the policy did about it."""

    __tablename__ = "validation_issues"
    __table_args__ = (sa.CheckConstraint(_in("severity", ISSUE_SEVERITIES), name="severity"),)

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(
        sa.Integer(), sa.ForeignKey("validation_reports.id", ondelete="CASCADE"), index=True
    )
    check: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    policy: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(64))
    count: Mapped[int] = mapped_column(sa.BigInteger())
    first_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    examples: Mapped[list[Any]] = mapped_column(sa.JSON())

    report: Mapped[ValidationReportRow] = relationship(back_populates="issues")


class LLMCallRow(Base):
    """One LLM call through the gateway, as the monitor traced it.

    Token counts are NULL when the provider did not report them ("absent", never 0), and
    ``cost_usd`` is NULL when the model has no price ("price unknown"); ``price_status`` says
    which (``priced``, ``free`` for local models, ``unknown``).
    """

    __tablename__ = "llm_calls"
    __table_args__ = (
        sa.CheckConstraint(_in("status", LLM_CALL_STATUSES), name="status"),
        # the history is read newest first by (started_at, id): these indexes give that order
        # without a sort, also under a filter and for deep pages
        sa.Index(None, "started_at", "id"),
        sa.Index(None, "model", "started_at", "id"),
        sa.Index(None, "caller", "started_at", "id"),
        sa.Index(None, "status", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    provider: Mapped[str] = mapped_column(sa.String(32))
    model: Mapped[str] = mapped_column(sa.String(128))
    caller: Mapped[str] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(32))
    template_id: Mapped[str | None] = mapped_column(sa.String(128))
    template_version: Mapped[int | None] = mapped_column(sa.Integer())
    status: Mapped[str] = mapped_column(sa.String(24))
    error_type: Mapped[str | None] = mapped_column(sa.String(128))
    error_message: Mapped[str | None] = mapped_column(sa.Text())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    latency_s: Mapped[float] = mapped_column(sa.Float())
    ttft_s: Mapped[float | None] = mapped_column(sa.Float())
    input_tokens: Mapped[int | None] = mapped_column(sa.BigInteger())
    output_tokens: Mapped[int | None] = mapped_column(sa.BigInteger())
    cached_input_tokens: Mapped[int | None] = mapped_column(sa.BigInteger())
    cost_usd: Mapped[float | None] = mapped_column(sa.Float())
    price_status: Mapped[str] = mapped_column(sa.String(16))
    cache_hit: Mapped[bool] = mapped_column(sa.Boolean())
    retries: Mapped[int] = mapped_column(sa.Integer())
    streamed: Mapped[bool] = mapped_column(sa.Boolean())
    cache_key: Mapped[str | None] = mapped_column(sa.String(64))
    prompt: Mapped[str | None] = mapped_column(sa.Text())
    response: Mapped[str | None] = mapped_column(sa.Text())


class LLMCacheRow(Base):
    """One recorded LLM answer of the replay cache, keyed by the hash of the request."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(sa.String(128))
    template_version: Mapped[int] = mapped_column(sa.Integer())
    provider: Mapped[str] = mapped_column(sa.String(32))
    model: Mapped[str] = mapped_column(sa.String(128))
    request: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    raw_text: Mapped[str] = mapped_column(sa.Text())
    parsed: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    usage: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    latency_s: Mapped[float] = mapped_column(sa.Float())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- trading workflow (issue 6) ---------------------------------------------------------------
#
# One row per run in ``workflow_runs``; one row per (run, pair, closed bar) in ``cycles``, which
# also holds the account after the cycle (the equity snapshot is folded into the cycle: one
# write per cycle, and the equity curve is a range scan of the run's cycles). ``orders`` and
# ``fills`` are keyed by their deterministic ids; ``positions`` holds the LATEST open positions of
# each run (replaced at every persisted cycle); ``workflow_state`` the latest resume state per
# (run, pair). ``seq`` numbers a run's cycles in the order they were persisted.


class WorkflowRunRow(Base):
    """One run of the trading workflow (backtest, paper or live)."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        sa.CheckConstraint(_in("mode", WORKFLOW_MODES), name="mode"),
        sa.CheckConstraint(_in("status", WORKFLOW_RUN_STATUSES), name="status"),
    )

    run_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(sa.String(16))
    strategy: Mapped[str] = mapped_column(sa.String(200))
    pairs: Mapped[Any] = mapped_column(JSONDocument(), nullable=False)
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    calendar: Mapped[str] = mapped_column(sa.String(16))
    config: Mapped[Any] = mapped_column(JSONDocument(), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_bar_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cycles: Mapped[int] = mapped_column(sa.BigInteger())
    error: Mapped[str | None] = mapped_column(sa.Text())


class CycleRow(Base):
    """One cycle (pair, closed bar) of a run, with the account after it — or a span of
    consecutive quiet cycles of a backtest (``bars`` > 1)."""

    __tablename__ = "cycles"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "pair", "bar_ts"),
        sa.Index(None, "run_id", "seq"),
    )

    cycle_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("workflow_runs.run_id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger())
    pair: Mapped[str] = mapped_column(sa.String(64))
    bar_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    strategy: Mapped[str] = mapped_column(sa.String(200))
    prediction: Mapped[Any] = mapped_column(JSONDocument(), nullable=True)
    supervision: Mapped[Any] = mapped_column(JSONDocument(), nullable=True)
    decision: Mapped[Any] = mapped_column(JSONDocument(), nullable=True)
    action: Mapped[str | None] = mapped_column(sa.String(16))
    llm_verdict: Mapped[str | None] = mapped_column(sa.String(16))
    equity: Mapped[float | None] = mapped_column(sa.Float())
    cash: Mapped[float | None] = mapped_column(sa.Float())
    realized_pnl: Mapped[float | None] = mapped_column(sa.Float())
    unrealized_pnl: Mapped[float | None] = mapped_column(sa.Float())
    fees: Mapped[float | None] = mapped_column(sa.Float())
    drawdown: Mapped[float | None] = mapped_column(sa.Float())
    risk_state: Mapped[str | None] = mapped_column(sa.String(16))
    timings: Mapped[Any] = mapped_column(JSONDocument(), nullable=False)
    errors: Mapped[int] = mapped_column(sa.Integer())
    persisted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # a backtest span of quiet cycles (revision 0005): ``bars`` cycles of ``pair``, one per bar
    # from ``bar_ts`` to ``last_bar_ts``, each with this account; 1 and NULL for other rows
    bars: Mapped[int] = mapped_column(sa.Integer(), server_default="1")
    last_bar_ts: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CycleErrorRow(Base):
    """One step error of a cycle and what its policy did."""

    __tablename__ = "cycle_errors"
    __table_args__ = (
        sa.UniqueConstraint("cycle_id", "position"),
        sa.Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("cycles.cycle_id", ondelete="CASCADE")
    )
    run_id: Mapped[str] = mapped_column(sa.String(32))
    position: Mapped[int] = mapped_column(sa.Integer())
    pair: Mapped[str] = mapped_column(sa.String(64))
    bar_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    step: Mapped[str] = mapped_column(sa.String(16))
    error_type: Mapped[str] = mapped_column(sa.String(128))
    message: Mapped[str] = mapped_column(sa.Text())
    outcome: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderRow(Base):
    """One order, keyed by its deterministic client order id; its status follows its fills."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        sa.Index(None, "run_id", "pair", "status"),
        sa.Index(None, "run_id", "created_at"),
    )

    client_order_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("workflow_runs.run_id", ondelete="CASCADE")
    )
    cycle_id: Mapped[str | None] = mapped_column(sa.String(32))
    pair: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[float] = mapped_column(sa.Float())
    kind: Mapped[str] = mapped_column(sa.String(8))
    role: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    reduce_only: Mapped[bool] = mapped_column(sa.Boolean())
    stop_price: Mapped[float | None] = mapped_column(sa.Float())
    limit_price: Mapped[float | None] = mapped_column(sa.Float())
    reference_price: Mapped[float | None] = mapped_column(sa.Float())
    quote_quantity: Mapped[float | None] = mapped_column(sa.Float())
    max_cost: Mapped[float | None] = mapped_column(sa.Float())
    filled_quantity: Mapped[float] = mapped_column(sa.Float())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bar_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_cycle_id: Mapped[str | None] = mapped_column(sa.String(32))


class FillRow(Base):
    """One execution of an order, inserted once by its id."""

    __tablename__ = "fills"
    __table_args__ = (sa.Index(None, "run_id", "ts"),)

    fill_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("orders.client_order_id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[str] = mapped_column(sa.String(32))
    cycle_id: Mapped[str] = mapped_column(sa.String(32))
    pair: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[float] = mapped_column(sa.Float())
    price: Mapped[float] = mapped_column(sa.Float())
    fee: Mapped[float] = mapped_column(sa.Float())
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(sa.String(16))
    # its place among the fills its cycle reported, in the broker's order (revision 0005): fills
    # of one bar share ``ts`` (an entry at the open, then its stop inside the bar)
    position: Mapped[int] = mapped_column(sa.Integer(), server_default="0")


class PositionRow(Base):
    """The latest open position of a run on a pair (rows replaced at every persisted cycle)."""

    __tablename__ = "positions"

    run_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("workflow_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    pair: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    cycle_id: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[int] = mapped_column(sa.SmallInteger())
    quantity: Mapped[float] = mapped_column(sa.Float())
    entry_price: Mapped[float] = mapped_column(sa.Float())
    mark_price: Mapped[float] = mapped_column(sa.Float())
    stop_loss: Mapped[float | None] = mapped_column(sa.Float())
    take_profit: Mapped[float | None] = mapped_column(sa.Float())
    unrealized_pnl: Mapped[float] = mapped_column(sa.Float())
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bar_ts: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkflowStateRow(Base):
    """The latest resume state (broker, ledger, risk engine) of a run, per pair."""

    __tablename__ = "workflow_state"

    run_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("workflow_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    pair: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    cycle_id: Mapped[str] = mapped_column(sa.String(32))
    seq: Mapped[int] = mapped_column(sa.BigInteger())
    bar_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[Any] = mapped_column(JSONDocument(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
