"""Position sizing: golden values computed by hand, validation, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.sizing import (
    SizingParams,
    confidence_scale,
    kelly_fraction,
    position_size,
)

WIDE = SizingParams(max_position_pct=1000.0)  # caps out of the way of the other terms


# equity 10,000, price 100, sigma 0.002 (so 2 sigma = 0.4 in price), target 0.05 % a bar:
#   vol fraction = 0.0005 / 0.002 * scale = 0.25 * scale
#   Kelly fraction of equity = min(0.25 * f*, 0.01) * price / stop_distance
@pytest.mark.parametrize(
    ("label", "params", "confidence", "stop", "target", "quantity", "binding"),
    [
        # scale 1 -> 25 %; Kelly p=1: f*=1, risk min(0.25, 0.01) -> 0.01*100/0.4 = 250 %; cap 10 %
        ("max position binds", SizingParams(), 1.0, 0.4, 0.6, 10.0, "max_position"),
        # no cap in the way: the vol target's 25 % of 10,000 = 2,500 -> 25 units
        ("vol target binds", WIDE, 1.0, 0.4, 0.6, 25.0, "vol_target"),
        # scale (0.6 - 1/3) / (2/3) = 0.4 -> 10 %; Kelly 0.6 - 0.4/1.5 = 1/3 -> risk 1 % -> 250 %
        ("confidence scales", WIDE, 0.6, 0.4, 0.6, 10.0, "vol_target"),
        # stop 5 (5 %): Kelly 0.01 * 100 / 5 = 20 % < vol target 25 % -> 20 units
        ("kelly binds", WIDE, 1.0, 5.0, 7.5, 20.0, "kelly"),
        # quarter Kelly uncapped: p=0.55, b=1 -> f*=0.1 -> 0.025 > 1 % cap; max_risk 10 %:
        # risk 0.025 -> 0.025 * 100 / 5 = 50 %; vol 0.01/0.002 * (0.55-1/3)/(2/3) = 162.5 %
        (
            "kelly fraction",
            SizingParams(max_position_pct=1000.0, max_risk_pct=10.0, target_vol_pct=1.0),
            0.55, 5.0, 5.0, 50.0, "kelly",
        ),
    ],
)  # fmt: skip
def test_golden_sizes(
    label: str,
    params: SizingParams,
    confidence: float,
    stop: float,
    target: float,
    quantity: float,
    binding: str,
) -> None:
    size = position_size(10_000.0, 100.0, 0.002, confidence, stop, target, params)
    assert size.quantity == pytest.approx(quantity, rel=1e-12), label
    assert size.notional == pytest.approx(quantity * 100.0, rel=1e-12)
    assert size.fraction == pytest.approx(quantity * 100.0 / 10_000.0, rel=1e-12)
    assert size.binding == binding
    assert binding in size.reason


def test_golden_helpers() -> None:
    assert kelly_fraction(0.6, 2.0) == pytest.approx(0.4)
    assert kelly_fraction(0.5, 1.0) == 0.0
    assert kelly_fraction(0.3, 1.0) == pytest.approx(-0.4)
    assert kelly_fraction(0.5, 0.0) == -1.0  # invalid payoff: never positive
    assert confidence_scale(0.6, 0.2) == pytest.approx(0.5)
    assert confidence_scale(0.2, 0.2) == 0.0
    assert confidence_scale(1.0, 0.2) == 1.0
    assert confidence_scale(math.nan, 0.2) == 0.0
    params = SizingParams.from_annual(20.0, 105_120)
    assert params.target_vol_pct == pytest.approx(20.0 / math.sqrt(105_120))
    assert params.target_vol_pct == pytest.approx(0.061685, rel=1e-4)


def test_no_edge_means_no_trade() -> None:
    size = position_size(10_000.0, 100.0, 0.002, 0.5, 1.0, 1.0, SizingParams())
    assert size.quantity == 0.0  # p = 0.5, b = 1: f* = 0
    assert size.binding == "zero"
    assert "Kelly" in size.reason
    # Kelly off: the vol target alone decides
    no_kelly = SizingParams(kelly_fraction=0.0, max_position_pct=1000.0)
    size = position_size(10_000.0, 100.0, 0.002, 0.5, 1.0, 1.0, no_kelly)
    assert size.quantity == pytest.approx(0.25 * 0.25 * 10_000 / 100)  # scale (0.5-1/3)/(2/3)


@pytest.mark.parametrize(
    ("equity", "price", "sigma", "confidence", "stop", "target", "word"),
    [
        (math.nan, 100.0, 0.002, 0.9, 0.4, 0.6, "equity"),
        (0.0, 100.0, 0.002, 0.9, 0.4, 0.6, "equity"),
        (-5.0, 100.0, 0.002, 0.9, 0.4, 0.6, "equity"),
        (10_000.0, 0.0, 0.002, 0.9, 0.4, 0.6, "price"),
        (10_000.0, math.inf, 0.002, 0.9, 0.4, 0.6, "price"),
        (10_000.0, math.nan, 0.002, 0.9, 0.4, 0.6, "price"),
        (10_000.0, 100.0, 0.0, 0.9, 0.4, 0.6, "volatility"),
        (10_000.0, 100.0, math.nan, 0.9, 0.4, 0.6, "volatility"),
        (10_000.0, 100.0, -0.01, 0.9, 0.4, 0.6, "volatility"),
        (10_000.0, 100.0, 0.002, math.nan, 0.4, 0.6, "confidence"),
        (10_000.0, 100.0, 0.002, 1.5, 0.4, 0.6, "confidence"),
        (10_000.0, 100.0, 0.002, 0.9, 0.0, 0.6, "stop"),
        (10_000.0, 100.0, 0.002, 0.9, math.nan, 0.6, "stop"),
        (10_000.0, 100.0, 0.002, 0.9, 0.4, math.nan, "target"),
        (10_000.0, 100.0, 0.002, 0.2, 0.4, 0.6, "confidence_floor"),
    ],
)
def test_invalid_inputs_size_zero_with_reason(
    equity: float, price: float, sigma: float, confidence: float, stop: float, target: float,
    word: str,
) -> None:  # fmt: skip
    size = position_size(equity, price, sigma, confidence, stop, target, SizingParams())
    assert (size.quantity, size.notional, size.fraction, size.binding) == (0.0, 0.0, 0.0, "zero")
    assert word in size.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_vol_pct", 0.0),
        ("target_vol_pct", math.nan),
        ("confidence_floor", 1.0),
        ("confidence_floor", -0.1),
        ("kelly_fraction", 1.5),
        ("max_risk_pct", 0.0),
        ("max_position_pct", 2000.0),
        ("max_position_pct", True),
    ],
)
def test_params_validation_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"SizingParams\.{field}"):
        SizingParams(**{field: value})


def test_from_annual_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bars_per_year"):
        SizingParams.from_annual(20.0, 0.0)
    with pytest.raises(ValueError, match="target_annual_vol_pct"):
        SizingParams.from_annual(math.nan, 1000.0)


positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
sigmas = st.floats(min_value=1e-5, max_value=0.5, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
params_st = st.builds(
    SizingParams,
    target_vol_pct=st.floats(min_value=1e-3, max_value=5.0),
    confidence_floor=st.floats(min_value=0.0, max_value=0.9),
    kelly_fraction=unit,
    max_risk_pct=st.floats(min_value=0.01, max_value=100.0),
    max_position_pct=st.floats(min_value=0.1, max_value=1000.0),
)


@settings(max_examples=300, deadline=None)
@given(positive, positive, sigmas, unit, unit, st.floats(0.001, 0.5), st.floats(0.1, 10.0),
       params_st)  # fmt: skip
def test_size_is_monotone_in_confidence_and_within_caps(
    equity: float, price: float, sigma: float, c1: float, c2: float, stop_frac: float,
    payoff: float, params: SizingParams,
) -> None:  # fmt: skip
    low, high = sorted((c1, c2))
    stop, target = stop_frac * price, stop_frac * price * payoff
    a = position_size(equity, price, sigma, low, stop, target, params)
    b = position_size(equity, price, sigma, high, stop, target, params)
    assert 0.0 <= a.quantity <= b.quantity * (1 + 1e-12)
    for size in (a, b):
        assert size.notional <= params.max_position_pct / 100.0 * equity * (1 + 1e-9)
        if params.kelly_fraction > 0.0:  # loss at the stop within the risk cap
            assert size.quantity * stop <= params.max_risk_pct / 100.0 * equity * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(positive, positive, sigmas, sigmas, unit, st.floats(0.001, 0.5), params_st)
def test_size_decreases_with_volatility(
    equity: float, price: float, s1: float, s2: float, confidence: float, stop_frac: float,
    params: SizingParams,
) -> None:  # fmt: skip
    low, high = sorted((s1, s2))
    stop = stop_frac * price
    calm = position_size(equity, price, low, confidence, stop, 2 * stop, params)
    wild = position_size(equity, price, high, confidence, stop, 2 * stop, params)
    assert wild.quantity <= calm.quantity * (1 + 1e-12)


bad = st.sampled_from([math.nan, 0.0, -1.0, math.inf, -math.inf])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4), bad, positive, positive, sigmas, unit)
def test_any_invalid_input_gives_zero(
    which: int, bad_value: float, equity: float, price: float, sigma: float, confidence: float
) -> None:
    args = [equity, price, sigma, confidence, 0.01 * price]
    args[which] = bad_value  # (a confidence of 0 is valid, and sizes 0 below the floor)
    e, p, s, c, stop = args
    size = position_size(e, p, s, c, stop, 0.02 * price, SizingParams())
    assert size.quantity == 0.0
    assert size.binding == "zero"
