"""Overfitting statistics: probabilistic and deflated Sharpe ratios.

Reference: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", *The Journal of Portfolio Management*
40(5), 2014, pp. 94-107 (PSR first in Bailey & López de Prado, "The Sharpe Ratio Efficient
Frontier", *Journal of Risk* 15(2), 2012).

Units: every Sharpe ratio here is **per bar, not annualised**: ``SR = mean(r) / std(r, ddof=1)``
of the per-bar simple returns ``r`` (the project's annualised Sharpe divided by
``sqrt(periods_per_year)``). The variance of Sharpe ratios across trials must be in the same
per-bar units (annualised variance / ``periods_per_year``). Kurtosis is the *non-excess* (Pearson)
kurtosis: 3 for normal returns. Skewness and kurtosis are the moment estimators
``m3 / m2**1.5`` and ``m4 / m2**2`` (population moments, as in the paper).

Formulas (``Φ`` the standard normal CDF, ``γ`` the Euler–Mascheroni constant, ``e`` Euler's
number, ``T`` the number of returns, ``γ3`` skewness, ``γ4`` kurtosis)::

    PSR(SR*)  = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )
    E[max SR] = sqrt(V) · ( (1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)) )
    DSR       = PSR(E[max SR])

``E[max SR]`` is the expected maximum of ``N`` independent Sharpe estimates whose true value is
0 and whose variance across trials is ``V`` (the paper's ``SR0``): the Sharpe ratio the best of
``N`` skill-less trials shows by luck. The DSR is the probability that the true Sharpe ratio of
the selected strategy beats that bar; below 0.95 the selection is not significant at 5 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "EULER_GAMMA",
    "ReturnMoments",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "return_moments",
]

#: The Euler–Mascheroni constant.
EULER_GAMMA: Final[float] = 0.5772156649015329

_NORMAL = NormalDist()


@dataclass(frozen=True)
class ReturnMoments:
    """Per-bar Sharpe ratio and higher moments of a return series.

    Attributes:
        sharpe: ``mean / std(ddof=1)`` (per bar; NaN when the returns do not vary).
        skew: ``m3 / m2**1.5`` (NaN when the returns do not vary).
        kurtosis: ``m4 / m2**2``, non-excess (3 for normal returns; NaN when they do not vary).
        n_obs: number of returns.
    """

    sharpe: float
    skew: float
    kurtosis: float
    n_obs: int


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def return_moments(returns: npt.ArrayLike) -> ReturnMoments:
    """Per-bar Sharpe ratio, skewness and (non-excess) kurtosis of ``returns``.

    Raises:
        ValueError: not one-dimensional, fewer than two returns, or a NaN/inf.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {r.shape}")
    if r.size < 2:
        raise ValueError(f"need at least 2 returns, got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError("returns contain NaN or inf")
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    if float(r.max()) == float(r.min()) or m2 <= 0.0:
        return ReturnMoments(math.nan, math.nan, math.nan, int(r.size))
    sd = math.sqrt(m2 * r.size / (r.size - 1))
    return ReturnMoments(
        sharpe=float(r.mean()) / sd,
        skew=float(np.mean(centred**3)) / m2**1.5,
        kurtosis=float(np.mean(centred**4)) / m2**2,
        n_obs=int(r.size),
    )


def probabilistic_sharpe_ratio(
    sr: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    sr_benchmark: float = 0.0,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (PSR).

    ``Φ((sr - sr_benchmark) · sqrt(n_obs - 1) / sqrt(1 - skew·sr + (kurtosis - 1)/4 · sr²))``
    (Bailey & López de Prado 2012, 2014).

    Args:
        sr: observed Sharpe ratio, per bar (not annualised).
        n_obs: number of returns it was measured on.
        skew: skewness of the returns.
        kurtosis: non-excess kurtosis of the returns (3 for normal returns).
        sr_benchmark: the Sharpe ratio to beat, per bar.

    Returns:
        A probability in [0, 1]; exactly 0.5 when ``sr == sr_benchmark``. NaN when the moments
        are inconsistent (``1 - skew·sr + (kurtosis - 1)/4 · sr² <= 0``).

    Raises:
        ValueError: a NaN/inf argument, ``n_obs < 2`` or ``kurtosis < 1``.
    """
    sr = _finite("sr", sr)
    bench = _finite("sr_benchmark", sr_benchmark)
    skew = _finite("skew", skew)
    kurtosis = _finite("kurtosis", kurtosis)
    if isinstance(n_obs, bool) or int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be a whole number >= 2, got {n_obs!r}")
    if kurtosis < 1.0:
        raise ValueError(
            f"kurtosis must be >= 1 (non-excess: 3 for normal returns), got {kurtosis}"
        )
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if variance <= 0.0:
        return math.nan
    z = (sr - bench) * math.sqrt(int(n_obs) - 1) / math.sqrt(variance)
    return _NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, var_sr: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials (the DSR's ``SR0``).

    ``sqrt(var_sr) · ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` with ``γ`` the
    Euler–Mascheroni constant (Bailey & López de Prado 2014, eq. for ``SR0``). It is in the units
    of ``var_sr`` (per bar when the variance is per bar). One trial has no selection: 0.0.

    Args:
        n_trials: number of independent trials (parameter combinations) evaluated, >= 1.
        var_sr: variance of the Sharpe ratios across those trials, >= 0.

    Raises:
        ValueError: ``n_trials < 1`` or a negative / NaN / inf ``var_sr``.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a whole number >= 1, got {n_trials!r}")
    var = _finite("var_sr", var_sr)
    if var < 0.0:
        raise ValueError(f"var_sr must be >= 0, got {var}")
    n = int(n_trials)
    if n == 1:
        return 0.0
    return math.sqrt(var) * (
        (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
        + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    )


def deflated_sharpe_ratio(
    returns: npt.ArrayLike, n_trials: int, sr_variance_across_trials: float
) -> float:
    """Deflated Sharpe ratio of ``returns``, selected as the best of ``n_trials`` trials.

    ``PSR(SR0)`` where ``SR0 = expected_max_sharpe(n_trials, sr_variance_across_trials)`` and
    the Sharpe ratio, skewness, kurtosis and ``T`` come from ``returns``
    (:func:`return_moments`).

    Args:
        returns: per-bar simple returns of the selected strategy.
        n_trials: trials evaluated to select it (>= 1; 1 gives the plain PSR against 0).
        sr_variance_across_trials: variance of the per-bar (not annualised) Sharpe ratios of
            those trials.

    Returns:
        The probability (in [0, 1]) that the strategy's true Sharpe ratio beats the best that
        luck alone would give; NaN when the returns do not vary (no trade, flat equity).

    Raises:
        ValueError: fewer than two returns, a NaN/inf return, ``n_trials < 1`` or a negative
            variance.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance_across_trials)
    m = return_moments(returns)
    if math.isnan(m.sharpe):
        return math.nan
    return probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis, sr_benchmark=sr0)
