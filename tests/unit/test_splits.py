"""Walk-forward and purged k-fold splits: hand-checked windows, argument errors and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.splits import Split, purged_kfold, walk_forward_splits


def windows(splits: list[Split]) -> list[tuple[list[int], list[int]]]:
    return [(s.train.tolist(), s.test.tolist()) for s in splits]


def span(a: int, b: int) -> list[int]:
    return list(range(a, b))


def test_rolling_windows_by_hand() -> None:
    assert windows(walk_forward_splits(10, train=4, test=2)) == [
        (span(0, 4), span(4, 6)),
        (span(2, 6), span(6, 8)),
        (span(4, 8), span(8, 10)),
    ]


def test_anchored_windows_by_hand() -> None:
    assert windows(walk_forward_splits(11, train=4, test=2, anchored=True)) == [
        (span(0, 4), span(4, 6)),
        (span(0, 6), span(6, 8)),
        (span(0, 8), span(8, 10)),  # bar 10 is left over: no full test window
    ]


def test_step_and_embargo_by_hand() -> None:
    assert windows(walk_forward_splits(20, train=5, test=3, step=4, embargo=2)) == [
        (span(0, 5), span(7, 10)),
        (span(4, 9), span(11, 14)),
        (span(8, 13), span(15, 18)),
    ]


def test_purged_kfold_by_hand() -> None:
    assert windows(purged_kfold(10, 3)) == [
        (span(4, 10), span(0, 4)),
        (span(0, 4) + span(7, 10), span(4, 7)),
        (span(0, 7), span(7, 10)),
    ]
    assert windows(purged_kfold(10, 3, embargo=2, label_horizon=1)) == [
        (span(6, 10), span(0, 4)),
        (span(0, 3) + span(9, 10), span(4, 7)),
        (span(0, 6), span(7, 10)),
    ]


def test_split_repr_shows_ranges() -> None:
    assert repr(purged_kfold(10, 3)[1]) == "Split(train=[0, 4) ∪ [7, 10), test=[4, 7))"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_bars": 10, "train": 4, "test": 3, "step": 2}, r"step \(2\) must be >= test \(3\)"),
        ({"n_bars": 6, "train": 4, "test": 2, "embargo": 1}, "too few for one fold"),
        ({"n_bars": 10, "train": 0, "test": 2}, "train must be >= 1"),
        ({"n_bars": 10, "train": 4, "test": 2, "embargo": -1}, "embargo must be >= 0"),
        ({"n_bars": 10, "train": 4.5, "test": 2}, "train must be a whole number"),
        ({"n_bars": 10, "train": True, "test": 2}, "train must be a whole number"),
    ],
)
def test_walk_forward_errors(kwargs: dict[str, object], message: str) -> None:
    n_bars = kwargs.pop("n_bars")
    with pytest.raises(ValueError, match=message):
        walk_forward_splits(n_bars, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((10, 1), {}, "k must be >= 2"),
        ((3, 4), {}, r"k \(4\) must be <= n_bars \(3\)"),
        ((10, 2), {"embargo": 5, "label_horizon": 5}, "no training bar left"),
        ((10, 2), {"label_horizon": -1}, "label_horizon must be >= 0"),
    ],
)
def test_purged_kfold_errors(args: tuple[int, int], kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        purged_kfold(*args, **kwargs)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 400),
    train=st.integers(1, 120),
    test=st.integers(1, 60),
    extra_step=st.integers(0, 30),
    embargo=st.integers(0, 20),
    anchored=st.booleans(),
)
def test_walk_forward_properties(
    n: int, train: int, test: int, extra_step: int, embargo: int, anchored: bool
) -> None:
    step = test + extra_step
    if train + embargo + test > n:
        with pytest.raises(ValueError):
            walk_forward_splits(n, train=train, test=test, step=step, embargo=embargo)
        return
    splits = walk_forward_splits(
        n, train=train, test=test, step=step, anchored=anchored, embargo=embargo
    )
    assert len(splits) == (n - train - embargo - test) // step + 1
    previous_end = -1
    for s in splits:
        assert s.train.dtype == np.int64 and s.test.dtype == np.int64
        assert np.array_equal(s.test, np.arange(s.test[0], s.test[-1] + 1))  # contiguous
        assert np.array_equal(s.train, np.arange(s.train[0], s.train[-1] + 1))
        assert s.test.size == test
        assert s.train.size == (s.test_start - embargo if anchored else train)
        assert s.train[0] == 0 or not anchored
        assert not np.intersect1d(s.train, s.test).size
        assert s.test_start - (s.train[-1] + 1) == embargo  # the gap, exactly
        assert s.test_start > s.train.max()  # no test bar precedes its train window's end
        assert s.test_start >= previous_end  # ordered, non-overlapping
        previous_end = s.test_end
        assert s.train[0] >= 0 and s.test_end <= n


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 300),
    k=st.integers(2, 12),
    embargo=st.integers(0, 15),
    horizon=st.integers(0, 15),
)
def test_purged_kfold_properties(n: int, k: int, embargo: int, horizon: int) -> None:
    try:
        splits = purged_kfold(n, k, embargo=embargo, label_horizon=horizon)
    except ValueError:
        assert k > n or any(
            (n // k + (i < n % k)) + embargo + horizon >= n for i in range(min(k, n))
        )
        return
    assert len(splits) == k
    tested = np.concatenate([s.test for s in splits])
    assert np.array_equal(tested, np.arange(n))  # every bar tested exactly once, in order
    sizes = [s.test.size for s in splits]
    assert max(sizes) - min(sizes) <= 1
    for s in splits:
        start, end = s.test_start, s.test_end
        assert np.array_equal(s.test, np.arange(start, end))
        assert not np.intersect1d(s.train, s.test).size
        # purge before and embargo after are respected ...
        assert not ((s.train >= start - horizon) & (s.train < end + embargo)).any()
        # ... and nothing else is dropped
        kept = np.r_[np.arange(0, max(start - horizon, 0)), np.arange(min(end + embargo, n), n)]
        assert np.array_equal(s.train, kept)
