"""Indicators of the research core: hand-computed cases, warm-up, validation, NaN policy and
properties (hypothesis), including "no look-ahead" for every indicator.

TA-Lib agreement on real and random data is in ``tests/integration/test_indicators_talib.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core import indicators as ind

Arr = npt.NDArray[np.float64]
NAN = math.nan
PROPERTY = settings(max_examples=40, deadline=None)


def close_to(actual: npt.ArrayLike, expected: list[float], tol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=tol, atol=tol)


# --- hand-computed cases ---------------------------------------------------------------------

H = [10.0, 12.0, 13.0, 12.0, 11.0]
L = [8.0, 9.0, 10.0, 8.0, 7.0]
C = [9.0, 11.0, 12.0, 9.0, 8.0]


def test_sma_by_hand() -> None:
    close_to(ind.sma([1.0, 2.0, 3.0, 4.0, 5.0], 3), [NAN, NAN, 2.0, 3.0, 4.0])
    close_to(ind.sma([4.0, 8.0], 1), [4.0, 8.0])


def test_ema_by_hand_is_seeded_with_the_sma() -> None:
    # alpha = 2/3; seed at index 1 = mean(2, 4) = 3; then 3 + (6-3)*2/3 = 5; 5 + (8-5)*2/3 = 7
    close_to(ind.ema([2.0, 4.0, 6.0, 8.0, 3.0], 2), [NAN, 3.0, 5.0, 7.0, 13 / 3])
    close_to(ind.ema([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3), [NAN, NAN, 2.0, 3.0, 4.0, 5.0])


def test_rsi_by_hand_with_wilder_smoothing() -> None:
    # changes +1 +1 -1 -1 +1; first averages (n=2): gain 1, loss 0 -> 100;
    # then gain 0.5 / loss 0.5 -> 50; 0.25 / 0.75 -> 25; 0.625 / 0.375 -> 62.5
    close_to(ind.rsi([1.0, 2.0, 3.0, 2.0, 1.0, 2.0], 2), [NAN, NAN, 100.0, 50.0, 25.0, 62.5])


def test_rsi_of_a_flat_window_is_neutral_and_scale_free() -> None:
    close_to(ind.rsi([5.0] * 6, 3), [NAN, NAN, NAN, 50.0, 50.0, 50.0])
    x = np.array([1.0, 1.5, 1.2, 1.7, 1.1, 1.3, 1.9])
    close_to(ind.rsi(x * 1e-9, 3), list(ind.rsi(x, 3)), tol=1e-12)


def test_true_range_and_atr_by_hand() -> None:
    # TR: bar1 max(3, |12-9|, |9-9|) = 3; bar2 max(3, |13-11|, |10-11|) = 3;
    #     bar3 max(4, |12-12|, |8-12|) = 4; bar4 max(4, |11-9|, |7-9|) = 4
    close_to(ind.true_range(H, L, C), [NAN, 3.0, 3.0, 4.0, 4.0])
    # ATR(2): (3+3)/2 = 3 at bar 2; (3*1 + 4)/2 = 3.5; (3.5 + 4)/2 = 3.75
    close_to(ind.atr(H, L, C, 2), [NAN, NAN, 3.0, 3.5, 3.75])
    # ATR(1) is the true range
    close_to(ind.atr(H, L, C, 1), [NAN, 3.0, 3.0, 4.0, 4.0])


def test_directional_indicators_and_adx_by_hand() -> None:
    # n=2. +DM: bar1 2, bar2 1; -DM: bar3 2, bar4 1. Wilder sums S = S - S/2 + v, seeded with
    # the first n-1 = 1 value: +DM 2 -> 2 -> 1 -> 0.5; -DM 0 -> 0 -> 2 -> 2; TR 3 -> 4.5 -> 6.25
    # -> 7.125. DI = 100 * DM / TR; DX = 100 * |+DI - -DI| / (+DI + -DI): 100, 100/3, 60.
    # ADX at 2n-1 = 3: mean(100, 100/3) = 200/3; then (200/3 + 60) / 2 = 190/3.
    close_to(ind.plus_di(H, L, C, 2), [NAN, NAN, 400 / 9, 16.0, 400 / 57])
    close_to(ind.minus_di(H, L, C, 2), [NAN, NAN, 0.0, 32.0, 1600 / 57])
    close_to(ind.adx(H, L, C, 2), [NAN, NAN, NAN, 200 / 3, 190 / 3])


def test_bollinger_by_hand_uses_the_population_deviation() -> None:
    bands = ind.bollinger([1.0, 2.0, 3.0, 4.0], n=3, k=2.0)
    std = math.sqrt(2 / 3)
    close_to(bands.middle, [NAN, NAN, 2.0, 3.0])
    close_to(bands.upper, [NAN, NAN, 2.0 + 2 * std, 3.0 + 2 * std])
    close_to(bands.lower, [NAN, NAN, 2.0 - 2 * std, 3.0 - 2 * std])
    middle, upper, lower = ind.bollinger([1.0, 2.0, 3.0, 4.0], n=3, k=0.0)
    np.testing.assert_array_equal(upper, middle)
    np.testing.assert_array_equal(lower, middle)


def test_macd_by_hand_with_talib_alignment() -> None:
    # fast=2 (alpha 2/3), slow=3 (alpha 1/2), signal=2 (alpha 2/3). Both EMAs start at index 2:
    # slow seed mean(1,2,3) = 2, fast seed mean(2,3) = 2.5 -> line 1/2, 2/3, 35/36, 331/216.
    # Signal seed mean(1/2, 2/3) = 7/12 at index slow+signal-2 = 3, then 91/108, 211/162.
    result = ind.macd([1.0, 2.0, 3.0, 5.0, 8.0, 13.0], fast=2, slow=3, signal=2)
    close_to(result.macd, [NAN, NAN, NAN, 2 / 3, 35 / 36, 331 / 216])
    close_to(result.signal, [NAN, NAN, NAN, 7 / 12, 91 / 108, 211 / 162])
    close_to(result.hist, [NAN, NAN, NAN, 1 / 12, 7 / 54, 149 / 648])


def test_donchian_by_hand() -> None:
    upper, lower, middle = ind.donchian([3.0, 5.0, 4.0, 2.0, 6.0], [1.0, 2.0, 0.0, 1.0, 3.0], 3)
    close_to(upper, [NAN, NAN, 5.0, 5.0, 6.0])
    close_to(lower, [NAN, NAN, 0.0, 0.0, 0.0])
    close_to(middle, [NAN, NAN, 2.5, 2.5, 3.0])


def test_rolling_std_volatility_and_zscore_by_hand() -> None:
    close_to(ind.rolling_std([1.0, 2.0, 3.0, 5.0], 2), [NAN, 0.5, 0.5, 1.0])
    close_to(ind.rolling_std([1.0, 2.0, 3.0, 5.0], 2, ddof=1), [NAN, *[math.sqrt(0.5)] * 2, 2**0.5])
    # log returns 0.1, 0.2, -0.1: sample std of (0.1, 0.2) and of (0.2, -0.1)
    prices = np.exp(np.cumsum([0.0, 0.1, 0.2, -0.1]))
    close_to(ind.rolling_volatility(prices, 2), [NAN, NAN, 0.05**0.5 / 10**0.5, 0.3 / 2**0.5])
    close_to(
        ind.rolling_volatility(prices, 2, annualization=4),
        [NAN, NAN, 2 * 0.05**0.5 / 10**0.5, 0.6 / 2**0.5],
    )
    # windows (1,2,3) and (2,3,10): z = 1 / sqrt(2/3) and 5 / sqrt(38/3)
    close_to(ind.zscore([1.0, 2.0, 3.0, 10.0], 3), [NAN, NAN, 1.5**0.5, 5 / (38 / 3) ** 0.5])


def test_constant_windows_are_exact() -> None:
    x = [1.0, 7.0, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert ind.sma(x, 3)[-1] == 0.1
    assert ind.rolling_std(x, 3)[-1] == 0.0
    assert ind.zscore(x, 3)[-1] == 0.0
    assert ind.bollinger(x, 3).upper[-1] == 0.1


def test_rolling_moments_stay_accurate_far_from_zero() -> None:
    # price level 1e6 with cent moves: naive sums of squares lose most digits here
    rng = np.random.default_rng(7)
    x = 1e6 + np.round(rng.normal(0, 1, 3000).cumsum(), 2)
    n = 20
    ours = ind.rolling_std(x, n)
    z = ind.zscore(x, n)
    mean_ = ind.sma(x, n)
    for t in range(n - 1, x.size, 97):
        window = [Fraction(v) for v in x[t - n + 1 : t + 1]]
        mean = sum(window) / n
        var = sum((v - mean) ** 2 for v in window) / n
        exact = math.sqrt(var)
        assert ours[t] == pytest.approx(exact, rel=1e-9)
        assert z[t] == pytest.approx(float(Fraction(x[t]) - mean) / exact, rel=1e-8, abs=1e-9)
        assert mean_[t] == pytest.approx(float(mean), rel=1e-14)


def test_named_results_unpack_as_tuples() -> None:
    x = np.linspace(1.0, 2.0, 40)
    middle, upper, lower = ind.bollinger(x)
    assert isinstance(ind.bollinger(x), ind.BollingerBands)
    assert isinstance(ind.macd(x), ind.MACD)
    assert isinstance(ind.donchian(x, x), ind.DonchianChannel)
    assert middle.dtype == upper.dtype == lower.dtype == np.float64


def test_inputs_are_not_modified_and_lists_are_accepted() -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    before = x.copy()
    ind.zscore(x, 3)
    ind.rolling_volatility(x, 2)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(ind.sma(list(x), 2), ind.sma(x, 2))
    readonly = x.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(ind.sma(readonly, 2), ind.sma(x, 2))
    assert ind.sma(np.array([], dtype=np.float64), 3).size == 0


# --- the table of indicators used by the generic tests -----------------------------------------


@dataclass(frozen=True)
class Spec:
    """One indicator with fixed parameters, as a function of (high, low, close)."""

    fn: Callable[[Arr, Arr, Arr], tuple[Arr, ...]]
    warmup: int
    uses: tuple[int, ...] = (2,)  # the inputs it reads: 0 high, 1 low, 2 close


SPECS: dict[str, Spec] = {
    "sma": Spec(lambda h, lo, c: (ind.sma(c, 5),), 4),
    "ema": Spec(lambda h, lo, c: (ind.ema(c, 5),), 4),
    "macd": Spec(lambda h, lo, c: tuple(ind.macd(c, 3, 6, 4)), 6 + 4 - 2),
    "rsi": Spec(lambda h, lo, c: (ind.rsi(c, 5),), 5),
    "true_range": Spec(lambda h, lo, c: (ind.true_range(h, lo, c),), 1, (0, 1, 2)),
    "atr": Spec(lambda h, lo, c: (ind.atr(h, lo, c, 5),), 5, (0, 1, 2)),
    "plus_di": Spec(lambda h, lo, c: (ind.plus_di(h, lo, c, 5),), 5, (0, 1, 2)),
    "minus_di": Spec(lambda h, lo, c: (ind.minus_di(h, lo, c, 5),), 5, (0, 1, 2)),
    "adx": Spec(lambda h, lo, c: (ind.adx(h, lo, c, 5),), 2 * 5 - 1, (0, 1, 2)),
    "bollinger": Spec(lambda h, lo, c: tuple(ind.bollinger(c, 5, 2.0)), 4),
    "donchian": Spec(lambda h, lo, c: tuple(ind.donchian(h, lo, 5)), 4, (0, 1)),
    "rolling_std": Spec(lambda h, lo, c: (ind.rolling_std(c, 5),), 4),
    "rolling_volatility": Spec(lambda h, lo, c: (ind.rolling_volatility(c, 5),), 5),
    "zscore": Spec(lambda h, lo, c: (ind.zscore(c, 5),), 4),
}


def test_every_public_function_is_in_the_table() -> None:
    functions = {name for name in ind.__all__ if name[0].islower()}
    assert functions == set(SPECS)


def random_bars(size: int, seed: int = 0) -> tuple[Arr, Arr, Arr]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, size)))
    high = close * (1.0 + rng.uniform(0.0, 0.01, size))
    low = close * (1.0 - rng.uniform(0.0, 0.01, size))
    return high, low, close


@pytest.mark.parametrize("name", sorted(SPECS))
def test_warmup_length(name: str) -> None:
    spec = SPECS[name]
    for output in spec.fn(*random_bars(60)):
        assert output.shape == (60,) and output.dtype == np.float64
        assert np.isnan(output[: spec.warmup]).all(), f"{name}: warm-up shorter than documented"
        assert not np.isnan(output[spec.warmup :]).any(), f"{name}: NaN after the warm-up"
    for output in spec.fn(*random_bars(spec.warmup)):
        assert np.isnan(output).all()


# --- NaN policy --------------------------------------------------------------------------------


def test_window_indicators_are_nan_where_the_window_holds_a_nan() -> None:
    x = np.array([1.0, 2.0, 3.0, NAN, 5.0, 6.0, 7.0, 8.0])
    close_to(ind.sma(x, 2), [NAN, 1.5, 2.5, NAN, NAN, 5.5, 6.5, 7.5])
    close_to(ind.donchian(x, x, 3).upper, [NAN, NAN, 3.0, NAN, NAN, NAN, 7.0, 8.0])
    y = np.array([1.0, np.inf, 3.0, 4.0])  # infinities are missing values too
    close_to(ind.sma(y, 2), [NAN, NAN, NAN, 3.5])


def test_recursive_indicators_restart_after_a_gap() -> None:
    x = np.array([NAN, 2.0, 4.0, 6.0, NAN, 8.0, 3.0, 5.0])
    # after the gap: seed mean(8, 3) = 5.5, then 5.5 + (5 - 5.5) * 2/3
    close_to(ind.ema(x, 2), [NAN, NAN, 3.0, 5.0, NAN, NAN, 5.5, 31 / 6])


def test_a_missing_high_makes_the_whole_bar_missing() -> None:
    h, lo, c = (np.array(v) for v in (H, L, C))
    h[2] = NAN
    close_to(ind.true_range(h, lo, c), [NAN, 3.0, NAN, NAN, 4.0])


@st.composite
def bars(draw: st.DrawFn, min_size: int = 0, max_size: int = 60) -> tuple[Arr, Arr, Arr]:
    """Valid (high, low, close) bars from a drawn seed (fast), in one of three styles: a random
    walk, prices on a coarse grid (ties, repeated and flat windows), or runs of a constant."""
    size = draw(st.integers(min_size, max_size))
    style = draw(st.sampled_from(["walk", "grid", "flat"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, size)))
    up = rng.uniform(0.0, 0.03, size)
    down = rng.uniform(0.0, 0.03, size)
    if style == "grid":
        close = np.round(close / 5.0) * 5.0 + 1.0
        up = np.round(up * 100.0) / 100.0
        down = np.round(down * 100.0) / 100.0
    elif style == "flat":
        close = np.repeat(close[: (size + 5) // 6], 6)[:size]
        up[rng.random(size) < 0.5] = 0.0
        down[rng.random(size) < 0.5] = 0.0
    return close * (1.0 + up), close * (1.0 - down), close


@pytest.mark.parametrize("name", sorted(SPECS))
@PROPERTY
@given(data=bars(min_size=2, max_size=40), where=st.data())
def test_a_gap_splits_the_series_into_independent_runs(
    name: str, data: tuple[Arr, Arr, Arr], where: st.DataObject
) -> None:
    h, lo, c = data
    p = where.draw(st.integers(0, c.size - 1))
    column = where.draw(st.sampled_from(SPECS[name].uses))
    with_gap = [h.copy(), lo.copy(), c.copy()]
    with_gap[column][p] = NAN
    fn = SPECS[name].fn
    for got, before, after in zip(
        fn(*with_gap),
        fn(h[:p], lo[:p], c[:p]),
        fn(h[p + 1 :], lo[p + 1 :], c[p + 1 :]),
        strict=True,
    ):
        np.testing.assert_array_equal(got, np.concatenate([before, [NAN], after]))


# --- no look-ahead -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
@PROPERTY
@given(data=bars(min_size=1, max_size=50), other=bars(min_size=50, max_size=50), cut=st.data())
def test_no_lookahead(
    name: str,
    data: tuple[Arr, Arr, Arr],
    other: tuple[Arr, Arr, Arr],
    cut: st.DataObject,
) -> None:
    """Changing any bar after t never changes an output at or before t."""
    t = cut.draw(st.integers(0, data[2].size - 1))
    changed = tuple(
        np.concatenate([a[: t + 1], b[t + 1 : a.size]]) for a, b in zip(data, other, strict=True)
    )
    if cut.draw(st.booleans()):
        changed[2][t + 1 :: 3] = NAN  # also with gaps after t
    fn = SPECS[name].fn
    for original, modified in zip(fn(*data), fn(*changed), strict=True):
        np.testing.assert_array_equal(original[: t + 1], modified[: t + 1])


# --- properties --------------------------------------------------------------------------------

series = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60).map(np.array)
periods = st.integers(1, 12)


@PROPERTY
@given(value=st.floats(-1e9, 1e9, allow_nan=False), size=st.integers(1, 40), n=periods)
def test_average_of_a_constant_is_the_constant(value: float, size: int, n: int) -> None:
    x = np.full(size, value)
    for out in (ind.sma(x, n), ind.bollinger(x, n).middle, ind.bollinger(x, n).upper):
        np.testing.assert_array_equal(out[n - 1 :], value)
    np.testing.assert_array_equal(ind.rolling_std(x, n)[n - 1 :], 0.0)
    if n >= 2:
        np.testing.assert_array_equal(ind.zscore(x, n)[n - 1 :], 0.0)
    np.testing.assert_allclose(ind.ema(x, n)[n - 1 :], value, rtol=1e-14)


@PROPERTY
@given(x=series, n=periods)
def test_sma_and_std_match_the_definition(x: Arr, n: int) -> None:
    got_mean = ind.sma(x, n)
    got_var = ind.rolling_std(x, n) ** 2
    scale = max(1.0, float(np.max(np.abs(x))))
    for t in range(n - 1, x.size):
        window = x[t - n + 1 : t + 1]
        assert abs(got_mean[t] - window.mean()) <= 1e-12 * scale
        # O(1) updates leave an error of a few n·eps·range² on the variance (TA-Lib's: x²-sized)
        assert abs(got_var[t] - window.var()) <= 1e-12 * scale**2
        assert window.min() - 1e-12 * scale <= got_mean[t] <= window.max() + 1e-12 * scale


@PROPERTY
@given(x=series, n=periods)
def test_ema_stays_within_the_range_of_its_inputs(x: Arr, n: int) -> None:
    out = ind.ema(x, n)
    tol = 1e-12 * max(1.0, float(np.max(np.abs(x))))
    for t in range(n - 1, x.size):
        assert x[: t + 1].min() - tol <= out[t] <= x[: t + 1].max() + tol


@PROPERTY
@given(data=bars(max_size=60), n=periods)
def test_oscillators_are_within_0_and_100(data: tuple[Arr, Arr, Arr], n: int) -> None:
    h, lo, c = data
    for out in (ind.rsi(c, n), ind.plus_di(h, lo, c, n), ind.minus_di(h, lo, c, n)):
        values = out[~np.isnan(out)]
        assert ((values >= 0.0) & (values <= 100.0 + 1e-9)).all()
    values = ind.adx(h, lo, c, n)
    values = values[~np.isnan(values)]
    assert ((values >= 0.0) & (values <= 100.0 + 1e-9)).all()


@PROPERTY
@given(data=bars(max_size=60), n=periods, k=st.floats(0.0, 4.0))
def test_bands_and_channels_are_ordered(data: tuple[Arr, Arr, Arr], n: int, k: float) -> None:
    h, lo, c = data
    middle, upper, lower = ind.bollinger(c, n, k)
    ok = ~np.isnan(middle)
    assert (upper[ok] >= middle[ok]).all() and (middle[ok] >= lower[ok]).all()
    d_upper, d_lower, d_middle = ind.donchian(h, lo, n)
    for t in range(n - 1, c.size):
        assert d_upper[t] == h[t - n + 1 : t + 1].max() and d_upper[t] >= h[t]
        assert d_lower[t] == lo[t - n + 1 : t + 1].min() and d_lower[t] <= lo[t]
        assert d_upper[t] >= d_middle[t] >= d_lower[t]


@PROPERTY
@given(data=bars(max_size=60), n=periods)
def test_ranges_are_non_negative(data: tuple[Arr, Arr, Arr], n: int) -> None:
    h, lo, c = data
    tr = ind.true_range(h, lo, c)
    assert (tr[1:] >= (h - lo)[1:]).all()
    atr = ind.atr(h, lo, c, n)
    assert (atr[n:] >= 0.0).all()
    assert (ind.rolling_volatility(c, max(n, 2))[max(n, 2) :] >= 0.0).all()


@PROPERTY
@given(x=series, n=st.integers(2, 12))
def test_zscore_is_bounded_by_sqrt_n_minus_1(x: Arr, n: int) -> None:
    z = ind.zscore(x, n)
    assert (np.abs(z[n - 1 :]) <= math.sqrt(n - 1) + 1e-6).all()


@PROPERTY
@given(data=bars(min_size=3, max_size=60), n=st.integers(2, 12), scale=st.floats(1e-6, 1e6))
def test_scale_free_indicators(data: tuple[Arr, Arr, Arr], n: int, scale: float) -> None:
    c = data[2]
    pairs = [
        (ind.rsi(c, n), ind.rsi(c * scale, n), 1e-9),
        (ind.rolling_volatility(c, n), ind.rolling_volatility(c * scale, n), 1e-9),
    ]
    for plain, scaled, tol in pairs:
        np.testing.assert_allclose(scaled, plain, rtol=tol, atol=tol)


# --- validation --------------------------------------------------------------------------------

X = np.arange(1.0, 11.0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ind.sma(X, 0), ValueError, "n must be >= 1, got 0"),
        (lambda: ind.ema(X, -3), ValueError, "n must be >= 1, got -3"),
        (lambda: ind.rsi(X, 2.5), TypeError, "n must be an integer"),
        (lambda: ind.sma(X, True), TypeError, "n must be an integer"),
        (lambda: ind.sma(X.reshape(2, 5), 2), ValueError, "x must be a 1-D array"),
        (lambda: ind.sma(["a", "b"], 2), ValueError, "x must be a 1-D array of numbers"),
        (lambda: ind.atr(X, X[:-1], X), ValueError, "same length, got high=10, low=9, close=10"),
        (lambda: ind.donchian(X, X[:3]), ValueError, "same length"),
        (lambda: ind.macd(X, 26, 12), ValueError, "fast must be shorter than slow"),
        (lambda: ind.macd(X, 12, 26, 0), ValueError, "signal must be >= 1"),
        (lambda: ind.bollinger(X, 5, -1.0), ValueError, "k must be a finite number >= 0"),
        (lambda: ind.bollinger(X, 5, NAN), ValueError, "k must be a finite number >= 0"),
        (lambda: ind.rolling_std(X, 1, ddof=1), ValueError, "n must be >= 2"),
        (lambda: ind.rolling_std(X, 3, ddof=-1), ValueError, "ddof must be >= 0"),
        (lambda: ind.rolling_volatility(X, 1), ValueError, "n must be >= 2"),
        (lambda: ind.rolling_volatility(X - 5, 3), ValueError, "strictly positive"),
        (lambda: ind.rolling_volatility(X, 3, 0.0), ValueError, "annualization must be"),
        (lambda: ind.zscore(X, 1), ValueError, "n must be >= 2"),
    ],
)
def test_invalid_inputs_are_refused_with_a_clear_message(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()
