from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.errors import StrategyError
from morningstar.strategies import (
    BUILTIN_STRATEGIES,
    Bars,
    Param,
    Strategy,
    cross_above,
    cross_below,
    crossings,
    load_strategy,
)


def make_bars(n: int, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    return Bars(open_, high, low, close, rng.uniform(1, 10, n))


def test_builtin_names() -> None:
    assert sorted(BUILTIN_STRATEGIES) == [
        "bollinger_atr", "donchian_breakout", "ema_cross", "macd_trend", "rsi_reversion", "sma_cross",
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_every_parameter_declares_default_within_bounds(name: str) -> None:
    cls = BUILTIN_STRATEGIES[name]
    assert cls.params, f"{name} declares no parameters"
    resolved = cls.resolve()
    for p in cls.params:
        assert p.doc
        if p.kind != "bool":
            assert p.low is not None and p.high is not None
            assert p.low <= resolved[p.name] <= p.high


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_signals_shape_and_no_entry_exit_clash(name: str) -> None:
    cls = BUILTIN_STRATEGIES[name]
    bars = make_bars(600)
    sig = cls().signals(bars, cls.resolve())
    assert sig.long_entries.dtype == np.bool_ and sig.long_entries.shape == (600,)
    assert sig.long_exits.shape == (600,)
    assert sig.long_entries.any(), f"{name} never enters on 600 random-walk bars"


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=50, max_value=390), seed=st.integers(0, 1000))
@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_no_look_ahead(name: str, cut: int, seed: int) -> None:
    """Changing bars after t never changes a signal at or before t."""
    cls = BUILTIN_STRATEGIES[name]
    params = cls.resolve({"allow_short": True} if "allow_short" in cls.param_names() else {})
    bars = make_bars(400, seed)
    other = make_bars(400, seed + 1)
    changed = Bars(*(np.r_[getattr(bars, f)[: cut + 1], getattr(other, f)[cut + 1 :]]
                     for f in ("open", "high", "low", "close", "volume")))  # fmt: skip
    a, b = cls().signals(bars, params), cls().signals(changed, params)
    for field in ("long_entries", "long_exits", "short_entries", "short_exits"):
        x, y = getattr(a, field), getattr(b, field)
        if x is not None:
            np.testing.assert_array_equal(x[: cut + 1], y[: cut + 1], err_msg=f"{name}.{field}")
    if a.stop_distance is not None and b.stop_distance is not None:
        np.testing.assert_array_equal(a.stop_distance[: cut + 1], b.stop_distance[: cut + 1])


def test_resolve_errors_are_one_line_with_hints() -> None:
    ema = BUILTIN_STRATEGIES["ema_cross"]
    with pytest.raises(
        StrategyError, match=r"^ema_cross: unknown parameter 'fsat' — did you mean 'fast'\?$"
    ):
        ema.resolve({"fsat": 5})
    with pytest.raises(StrategyError, match=r"^ema_cross.fast: 500 is not <= 200$"):
        ema.resolve({"fast": 500})
    with pytest.raises(StrategyError, match=r"^ema_cross.slow: 'abc' is not a number"):
        ema.resolve({"slow": "abc"})
    with pytest.raises(StrategyError, match=r"^ema_cross.fast: 2.5 is not a whole number$"):
        ema.resolve({"fast": 2.5})
    with pytest.raises(StrategyError, match=r"fast \(60\) must be smaller than slow \(50\)"):
        ema.resolve({"fast": 60})
    assert ema.resolve({"fast": "12", "allow_short": "true"}) == {
        "fast": 12,
        "slow": 50,
        "allow_short": True,
    }


def test_param_grid() -> None:
    assert Param("n", "int", 5, 5, 50, 5).grid() == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert Param("k", "float", 2.0, 1.0, 2.0, 0.5).grid() == [1.0, 1.5, 2.0]
    assert Param("b", "bool", False).grid() == [False, True]


def test_cross_helpers_handle_nan() -> None:
    a = np.array([np.nan, 1.0, 3.0, 2.0, 0.5])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    assert cross_above(a, b).tolist() == [False, False, True, False, False]
    assert cross_below(a, b).tolist() == [False, False, False, False, True]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 1.0, 2.0, np.nan]), st.sampled_from([0.0, 1.0, 2.0, np.nan])
        ),
        max_size=40,
    )
)
def test_crossings_equal_the_vectorised_definition(pairs: list[tuple[float, float]]) -> None:
    a = np.array([p[0] for p in pairs], dtype=np.float64)
    b = np.array([p[1] for p in pairs], dtype=np.float64)
    above, below = crossings(a, b)
    want_above = np.zeros(len(a), dtype=bool)
    want_below = np.zeros(len(a), dtype=bool)
    with np.errstate(invalid="ignore"):
        want_above[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
        want_below[1:] = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    assert above.tolist() == want_above.tolist()
    assert below.tolist() == want_below.tolist()
    with pytest.raises(ValueError, match="one length"):
        crossings(a, np.append(b, 1.0))


def test_unknown_strategy_hint() -> None:
    with pytest.raises(
        StrategyError, match=r"unknown strategy 'ema_cros' — did you mean 'ema_cross'\?"
    ):
        load_strategy("ema_cros")


USER_STRATEGY = """
import numpy as np
from morningstar.strategies import Param, Signals, Strategy


class BuyTheDip(Strategy):
    name = "buy_the_dip"
    params = (Param("drop", "float", 0.02, 0.001, 0.5, 0.001, "fractional drop from the previous close"),)

    def signals(self, bars, params):
        prev = np.r_[np.nan, bars.close[:-1]]
        with np.errstate(invalid="ignore"):
            entries = bars.close < prev * (1 - params["drop"])
            exits = bars.close > prev
        return Signals(entries, exits)
"""


def test_user_strategy_from_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "dip.py"
    path.write_text(USER_STRATEGY)
    for spec, search in ((str(path), ()), (f"{path}:BuyTheDip", ()), ("buy_the_dip", (tmp_path,))):
        cls = load_strategy(spec, search_paths=search)
        assert issubclass(cls, Strategy) and cls.name == "buy_the_dip"
        sig = cls().signals(make_bars(100), cls.resolve({"drop": 0.005}))
        assert sig.long_entries.shape == (100,)
    with pytest.raises(StrategyError, match="no Strategy subclass 'Nope'"):
        load_strategy(f"{path}:Nope")
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\nraise RuntimeError('boom')\n")
    with pytest.raises(StrategyError, match="failed to import: RuntimeError: boom"):
        load_strategy(str(broken))
