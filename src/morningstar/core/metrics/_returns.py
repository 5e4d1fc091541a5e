"""Return-based metrics: total return, CAGR, volatility, Sharpe, Sortino, Calmar.

Every function takes per-bar simple returns (``r[i] = equity[i+1] / equity[i] - 1``) and the
annualisation factor ``periods_per_year`` (see :func:`periods_per_year`); they follow
empyrical-reloaded's definitions, on which they are cross-checked.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from morningstar.core.metrics._common import (
    FloatArray,
    as_compoundable,
    as_series,
    check_periods_per_year,
    check_rate,
    ratio,
)


def simple_returns(equity: npt.ArrayLike) -> FloatArray:
    """Return the per-bar simple returns of an equity curve: ``equity[1:] / equity[:-1] - 1``.

    The result has one element fewer than ``equity`` (empty for zero or one bar).

    Raises:
        ValueError: a NaN/inf, or a non-positive equity value (a ruined account has no return).
    """
    eq = as_series(equity, "equity")
    if eq.size and float(eq.min()) <= 0.0:
        bad = int(np.flatnonzero(eq <= 0.0)[0])
        raise ValueError(
            f"equity[{bad}] is {eq[bad]}: returns need a positive equity curve "
            "(stop the run at ruin, or pass returns directly)"
        )
    out: FloatArray = eq[1:] / eq[:-1] - 1.0
    return out


def equity_curve(returns: npt.ArrayLike, start: float = 1.0) -> FloatArray:
    """Return the equity curve compounded from ``returns``, with ``start`` prepended.

    ``equity_curve(r)[k]`` is the value after ``k`` returns, so the curve has ``len(r) + 1``
    bars and ``equity_curve(simple_returns(e), e[0])`` reproduces ``e``. Drawdown indices refer
    to this curve.

    Raises:
        ValueError: a NaN/inf, or a return below -1.
    """
    r = as_compoundable(returns)
    out = np.empty(r.size + 1, dtype=np.float64)
    out[0] = float(start)
    np.cumprod(1.0 + r, out=out[1:])
    out[1:] *= float(start)
    return out


def total_return(returns: npt.ArrayLike) -> float:
    """Return the compounded return over the whole series, ``prod(1 + r) - 1`` (0.25 = +25 %).

    An empty series has a total return of 0.0 (nothing happened), where empyrical's
    ``cum_returns_final`` gives NaN.

    Raises:
        ValueError: a NaN/inf, or a return below -1.
    """
    r = as_compoundable(returns)
    return float(np.prod(1.0 + r)) - 1.0


def cagr(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Return the compound annual growth rate, ``(1 + total) ** (periods_per_year / n) - 1``.

    The span is ``n = len(returns)`` bars, i.e. the time from the first to the last bar of the
    equity curve (empyrical ``annual_return``). NaN for an empty series; -1.0 after a -100 %
    return; may be ``inf`` when a short, strongly rising series is annualised at a high factor.

    Raises:
        ValueError: a NaN/inf, a return below -1, or a bad ``periods_per_year``.
    """
    r = as_compoundable(returns)
    ppy = check_periods_per_year(periods_per_year)
    if r.size == 0:
        return math.nan
    years = r.size / ppy
    ending = np.prod(1.0 + r)
    with np.errstate(over="ignore"):
        grown = np.power(ending, 1.0 / years)
    return float(grown) - 1.0


def _moments(x: FloatArray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1), the deviation exactly 0 for constant data."""
    mean = float(x.mean())
    std = 0.0 if float(x.max()) == float(x.min()) else float(x.std(ddof=1))
    return mean, std


def annual_volatility(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Return the annualised volatility, ``std(r, ddof=1) * sqrt(periods_per_year)``.

    NaN for fewer than two returns (empyrical ``annual_volatility``).

    Raises:
        ValueError: a NaN/inf, or a bad ``periods_per_year``.
    """
    r = as_series(returns, "returns")
    ppy = check_periods_per_year(periods_per_year)
    if r.size < 2:
        return math.nan
    return _moments(r)[1] * math.sqrt(ppy)


def sharpe(returns: npt.ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Return the annualised Sharpe ratio, ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``.

    Args:
        returns: per-bar simple returns.
        periods_per_year: annualisation factor.
        risk_free: risk-free return PER BAR (empyrical convention); from an annual rate ``R``
            use ``(1 + R) ** (1 / periods_per_year) - 1``.

    Returns:
        NaN for fewer than two returns. With zero volatility (every excess return equal) the
        ratio is ``+inf``/``-inf`` by the sign of the mean, NaN when the mean is 0
        (empyrical-reloaded >= 0.5.12).

    Raises:
        ValueError: a NaN/inf, or a bad ``periods_per_year``/``risk_free``.
    """
    r = as_series(returns, "returns")
    ppy = check_periods_per_year(periods_per_year)
    rf = check_rate(risk_free, "risk_free")
    if r.size < 2:
        return math.nan
    mean, std = _moments(r - rf if rf != 0.0 else r)
    return ratio(mean, std) * math.sqrt(ppy)


def downside_risk(
    returns: npt.ArrayLike, periods_per_year: float, required_return: float = 0.0
) -> float:
    """Return the annualised downside deviation below ``required_return`` (per bar).

    ``sqrt(mean(min(r - required, 0) ** 2)) * sqrt(ppy)``: the mean runs over ALL bars, not only
    the losing ones (Sortino & Price; empyrical ``downside_risk``). NaN for an empty series.

    Raises:
        ValueError: a NaN/inf, or a bad ``periods_per_year``/``required_return``.
    """
    r = as_series(returns, "returns")
    ppy = check_periods_per_year(periods_per_year)
    req = check_rate(required_return, "required_return")
    if r.size == 0:
        return math.nan
    below = np.minimum(r - req, 0.0)
    return math.sqrt(float(np.mean(below * below))) * math.sqrt(ppy)


def sortino(returns: npt.ArrayLike, periods_per_year: float, required_return: float = 0.0) -> float:
    """Return the annualised Sortino ratio, ``mean(r - required) * ppy / downside_risk``.

    Args:
        returns: per-bar simple returns.
        periods_per_year: annualisation factor.
        required_return: minimum acceptable return PER BAR (0 by default).

    Returns:
        NaN for fewer than two returns; ``+inf`` when no bar falls below ``required_return``
        and the mean excess is positive, NaN when it is 0 (empyrical ``sortino_ratio``).

    Raises:
        ValueError: a NaN/inf, or a bad ``periods_per_year``/``required_return``.
    """
    r = as_series(returns, "returns")
    ppy = check_periods_per_year(periods_per_year)
    req = check_rate(required_return, "required_return")
    if r.size < 2:
        return math.nan
    excess = r - req
    below = np.minimum(excess, 0.0)
    risk = math.sqrt(float(np.mean(below * below))) * math.sqrt(ppy)
    return ratio(float(np.mean(excess)) * ppy, risk)
