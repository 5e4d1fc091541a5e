"""Train/test splits of a bar series: walk-forward (rolling, anchored) and purged k-fold.

Pure functions of the number of bars: they return bar *positions* (``int64`` index arrays,
ascending), never data, so they apply to any array or DataFrame (``df.iloc[split.test]``).

Walk-forward (:func:`walk_forward_splits`)::

    rolling   |--- train ---|emb|-- test --|
                   |step|--- train ---|emb|-- test --|
    anchored  |--- train ---|emb|-- test --|
              |-------- train -------|emb|-- test --|

    fold i tests bars [s_i, s_i + test) with s_i = train + embargo + i * step;
    rolling trains on [s_i - embargo - train, s_i - embargo), anchored on [0, s_i - embargo).

Every test bar comes after every train bar of its fold; test windows are ordered and never overlap
(``step >= test``); bars after the last full test window are not tested.

Purged k-fold (:func:`purged_kfold`, López de Prado, *Advances in Financial Machine Learning*,
2018, ch. 7): the bars are cut into ``k`` contiguous test folds (sizes differ by at most one)
that cover every bar exactly once. Fold ``[s, e)`` trains on every other bar except

* the ``label_horizon`` bars before it, ``[s - label_horizon, s)``: their labels (computed from
  up to ``label_horizon`` bars ahead) overlap the test fold (*purge*);
* the ``embargo`` bars after it, ``[e, e + embargo)``: they are serially correlated with the
  test fold (*embargo*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["IndexArray", "Split", "purged_kfold", "walk_forward_splits"]

IndexArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Split:
    """One fold: ascending bar positions to train on and to test on (disjoint).

    Attributes:
        train: positions of the training bars (contiguous for walk-forward; may have a hole
            for purged k-fold).
        test: positions of the test bars (always contiguous).
    """

    train: IndexArray
    test: IndexArray

    @property
    def test_start(self) -> int:
        """First test position."""
        return int(self.test[0])

    @property
    def test_end(self) -> int:
        """One past the last test position (half-open, like a slice)."""
        return int(self.test[-1]) + 1

    def __repr__(self) -> str:
        return f"Split(train={_describe(self.train)}, test=[{self.test_start}, {self.test_end}))"


def _describe(idx: IndexArray) -> str:
    if idx.size == 0:
        return "[]"
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return " ∪ ".join(f"[{int(s)}, {int(e)})" for s, e in zip(starts, ends, strict=True))


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number of bars, got {value!r}")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def _range(start: int, stop: int) -> IndexArray:
    return np.arange(start, stop, dtype=np.int64)


def walk_forward_splits(
    n_bars: int,
    *,
    train: int,
    test: int,
    step: int | None = None,
    anchored: bool = False,
    embargo: int = 0,
) -> list[Split]:
    """Walk-forward folds over ``n_bars`` bars.

    Args:
        n_bars: number of bars in the series.
        train: training bars of the first fold (of every fold when rolling).
        test: test bars of every fold.
        step: bars between the starts of consecutive test windows (default ``test``: the test
            windows tile the data). Must be ``>= test`` so test windows never overlap.
        anchored: train from bar 0 every time (expanding window) instead of a rolling window
            of ``train`` bars.
        embargo: bars left out between the end of each train window and its test window.

    Returns:
        The folds in time order; fold ``i`` tests ``[s_i, s_i + test)`` with
        ``s_i = train + embargo + i * step``.

    Raises:
        ValueError: a count that is not a whole number or is out of range, ``step < test``, or
            too few bars for a single fold.
    """
    n = _count("n_bars", n_bars, 0)
    n_train = _count("train", train, 1)
    n_test = _count("test", test, 1)
    n_step = n_test if step is None else _count("step", step, 1)
    gap = _count("embargo", embargo, 0)
    if n_step < n_test:
        raise ValueError(
            f"step ({n_step}) must be >= test ({n_test}): overlapping test windows would count "
            "the same bars twice"
        )
    if n_train + gap + n_test > n:
        raise ValueError(
            f"{n} bars are too few for one fold: train ({n_train}) + embargo ({gap}) + "
            f"test ({n_test}) = {n_train + gap + n_test}"
        )
    out: list[Split] = []
    start = n_train + gap
    while start + n_test <= n:
        train_end = start - gap
        train_start = 0 if anchored else train_end - n_train
        out.append(Split(_range(train_start, train_end), _range(start, start + n_test)))
        start += n_step
    return out


def purged_kfold(n_bars: int, k: int, *, embargo: int = 0, label_horizon: int = 0) -> list[Split]:
    """Purged k-fold cross-validation folds with an embargo (López de Prado 2018, ch. 7).

    Args:
        n_bars: number of bars in the series.
        k: number of folds (``2 <= k <= n_bars``).
        embargo: bars after each test fold removed from its training set.
        label_horizon: bars before each test fold removed from its training set because their
            labels look that many bars ahead, into the test fold (the purge).

    Returns:
        ``k`` folds in time order; the test folds are contiguous, cover ``0..n_bars-1`` exactly
        once and differ in size by at most one bar (the first ``n_bars % k`` are one longer).

    Raises:
        ValueError: a count that is not a whole number or is out of range, or a fold left with
            no training bar.
    """
    n = _count("n_bars", n_bars, 0)
    folds = _count("k", k, 2)
    gap = _count("embargo", embargo, 0)
    horizon = _count("label_horizon", label_horizon, 0)
    if folds > n:
        raise ValueError(f"k ({folds}) must be <= n_bars ({n}): each fold needs a bar")
    sizes = np.full(folds, n // folds, dtype=np.int64)
    sizes[: n % folds] += 1
    ends = np.cumsum(sizes)
    out: list[Split] = []
    for i, end in enumerate(ends):
        stop = int(end)
        start = stop - int(sizes[i])
        train = np.r_[_range(0, max(start - horizon, 0)), _range(min(stop + gap, n), n)]
        if train.size == 0:
            raise ValueError(
                f"fold {i} ([{start}, {stop})) has no training bar left after the purge "
                f"({horizon}) and embargo ({gap}): use fewer bars of purge/embargo or more folds"
            )
        out.append(Split(train.astype(np.int64), _range(start, stop)))
    return out
