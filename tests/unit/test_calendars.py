"""Trading calendars: expected gaps (weekends across DST, holidays, sessions) and name guessing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from morningstar.core.timeframe import parse_timeframe
from morningstar.data.calendars import (
    CME,
    CRYPTO,
    EQUITY,
    FOREX,
    Calendar,
    CalendarKind,
    SessionGrid,
    expected_gaps,
    get_calendar,
    guess_calendar,
    in_session,
    nyse_early_closes,
    nyse_holidays,
    unexpected_missing,
)

H1 = parse_timeframe("1h")
M30 = parse_timeframe("30m")
D1 = parse_timeframe("1d")


def ns(*stamps: str) -> np.ndarray:
    """UTC epoch nanoseconds of ISO strings (naive = UTC)."""
    return np.asarray(pd.DatetimeIndex(list(stamps), tz="UTC").as_unit("ns").asi8)


def hourly(start: str, end: str) -> np.ndarray:
    """Every hour from start to end inclusive (UTC)."""
    return np.asarray(pd.date_range(start, end, freq="1h", tz="UTC").as_unit("ns").asi8)


def ny_hours(days: pd.DatetimeIndex, hours: range, minute: int = 0) -> np.ndarray:
    """Bars at the given New York local hours on each day, as UTC ns."""
    local = [d + pd.Timedelta(hours=h, minutes=minute) for d in days for h in hours]
    idx = pd.DatetimeIndex(local).tz_localize("America/New_York").tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8)


# --- forex ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_friday_bar", "first_sunday_bar", "why"),
    [
        ("2024-01-12 21:00", "2024-01-14 22:00", "winter: 17:00 New York = 22:00 UTC"),
        ("2024-07-12 20:00", "2024-07-14 21:00", "summer: 17:00 New York = 21:00 UTC"),
        ("2024-03-08 21:00", "2024-03-10 21:00", "DST starts on that Sunday"),
        ("2024-11-01 20:00", "2024-11-03 22:00", "DST ends on that Sunday"),
        ("2024-01-12 20:00", "2024-01-14 22:00", "last Friday bar missing: within tolerance"),
    ],
)
def test_forex_weekend_is_expected(last_friday_bar: str, first_sunday_bar: str, why: str) -> None:
    times = ns(last_friday_bar, first_sunday_bar)
    assert expected_gaps(times, H1, FOREX).tolist() == [True], why
    assert unexpected_missing(times, H1, CRYPTO).tolist()[0] > 40


def test_forex_gap_in_the_week_is_unexpected() -> None:
    times = ns("2024-01-10 10:00", "2024-01-10 14:00")  # a Wednesday
    assert unexpected_missing(times, H1, FOREX).tolist() == [3]


def test_forex_friday_afternoon_missing_is_a_gap() -> None:
    times = ns("2024-01-12 12:00", "2024-01-14 22:00")  # stops 5 h before the close
    missing = unexpected_missing(times, H1, FOREX)
    assert missing.tolist() == [8]  # 13:00 .. 20:00 UTC (21:00 is within the 1 h tolerance)


def test_forex_full_week_of_hours_has_no_unexpected_gap() -> None:
    week = hourly("2024-01-14 22:00", "2024-01-19 21:00")
    nxt = hourly("2024-01-21 22:00", "2024-01-26 21:00")
    times = np.concatenate([week, nxt])
    assert expected_gaps(times, H1, FOREX).all()
    assert in_session(times, H1, FOREX).all()


def test_forex_saturday_bar_is_off_session() -> None:
    times = ns("2024-01-12 21:00", "2024-01-13 12:00", "2024-01-14 22:00")
    assert in_session(times, H1, FOREX).tolist() == [True, False, True]
    assert in_session(times, H1, CRYPTO).all()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("2015-12-24 18:00", "2015-12-27 22:00"),  # early close on the 24th, closed the 25th
        ("2016-12-23 21:00", "2016-12-26 23:00"),  # Christmas on a Sunday
        ("2013-12-31 18:00", "2014-01-01 22:00"),  # New Year
    ],
)
def test_forex_year_end_holidays_are_expected(before: str, after: str) -> None:
    assert expected_gaps(ns(before, after), H1, FOREX).tolist() == [True]


def test_forex_holiday_leniency_is_bounded() -> None:
    # a gap touching Christmas but lasting more than five days is still reported
    times = ns("2016-12-20 10:00", "2016-12-28 10:00")
    assert unexpected_missing(times, H1, FOREX)[0] > 0


def test_forex_daily_bars_sunday_allowed_saturday_not_required() -> None:
    days = pd.date_range("2024-01-07", "2024-01-19", freq="D", tz="UTC")  # Sun .. Fri
    times = np.asarray(days[days.day_of_week != 5].as_unit("ns").asi8)
    assert expected_gaps(times, D1, FOREX).all()
    assert in_session(times, D1, FOREX).all()
    no_sunday = np.asarray(days[days.day_of_week < 5].as_unit("ns").asi8)
    assert expected_gaps(no_sunday, D1, FOREX).all()
    missing_wed = no_sunday[no_sunday != ns("2024-01-10")[0]]
    assert unexpected_missing(missing_wed, D1, FOREX).sum() == 1


# --- equity -----------------------------------------------------------------------------------


def test_nyse_holidays_2024() -> None:
    expected = [
        "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27",
        "2024-06-19", "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25",
    ]  # fmt: skip
    assert nyse_holidays(2024, 2024).astype(str).tolist() == expected


@pytest.mark.parametrize(
    ("day", "is_holiday"),
    [
        ("2021-12-24", True),  # Christmas on a Saturday: observed Friday
        ("2021-12-31", False),  # New Year on a Saturday: not observed
        ("2022-06-20", True),  # Juneteenth on a Sunday: observed Monday
        ("2021-06-18", False),  # Juneteenth only from 2022
        ("2015-04-03", True),  # Good Friday
        ("1997-01-20", False),  # MLK Day only from 1998
        ("2012-10-29", True),  # Hurricane Sandy
        ("2001-09-14", True),  # September 11
        ("2018-12-05", True),  # President Bush's funeral
        ("2020-07-03", True),  # Independence Day on a Saturday: observed Friday
    ],
)
def test_nyse_holiday_rules(day: str, is_holiday: bool) -> None:
    year = int(day[:4])
    assert (np.datetime64(day) in nyse_holidays(year, year)) is is_holiday


def test_nyse_early_closes() -> None:
    early = nyse_early_closes(2024, 2024).astype(str).tolist()
    assert early == ["2024-07-03", "2024-11-29", "2024-12-24"]


def test_equity_daily_weekends_and_holidays_are_expected() -> None:
    days = pd.bdate_range("2024-01-01", "2024-12-31", tz="UTC")
    trading = days[~days.tz_localize(None).isin(pd.DatetimeIndex(nyse_holidays(2024, 2024)))]
    times = np.asarray(trading.as_unit("ns").asi8)
    assert expected_gaps(times, D1, EQUITY).all()
    # a missing ordinary weekday is a gap; the same on the crypto calendar counts every day
    without = times[times != ns("2024-03-13")[0]]
    assert unexpected_missing(without, D1, EQUITY).sum() == 1
    assert unexpected_missing(times, D1, CRYPTO).sum() > 100


def test_equity_intraday_sessions_across_dst() -> None:
    days = pd.bdate_range("2024-03-04", "2024-03-15")  # DST starts on 2024-03-10
    lean_style = ny_hours(days, range(9, 16))  # hour bars labelled 09:00 .. 15:00
    assert expected_gaps(lean_style, H1, EQUITY).all()
    assert in_session(lean_style, H1, EQUITY).all()
    half_hours = ny_hours(days, range(9, 16), minute=30)[:-1]
    bars_30m = np.sort(np.concatenate([half_hours, ny_hours(days, range(10, 16))]))
    assert expected_gaps(bars_30m, M30, EQUITY).all()
    missing_noon = lean_style[lean_style != ny_hours(days[2:3], range(12, 13))[0]]
    assert unexpected_missing(missing_noon, H1, EQUITY).sum() == 1


def test_equity_intraday_holidays_and_early_close() -> None:
    days = pd.DatetimeIndex(["2024-11-26", "2024-11-27", "2024-12-02"])
    times = np.concatenate(
        [
            ny_hours(days[:2], range(9, 16)),
            ny_hours(pd.DatetimeIndex(["2024-11-29"]), range(9, 13)),  # 13:00 early close
            ny_hours(days[2:], range(9, 16)),
        ]
    )
    times.sort()
    # Thanksgiving (28th) is closed, the 29th closes at 13:00: nothing is missing
    assert expected_gaps(times, H1, EQUITY).all()


def test_equity_off_session_bars() -> None:
    times = ny_hours(pd.DatetimeIndex(["2024-01-10"]), range(7, 19))
    allowed = in_session(times, H1, EQUITY)
    # 09:00 overlaps the 09:30 open; 16:00 starts at the close
    assert allowed.tolist() == [False, False] + [True] * 7 + [False] * 3


# --- cme --------------------------------------------------------------------------------------


def test_cme_daily_halt_is_expected_and_off_session() -> None:
    m1 = parse_timeframe("1m")
    before = ny_hours(pd.DatetimeIndex(["2024-01-10"]), range(16, 17), minute=59)
    after = ny_hours(pd.DatetimeIndex(["2024-01-10"]), range(18, 19), minute=0)
    times = np.concatenate([before, after])
    assert expected_gaps(times, m1, CME).tolist() == [True]
    assert unexpected_missing(times, m1, FOREX).tolist() == [60]
    halt = ny_hours(pd.DatetimeIndex(["2024-01-10"]), range(17, 18), minute=30)
    assert in_session(halt, m1, CME).tolist() == [False]


# --- grid, misc -------------------------------------------------------------------------------


def test_required_slots_lists_the_missing_bars() -> None:
    times = ns("2024-01-12 18:00", "2024-01-15 02:00")  # Friday evening to Monday
    grid = SessionGrid(FOREX, H1, int(times[0]), int(times[1]))
    slots = grid.required_slots(times[:1], times[1:])
    got = pd.DatetimeIndex(slots, tz="UTC").strftime("%a %H:%M").tolist()
    assert got[:2] == ["Fri 19:00", "Fri 20:00"]
    assert "Sat 12:00" not in got
    assert got[2] == "Sun 23:00"  # 22:00 is within the tolerance of the weekly open
    assert len(got) == grid.required_missing(times[:1], times[1:])[0]


def test_short_inputs() -> None:
    assert unexpected_missing(np.empty(0, dtype=np.int64), H1, FOREX).tolist() == []
    assert unexpected_missing(ns("2024-01-10"), H1, FOREX).tolist() == []
    assert in_session(np.empty(0, dtype=np.int64), H1, EQUITY).tolist() == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("lean/US_SPY-1D.csv", "equity"),
        ("US_AAPL-1h", "equity"),
        ("SPY", "equity"),
        ("OANDA_EURUSD-1h", "forex"),
        ("lean/FXCM_EURUSD-1h.csv", "forex"),
        ("EUR/USD", "forex"),
        ("GBPJPY", "forex"),
        ("nautilus/CME_6EH4-1m.csv", "cme"),
        ("6E", "cme"),
        ("BINANCE_BTC_USDT-5m", "crypto"),
        ("COINBASE_BTC_USD-1D", "crypto"),
        ("BTC/USD", "crypto"),
        ("UNKNOWN_BTC_PERP-1m.csv", "crypto"),
        ("", "crypto"),
    ],
)
def test_guess_calendar(name: str, kind: str) -> None:
    assert guess_calendar(name) == kind


def test_guess_calendar_from_venue_and_symbol() -> None:
    assert guess_calendar(venue="oanda", symbol="EUR/USD") is CalendarKind.FOREX
    assert guess_calendar(venue="binance", symbol="EUR/USDT") is CalendarKind.CRYPTO
    assert guess_calendar(venue="US", symbol="XYZ") is CalendarKind.EQUITY
    assert guess_calendar(symbol="EUR/USD") is CalendarKind.FOREX


def test_get_calendar() -> None:
    assert get_calendar("Forex") == FOREX
    assert get_calendar(EQUITY) is EQUITY
    assert FOREX.tolerance == dt.timedelta(hours=1)
    assert Calendar(CalendarKind.FOREX, dt.timedelta(0)).tolerance_ns == 0
    with pytest.raises(ValueError, match="did you mean 'forex'"):
        get_calendar("forx")
    with pytest.raises(ValueError, match=">= 0"):
        Calendar(CalendarKind.FOREX, dt.timedelta(hours=-1))
