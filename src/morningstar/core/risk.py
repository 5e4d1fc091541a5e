"""The risk engine: hard, deterministic limits with the last word, after the rules and the LLM.

Amounts are in the account currency (the caller converts marks of pairs quoted in another
currency); percentages are of equity; an asset is a pair's base currency (``BTC`` for
``BTC/USDT`` and ``BTC/USDT:USDT``; the whole name for a pair without ``/``).

State machine (:class:`RiskState`), evaluated on every :meth:`RiskEngine.update` /
:meth:`RiskEngine.check` from the :class:`PortfolioView` (no clock: the bar's UTC day and index
are data). The drawdown is ``1 - equity / peak`` with ``peak`` the view's peak equity (after a
:meth:`RiskEngine.reset`, the peak seen since the reset):

* any state except HALTED -> **HALTED** when the drawdown >= ``max_drawdown_pct`` (or equity
  <= 0): the kill switch. New entries are refused; exits and stop adjustments still go through;
  :meth:`RiskEngine.flatten_intents` closes every position when ``flatten_on_halt``. HALTED is
  left only by an explicit :meth:`RiskEngine.reset`.
* ACTIVE -> **REDUCING** when the drawdown >= ``reduce_at_drawdown_pct``: new entries are sized
  by ``reducing_size_factor``; REDUCING -> **ACTIVE** when the drawdown recovers below it.
* independently, the **daily loss** ``1 - equity / day_start_equity`` >= ``daily_loss_limit_pct``
  blocks new entries for the rest of that UTC day (a view with another ``day`` lifts it).

Rules of :meth:`RiskEngine.check`, in order, for an ``open`` (each records a
:class:`Rejection` when it cuts or refuses):

===========================  =====================================================  ========
rule                         test                                                   effect
===========================  =====================================================  ========
``invalid_view``             equity not finite and > 0                              refuse
``halted``                   state HALTED                                           refuse
``daily_loss_limit_pct``     entries blocked for the view's day                     refuse
``cooldown_bars_after_stop`` a stop on the pair at bar s, view bar in [s, s + N]    refuse
``invalid_intent``           price not finite and > 0 or quantity not > 0           refuse
``position_conflict``        a position on the other side is open on the pair      refuse
``max_open_positions``       the pair is not open and the count is at the limit     refuse
``reducing``                 state REDUCING                                         shrink
``max_position_pct``         the pair's notional would exceed the cap               shrink
``per_asset_cap_pct``        the asset's notional would exceed the cap (override)   shrink
``max_gross_exposure_pct``   the total notional would exceed the cap                shrink
``min_notional``             what is left is below ``min_notional`` (or 0)          refuse
===========================  =====================================================  ========

The caps shrink an entry to fit (notional = room left) rather than refuse it; an entry with no
room left is refused. A ``close`` is always allowed (halted or not) when a position on that
side exists, its quantity clamped to the position's (``close_quantity``); otherwise refused
(``no_position`` / ``position_conflict``). An ``adjust`` is allowed in every state but refused
when it would loosen the position's known stop (``adjust_loosens``). ``none`` passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from morningstar.core._intent import OrderIntent
from morningstar.core._risk_types import (
    PortfolioView,
    PositionView,
    Rejection,
    RiskDecision,
    RiskLimits,
    RiskState,
)

__all__ = [
    "STATE_VERSION",
    "PortfolioView",
    "PositionView",
    "Rejection",
    "RiskDecision",
    "RiskEngine",
    "RiskLimits",
    "RiskState",
]

#: Version of the dict written by :meth:`RiskEngine.to_state`.
STATE_VERSION: Final = 1
#: Tolerance of the drawdown and daily-loss thresholds, in percentage points (so that a round
#: loss such as 10,000 -> 8,000 meets a 20 % limit despite floating point).
_EPS: Final = 1e-9


def _asset(pair: str) -> str:
    base, sep, _ = pair.partition("/")
    return base if sep else pair


def _fit(quantity: float, price: float, room: float) -> float:
    """The largest quantity <= ``quantity`` whose notional ``q * price`` is <= ``room``."""
    if quantity * price <= room:
        return quantity
    q = room / price
    while q > 0.0 and q * price > room:
        q = math.nextafter(q, 0.0)
    return max(q, 0.0)


class RiskEngine:
    """The hard limits with their state (module docstring for the rules and the transitions).

    One engine serves every pair of a portfolio; call :meth:`check` for each intent (it calls
    :meth:`update` first), :meth:`record_stop` after each stop-loss exit, and persist
    :meth:`to_state` each cycle (:meth:`from_state` resumes exactly).
    """

    __slots__ = ("_blocked_day", "_blocked_msg", "_drawdown_pct", "_halt_msg", "_peak", "_state",
                 "_stops", "limits")  # fmt: skip

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._state = RiskState.ACTIVE
        self._halt_msg = ""
        self._drawdown_pct = 0.0
        self._blocked_day: int | None = None
        self._blocked_msg = ""
        self._stops: dict[str, int] = {}
        # peak equity since the last reset(); None = use the view's peak_equity
        self._peak: float | None = None

    @property
    def state(self) -> RiskState:
        """The current state."""
        return self._state

    def entries_blocked(self, day: int) -> bool:
        """Whether the daily loss limit blocks entries on UTC day ``day``."""
        return self._blocked_day == day

    def update(self, view: PortfolioView) -> RiskState:
        """Advance the state machine with ``view`` (idempotent for the same view).

        A view whose equity is not a finite number changes nothing.
        """
        equity = view.equity
        if not math.isfinite(equity):
            return self._state
        limits = self.limits
        if self._peak is None:
            peak = view.peak_equity if view.peak_equity > equity else equity
        else:
            peak = self._peak = self._peak if self._peak > equity else equity
        pct = 100.0 if equity <= 0.0 or not peak > 0.0 else (peak - equity) / peak * 100.0
        self._drawdown_pct = pct
        pct += _EPS
        if self._state is not RiskState.HALTED:
            if pct >= limits.max_drawdown_pct:
                self._state = RiskState.HALTED
                self._halt_msg = (
                    f"drawdown {self._drawdown_pct:.2f}% >= max_drawdown_pct {limits.max_drawdown_pct:g}% "
                    f"(equity {equity:.2f}, peak {peak:.2f}); reset() to resume"
                )
            elif pct >= limits.reduce_at:
                self._state = RiskState.REDUCING
            elif self._state is RiskState.REDUCING:
                self._state = RiskState.ACTIVE
        start = view.day_start_equity
        if self._blocked_day != view.day and start > 0.0:
            loss = (start - equity) / start * 100.0
            if loss + _EPS >= limits.daily_loss_limit_pct:
                self._blocked_day = view.day
                self._blocked_msg = (
                    f"day loss {loss:.2f}% >= {limits.daily_loss_limit_pct:g}% "
                    f"(day {view.day}): no new entry until the next UTC day"
                )
        return self._state

    def reset(self, equity: float | None = None) -> None:
        """Leave HALTED (an operator's explicit decision) and return to ACTIVE.

        The drawdown is measured from then on against the peak equity seen since the reset
        (``equity``, or the next view's), else the view's all-time peak would halt again at
        once. A daily-loss block and the cooldowns stay.
        """
        self._state = RiskState.ACTIVE
        self._halt_msg = ""
        self._peak = 0.0 if equity is None or not math.isfinite(equity) else equity

    def record_stop(self, pair: str, bar_index: int) -> None:
        """Record a stop-loss exit on ``pair`` at bar ``bar_index`` (starts its cooldown)."""
        if self.limits.cooldown_bars_after_stop > 0:
            self._stops[pair] = bar_index

    def _cooldown(self, pair: str, bar: int) -> str | None:
        stop = self._stops.get(pair)
        if stop is None:
            return None
        n = self.limits.cooldown_bars_after_stop
        if bar > stop + n:
            del self._stops[pair]
            return None
        if bar < stop:
            return None
        return (f"stop on {pair} at bar {stop}: no entry until bar {stop + n + 1} "
                f"({stop + n + 1 - bar} bars left of {n})")  # fmt: skip

    def check(self, intent: OrderIntent, view: PortfolioView) -> RiskDecision:
        """The last word on ``intent`` (module docstring for the rules, in order).

        Returns:
            The intent to execute (possibly shrunk, ``none`` when refused) and every rule that
            cut or refused it. Never raises for bad numbers: they refuse the entry.
        """
        state = self.update(view)
        action = intent.action
        if action == "none":
            return RiskDecision(intent, (), state)
        if action == "open":
            return self._check_open(intent, view, state)
        position = view.positions.get(intent.pair)
        if position is None or not position.quantity > 0.0:
            return self._refuse(intent, state, (Rejection(
                "no_position", f"nothing open on {intent.pair} to {action}"),))  # fmt: skip
        if position.side != intent.side:
            return self._refuse(intent, state, (Rejection(
                "position_conflict", f"{action} for side {intent.side:+d} but the {intent.pair} "
                f"position is side {position.side:+d}"),))  # fmt: skip
        if action == "close":
            if intent.quantity > position.quantity:
                cut = Rejection("close_quantity", f"close {intent.quantity:g} > position "
                                                  f"{position.quantity:g}: clamped")  # fmt: skip
                clamped = OrderIntent(intent.pair, "close", intent.side, position.quantity,
                                      intent.price, intent.stop_loss, intent.take_profit,
                                      (*intent.reasons, f"risk: {cut}"))  # fmt: skip
                return RiskDecision(clamped, (cut,), state)
            return RiskDecision(intent, (), state)
        # adjust: never loosen the known stop
        old, new = position.stop_loss, intent.stop_loss
        if old is not None and (new is None or intent.side * (new - old) < 0.0):
            return self._refuse(intent, state, (Rejection(
                "adjust_loosens", f"stop {new} would be looser than {old}"),))  # fmt: skip
        return RiskDecision(intent, (), state)

    def _refuse(self, intent: OrderIntent, state: RiskState,
                rejections: tuple[Rejection, ...]) -> RiskDecision:  # fmt: skip
        refused = OrderIntent(intent.pair, "none", intent.side, 0.0, intent.price,
                              intent.stop_loss, intent.take_profit,
                              (*intent.reasons, f"risk: {rejections[-1]}"))  # fmt: skip
        return RiskDecision(refused, rejections, state)

    def _check_open(self, intent: OrderIntent, view: PortfolioView,
                    state: RiskState) -> RiskDecision:  # fmt: skip
        limits = self.limits
        pair = intent.pair
        equity = view.equity
        if not 0.0 < equity < math.inf:
            return self._refuse(intent, state, (Rejection(
                "invalid_view", f"equity {equity!r}: no entry"),))  # fmt: skip
        if state is RiskState.HALTED:
            return self._refuse(intent, state, (Rejection("halted", self._halt_msg),))
        if self._blocked_day == view.day:
            return self._refuse(
                intent, state, (Rejection("daily_loss_limit_pct", self._blocked_msg),)
            )
        if self._stops:
            cooling = self._cooldown(pair, view.bar_index)
            if cooling is not None:
                return self._refuse(
                    intent, state, (Rejection("cooldown_bars_after_stop", cooling),)
                )
        price, quantity = intent.price, intent.quantity
        if not (0.0 < price < math.inf and 0.0 < quantity < math.inf):
            return self._refuse(intent, state, (Rejection(
                "invalid_intent", f"price {price!r}, quantity {quantity!r}"),))  # fmt: skip
        positions = view.positions
        own = positions.get(pair)
        if own is not None and not own.quantity > 0.0:
            own = None
        if own is not None and own.side != intent.side:
            return self._refuse(intent, state, (Rejection(
                "position_conflict", f"a side {own.side:+d} position is open on {pair}: "
                "close it first"),))  # fmt: skip
        n_open = sum(1 for p in positions.values() if p.quantity > 0.0)
        if own is None and n_open >= limits.max_open_positions:
            return self._refuse(
                intent,
                state,
                (
                    Rejection(
                        "max_open_positions", f"{n_open} open, limit {limits.max_open_positions}"
                    ),
                ),
            )

        cuts: list[Rejection] = []
        if state is RiskState.REDUCING:
            quantity *= limits.reducing_size_factor
            cuts.append(Rejection("reducing", (
                f"drawdown {self._drawdown_pct:.2f}% >= reduce_at_drawdown_pct "
                f"{limits.reduce_at:g}%: size x{limits.reducing_size_factor:g}")))  # fmt: skip
        own_notional = 0.0 if own is None else own.notional
        asset = _asset(pair)
        asset_notional = gross = 0.0
        for other_pair, p in positions.items():
            if p.quantity > 0.0:
                notional = p.notional
                gross += notional
                if _asset(other_pair) == asset:
                    asset_notional += notional
        asset_cap = limits.per_pair_cap_pct.get(pair, limits.per_asset_cap_pct)
        for rule, pct, used, what in (
            ("max_position_pct", limits.max_position_pct, own_notional, f"{pair} position"),
            ("per_asset_cap_pct", asset_cap, asset_notional, f"{asset} exposure"),
            ("max_gross_exposure_pct", limits.max_gross_exposure_pct, gross, "gross exposure"),
        ):
            room = pct / 100.0 * equity - used
            fitted = _fit(quantity, price, room) if room > 0.0 else 0.0
            if fitted < quantity:
                verb = f"shrunk to {fitted:g}" if fitted > 0.0 else "no room left"
                cuts.append(
                    Rejection(
                        rule,
                        f"{what} {used:.2f} + {quantity * price:.2f} > "
                        f"{pct:g}% of equity {equity:.2f}: {verb}",
                    )
                )
                quantity = fitted
            if quantity <= 0.0:
                return self._refuse(intent, state, tuple(cuts))
        if quantity * price < limits.min_notional:
            cuts.append(
                Rejection(
                    "min_notional",
                    f"notional {quantity * price:.2f} < min_notional {limits.min_notional:g}",
                )
            )
            return self._refuse(intent, state, tuple(cuts))
        if not cuts:
            return RiskDecision(intent, (), state)
        shrunk = OrderIntent(pair, "open", intent.side, quantity, price, intent.stop_loss,
                             intent.take_profit,
                             (*intent.reasons, *(f"risk: {c}" for c in cuts)))  # fmt: skip
        return RiskDecision(shrunk, tuple(cuts), state)

    def flatten_intents(
        self, view: PortfolioView, *, force: bool = False
    ) -> tuple[OrderIntent, ...]:
        """``close`` intents for every open position, sorted by pair.

        Returns them when HALTED with ``flatten_on_halt`` (or with ``force``), else ``()``.
        """
        if not force and not (self._state is RiskState.HALTED and self.limits.flatten_on_halt):
            return ()
        why = f"flatten: {self._halt_msg}" if self._state is RiskState.HALTED else "flatten"
        return tuple(
            OrderIntent(pair, "close", p.side, p.quantity, p.mark_price, p.stop_loss, None, (why,))
            for pair, p in sorted(view.positions.items())
            if p.quantity > 0.0
        )

    def to_state(self) -> dict[str, Any]:
        """The engine's mutable state as a plain JSON-friendly dict (the limits excluded)."""
        return {
            "version": STATE_VERSION,
            "state": self._state.value,
            "halt_message": self._halt_msg,
            "drawdown_pct": self._drawdown_pct,
            "blocked_day": self._blocked_day,
            "blocked_message": self._blocked_msg,
            "stops": dict(self._stops),
            "peak_since_reset": self._peak,
        }

    @classmethod
    def from_state(cls, limits: RiskLimits, state: Mapping[str, Any]) -> RiskEngine:
        """An engine resuming exactly from :meth:`to_state`'s dict.

        Raises:
            ValueError: an unknown version or state, or a malformed field.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"risk state version must be {STATE_VERSION}, got "
                             f"{state.get('version')!r}")  # fmt: skip
        engine = cls(limits)
        try:
            engine._state = RiskState(state["state"])
            engine._halt_msg = str(state.get("halt_message", ""))
            engine._drawdown_pct = float(state.get("drawdown_pct", 0.0))
            day = state.get("blocked_day")
            engine._blocked_day = None if day is None else int(day)
            engine._blocked_msg = str(state.get("blocked_message", ""))
            engine._stops = {str(k): int(v) for k, v in dict(state.get("stops", {})).items()}
            peak = state.get("peak_since_reset")
            engine._peak = None if peak is None else float(peak)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed risk state: {exc}") from exc
        return engine
