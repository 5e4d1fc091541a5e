"""Oracle: our metrics against empyrical-reloaded on the same returns.

Close-to-close returns of three real series (24/7 crypto, daily US equity, 24x5 forex) and
random data go through both libraries; where the definitions match they agree to 1e-9 relative
(measured: at most about 1e-12; the rolling kernels reproduce empyrical's bottleneck sums to
the last bit). Deliberate convention differences are pinned at the end, each with its reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from empyrical.stats import drawdown_series as empyrical_drawdown_series
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.metrics import (
    annual_volatility,
    cagr,
    calmar,
    downside_risk,
    drawdown_series,
    max_drawdown,
    periods_per_year,
    rolling_max_drawdown,
    rolling_sharpe,
    rolling_sortino,
    rolling_volatility,
    sharpe,
    sortino,
    total_return,
)
from morningstar.core.timeframe import parse_timeframe

RTOL = 1e-9
# A rolling Sharpe or Sortino whose window mean cancels to ~1e-17 has no relative precision in
# either library; below this absolute size two values count as equal.
ATOL_NEAR_ZERO = 1e-12

SERIES = {
    # name: (file under shared/data, timeframe, calendar, rolling windows)
    "btc-1h": ("genetrader/BINANCE_BTC_USDT-1h.csv", "1h", "crypto", (24, 168)),
    "spy-1d": ("lean/US_SPY-1D.csv", "1d", "equity", (21, 252)),
    "eurusd-1h": ("lean/OANDA_EURUSD-1h.csv", "1h", "forex", (24, 48)),
}


def close_to_close(path: Path) -> np.ndarray:
    close = pd.read_csv(path, usecols=["close"])["close"].to_numpy(dtype=np.float64)
    return close[1:] / close[:-1] - 1.0


def random_returns() -> np.ndarray:
    rng = np.random.default_rng(20240601)
    return rng.normal(0.0004, 0.012, size=3000)


def assert_agrees(ours: float | np.ndarray, theirs: float | np.ndarray, what: str) -> None:
    ours_arr = np.asarray(ours, dtype=np.float64)
    theirs_arr = np.asarray(theirs, dtype=np.float64)
    assert ours_arr.shape == theirs_arr.shape, what
    close = np.isclose(ours_arr, theirs_arr, rtol=RTOL, atol=ATOL_NEAR_ZERO, equal_nan=True)
    if not close.all():
        at = int(np.flatnonzero(~close.ravel())[0])
        raise AssertionError(
            f"{what}: ours {ours_arr.ravel()[at]!r} != empyrical {theirs_arr.ravel()[at]!r} at {at}"
        )


def check_against_empyrical(r: np.ndarray, ppy: float, windows: tuple[int, ...]) -> None:
    """Compare every metric that empyrical also defines."""
    ann = {"annualization": ppy}
    assert_agrees(total_return(r), empyrical.cum_returns_final(r), "total return")
    assert_agrees(cagr(r, ppy), empyrical.annual_return(r, **ann), "CAGR")
    assert_agrees(annual_volatility(r, ppy), empyrical.annual_volatility(r, **ann), "volatility")
    assert_agrees(sharpe(r, ppy), empyrical.sharpe_ratio(r, **ann), "Sharpe")
    rf = 0.02 / ppy  # a per-bar risk-free return, empyrical's convention
    assert_agrees(
        sharpe(r, ppy, risk_free=rf), empyrical.sharpe_ratio(r, risk_free=rf, **ann), "Sharpe rf"
    )
    assert_agrees(sortino(r, ppy), empyrical.sortino_ratio(r, **ann), "Sortino")
    req = 1e-4
    assert_agrees(
        sortino(r, ppy, required_return=req),
        empyrical.sortino_ratio(r, required_return=req, **ann),
        "Sortino req",
    )
    assert_agrees(downside_risk(r, ppy), empyrical.downside_risk(r, **ann), "downside risk")
    assert_agrees(calmar(r, ppy), empyrical.calmar_ratio(r, **ann), "Calmar")
    assert_agrees(max_drawdown(r).depth, empyrical.max_drawdown(r), "max drawdown")
    # ours includes the anchor bar (always 0) in front of empyrical's series
    assert_agrees(drawdown_series(r)[1:], empyrical_drawdown_series(r), "drawdown series")
    for w in windows:
        # empyrical returns only the n - w + 1 full windows; ours are NaN before them
        assert_agrees(
            rolling_sharpe(r, w, ppy)[w - 1 :],
            empyrical.roll_sharpe_ratio(r, w, **ann),
            f"rolling Sharpe {w}",
        )
        assert_agrees(
            rolling_volatility(r, w, ppy)[w - 1 :],
            empyrical.roll_annual_volatility(r, w, **ann),
            f"rolling volatility {w}",
        )
        assert_agrees(
            rolling_sortino(r, w, ppy)[w - 1 :],
            empyrical.roll_sortino_ratio(r, w, **ann),
            f"rolling Sortino {w}",
        )
        assert_agrees(
            rolling_max_drawdown(r, w)[w - 1 :],
            empyrical.roll_max_drawdown(r, w),
            f"rolling max drawdown {w}",
        )


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(SERIES))
def test_real_series_agree_with_empyrical(shared_data: Path, name: str) -> None:
    file, timeframe, calendar, windows = SERIES[name]
    r = close_to_close(shared_data / file)
    assert r.size > 5000, f"{file} is unexpectedly short"
    ppy = periods_per_year(parse_timeframe(timeframe), calendar)
    check_against_empyrical(r, ppy, windows)


def test_random_series_agree_with_empyrical() -> None:
    check_against_empyrical(random_returns(), 252.0, (2, 20, 252))


# returns on a 0.1 % grid (constant series included: the zero-volatility conventions must match)
grid_returns = st.lists(st.integers(-950, 1000), min_size=2, max_size=40).map(
    lambda ks: np.asarray(ks, dtype=np.float64) / 1000.0
)


# empyrical's annual_return computes ``ending ** (ppy / n)`` in numpy and warns when a short,
# rising series annualised at 8760 overflows; ours returns the same inf without a warning.
@pytest.mark.filterwarnings("ignore:overflow encountered in scalar power:RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(grid_returns, st.sampled_from([12.0, 252.0, 8760.0]))
def test_small_random_series_agree_with_empyrical(r: np.ndarray, ppy: float) -> None:
    windows = tuple(w for w in (2, 5) if w <= r.size)
    check_against_empyrical(r, ppy, windows)


@pytest.mark.parametrize(
    "r",
    [np.full(5, 0.01), np.full(5, -0.01), np.zeros(5), np.array([0.01, 0.02, 0.03])],
    ids=["flat-up", "flat-down", "zero", "no-downside"],
)
def test_degenerate_series_agree_with_empyrical(r: np.ndarray) -> None:
    check_against_empyrical(r, 252.0, (2,))


# --- deliberate differences ---------------------------------------------------------------------


def test_empty_series_is_zero_not_nan() -> None:
    """An empty return series (one equity bar) lost and gained nothing: total return 0 and no
    drawdown, where empyrical answers NaN. The other metrics agree (NaN)."""
    empty = np.array([], dtype=np.float64)
    assert math.isnan(empyrical.cum_returns_final(empty))
    assert total_return(empty) == 0.0
    assert math.isnan(empyrical.max_drawdown(empty))
    assert max_drawdown(empty).depth == 0.0
    assert math.isnan(cagr(empty, 252.0)) and math.isnan(empyrical.annual_return(empty))
    assert math.isnan(sharpe(empty, 252.0)) and math.isnan(empyrical.sharpe_ratio(empty))


def test_window_longer_than_series_is_nan_not_shrunk() -> None:
    """empyrical shrinks the window to the series length; ours stays NaN until a full window
    exists, so a rolling value always covers exactly ``window`` bars."""
    r = np.array([0.01, -0.02, 0.015])
    assert empyrical.roll_sharpe_ratio(r, 10, annualization=252).shape == (1,)
    assert np.isnan(rolling_sharpe(r, 10, 252.0)).all()


def test_nan_is_rejected_not_skipped() -> None:
    """empyrical's nan-aware reductions skip NaN; ours raise, since a NaN return is a bug
    upstream (a gap in the equity curve) that a skipped value would hide."""
    r = np.array([0.01, math.nan, 0.02, -0.01])
    assert np.isfinite(empyrical.sharpe_ratio(r))
    with pytest.raises(ValueError, match="NaN"):
        sharpe(r, 252.0)
