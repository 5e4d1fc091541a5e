"""Download OHLCV bars from an exchange through ccxt into the Parquet store.

The download is

* **paginated**: ``fetch_ohlcv(symbol, timeframe, since, limit)`` is called forward, page after
  page, until ``until``, the last closed bar, or the end of the exchange's history;
* **incremental and resumable**: every page is merged into the store as soon as it arrives
  (:meth:`OHLCVStore.write` is atomic and never duplicates), and a run starts one bar after the last
  stored one. An interruption (Ctrl-C, crash, retries exhausted) loses at most the page in flight;
  rerunning the same command continues with no gap and no duplicate;
* **polite**: ccxt's own rate limiter is on (``enableRateLimit``), temporary errors are retried
  under the project's one :class:`~morningstar.retry.RetryPolicy`, and a 429's ``Retry-After`` is
  honoured (up to the policy's ``max_delay_s``);
* **closed bars only**: the still-open current candle (open + timeframe > now) is never stored.

ccxt exceptions never leave this module: :func:`translate_ccxt_error` (from the ccxt adapter,
:mod:`morningstar.exchange.ccxt_client`, re-exported here with :func:`make_exchange` and
:func:`api_base`) maps them onto :mod:`morningstar.errors` with a one-line message naming the
exchange, the URL and the fix.

Typical use (what ``morningstar data download`` does)::

    exchange = make_exchange("binance")
    try:
        with rich_progress() as on_page:
            result = download_ohlcv(exchange, "binance", "BTC/USDT", "5m", store,
                                    since="2024-01-01", on_page=on_page)
    finally:
        exchange.close()
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import Pair, parse_pair
from morningstar.data.ohlcv import from_arrays
from morningstar.data.parquet_store import OHLCVStore
from morningstar.data.validation import ValidationFailedError, resolve_policies, validate
from morningstar.errors import (
    BadSymbolError,
    ExchangeError,
    RateLimitedError,
    TemporaryError,
    UserInputError,
)
from morningstar.exchange.ccxt_client import (
    EXCHANGE_DEFAULT_OPTIONS,
    api_base,
    call_ccxt,
    make_exchange,
    retry_after_s,
    translate_ccxt_error,
)
from morningstar.retry import RetryPolicy

__all__ = [
    "DEFAULT_LOOKBACK",
    "EXCHANGE_DEFAULT_OPTIONS",
    "DownloadProgress",
    "DownloadResult",
    "api_base",
    "download_ohlcv",
    "make_exchange",
    "rich_progress",
    "translate_ccxt_error",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How far back a first download starts when no ``since`` is given and nothing is stored.
DEFAULT_LOOKBACK = pd.Timedelta(days=30)

TimeLike = int | str | datetime | pd.Timestamp


# --------------------------------------------------------------------------- download
@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands, reported after each stored page (and once at the end).

    Attributes:
        pair: the unified symbol, e.g. ``BTC/USDT``.
        timeframe: canonical timeframe, e.g. ``5m``.
        page: pages stored so far.
        bars_fetched: closed bars received so far in this run.
        bars_added: bars new to the store so far (replaced ones not counted).
        last_bar: open time of the last bar stored, None before the first page.
        start: open time the run started from (UTC).
        target_end: where the run stops at the latest: ``until`` or "now" when it started (UTC).
        retries: retries so far.
        done: True on the final report.
    """

    pair: str
    timeframe: str
    page: int
    bars_fetched: int
    bars_added: int
    last_bar: pd.Timestamp | None
    start: pd.Timestamp
    target_end: pd.Timestamp
    retries: int
    done: bool = False

    @property
    def fraction(self) -> float:
        """Share of the time range covered, 0.0 to 1.0."""
        if self.done:
            return 1.0
        total = (self.target_end - self.start).value
        if self.last_bar is None or total <= 0:
            return 0.0
        covered = (self.last_bar - self.start).value + parse_timeframe(self.timeframe).ns
        return min(1.0, max(0.0, covered / total))


@dataclass(frozen=True)
class DownloadResult:
    """What one :func:`download_ohlcv` run did.

    Attributes:
        venue: store venue name.
        pair: the market.
        timeframe: the bar duration.
        path: the Parquet file written.
        pages: pages fetched that held closed bars.
        bars_fetched: closed bars received.
        bars_added: bars new to the store.
        first: open time of the first bar received, None when none.
        last: open time of the last bar received, None when none.
        retries: retries spent on temporary errors.
        start: open time the run started from.
        target_end: ``until``, or "now" when the run started.
    """

    venue: str
    pair: Pair
    timeframe: Timeframe
    path: Path
    pages: int
    bars_fetched: int
    bars_added: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    retries: int
    start: pd.Timestamp
    target_end: pd.Timestamp


def download_ohlcv(
    exchange: ccxt.Exchange,
    venue: str,
    pair: Pair | str,
    timeframe: Timeframe | str,
    store: OHLCVStore,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    full: bool = False,
    page_limit: int = 1000,
    retry: RetryPolicy | None = None,
    now_ms: Callable[[], int] | None = None,
    on_page: Callable[[DownloadProgress], None] | None = None,
    policies: Mapping[str, str] | None = None,
    flush_bars: int = 20_000,
    flush_seconds: float = 30.0,
) -> DownloadResult:
    """Download closed bars of ``pair`` at ``timeframe`` into ``store``, page by page.

    Where it starts:

    * something stored and ``full`` false: one bar after the last stored bar (``since`` is then
      ignored, so the file stays gapless: a rerun after an interruption resumes exactly there);
    * ``full`` true: at ``since``, or at the first stored bar when ``since`` is None; overlapping
      bars are re-downloaded and replace the stored ones;
    * nothing stored: at ``since``, or :data:`DEFAULT_LOOKBACK` (30 days) before now when None.
      ``since=0`` asks for the exchange's whole history.

    It stops at ``until`` (exclusive), at the still-open candle, or when the exchange returns no
    bar at or after the requested start. Each page is validated (``policies``, as for imports)
    as it arrives; validated pages are buffered and merged into the store every ``flush_bars``
    bars (at least a tenth of the stored file, so rewriting the file stays linear overall) or
    every ``flush_seconds``, and always when the download stops for any reason (done,
    ``KeyboardInterrupt``, an error that outlasted the retries): a rerun resumes right after the
    last stored bar, with no gap and no duplicate. Only a hard kill can lose the buffer.

    Args:
        exchange: a ccxt exchange, typically from :func:`make_exchange`.
        venue: the store's venue name (usually the exchange id).
        pair: ``BTC/USDT`` or a :class:`Pair`; must be a market of the exchange.
        timeframe: ``5m`` or a :class:`Timeframe`; must be one the exchange offers.
        store: where bars go.
        since: first bar open time: epoch milliseconds, an ISO date or a datetime (naive = UTC).
        until: exclusive end, same forms; None means up to the last closed bar.
        full: re-download from ``since`` even when bars are stored.
        page_limit: bars asked per request (exchanges may return fewer).
        retry: retry policy for temporary errors (default :class:`RetryPolicy`).
        now_ms: clock in epoch ms deciding which candle is still open (default: the host clock).
        on_page: progress callback, called after each page and once more with ``done=True``;
            exceptions it raises (e.g. ``KeyboardInterrupt``) stop the download with every
            earlier page stored.
        policies: validation policies per check (``{"ohlc_inconsistent": "drop"}``); defaults
            of :mod:`morningstar.data.validation` otherwise (bad values are errors).
        flush_bars: minimum buffered bars before a merge into the store.
        flush_seconds: merge at least this often while downloading.

    Returns:
        A :class:`DownloadResult`.

    Raises:
        BadSymbolError: unknown pair or timeframe on this exchange (with a hint).
        UserInputError: unreadable pair, timeframe or dates, or ``page_limit`` < 1.
        NetworkError, RateLimitedError, ExchangeUnavailableError: temporary errors that outlasted
            the retry policy; rerunning resumes where the download stopped.
        ExchangeError: the exchange refused the request.
        DataValidationError: the exchange sent bars that break the OHLCV contract.
        StorageError: the store could not be written.
    """
    policy = retry or RetryPolicy()
    clock: Callable[[], int] = now_ms or exchange.milliseconds
    if page_limit < 1:
        raise UserInputError(f"page_limit must be at least 1, got {page_limit}", where="page_limit")
    the_pair = _parse_pair(pair)
    symbol = str(the_pair)
    since_ms, until_ms = _to_ms(since, "since"), _to_ms(until, "until")
    resolve_policies(policies)  # bad policy names fail before any network call
    retries = 0

    def on_retry(attempt: int, err: TemporaryError, wait: float) -> None:
        nonlocal retries
        retries += 1
        if isinstance(err, RateLimitedError):
            after = retry_after_s(exchange)
            extra = min(after, policy.max_delay_s) - wait if after is not None else 0.0
            if extra > 0:
                log.info("%s asks to wait %.0fs before retrying", exchange.id, after)
                policy.sleep(extra)

    call_ccxt(exchange, exchange.load_markets, policy, action="loading markets", on_retry=on_retry)
    _check_symbol(exchange, symbol)
    tf, tf_text = _check_timeframe(exchange, timeframe)
    if not exchange.has.get("fetchOHLCV"):
        raise UserInputError(
            f"{exchange.id} does not provide OHLCV bars through ccxt",
            where=f"exchange {exchange.id}",
            hint="download from another exchange",
        )
    now0 = clock()
    start = _start_ms(store, venue, the_pair, tf, since_ms, full=full, now=now0)
    target = until_ms if until_ms is not None else now0
    path = store.path(venue, the_pair, tf)
    log.info("downloading %s %s from %s: %s → %s", symbol, tf, exchange.id, _ts(start), _ts(target))

    pages = fetched = added = 0
    first_ms: int | None = None
    last_ms: int | None = None
    cursor = start
    buffer: list[pd.DataFrame] = []
    buffered = 0
    stored_rows = store.info(venue, the_pair, tf).rows if store.exists(venue, the_pair, tf) else 0
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal added, buffered, stored_rows, last_flush
        if buffer:
            frame = pd.concat(buffer) if len(buffer) > 1 else buffer[0]
            written = store.write(
                venue, the_pair, tf, frame, metadata={"source": f"ccxt:{exchange.id}"}
            )
            added += written.rows_added
            stored_rows = written.rows_after
            buffer.clear()
            buffered = 0
        last_flush = time.monotonic()

    def progress(done: bool = False) -> DownloadProgress:
        return DownloadProgress(
            pair=symbol,
            timeframe=str(tf),
            page=pages,
            bars_fetched=fetched,
            bars_added=added + buffered,
            last_bar=None if last_ms is None else _ts(last_ms),
            start=_ts(start),
            target_end=_ts(target),
            retries=retries,
            done=done,
        )

    try:
        while True:
            now = clock()
            horizon = now if until_ms is None else min(until_ms, now)
            if cursor >= horizon or cursor + tf.ms > now:
                break
            limit = max(1, min(page_limit, math.ceil((horizon - cursor) / tf.ms)))
            since_arg = cursor

            def fetch(since_arg: int = since_arg, limit: int = limit) -> list[list[Any]]:
                return list(
                    exchange.fetch_ohlcv(symbol, tf_text, since=since_arg, limit=limit) or []
                )

            raw = call_ccxt(
                exchange,
                fetch,
                policy,
                action=f"fetching {symbol} {tf_text} from {_ts(cursor):%Y-%m-%d %H:%M}",
                on_retry=on_retry,
            )
            rows = _rows_in_range(raw, cursor, until_ms, exchange.id)
            if not rows:
                log.debug("%s returned no bar at or after %s: done", exchange.id, cursor)
                break
            closed = [r for r in rows if r[0] + tf.ms <= now]
            if closed:
                frame = _page_frame(closed, exchange.id, symbol, tf, policies)
                buffer.append(frame)
                buffered += len(frame)
                pages += 1
                fetched += len(closed)
                first_ms = closed[0][0] if first_ms is None else first_ms
                last_ms = closed[-1][0]
                log.debug("page %d: %d bars up to %s", pages, len(closed), _ts(last_ms))
                if (
                    buffered >= max(flush_bars, stored_rows // 10)
                    or time.monotonic() - last_flush >= flush_seconds
                ):
                    flush()
                if on_page is not None:
                    on_page(progress())
            if len(closed) < len(rows):  # reached the still-open candle
                break
            cursor = rows[-1][0] + tf.ms
    finally:
        flush()

    if on_page is not None:
        on_page(progress(done=True))
    log.info(
        "%s %s: %d bars in %d pages, %d new, %d retries", symbol, tf, fetched, pages, added, retries
    )
    return DownloadResult(
        venue=venue,
        pair=the_pair,
        timeframe=tf,
        path=path,
        pages=pages,
        bars_fetched=fetched,
        bars_added=added,
        first=None if first_ms is None else _ts(first_ms),
        last=None if last_ms is None else _ts(last_ms),
        retries=retries,
        start=_ts(start),
        target_end=_ts(target),
    )


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def _parse_pair(pair: Pair | str) -> Pair:
    if isinstance(pair, Pair):
        return pair
    try:
        return parse_pair(pair)
    except ValueError as exc:
        raise UserInputError(str(exc), where="pair", hint="e.g. BTC/USDT") from exc


def _to_ms(value: TimeLike | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise UserInputError(f"invalid {what} {value!r}", hint="use an ISO date such as 2024-01-31")
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise UserInputError(
            f"invalid {what} {value!r}", where=what, hint="use an ISO date such as 2024-01-31"
        ) from exc
    if pd.isna(ts):
        raise UserInputError(f"invalid {what} {value!r}", where=what, hint="give a date")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _check_symbol(exchange: ccxt.Exchange, symbol: str) -> None:
    markets = exchange.markets or {}
    if symbol in markets:
        if markets[symbol].get("active") is False:
            log.warning("%s lists %s as inactive; its history may end early", exchange.id, symbol)
        return
    close = difflib.get_close_matches(symbol, list(markets), n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"{exchange.id} lists {len(markets)} markets; write the pair as BASE/QUOTE"
    )
    raise BadSymbolError(
        f"{exchange.id} has no market {symbol}",
        where=api_base(exchange),
        hint=hint,
    )


def _check_timeframe(exchange: ccxt.Exchange, timeframe: Timeframe | str) -> tuple[Timeframe, str]:
    usable: dict[str, Timeframe] = {}
    for name in exchange.timeframes or {}:
        with contextlib.suppress(ValueError):  # months have no fixed length
            usable[str(name)] = parse_timeframe(str(name))
    text = str(timeframe).strip()
    if text not in usable:  # same duration under the exchange's spelling ("60m" → "1h")?
        with contextlib.suppress(ValueError):
            wanted = parse_timeframe(text)
            text = next((name for name, tf in usable.items() if tf == wanted), text)
    if text not in usable:
        why = "fixed-length timeframe" if text in (exchange.timeframes or {}) else "timeframe"
        raise BadSymbolError(
            f"{exchange.id} has no {why} {text!r}",
            where=api_base(exchange),
            hint=f"use one of {', '.join(usable) or 'none'}",
        )
    return usable[text], text


def _start_ms(
    store: OHLCVStore,
    venue: str,
    pair: Pair,
    tf: Timeframe,
    since_ms: int | None,
    *,
    full: bool,
    now: int,
) -> int:
    last = store.last_timestamp(venue, pair, tf)
    if last is not None and not full:
        resume = int(last.value // 1_000_000) + tf.ms
        if since_ms is not None and since_ms != resume:
            log.info(
                "%s %s: resuming after the last stored bar (%s); since=%s ignored (pass full=True "
                "to download from since)",
                pair,
                tf,
                last,
                _ts(since_ms),
            )
        return resume
    if since_ms is not None:
        return since_ms
    if last is not None:  # full=True without since: refresh everything stored
        info = store.info(venue, pair, tf)
        if info.first is not None:
            return int(info.first.value // 1_000_000)
    lookback = int(DEFAULT_LOOKBACK.value // 1_000_000)
    return (now - lookback) // tf.ms * tf.ms


def _rows_in_range(
    raw: list[list[Any]], cursor: int, until_ms: int | None, eid: str
) -> list[list[Any]]:
    """Rows with ``cursor <= open < until``, sorted, one per open time (the last one wins)."""
    by_time: dict[int, list[Any]] = {}
    for row in raw:
        if not isinstance(row, list | tuple) or len(row) < 6 or row[0] is None:
            raise ExchangeError(
                f"{eid} sent a malformed OHLCV row {str(row)[:80]}",
                where=f"{eid} fetch_ohlcv",
                hint="report it; retrying will not help",
            )
        t = int(row[0])
        if t >= cursor and (until_ms is None or t < until_ms):
            by_time[t] = [t, *row[1:6]]
    return [by_time[t] for t in sorted(by_time)]


def _page_frame(
    rows: list[list[Any]],
    eid: str,
    symbol: str,
    tf: Timeframe,
    policies: Mapping[str, str] | None,
) -> pd.DataFrame:
    """Build one page and validate it with the user's policies (bad bars are errors by default)."""
    cols = list(zip(*rows, strict=True))
    ts = np.asarray(cols[0], dtype=np.int64)
    vals = [np.asarray([np.nan if x is None else x for x in c], dtype=np.float64) for c in cols[1:]]
    frame = from_arrays(ts, *vals)
    where = f"{eid} {symbol} {tf}"
    try:
        clean, _report = validate(frame, tf, calendar="crypto", policies=policies, where=where)
    except ValidationFailedError as exc:
        raise ValidationFailedError(
            f"{exc.message}; the bars before it are stored",
            report=exc.report,
            hint="rerun with --policy CHECK=drop (or warn) to store the rest, e.g. "
            "--policy ohlc_inconsistent=drop",
        ) from None
    return clean


# --------------------------------------------------------------------------- rich progress
@contextlib.contextmanager
def rich_progress(
    *, console: Console | None = None, transient: bool = False
) -> Iterator[Callable[[DownloadProgress], None]]:
    """A rich progress display; yields an ``on_page`` callback for :func:`download_ohlcv`.

    One bar per (pair, timeframe), so several downloads can share one display. The bar measures
    the time range covered, and shows bars fetched and the last bar's time.

    Args:
        console: where to draw (default: rich's stdout console).
        transient: erase the display when the block ends.
    """
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[bars]} bars"),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def on_page(p: DownloadProgress) -> None:
        key = (p.pair, p.timeframe)
        if key not in tasks:
            tasks[key] = progress.add_task(f"{p.pair} {p.timeframe}", total=1000, bars=0, last="")
        last = "" if p.last_bar is None else f"→ {p.last_bar:%Y-%m-%d %H:%M}"
        progress.update(
            tasks[key], completed=round(p.fraction * 1000), bars=f"{p.bars_fetched:,}", last=last
        )

    with progress:
        yield on_page
