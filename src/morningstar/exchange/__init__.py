"""Exchange adapters: ccxt client (shared by the downloader and, later, the ccxt broker)."""

from __future__ import annotations

from morningstar.exchange.ccxt_client import (
    EXCHANGE_DEFAULT_OPTIONS,
    api_base,
    make_exchange,
    retry_after_s,
    translate_ccxt_error,
)

__all__ = [
    "EXCHANGE_DEFAULT_OPTIONS",
    "api_base",
    "make_exchange",
    "retry_after_s",
    "translate_ccxt_error",
]
