"""Probabilistic and deflated Sharpe ratios (Bailey & López de Prado, JPM 2014).

Golden values are the paper's numerical example and cases worked out by hand below, with the
normal CDF written with ``math.erf`` so the test does not share code with the implementation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.overfitting import (
    EULER_GAMMA,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
)


def phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def phi_inv(p: float) -> float:
    """Standard normal quantile by bisection on ``phi`` (slow, independent)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def test_euler_gamma() -> None:
    assert math.isclose(EULER_GAMMA, 0.5772156649015329, abs_tol=1e-16)


def test_paper_numerical_example() -> None:
    # Bailey & López de Prado (2014), numerical example: 100 trials whose annualised Sharpe
    # ratios have variance 1/2; the best has an annualised SR of 2.5 over 1,250 daily returns
    # (5 years of 250 days), skewness -3 and kurtosis 10. The paper finds SR0 ≈ 0.1132 per day
    # (≈ 1.79 a year) and DSR ≈ 0.9004.
    days = 250
    sr0 = expected_max_sharpe(100, 0.5 / days)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(days), 1250, -3.0, 10.0, sr_benchmark=sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_by_hand() -> None:
    # sr = 0.1, T = 101, normal returns: z = 0.1 · sqrt(100) / sqrt(1 + (3 - 1)/4 · 0.01)
    z = 1.0 / math.sqrt(1.005)
    assert probabilistic_sharpe_ratio(0.1, 101) == pytest.approx(phi(z), abs=1e-12)
    # skew -1, kurtosis 6, benchmark 0.05: z = 0.05 · sqrt(100) / sqrt(1 + 0.1 + 5/4 · 0.01)
    z = 0.5 / math.sqrt(1.1125)
    value = probabilistic_sharpe_ratio(0.1, 101, skew=-1.0, kurtosis=6.0, sr_benchmark=0.05)
    assert value == pytest.approx(phi(z), abs=1e-12)
    assert phi(z) == pytest.approx(0.682266, abs=1e-6)


def test_expected_max_sharpe_by_hand() -> None:
    # N = 10, V = 0.04: sqrt(V) · ((1 - γ) Φ⁻¹(0.9) + γ Φ⁻¹(1 - 1/(10 e)))
    expected = 0.2 * (
        (1 - 0.5772156649015329) * phi_inv(0.9)
        + 0.5772156649015329 * phi_inv(1 - 1 / (10 * math.e))
    )
    assert expected_max_sharpe(10, 0.04) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.2 * 1.5745, abs=2e-4)
    assert expected_max_sharpe(1, 0.04) == 0.0  # one trial: nothing was selected
    assert expected_max_sharpe(50, 0.0) == 0.0


@pytest.mark.parametrize(
    ("n", "exact", "tolerance"),
    # E[max of n i.i.d. standard normals] = ∫ x · n φ(x) Φ(x)^(n-1) dx, by quadrature
    [(10, 1.5387527, 0.025), (100, 2.5075936, 0.01), (1000, 3.2414358, 0.005)],
)
def test_expected_max_sharpe_approximates_the_maximum_of_normals(
    n: int, exact: float, tolerance: float
) -> None:
    # the formula is an approximation that tightens as n grows; it scales with sqrt(V)
    assert expected_max_sharpe(n, 1.0) == pytest.approx(exact, rel=tolerance)
    assert expected_max_sharpe(n, 0.09) == pytest.approx(0.3 * expected_max_sharpe(n, 1.0))


def test_return_moments_by_hand() -> None:
    m = return_moments([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, std(ddof=1) = sqrt(5/3); m2 = 1.25, m3 = 0, m4 = 2.5625
    assert m.sharpe == pytest.approx(2.5 / math.sqrt(5 / 3), abs=1e-12)
    assert m.skew == pytest.approx(0.0, abs=1e-12)
    assert m.kurtosis == pytest.approx(2.5625 / 1.5625, abs=1e-12)
    assert m.n_obs == 4
    skewed = return_moments([0.0, 0.0, 0.0, 1.0])
    # m2 = 3/16, m3 = 3/32: skew = (3/32) / (3/16)^1.5
    assert skewed.skew == pytest.approx((3 / 32) / (3 / 16) ** 1.5, abs=1e-12)


def test_constant_returns_have_no_sharpe() -> None:
    assert math.isnan(return_moments([0.01] * 10).sharpe)
    assert math.isnan(deflated_sharpe_ratio(np.zeros(50), 10, 0.01))


def test_dsr_equals_psr_against_the_expected_maximum() -> None:
    rng = np.random.default_rng(1)
    r = rng.standard_t(5, 500) * 0.01 + 0.001
    m = return_moments(r)
    sr0 = expected_max_sharpe(40, 0.002)
    expected = probabilistic_sharpe_ratio(m.sharpe, 500, m.skew, m.kurtosis, sr_benchmark=sr0)
    assert deflated_sharpe_ratio(r, 40, 0.002) == pytest.approx(expected, abs=1e-15)
    # one trial: the DSR is the PSR against zero
    plain = probabilistic_sharpe_ratio(m.sharpe, 500, m.skew, m.kurtosis)
    assert deflated_sharpe_ratio(r, 1, 0.002) == pytest.approx(plain, abs=1e-15)


def test_inconsistent_moments_give_nan() -> None:
    # 1 - skew·sr + (kurt - 1)/4 · sr² = 1 - 5 + 0.5 < 0
    assert math.isnan(probabilistic_sharpe_ratio(1.0, 100, skew=5.0, kurtosis=3.0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: probabilistic_sharpe_ratio(0.1, 1), "n_obs must be a whole number >= 2"),
        (lambda: probabilistic_sharpe_ratio(math.nan, 10), "sr must be finite"),
        (lambda: probabilistic_sharpe_ratio(0.1, 10, kurtosis=0.5), "kurtosis must be >= 1"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials must be a whole number >= 1"),
        (lambda: expected_max_sharpe(10, -1.0), "var_sr must be >= 0"),
        (lambda: return_moments([0.1]), "need at least 2 returns"),
        (lambda: return_moments([0.1, math.nan]), "NaN or inf"),
        (lambda: return_moments([[0.1, 0.2]]), "one-dimensional"),
    ],
)
def test_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


finite_sr = st.floats(-0.5, 0.5)
moments = st.tuples(st.floats(-1.0, 1.0), st.floats(1.5, 12.0))


@settings(max_examples=200, deadline=None)
@given(sr=finite_sr, n=st.integers(2, 5000), m=moments)
def test_psr_is_one_half_at_the_benchmark(sr: float, n: int, m: tuple[float, float]) -> None:
    value = probabilistic_sharpe_ratio(sr, n, m[0], m[1], sr_benchmark=sr)
    assert math.isnan(value) or value == 0.5


@settings(max_examples=200, deadline=None)
@given(a=finite_sr, b=finite_sr, n=st.integers(2, 5000), bench=st.floats(-0.3, 0.3))
def test_higher_sharpe_gives_higher_psr(a: float, b: float, n: int, bench: float) -> None:
    lo, hi = sorted((a, b))
    p_lo = probabilistic_sharpe_ratio(lo, n, sr_benchmark=bench)
    p_hi = probabilistic_sharpe_ratio(hi, n, sr_benchmark=bench)
    assert 0.0 <= p_lo <= p_hi <= 1.0


@settings(max_examples=100, deadline=None)
@given(n1=st.integers(1, 10_000), n2=st.integers(1, 10_000), var=st.floats(1e-6, 0.1))
def test_more_trials_raise_the_bar(n1: int, n2: int, var: float) -> None:
    lo, hi = sorted((n1, n2))
    assert 0.0 <= expected_max_sharpe(lo, var) <= expected_max_sharpe(hi, var)


def test_more_trials_lower_the_dsr() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0.0008, 0.01, 1000)
    values = [deflated_sharpe_ratio(r, n, 0.001) for n in (1, 2, 10, 100, 1000, 100_000)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a > b for a, b in itertools.pairwise(values))
    # a larger spread of Sharpe ratios across trials is a higher bar too
    assert deflated_sharpe_ratio(r, 100, 0.004) < deflated_sharpe_ratio(r, 100, 0.001)
