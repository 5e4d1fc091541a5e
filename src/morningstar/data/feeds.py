"""Market feeds: where the workflow's closed bars come from (historical replay or live polling).

The :class:`MarketFeed` port is what the trading cycle's step a ("fetch") calls, whatever the mode
(architecture principle 1):

* :meth:`MarketFeed.next_bars`: the CLOSED bars not yet delivered, as ``(pair, Bar)`` in time order
  (pairs in their configured order within one time); every bar is delivered once;
* :meth:`MarketFeed.warmup`: the last ``n`` closed bars of a pair up to the last one delivered (an
  OHLCV contract frame), for features; never a bar the workflow has not been given (point in time);
* :meth:`MarketFeed.close`: release connections (idempotent).

Two adapters:

* :class:`ReplayFeed` (backtests): replays bar frames, one time step per call, all pairs merged in
  time order; it also exposes the full frames for batched, point-in-time predictions.
* :class:`CcxtPollingFeed` (paper mode): polls ``fetch_ohlcv`` through ccxt, with the project's
  error translation (:mod:`morningstar.exchange.ccxt_client`) and retry policy
  (:mod:`morningstar.retry`) for temporary errors. It delivers only closed bars (a bar is closed
  once the injected clock is at or past its close time), never the same bar twice, fetches every
  bar missed since the last one delivered (a late poll, a restart) page by page, and resumes after
  a given last bar per pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, Protocol, runtime_checkable

import ccxt
import numpy as np
import pandas as pd

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import Bar
from morningstar.data.ohlcv import empty_ohlcv, from_arrays, to_contract
from morningstar.errors import ExchangeError, UserInputError
from morningstar.exchange.ccxt_client import call_ccxt
from morningstar.retry import RetryPolicy

__all__ = ["CcxtPollingFeed", "MarketFeed", "ReplayFeed"]

log = logging.getLogger(__name__)

TimeLike = str | datetime | pd.Timestamp


@runtime_checkable
class MarketFeed(Protocol):
    """The port every feed implements (see the module docstring)."""

    def next_bars(self) -> list[tuple[str, Bar]]:
        """Closed bars not delivered yet, as ``(pair, bar)`` in time order ([] when none)."""
        ...

    def warmup(self, pair: str, n: int) -> pd.DataFrame:
        """The last ``n`` closed bars of ``pair`` up to the last one delivered (fewer when
        fewer are known), as an OHLCV contract frame."""
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def _timeframe(timeframe: str | Timeframe) -> Timeframe:
    if isinstance(timeframe, Timeframe):
        return timeframe
    try:
        return parse_timeframe(timeframe)
    except ValueError as exc:
        raise UserInputError(str(exc), where="timeframe", hint="e.g. 5m, 1h, 1d") from exc


def _utc(value: TimeLike, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"invalid {what} {value!r}", where=what,
                             hint="use an ISO date such as 2024-01-31") from exc  # fmt: skip
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------- replay
class ReplayFeed:
    """Historical replay of bar frames (backtests): each closed bar once, pairs merged in time.

    Each :meth:`next_bars` call delivers ONE time step: the bars of every pair that has a bar at
    the next open time (pairs in the order of ``frames``); [] once the replay is over. Bars
    before ``start`` are not replayed but are history: :meth:`warmup` returns them.

    Args:
        frames: OHLCV frames (the contract, or a ``timestamp`` column) keyed by pair.
        timeframe: the bars' duration (``5m``); a bar's ``close_ts`` is its open + this.
        start: first bar open time replayed (inclusive; naive = UTC); None: the first bar.
        end: replay stops before this open time (exclusive); None: the last bar.

    Raises:
        UserInputError: no frames, a bad timeframe or date, or bars not strictly increasing.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        timeframe: str | Timeframe,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> None:
        if not frames:
            raise UserInputError("a replay needs at least one pair's bars", where="frames")
        self.timeframe = _timeframe(timeframe)
        self._frames: dict[str, pd.DataFrame] = {}
        self._next: dict[str, int] = {}  # per pair: row of the next bar to deliver
        step = pd.Timedelta(seconds=self.timeframe.seconds)
        lo_ns = None if start is None else _utc(start, "start").value
        hi_ns = None if end is None else _utc(end, "end").value
        all_ts: list[np.ndarray] = []
        all_pair: list[np.ndarray] = []
        all_row: list[np.ndarray] = []
        self._cols: dict[str, tuple[list[datetime], list[datetime], list[list[float]]]] = {}
        for k, (pair, frame) in enumerate(frames.items()):
            df = to_contract(frame, where=f"replay bars of {pair}")
            index = pd.DatetimeIndex(df.index)
            ns = index.asi8
            if len(ns) > 1 and not bool(np.all(np.diff(ns) > 0)):
                raise UserInputError(f"bars of {pair} are not strictly increasing",
                                     where=f"replay bars of {pair}")  # fmt: skip
            first = 0 if lo_ns is None else int(np.searchsorted(ns, lo_ns, side="left"))
            stop = len(ns) if hi_ns is None else int(np.searchsorted(ns, hi_ns, side="left"))
            self._frames[pair] = df
            self._next[pair] = first
            if stop > first:
                all_ts.append(ns[first:stop])
                all_pair.append(np.full(stop - first, k, dtype=np.int64))
                all_row.append(np.arange(first, stop, dtype=np.int64))
            values = [df[c].to_numpy(dtype=np.float64)[first:stop].tolist()
                      for c in ("open", "high", "low", "close", "volume")]  # fmt: skip
            opens = list(index[first:stop].to_pydatetime())
            closes = list((index[first:stop] + step).to_pydatetime())
            self._cols[pair] = (opens, closes, values)
        self._pairs = list(self._frames)
        self._offset = {pair: self._next[pair] for pair in self._pairs}
        if all_ts:
            ts = np.concatenate(all_ts)
            pair_id = np.concatenate(all_pair)
            order = np.lexsort((pair_id, ts))  # by time, then pair order
            ts = ts[order]
            self._order_pair: list[int] = pair_id[order].tolist()
            self._order_row: list[int] = np.concatenate(all_row)[order].tolist()
            cuts = np.flatnonzero(np.diff(ts)) + 1
            self._bounds: list[int] = [0, *cuts.tolist(), len(ts)]
            self._step_ns = ts[np.asarray(self._bounds[:-1], dtype=np.int64)]
            self._pair_np = pair_id[order]
        else:
            self._order_pair, self._order_row, self._bounds = [], [], [0]
            self._step_ns = np.empty(0, dtype=np.int64)
            self._pair_np = np.empty(0, dtype=np.int64)
        self._step = 0

    # ----------------------------------------------------------------- the port
    def next_bars(self) -> list[tuple[str, Bar]]:
        """The bars of the next time step ([] once the replay is over)."""
        step = self._step
        if step + 1 >= len(self._bounds):
            return []
        self._step = step + 1
        out: list[tuple[str, Bar]] = []
        for k in range(self._bounds[step], self._bounds[step + 1]):
            pair = self._pairs[self._order_pair[k]]
            row = self._order_row[k]
            opens, closes, (o, h, lo, c, v) = self._cols[pair]
            i = row - self._offset[pair]
            out.append((pair, Bar(opens[i], o[i], h[i], lo[i], c[i], v[i], closes[i])))
            self._next[pair] = row + 1
        return out

    def warmup(self, pair: str, n: int) -> pd.DataFrame:
        """The last ``n`` bars of ``pair`` up to the last one delivered (history before
        ``start`` included): a slice of the frame, not to be modified."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        stop = self._next[pair]
        return self._frames[pair].iloc[max(0, stop - n) : stop]

    def close(self) -> None:
        """Nothing to release."""

    # ----------------------------------------------------------------- extras
    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs, in order."""
        return tuple(self._pairs)

    @property
    def frames(self) -> Mapping[str, pd.DataFrame]:
        """The full frames (every bar, also those not delivered yet: for batched predictions,
        which must use row ``i`` only for the decision at bar ``i``)."""
        return dict(self._frames)

    def cursor(self, pair: str) -> int:
        """Row (in :attr:`frames`) of the next bar of ``pair`` to deliver."""
        return self._next[pair]

    @property
    def steps_left(self) -> int:
        """Time steps not delivered yet."""
        return len(self._bounds) - 1 - self._step

    @property
    def done(self) -> bool:
        """True once every bar has been delivered."""
        return self.steps_left == 0

    # ----------------------------------------------------------------- skipping ahead
    @property
    def step(self) -> int:
        """The time steps delivered so far (the index of the next one)."""
        return self._step

    @property
    def step_times(self) -> np.ndarray:
        """The open time (epoch ns) of every time step of the replay."""
        return self._step_ns

    def step_of_rows(self, pair: str) -> np.ndarray:
        """For each replayed row of ``pair`` (from the first one replayed, in order), the time
        step that delivers it."""
        k = self._pairs.index(pair)
        steps: np.ndarray = np.repeat(np.arange(len(self._bounds) - 1), np.diff(self._bounds))
        out: np.ndarray = steps[self._pair_np == k]
        return out

    def first_replayed_row(self, pair: str) -> int:
        """Row (in :attr:`frames`) of the first replayed bar of ``pair``."""
        return self._offset[pair]

    def advance(self, steps: int) -> dict[str, int]:
        """Deliver the next ``steps`` time steps at once, without building their bars (the
        caller handles them in bulk); the number of bars skipped per pair (pairs with none
        left out). :meth:`last_bar` then gives each pair's last one."""
        start = self._step
        stop = min(start + max(steps, 0), len(self._bounds) - 1)
        if stop <= start:
            return {}
        segment = self._pair_np[self._bounds[start] : self._bounds[stop]]
        counts = np.bincount(segment, minlength=len(self._pairs))
        self._step = stop
        out: dict[str, int] = {}
        for k, count in enumerate(counts.tolist()):
            if count:
                pair = self._pairs[k]
                self._next[pair] += count
                out[pair] = count
        return out

    def last_bar(self, pair: str) -> Bar | None:
        """The last bar of ``pair`` delivered, or None before its first."""
        i = self._next[pair] - 1 - self._offset[pair]
        if i < 0:
            return None
        opens, closes, (o, h, lo, c, v) = self._cols[pair]
        return Bar(opens[i], o[i], h[i], lo[i], c[i], v[i], closes[i])


# --------------------------------------------------------------------------- live polling
_ROW: Final = 6  # ms, open, high, low, close, volume


class CcxtPollingFeed:
    """Closed bars of an exchange, polled through ccxt (paper mode).

    Each :meth:`next_bars` call polls the exchange when a bar may have closed since the last
    bar delivered (at most once per ``poll_every_s`` while the exchange lags), and returns the
    closed bars after the last one delivered, every pair merged in time order: one bar per pair
    when called on time, all the missed ones (page by page) after a late call or a restart.
    Between polls it returns [] without a request; :meth:`seconds_until_next_poll` says how long
    the caller may sleep.

    Start: with ``last_bars`` (the open time of the last bar the run processed, per pair), the
    first bars delivered are the ones after it; without, the feed starts at the last closed bar
    at the first poll: it is loaded as history for :meth:`warmup` and not delivered. Either way
    ``history`` bars up to the starting point are fetched for :meth:`warmup`.

    Step by step (``step_by_step=True``, what the trading workflow uses): each call delivers ONE
    time step (the bars of every pair at the next open time), as :class:`ReplayFeed` does; the
    bars a late poll fetched beyond it wait in the feed, are delivered by the next calls without
    a request, and reach :meth:`warmup` only once delivered. A workflow deciding the bars of a
    catch-up one after the other thus sees, for each, only the bars up to it (point in time),
    and a stop requested meanwhile takes effect after the current time step, not after the
    whole catch-up. Without it, one call delivers every bar fetched (and :meth:`warmup` already
    holds them all).

    Args:
        exchange: a ccxt exchange (:func:`morningstar.exchange.ccxt_client.make_exchange`).
        pairs: markets, ``BASE/QUOTE``.
        timeframe: bar duration (``5m``); must be one the exchange offers.
        clock: the current time (aware UTC); the exchange's clock in tests.
        poll_every_s: minimum seconds between two polls while an expected bar has not come.
        retry: retry policy for temporary errors (default :class:`RetryPolicy`).
        last_bars: per pair, the open time of the last bar already processed (resume).
        history: bars kept per pair for :meth:`warmup`.
        page_limit: bars asked per request.
        settle_s: seconds after a bar's close before polling for it (exchanges publish the
            final candle a moment after the close).
        step_by_step: deliver one time step per call (see above).
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        pairs: Sequence[str],
        timeframe: str | Timeframe,
        *,
        clock: Callable[[], datetime],
        poll_every_s: float = 10.0,
        retry: RetryPolicy | None = None,
        last_bars: Mapping[str, datetime] | None = None,
        history: int = 500,
        page_limit: int = 1000,
        settle_s: float = 0.0,
        step_by_step: bool = False,
    ) -> None:
        if not pairs:
            raise UserInputError("a feed needs at least one pair", where="pairs")
        if history < 1 or page_limit < 1 or poll_every_s < 0 or settle_s < 0:
            raise UserInputError(
                "history and page_limit must be >= 1, poll_every_s and settle_s >= 0",
                where="CcxtPollingFeed",
            )
        self.exchange = exchange
        self.pairs = tuple(pairs)
        self.timeframe = _timeframe(timeframe)
        self._tf_ms = self.timeframe.ms
        self._clock = clock
        self._poll_ms = int(poll_every_s * 1000)
        self._settle_ms = int(settle_s * 1000)
        self._retry = retry or RetryPolicy()
        self._history = history
        self._page_limit = page_limit
        self._step_by_step = step_by_step
        self._last: dict[str, int] = {}  # per pair: open ms of the last bar fetched
        self._given: dict[str, int] = {}  # per pair: open ms of the last bar delivered
        # fetched, not delivered yet (step by step): (open ms, pair index, pair, bar, row)
        self._pending: list[tuple[int, int, str, Bar, list[float]]] = []
        for pair, ts in (last_bars or {}).items():
            if pair not in self.pairs:
                raise UserInputError(f"last_bars names {pair}, not a pair of the feed",
                                     where="last_bars")  # fmt: skip
            if ts.tzinfo is None:
                raise UserInputError(f"last bar of {pair} must be aware (UTC)", where="last_bars")
            self._last[pair] = self._given[pair] = round(ts.timestamp() * 1000)
        self._buffers: dict[str, list[list[float]]] = {}
        self._last_poll_ms: int | None = None
        self.polls = 0
        self.retries = 0
        self._closed = False

    # ----------------------------------------------------------------- the port
    def next_bars(self) -> list[tuple[str, Bar]]:
        """Closed bars after the last ones delivered (see the class docstring).

        Raises:
            NetworkError, RateLimitedError, ExchangeUnavailableError: temporary errors that
                outlasted the retry policy (nothing is lost: the next call asks again).
            ExchangeError, BadSymbolError: the exchange refused the request.
        """
        if self._closed:
            return []
        if self._pending:
            return self._deliver()
        now = self._now_ms()
        if now < self._next_poll_ms(now):
            return []
        self._last_poll_ms = now
        self.polls += 1
        out: list[tuple[int, int, str, Bar, list[float]]] = []
        for k, pair in enumerate(self.pairs):
            self._load_history(pair, now)
            since = self._last[pair] + self._tf_ms
            if since + self._tf_ms > now:
                continue  # the next bar has not closed yet
            rows = self._fetch_closed(pair, since, now)
            for row in rows:
                out.append((int(row[0]), k, pair, self._bar(row), row))
            if rows:
                expected = (int(rows[-1][0]) - since) // self._tf_ms + 1
                if expected != len(rows):
                    log.warning("%s %s: %d bars missing on the exchange between %s and %s",
                                pair, self.timeframe, expected - len(rows), _iso(since),
                                _iso(int(rows[-1][0])))  # fmt: skip
                self._last[pair] = int(rows[-1][0])
        out.sort(key=lambda item: (item[0], item[1]))
        self._pending = out
        return self._deliver()

    def _deliver(self) -> list[tuple[str, Bar]]:
        """The next time step of the fetched bars (every one of them when not step by step);
        delivered bars join the warm-up buffers."""
        pending = self._pending
        if not pending:
            return []
        n = len(pending)
        if self._step_by_step:
            n = 1
            while n < len(pending) and pending[n][0] == pending[0][0]:
                n += 1
        step, self._pending = pending[:n], pending[n:]
        for ms, _k, pair, _bar, row in step:
            self._keep(pair, [row])
            self._given[pair] = ms
        return [(pair, bar) for _, _, pair, bar, _ in step]

    def warmup(self, pair: str, n: int) -> pd.DataFrame:
        """The last ``n`` closed bars of ``pair`` up to the last one delivered (at most
        ``history``; loads them from the exchange on first use)."""
        if pair not in self.pairs:
            raise UserInputError(f"{pair} is not a pair of the feed", where="pair")
        self._load_history(pair, self._now_ms())
        rows = self._buffers.get(pair, [])[-n:] if n > 0 else []
        if not rows:
            return empty_ohlcv()
        cols = list(zip(*rows, strict=True))
        return from_arrays(np.asarray(cols[0], dtype=np.int64), *cols[1:6])

    def close(self) -> None:
        """Stop polling (idempotent); the ccxt exchange is the caller's to close."""
        self._closed = True

    # ----------------------------------------------------------------- extras
    def last_bar(self, pair: str) -> datetime | None:
        """Open time of the last bar delivered (or loaded as the starting point) of ``pair``."""
        ms = self._given.get(pair)
        return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)

    @property
    def pending(self) -> int:
        """Bars fetched and not delivered yet (step by step: the rest of a catch-up)."""
        return len(self._pending)

    def seconds_until_next_poll(self) -> float:
        """Seconds until :meth:`next_bars` will poll again (0.0: now, or bars are waiting)."""
        if self._pending:
            return 0.0
        now = self._now_ms()
        return max(0.0, (self._next_poll_ms(now) - now) / 1000)

    # ----------------------------------------------------------------- internals
    def _now_ms(self) -> int:
        now = self._clock()
        if now.tzinfo is None:
            raise UserInputError("the feed's clock must return aware (UTC) times", where="clock")
        return round(now.timestamp() * 1000)

    def _next_poll_ms(self, now: int) -> int:
        """When the next poll is due: at the close of the earliest next bar (+ settle), not
        sooner than ``poll_every_s`` after the last poll."""
        if self._last_poll_ms is None or len(self._last) < len(self.pairs):
            return now
        due = min(self._last.values()) + 2 * self._tf_ms + self._settle_ms
        return max(due, self._last_poll_ms + self._poll_ms)

    def _call(self, fn: Callable[[], Any], action: str) -> Any:
        def counted(_attempt: int, _err: Exception, _wait: float) -> None:
            self.retries += 1

        return call_ccxt(self.exchange, fn, self._retry, action=action, on_retry=counted)

    def _fetch_closed(self, pair: str, since: int, now: int) -> list[list[float]]:
        """Closed bars of ``pair`` opened at or after ``since``, page by page, in order."""
        out: list[list[float]] = []
        cursor = since
        tf = str(self.timeframe)
        while cursor + self._tf_ms <= now:
            limit = max(1, min(self._page_limit, (now - cursor) // self._tf_ms + 1))
            raw = self._call(
                partial(self.exchange.fetch_ohlcv, pair, tf, since=cursor, limit=limit),
                f"polling {pair} {tf} bars from {_iso(cursor)}",
            )
            rows = _rows(raw or [], cursor, self.exchange.id)
            closed = [r for r in rows if r[0] + self._tf_ms <= now]
            out.extend(closed)
            if not rows or len(closed) < len(rows) or len(rows) < limit:
                break  # the exchange has nothing more, or we reached the open candle
            cursor = int(rows[-1][0]) + self._tf_ms
        return out

    def _load_history(self, pair: str, now: int) -> None:
        """Fill the warm-up buffer up to the starting point, once per pair."""
        if pair in self._buffers:
            return
        last = self._last.get(pair)
        if last is None:  # fresh start: the last closed bar is the starting point
            last = (now // self._tf_ms - 1) * self._tf_ms
        since = last - (self._history - 1) * self._tf_ms
        rows = [r for r in self._fetch_closed(pair, since, min(now, last + self._tf_ms))
                if r[0] <= last]  # fmt: skip
        self._buffers[pair] = rows[-self._history :]
        if pair not in self._last:
            self._last[pair] = self._given[pair] = int(rows[-1][0]) if rows else last

    def _keep(self, pair: str, rows: Iterable[list[float]]) -> None:
        buf = self._buffers.setdefault(pair, [])
        buf.extend(rows)
        if len(buf) > self._history:
            del buf[: len(buf) - self._history]

    def _bar(self, row: list[float]) -> Bar:
        ms = int(row[0])
        return Bar(
            ts=datetime.fromtimestamp(ms / 1000, tz=UTC),
            open=row[1], high=row[2], low=row[3], close=row[4], volume=row[5],
            close_ts=datetime.fromtimestamp((ms + self._tf_ms) / 1000, tz=UTC),
        )  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _rows(raw: Iterable[Any], cursor: int, eid: str) -> list[list[float]]:
    """Rows opened at or after ``cursor``, sorted, one per open time, as floats."""
    by_time: dict[int, list[float]] = {}
    for row in raw:
        if (
            not isinstance(row, list | tuple)
            or len(row) < _ROW
            or any(x is None for x in row[:_ROW])
        ):
            raise ExchangeError(f"{eid} sent a malformed OHLCV row {str(row)[:80]}",
                                where=f"{eid} fetch_ohlcv",
                                hint="report it; retrying will not help")  # fmt: skip
        t = int(row[0])
        if t >= cursor:
            by_time[t] = [float(t), *(float(x) for x in row[1:_ROW])]
    return [by_time[t] for t in sorted(by_time)]
