"""walk_forward() and purged_cv(): windows, parameter choice, stitching, no leak, DSR."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs, EngineOptions, simulate
from morningstar.core.overfitting import deflated_sharpe_ratio, expected_max_sharpe
from morningstar.data.ohlcv import from_arrays
from morningstar.errors import UserInputError
from morningstar.research.walkforward import WalkForwardResult, purged_cv, walk_forward
from morningstar.strategies import BUILTIN_STRATEGIES, Bars

SPACE = {"fast": [5, 10, 20], "slow": [30, 60]}
COSTS = Costs(fee_bps=10)


def make_bars(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    ts = 1_704_067_200_000 + np.arange(n) * 3_600_000
    return from_arrays(ts, open_, high, low, close, rng.uniform(1, 5, n))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def rolling(data: pd.DataFrame) -> WalkForwardResult:
    return walk_forward(data, "ema_cross", SPACE, train=1000, test=500, costs=COSTS, n_jobs=1)


def test_fold_windows(rolling: WalkForwardResult, data: pd.DataFrame) -> None:
    assert len(rolling.folds) == 4 and list(rolling.table.index) == [0, 1, 2, 3]
    for i, fold in enumerate(rolling.folds):
        start = 1000 + 500 * i
        assert fold.split.train.tolist() == list(range(start - 1000, start))
        assert fold.split.test.tolist() == list(range(start, start + 500))
        row = rolling.table.loc[i]
        assert row["train_first"] == data.index[start - 1000]
        assert row["train_last"] == data.index[start - 1]
        assert row["test_first"] == data.index[start] > row["train_last"]
        assert row["test_last"] == data.index[start + 499]
        assert (row["train_bars"], row["test_bars"]) == (1000, 500)
        # the OOS backtest ran on exactly the test bars, never on a train bar
        assert fold.oos.bars.index.equals(data.index[start : start + 500])
        assert fold.oos.equity.index.min() > data.index[int(fold.split.train[-1])]


def test_chosen_params_come_from_the_train_sweep(rolling: WalkForwardResult) -> None:
    for fold in rolling.folds:
        best = fold.sweep_table.iloc[0]
        assert fold.params == {k: best[k] for k in fold.params}
        assert fold.in_sample["sharpe"] == pytest.approx(best["sharpe"], rel=1e-12)
        assert fold.sweep_table["sharpe"].max() == pytest.approx(best["sharpe"], rel=1e-12)
        assert fold.oos.params == fold.params
        row = rolling.table.loc[fold.index]
        assert (row["fast"], row["slow"]) == (fold.params["fast"], fold.params["slow"])
        assert row["is_sharpe"] == fold.in_sample["sharpe"]
        assert row["oos_sharpe"] == fold.oos.metrics["sharpe"]
        assert fold.n_trials == 6 == len(fold.sweep_table)
    assert rolling.n_trials == 24 == rolling.table["n_trials"].sum()


def test_stitched_equity_has_exactly_the_test_bars(
    rolling: WalkForwardResult, data: pd.DataFrame
) -> None:
    eq = rolling.oos_equity
    assert eq.index.equals(data.index[1000:3000]) and eq.index.is_unique
    assert eq.iloc[0] == 10_000.0
    level = 10_000.0
    for fold in rolling.folds:
        part = eq.loc[fold.oos.equity.index]
        np.testing.assert_allclose(part.to_numpy(), fold.oos.equity.to_numpy() * level / 10_000)
        level = float(part.iloc[-1])
    total = np.prod([1 + f.oos.metrics["total_return"] for f in rolling.folds]) - 1
    assert rolling.oos_metrics["total_return"] == pytest.approx(total, rel=1e-9)
    assert rolling.oos_metrics["trade_count"] == sum(
        f.oos.metrics["trade_count"] for f in rolling.folds
    )
    assert len(rolling.oos_returns) == 1999


def test_oos_signals_are_warmed_up_on_the_bars_before(
    rolling: WalkForwardResult, data: pd.DataFrame
) -> None:
    # warmup=None: the test window's signals are those of the whole history, cut to the window
    strat = BUILTIN_STRATEGIES["ema_cross"]()
    bars = Bars(*(data[c].to_numpy() for c in ("open", "high", "low", "close", "volume")))
    for fold in rolling.folds:
        full = strat.signals(bars, strat.resolve(fold.params))
        test = fold.split.test
        np.testing.assert_array_equal(fold.oos.signals.long_entries, full.long_entries[test])
        np.testing.assert_array_equal(fold.oos.signals.long_exits, full.long_exits[test])
        # and the OOS equity is the engine on the test bars alone, starting flat
        df = data.iloc[test]
        direct = simulate(
            df["open"].to_numpy(), df["high"].to_numpy(), df["low"].to_numpy(),
            df["close"].to_numpy(), long_entries=full.long_entries[test],
            long_exits=full.long_exits[test], costs=COSTS,
            options=EngineOptions(close_at_end=True),
        )  # fmt: skip
        np.testing.assert_array_equal(fold.oos.equity.to_numpy(), direct.equity)


def test_warmup_zero_computes_signals_on_the_test_window_alone(data: pd.DataFrame) -> None:
    wf = walk_forward(
        data, "ema_cross", SPACE, train=1000, test=1000, warmup=0, costs=COSTS, n_jobs=1
    )
    strat = BUILTIN_STRATEGIES["ema_cross"]()
    for fold in wf.folds:
        df = data.iloc[fold.split.test]
        alone = strat.signals(
            Bars(*(df[c].to_numpy() for c in ("open", "high", "low", "close", "volume"))),
            strat.resolve(fold.params),
        )
        np.testing.assert_array_equal(fold.oos.signals.long_entries, alone.long_entries)


def test_changing_a_test_window_never_changes_its_choice(
    rolling: WalkForwardResult, data: pd.DataFrame
) -> None:
    target = rolling.folds[1]
    start, end = target.split.test_start, target.split.test_end
    changed = data.copy()
    rng = np.random.default_rng(99)
    factor = np.exp(np.cumsum(rng.normal(0.002, 0.01, end - start)))
    for col in ("open", "high", "low", "close"):
        changed.iloc[start:end, changed.columns.get_loc(col)] *= factor
    wf = walk_forward(changed, "ema_cross", SPACE, train=1000, test=500, costs=COSTS, n_jobs=1)
    for i in (0, 1):  # folds whose train window ends before the changed bars
        assert wf.folds[i].params == rolling.folds[i].params
        np.testing.assert_equal(wf.folds[i].in_sample, rolling.folds[i].in_sample)
        pd.testing.assert_frame_equal(wf.folds[i].sweep_table, rolling.folds[i].sweep_table)
    np.testing.assert_equal(wf.folds[0].oos.metrics, rolling.folds[0].oos.metrics)
    # the change was real: the OOS result of the changed window differs
    assert wf.folds[1].oos.metrics["total_return"] != target.oos.metrics["total_return"]


def test_anchored_with_embargo_and_step(data: pd.DataFrame) -> None:
    wf = walk_forward(
        data, "sma_cross", {"fast": [5, 10], "slow": [40]}, train=800, test=400, step=600,
        embargo=24, anchored=True, costs=COSTS, n_jobs=1, method="grid",
    )  # fmt: skip
    assert len(wf.folds) == 3
    starts = [f.split.test_start for f in wf.folds]
    assert starts == [824, 1424, 2024]
    for fold in wf.folds:
        assert fold.split.train[0] == 0
        assert fold.split.test_start - fold.split.train[-1] - 1 == 24
    expected = np.concatenate([data.index[s : s + 400] for s in starts])
    assert wf.oos_equity.index.equals(pd.DatetimeIndex(expected))
    assert wf.settings["step"] == 600 and wf.settings["anchored"] is True


def test_deflated_sharpe_uses_all_trials(rolling: WalkForwardResult) -> None:
    r = rolling.oos_returns.to_numpy()
    assert rolling.dsr == deflated_sharpe_ratio(r, 24, rolling.sr_variance)
    assert rolling.expected_max_sharpe == expected_max_sharpe(24, rolling.sr_variance)
    per_bar = [
        np.var(f.sweep_table["sharpe"].to_numpy() / math.sqrt(rolling.periods_per_year), ddof=1)
        for f in rolling.folds
    ]
    assert rolling.sr_variance == pytest.approx(np.mean(per_bar), rel=1e-12)
    assert 0.0 <= rolling.dsr < rolling.psr <= 1.0  # selection raises the bar
    assert rolling.periods_per_year == 8760


def test_summary_and_json(rolling: WalkForwardResult) -> None:
    s = rolling.summary()
    assert s["folds"] == 4 and s["n_trials"] == 24 and s["oos_bars"] == 2000
    assert s["dsr"] == rolling.dsr and s["oos_sharpe"] == rolling.oos_metrics["sharpe"]
    assert s["is_sharpe_mean"] == pytest.approx(rolling.table["is_sharpe"].mean())
    data = json.loads(rolling.to_json())
    assert data["strategy"] == "ema_cross" and len(data["folds"]) == 4
    assert data["folds"][1]["params"] == rolling.folds[1].params
    assert data["settings"]["train"] == 1000 and data["summary"]["n_trials"] == 24


def test_random_method_counts_its_draws(data: pd.DataFrame) -> None:
    wf = walk_forward(
        data, "ema_cross", {"fast": [5, 8, 10, 15, 20], "slow": [30, 45, 60]},
        train=1500, test=700, method="random", n_iter=4, seed=1, costs=COSTS, n_jobs=1,
    )  # fmt: skip
    assert [f.n_trials for f in wf.folds] == [4, 4] and wf.n_trials == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": 2900, "test": 500}, "too few for one fold"),
        ({"train": 1000, "test": 500, "step": 100}, "step"),
        ({"train": 1000, "test": 1}, "test must be >= 2"),
        ({"train": 1, "test": 500}, "train must be >= 2"),
        ({"train": 1000, "test": 500, "warmup": -1}, "warmup"),
    ],
)
def test_bad_windows(data: pd.DataFrame, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        walk_forward(data, "ema_cross", SPACE, costs=COSTS, n_jobs=1, **kwargs)  # type: ignore[arg-type]


def test_purged_cv(data: pd.DataFrame) -> None:
    cv = purged_cv(data, "ema_cross", {"fast": 5, "slow": 30}, k=4, embargo=10, label_horizon=5)
    assert len(cv.folds) == 4
    tested = np.concatenate([f.split.test for f in cv.folds])
    assert np.array_equal(tested, np.arange(len(data)))
    assert cv.table["test_bars"].tolist() == [750] * 4
    assert cv.table["train_bars"].tolist() == [2240, 2235, 2235, 2245]
    for fold in cv.folds:
        assert fold.result.bars.index.equals(data.index[fold.split.test])
        assert fold.result.params == cv.params
    summary = cv.summary()
    assert summary["mean"] == pytest.approx(cv.table["sharpe"].mean())
    assert json.loads(json.dumps(cv.to_dict(), default=str))["folds"][0]["train_bars"] == 2240
    with pytest.raises(UserInputError, match="k must be >= 2"):
        purged_cv(data, "ema_cross", k=1)
