"""Position sizing for one entry: volatility targeting, capped fractional Kelly, hard cap.

Conventions (every amount is in the account currency, the quote of the pair):

* ``equity``: the account's equity; ``price``: the reference (entry) price of one base unit.
* ``sigma``: the expected volatility of ONE bar's return, a fraction (``0.002`` = 0.2 %).
* ``stop_distance`` / ``target_distance``: absolute price distances from ``price`` to the
  stop-loss and to the take-profit (both > 0).
* the result is a quantity of base units (>= 0) and its notional ``quantity * price``.

The size is the smallest of three notionals (as fractions of equity):

1. **volatility target**: the position's expected move over one bar equals the per-bar risk
   budget ``target_vol_pct`` % of equity, scaled by the model's confidence::

       vol_fraction = (target_vol_pct / 100) / sigma * confidence_scale(confidence)
       confidence_scale(c) = clip((c - confidence_floor) / (1 - confidence_floor), 0, 1)

   so a confidence at or below ``confidence_floor`` sizes 0 and a confidence of 1 sizes in full.
   :meth:`SizingParams.from_annual` converts an annual volatility target:
   ``target_vol_pct = annual_pct / sqrt(bars_per_year)``.
2. **capped fractional Kelly** on the trade's payoff ``b = target_distance / stop_distance``
   with win probability ``p``::

       f* = p - (1 - p) / b                   (Kelly: the fraction of equity put AT RISK)
       risk = min(max(kelly_fraction * f*, 0), max_risk_pct / 100)
       kelly_fraction_of_equity = risk / (stop_distance / price)

   so a stop hit loses at most ``risk`` of equity (the optimal growth fraction for a bet that
   wins ``b * d`` or loses ``d`` per unit of notional is ``f* / d``). ``f* <= 0`` sizes 0.
3. **hard cap**: ``max_position_pct`` % of equity.

Invalid inputs (NaN, infinite, zero or negative equity / price / volatility / stop distance,
confidence outside ``[0, 1]``) give a size of 0 with a reason, never an exception: data gaps
happen in live trading and must not crash the cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from morningstar.core._checks import check_range

__all__ = [
    "BINDINGS",
    "SizeResult",
    "SizingParams",
    "confidence_scale",
    "kelly_fraction",
    "position_size",
]

#: Which constraint set the size (``SizeResult.binding``).
BINDINGS: Final = ("vol_target", "kelly", "max_position", "zero")


def _check(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    check_range("SizingParams", name, value, low, high, low_open=low_open)


@dataclass(frozen=True, slots=True)
class SizingParams:
    """Parameters of :func:`position_size` (percentages are of equity).

    Attributes:
        target_vol_pct: per-bar risk budget: the position's expected one-bar move as % of
            equity, (0, 100]. Default 0.05 % per bar (about 16 % a year on 5-minute bars).
        confidence_floor: confidence at which the vol-target size reaches 0, [0, 1). Default
            1/3 (a three-class model's uninformed guess).
        kelly_fraction: multiplier on the Kelly fraction, [0, 1]; 0 disables the Kelly cap.
            Default 0.25 (quarter Kelly).
        max_risk_pct: cap on the equity lost when the stop is hit, % of equity, (0, 100].
            Default 1 %.
        max_position_pct: cap on the position's notional, % of equity, (0, 1000]. Default 10 %.
    """

    target_vol_pct: float = 0.05
    confidence_floor: float = 1.0 / 3.0
    kelly_fraction: float = 0.25
    max_risk_pct: float = 1.0
    max_position_pct: float = 10.0

    def __post_init__(self) -> None:
        _check("target_vol_pct", self.target_vol_pct, 0.0, 100.0, low_open=True)
        _check("confidence_floor", self.confidence_floor, 0.0, 1.0)
        if self.confidence_floor >= 1.0:
            raise ValueError(
                f"SizingParams.confidence_floor must be in [0, 1), got {self.confidence_floor!r}"
            )
        _check("kelly_fraction", self.kelly_fraction, 0.0, 1.0)
        _check("max_risk_pct", self.max_risk_pct, 0.0, 100.0, low_open=True)
        _check("max_position_pct", self.max_position_pct, 0.0, 1000.0, low_open=True)

    @classmethod
    def from_annual(
        cls, target_annual_vol_pct: float, bars_per_year: float, **kwargs: float
    ) -> SizingParams:
        """Parameters whose per-bar budget is an annual volatility target de-annualised.

        ``target_vol_pct = target_annual_vol_pct / sqrt(bars_per_year)`` (e.g. 20 % a year on
        5-minute bars, 105,120 bars a year: 0.0617 % per bar). Other fields as keywords.

        Raises:
            ValueError: a non-positive or non-finite argument.
        """
        if not (math.isfinite(target_annual_vol_pct) and target_annual_vol_pct > 0):
            raise ValueError(f"target_annual_vol_pct must be > 0, got {target_annual_vol_pct!r}")
        if not (math.isfinite(bars_per_year) and bars_per_year > 0):
            raise ValueError(f"bars_per_year must be > 0, got {bars_per_year!r}")
        return cls(target_vol_pct=target_annual_vol_pct / math.sqrt(bars_per_year), **kwargs)


@dataclass(frozen=True, slots=True)
class SizeResult:
    """The size of one entry and why.

    Attributes:
        quantity: base units, >= 0 (0 = do not trade).
        notional: ``quantity * price`` in the account currency.
        fraction: ``notional / equity``.
        binding: which constraint set the size: ``vol_target``, ``kelly``, ``max_position``
            or ``zero`` (an invalid input or a zero factor).
        reason: human-readable explanation (why 0, or which cap bound).
    """

    quantity: float
    notional: float
    fraction: float
    binding: str
    reason: str


def _zero(reason: str) -> SizeResult:
    return SizeResult(0.0, 0.0, 0.0, "zero", reason)


def confidence_scale(confidence: float, floor: float) -> float:
    """Linear confidence map: 0 at or below ``floor``, 1 at confidence 1, clipped to [0, 1].

    NaN gives 0.
    """
    if not confidence > floor:  # also NaN
        return 0.0
    return min((confidence - floor) / (1.0 - floor), 1.0)


def kelly_fraction(win_probability: float, payoff: float) -> float:
    """Full Kelly fraction of equity at risk, ``p - (1 - p) / b``; may be negative.

    Args:
        win_probability: ``p`` in [0, 1].
        payoff: ``b``, the win per unit lost (target distance / stop distance), > 0.

    Returns:
        ``f*``; ``-inf``-free: a non-positive or NaN payoff / probability gives ``-1.0``.
    """
    if not (payoff > 0.0 and 0.0 <= win_probability <= 1.0):
        return -1.0
    return win_probability - (1.0 - win_probability) / payoff


def _bad(x: float) -> bool:
    """True for NaN, infinities and values <= 0."""
    return not (0.0 < x < math.inf)


def position_size(
    equity: float,
    price: float,
    sigma: float,
    confidence: float,
    stop_distance: float,
    target_distance: float,
    params: SizingParams,
    win_probability: float | None = None,
) -> SizeResult:
    """Size one entry: ``min(vol target, Kelly cap, max position)`` (module docstring).

    Args:
        equity: account equity, account currency, > 0.
        price: reference entry price per base unit, > 0.
        sigma: expected per-bar volatility of returns, a fraction, > 0.
        confidence: the model's confidence in the trade's direction, [0, 1].
        stop_distance: |price - stop-loss|, price units, > 0.
        target_distance: |take-profit - price|, price units, > 0 (used by Kelly only).
        params: sizing parameters.
        win_probability: ``p`` of the Kelly formula; ``None`` uses ``confidence`` (the model's
            probability of its predicted class: conservative, a flat outcome counts as a loss).

    Returns:
        The size, never negative; 0 with a reason for any invalid input.
    """
    if _bad(equity):
        return _zero(f"invalid equity {equity!r}")
    if _bad(price):
        return _zero(f"invalid price {price!r}")
    if _bad(sigma):
        return _zero(f"invalid volatility {sigma!r}")
    if not 0.0 <= confidence <= 1.0:
        return _zero(f"invalid confidence {confidence!r}")
    if _bad(stop_distance):
        return _zero(f"invalid stop distance {stop_distance!r}")

    scale = confidence_scale(confidence, params.confidence_floor)
    if scale <= 0.0:
        return _zero(
            f"confidence {confidence:.3f} <= confidence_floor {params.confidence_floor:.3f}"
        )
    fraction = params.target_vol_pct / 100.0 / sigma * scale
    binding = "vol_target"

    if params.kelly_fraction > 0.0:
        p = confidence if win_probability is None else win_probability
        if not 0.0 <= p <= 1.0:
            return _zero(f"invalid win probability {p!r}")
        if _bad(target_distance):
            return _zero(f"invalid target distance {target_distance!r}")
        f_star = kelly_fraction(p, target_distance / stop_distance)
        risk = min(params.kelly_fraction * f_star, params.max_risk_pct / 100.0)
        if risk <= 0.0:
            return _zero(f"Kelly fraction {f_star:.4f} <= 0 (p={p:.3f}, payoff ratio "
                         f"{target_distance / stop_distance:.3f})")  # fmt: skip
        kelly_cap = risk * price / stop_distance
        if kelly_cap < fraction:
            fraction = kelly_cap
            binding = "kelly"

    cap = params.max_position_pct / 100.0
    if cap < fraction:
        fraction = cap
        binding = "max_position"

    notional = fraction * equity
    quantity = notional / price
    if not 0.0 < quantity < math.inf:  # underflow / overflow of extreme inputs
        return _zero(f"size out of range ({quantity!r})")
    return SizeResult(quantity, notional, fraction, binding, f"{binding}: {fraction:.4%} of equity")
