"""Repository round trips, foreign keys and atomicity, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from morningstar.errors import StorageError
from morningstar.store import (
    Database,
    DataImportRepository,
    IssueRecord,
    RunRepository,
    ValidationRecord,
    ValidationRepository,
    open_database,
    record_cli_run,
)
from morningstar.store.models import CliRunRow, DataImportRow, ValidationIssueRow
from morningstar.store.models import ValidationReportRow as ReportRow

T0 = datetime(2024, 5, 1, 8, 0, 0, 250_000, tzinfo=UTC)
PLUS_2 = timezone(timedelta(hours=2))


def stepping_clock(
    start: datetime = T0, step: timedelta = timedelta(seconds=1)
) -> Callable[[], datetime]:
    """A manual clock: each call returns the previous time plus ``step``."""
    state = {"t": start - step}

    def now() -> datetime:
        state["t"] += step
        return state["t"]

    return now


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, now=stepping_clock())
    yield database
    database.dispose()


def _import(session: object, **overrides: object) -> int:
    fields: dict[str, object] = {
        "kind": "csv",
        "source": "/data/BTCUSDT-1h.csv",
        "venue": "binance",
        "pair": "BTC/USDT",
        "timeframe": "1h",
        "rows_read": 100,
        "rows_stored": 98,
        "rows_added": 98,
    }
    fields.update(overrides)
    return DataImportRepository(session).record(**fields)  # type: ignore[arg-type]


def _report(status: str = "warnings") -> ValidationRecord:
    return ValidationRecord(
        source="/data/BTCUSDT-1h.csv",
        venue="binance",
        pair="BTC/USDT",
        timeframe="1h",
        calendar="24/7",
        bars_in=100,
        bars_out=98,
        status=status,
        issues=(
            IssueRecord(
                check="duplicate_timestamps",
                severity="warning",
                policy="drop",
                action="dropped 2 rows",
                count=2,
                first_ts=datetime(2024, 1, 1, 14, 0, tzinfo=PLUS_2),
                examples=({"ts": "2024-01-01T12:00:00+00:00", "close": 42000.5},),
            ),
            IssueRecord(
                check="gaps", severity="info", policy="warn", action="kept", count=0, examples=[]
            ),
        ),
    )


def _count(database: Database, table: type[object]) -> int:
    with database.session(readonly=True) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(table)) or 0


def test_run_round_trip_with_injected_clock(db: Database) -> None:
    with db.session() as s:
        run_id = RunRepository(s).start("data import", ["data", "import", "x.csv"], "0.1.0")
    with db.session() as s:
        RunRepository(s).finish(run_id, "error", "x.csv: no such file — check the path")
    with db.session(readonly=True) as s:
        run = RunRepository(s).get(run_id)
        assert RunRepository(s).get("0" * 32) is None
    assert run is not None
    assert len(run.id) == 32
    assert run.command == "data import"
    assert run.argv == ("data", "import", "x.csv")
    assert run.status == "error"
    assert run.error == "x.csv: no such file — check the path"
    assert run.version == "0.1.0"
    assert run.started_at == T0 and run.started_at.tzinfo is UTC
    assert run.finished_at == T0 + timedelta(seconds=1)
    assert run.finished_at is not None and run.finished_at.tzinfo is UTC


def test_recent_runs_newest_first_and_filtered(db: Database) -> None:
    with db.session() as s:
        repo = RunRepository(s)
        ids = [repo.start(cmd, [], "0") for cmd in ("a", "b", "a", "c")]
    with db.session(readonly=True) as s:
        repo = RunRepository(s)
        assert [r.id for r in repo.recent(3)] == ids[::-1][:3]
        assert [r.id for r in repo.recent(command="a")] == [ids[2], ids[0]]
        with pytest.raises(ValueError, match="limit"):
            repo.recent(0)


def test_finish_validates_status_and_id(db: Database) -> None:
    with db.session() as s:
        run_id = RunRepository(s).start("x", [], "0")
    with pytest.raises(ValueError, match="status"), db.session() as s:
        RunRepository(s).finish(run_id, "running")
    with pytest.raises(StorageError, match="no CLI run"), db.session() as s:
        RunRepository(s).finish("f" * 32, "ok")


def test_data_import_round_trip_keeps_aware_utc(db: Database) -> None:
    first = datetime(2024, 1, 1, 2, 0, 0, 1, tzinfo=PLUS_2)
    last = datetime(2024, 1, 5, 0, 0, tzinfo=UTC)
    with db.session() as s:
        run_id = RunRepository(s).start("data import", [], "0")
        import_id = _import(
            s, run_id=run_id, first_ts=first, last_ts=last, content_sha256="ab" * 32
        )
        other = _import(s, pair="ETH/USDT")
        later = _import(s, kind="resample", timeframe="1h")
    with db.session(readonly=True) as s:
        repo = DataImportRepository(s)
        got = repo.get(import_id)
        assert repo.get(10**6) is None
        assert [i.id for i in repo.for_dataset("binance", "BTC/USDT", "1h")] == [later, import_id]
        assert [i.id for i in repo.recent(2)] == [later, other]
    assert got is not None
    assert got.run_id == run_id
    assert (got.kind, got.source, got.venue, got.pair, got.timeframe) == (
        "csv",
        "/data/BTCUSDT-1h.csv",
        "binance",
        "BTC/USDT",
        "1h",
    )
    assert (got.rows_read, got.rows_stored, got.rows_added) == (100, 98, 98)
    assert got.first_ts == first and got.first_ts is not None and got.first_ts.tzinfo is UTC
    assert got.last_ts == last
    assert got.content_sha256 == "ab" * 32
    assert got.created_at == T0 + timedelta(seconds=1)


def test_data_import_rejects_bad_input(db: Database) -> None:
    with db.session() as s:
        with pytest.raises(ValueError, match="kind"):
            _import(s, kind="ftp")
        with pytest.raises(ValueError, match="rows_added"):
            _import(s, rows_added=-1)
        with pytest.raises(ValueError, match="aware"):
            _import(s, first_ts=datetime(2024, 1, 1))
    assert _count(db, DataImportRow) == 0


def test_validation_report_round_trip_with_issues(db: Database) -> None:
    with db.session() as s:
        import_id = _import(s)
        report_id = ValidationRepository(s).record(_report(), import_id=import_id)
        loose_id = ValidationRepository(s).record(_report("clean"))
    with db.session(readonly=True) as s:
        repo = ValidationRepository(s)
        stored = repo.get(report_id)
        loose = repo.get(loose_id)
        assert repo.get(10**6) is None
        assert [r.id for r in repo.for_import(import_id)] == [report_id]
        assert [r.id for r in repo.recent(5)] == [loose_id, report_id]
    assert stored is not None and loose is not None
    assert stored.import_id == import_id and loose.import_id is None
    assert stored.created_at == T0 + timedelta(seconds=1)
    expected = _report()
    assert stored.report.issues[0].first_ts == expected.issues[0].first_ts
    assert stored.report.issues[0].first_ts is not None
    assert stored.report.issues[0].first_ts.tzinfo is UTC
    assert stored.report.issues[0].examples == (
        {"ts": "2024-01-01T12:00:00+00:00", "close": 42000.5},
    )
    assert stored.report.issues[1].examples == ()
    assert stored.report.issues[1].first_ts is None
    normalised = ValidationRecord(
        **{
            **expected.__dict__,
            "issues": tuple(
                IssueRecord(**{**i.__dict__, "examples": tuple(i.examples)})
                for i in expected.issues
            ),
        }
    )
    assert stored.report == normalised


def test_validation_rejects_bad_status_and_severity(db: Database) -> None:
    bad_issue = IssueRecord(check="c", severity="fatal", policy="p", action="a", count=1)
    with db.session() as s:
        repo = ValidationRepository(s)
        with pytest.raises(ValueError, match="status"):
            repo.record(_report("fine"))
        with pytest.raises(ValueError, match="severity"):
            repo.record(ValidationRecord("s", "24/7", 1, 1, "errors", issues=(bad_issue,)))


def test_check_constraints_hold_in_the_database(db: Database) -> None:
    with pytest.raises(StorageError, match="ck_cli_runs_status"), db.session() as s:
        s.add(
            CliRunRow(id="a" * 32, command="x", argv=[], status="bogus", started_at=T0, version="0")
        )


def test_deleting_a_report_cascades_to_its_issues(db: Database) -> None:
    with db.session() as s:
        keep = ValidationRepository(s).record(_report())
        gone = ValidationRepository(s).record(_report())
    assert _count(db, ValidationIssueRow) == 4
    with db.session() as s:
        s.execute(sa.delete(ReportRow).where(ReportRow.id == gone))  # plain SQL: the DB cascades
    assert _count(db, ValidationIssueRow) == 2
    with db.session(readonly=True) as s:
        stored = ValidationRepository(s).get(keep)
    assert stored is not None and len(stored.report.issues) == 2


def test_deleting_an_import_cascades_to_reports_and_issues(db: Database) -> None:
    with db.session() as s:
        import_id = _import(s)
        ValidationRepository(s).record(_report(), import_id=import_id)
    with db.session() as s:
        s.execute(sa.delete(DataImportRow).where(DataImportRow.id == import_id))
    assert _count(db, ReportRow) == 0
    assert _count(db, ValidationIssueRow) == 0


def test_deleting_a_run_sets_import_run_id_to_null(db: Database) -> None:
    with db.session() as s:
        run_id = RunRepository(s).start("data import", [], "0")
        import_id = _import(s, run_id=run_id)
    with db.session() as s:
        s.execute(sa.delete(CliRunRow).where(CliRunRow.id == run_id))
    with db.session(readonly=True) as s:
        got = DataImportRepository(s).get(import_id)
    assert got is not None and got.run_id is None


def test_failing_block_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.session() as s:
        RunRepository(s).start("x", [], "0")
        ValidationRepository(s).record(_report(), import_id=_import(s))
        raise RuntimeError("boom")
    for table in (CliRunRow, DataImportRow, ReportRow, ValidationIssueRow):
        assert _count(db, table) == 0


def test_database_error_rolls_back_the_whole_transaction(db: Database) -> None:
    with pytest.raises(StorageError) as info, db.session() as s:
        _import(s)
        ValidationRepository(s).record(_report(), import_id=987_654)  # no such import: FK fails
    assert "\n" not in str(info.value)
    assert "foreign key" in str(info.value).lower()
    assert _count(db, DataImportRow) == 0
    assert _count(db, ReportRow) == 0


def test_readonly_session_never_commits(db: Database) -> None:
    with db.session(readonly=True) as s:
        RunRepository(s).start("x", [], "0")
    assert _count(db, CliRunRow) == 0


def test_record_cli_run_marks_ok_and_error(db: Database) -> None:
    with record_cli_run(db, "data list", ["data", "list"], "0.1.0") as ok_id:
        pass
    with pytest.raises(KeyError), record_cli_run(db, "data show", [], "0.1.0") as err_id:
        raise KeyError("BTC/XYZ")
    with db.session(readonly=True) as s:
        ok, err = RunRepository(s).get(ok_id), RunRepository(s).get(err_id)
    assert ok is not None and ok.status == "ok" and ok.error is None
    assert err is not None and err.status == "error" and err.error == "'BTC/XYZ'"
