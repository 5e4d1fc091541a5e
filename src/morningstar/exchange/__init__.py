"""Exchange adapters: the broker port, the simulated and paper brokers, and the ccxt client
(shared by the downloader, the paper feed and, later, the ccxt broker).

The brokers are imported on first use (``morningstar.exchange.SimulatedBroker``): they pull in
the backtest engine (numba), which the downloader does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from morningstar.exchange.ccxt_client import (
    EXCHANGE_DEFAULT_OPTIONS,
    api_base,
    make_exchange,
    retry_after_s,
    translate_ccxt_error,
)

if TYPE_CHECKING:
    from morningstar.exchange.broker import Broker, OrderAck
    from morningstar.exchange.paper import PaperBroker
    from morningstar.exchange.simulated import SimulatedBroker

__all__ = [
    "EXCHANGE_DEFAULT_OPTIONS",
    "Broker",
    "OrderAck",
    "PaperBroker",
    "SimulatedBroker",
    "api_base",
    "make_exchange",
    "retry_after_s",
    "translate_ccxt_error",
]

_LAZY = {
    "Broker": "morningstar.exchange.broker",
    "OrderAck": "morningstar.exchange.broker",
    "PaperBroker": "morningstar.exchange.paper",
    "SimulatedBroker": "morningstar.exchange.simulated",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
