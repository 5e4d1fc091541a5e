"""Trading calendars: which bar slots a market is expected to print, so that gaps can be judged.

A :class:`Calendar` says when a market trades. Given a timeframe it marks each bar *slot* (the
timeframe grid, ``[t, t + timeframe)``) as

* **required**: the market trades then, so a missing bar is a gap;
* **allowed**: a bar may exist there (a bar outside every allowed slot is "off session").

Kinds (all times are America/New_York local time, so daylight saving is handled):

=========  ======================================================================================
crypto     24/7: every slot is required.
forex      Sunday 17:00 to Friday 17:00 (21:00/22:00 UTC). Daily bars: Monday–Friday required,
           Sunday allowed (the Sunday-evening session). A gap that touches the Christmas or New
           Year closure (noon the day before to the end of the day after) and lasts under five
           days is expected.
cme        CME Globex (e.g. the 6E EUR/USD future): Sunday 18:00 to Friday 17:00 with a daily
           halt 17:00–18:00; daily bars and holidays as for forex.
equity     US regular session 09:30–16:00 on NYSE trading days (13:00 on possible early-close
           days: 3 July, the day after Thanksgiving, 24 December). Intraday slots overlapping the
           session are required. Daily bars: NYSE trading days are required; weekends, NYSE
           holidays (rule-based, with the special closures since 1985) are expected gaps.
=========  ======================================================================================

``tolerance`` shrinks the required part and widens the allowed part of every session edge (week
open/close for forex, daily open/close otherwise): brokers open and close a little differently.

Daily and longer timeframes use trading *dates*: a slot is required when it contains 00:00 UTC of a
required date (daily bars are labelled with their trading date at 00:00 UTC).

Everything here is pure: arrays in (epoch nanoseconds, UTC), arrays out; no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd

from morningstar.core.timeframe import Timeframe

__all__ = [
    "CME",
    "CRYPTO",
    "EQUITY",
    "FOREX",
    "Calendar",
    "CalendarKind",
    "SessionGrid",
    "expected_gaps",
    "get_calendar",
    "guess_calendar",
    "in_session",
    "nyse_early_closes",
    "nyse_holidays",
    "unexpected_missing",
]

_NS_PER_S = 1_000_000_000
_DAY_NS = 86_400 * _NS_PER_S
_NY = "America/New_York"
#: A gap touching a forex/CME year-end holiday window is expected when it is shorter than this.
_HOLIDAY_GAP_MAX_NS = 5 * _DAY_NS


class CalendarKind(StrEnum):
    """The market schedules Morningstar knows."""

    CRYPTO = "crypto"
    FOREX = "forex"
    CME = "cme"
    EQUITY = "equity"


_DEFAULT_TOLERANCE = {
    CalendarKind.CRYPTO: dt.timedelta(0),
    CalendarKind.FOREX: dt.timedelta(hours=1),
    CalendarKind.CME: dt.timedelta(0),
    CalendarKind.EQUITY: dt.timedelta(0),
}


@dataclass(frozen=True)
class Calendar:
    """A market schedule.

    Args:
        kind: crypto, forex, cme or equity (see the module docstring).
        tolerance: slack at each session edge (default: 1 hour for forex, 0 otherwise).
    """

    kind: CalendarKind
    tolerance: dt.timedelta | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CalendarKind(self.kind))
        if self.tolerance is None:
            object.__setattr__(self, "tolerance", _DEFAULT_TOLERANCE[self.kind])
        elif self.tolerance < dt.timedelta(0):
            raise ValueError(f"calendar tolerance must be >= 0, got {self.tolerance}")

    @property
    def tolerance_ns(self) -> int:
        """The tolerance in nanoseconds."""
        tol = self.tolerance if self.tolerance is not None else dt.timedelta(0)
        return int(tol.total_seconds() * _NS_PER_S)

    def __str__(self) -> str:
        return str(self.kind)


CRYPTO = Calendar(CalendarKind.CRYPTO)
FOREX = Calendar(CalendarKind.FOREX)
CME = Calendar(CalendarKind.CME)
EQUITY = Calendar(CalendarKind.EQUITY)


def get_calendar(name: str | Calendar) -> Calendar:
    """Return the calendar called ``name`` (crypto, forex, cme, equity; a Calendar passes through).

    Raises:
        ValueError: unknown name (the message suggests the closest one).
    """
    if isinstance(name, Calendar):
        return name
    key = name.strip().lower()
    kinds = [k.value for k in CalendarKind]
    if key not in kinds:
        close = difflib.get_close_matches(key, kinds, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown calendar {name!r}: use one of {', '.join(kinds)}{hint}")
    return Calendar(CalendarKind(key))


# --------------------------------------------------------------------------------------------
# Guessing the calendar from a name
# --------------------------------------------------------------------------------------------

_CRYPTO_VENUES = {
    "BINANCE", "BINANCEUS", "BINANCEUSDM", "BITFINEX", "BITMEX", "BITSTAMP", "BITTREX", "BYBIT",
    "COINBASE", "COINBASEPRO", "GDAX", "KRAKEN", "KUCOIN", "OKX", "OKEX", "HUOBI", "HTX", "GATE",
    "GATEIO", "FTX", "DERIBIT", "GEMINI", "POLONIEX", "BITGET", "MEXC", "HYPERLIQUID",
}  # fmt: skip
_FOREX_VENUES = {"OANDA", "FXCM", "FOREX", "FX", "DUKASCOPY", "IDEALPRO", "HISTDATA"}
_CME_VENUES = {"CME", "GLOBEX", "XCME"}
_EQUITY_VENUES = {"US", "NYSE", "NASDAQ", "ARCA", "AMEX", "BATS", "XNYS", "XNAS", "IEX", "STOCK"}
_EQUITY_SYMBOLS = {
    "SPY", "QQQ", "IWM", "DIA", "EEM", "EFA", "USO", "GLD", "SLV", "TLT", "IEF", "HYG", "LQD",
    "VTI", "VOO", "VEA", "VWO", "XLF", "XLE", "XLK", "XLV", "XLI", "XLY", "XLP", "XLU", "SMH",
    "AAPL", "MSFT", "AMZN", "GOOG", "GOOGL", "META", "NVDA", "TSLA", "IBM", "NFLX", "JPM",
}  # fmt: skip
_FIAT = {
    "EUR", "USD", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "PLN", "HUF",
    "CZK", "TRY", "ZAR", "MXN", "SGD", "HKD", "CNH", "XAU", "XAG",
}  # fmt: skip
_CME_FX_FUTURE = re.compile(r"^6[ABCEJMNS]([FGHJKMNQUVXZ]\d{1,2})?$")


def _tokens(text: str, *, path: bool = True) -> list[str]:
    stem = text.strip()
    if path:  # a file path: keep its last part ("lean/US_SPY-1D.csv"), not "EUR/USD"
        last = re.split(r"[\\/]", stem)[-1]
        stem = last if re.search(r"[._\-]", last) else stem
    stem = re.sub(r"\.(csv|parquet|feather|json)(\.gz)?$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"-\d+[smhdwSMHDW]$", "", stem)
    return [t for t in re.split(r"[^A-Za-z0-9]+", stem.upper()) if t]


def guess_calendar(
    name: str | None = None, *, venue: str | None = None, symbol: str | None = None
) -> CalendarKind:
    """Guess the calendar of a dataset from its name, venue and/or symbol.

    ``name`` may be a file name or path (``lean/US_SPY-1D.csv``, ``OANDA_EURUSD-1h``), ``venue``
    an exchange id (``binance``, ``oanda``, ``US``), ``symbol`` a pair or ticker (``EUR/USD``,
    ``SPY``). Rules, first match wins: a crypto exchange → crypto; CME/Globex or a CME FX future
    symbol (``6E``, ``6EH4``) → cme; a forex venue (OANDA, FXCM, ...) or a pair of two fiat
    currencies (``EURUSD``, ``EUR/USD``) → forex; a US equity venue (``US_``, NYSE, NASDAQ) or a
    well-known US ticker (SPY, QQQ, AAPL, ...) → equity; anything else → crypto.

    Returns:
        The calendar kind (a ``str``): pass it to :func:`get_calendar` or to ``validate``.

    Examples:
        >>> guess_calendar("lean/US_SPY-1D.csv"), guess_calendar(venue="oanda", symbol="EUR/USD")
        (<CalendarKind.EQUITY: 'equity'>, <CalendarKind.FOREX: 'forex'>)
    """
    venue_tokens = _tokens(venue) if venue else []
    name_tokens = _tokens(name) if name else []
    tokens = venue_tokens + name_tokens + (_tokens(symbol, path=False) if symbol else [])
    if not tokens:
        return CalendarKind.CRYPTO
    token_set = set(tokens)
    first = (venue_tokens or name_tokens or tokens)[0]
    if token_set & _CRYPTO_VENUES:
        return CalendarKind.CRYPTO
    if token_set & _CME_VENUES or any(_CME_FX_FUTURE.match(t) for t in tokens):
        return CalendarKind.CME
    if token_set & _FOREX_VENUES:
        return CalendarKind.FOREX
    fiat_tokens = [t for t in tokens if t in _FIAT]
    if len(fiat_tokens) >= 2 or any(
        len(t) == 6 and t[:3] in _FIAT and t[3:] in _FIAT for t in tokens
    ):
        return CalendarKind.FOREX
    if first in _EQUITY_VENUES or token_set & (_EQUITY_VENUES - {"US"}):
        return CalendarKind.EQUITY
    if token_set & _EQUITY_SYMBOLS:
        return CalendarKind.EQUITY
    return CalendarKind.CRYPTO


# --------------------------------------------------------------------------------------------
# NYSE holidays (rule-based)
# --------------------------------------------------------------------------------------------

_NYSE_SPECIAL_CLOSURES = (
    "1985-09-27",  # Hurricane Gloria
    "1994-04-27",  # President Nixon's funeral
    "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",  # September 11
    "2004-06-11",  # President Reagan's funeral
    "2007-01-02",  # President Ford's funeral
    "2012-10-29", "2012-10-30",  # Hurricane Sandy
    "2018-12-05",  # President G. H. W. Bush's funeral
    "2025-01-09",  # President Carter's funeral
)  # fmt: skip
_NYSE_SPECIAL_EARLY_CLOSES = ("2002-07-05", "2003-12-26")  # 13:00 closes outside the rules


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1 = last) given weekday (Monday=0) of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date, *, saturday_to_friday: bool = True) -> dt.date | None:
    if day.weekday() == 5:
        return day - dt.timedelta(days=1) if saturday_to_friday else None
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


@lru_cache(maxsize=512)
def _nyse_year(year: int) -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    holidays: list[dt.date | None] = [
        _observed(dt.date(year, 1, 1), saturday_to_friday=False),
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - dt.timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(dt.date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(dt.date(year, 12, 25)),
    ]
    if year >= 1998:
        holidays.append(_nth_weekday(year, 1, 0, 3))  # Martin Luther King Jr. Day
    if year >= 2022:
        holidays.append(_observed(dt.date(year, 6, 19)))  # Juneteenth
    days = {d for d in holidays if d is not None}
    days |= {dt.date.fromisoformat(s) for s in _NYSE_SPECIAL_CLOSURES if int(s[:4]) == year}
    early = {
        dt.date(year, 7, 3),
        _nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1),
        dt.date(year, 12, 24),
    }
    early |= {dt.date.fromisoformat(s) for s in _NYSE_SPECIAL_EARLY_CLOSES if int(s[:4]) == year}
    early = {d for d in early if d.weekday() < 5 and d not in days}
    return tuple(sorted(days)), tuple(sorted(early))


def nyse_holidays(start_year: int, end_year: int) -> np.ndarray:
    """NYSE full-day closures from ``start_year`` to ``end_year`` inclusive, as ``datetime64[D]``.

    Rule-based (New Year, MLK Day from 1998, Washington's Birthday, Good Friday, Memorial Day,
    Juneteenth from 2022, Independence Day, Labor Day, Thanksgiving, Christmas, with the NYSE
    weekend observance rules) plus the special closures since 1985 (9/11, Hurricane Sandy,
    presidential funerals).
    """
    days = [d for y in range(start_year, end_year + 1) for d in _nyse_year(y)[0]]
    return np.array(days, dtype="datetime64[D]")


def nyse_early_closes(start_year: int, end_year: int) -> np.ndarray:
    """Days the NYSE may close at 13:00 (3 July, the day after Thanksgiving, 24 December)."""
    days = [d for y in range(start_year, end_year + 1) for d in _nyse_year(y)[1]]
    return np.array(days, dtype="datetime64[D]")


# --------------------------------------------------------------------------------------------
# Sessions → slot blocks
# --------------------------------------------------------------------------------------------


def _ny_to_utc_ns(dates: np.ndarray, minutes: int | np.ndarray) -> np.ndarray:
    """UTC epoch ns of New York local ``dates`` (datetime64[D]) at ``minutes`` after midnight."""
    if len(dates) == 0:
        return np.empty(0, dtype=np.int64)
    local = dates.astype("datetime64[ns]") + np.asarray(minutes).astype("timedelta64[m]")
    idx = pd.DatetimeIndex(local).tz_localize(_NY, ambiguous="NaT", nonexistent="shift_forward")
    return np.asarray(idx.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)


def _weekday(dates: np.ndarray) -> np.ndarray:
    """Monday=0 ... Sunday=6 for ``datetime64[D]`` values (1970-01-01 was a Thursday)."""
    return np.asarray((dates.astype(np.int64) + 3) % 7)


def _intraday_sessions(
    kind: CalendarKind, first_day: np.datetime64, last_day: np.datetime64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(required_start, required_end, allowed_start, allowed_end) in UTC ns, before tolerance."""
    days = np.arange(first_day, last_day + np.timedelta64(1, "D"), dtype="datetime64[D]")
    wd = _weekday(days)
    if kind is CalendarKind.FOREX:
        sundays = days[wd == 6]
        start = _ny_to_utc_ns(sundays, 17 * 60)
        end = _ny_to_utc_ns(sundays + np.timedelta64(5, "D"), 17 * 60)
        return start, end, start, end
    if kind is CalendarKind.CME:
        weekdays = days[wd < 5]
        start = _ny_to_utc_ns(weekdays - np.timedelta64(1, "D"), 18 * 60)
        end = _ny_to_utc_ns(weekdays, 17 * 60)
        return start, end, start, end
    # equity
    weekdays = days[wd < 5]
    y0, y1 = int(str(first_day)[:4]), int(str(last_day)[:4])
    trading = weekdays[~np.isin(weekdays, nyse_holidays(y0, y1))]
    close_min = np.where(np.isin(trading, nyse_early_closes(y0, y1)), 13 * 60, 16 * 60)
    req_start = _ny_to_utc_ns(trading, 9 * 60 + 30)
    req_end = _ny_to_utc_ns(trading, close_min)
    all_start = _ny_to_utc_ns(weekdays, 9 * 60 + 30)
    all_end = _ny_to_utc_ns(weekdays, 16 * 60)
    return req_start, req_end, all_start, all_end


def _daily_dates(
    kind: CalendarKind, first_day: np.datetime64, last_day: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """(required dates, allowed dates) as ``datetime64[D]`` for daily and longer bars."""
    days = np.arange(first_day, last_day + np.timedelta64(1, "D"), dtype="datetime64[D]")
    wd = _weekday(days)
    if kind in (CalendarKind.FOREX, CalendarKind.CME):
        return days[wd < 5], days[wd != 5]
    weekdays = days[wd < 5]
    y0, y1 = int(str(first_day)[:4]), int(str(last_day)[:4])
    return weekdays[~np.isin(weekdays, nyse_holidays(y0, y1))], weekdays


def _to_blocks(
    start: np.ndarray, end: np.ndarray, phase: int, tf: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge the slot-index ranges ``[lo, hi)`` of slots overlapping intervals ``[start, end)``."""
    keep = end > start
    start, end = start[keep], end[keep]
    if len(start) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.argsort(start, kind="stable")
    lo = (start[order] - phase) // tf
    hi = -((phase - end[order]) // tf)  # ceil((end - phase) / tf)
    hi = np.maximum.accumulate(hi)
    new_block = np.ones(len(lo), dtype=bool)
    new_block[1:] = lo[1:] > hi[:-1]
    block_id = np.cumsum(new_block) - 1
    lo_m = lo[new_block]
    hi_m = np.zeros(len(lo_m), dtype=np.int64)
    np.maximum.at(hi_m, block_id, hi)
    return lo_m.astype(np.int64), hi_m


class SessionGrid:
    """The bar slots a calendar expects for one timeframe over a span of time.

    Slots are indexed by ``k`` with slot start ``phase_ns + k * timeframe``. Build one per
    dataset and query it with vectorised methods.

    Args:
        calendar: the market schedule.
        timeframe: bar duration.
        start_ns: first bar open time (UTC epoch ns).
        end_ns: last bar open time (UTC epoch ns).
        phase_ns: offset of the bar grid from the epoch (``open_time % timeframe`` of the bars).
    """

    def __init__(
        self,
        calendar: Calendar,
        timeframe: Timeframe,
        start_ns: int,
        end_ns: int,
        phase_ns: int = 0,
    ) -> None:
        self.calendar = calendar
        self.timeframe = timeframe
        self.tf_ns = timeframe.ns
        self.phase_ns = int(phase_ns) % self.tf_ns
        self._all = calendar.kind is CalendarKind.CRYPTO
        span_lo = int(start_ns) - 8 * _DAY_NS - self.tf_ns
        span_hi = int(end_ns) + 8 * _DAY_NS + self.tf_ns
        first_day = np.datetime64(span_lo // _DAY_NS, "D")
        last_day = np.datetime64(span_hi // _DAY_NS, "D")
        self._holiday_start = np.empty(0, dtype=np.int64)
        self._holiday_end = np.empty(0, dtype=np.int64)
        empty = np.empty(0, dtype=np.int64)
        self._req: tuple[np.ndarray, np.ndarray] = (empty, empty)
        self._allow: tuple[np.ndarray, np.ndarray] = (empty, empty)
        if self._all:
            return
        tol = calendar.tolerance_ns
        if self.tf_ns >= _DAY_NS:
            req_days, allowed_days = _daily_dates(calendar.kind, first_day, last_day)
            req = req_days.astype("datetime64[ns]").astype(np.int64)
            allow = allowed_days.astype("datetime64[ns]").astype(np.int64)
            self._req = _to_blocks(req, req + 1, self.phase_ns, self.tf_ns)
            self._allow = _to_blocks(allow, allow + 1, self.phase_ns, self.tf_ns)
        else:
            rs, re_, as_, ae = _intraday_sessions(calendar.kind, first_day, last_day)
            self._req = _to_blocks(rs + tol, re_ - tol, self.phase_ns, self.tf_ns)
            self._allow = _to_blocks(as_ - tol, ae + tol, self.phase_ns, self.tf_ns)
        if calendar.kind in (CalendarKind.FOREX, CalendarKind.CME):
            years = np.arange(int(str(first_day)[:4]) - 1, int(str(last_day)[:4]) + 1)
            eves = np.concatenate(
                [
                    np.array([f"{y}-12-24" for y in years], dtype="datetime64[D]"),
                    np.array([f"{y}-12-31" for y in years], dtype="datetime64[D]"),
                ]
            )
            eves.sort()
            self._holiday_start = _ny_to_utc_ns(eves, 12 * 60)
            self._holiday_end = _ny_to_utc_ns(eves + np.timedelta64(3, "D"), 0)

    # -- slot arithmetic -------------------------------------------------------------------

    def slot(self, times_ns: np.ndarray) -> np.ndarray:
        """Slot index of each time (the slot containing it)."""
        return (np.asarray(times_ns, dtype=np.int64) - self.phase_ns) // self.tf_ns

    def slot_start(self, k: np.ndarray) -> np.ndarray:
        """Open time (UTC ns) of slot indices ``k``."""
        return np.asarray(k, dtype=np.int64) * self.tf_ns + self.phase_ns

    def _count_below(self, k: np.ndarray) -> np.ndarray:
        """Number of required slots with index < k."""
        lo, hi = self._req
        lengths = hi - lo
        cum = np.concatenate([[0], np.cumsum(lengths)])
        j = np.searchsorted(lo, k, side="right") - 1
        jc = np.clip(j, 0, None)
        inside = np.minimum(k - lo[jc], lengths[jc]) if len(lo) else np.zeros_like(k)
        return np.where(j >= 0, cum[jc] + inside, 0)

    # -- queries ---------------------------------------------------------------------------

    def required_missing(self, prev_ns: np.ndarray, next_ns: np.ndarray) -> np.ndarray:
        """Required slots strictly between each ``prev``/``next`` bar pair, after holiday leniency.

        Args:
            prev_ns: open times of the bars before each gap.
            next_ns: open times of the bars after each gap (same length, ``next >= prev``).

        Returns:
            int64 counts; 0 where the calendar expects the gap (or there is none).
        """
        a = np.asarray(prev_ns, dtype=np.int64)
        b = np.asarray(next_ns, dtype=np.int64)
        k1 = self.slot(a) + 1
        k2 = self.slot(b)
        if self._all:
            out = np.maximum(k2 - k1, 0)
        else:
            out = np.where(k2 > k1, self._count_below(k2) - self._count_below(k1), 0)
        if len(self._holiday_start) and len(out):
            # gap [a, b] overlaps a holiday window [hs, he) when a < he and b > hs
            j = np.searchsorted(self._holiday_end, a, side="right")
            jc = np.clip(j, 0, len(self._holiday_start) - 1)
            overlaps = (j < len(self._holiday_start)) & (b > self._holiday_start[jc])
            out = np.where(overlaps & (b - a <= _HOLIDAY_GAP_MAX_NS), 0, out)
        return np.asarray(out, dtype=np.int64)

    def required_slots(self, prev_ns: np.ndarray, next_ns: np.ndarray) -> np.ndarray:
        """Open times (UTC ns) of the required slots strictly between each bar pair.

        Holiday leniency is not applied here: pass only the pairs whose
        :meth:`required_missing` is positive.
        """
        a = np.asarray(prev_ns, dtype=np.int64)
        b = np.asarray(next_ns, dtype=np.int64)
        k1 = self.slot(a) + 1
        k2 = self.slot(b)
        keep = k2 > k1
        k1, k2 = k1[keep], k2[keep]
        if len(k1) == 0:
            return np.empty(0, dtype=np.int64)
        if self._all:
            piece_lo, piece_hi = k1, k2
        else:
            lo, hi = self._req
            j0 = np.searchsorted(hi, k1, side="right")
            j1 = np.searchsorted(lo, k2, side="left")
            counts = np.maximum(j1 - j0, 0)
            gap_of = np.repeat(np.arange(len(k1)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            blk = np.repeat(j0, counts) + offsets
            piece_lo = np.maximum(lo[blk], k1[gap_of])
            piece_hi = np.minimum(hi[blk], k2[gap_of])
        sizes = np.maximum(piece_hi - piece_lo, 0)
        starts = np.repeat(piece_lo, sizes)
        steps = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return self.slot_start(starts + steps)

    def allowed(self, times_ns: np.ndarray) -> np.ndarray:
        """True for each bar whose slot the calendar allows (False = off session)."""
        k = self.slot(np.asarray(times_ns, dtype=np.int64))
        if self._all:
            return np.ones(len(k), dtype=bool)
        lo, hi = self._allow
        if len(lo) == 0:
            return np.zeros(len(k), dtype=bool)
        j = np.searchsorted(lo, k, side="right") - 1
        jc = np.clip(j, 0, None)
        return np.asarray((j >= 0) & (k < hi[jc]), dtype=bool)


def _grid_for(times_ns: np.ndarray, timeframe: Timeframe, calendar: Calendar) -> SessionGrid:
    t = np.asarray(times_ns, dtype=np.int64)
    if len(t) == 0:
        return SessionGrid(calendar, timeframe, 0, 0)
    phases = t % timeframe.ns
    values, counts = np.unique(phases, return_counts=True)
    return SessionGrid(
        calendar, timeframe, int(t.min()), int(t.max()), int(values[counts.argmax()])
    )


def unexpected_missing(
    times_ns: np.ndarray, timeframe: Timeframe, calendar: Calendar
) -> np.ndarray:
    """For each step between consecutive bars, the number of missing bars the calendar expected.

    Args:
        times_ns: bar open times, UTC epoch ns, sorted ascending.
        timeframe: bar duration.
        calendar: market schedule.

    Returns:
        int64 array of length ``len(times_ns) - 1``; 0 where the step is one bar or the gap is
        expected (weekend, night, holiday).
    """
    t = np.asarray(times_ns, dtype=np.int64)
    if len(t) < 2:
        return np.empty(0, dtype=np.int64)
    return _grid_for(t, timeframe, calendar).required_missing(t[:-1], t[1:])


def expected_gaps(times_ns: np.ndarray, timeframe: Timeframe, calendar: Calendar) -> np.ndarray:
    """True for each step between consecutive bars that the calendar expects (no bar missing)."""
    return np.asarray(unexpected_missing(times_ns, timeframe, calendar) == 0, dtype=bool)


def in_session(times_ns: np.ndarray, timeframe: Timeframe, calendar: Calendar) -> np.ndarray:
    """True for each bar that falls in the calendar's trading hours (with its tolerance)."""
    t = np.asarray(times_ns, dtype=np.int64)
    return _grid_for(t, timeframe, calendar).allowed(t)
