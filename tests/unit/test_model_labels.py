"""Labels (``morningstar.model.labels``): hand-built candle scenarios for the triple barrier, exact
excursions and volatility, the regime rule, unknown ends, a pure-Python oracle of the kernels and
the "a label of t only reads bars up to t + horizon" property."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from morningstar.errors import DataFormatError, UserInputError
from morningstar.model.labels import (
    REGIME_CLASSES,
    SIGNAL_CLASSES,
    Labels,
    LabelSpec,
    make_labels,
)

DOWN, NEUTRAL, UP = (SIGNAL_CLASSES.index(c) for c in ("down", "neutral", "up"))
TREND_UP, TREND_DOWN, RANGE, HIGH_VOL = (
    REGIME_CLASSES.index(c) for c in ("trend_up", "trend_down", "range", "high_vol")
)
# the prefix makes sigma tiny, so that the barrier is min_barrier: exactly +-1 % in log return
PREFIX = [100.0, 100.01, 100.0, 100.01, 100.0]
T = len(PREFIX) - 1  # the labelled bar, close 100
SPEC = LabelSpec(horizon=4, vol_window=4, barrier_mult=0.01, min_barrier=0.01)
U = 100.0 * math.exp(0.01)  # 101.005...
L = 100.0 * math.exp(-0.01)  # 99.005...


def bars_from(closes: list[float], future: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    """Flat-ish bars for ``closes`` (open = previous close), then the ``future`` (o, h, l, c)."""
    rows = []
    prev = closes[0]
    for c in closes:
        rows.append((prev, max(prev, c), min(prev, c), c))
        prev = c
    rows += future
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)
    frame["volume"] = 1.0
    return frame


QUIET = (100.0, 100.4, 99.6, 100.0)

# (name, future bars (open, high, low, close), expected signal of bar T)
SCENARIOS = [
    ("no touch: neutral", [QUIET, QUIET, QUIET, QUIET], NEUTRAL),
    ("high crosses the upper barrier", [QUIET, (100.0, 101.2, 99.9, 101.0), QUIET, QUIET], UP),
    ("low crosses the lower barrier", [(100.0, 100.3, 98.9, 99.2), QUIET, QUIET, QUIET], DOWN),
    ("high exactly at the barrier counts", [QUIET, QUIET, (100.0, U, 99.9, 100.5), QUIET], UP),
    ("low exactly at the barrier counts", [QUIET, QUIET, QUIET, (100.0, 100.1, L, 99.5)], DOWN),
    ("just short of both: neutral", [(100.0, U - 1e-9, L + 1e-9, 100.0)] * 4, NEUTRAL),
    ("both barriers in one bar: neutral", [QUIET, (100.0, 101.5, 98.5, 100.0), QUIET, QUIET],
     NEUTRAL),
    ("both in one bar after an earlier up touch: up",
     [(100.0, 101.1, 99.9, 101.0), (101.0, 101.5, 98.5, 100.0), QUIET, QUIET], UP),
    ("gap up through the upper barrier: up even if the low breaks",
     [(101.5, 101.6, 98.0, 99.0), QUIET, QUIET, QUIET], UP),
    ("gap down through the lower barrier: down even if the high breaks",
     [(98.5, 102.0, 98.0, 101.0), QUIET, QUIET, QUIET], DOWN),
    ("up first, then down: up", [(100.0, 101.3, 99.9, 100.2), (100.2, 100.3, 98.0, 98.5), QUIET,
                                 QUIET], UP),
    ("down first, then up: down", [QUIET, (100.0, 100.1, 98.8, 99.0), (99.0, 102.0, 98.9, 101.9),
                                   QUIET], DOWN),
    ("touch on the last bar of the horizon", [QUIET, QUIET, QUIET, (100.0, 101.3, 99.9, 101.0)],
     UP),
    ("touch one bar after the horizon: neutral",
     [QUIET, QUIET, QUIET, QUIET, (100.0, 103.0, 99.9, 102.0)], NEUTRAL),
    ("closes beyond the barrier count through the high",
     [QUIET, (100.0, 101.5, 100.0, 101.4), QUIET, QUIET], UP),
]  # fmt: skip


@pytest.mark.parametrize(("future", "expected"), [s[1:] for s in SCENARIOS],
                         ids=[s[0] for s in SCENARIOS])  # fmt: skip
def test_triple_barrier_scenarios(future: list[tuple[float, ...]], expected: int) -> None:
    bars = bars_from(PREFIX, future)  # type: ignore[arg-type]
    labels = make_labels(bars, SPEC)
    assert labels.sigma[T] * 0.01 * 2 < 0.01  # the barrier is min_barrier
    assert labels.signal[T] == expected


def test_unknown_at_both_ends() -> None:
    bars = bars_from(PREFIX, [(100.0, 100.4, 99.6, 100.2), (100.2, 100.4, 99.6, 100.0)] * 5)
    labels = make_labels(bars, SPEC)
    n = len(bars)
    assert (labels.signal[: SPEC.vol_window] == -1).all()  # no sigma yet
    assert (labels.signal[n - SPEC.horizon :] == -1).all()  # not enough future bars
    assert (labels.regime[n - SPEC.horizon :] == -1).all()
    for arr in (labels.volatility, labels.sl, labels.tp, labels.forward_return):
        assert np.isnan(arr[n - SPEC.horizon :]).all()
    assert labels.mask.tolist() == [False] * 4 + [True] * (n - 8) + [False] * 4  # 4 = window
    assert (labels.signal[labels.mask] >= 0).all() and len(labels) == n


def test_zero_sigma_leaves_labels_unknown_unless_a_minimum_barrier_is_set() -> None:
    bars = bars_from([100.0] * 6, [(100.0, 100.5, 99.9, 100.2)] * 5)
    plain = make_labels(bars, LabelSpec(horizon=2, vol_window=4))
    assert plain.sigma[5] == 0.0
    assert plain.signal[5] == -1 and plain.regime[5] == -1 and np.isnan(plain.sl[5])
    floor = make_labels(bars, LabelSpec(horizon=2, vol_window=4, min_barrier=0.004))
    assert floor.signal[5] == UP and not floor.mask[5]  # the signal is known, sl/tp are not


def test_excursions_volatility_and_forward_return_are_exact() -> None:
    future = [(100.0, 101.0, 99.0, 100.5), (100.5, 102.0, 100.2, 101.5),
              (101.5, 101.7, 97.0, 98.0), (98.0, 99.5, 97.5, 99.0)]  # fmt: skip
    closes = [100.0, 101.0, 99.5, 100.8, 100.0]
    bars = bars_from(closes, future)
    labels = make_labels(bars, LabelSpec(horizon=4, vol_window=4))
    sigma = np.std(np.diff(np.log(closes)), ddof=1)
    assert labels.sigma[T] == pytest.approx(sigma, rel=1e-12)
    unit = sigma * 100.0
    assert labels.tp[T] == pytest.approx((102.0 - 100.0) / unit, rel=1e-12)
    assert labels.sl[T] == pytest.approx((100.0 - 97.0) / unit, rel=1e-12)
    fwd = np.diff(np.log([100.0, 100.5, 101.5, 98.0, 99.0]))
    assert labels.volatility[T] == pytest.approx(np.std(fwd, ddof=1), rel=1e-12)
    assert labels.forward_return[T] == pytest.approx(math.log(99.0 / 100.0), rel=1e-12)
    # a window that never goes below the entry has no adverse excursion
    up_only = bars_from(closes, [(100.0, 101.0 + k, 100.0, 100.5 + k) for k in range(4)])
    assert make_labels(up_only, LabelSpec(horizon=4, vol_window=4)).sl[T] == 0.0


def regime_case(returns: list[float]) -> tuple[Labels, float]:
    """Bars whose sigma at T is set by an alternating prefix, then the given future returns."""
    prefix = list(100.0 * np.exp(np.cumsum([0.0, 0.01, -0.01, 0.01, -0.01])))
    closes = prefix[-1] * np.exp(np.cumsum(returns))
    prev = prefix[-1]
    future = []
    for c in closes:
        future.append((prev, max(prev, c), min(prev, c), c))
        prev = c
    labels = make_labels(bars_from(prefix, future), LabelSpec(horizon=4, vol_window=4))
    return labels, float(labels.sigma[T])


SIG = float(np.std([0.01, -0.01, 0.01, -0.01], ddof=1))  # sigma_T of the regime cases


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        # forward vol 0 (constant returns), forward return 4 sigma > 0.5 sigma * 2
        ([SIG, SIG, SIG, SIG], TREND_UP),
        ([-SIG, -SIG, -SIG, -SIG], TREND_DOWN),
        # zig-zag of half a sigma: vol ~0.58 sigma, forward return 0
        ([0.5 * SIG, -0.5 * SIG, 0.5 * SIG, -0.5 * SIG], RANGE),
        # just inside the trend threshold (0.5 * sigma * sqrt(4) = 1 sigma): range
        ([0.24 * SIG] * 4, RANGE),
        ([0.26 * SIG] * 4, TREND_UP),
        # zig-zag of 3 sigma: vol ~3.5 sigma > 1.5 sigma, wins over the trend test
        ([3 * SIG, -3 * SIG, 3 * SIG, 0.0], HIGH_VOL),
        ([3 * SIG, -2 * SIG, 3 * SIG, 2 * SIG], HIGH_VOL),
    ],
)
def test_regime_rule(returns: list[float], expected: int) -> None:
    labels, sigma = regime_case(returns)
    assert sigma == pytest.approx(SIG, rel=1e-9)
    assert labels.regime[T] == expected, REGIME_CLASSES[labels.regime[T]]


def test_balance_counts_known_labels_only() -> None:
    bars = bars_from(PREFIX, [QUIET, (100.0, 101.5, 99.9, 101.4), QUIET, QUIET, QUIET, QUIET])
    labels = make_labels(bars, SPEC)
    share = labels.balance()
    assert set(share) == {"signal", "regime"}
    assert sum(share["signal"].values()) == pytest.approx(1.0)
    assert share["signal"]["up"] == pytest.approx(np.mean(labels.signal[labels.mask] == UP))
    assert list(share["regime"]) == list(REGIME_CLASSES)


# --- oracle and properties -----------------------------------------------------------------------


def random_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[50.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.004, n))
    wick = np.abs(rng.normal(0.0, 0.006, (2, n)))
    index = pd.date_range("2024-01-01", periods=n, freq="15min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": 1.0,
        },
        index=index,
    )


def reference_signal(bars: pd.DataFrame, spec: LabelSpec) -> list[int]:
    """The barrier rule written plainly, bar by bar (the oracle of the numba kernel)."""
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    r = np.diff(np.log(c))
    out = []
    for t in range(len(c)):
        if t < spec.vol_window or t + spec.horizon >= len(c):
            out.append(-1)
            continue
        sigma = np.std(r[t - spec.vol_window : t], ddof=1)
        w = max(spec.barrier_mult * sigma * math.sqrt(spec.horizon), spec.min_barrier)
        up, down = c[t] * math.exp(w), c[t] * math.exp(-w)
        label = NEUTRAL
        for j in range(t + 1, t + spec.horizon + 1):
            if o[j] >= up or o[j] <= down:
                label = UP if o[j] >= up else DOWN
                break
            if h[j] >= up or lo[j] <= down:
                label = NEUTRAL if (h[j] >= up and lo[j] <= down) else (UP if h[j] >= up else DOWN)
                break
        out.append(label)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), horizon=st.integers(2, 12), mult=st.floats(0.3, 3.0))
def test_kernels_agree_with_a_plain_reference(seed: int, horizon: int, mult: float) -> None:
    bars = random_bars(150, seed)
    spec = LabelSpec(horizon=horizon, vol_window=10, barrier_mult=mult)
    labels = make_labels(bars, spec)
    expected = reference_signal(bars, spec)
    assert labels.signal.tolist() == expected
    hi, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    for t in np.flatnonzero(labels.mask)[:20]:
        unit = labels.sigma[t] * c[t]
        window = slice(t + 1, t + horizon + 1)
        assert labels.tp[t] == pytest.approx(max(hi[window].max() - c[t], 0) / unit, rel=1e-12)
        assert labels.sl[t] == pytest.approx(max(c[t] - lo[window].min(), 0) / unit, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(30, 149))
def test_a_label_of_t_reads_no_bar_after_t_plus_horizon(seed: int, cut: int) -> None:
    bars = random_bars(150, seed)
    spec = LabelSpec(horizon=6, vol_window=10)
    full = make_labels(bars, spec)
    part = make_labels(bars.iloc[: cut + 1], spec)
    known = cut + 1 - spec.horizon  # labels of bars < known only read bars <= cut
    for name in ("signal", "regime", "volatility", "sl", "tp", "sigma", "forward_return", "mask"):
        a, b = getattr(full, name)[:known], getattr(part, name)[:known]
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert (part.signal[known:] == -1).all()


# --- spec and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"horizon": 1}, {"vol_window": 1}, {"barrier_mult": 0.0}, {"min_barrier": -0.1},
     {"high_vol_mult": 0.0}, {"trend_threshold": 50.0}, {"horizon_bars": 3}],
)  # fmt: skip
def test_label_spec_bounds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        LabelSpec(**kwargs)


def test_label_spec_defaults() -> None:
    spec = LabelSpec()
    assert (spec.horizon, spec.vol_window, spec.barrier_mult) == (24, 48, 1.5)
    assert spec.warmup == 48


def test_bad_bars_give_one_line_errors() -> None:
    bars = bars_from(PREFIX, [QUIET] * 5)
    with pytest.raises(UserInputError, match="no bars"):
        make_labels(bars.iloc[:0], SPEC)
    with pytest.raises(DataFormatError, match="missing column") as err:
        make_labels(bars.drop(columns="high"), SPEC)
    assert "\n" not in str(err.value)
    with pytest.raises(DataFormatError, match="not strictly increasing"):
        make_labels(pd.concat([bars, bars.iloc[[2]]]), SPEC)


def test_fewer_bars_than_the_horizon_give_unknown_labels() -> None:
    labels = make_labels(bars_from(PREFIX[:3], []), SPEC)
    assert (labels.signal == -1).all() and not labels.mask.any()
