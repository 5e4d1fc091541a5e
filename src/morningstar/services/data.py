"""Market-data application service: what the CLI, the API and the agents call.

Each operation reads, validates (never silently fixing: the report says what each policy did),
stores bars in the Parquet store and records the operation and its validation report in the SQL
database, in that order, so a failure leaves neither a half-written file nor a record of data that
was not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import Pair, parse_pair
from morningstar.data.calendars import guess_calendar
from morningstar.data.csv_import import (
    ImportedCSV,
    infer_timeframe,
    parse_file_name,
    read_ohlcv_csv,
)
from morningstar.data.demo import demo_dataset, locate_demo_file
from morningstar.data.parquet_store import DatasetInfo, OHLCVStore, WriteResult
from morningstar.data.resample import SESSION_STARTS, ResampleResult, resample_ohlcv
from morningstar.data.validation import (
    Check,
    Policy,
    ValidationReport,
    parse_policy_items,
    resolve_policies,
    validate,
)
from morningstar.errors import UserInputError
from morningstar.store import Database
from morningstar.store.repositories import (
    DataImportRepository,
    IssueRecord,
    ValidationRecord,
    ValidationRepository,
)

__all__ = [
    "CheckOutcome",
    "DataService",
    "ImportOutcome",
    "pair_arg",
    "parse_policy_items",
    "resolve_calendar",
    "timeframe_arg",
]

log = logging.getLogger(__name__)
CSV_SUFFIXES = (".csv", ".txt", ".csv.gz")


@dataclass(frozen=True)
class CheckOutcome:
    """A validated file or dataset (nothing stored)."""

    source: str
    venue: str | None
    pair: Pair | None
    timeframe: Timeframe
    report: ValidationReport
    imported: ImportedCSV | None = None


@dataclass(frozen=True)
class ImportOutcome:
    """A file or dataset validated and stored."""

    source: str
    venue: str
    pair: Pair
    timeframe: Timeframe
    report: ValidationReport
    write: WriteResult
    import_id: int
    imported: ImportedCSV | None = None


def pair_arg(text: str) -> Pair:
    """Parse a user-given pair; a bad one is a one-line :class:`UserInputError`."""
    try:
        return parse_pair(text)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def timeframe_arg(text: str) -> Timeframe:
    """Parse a user-given timeframe; a bad one is a one-line :class:`UserInputError`."""
    try:
        return parse_timeframe(text)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


CALENDARS = ("auto", "crypto", "forex", "cme", "equity")


def resolve_calendar(calendar: str, venue: str | None, pair: Pair | None) -> str:
    """``auto`` → the calendar guessed from venue and pair; otherwise ``calendar`` itself.

    Raises:
        UserInputError: an unknown calendar name (with a close match).
    """
    name = calendar.strip().lower()
    if name not in CALENDARS:
        import difflib

        close = difflib.get_close_matches(name, CALENDARS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(CALENDARS)}"
        raise UserInputError(f"unknown calendar {calendar!r}", hint=hint)
    if name != "auto":
        return name
    return str(guess_calendar(venue=venue, symbol=str(pair) if pair else None))


def _validation_record(
    report: ValidationReport, venue: str | None, pair: Pair | None, timeframe: Timeframe
) -> ValidationRecord:
    issues = tuple(
        IssueRecord(
            check=str(issue.check),
            severity=str(issue.severity),
            policy=str(issue.policy),
            action=issue.action,
            count=issue.count,
            first_ts=issue.first_ts.to_pydatetime() if issue.first_ts is not None else None,
            examples=[e.to_dict() for e in issue.examples],
        )
        for issue in report.issues
    )
    return ValidationRecord(
        source=report.source,
        venue=venue,
        pair=str(pair) if pair else None,
        timeframe=str(timeframe),
        calendar=report.calendar,
        bars_in=report.bars_in,
        bars_out=report.bars_out,
        status=report.status,
        issues=issues,
    )


class DataService:
    """Import, check, list and resample market data.

    Args:
        store: the Parquet market-data store.
        db: the SQL database (imports and validation reports are recorded there).
        default_policies: validation policies from the config (``data.policies``).
        default_calendar: ``data.calendar`` from the config.
        run_id: the CLI run these operations belong to (recorded with each import).
    """

    def __init__(
        self,
        store: OHLCVStore,
        db: Database,
        *,
        default_policies: Mapping[str, str] | None = None,
        default_calendar: str = "auto",
        run_id: str | None = None,
    ) -> None:
        self.store = store
        self.db = db
        self.default_policies = dict(default_policies or {})
        resolve_policies(self.default_policies)
        self.default_calendar = default_calendar
        self.run_id = run_id
        self._replaced: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ helpers
    def _policies(self, overrides: Mapping[str, str] | None) -> dict[Check, Policy]:
        return resolve_policies({**self.default_policies, **(overrides or {})})

    @staticmethod
    def csv_files(paths: Sequence[str | Path]) -> list[tuple[Path, bool]]:
        """Expand directories into the CSV files they hold (recursively, sorted).

        Returns:
            ``(path, explicit)`` pairs: ``explicit`` is False for files found in a folder, which
            callers may skip when they are not OHLCV files (e.g. a MANIFEST.csv beside the data).

        Raises:
            UserInputError: a path does not exist, or a directory holds no CSV file.
        """
        files: list[tuple[Path, bool]] = []
        for raw in paths:
            path = Path(raw).expanduser()
            if path.is_dir():
                found = sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES)
                )
                if not found:
                    raise UserInputError("no CSV file in this folder", where=str(path))
                files.extend((p, False) for p in found)
            elif path.is_file():
                files.append((path, True))
            else:
                raise UserInputError("no such file or folder", where=str(path))
        return files

    @staticmethod
    def _identity(
        imported: ImportedCSV,
        venue: str | None,
        pair: str | None,
        timeframe: str | None,
    ) -> tuple[str | None, Pair | None, Timeframe]:
        name_venue, name_pair, name_tf = parse_file_name(imported.path)
        p = pair_arg(pair) if pair else name_pair
        tf = timeframe_arg(timeframe) if timeframe else name_tf
        if tf is None:
            tf = infer_timeframe(pd.DatetimeIndex(imported.frame.index))
            if tf is None:
                raise UserInputError(
                    "cannot tell the timeframe",
                    where=str(imported.path),
                    hint="pass --timeframe (e.g. 1h) or name the file VENUE_BASE_QUOTE-1h.csv",
                )
        return (venue or name_venue), p, tf

    # ------------------------------------------------------------------ check
    def check_file(
        self,
        path: str | Path,
        *,
        venue: str | None = None,
        pair: str | None = None,
        timeframe: str | None = None,
        calendar: str | None = None,
        policies: Mapping[str, str] | None = None,
    ) -> CheckOutcome:
        """Read and validate a CSV file; nothing is stored. The report is recorded."""
        imported, v, p, tf, _, report = self._read_validate(
            path, venue, pair, timeframe, calendar, policies
        )
        with self.db.session() as session:
            ValidationRepository(session).record(_validation_record(report, v, p, tf))
        return CheckOutcome(str(imported.path), v, p, tf, report, imported)

    def _read_validate(
        self,
        path: str | Path,
        venue: str | None,
        pair: str | None,
        timeframe: str | None,
        calendar: str | None,
        policies: Mapping[str, str] | None,
    ) -> tuple[ImportedCSV, str | None, Pair | None, Timeframe, pd.DataFrame, ValidationReport]:
        imported = read_ohlcv_csv(path)
        v, p, tf = self._identity(imported, venue, pair, timeframe)
        clean, report = validate(
            imported.frame,
            tf,
            calendar=resolve_calendar(calendar or self.default_calendar, v, p),
            policies=self._policies(policies),
            where=str(imported.path),
            row_numbers=imported.line_numbers,
        )
        return imported, v, p, tf, clean, report

    def check_stored(
        self,
        venue: str,
        pair: str,
        timeframe: str,
        *,
        calendar: str | None = None,
        policies: Mapping[str, str] | None = None,
    ) -> CheckOutcome:
        """Validate a stored dataset; nothing is changed. The report is recorded."""
        p, tf = pair_arg(pair), timeframe_arg(timeframe)
        frame = self.store.load(venue, p, tf)
        cal = resolve_calendar(calendar or self.default_calendar, venue, p)
        where = str(self.store.path(venue, p, tf))
        _, report = validate(
            frame, tf, calendar=cal, policies=self._policies(policies), where=where
        )
        with self.db.session() as session:
            ValidationRepository(session).record(_validation_record(report, venue, p, tf))
        return CheckOutcome(where, venue, p, tf, report)

    # ------------------------------------------------------------------ import
    def import_file(
        self,
        path: str | Path,
        *,
        venue: str | None = None,
        pair: str | None = None,
        timeframe: str | None = None,
        calendar: str | None = None,
        policies: Mapping[str, str] | None = None,
        replace: bool = False,
        kind: str = "csv",
    ) -> ImportOutcome:
        """Read, validate and store one CSV file, then record the import and its report.

        Raises:
            DataFormatError: the file cannot be read.
            DataValidationError: a check whose policy is ``error`` failed (nothing is stored).
            UserInputError: venue / pair / timeframe cannot be told from the name or options.
        """
        imported, v, p, tf, clean, report = self._read_validate(
            path, venue, pair, timeframe, calendar, policies
        )
        if v is None or p is None:
            raise UserInputError(
                "cannot tell the venue and pair from the file name",
                where=str(imported.path),
                hint="pass --venue and --pair, or name the file VENUE_BASE_QUOTE-TF.csv",
            )
        return self._store_and_record(
            clean,
            report,
            venue=v,
            pair=p,
            timeframe=tf,
            source=str(imported.path),
            kind=kind,
            rows_read=imported.rows_read,
            sha256=imported.sha256,
            replace=replace,
            imported=imported,
        )

    def import_demo(self, name: str = "eurusd-1h-2017", *, replace: bool = True) -> ImportOutcome:
        """Import a demo dataset shipped by a PyPI package (see :mod:`morningstar.data.demo`)."""
        dataset = demo_dataset(name)
        path = locate_demo_file(dataset)
        return self.import_file(
            path,
            venue=dataset.venue,
            pair=str(dataset.pair),
            timeframe=str(dataset.timeframe),
            calendar=dataset.calendar,
            replace=replace,
            kind="demo",
        )

    def _store_and_record(
        self,
        frame: pd.DataFrame,
        report: ValidationReport,
        *,
        venue: str,
        pair: Pair,
        timeframe: Timeframe,
        source: str,
        kind: str,
        rows_read: int,
        sha256: str | None,
        replace: bool = False,
        imported: ImportedCSV | None = None,
    ) -> ImportOutcome:
        # --replace clears a dataset once per service (= per command run), then later files of
        # the same dataset in that run merge into it instead of replacing each other.
        key = (venue, str(pair), str(timeframe))
        replace_now = replace and key not in self._replaced
        if replace:
            self._replaced.add(key)
        write = self.store.write(
            venue, pair, timeframe, frame, replace=replace_now, metadata={"source": source}
        )
        with self.db.session() as session:
            import_id = DataImportRepository(session).record(
                run_id=self.run_id,
                kind=kind,
                source=source,
                venue=venue,
                pair=str(pair),
                timeframe=str(timeframe),
                rows_read=rows_read,
                rows_stored=len(frame),
                rows_added=write.rows_added,
                first_ts=frame.index[0].to_pydatetime() if len(frame) else None,
                last_ts=frame.index[-1].to_pydatetime() if len(frame) else None,
                content_sha256=sha256,
            )
            ValidationRepository(session).record(
                _validation_record(report, venue, pair, timeframe), import_id=import_id
            )
        log.info(
            "stored %d bars of %s %s %s from %s (%d new)",
            len(frame), venue, pair, timeframe, source, write.rows_added,
        )  # fmt: skip
        return ImportOutcome(source, venue, pair, timeframe, report, write, import_id, imported)

    # ------------------------------------------------------------------ list / load / resample
    def list(self) -> list[DatasetInfo]:
        """Every stored dataset."""
        return self.store.list()

    def load(
        self,
        venue: str,
        pair: str,
        timeframe: str,
        start: str | None = None,
        end: str | None = None,
    ) -> pd.DataFrame:
        """Bars of a stored dataset with ``start <= t < end``."""
        return self.store.load(venue, pair, timeframe, start, end)

    def resample(
        self,
        venue: str,
        pair: str,
        source: str,
        target: str,
        *,
        policies: Mapping[str, str] | None = None,
        replace: bool = False,
    ) -> tuple[ResampleResult, ImportOutcome]:
        """Resample a stored dataset and merge the result into the target dataset (validated,
        recorded); ``replace`` replaces the target dataset instead."""
        p, src, dst = pair_arg(pair), timeframe_arg(source), timeframe_arg(target)
        frame = self.store.load(venue, p, src)
        cal = resolve_calendar(self.default_calendar, venue, p)
        result = resample_ohlcv(frame, src, dst, session_start=SESSION_STARTS.get(cal))
        clean, report = validate(
            result.frame,
            dst,
            calendar=cal,
            policies=self._policies(policies),
            where=f"{self.store.path(venue, p, src)} resampled to {dst}",
        )
        outcome = self._store_and_record(
            clean,
            report,
            venue=venue,
            pair=p,
            timeframe=dst,
            source=str(self.store.path(venue, p, src)),
            kind="resample",
            rows_read=len(frame),
            sha256=None,
            replace=replace,
        )
        return result, outcome

    def record_download(
        self,
        *,
        exchange: str,
        venue: str,
        pair: Pair,
        timeframe: Timeframe,
        bars_fetched: int,
        bars_added: int,
        first: pd.Timestamp | None,
        last: pd.Timestamp | None,
    ) -> int:
        """Record a finished (or interrupted) download in the database."""
        with self.db.session() as session:
            return DataImportRepository(session).record(
                run_id=self.run_id,
                kind="download",
                source=exchange,
                venue=venue,
                pair=str(pair),
                timeframe=str(timeframe),
                rows_read=bars_fetched,
                rows_stored=bars_fetched,
                rows_added=bars_added,
                first_ts=first.to_pydatetime() if first is not None else None,
                last_ts=last.to_pydatetime() if last is not None else None,
                content_sha256=None,
            )
