"""LLM service: manual prompts with a point-in-time market snapshot, and the call history.

The snapshot is the same set of numbers the supervisor's ``market_assessment`` prompt takes
(close, trend, volatility, regime, ATR, RSI), computed from stored bars up to ``as_of`` only,
so a prompt never sees a bar after its decision time (architecture principle 2).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from morningstar.config import Settings
from morningstar.core.indicators import adx, atr, ema, rsi
from morningstar.core.metrics import periods_per_year
from morningstar.data.parquet_store import OHLCVStore, to_utc_timestamp
from morningstar.errors import DataNotFoundError, UserInputError
from morningstar.llm.gateway import Gateway
from morningstar.llm.prompts import load_template
from morningstar.llm.types import LLMResult
from morningstar.services.data import pair_arg, resolve_calendar, timeframe_arg
from morningstar.store.db import Database
from morningstar.store.models import LLMCallRow

__all__ = [
    "SNAPSHOT_BARS",
    "CallSummary",
    "ask",
    "ask_once",
    "call_summary",
    "market_snapshot",
    "stored_snapshot",
]

log = logging.getLogger(__name__)

#: Bars a snapshot needs: the slow EMA (50) and ADX (14) warm up well inside it.
SNAPSHOT_BARS = 200
FAST, SLOW, WINDOW = 20, 50, 14
VOL_BARS = 30


def market_snapshot(
    bars: pd.DataFrame, *, pair: str, timeframe: str, calendar: str
) -> dict[str, Any]:
    """The market numbers of the last bar of ``bars`` (nothing after it is read).

    Returns:
        ``pair``, ``timeframe``, ``as_of`` (ISO time of the last bar's close: its open plus
        the timeframe), ``close``,
        ``trend`` (EMA20 / EMA50 − 1), ``volatility`` (annualised standard deviation of the last
        30 log returns, for the calendar), ``regime`` (``volatile`` when that volatility is
        above 1.5× its median over the bars given, ``trending`` when ADX(14) > 25, else
        ``ranging``), ``atr`` (ATR(14), price units), ``rsi`` (RSI(14)), ``adx``.

    Raises:
        UserInputError: fewer than :data:`SNAPSHOT_BARS` // 2 bars.
    """
    n = len(bars)
    if n < SNAPSHOT_BARS // 2:
        raise UserInputError(
            f"a market snapshot needs at least {SNAPSHOT_BARS // 2} bars, got {n}",
            where=f"{pair} {timeframe}",
            hint="import or download more data",
        )
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    fast, slow = ema(close, FAST), ema(close, SLOW)
    log_ret = np.diff(np.log(close))
    ppy = periods_per_year(timeframe_arg(timeframe), calendar)
    windows = np.lib.stride_tricks.sliding_window_view(log_ret, VOL_BARS)
    rolling = windows.std(axis=1, ddof=1) * math.sqrt(ppy)
    vol = float(rolling[-1])
    trend_strength = float(adx(high, low, close, WINDOW)[-1])
    if vol > 1.5 * float(np.median(rolling)):
        regime = "volatile"
    elif trend_strength > 25.0:
        regime = "trending"
    else:
        regime = "ranging"
    # the numbers are known at the close of the last bar: that is the snapshot's time
    closed = pd.Timestamp(bars.index[-1]) + pd.Timedelta(seconds=timeframe_arg(timeframe).seconds)
    return {
        "pair": pair,
        "timeframe": timeframe,
        "as_of": closed.isoformat(),
        "close": float(close[-1]),
        "trend": float(fast[-1] / slow[-1] - 1.0),
        "volatility": vol,
        "regime": regime,
        "atr": float(atr(high, low, close, WINDOW)[-1]),
        "rsi": float(rsi(close, WINDOW)[-1]),
        "adx": trend_strength,
    }


def stored_snapshot(
    store: OHLCVStore,
    *,
    pair: str,
    venue: str | None = None,
    timeframe: str | None = None,
    as_of: str | None = None,
    calendar: str = "auto",
) -> dict[str, Any]:
    """:func:`market_snapshot` of stored bars up to ``as_of`` (default: the last stored bar).

    ``venue`` and ``timeframe`` may be left out when the stored datasets of ``pair`` leave no
    doubt: one venue (else an error listing them); the finest timeframe stored is used.

    Raises:
        DataNotFoundError: no stored data for that pair (and venue/timeframe).
        UserInputError: a bad pair/timeframe/time, several venues, or too few bars.
    """
    p = pair_arg(pair)
    tf = timeframe_arg(timeframe) if timeframe is not None else None
    found = [
        d for d in store.list()
        if d.pair == p and (venue is None or d.venue == venue) and (tf is None or d.timeframe == tf)
    ]  # fmt: skip
    if not found:
        raise DataNotFoundError(
            f"no stored data for {p}"
            + (f" on {venue}" if venue else "")
            + (f" at {tf}" if tf else ""),
            hint="see `morningstar data list`; import or download it first",
        )
    venues = sorted({d.venue for d in found})
    if len(venues) > 1:
        raise UserInputError(
            f"{p} is stored for several venues: {', '.join(venues)}", hint="add --venue"
        )
    chosen = min(found, key=lambda d: d.timeframe.seconds)
    end = to_utc_timestamp(as_of, "--as-of")
    bars = store.load(chosen.venue, p, chosen.timeframe, None, end)  # opened before as_of
    if end is not None:  # point in time: only the bars that have closed by as_of
        bar = pd.Timedelta(seconds=chosen.timeframe.seconds)
        bars = bars[pd.DatetimeIndex(bars.index) + bar <= end]
    if end is not None and len(bars) < SNAPSHOT_BARS // 2:
        raise UserInputError(
            f"only {len(bars)} stored bar(s) up to {end.isoformat()}; a snapshot needs "
            f"{SNAPSHOT_BARS // 2}",
            where=f"{chosen.venue} {p} {chosen.timeframe}",
            hint=f"stored data runs from {chosen.first} to {chosen.last}",
        )
    cal = resolve_calendar(calendar, chosen.venue, p)
    snapshot = market_snapshot(
        bars.iloc[-SNAPSHOT_BARS:], pair=str(p), timeframe=str(chosen.timeframe), calendar=cal
    )
    return {"venue": chosen.venue, **snapshot}


def ask(
    gateway: Gateway,
    question: str,
    *,
    market: dict[str, Any] | None = None,
    model: str | None = None,
    stream: bool = False,
) -> LLMResult:
    """A manual prompt (template ``ask``), traced, cached and budgeted like any call.

    Raises:
        UserInputError: an empty question.
        LLMError: see :meth:`Gateway.call`.
    """
    if not question.strip():
        raise UserInputError("the question is empty", where="llm ask", hint='llm ask "Is ..."')
    inputs: dict[str, Any] = {"question": question.strip()}
    if market is not None:
        inputs["market"] = market
    request = load_template("ask").render(inputs, caller="manual", model=model, stream=stream)
    return gateway.call(request)


def ask_once(
    settings: Settings,
    db: Database,
    question: str,
    *,
    market: dict[str, Any] | None = None,
    model: str | None = None,
    stream: bool = False,
) -> LLMResult:
    """:func:`ask` through a gateway built from ``settings`` for this one call, then closed
    (its monitor flushed to ``db``): what a command line run needs."""
    gateway = Gateway.from_settings(settings, db=db)
    try:
        return ask(gateway, question, market=market, model=model, stream=stream)
    finally:
        gateway.close()


@dataclass(frozen=True)
class CallSummary:
    """Aggregates of the stored call history, per model (all processes' calls)."""

    model: str
    provider: str
    count: int
    ok: int
    failed: int
    avg_latency_s: float
    p50_latency_s: float
    p95_latency_s: float
    input_tokens: int
    output_tokens: int
    usage_absent: int
    cost_usd: float
    price_unknown: int
    cache_hits: int

    @property
    def success_rate(self) -> float:
        """ok / count."""
        return self.ok / self.count if self.count else math.nan


def call_summary(db: Database) -> list[CallSummary]:
    """Per-model aggregates of every call recorded in ``db`` (``morningstar llm status``)."""
    t = LLMCallRow.__table__
    is_ok = sa.case((t.c.status == "ok", 1), else_=0)
    totals = (
        sa.select(
            t.c.model,
            t.c.provider,
            sa.func.count(),
            sa.func.sum(is_ok),
            sa.func.avg(t.c.latency_s),
            sa.func.coalesce(sa.func.sum(t.c.input_tokens), 0),
            sa.func.coalesce(sa.func.sum(t.c.output_tokens), 0),
            sa.func.sum(sa.case((t.c.input_tokens.is_(None), 1), else_=0)),
            sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0.0),
            sa.func.sum(sa.case((t.c.price_status == "unknown", 1), else_=0)),
            sa.func.sum(sa.case((t.c.cache_hit, 1), else_=0)),
        )
        .group_by(t.c.model, t.c.provider)
        .order_by(t.c.model)
    )
    out: list[CallSummary] = []
    with db.session(readonly=True) as s:
        groups = s.execute(totals).all()
        latencies: dict[tuple[str, str], list[float]] = {}
        for model, provider, latency in s.execute(
            sa.select(t.c.model, t.c.provider, t.c.latency_s)
        ):
            latencies.setdefault((model, provider), []).append(latency)
    for row in groups:
        spread = np.asarray(latencies[(row[0], row[1])], dtype=float)
        count, ok = int(row[2]), int(row[3] or 0)
        out.append(
            CallSummary(
                model=row[0],
                provider=row[1],
                count=count,
                ok=ok,
                failed=count - ok,
                avg_latency_s=float(row[4] or 0.0),
                p50_latency_s=float(np.percentile(spread, 50)),
                p95_latency_s=float(np.percentile(spread, 95)),
                input_tokens=int(row[5]),
                output_tokens=int(row[6]),
                usage_absent=int(row[7] or 0),
                cost_usd=float(row[8]),
                price_unknown=int(row[9] or 0),
                cache_hits=int(row[10] or 0),
            )
        )
    return out
