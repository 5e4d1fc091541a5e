"""Parquet storage of bar frames: one file per venue / pair / timeframe under the data directory.

Layout: ``<data_dir>/ohlcv/<venue>/<BASE>_<QUOTE>-<timeframe>.parquet`` (e.g.
``binance/BTC_USDT-5m.parquet``). Files are sorted by timestamp and written in row groups of
:data:`ROW_GROUP_SIZE` bars, so a date-range load reads only the row groups it needs (Parquet
min/max statistics).

Writes are atomic (temporary file + ``os.replace``) and serialised per file with an advisory lock, so
an interrupted write never leaves a half-written file and two writers never lose each other's bars.
Merging never creates duplicates: on equal timestamps the newer bar wins (an exchange's last,
still-open candle is replaced by its final version).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import OHLCV_COLUMNS, Pair, parse_pair
from morningstar.data.ohlcv import INDEX_NAME, empty_ohlcv, to_contract
from morningstar.errors import DataNotFoundError, StorageError, UserInputError

__all__ = ["ROW_GROUP_SIZE", "DatasetInfo", "OHLCVStore", "WriteResult", "to_utc_timestamp"]

ROW_GROUP_SIZE = 65_536
_SCHEMA = pa.schema(
    [pa.field(INDEX_NAME, pa.timestamp("ms", tz="UTC"), nullable=False)]
    + [pa.field(c, pa.float64()) for c in OHLCV_COLUMNS]
)
_TimeLike = str | pd.Timestamp | None


@dataclass(frozen=True)
class DatasetInfo:
    """What one stored file holds (read from Parquet metadata, not from the rows)."""

    venue: str
    pair: Pair
    timeframe: Timeframe
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    path: Path
    size_bytes: int


@dataclass(frozen=True)
class WriteResult:
    """Row counts of a write: ``rows_after == rows_before + rows_added`` (replaced bars not added)."""

    path: Path
    rows_before: int
    rows_added: int
    rows_replaced: int
    rows_after: int


def _norm_venue(venue: str) -> str:
    name = venue.strip().lower()
    if not name or not all(ch.isalnum() or ch in "_-." for ch in name):
        raise UserInputError(
            f"invalid venue name {venue!r}",
            hint="use the exchange id, e.g. binance, coinbase, oanda (letters, digits, _ - .)",
        )
    return name


def to_utc_timestamp(value: _TimeLike, what: str) -> pd.Timestamp | None:
    """``value`` (ISO text, datetime, Timestamp; naive means UTC) as an aware UTC Timestamp.

    None stays None. Text pandas cannot read, and text it reads as "no time" (``""``, ``"NaT"``),
    is a one-line :class:`UserInputError` naming ``what`` (e.g. ``start``, ``--as-of``).
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts):
        raise UserInputError(
            f"invalid {what}: cannot read {value!r} as a time",
            hint="use an ISO date such as 2024-01-31 or 2024-01-31T12:00",
        )
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class OHLCVStore:
    """Bar frames in Parquet files under ``root / "ohlcv"``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.base = self.root / "ohlcv"

    # ----------------------------------------------------------------- paths and listing
    def path(self, venue: str, pair: Pair | str, timeframe: Timeframe | str) -> Path:
        """File of one venue / pair / timeframe (it may not exist yet)."""
        p = parse_pair(pair) if isinstance(pair, str) else pair
        tf = parse_timeframe(timeframe) if isinstance(timeframe, str) else timeframe
        return self.base / _norm_venue(venue) / f"{p.file_stem}-{tf}.parquet"

    def list(self) -> list[DatasetInfo]:
        """Every stored dataset, sorted by venue, pair and timeframe."""
        out: list[DatasetInfo] = []
        if not self.base.exists():
            return out
        for path in sorted(self.base.glob("*/*.parquet")):
            info = self._info(path)
            if info is not None:
                out.append(info)
        return sorted(out, key=lambda i: (i.venue, str(i.pair), i.timeframe))

    def info(self, venue: str, pair: Pair | str, timeframe: Timeframe | str) -> DatasetInfo:
        """Metadata of one dataset.

        Raises:
            DataNotFoundError: nothing stored for that key (with a close-match hint).
        """
        path = self.path(venue, pair, timeframe)
        info = self._info(path) if path.exists() else None
        if info is None:
            raise self._not_found(venue, pair, timeframe)
        return info

    def exists(self, venue: str, pair: Pair | str, timeframe: Timeframe | str) -> bool:
        """True when a file is stored for that key."""
        return self.path(venue, pair, timeframe).exists()

    def last_timestamp(
        self, venue: str, pair: Pair | str, timeframe: Timeframe | str
    ) -> pd.Timestamp | None:
        """Open time of the last stored bar, or None when nothing is stored."""
        path = self.path(venue, pair, timeframe)
        if not path.exists():
            return None
        info = self._info(path)
        return None if info is None else info.last

    def _info(self, path: Path) -> DatasetInfo | None:
        stem = path.stem
        if "-" not in stem:
            return None
        pair_text, tf_text = stem.rsplit("-", 1)
        try:
            parts = pair_text.split("_")
            pair = Pair(parts[0], parts[1], parts[2] if len(parts) > 2 else None)
            tf = parse_timeframe(tf_text)
        except (IndexError, ValueError):
            return None
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(
                f"unreadable Parquet file ({exc})",
                where=str(path),
                hint="delete it and import or download the data again",
            ) from exc
        first = last = None
        ts_col = meta.schema.names.index(INDEX_NAME) if INDEX_NAME in meta.schema.names else None
        if ts_col is not None and meta.num_rows:
            stats_min = [
                meta.row_group(i).column(ts_col).statistics for i in range(meta.num_row_groups)
            ]
            mins = [s.min for s in stats_min if s is not None and s.has_min_max]
            maxs = [s.max for s in stats_min if s is not None and s.has_min_max]
            if mins and maxs:
                first = pd.Timestamp(min(mins)).tz_convert("UTC")
                last = pd.Timestamp(max(maxs)).tz_convert("UTC")
        return DatasetInfo(
            venue=path.parent.name,
            pair=pair,
            timeframe=tf,
            rows=meta.num_rows,
            first=first,
            last=last,
            path=path,
            size_bytes=path.stat().st_size,
        )

    def _not_found(
        self, venue: str, pair: Pair | str, timeframe: Timeframe | str
    ) -> DataNotFoundError:
        wanted = f"{_norm_venue(venue)} {pair} {timeframe}"
        have = [f"{i.venue} {i.pair} {i.timeframe}" for i in self.list()]
        close = difflib.get_close_matches(wanted, have, n=1, cutoff=0.5)
        if close:
            hint = f"did you mean {close[0]}? (`morningstar data list` shows what is stored)"
        elif have:
            hint = "`morningstar data list` shows what is stored"
        else:
            hint = "nothing is stored yet: run `morningstar data import` or `morningstar data download`"
        return DataNotFoundError(f"no stored data for {wanted}", where=str(self.base), hint=hint)

    # ----------------------------------------------------------------- read
    def load(
        self,
        venue: str,
        pair: Pair | str,
        timeframe: Timeframe | str,
        start: _TimeLike = None,
        end: _TimeLike = None,
    ) -> pd.DataFrame:
        """Load bars with ``start <= timestamp < end`` (either bound may be None).

        Raises:
            DataNotFoundError: nothing stored for that key.
        """
        path = self.path(venue, pair, timeframe)
        if not path.exists():
            raise self._not_found(venue, pair, timeframe)
        t0, t1 = to_utc_timestamp(start, "start"), to_utc_timestamp(end, "end")
        filters = []
        if t0 is not None:
            filters.append((INDEX_NAME, ">=", t0.to_pydatetime()))
        if t1 is not None:
            filters.append((INDEX_NAME, "<", t1.to_pydatetime()))
        try:
            table = pq.read_table(path, filters=filters or None, use_threads=True)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read ({exc})", where=str(path)) from exc
        return _table_to_frame(table)

    # ----------------------------------------------------------------- write
    def write(
        self,
        venue: str,
        pair: Pair | str,
        timeframe: Timeframe | str,
        frame: pd.DataFrame,
        *,
        replace: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Merge ``frame`` into the stored file (or replace it), atomically and without duplicates.

        ``frame`` must already be valid bars (see :mod:`morningstar.data.validation`); only the
        types are normalised here. Rows are sorted by timestamp; on equal timestamps the bar in
        ``frame`` wins.
        """
        path = self.path(venue, pair, timeframe)
        new = to_contract(frame, where=str(path))
        if new.index.has_duplicates:
            raise UserInputError(
                "bars to store contain duplicate timestamps",
                where=str(path),
                hint="validate the data first (`morningstar data check`) with policy drop",
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _file_lock(path):
                old = self._read_all(path) if path.exists() and not replace else empty_ohlcv()
                rows_before = len(old)
                if rows_before == 0:
                    overlap, merged = 0, new
                elif len(new) == 0 or new.index[0] > old.index[-1]:  # plain append: no overlap
                    overlap, merged = 0, pd.concat([old, new])
                else:
                    in_new = old.index.isin(new.index)
                    overlap = int(in_new.sum())
                    merged = pd.concat([old[~in_new], new])
                if not merged.index.is_monotonic_increasing:
                    merged = merged.sort_index(kind="stable")
                self._atomic_write(path, merged, venue, pair, timeframe, metadata)
        except OSError as exc:
            raise StorageError(
                f"cannot write market data ({exc.strerror or exc})",
                where=str(path),
                hint="check that data.dir is writable and the disk is not full",
            ) from exc
        return WriteResult(
            path=path,
            rows_before=rows_before,
            rows_added=len(merged) - rows_before,
            rows_replaced=overlap,
            rows_after=len(merged),
        )

    def delete(self, venue: str, pair: Pair | str, timeframe: Timeframe | str) -> bool:
        """Remove a stored file; True when one was removed."""
        path = self.path(venue, pair, timeframe)
        with _file_lock(path):
            if path.exists():
                path.unlink()
                return True
        return False

    def _read_all(self, path: Path) -> pd.DataFrame:
        try:
            return _table_to_frame(pq.read_table(path))
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read ({exc})", where=str(path)) from exc

    def _atomic_write(
        self,
        path: Path,
        frame: pd.DataFrame,
        venue: str,
        pair: Pair | str,
        timeframe: Timeframe | str,
        metadata: dict[str, str] | None,
    ) -> None:
        ts = pd.DatetimeIndex(frame.index).as_unit("ms").asi8
        arrays = [pa.array(ts, type=_SCHEMA.field(0).type)]
        arrays += [pa.array(frame[c].to_numpy(dtype=np.float64)) for c in OHLCV_COLUMNS]
        meta = {
            "morningstar.venue": _norm_venue(venue),
            "morningstar.pair": str(pair),
            "morningstar.timeframe": str(timeframe),
        }
        meta.update({f"morningstar.{k}": v for k, v in (metadata or {}).items()})
        table = pa.Table.from_arrays(arrays, schema=_SCHEMA.with_metadata(meta))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pq.write_table(
                table,
                tmp,
                row_group_size=ROW_GROUP_SIZE,
                compression="zstd",
                compression_level=1,
                write_statistics=[INDEX_NAME],
            )
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _table_to_frame(table: pa.Table) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_ohlcv()
    ts = table.column(INDEX_NAME)
    ts_ns = pc.cast(ts, pa.timestamp("ns", tz="UTC")).to_numpy().view("datetime64[ns]")
    index = pd.DatetimeIndex(ts_ns, name=INDEX_NAME).tz_localize("UTC")
    data = {c: table.column(c).to_numpy() for c in OHLCV_COLUMNS}
    return pd.DataFrame(data, index=index, copy=False)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``<file>.lock`` for the duration of a read-merge-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
