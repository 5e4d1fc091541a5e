"""Performance metrics: golden values on a hand-made run, edge cases and invariants.

The golden values were worked out by hand with exact fractions (the returns of the curve below
are 1/5, -1/5, 1/8, 2/9, -1/10, 1/18), not read back from the implementation; each is pinned
with ``np.isclose`` as backtesting.py's ``test_compute_stats`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from morningstar.core import metrics
from morningstar.core.metrics import (
    SUMMARY_KEYS,
    TRADING_YEARS,
    Drawdown,
    TradeStats,
    annual_volatility,
    cagr,
    calmar,
    downside_risk,
    drawdown_series,
    equity_curve,
    exposure,
    longest_drawdown,
    max_drawdown,
    periods_per_year,
    rolling_max_drawdown,
    rolling_sharpe,
    rolling_sortino,
    rolling_volatility,
    sharpe,
    simple_returns,
    sortino,
    summary,
    total_return,
    trade_stats,
)
from morningstar.core.timeframe import parse_timeframe

# --- the hand-made run --------------------------------------------------------------------------

EQUITY = np.array([100.0, 120.0, 96.0, 108.0, 132.0, 118.8, 125.4])
RETURNS = np.array([1 / 5, -1 / 5, 1 / 8, 2 / 9, -1 / 10, 1 / 18])
PNL = np.array([50.0, -20.0, 30.0, 0.0, -10.0, 40.0])
POSITION = np.array([0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0])
PPY = 12.0  # monthly bars: the six returns span half a year

MEAN = 109 / 2160  # mean of RETURNS
VAR = 111053 / 3888000  # sample variance (ddof=1) of RETURNS

GOLDEN: dict[str, float] = {
    "bars": 7.0,
    "total_return": 0.254,  # 125.4 / 100 - 1
    "cagr": 0.572516,  # 1.254 ** (12 / 6) - 1
    "annual_volatility": math.sqrt(VAR * 12),  # 0.5854538178537281
    "sharpe": MEAN / math.sqrt(VAR) * math.sqrt(12),  # 1.0343353089326848
    "sortino": MEAN * 12 / math.sqrt(0.1),  # downside: sqrt((1/25 + 1/100) / 6 * 12)
    "calmar": 0.572516 / 0.2,  # 2.86258
    "max_drawdown": -0.2,  # 120 -> 96
    "max_drawdown_duration": 3.0,  # peak bar 1, recovered at bar 4 (132)
    "longest_drawdown": 3.0,  # the second spell (bar 4 -> 6, open) lasts 2 bars
    "exposure": 4 / 7,
    "trade_count": 6.0,
    "win_rate": 0.5,  # 3 wins of 6 (the breakeven trade is no win)
    "profit_factor": 4.0,  # 120 / 30
    "expectancy": 15.0,  # 90 / 6
    "avg_win": 40.0,
    "avg_loss": -15.0,
    "best_trade": 50.0,
    "worst_trade": -20.0,
}


def same(actual: float, expected: float, rtol: float = 1e-12, atol: float = 0.0) -> bool:
    """Close, both NaN, or the same infinity."""
    return bool(np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True))


def test_exported_names_are_pinned() -> None:
    assert sorted(metrics.__all__) == sorted(
        [
            "SUMMARY_KEYS", "TRADING_YEARS", "Drawdown", "TradeStats", "TradingYear",
            "annual_volatility", "cagr", "calmar", "downside_risk", "drawdown_series",
            "equity_curve", "exposure", "longest_drawdown", "max_drawdown", "periods_per_year",
            "rolling_max_drawdown", "rolling_sharpe", "rolling_sortino", "rolling_volatility",
            "sharpe", "simple_returns", "sortino", "summary", "total_return", "trade_stats",
        ]
    )  # fmt: skip
    for name in metrics.__all__:
        assert hasattr(metrics, name)


# --- golden values ------------------------------------------------------------------------------


def test_summary_golden() -> None:
    stats = summary(EQUITY, PNL, POSITION, PPY)
    assert tuple(stats) == SUMMARY_KEYS
    assert set(GOLDEN) == set(SUMMARY_KEYS)
    for key, expected in GOLDEN.items():
        assert np.isclose(stats[key], expected, rtol=1e-12, atol=0.0), (key, stats[key])
        assert isinstance(stats[key], float), key


def test_each_return_metric_golden() -> None:
    assert np.allclose(simple_returns(EQUITY), RETURNS, rtol=1e-14)
    assert np.isclose(total_return(RETURNS), GOLDEN["total_return"])
    assert np.isclose(cagr(RETURNS, PPY), GOLDEN["cagr"])
    assert np.isclose(annual_volatility(RETURNS, PPY), GOLDEN["annual_volatility"])
    assert np.isclose(sharpe(RETURNS, PPY), GOLDEN["sharpe"])
    assert np.isclose(downside_risk(RETURNS, PPY), math.sqrt(0.1))
    assert np.isclose(sortino(RETURNS, PPY), GOLDEN["sortino"])
    assert np.isclose(calmar(RETURNS, PPY), GOLDEN["calmar"])
    # a per-bar risk-free return of 1 % shifts every return: mean 109/2160 - 1/100, same std
    assert np.isclose(sharpe(RETURNS, PPY, risk_free=0.01), 0.8293661100983178)
    # a required return of 5 % per bar: excess mean 109/2160 - 1/20; downside over all 6 bars
    below = np.minimum(RETURNS - 0.05, 0.0)
    expected = (MEAN - 0.05) * 12 / (math.sqrt(np.mean(below**2)) * math.sqrt(12))
    assert np.isclose(sortino(RETURNS, PPY, required_return=0.05), expected)


def test_equity_curve_and_drawdown_series_golden() -> None:
    curve = equity_curve(RETURNS)
    assert np.allclose(curve, EQUITY / 100.0, rtol=1e-14)
    assert np.allclose(equity_curve(RETURNS, start=100.0), EQUITY, rtol=1e-14)
    expected = [0.0, 0.0, -0.2, -0.1, 0.0, -0.1, -0.05]
    assert np.allclose(drawdown_series(RETURNS), expected, rtol=1e-12, atol=1e-15)


def test_max_drawdown_golden() -> None:
    dd = max_drawdown(RETURNS)
    assert dd == Drawdown(depth=dd.depth, start=1, trough=2, recovery=4, duration=3)
    assert np.isclose(dd.depth, -0.2)
    assert dd.recovered
    assert longest_drawdown(RETURNS) == 3


@pytest.mark.parametrize(
    ("equity", "expected", "longest"),
    [
        # unrecovered: 120 -> 90 and still below at the last bar (bar 6); an older spell is longer
        ([100, 110, 105, 100, 120, 90, 95], (-0.25, 4, 5, None, 2), 3),
        # two equally deep troughs: the earliest wins
        ([1.0, 1.5, 0.75, 1.5, 0.75], (-0.5, 1, 2, 3, 2), 2),
        # a plateau at the peak: the fall starts at the last bar of the plateau
        ([1.0, 1.5, 1.5, 0.75, 1.5], (-0.5, 2, 3, 4, 2), 2),
        # never below a previous peak
        ([1.0, 1.1, 1.1, 1.3], (0.0, 0, 0, 0, 0), 0),
        # ruin: equity reaches 0 and stays there
        ([1.0, 1.5, 0.0], (-1.0, 1, 2, None, 1), 1),
    ],
    ids=["unrecovered", "tie", "plateau", "none", "ruin"],
)
def test_max_drawdown_cases(
    equity: list[float], expected: tuple[float, int, int, int | None, int], longest: int
) -> None:
    eq = np.asarray(equity, dtype=np.float64)
    returns = eq[1:] / eq[:-1] - 1.0
    dd = max_drawdown(returns)
    depth, start, trough, recovery, duration = expected
    assert np.isclose(dd.depth, depth, rtol=1e-12, atol=0.0)
    assert (dd.start, dd.trough, dd.recovery, dd.duration) == (start, trough, recovery, duration)
    assert longest_drawdown(returns) == longest


def test_ruin_compounds_to_minus_one() -> None:
    returns = np.array([0.5, -1.0, 0.0])
    assert total_return(returns) == -1.0
    assert cagr(returns, 252.0) == -1.0
    assert np.isclose(calmar(returns, 252.0), -1.0)  # CAGR -1 / |depth -1|


def test_trade_stats_golden() -> None:
    stats = trade_stats(PNL)
    assert stats.count == 6
    expected = TradeStats(6, 0.5, 4.0, 15.0, 40.0, -15.0, 50.0, -20.0)
    for field in ("win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "best"):
        assert np.isclose(getattr(stats, field), getattr(expected, field)), field
    assert np.isclose(stats.worst, expected.worst)


@pytest.mark.parametrize(
    ("pnl", "expected"),
    [
        ([], TradeStats(0, *[math.nan] * 7)),
        ([-1.0, -2.0, -3.0], TradeStats(3, 0.0, 0.0, -2.0, math.nan, -2.0, -1.0, -3.0)),
        ([2.0, 4.0], TradeStats(2, 1.0, math.inf, 3.0, 3.0, math.nan, 4.0, 2.0)),
        ([0.0, 0.0], TradeStats(2, 0.0, math.nan, 0.0, math.nan, math.nan, 0.0, 0.0)),
        ([5.0, -5.0], TradeStats(2, 0.5, 1.0, 0.0, 5.0, -5.0, 5.0, -5.0)),
    ],
    ids=["no-trades", "all-losing", "all-winning", "all-breakeven", "even"],
)
def test_trade_stats_edge_cases(pnl: list[float], expected: TradeStats) -> None:
    stats = trade_stats(pnl)
    assert stats.count == expected.count
    for field in ("win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "best"):
        assert same(getattr(stats, field), getattr(expected, field)), field
    assert same(stats.worst, expected.worst)


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (POSITION, 4 / 7),
        ([0.0, 0.0, 0.0], 0.0),
        ([1.0, -0.5, 2.0], 1.0),
        ([], math.nan),
    ],
    ids=["golden", "flat", "always-in", "empty"],
)
def test_exposure(position: Any, expected: float) -> None:
    assert same(exposure(position), expected)


# --- rolling ------------------------------------------------------------------------------------

# windows of 3 returns over RETURNS, worked out with fractions; the first two windows are open
ROLLING_GOLDEN = {
    "volatility": [0.7365459931328118, 0.7659618338169321, 0.5725457553552455, 0.558215852759132],
    "sharpe": [0.6788442333021305, 0.7688227570743893, 1.7271787968724284, 1.2738998858528525],
    "sortino": [1.25, 1.472222222222222, 4.944444444444444, 3.5555555555555554],
    "max_drawdown": [-0.2, -0.2, -0.1, -0.1],
}


def test_rolling_golden() -> None:
    results = {
        "volatility": rolling_volatility(RETURNS, 3, PPY),
        "sharpe": rolling_sharpe(RETURNS, 3, PPY),
        "sortino": rolling_sortino(RETURNS, 3, PPY),
        "max_drawdown": rolling_max_drawdown(RETURNS, 3),
    }
    for name, values in results.items():
        assert values.shape == RETURNS.shape, name
        assert np.isnan(values[:2]).all(), name
        assert np.allclose(values[2:], ROLLING_GOLDEN[name], rtol=1e-12, atol=0.0), name


def test_rolling_window_longer_than_series_is_all_nan() -> None:
    for values in (
        rolling_sharpe(RETURNS, 10, PPY),
        rolling_volatility(RETURNS, 10, PPY),
        rolling_sortino(RETURNS, 10, PPY),
        rolling_max_drawdown(RETURNS, 10),
    ):
        assert values.shape == (6,)
        assert np.isnan(values).all()
    assert rolling_sharpe([], 3, PPY).shape == (0,)
    assert rolling_max_drawdown([], 1).shape == (0,)


def test_rolling_zero_volatility_follows_the_scalar_convention() -> None:
    returns = np.array([0.1, 0.1, 0.1, -0.1, -0.1, -0.1, 0.0, 0.0, 0.0])
    roll = rolling_sharpe(returns, 3, PPY)
    assert roll[2] == math.inf
    assert roll[5] == -math.inf
    assert math.isnan(roll[8])
    assert rolling_volatility(returns, 3, PPY)[2] == 0.0
    assert rolling_sortino(returns, 3, PPY)[2] == math.inf


# --- annualisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1h", "crypto", 8760.0),
        ("4h", "crypto", 2190.0),
        ("5m", "crypto", 105120.0),
        ("1d", "crypto", 365.0),
        ("1w", "crypto", 365 / 7),
        ("1h", "forex", 6240.0),
        ("1d", "forex", 260.0),
        ("1h", "cme", 5796.0),
        ("1d", "cme", 252.0),
        ("1h", "equity", 1638.0),
        ("5m", "equity", 19656.0),
        ("1d", "equity", 252.0),
        ("2d", "equity", 126.0),
        ("1w", "equity", 365 / 7),
    ],
)
def test_periods_per_year(timeframe: str, calendar: str, expected: float) -> None:
    tf = parse_timeframe(timeframe)
    assert np.isclose(periods_per_year(tf, calendar), expected, rtol=1e-15)
    assert np.isclose(periods_per_year(tf.seconds, calendar.upper()), expected, rtol=1e-15)


def test_periods_per_year_defaults_and_errors() -> None:
    assert periods_per_year(3600) == 8760.0  # crypto by default
    assert set(TRADING_YEARS) == {"crypto", "forex", "cme", "equity"}
    with pytest.raises(ValueError, match="unknown calendar 'nyse'"):
        periods_per_year(3600, "nyse")
    with pytest.raises(ValueError, match="positive"):
        periods_per_year(0, "crypto")
    with pytest.raises(ValueError, match="Timeframe or seconds"):
        periods_per_year(True, "crypto")


# --- edge cases ---------------------------------------------------------------------------------


def test_empty_returns() -> None:
    empty = np.array([], dtype=np.float64)
    assert total_return(empty) == 0.0
    assert math.isnan(cagr(empty, PPY))
    assert math.isnan(annual_volatility(empty, PPY))
    assert math.isnan(sharpe(empty, PPY))
    assert math.isnan(sortino(empty, PPY))
    assert math.isnan(downside_risk(empty, PPY))
    assert math.isnan(calmar(empty, PPY))
    assert max_drawdown(empty) == Drawdown(0.0, 0, 0, 0, 0)
    assert longest_drawdown(empty) == 0
    assert drawdown_series(empty).tolist() == [0.0]
    assert equity_curve(empty).tolist() == [1.0]
    assert simple_returns(empty).shape == (0,)
    assert simple_returns([100.0]).shape == (0,)


def test_single_bar() -> None:
    one = np.array([0.02])
    assert np.isclose(total_return(one), 0.02)
    assert np.isclose(cagr(one, 12.0), 1.02**12 - 1)
    for value in (annual_volatility(one, 12), sharpe(one, 12), sortino(one, 12)):
        assert math.isnan(value)
    stats = summary([100.0], [], [0.0], 252.0)
    assert stats["bars"] == 1.0
    assert stats["total_return"] == 0.0
    assert stats["max_drawdown"] == 0.0
    assert stats["trade_count"] == 0.0
    assert stats["exposure"] == 0.0
    nan_keys = {"cagr", "annual_volatility", "sharpe", "sortino", "calmar", "win_rate"}
    assert all(math.isnan(stats[key]) for key in nan_keys)


def test_zero_volatility_follows_empyrical() -> None:
    # np.std([0.1] * 3, ddof=1) is about 1.7e-17, not 0: the constant case is detected exactly
    flat_up = np.array([0.1, 0.1, 0.1])
    assert annual_volatility(flat_up, PPY) == 0.0
    assert sharpe(flat_up, PPY) == math.inf
    assert sharpe(-flat_up, PPY) == -math.inf
    assert math.isnan(sharpe(np.zeros(4), PPY))
    assert math.isnan(sharpe(flat_up, PPY, risk_free=0.1))  # no excess return at all
    assert sortino(flat_up, PPY) == math.inf
    assert math.isnan(sortino(np.zeros(4), PPY))
    # constant losses do have downside: mean * ppy / (|mean| * sqrt(ppy)) = -sqrt(ppy)
    assert np.isclose(sortino(-flat_up, PPY), -math.sqrt(PPY))
    assert math.isnan(calmar(flat_up, PPY))  # no drawdown


def test_cagr_overflow_is_inf_not_an_error() -> None:
    assert cagr(np.full(3, 0.5), 525_600.0) == math.inf
    assert math.isnan(calmar(np.array([0.5, -0.1, 0.5]), 525_600.0))


ALL_SERIES_FUNCTIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("total_return", total_return),
    ("cagr", lambda r: cagr(r, PPY)),
    ("annual_volatility", lambda r: annual_volatility(r, PPY)),
    ("sharpe", lambda r: sharpe(r, PPY)),
    ("sortino", lambda r: sortino(r, PPY)),
    ("downside_risk", lambda r: downside_risk(r, PPY)),
    ("calmar", lambda r: calmar(r, PPY)),
    ("max_drawdown", max_drawdown),
    ("longest_drawdown", longest_drawdown),
    ("drawdown_series", drawdown_series),
    ("equity_curve", equity_curve),
    ("simple_returns", lambda r: simple_returns(np.abs(r) + 1.0)),
    ("rolling_sharpe", lambda r: rolling_sharpe(r, 2, PPY)),
    ("rolling_volatility", lambda r: rolling_volatility(r, 2, PPY)),
    ("rolling_sortino", lambda r: rolling_sortino(r, 2, PPY)),
    ("rolling_max_drawdown", lambda r: rolling_max_drawdown(r, 2)),
    ("trade_stats", trade_stats),
    ("exposure", exposure),
    ("summary/equity", lambda r: summary(np.abs(r) + 1.0, [], np.zeros(len(r)), PPY)),
    ("summary/pnl", lambda r: summary([1.0, 1.0, 1.0], r, [0.0, 0.0, 0.0], PPY)),
    ("summary/position", lambda r: summary([1.0, 1.0, 1.0], [], r, PPY)),
]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("name", "func"), ALL_SERIES_FUNCTIONS, ids=[n for n, _ in ALL_SERIES_FUNCTIONS]
)
def test_nan_and_inf_are_rejected(name: str, func: Callable[[Any], object], bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[1\] is .*(nan|inf)"):
        func(np.array([0.01, bad, 0.02]))


@pytest.mark.parametrize(
    "func",
    [total_return, equity_curve, max_drawdown, lambda r: cagr(r, PPY), lambda r: calmar(r, PPY)],
)
def test_return_below_minus_one_is_rejected(func: Callable[[Any], object]) -> None:
    with pytest.raises(ValueError, match="below -1"):
        func(np.array([0.1, -1.5]))


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive equity"):
        simple_returns([100.0, 0.0, 50.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        sharpe(np.ones((2, 3)), PPY)
    for ppy in (0.0, -12.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="periods_per_year"):
            sharpe(RETURNS, ppy)
    with pytest.raises(ValueError, match="risk_free"):
        sharpe(RETURNS, PPY, risk_free=math.nan)
    with pytest.raises(ValueError, match="at least 2 bars"):
        rolling_sharpe(RETURNS, 1, PPY)
    with pytest.raises(ValueError, match="at least 1 bars"):
        rolling_max_drawdown(RETURNS, 0)
    with pytest.raises(ValueError, match="integer"):
        rolling_volatility(RETURNS, 2.5, PPY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position has 3 bars but equity has 7"):
        summary(EQUITY, PNL, [0.0, 1.0, 0.0], PPY)


# --- invariants (hypothesis) --------------------------------------------------------------------

# returns on a 0.1 % grid in [-95 %, +100 %]: realistic, and never near-constant by accident
grid_returns = st.lists(st.integers(-950, 1000), max_size=60).map(
    lambda ks: np.asarray(ks, dtype=np.float64) / 1000.0
)
any_returns = st.lists(
    st.floats(-1.0, 5.0, allow_nan=False, allow_infinity=False), max_size=60
).map(lambda xs: np.asarray(xs, dtype=np.float64))
# trade P&L in cents up to +-1e6: realistic amounts (a loss of 1e-307 would overflow the
# profit factor to inf, which is float arithmetic, not a trade statistic)
pnls = st.lists(st.integers(-(10**8), 10**8).map(lambda cents: cents / 100.0), max_size=40)

RATIO_KEYS = [
    key
    for key in SUMMARY_KEYS
    if key not in {"expectancy", "avg_win", "avg_loss", "best_trade", "worst_trade"}
]


@settings(max_examples=100, deadline=None)
@given(any_returns)
def test_drawdown_is_bounded_and_ordered(returns: np.ndarray) -> None:
    dd = max_drawdown(returns)
    assert -1.0 <= dd.depth <= 0.0
    assert 0 <= dd.start <= dd.trough <= len(returns)
    if dd.recovery is not None:
        assert dd.trough <= dd.recovery <= len(returns)
        assert dd.duration == dd.recovery - dd.start
    else:
        assert dd.duration == len(returns) - dd.start
    assert 0 <= dd.duration <= longest_drawdown(returns) <= len(returns)
    series = drawdown_series(returns)
    assert series.shape == (len(returns) + 1,)
    assert ((series <= 0.0) & (series >= -1.0)).all()
    assert series.min() == dd.depth
    if len(returns):
        window = rolling_max_drawdown(returns, min(5, len(returns)))
        # a window never sees a deeper fall than the whole curve
        assert np.nanmin(window) >= dd.depth - 1e-12


@settings(max_examples=60, deadline=None)
@given(
    grid_returns, st.integers(-20, 20), pnls, st.lists(st.integers(-2, 2), min_size=61, max_size=61)
)
def test_scaling_by_a_power_of_two_changes_no_ratio(
    returns: np.ndarray, exponent: int, pnl: list[float], position: list[int]
) -> None:
    equity = equity_curve(returns, start=100.0)
    pos = np.asarray(position[: len(equity)], dtype=np.float64)
    scale = 2.0**exponent  # exact in binary floating point: every ratio must be identical
    base = summary(equity, pnl, pos, PPY)
    scaled = summary(equity * scale, np.asarray(pnl) * scale, pos, PPY)
    for key in RATIO_KEYS:
        assert same(scaled[key], base[key], rtol=0.0), key


@settings(max_examples=60, deadline=None)
@given(grid_returns, st.floats(1e-3, 1e6), pnls)
def test_scaling_by_any_constant_changes_no_ratio(
    returns: np.ndarray, scale: float, pnl: list[float]
) -> None:
    assume(len(returns) >= 2 and np.ptp(returns) > 0)
    equity = equity_curve(returns, start=100.0)
    pos = np.ones(len(equity))
    base = summary(equity, pnl, pos, PPY)
    scaled = summary(equity * scale, np.asarray(pnl) * scale, pos, PPY)
    # durations are left out: a generic constant may round an exact return to the peak level
    # (e.g. 1.25 x 0.8) a hair above or below it and move a recovery bar; powers of two cannot
    for key in RATIO_KEYS:
        if key in {"max_drawdown_duration", "longest_drawdown"}:
            continue
        assert same(scaled[key], base[key], rtol=1e-9, atol=1e-12), (key, base[key], scaled[key])
    for key in ("expectancy", "avg_win", "avg_loss", "best_trade", "worst_trade"):
        assert same(scaled[key], base[key] * scale, rtol=1e-9), key


@settings(max_examples=60, deadline=None)
@given(grid_returns, st.integers(0, 100), st.randoms(use_true_random=False))
def test_shifting_the_start_does_not_change_sharpe(
    returns: np.ndarray, shift: int, rng: Any
) -> None:
    assume(len(returns) >= 2 and np.ptp(returns) > 0)
    expected = sharpe(returns, PPY)
    shuffled = returns.copy()
    rng.shuffle(shuffled)
    for other in (np.roll(returns, shift), shuffled):
        # atol: a mean that cancels to ~1e-17 depends on the summation order
        assert same(sharpe(other, PPY), expected, rtol=1e-9, atol=1e-9)
        assert same(sortino(other, PPY), sortino(returns, PPY), rtol=1e-9, atol=1e-9)
        assert same(annual_volatility(other, PPY), annual_volatility(returns, PPY), rtol=1e-9)


@settings(max_examples=100, deadline=None)
@given(pnls)
def test_trade_stats_invariants(pnl: list[float]) -> None:
    stats = trade_stats(pnl)
    assert stats.count == len(pnl)
    if not pnl:
        return
    assert 0.0 <= stats.win_rate <= 1.0
    assert math.isnan(stats.profit_factor) or stats.profit_factor >= 0.0
    assert stats.worst <= stats.expectancy + 1e-6 and stats.expectancy <= stats.best + 1e-6
    assert math.isnan(stats.avg_win) or stats.avg_win > 0.0
    assert math.isnan(stats.avg_loss) or stats.avg_loss < 0.0
    has_loss = any(p < 0 for p in pnl)
    has_win = any(p > 0 for p in pnl)
    assert (stats.profit_factor == math.inf) == (has_win and not has_loss)


@settings(max_examples=40, deadline=None)
@given(grid_returns, st.integers(2, 10))
def test_rolling_matches_the_scalar_on_each_window(returns: np.ndarray, window: int) -> None:
    assume(len(returns) >= window)
    roll = {
        "sharpe": (rolling_sharpe(returns, window, PPY), lambda w: sharpe(w, PPY)),
        "volatility": (
            rolling_volatility(returns, window, PPY),
            lambda w: annual_volatility(w, PPY),
        ),
        "sortino": (rolling_sortino(returns, window, PPY), lambda w: sortino(w, PPY)),
        "max_drawdown": (rolling_max_drawdown(returns, window), lambda w: max_drawdown(w).depth),
    }
    for name, (values, scalar) in roll.items():
        for end in (window - 1, len(returns) - 1):
            expected = scalar(returns[end - window + 1 : end + 1])
            # atol: a window mean that cancels to ~1e-17 differs with the summation order
            assert same(values[end], expected, rtol=1e-9, atol=1e-9), (name, end)


@settings(max_examples=60, deadline=None)
@given(grid_returns)
def test_equity_and_returns_round_trip(returns: np.ndarray) -> None:
    equity = equity_curve(returns, start=250.0)
    assert np.allclose(simple_returns(equity), returns, rtol=1e-9, atol=1e-12)
    assert np.isclose(total_return(returns), equity[-1] / 250.0 - 1.0, rtol=1e-12, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    grid_returns,
    pnls,
    st.lists(st.integers(-2, 2), min_size=61, max_size=61),
    st.sampled_from([0.0, 1e-4, -2e-3]),
)
def test_summary_pass_equals_the_individual_functions(
    returns: np.ndarray, pnl: list[float], position: list[int], rf: float
) -> None:
    """summary() runs one compiled pass; each value must equal its stand-alone function."""
    equity = equity_curve(returns, start=100.0)
    pos = np.asarray(position[: len(equity)], dtype=np.float64)
    stats = summary(equity, pnl, pos, PPY, risk_free=rf)
    r = simple_returns(equity)
    dd = max_drawdown(r)
    trades = trade_stats(pnl)
    expected = {
        "bars": float(len(equity)),
        "total_return": total_return(r),
        "cagr": cagr(r, PPY),
        "annual_volatility": annual_volatility(r, PPY),
        "sharpe": sharpe(r, PPY, risk_free=rf),
        "sortino": sortino(r, PPY),
        "calmar": calmar(r, PPY),
        "max_drawdown": dd.depth,
        "max_drawdown_duration": float(dd.duration),
        "longest_drawdown": float(longest_drawdown(r)),
        "exposure": exposure(pos),
        "trade_count": float(trades.count),
        "win_rate": trades.win_rate,
        "profit_factor": trades.profit_factor,
        "expectancy": trades.expectancy,
        "avg_win": trades.avg_win,
        "avg_loss": trades.avg_loss,
        "best_trade": trades.best,
        "worst_trade": trades.worst,
    }
    assert tuple(stats) == SUMMARY_KEYS == tuple(expected)
    for key, value in expected.items():
        assert same(stats[key], value, rtol=1e-10, atol=1e-15), (key, stats[key], value)
