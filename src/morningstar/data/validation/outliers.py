"""The outlier check: isolated price spikes that revert (rule in :mod:`morningstar.data.validation`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from morningstar.data.validation._common import _PRICES, _fmt, _Found, _n, _Work

__all__ = ["OutlierRule"]


@dataclass(frozen=True)
class OutlierRule:
    """Thresholds of the outlier check (see :mod:`morningstar.data.validation`).

    Args:
        sigmas: minimum deviation in local robust sigmas of 1-bar log returns.
        min_ratio: minimum deviation as a price ratio (1.03 = 3 %).
        event_volume: a bar with at least this multiple of its local median volume is a market
            event...
        event_max_ratio: ...and is flagged only when its deviation reaches this ratio.
        block: bars per block for the local sigma and volume medians.
    """

    sigmas: float = 12.0
    min_ratio: float = 1.03
    event_volume: float = 2.0
    event_max_ratio: float = 1.5
    block: int = 256


def _med3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c)))


def _side_medians(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of the 3 values before and the 3 after each element (NaN where a side is empty)."""
    n = len(x)
    pad = np.concatenate([np.full(3, np.nan), x, np.full(3, np.nan)])
    before = _med3(pad[0:n], pad[1 : n + 1], pad[2 : n + 2])
    after = _med3(pad[4 : n + 4], pad[5 : n + 5], pad[6 : n + 6])
    for i in [*range(min(3, n)), *range(max(n - 3, 0), n)]:  # edges: fewer neighbours
        b, a = pad[i : i + 3], pad[i + 4 : i + 7]
        before[i] = np.median(b[~np.isnan(b)]) if (~np.isnan(b)).any() else np.nan
        after[i] = np.median(a[~np.isnan(a)]) if (~np.isnan(a)).any() else np.nan
    return before, after


def _block_median(x: np.ndarray, block: int) -> np.ndarray:
    """Per-element local median: median of the element's block and its two neighbour blocks."""
    n = len(x)
    if n == 0:
        return np.empty(0)
    nb = -(-n // block)
    full = (n // block) * block
    meds = np.empty(nb)
    if full:
        meds[: n // block] = np.median(x[:full].reshape(-1, block), axis=1)
    if full < n:
        meds[-1] = np.median(x[full:])
    if nb >= 3:
        smooth = meds.copy()
        smooth[1:-1] = _med3(meds[:-2], meds[1:-1], meds[2:])
        meds = smooth
    return np.repeat(meds, block)[:n]


def _find_outliers(w: _Work, usable: np.ndarray, rule: OutlierRule) -> _Found:
    """Isolated price spikes that revert (see :mod:`morningstar.data.validation`)."""
    sel = np.nonzero(usable)[0]
    empty = _Found(np.empty(0, dtype=np.int64), str, "")
    if len(sel) < 3:
        return empty
    logs = {c: np.log(w.cols[c][sel]) for c in _PRICES}
    before, after = _side_medians(logs["close"])
    best = np.zeros(len(sel))
    field_of = np.zeros(len(sel), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for k, name in enumerate(_PRICES):
            db, da = logs[name] - before, logs[name] - after
            same = ((db > 0) & (da > 0)) | ((db < 0) & (da < 0))
            dev = np.where(
                np.isnan(db),
                np.abs(da),
                np.where(np.isnan(da), np.abs(db), np.where(same, np.minimum(abs(db), abs(da)), 0)),
            )
            dev = np.nan_to_num(dev, nan=0.0)
            better = dev > best
            best = np.where(better, dev, best)
            field_of = np.where(better, k, field_of)
    returns = np.abs(np.diff(logs["close"]))
    sigma = 1.4826 * _block_median(np.concatenate([returns[:1], returns]), rule.block)
    threshold = np.maximum(rule.sigmas * sigma, np.log(rule.min_ratio))
    flagged = best >= threshold
    volume = w.cols["volume"][sel]
    ref_volume = _block_median(volume, max(rule.block // 4, 8))
    with np.errstate(divide="ignore", invalid="ignore"):
        event = (ref_volume > 0) & (volume >= rule.event_volume * ref_volume)
    flagged &= ~(event & (best < np.log(rule.event_max_ratio)))
    hits = np.nonzero(flagged)[0]
    closes = w.cols["close"][sel]

    def detail(k: int) -> str:
        j = hits[k]
        name = _PRICES[field_of[j]]
        neighbours = np.concatenate([closes[max(j - 3, 0) : j], closes[j + 1 : j + 4]])
        ref = float(np.median(neighbours))
        price = float(w.cols[name][sel[j]])
        spread = f"{best[j] / sigma[j]:.0f} sigma" if sigma[j] > 0 else "flat neighbourhood"
        return (
            f"{name} {_fmt(price)} is {price / ref:.3g}x the median of neighbouring closes "
            f"{_fmt(ref)} ({spread})"
        )

    order = np.argsort(-best[hits], kind="stable")
    return _Found(
        sel[hits],
        detail,
        f"{_n(len(hits), 'bar')} with a price far from the neighbouring closes (isolated spikes)",
        order=order,
    )
