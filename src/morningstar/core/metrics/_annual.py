"""Annualisation: how many bars of a timeframe one year of a market's calendar holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from morningstar.core.timeframe import Timeframe

_DAY: Final = 86_400
_WEEK: Final = 7 * _DAY


@dataclass(frozen=True)
class TradingYear:
    """The trading time in one year of a market calendar.

    Attributes:
        days: trading days per year.
        hours_per_day: trading hours in one of those days (used for intraday bars only).
    """

    days: float
    hours_per_day: float


#: Trading year of each calendar (the names of ``morningstar.data.calendars.CalendarKind``).
#:
#: - ``crypto``: 365 days x 24 h. Crypto venues trade around the clock every day.
#: - ``forex``: 260 days x 24 h. Spot FX trades 24 h from Sunday 17:00 to Friday 17:00 New York
#:   time, i.e. five full days a week: 52 weeks x 5 = 260 days. Holidays are not removed (the
#:   interbank market has no market-wide holiday but 1 January and 25 December).
#: - ``cme``: 252 days x 23 h. CME Globex futures: the equity-market count of sessions, each 23 h
#:   (one hour daily maintenance break).
#: - ``equity``: 252 days x 6.5 h. US exchanges: about 252 sessions a year (empyrical's
#:   ``APPROX_BDAYS_PER_YEAR``) of 6.5 h (09:30-16:00 New York); extended hours are not counted.
TRADING_YEARS: Final[dict[str, TradingYear]] = {
    "crypto": TradingYear(365.0, 24.0),
    "forex": TradingYear(260.0, 24.0),
    "cme": TradingYear(252.0, 23.0),
    "equity": TradingYear(252.0, 6.5),
}


def periods_per_year(timeframe: Timeframe | int, calendar: str = "crypto") -> float:
    """Return the number of bars of ``timeframe`` in one year of ``calendar``.

    The factor multiplies mean returns and, square-rooted, standard deviations (``empyrical``'s
    ``annualization``). It counts trading time, not calendar time:

    - intraday bars (shorter than a day): ``days x hours_per_day x 3600 / seconds``
      (crypto 1h → 8760; forex 1h → 6240; equity 1h → 1638, equity 5m → 19656). An equity
      session's partial last bar (e.g. 15:30-16:00 for hourly bars) is counted by its time.
    - daily bars up to six days long: one bar covers that many trading days,
      ``days x 86400 / seconds`` (1d: crypto 365, forex 260, cme and equity 252).
    - weekly and longer bars: calendar weeks, ``365 x 86400 / seconds`` for every calendar
      (1w → 52.14), because a week bar of any market spans seven calendar days.

    Args:
        timeframe: the bar length, a :class:`Timeframe` or a whole number of seconds.
        calendar: ``crypto``, ``forex``, ``cme`` or ``equity`` (case-insensitive); see
            :data:`TRADING_YEARS`.

    Raises:
        ValueError: unknown calendar, or a non-positive bar length.
    """
    if isinstance(timeframe, bool):
        raise ValueError(f"timeframe must be a Timeframe or seconds, got {timeframe!r}")
    tf = timeframe if isinstance(timeframe, Timeframe) else Timeframe(int(timeframe))
    key = str(calendar).strip().lower()
    year = TRADING_YEARS.get(key)
    if year is None:
        known = ", ".join(sorted(TRADING_YEARS))
        raise ValueError(f"unknown calendar {calendar!r}: use one of {known}")
    if tf.seconds < _DAY:
        return tf.bars_per_year(trading_days=year.days, hours_per_day=year.hours_per_day)
    if tf.seconds < _WEEK:
        return tf.bars_per_year(trading_days=year.days)
    return tf.bars_per_year(trading_days=365.0)
