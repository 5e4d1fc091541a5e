"""Repositories: typed reads and writes of the Morningstar tables.

Each repository wraps one :class:`~sqlalchemy.orm.Session` (one transaction, from
:meth:`Database.session`) and a clock ``now`` returning aware UTC datetimes; none of them calls
``datetime.now()`` itself. Read methods return frozen dataclasses, never ORM objects, so callers
can use them after the session is closed. Several repositories may share a session to write
atomically (e.g. a data import and its validation report)::

    with db.session() as s:
        import_id = DataImportRepository(s, now=db.now).record(...)
        ValidationRepository(s, now=db.now).record(report, import_id=import_id)

Invalid arguments (an unknown status or kind, a negative count) raise :class:`ValueError`: they
are programming errors of the caller. Database failures surface as
:class:`~morningstar.errors.StorageError` from :meth:`Database.session`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from morningstar.errors import StorageError
from morningstar.logs import redact
from morningstar.store.db import SESSION_CLOCK_KEY, Database, utc_now
from morningstar.store.models import (
    ISSUE_SEVERITIES,
    RUN_STATUSES,
    VALIDATION_STATUSES,
    CliRunRow,
    DataImportRow,
    ValidationIssueRow,
    ValidationReportRow,
)

__all__ = [
    "IMPORT_KINDS",
    "CliRun",
    "DataImport",
    "DataImportRepository",
    "IssueRecord",
    "RunRepository",
    "StoredValidationReport",
    "ValidationRecord",
    "ValidationRepository",
    "record_cli_run",
]

logger = logging.getLogger(__name__)

IMPORT_KINDS = ("csv", "download", "demo", "resample")

Clock = Callable[[], datetime]


def _clock(session: Session, now: Clock | None) -> Clock:
    """The clock given, else the one of the :class:`Database` that opened the session."""
    if now is not None:
        return now
    clock = session.info.get(SESSION_CLOCK_KEY)
    return clock if callable(clock) else utc_now


def _one_of(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _non_negative(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0; got {value}")


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware (UTC); got naive {value.isoformat()}")
    return value


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be >= 1; got {limit}")
    return limit


def _json_default(value: Any) -> Any:
    """Make numpy / pandas scalars and datetimes JSON-serialisable."""
    if hasattr(value, "isoformat"):  # datetime, date, pandas.Timestamp
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


# -- CLI runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    """One stored invocation of a ``morningstar`` command."""

    id: str
    command: str
    argv: tuple[str, ...]
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    version: str


def _cli_run(row: CliRunRow) -> CliRun:
    return CliRun(
        id=row.id,
        command=row.command,
        argv=tuple(str(a) for a in row.argv),
        status=row.status,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
        version=row.version,
    )


class RunRepository:
    """The ``cli_runs`` table: one row per command invocation.

    Args:
        session: the session (transaction) to work in.
        now: clock returning aware UTC datetimes; by default the ``now`` of the
            :class:`Database` whose :meth:`~Database.session` opened ``session``.
    """

    def __init__(self, session: Session, *, now: Clock | None = None) -> None:
        self._session = session
        self._now = _clock(session, now)

    def start(
        self, command: str, argv: Sequence[str], version: str, *, run_id: str | None = None
    ) -> str:
        """Record that ``command`` started with arguments ``argv``; return the run id.

        Args:
            command: the command name, e.g. ``"data import"``.
            argv: the arguments as typed (stored as a JSON list, secret-looking values masked).
            version: the Morningstar version running the command.
            run_id: an id to use (32 hex chars); a random UUID hex by default.
        """
        rid = run_id if run_id is not None else uuid.uuid4().hex
        self._session.add(
            CliRunRow(
                id=rid,
                command=command,
                argv=[redact(str(a)) for a in argv],
                status="running",
                error=None,
                started_at=self._now(),
                finished_at=None,
                version=version,
            )
        )
        self._session.flush()
        return rid

    def finish(self, run_id: str, status: str, error: str | None = None) -> None:
        """Mark run ``run_id`` finished with ``status`` (``"ok"`` or ``"error"``) now.

        Raises:
            ValueError: ``status`` is not a final status.
            StorageError: no run has this id.
        """
        _one_of("status", status, RUN_STATUSES[1:])
        row = self._session.get(CliRunRow, run_id)
        if row is None:
            raise StorageError(
                f"no CLI run with id {run_id!r}", hint="pass the id returned by start()"
            )
        row.status = status
        row.error = redact(error) if error is not None else None
        row.finished_at = self._now()
        self._session.flush()

    def get(self, run_id: str) -> CliRun | None:
        """Return run ``run_id``, or ``None``."""
        row = self._session.get(CliRunRow, run_id)
        return _cli_run(row) if row is not None else None

    def recent(self, limit: int = 20, *, command: str | None = None) -> list[CliRun]:
        """Return the latest runs, newest first, optionally only of ``command``."""
        query = sa.select(CliRunRow).order_by(CliRunRow.started_at.desc(), CliRunRow.id.desc())
        if command is not None:
            query = query.where(CliRunRow.command == command)
        return [_cli_run(r) for r in self._session.scalars(query.limit(_limit(limit)))]


@contextmanager
def record_cli_run(db: Database, command: str, argv: Sequence[str], version: str) -> Iterator[str]:
    """Record a command run around a block: ``running`` at entry, ``ok`` or ``error`` at exit.

    Each state change is its own committed transaction, so the run stays visible even when the
    block fails; the block's exception propagates unchanged after the run is marked ``error``
    with its one-line message.

    Yields:
        The run id, to link data imports and other rows to this run.
    """
    with db.session() as s:
        run_id = RunRepository(s, now=db.now).start(command, argv, version)
    try:
        yield run_id
    except BaseException as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        try:
            with db.session() as s:
                RunRepository(s, now=db.now).finish(run_id, "error", message)
        except StorageError:
            logger.warning("could not mark CLI run %s as failed", run_id, exc_info=True)
        raise
    with db.session() as s:
        RunRepository(s, now=db.now).finish(run_id, "ok")


# -- data imports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataImport:
    """One stored import of market data into the Parquet store."""

    id: int
    run_id: str | None
    kind: str
    source: str
    venue: str
    pair: str
    timeframe: str
    rows_read: int
    rows_stored: int
    rows_added: int
    first_ts: datetime | None
    last_ts: datetime | None
    content_sha256: str | None
    created_at: datetime


def _data_import(row: DataImportRow) -> DataImport:
    return DataImport(
        id=row.id,
        run_id=row.run_id,
        kind=row.kind,
        source=row.source,
        venue=row.venue,
        pair=row.pair,
        timeframe=row.timeframe,
        rows_read=row.rows_read,
        rows_stored=row.rows_stored,
        rows_added=row.rows_added,
        first_ts=row.first_ts,
        last_ts=row.last_ts,
        content_sha256=row.content_sha256,
        created_at=row.created_at,
    )


class DataImportRepository:
    """The ``data_imports`` table: one row per import of bars into the Parquet store.

    Args:
        session: the session (transaction) to work in.
        now: clock returning aware UTC datetimes (``created_at``); by default the ``now`` of
            the :class:`Database` whose :meth:`~Database.session` opened ``session``.
    """

    def __init__(self, session: Session, *, now: Clock | None = None) -> None:
        self._session = session
        self._now = _clock(session, now)

    def record(
        self,
        *,
        kind: str,
        source: str,
        venue: str,
        pair: str,
        timeframe: str,
        rows_read: int,
        rows_stored: int,
        rows_added: int,
        first_ts: datetime | None = None,
        last_ts: datetime | None = None,
        content_sha256: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """Store one import and return its id.

        Args:
            kind: ``"csv"``, ``"download"``, ``"demo"`` or ``"resample"``.
            source: the file path, exchange id or URL the bars came from.
            venue: venue of the stored dataset (e.g. ``"binance"``).
            pair: pair of the stored dataset (e.g. ``"BTC/USDT"``).
            timeframe: timeframe of the stored dataset (e.g. ``"1h"``).
            rows_read: bars read from the source.
            rows_stored: bars in the stored dataset after the import.
            rows_added: bars the import added to the dataset (replaced bars not counted).
            first_ts: first bar timestamp imported (aware), if any.
            last_ts: last bar timestamp imported (aware), if any.
            content_sha256: hex SHA-256 of the source file, when it is a file.
            run_id: the CLI run that imported, if any.

        Raises:
            ValueError: unknown ``kind``, a negative count or a naive timestamp.
        """
        _one_of("kind", kind, IMPORT_KINDS)
        _non_negative(rows_read=rows_read, rows_stored=rows_stored, rows_added=rows_added)
        _aware("first_ts", first_ts)
        _aware("last_ts", last_ts)
        row = DataImportRow(
            run_id=run_id,
            kind=kind,
            source=source,
            venue=venue,
            pair=pair,
            timeframe=timeframe,
            rows_read=rows_read,
            rows_stored=rows_stored,
            rows_added=rows_added,
            first_ts=first_ts,
            last_ts=last_ts,
            content_sha256=content_sha256,
            created_at=self._now(),
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def get(self, import_id: int) -> DataImport | None:
        """Return import ``import_id``, or ``None``."""
        row = self._session.get(DataImportRow, import_id)
        return _data_import(row) if row is not None else None

    def recent(self, limit: int = 20) -> list[DataImport]:
        """Return the latest imports, newest first."""
        query = (
            sa.select(DataImportRow)
            .order_by(DataImportRow.created_at.desc(), DataImportRow.id.desc())
            .limit(_limit(limit))
        )
        return [_data_import(r) for r in self._session.scalars(query)]

    def for_dataset(self, venue: str, pair: str, timeframe: str) -> list[DataImport]:
        """Return every import into one dataset (venue, pair, timeframe), newest first."""
        query = (
            sa.select(DataImportRow)
            .where(
                DataImportRow.venue == venue,
                DataImportRow.pair == pair,
                DataImportRow.timeframe == timeframe,
            )
            .order_by(DataImportRow.created_at.desc(), DataImportRow.id.desc())
        )
        return [_data_import(r) for r in self._session.scalars(query)]


# -- validation reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueRecord:
    """One failed check of a validation report.

    Attributes:
        check: the check's name (e.g. ``"duplicate_timestamps"``).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        policy: the policy applied (e.g. ``"drop"``, ``"error"``, ``"warn"``).
        action: what was done (e.g. ``"dropped 3 rows"``).
        count: how many bars the check flagged.
        first_ts: timestamp of the first flagged bar (aware), if any.
        examples: a few small JSON-able dicts showing flagged bars; datetimes and numpy / pandas
            scalars are converted to JSON text / numbers when stored.
    """

    check: str
    severity: str
    policy: str
    action: str
    count: int
    first_ts: datetime | None = None
    examples: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class ValidationRecord:
    """A validation report as stored: summary columns plus its issues."""

    source: str
    calendar: str
    bars_in: int
    bars_out: int
    status: str
    venue: str | None = None
    pair: str | None = None
    timeframe: str | None = None
    issues: tuple[IssueRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class StoredValidationReport:
    """A validation report read back from the database."""

    id: int
    import_id: int | None
    created_at: datetime
    report: ValidationRecord


def _stored_report(row: ValidationReportRow) -> StoredValidationReport:
    issues = tuple(
        IssueRecord(
            check=i.check,
            severity=i.severity,
            policy=i.policy,
            action=i.action,
            count=i.count,
            first_ts=i.first_ts,
            examples=tuple(dict(e) for e in i.examples),
        )
        for i in row.issues
    )
    return StoredValidationReport(
        id=row.id,
        import_id=row.import_id,
        created_at=row.created_at,
        report=ValidationRecord(
            source=row.source,
            calendar=row.calendar,
            bars_in=row.bars_in,
            bars_out=row.bars_out,
            status=row.status,
            venue=row.venue,
            pair=row.pair,
            timeframe=row.timeframe,
            issues=issues,
        ),
    )


class ValidationRepository:
    """The ``validation_reports`` and ``validation_issues`` tables.

    Args:
        session: the session (transaction) to work in.
        now: clock returning aware UTC datetimes (``created_at``); by default the ``now`` of
            the :class:`Database` whose :meth:`~Database.session` opened ``session``.
    """

    def __init__(self, session: Session, *, now: Clock | None = None) -> None:
        self._session = session
        self._now = _clock(session, now)

    def record(self, report: ValidationRecord, import_id: int | None = None) -> int:
        """Store ``report`` with its issues, optionally linked to a data import; return its id.

        Raises:
            ValueError: unknown status or severity, a negative count or a naive timestamp.
        """
        _one_of("status", report.status, VALIDATION_STATUSES)
        _non_negative(bars_in=report.bars_in, bars_out=report.bars_out)
        row = ValidationReportRow(
            import_id=import_id,
            source=report.source,
            venue=report.venue,
            pair=report.pair,
            timeframe=report.timeframe,
            calendar=report.calendar,
            bars_in=report.bars_in,
            bars_out=report.bars_out,
            status=report.status,
            created_at=self._now(),
        )
        for issue in report.issues:
            _one_of("severity", issue.severity, ISSUE_SEVERITIES)
            _non_negative(count=issue.count)
            _aware("first_ts", issue.first_ts)
            row.issues.append(
                ValidationIssueRow(
                    check=issue.check,
                    severity=issue.severity,
                    policy=issue.policy,
                    action=issue.action,
                    count=issue.count,
                    first_ts=issue.first_ts,
                    examples=_jsonable([dict(e) for e in issue.examples]),
                )
            )
        self._session.add(row)
        self._session.flush()
        return row.id

    def _query(self) -> sa.Select[ValidationReportRow]:
        return sa.select(ValidationReportRow).options(selectinload(ValidationReportRow.issues))

    def get(self, report_id: int) -> StoredValidationReport | None:
        """Return report ``report_id`` with its issues (in insertion order), or ``None``."""
        row = self._session.scalars(
            self._query().where(ValidationReportRow.id == report_id)
        ).one_or_none()
        return _stored_report(row) if row is not None else None

    def for_import(self, import_id: int) -> list[StoredValidationReport]:
        """Return the reports of data import ``import_id``, oldest first."""
        query = (
            self._query()
            .where(ValidationReportRow.import_id == import_id)
            .order_by(ValidationReportRow.id)
        )
        return [_stored_report(r) for r in self._session.scalars(query)]

    def recent(self, limit: int = 20) -> list[StoredValidationReport]:
        """Return the latest reports with their issues, newest first."""
        query = (
            self._query()
            .order_by(ValidationReportRow.created_at.desc(), ValidationReportRow.id.desc())
            .limit(_limit(limit))
        )
        return [_stored_report(r) for r in self._session.scalars(query)]
