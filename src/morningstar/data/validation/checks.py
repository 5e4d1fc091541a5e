"""Value checks other than outliers: pure detection, they never change the working arrays."""

from __future__ import annotations

import numpy as np

from morningstar.data.ohlcv import OHLCV_COLUMNS
from morningstar.data.validation._common import _PRICES, _fmt, _Found, _n, _Work

__all__: list[str] = []


def _find_nan(w: _Work) -> _Found:
    bad = {c: ~np.isfinite(v) for c, v in w.cols.items()}
    rows = np.nonzero(np.logical_or.reduce(list(bad.values())))[0]

    def detail(k: int) -> str:
        i = rows[k]
        return ", ".join(f"{c} is {w.cols[c][i]}" for c in OHLCV_COLUMNS if bad[c][i])

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} with NaN or infinite values")


def _find_non_positive(w: _Work) -> _Found:
    bad = {c: w.cols[c] <= 0 for c in _PRICES}
    bad["volume"] = w.cols["volume"] < 0
    rows = np.nonzero(np.logical_or.reduce(list(bad.values())))[0]

    def detail(k: int) -> str:
        i = rows[k]
        return ", ".join(
            f"{c} {_fmt(w.cols[c][i])} {'< 0' if c == 'volume' else '<= 0'}"
            for c in OHLCV_COLUMNS
            if bad[c][i]
        )

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} with a price <= 0 or a negative volume")


def _find_ohlc(w: _Work) -> _Found:
    o, h, lo, c = (w.cols[k] for k in _PRICES)
    eps = 1e-9
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    bad_high = h < top * (1 - eps)
    bad_low = lo > bottom * (1 + eps)
    bad_range = h < lo * (1 - eps)
    rows = np.nonzero(bad_high | bad_low | bad_range)[0]

    def detail(k: int) -> str:
        i = rows[k]
        parts = []
        if bad_high[i]:
            which = "open" if o[i] >= c[i] else "close"
            parts.append(f"high {_fmt(h[i])} < {which} {_fmt(top[i])}")
        if bad_low[i]:
            which = "open" if o[i] <= c[i] else "close"
            parts.append(f"low {_fmt(lo[i])} > {which} {_fmt(bottom[i])}")
        if bad_range[i] and not parts:
            parts.append(f"high {_fmt(h[i])} < low {_fmt(lo[i])}")
        return ", ".join(parts)

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} whose high/low do not bound open/close")
