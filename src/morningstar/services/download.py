"""Download service: the configured exchange's pairs and timeframes into the Parquet store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from morningstar.data.download import DownloadResult, download_ohlcv, make_exchange, rich_progress
from morningstar.errors import ConfigError, UserInputError

if TYPE_CHECKING:
    from rich.console import Console

    from morningstar.bootstrap import AppContext
    from morningstar.services.data import DataService

__all__ = ["download_pairs"]

log = logging.getLogger(__name__)


def download_pairs(
    application: AppContext,
    service: DataService,
    *,
    exchange: str,
    pairs: Sequence[str] | None = None,
    timeframes: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    console: Console | None = None,
) -> list[DownloadResult]:
    """Download every (pair, timeframe) of ``exchange``, incrementally, and record each download.

    Pairs and timeframes default to ``exchanges.<exchange>`` in the config. An interrupted run
    keeps every page already stored; running it again resumes where it stopped.

    Raises:
        ConfigError: the exchange is not configured and no pair/timeframe was given.
        TemporaryError / ExchangeError: the exchange failed (after retries), one line.
    """
    cfg = application.settings.exchanges.get(exchange)
    pair_list = list(pairs or (cfg.pairs if cfg else []))
    tf_list = list(timeframes or (cfg.timeframes if cfg else []))
    if not pair_list or not tf_list:
        raise ConfigError(
            f"no pairs/timeframes to download for {exchange!r}",
            where=f"exchanges.{exchange}",
            hint="pass --pair and --timeframe, or list them under exchanges.<id> in the config",
        )
    kwargs: dict[str, Any] = {}
    if cfg is not None:
        kwargs = {
            "api_base_url": cfg.api_base_url,
            "timeout_ms": cfg.timeout_ms,
            "sandbox": cfg.sandbox,
        }
    ex = make_exchange(exchange, **kwargs)
    results: list[DownloadResult] = []
    try:
        with rich_progress(console=console) as on_page:
            for pair in pair_list:
                for tf in tf_list:
                    result = download_ohlcv(
                        ex,
                        exchange,
                        pair,
                        tf,
                        service.store,
                        since=since,
                        until=until,
                        on_page=on_page,
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
                    results.append(result)
    except ValueError as exc:  # a malformed pair or timeframe on the command line
        raise UserInputError(str(exc)) from None
    finally:
        close = getattr(ex, "close", None)
        if callable(close):
            close()
    return results
