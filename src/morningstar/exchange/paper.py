"""The paper broker: the simulated fill model against live bars. It never sends an order anywhere.

:class:`PaperBroker` is :class:`~morningstar.exchange.simulated.SimulatedBroker` (the backtest
engine's fill model: market orders at the next bar's open, protective stops and targets inside the
bar, gaps at the open, OCO, fees and slippage; see that module) fed with the CLOSED bars that the
paper-mode feed (:class:`~morningstar.data.feeds.CcxtPollingFeed`) fetched from the exchange.
Orders, fills and positions exist only in this object and in the workflow's store: **no order is
ever sent to the exchange**, and no credentials are needed.

What it adds for live bars: a bar of a pair at or before the last bar it processed for that pair
is ignored (a feed re-delivering a bar after a reconnect cannot fill an order twice), and that last
bar is part of :meth:`PaperBroker.state`, so a restarted paper run resumes exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from morningstar.core.engine.types import Costs, IntrabarPolicy
from morningstar.core.orders import Fill
from morningstar.core.types import Bar
from morningstar.exchange.simulated import SimulatedBroker

__all__ = ["PaperBroker"]

log = logging.getLogger(__name__)


class PaperBroker(SimulatedBroker):
    """Paper trading: :class:`SimulatedBroker`'s fill model on live bars (module docstring).

    Args:
        costs: fees and slippage assumed for the simulated fills (set them to the exchange's
            taker fee and a realistic slippage).
        intrabar: ``"stop_first"`` (default) or ``"target_first"``.
        remember_ids: finished order ids remembered for idempotency.
    """

    name: str = "paper"

    def __init__(
        self,
        costs: Costs | None = None,
        *,
        intrabar: IntrabarPolicy = "stop_first",
        remember_ids: int = 4096,
    ) -> None:
        super().__init__(costs, intrabar=intrabar, remember_ids=remember_ids)
        self._last_bar: dict[str, datetime] = {}

    def process_bar(self, pair: str, bar: Bar) -> list[Fill]:
        """Fill the open orders of ``pair`` against ``bar``; a bar already seen fills nothing."""
        last = self._last_bar.get(pair)
        if last is not None and bar.ts <= last:
            log.warning("paper broker: %s bar %s already processed; ignored", pair, bar.ts)
            return []
        self._last_bar[pair] = bar.ts
        fills = super().process_bar(pair, bar)
        for fill in fills:
            log.info(
                "paper fill %s %s %s %.8g @ %.8g (fee %.8g, %s)",
                fill.fill_id, fill.pair, fill.side, fill.quantity, fill.price, fill.fee,
                fill.reason,
            )  # fmt: skip
        return fills

    def last_bar(self, pair: str) -> datetime | None:
        """Open time of the last bar of ``pair`` processed, or None."""
        return self._last_bar.get(pair)

    def state(self) -> dict[str, Any]:
        """:meth:`SimulatedBroker.state` plus the last bar processed per pair."""
        state = super().state()
        state["last_bars"] = {pair: ts.isoformat() for pair, ts in self._last_bar.items()}
        return state

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        costs: Costs | None = None,
        *,
        intrabar: IntrabarPolicy = "stop_first",
        remember_ids: int = 4096,
    ) -> Self:
        """A paper broker restored from :meth:`state`.

        Raises:
            ValueError: the state is malformed.
        """
        broker = super().from_state(state, costs, intrabar=intrabar, remember_ids=remember_ids)
        for pair, text in dict(state.get("last_bars", {})).items():
            ts = datetime.fromisoformat(str(text))
            if ts.tzinfo is None:
                raise ValueError(f"last bar of {pair} must be aware (UTC), got {text!r}")
            broker._last_bar[str(pair)] = ts
        return broker
