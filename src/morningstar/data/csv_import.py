"""Read OHLCV CSV files of the common layouts into the OHLCV contract.

Recognised layouts (detected from the header and the first rows; see ``docs/data.md``):

* ``iso``: ``timestamp,open,high,low,close,volume`` with ISO-8601 times (Morningstar's own format);
* ``epoch``: a numeric time column (``timestamp``/``unix``/``open_time``...) in s, ms, us or ns,
  detected by magnitude;
* ``binance_klines``: headerless 12-column Binance kline export (open time in ms or us first);
* ``date_time``: separate date and time columns (MetaTrader ``<DATE>,<TIME>``, ``Date,Time``);
* ``dayfirst``: ``dd.mm.yyyy HH:MM:SS[.fff]`` times (Dukascopy-style exports, gym-anytrading);
* any of the above newest-first (CryptoDataDownload exports): a file whose times are strictly
  decreasing is read in reverse and the import says so; a partly unordered file is left as it is
  for validation to report;
* a banner line before the header (CryptoDataDownload's URL line) is skipped.

Column names are matched case-insensitively with common aliases (``o``, ``Open``, ``<OPEN>``,
``Volume BTC``...). Times without a zone are taken as UTC. Anything else raises
:class:`morningstar.errors.DataFormatError` with the file, the columns seen and what is expected.
Nothing is fixed silently: content checks are :mod:`morningstar.data.validation`'s job.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import OHLCV_COLUMNS, Pair, parse_pair
from morningstar.data.ohlcv import INDEX_NAME
from morningstar.errors import DataFormatError

__all__ = [
    "ImportedCSV",
    "UnknownLayoutError",
    "infer_timeframe",
    "parse_file_name",
    "read_ohlcv_csv",
    "timeframe_from_steps",
]


class UnknownLayoutError(DataFormatError):
    """The file is a CSV but not one of the OHLCV layouts Morningstar reads."""


_TIME_ALIASES = (
    "timestamp", "time", "datetime", "date_time", "open_time", "opentime", "open time", "gmt time",
    "local time", "unix", "unix_timestamp", "ts", "date",
)  # fmt: skip
_PRICE_ALIASES = {
    "open": ("open", "o", "<open>", "open_price", "opening price"),
    "high": ("high", "h", "<high>", "high_price", "highest price"),
    "low": ("low", "l", "<low>", "low_price", "lowest price"),
    "close": ("close", "c", "<close>", "close_price", "closing price", "last"),
    "volume": (
        "volume",
        "v",
        "vol",
        "<vol>",
        "<volume>",
        "<tickvol>",
        "volume_base",
        "base_volume",
    ),
}
_DATE_ONLY = ("date", "<date>", "day")
_TIME_ONLY = ("time", "<time>", "hour")
_QUOTES = frozenset(
    {"USD", "USDT", "USDC", "BUSD", "FDUSD", "DAI", "EUR", "GBP", "JPY", "BTC", "ETH", "BNB"}
)
_FILE_NAME = re.compile(r"^([A-Za-z0-9._]+)-(\d+[smhdwSMHDW])$")


@dataclass(frozen=True)
class ImportedCSV:
    """A CSV file read into the OHLCV contract (types only; rows as in the file)."""

    path: Path
    frame: pd.DataFrame
    layout: str
    rows_read: int
    sha256: str
    first_data_line: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    reversed_order: bool = False

    @property
    def line_numbers(self) -> np.ndarray:
        """The file line of each row of ``frame`` (descending for a newest-first file)."""
        lines = np.arange(
            self.first_data_line, self.first_data_line + len(self.frame), dtype=np.int64
        )
        return lines[::-1].copy() if self.reversed_order else lines


def parse_file_name(path: str | Path) -> tuple[str | None, Pair | None, Timeframe | None]:
    """Venue, pair and timeframe from a file name (any part may be None).

    ``VENUE_BASE_QUOTE-TF.csv`` (``BINANCE_BTC_USDT-5m.csv``), ``VENUE_SYMBOL-TF.csv`` where a
    6-letter symbol is a currency pair (``OANDA_EURUSD-1h.csv`` → EUR/USD) and any other symbol is
    quoted in USD (``US_SPY-1D.csv`` → venue ``us``, SPY/USD), or ``BASE_QUOTE-TF.csv``.
    """
    stem = Path(path).name
    for suffix in (".gz", ".csv", ".txt"):
        stem = stem.removesuffix(suffix)
    match = _FILE_NAME.match(stem)
    if match is None:
        return None, None, None
    parts, tf = match.group(1).split("_"), match.group(2)
    try:
        timeframe: Timeframe | None = parse_timeframe(tf)
    except ValueError:
        timeframe = None
    venue: str | None = None
    settle: str | None = None
    if len(parts) == 4 and parts[3].upper() == "PERP":  # BINANCE_XRP_USDT_PERP: linear perpetual
        venue, base, quote, settle = parts[0].lower(), parts[1], parts[2], parts[2]
    elif len(parts) >= 3:
        venue, base, quote = parts[0].lower(), parts[1], parts[2]
    elif len(parts) == 2 and parts[1].upper() in _QUOTES:
        base, quote = parts  # BTC_USDT-5m.csv
    elif len(parts) == 2 and parts[1].isalpha() and len(parts[1]) == 6:
        venue, base, quote = parts[0].lower(), parts[1][:3], parts[1][3:]
    elif len(parts) == 2:
        venue, base, quote = parts[0].lower(), parts[1], "USD"
    else:
        return None, None, timeframe
    pair = parse_pair(f"{base}/{quote}:{settle}" if settle else f"{base}/{quote}")
    return venue, pair, timeframe


def infer_timeframe(index: pd.DatetimeIndex) -> Timeframe | None:
    """The most common step between consecutive bars (None for < 2 bars)."""
    if len(index) < 2:
        return None
    return timeframe_from_steps(np.diff(index.as_unit("ns").asi8))


def timeframe_from_steps(steps: npt.NDArray[np.int64]) -> Timeframe | None:
    """The most common positive step (nanoseconds) as a timeframe; None without one.

    A step that makes up more than half of the steps is the most common one, and checking that
    takes one comparison per step; only irregular data pays for counting every distinct step.
    """
    if steps.size == 0:
        return None
    if int(steps.min()) <= 0:
        steps = steps[steps > 0]
        if steps.size == 0:
            return None
    head = steps[:1024]
    values, counts = np.unique(head, return_counts=True)
    candidate = values[np.argmax(counts)]
    if 2 * int(np.count_nonzero(steps == candidate)) <= steps.size:
        values, counts = np.unique(steps, return_counts=True)
        candidate = values[np.argmax(counts)]
    seconds = int(candidate // 1_000_000_000)
    return Timeframe(seconds) if seconds > 0 else None


def _sniff(path: Path, raw: bytes) -> tuple[int, bool, str]:
    """Return (lines to skip, has header, delimiter)."""
    text = raw[:65_536].decode("utf-8-sig", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    if not lines:
        raise DataFormatError("file is empty", where=str(path), hint="expected an OHLCV CSV")
    skip = 0
    # CryptoDataDownload-style banner: one field that is a URL / free text, before the header.
    if "," not in lines[0] and ";" not in lines[0] and "\t" not in lines[0] and len(lines) > 1:
        skip = 1
    sample = "\n".join(lines[skip : skip + 10])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    first = lines[skip].split(delimiter)
    has_header = any(re.search(r"[A-Za-z<]", cell) and not _looks_like_time(cell) for cell in first)
    return skip, has_header, delimiter


def _looks_like_time(cell: str) -> bool:
    return bool(re.match(r"^\s*\d{4}[-./]\d{2}[-./]\d{2}|^\s*\d{2}[./]\d{2}[./]\d{4}", cell))


def _find(columns: dict[str, str], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        if alias in columns:
            return columns[alias]
    return None


_EPOCH_MAX_NS = 4_102_444_800 * 1_000_000_000  # 2100-01-01
_TIME_SUFFIX = (
    (re.compile(r"^\d{1,2}:\d{2}:\d{2}\.\d+$"), "%H:%M:%S.%f"),
    (re.compile(r"^\d{1,2}:\d{2}:\d{2}$"), "%H:%M:%S"),
    (re.compile(r"^\d{1,2}:\d{2}$"), "%H:%M"),
)


def _bad_time(path: Path, column: str, row: int, value: object, why: str) -> DataFormatError:
    shown = "(empty)" if value is None or (isinstance(value, float) and np.isnan(value)) else (
        repr(str(value))
    )  # fmt: skip
    return DataFormatError(
        f"{why} {shown} in column {column!r}",
        where=f"{path}, data row {row}",
        hint="use ISO-8601 (2024-01-31T00:00:00Z), epoch seconds/ms, or dd.mm.yyyy HH:MM:SS",
    )


def _parse_epochs(values: pd.Series, path: Path, column: str) -> tuple[pd.DatetimeIndex, str]:
    nums = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(nums)
    if bad.any():
        row = int(np.argmax(bad))
        raise _bad_time(path, column, row + 1, values.iloc[row], "missing time")
    magnitude = float(np.median(np.abs(nums)))
    if 19_000_101 <= magnitude <= 21_001_231:  # yyyymmdd integers
        text = values.astype("int64").astype(str)
        parsed = pd.to_datetime(text, format="%Y%m%d", utc=True, errors="coerce")
        if parsed.isna().any():
            row = int(np.argmax(parsed.isna().to_numpy()))
            raise _bad_time(path, column, row + 1, text.iloc[row], "unreadable date")
        return pd.DatetimeIndex(parsed), "date_int"
    units = (("ns", 1e17, 1), ("us", 1e14, 1_000), ("ms", 1e11, 1_000_000), ("s", 1e8, 10**9))
    found = next(((u, k) for u, floor, k in units if magnitude > floor), None)
    if found is None:
        raise DataFormatError(
            f"time column {column!r} holds numbers ({magnitude:g}) that are not epoch times",
            where=str(path),
            hint="use epoch seconds/milliseconds or ISO-8601 times",
        )
    unit, to_ns = found
    scaled = nums * to_ns
    out_of_range = (scaled <= 0) | (scaled >= _EPOCH_MAX_NS)
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise _bad_time(
            path,
            column,
            row + 1,
            values.iloc[row],
            f"epoch time in {unit} out of range (1970-2100):",
        )
    whole = np.floor(nums)
    # whole units exactly in int64, the fraction (if any) rounded to the nanosecond
    ns = whole.astype(np.int64) * to_ns + np.round((nums - whole) * to_ns).astype(np.int64)
    idx = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    return idx, f"epoch_{unit}"


def _slash_order(text: pd.Series, path: Path, column: str) -> str:
    """``%d/%m/%Y`` or ``%m/%d/%Y``, decided from the whole column (never per value)."""
    parts = text.str.extract(r"^(\d{1,2})/(\d{1,2})/")
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first and month_first:
        raise DataFormatError(
            f"column {column!r} mixes day/month and month/day dates",
            where=str(path),
            hint="export the file with ISO-8601 dates (2024-01-31)",
        )
    if not day_first and not month_first:
        raise DataFormatError(
            f"dates in column {column!r} are ambiguous: no day above 12 tells day/month order",
            where=str(path),
            hint="export the file with ISO-8601 dates (2024-01-31)",
        )
    return "%d/%m/%Y" if day_first else "%m/%d/%Y"


def _parse_times(values: pd.Series, path: Path, column: str) -> tuple[pd.DatetimeIndex, str]:
    """Parse a time column with ONE format for every row; returns the UTC index and the layout."""
    if pd.api.types.is_numeric_dtype(values):
        return _parse_epochs(values, path, column)
    text = values.astype(str).str.strip()
    head = text.iloc[0] if len(text) else ""
    if re.match(r"^\d{2}\.\d{2}\.\d{4}", head):
        layout, date_fmt = "dayfirst", "%d.%m.%Y"
    elif re.match(r"^\d{4}\.\d{2}\.\d{2}", head):
        layout, date_fmt = "dotted", "%Y.%m.%d"
    elif re.match(r"^\d{1,2}/\d{1,2}/\d{4}", head):
        date_fmt = _slash_order(text, path, column)
        layout = "dayfirst_slash" if date_fmt.startswith("%d") else "monthfirst_slash"
    else:
        layout, date_fmt = "iso", ""
    if date_fmt:
        rest = head.split(" ", 1)[1].strip() if " " in head else ""
        suffix = next((f for pattern, f in _TIME_SUFFIX if pattern.match(rest)), None)
        if rest and suffix is None:
            raise _bad_time(path, column, 1, head, "unreadable time")
        fmt = f"{date_fmt} {suffix}" if suffix else date_fmt
    else:
        fmt = "ISO8601"
    parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise _bad_time(path, column, row + 1, text.iloc[row], "unreadable time")
    return pd.DatetimeIndex(parsed), layout


def read_ohlcv_csv(path: str | Path) -> ImportedCSV:
    """Read one CSV file into the OHLCV contract (index ``timestamp`` UTC, float64 columns).

    Raises:
        DataFormatError: unknown layout, unreadable time or non-numeric price, with file and row.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise DataFormatError(f"not a readable gzip file ({exc})", where=str(p)) from exc
    except FileNotFoundError as exc:
        raise DataFormatError("file not found", where=str(p)) from exc
    except OSError as exc:
        raise DataFormatError(f"cannot read file ({exc.strerror})", where=str(p)) from exc
    skip, has_header, delimiter = _sniff(p, raw)
    notes: list[str] = []
    if skip:
        notes.append("skipped a banner line before the header")
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=delimiter,
            skiprows=skip,
            header=0 if has_header else None,
            index_col=False,
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(
            f"not a readable CSV ({str(exc).splitlines()[0]})", where=str(p)
        ) from exc
    if df.empty:
        raise DataFormatError("no data rows", where=str(p), hint="expected a header and bar rows")
    first_data_line = skip + (2 if has_header else 1)

    if not has_header:
        layout, times, columns = _headerless(df, p)
    else:
        layout, times, columns = _with_header(df, p)

    data: dict[str, np.ndarray] = {}
    for name in OHLCV_COLUMNS:
        source = columns.get(name)
        if source is None:
            data[name] = np.zeros(len(df), dtype=np.float64)
            notes.append("no volume column: volume set to 0")
            continue
        series = df[source]
        numeric = pd.to_numeric(series, errors="coerce")
        bad = numeric.isna() & series.notna() & (series.astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(
                f"column {source!r} has a non-numeric value {series.iloc[row]!r}",
                where=f"{p}, line {first_data_line + row}",
                hint="prices and volume must be numbers",
            )
        data[name] = numeric.to_numpy(dtype=np.float64)

    index = times.tz_convert("UTC").as_unit("ns").rename(INDEX_NAME)
    frame = pd.DataFrame(data, index=index)
    reversed_order = False
    if len(frame) > 1 and index.is_monotonic_decreasing and index.is_unique:
        frame = frame.iloc[::-1]
        reversed_order = True
        notes.append("rows were newest-first: read in reverse")
    return ImportedCSV(
        path=p,
        frame=frame,
        layout=layout,
        rows_read=len(df),
        sha256=hashlib.sha256(raw).hexdigest(),
        first_data_line=first_data_line,
        notes=tuple(dict.fromkeys(notes)),
        reversed_order=reversed_order,
    )


def _headerless(df: pd.DataFrame, path: Path) -> tuple[str, pd.DatetimeIndex, dict[str, str]]:
    ncols = df.shape[1]
    if ncols >= 6 and pd.api.types.is_numeric_dtype(df[0]):
        times, layout = _parse_times(df[0], path, "column 1")
        if ncols == 12:
            layout = "binance_klines"
        cols = {name: df.columns[i + 1] for i, name in enumerate(OHLCV_COLUMNS)}
        return layout, times, cols
    if (
        ncols >= 7
        and not pd.api.types.is_numeric_dtype(df[0])
        and _looks_like_time(str(df[0].iloc[0]))
    ):
        # date, time, o, h, l, c, v (MetaTrader history export without a header)
        times, _ = _parse_times(df[0].astype(str) + " " + df[1].astype(str), path, "date+time")
        cols = {name: df.columns[i + 2] for i, name in enumerate(OHLCV_COLUMNS)}
        return "date_time", times, cols
    if ncols >= 5 and _looks_like_time(str(df[0].iloc[0])):
        times, layout = _parse_times(df[0], path, "column 1")
        cols = {name: df.columns[i + 1] for i, name in enumerate(OHLCV_COLUMNS) if i + 1 < ncols}
        return layout, times, cols
    raise _unknown_layout(path, [str(c) for c in df.columns], headerless=True)


def _with_header(df: pd.DataFrame, path: Path) -> tuple[str, pd.DatetimeIndex, dict[str, str]]:
    lowered: dict[str, str] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        lowered.setdefault(key, str(col))
    cols: dict[str, str] = {}
    for name, aliases in _PRICE_ALIASES.items():
        found = _find(lowered, aliases)
        if found is None and name == "volume":
            # "Volume BTC" / "Volume USDT" (CryptoDataDownload): take the first, the base volume
            found = next((orig for key, orig in lowered.items() if key.startswith("volume")), None)
        if found is not None:
            cols[name] = found
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    date_col = _find(lowered, _DATE_ONLY)
    time_col = _find(lowered, _TIME_ONLY)
    if missing:
        raise _unknown_layout(path, list(lowered.values()), headerless=False, missing=missing)
    if date_col is not None and time_col is not None and date_col != time_col:
        combined = df[date_col].astype(str).str.strip() + " " + df[time_col].astype(str).str.strip()
        times, _ = _parse_times(combined, path, f"{date_col}+{time_col}")
        return "date_time", times, cols
    time_source = _find(lowered, _TIME_ALIASES)
    if time_source is None:
        raise _unknown_layout(path, list(lowered.values()), headerless=False, missing=["time"])
    times, layout = _parse_times(df[time_source], path, time_source)
    return layout, times, cols


def _unknown_layout(
    path: Path, columns: list[str], *, headerless: bool, missing: list[str] | None = None
) -> UnknownLayoutError:
    seen = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
    what = f"missing {', '.join(missing)}" if missing else "no time and OHLC columns recognised"
    kind = "headerless file" if headerless else "columns"
    return UnknownLayoutError(
        f"unknown CSV layout: {what} ({kind}: {seen})",
        where=str(path),
        hint="expected a time column (timestamp, date/time, open_time, unix) and open, high, low, "
        "close[, volume]; see docs/data.md",
    )
