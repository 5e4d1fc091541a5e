"""Download service: the configured exchange's pairs and timeframes into the Parquet store."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from morningstar.data.download import DownloadResult, download_ohlcv, make_exchange, rich_progress
from morningstar.data.validation import resolve_policies
from morningstar.errors import ConfigError, UserInputError
from morningstar.services.data import pair_arg, timeframe_arg

if TYPE_CHECKING:
    from rich.console import Console

    from morningstar.bootstrap import AppContext
    from morningstar.services.data import DataService

__all__ = ["download_pairs", "parse_date"]

log = logging.getLogger(__name__)


def parse_date(value: str | None, what: str) -> pd.Timestamp | None:
    """A user-given date as an aware UTC timestamp (naive = UTC).

    Raises:
        UserInputError: not a date, with an example.
    """
    if value is None:
        return None
    bad = UserInputError(f"invalid {what} {value!r}", hint="use an ISO date such as 2024-01-31")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise bad from None
    if pd.isna(ts):
        raise bad
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def download_pairs(
    application: AppContext,
    service: DataService,
    *,
    exchange: str,
    pairs: Sequence[str] | None = None,
    timeframes: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    full: bool = False,
    policies: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> list[DownloadResult]:
    """Download every (pair, timeframe) of ``exchange`` and record each download.

    Incremental: what is stored is not fetched again, except with ``full``. When ``since`` is
    earlier than the first stored bar, the missing head is downloaded first (backfill), then the
    tail after the last stored bar. An interrupted run keeps every page fetched; running it again
    resumes where it stopped.

    Pairs and timeframes default to ``exchanges.<exchange>`` in the config.

    Raises:
        ConfigError: the exchange is not configured and no pair/timeframe was given.
        UserInputError: a bad pair, timeframe, date or policy (before any network call).
        TemporaryError / ExchangeError: the exchange failed (after retries), one line.
    """
    cfg = application.settings.exchanges.get(exchange)
    pair_list = [pair_arg(p) for p in (pairs or (cfg.pairs if cfg else []))]
    tf_list = [timeframe_arg(t) for t in (timeframes or (cfg.timeframes if cfg else []))]
    if not pair_list or not tf_list:
        raise ConfigError(
            f"no pairs/timeframes to download for {exchange!r}",
            where=f"exchanges.{exchange}",
            hint="pass --pair and --timeframe, or list them under exchanges.<id> in the config",
        )
    since_ts, until_ts = parse_date(since, "--since"), parse_date(until, "--until")
    merged_policies = {**service.default_policies, **(policies or {})}
    resolve_policies(merged_policies)  # bad names fail before any network call
    kwargs: dict[str, Any] = {}
    if cfg is not None:
        kwargs = {
            "api_base_url": cfg.api_base_url,
            "timeout_ms": cfg.timeout_ms,
            "sandbox": cfg.sandbox,
        }
    ex = make_exchange(exchange, **kwargs)
    store = service.store
    results: list[DownloadResult] = []
    try:
        with rich_progress(console=console) as on_page:

            def run(pair: Any, tf: Any, **kw: Any) -> DownloadResult:
                result = download_ohlcv(
                    ex, exchange, pair, tf, store, on_page=on_page, policies=merged_policies, **kw
                )
                service.record_download(
                    exchange=exchange,
                    venue=result.venue,
                    pair=result.pair,
                    timeframe=result.timeframe,
                    bars_fetched=result.bars_fetched,
                    bars_added=result.bars_added,
                    first=result.first,
                    last=result.last,
                )
                return result

            for pair in pair_list:
                for tf in tf_list:
                    first = (
                        store.info(exchange, pair, tf).first
                        if store.exists(exchange, pair, tf)
                        else None
                    )
                    if not full and since_ts is not None and first is not None and since_ts < first:
                        log.info("backfilling %s %s from %s to %s", pair, tf, since_ts, first)
                        results.append(run(pair, tf, since=since_ts, until=first, full=True))
                    results.append(run(pair, tf, since=since_ts, until=until_ts, full=full))
    finally:
        close = getattr(ex, "close", None)
        if callable(close):
            close()
    return results
