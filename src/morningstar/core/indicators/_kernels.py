"""Numba kernels of the indicators (private).

Each ``*_segment`` kernel computes one indicator on a run of finite values, writing into views of
the output arrays (already filled with NaN); each ``*_nb`` driver loops over the runs given by
``_common.segments``. All kernels are compiled with ``cache=True`` so that a new process (the CLI)
loads machine code from ``__pycache__`` instead of compiling again.

Floating-point order follows TA-Lib's C code where TA-Lib is the reference (EMA, MACD, RSI, ATR,
DI, ADX), so that those results agree to the last bits. Rolling sums are *not* TA-Lib's plain
running sums: see :func:`_moments_segment`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from morningstar.core.indicators._common import FloatArray, IndexArray

# --------------------------------------------------------------------------------------- rolling


@njit(nogil=True, cache=True)
def _moments_segment(
    x: FloatArray,
    n: int,
    ddof: int,
    want_var: bool,
    mean_out: FloatArray,
    var_out: FloatArray,
    z_out: FloatArray,
) -> None:
    """Rolling mean, and variance with ``ddof`` (``want_var``), over windows of ``n`` values.

    O(len) with bounded rounding error: sums of deviations from a shift ``K`` are updated in O(1)
    per bar and recomputed from scratch every ``n`` bars (amortised O(1)), with ``K`` reset to
    the latest value, so that drift never accumulates over more than ``n`` updates and the
    cancellation of a large price level is avoided (TA-Lib's plain running sums of ``x`` and
    ``x**2`` lose both). A window of identical values (detected by the length of the current run
    of equal values) gives that value and a variance of exactly 0.

    When ``z_out`` is not empty it receives the z-score ``(x - mean) / sqrt(var)`` (0 where the
    variance is 0), with the deviation taken from the shifted sums rather than from the rounded
    mean, which keeps it accurate when the deviation is tiny compared with the price level.
    """
    m = x.size
    if m < n:
        return
    shift = 0.0
    s1 = 0.0
    s2 = 0.0
    run = 0
    next_reset = n - 1
    want_z = z_out.size > 0
    for i in range(m):
        if i > 0 and x[i] == x[i - 1]:
            run += 1
        else:
            run = 1
        if i < n - 1:
            continue
        if i == next_reset:
            shift = x[i]
            s1 = 0.0
            s2 = 0.0
            for j in range(i - n + 1, i + 1):
                d = x[j] - shift
                s1 += d
                s2 += d * d
            next_reset = i + n
        else:
            a = x[i] - shift
            b = x[i - n] - shift
            s1 += a - b
            if want_var:
                s2 += (a - b) * (a + b)
        if run >= n:
            mean_out[i] = x[i]
            if want_var:
                var_out[i] = 0.0
            if want_z:
                z_out[i] = 0.0
            continue
        mean_out[i] = shift + s1 / n
        if want_var:
            v = (s2 - s1 * s1 / n) / (n - ddof)
            v = max(v, 0.0)
            var_out[i] = v
            if want_z:
                z_out[i] = ((x[i] - shift) - s1 / n) / np.sqrt(v) if v > 0.0 else 0.0


@njit(nogil=True, cache=True)
def moments_nb(
    x: FloatArray,
    n: int,
    ddof: int,
    want_var: bool,
    want_z: bool,
    starts: IndexArray,
    ends: IndexArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rolling mean, variance and z-score (empty arrays for those not wanted), one compilation."""
    mean = np.full(x.size, np.nan)
    var = np.full(x.size if want_var or want_z else 0, np.nan)
    z = np.full(x.size if want_z else 0, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        var_seg = var[s:e] if var.size else var
        z_seg = z[s:e] if z.size else z
        _moments_segment(x[s:e], n, ddof, want_var or want_z, mean[s:e], var_seg, z_seg)
    return mean, var, z


@njit(nogil=True, cache=True)
def _extreme_segment(x: FloatArray, n: int, want_max: bool, out: FloatArray) -> None:
    """Rolling max (or min) with a monotonic deque of indices kept in a ring of ``n`` slots: O(len)."""
    m = x.size
    if m < n:
        return
    ring = np.empty(n, dtype=np.int64)
    head = 0
    count = 0
    for i in range(m):
        if count > 0 and ring[head] <= i - n:  # the oldest candidate left the window
            head = head + 1 if head + 1 < n else 0
            count -= 1
        xi = x[i]
        while count > 0:
            back = head + count - 1
            if back >= n:
                back -= n
            prev = x[ring[back]]
            if (prev <= xi) if want_max else (prev >= xi):
                count -= 1
            else:
                break
        tail = head + count
        if tail >= n:
            tail -= n
        ring[tail] = i
        count += 1
        if i >= n - 1:
            out[i] = x[ring[head]]


@njit(nogil=True, cache=True)
def extreme_nb(
    x: FloatArray, n: int, want_max: bool, starts: IndexArray, ends: IndexArray
) -> FloatArray:
    out = np.full(x.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _extreme_segment(x[s:e], n, want_max, out[s:e])
    return out


# ------------------------------------------------------------------------------------- recursive


@njit(nogil=True, cache=True, fastmath={"contract"})
def _ema_segment(x: FloatArray, n: int, out: FloatArray) -> None:
    """TA-Lib EMA: seed = mean of the first ``n`` values at index ``n-1``, then ``k = 2/(n+1)``.

    The step is written ``prev * (1 - k) + x * k`` (TA-Lib: ``(x - prev) * k + prev``, the same
    value to an ulp) so that only one multiply-add sits on the loop-carried dependency: the
    recurrence runs about twice as fast. Rounding does not accumulate (each step shrinks the
    previous error by ``1 - k``); the TA-Lib cross-check holds to 1e-9.
    """
    m = x.size
    if m < n:
        return
    total = 0.0
    for i in range(n):
        total += x[i]
    prev = total / n
    out[n - 1] = prev
    k = 2.0 / (n + 1.0)
    keep = 1.0 - k
    for i in range(n, m):
        prev = prev * keep + x[i] * k
        out[i] = prev


@njit(nogil=True, cache=True)
def ema_nb(x: FloatArray, n: int, starts: IndexArray, ends: IndexArray) -> FloatArray:
    out = np.full(x.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _ema_segment(x[s:e], n, out[s:e])
    return out


@njit(nogil=True, cache=True)
def _macd_segment(
    x: FloatArray,
    fast: int,
    slow: int,
    signal: int,
    macd_out: FloatArray,
    signal_out: FloatArray,
    hist_out: FloatArray,
) -> None:
    """TA-Lib MACD: both EMAs start at index ``slow-1`` (the fast one seeded with the mean of the
    ``fast`` values ending there); the signal EMA is seeded with the mean of the first ``signal``
    MACD values; every output starts at index ``slow+signal-2``."""
    m = x.size
    start = slow - 1
    if m < start + signal:
        return
    k_fast = 2.0 / (fast + 1.0)
    k_slow = 2.0 / (slow + 1.0)
    k_signal = 2.0 / (signal + 1.0)
    total = 0.0
    for i in range(slow):
        total += x[i]
    slow_ema = total / slow
    total = 0.0
    for i in range(slow - fast, slow):
        total += x[i]
    fast_ema = total / fast
    line = np.empty(m - start)
    line[0] = fast_ema - slow_ema
    for i in range(slow, m):
        slow_ema = (x[i] - slow_ema) * k_slow + slow_ema
        fast_ema = (x[i] - fast_ema) * k_fast + fast_ema
        line[i - start] = fast_ema - slow_ema
    total = 0.0
    for j in range(signal):
        total += line[j]
    sig = total / signal
    for j in range(signal - 1, line.size):
        if j >= signal:
            sig = (line[j] - sig) * k_signal + sig
        i = j + start
        macd_out[i] = line[j]
        signal_out[i] = sig
        hist_out[i] = line[j] - sig


@njit(nogil=True, cache=True)
def macd_nb(
    x: FloatArray, fast: int, slow: int, signal: int, starts: IndexArray, ends: IndexArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    macd = np.full(x.size, np.nan)
    sig = np.full(x.size, np.nan)
    hist = np.full(x.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _macd_segment(x[s:e], fast, slow, signal, macd[s:e], sig[s:e], hist[s:e])
    return macd, sig, hist


@njit(nogil=True, cache=True)
def _rsi_value(gain: float, loss: float) -> float:
    total = gain + loss
    if total == 0.0:
        return 50.0  # no movement at all in the window: neutral (TA-Lib returns 0)
    return 100.0 * (gain / total)


@njit(nogil=True, cache=True)
def _rsi_segment(x: FloatArray, n: int, out: FloatArray) -> None:
    """TA-Lib RSI: Wilder averages seeded with the plain mean of the first ``n`` changes."""
    m = x.size
    if m <= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        change = x[i] - x[i - 1]
        if change < 0.0:
            loss -= change
        else:
            gain += change
    loss /= n
    gain /= n
    out[n] = _rsi_value(gain, loss)
    for i in range(n + 1, m):
        change = x[i] - x[i - 1]
        loss *= n - 1
        gain *= n - 1
        if change < 0.0:
            loss -= change
        else:
            gain += change
        loss /= n
        gain /= n
        out[i] = _rsi_value(gain, loss)


@njit(nogil=True, cache=True)
def rsi_nb(x: FloatArray, n: int, starts: IndexArray, ends: IndexArray) -> FloatArray:
    out = np.full(x.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _rsi_segment(x[s:e], n, out[s:e])
    return out


@njit(nogil=True, cache=True)
def _true_range(high: float, low: float, prev_close: float) -> float:
    """``max(high-low, |high-prev_close|, |low-prev_close|)`` in TA-Lib's order."""
    out = high - low
    out = max(out, abs(high - prev_close))
    return max(out, abs(low - prev_close))


@njit(nogil=True, cache=True)
def true_range_nb(
    high: FloatArray, low: FloatArray, close: FloatArray, starts: IndexArray, ends: IndexArray
) -> FloatArray:
    out = np.full(high.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        for i in range(s + 1, e):
            out[i] = _true_range(high[i], low[i], close[i - 1])
    return out


@njit(nogil=True, cache=True)
def _atr_segment(
    high: FloatArray, low: FloatArray, close: FloatArray, n: int, out: FloatArray
) -> None:
    """TA-Lib ATR: mean of the first ``n`` true ranges at index ``n``, then Wilder smoothing."""
    m = high.size
    if m <= n:
        return
    total = 0.0
    for i in range(1, n + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    prev = total / n
    out[n] = prev
    for i in range(n + 1, m):
        prev *= n - 1
        prev += _true_range(high[i], low[i], close[i - 1])
        prev /= n
        out[i] = prev


@njit(nogil=True, cache=True)
def atr_nb(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    n: int,
    starts: IndexArray,
    ends: IndexArray,
) -> FloatArray:
    out = np.full(high.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _atr_segment(high[s:e], low[s:e], close[s:e], n, out[s:e])
    return out


@njit(nogil=True, cache=True)
def _dmi_segment(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    n: int,
    plus_out: FloatArray,
    minus_out: FloatArray,
    adx_out: FloatArray,
) -> None:
    """TA-Lib +DI, -DI and ADX (Wilder sums; the first ``n-1`` movements are summed plainly).

    +DM/-DM: up = high-high[-1], down = low[-1]-low; -DM = down when down > 0 and up < down,
    else +DM = up when up > 0 and up > down. Smoothed sums ``S = S - S/n + v``; DI = 100·DM/TR
    (0 when the smoothed TR is 0); DX = 100·|+DI - -DI| / (+DI + -DI); ADX = mean of the first
    ``n`` DX, then Wilder; a bar where DX is undefined (no range, or no directional movement)
    leaves the ADX unchanged, as TA-Lib does.
    """
    m = high.size
    if m <= n:
        return
    plus_dm = 0.0
    minus_dm = 0.0
    tr_sum = 0.0
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        if down > 0.0 and up < down:
            minus_dm += down
        elif up > 0.0 and up > down:
            plus_dm += up
        tr_sum += _true_range(high[i], low[i], close[i - 1])
    sum_dx = 0.0
    adx = 0.0
    first_adx = 2 * n - 1
    for i in range(n, m):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        minus_dm -= minus_dm / n
        plus_dm -= plus_dm / n
        if down > 0.0 and up < down:
            minus_dm += down
        elif up > 0.0 and up > down:
            plus_dm += up
        tr_sum = tr_sum - tr_sum / n + _true_range(high[i], low[i], close[i - 1])
        has_dx = False
        dx = 0.0
        if tr_sum != 0.0:
            minus_di = 100.0 * (minus_dm / tr_sum)
            plus_di = 100.0 * (plus_dm / tr_sum)
            di_sum = minus_di + plus_di
            if di_sum != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
                has_dx = True
        else:
            minus_di = 0.0
            plus_di = 0.0
        plus_out[i] = plus_di
        minus_out[i] = minus_di
        if i < first_adx:
            if has_dx:
                sum_dx += dx
        elif i == first_adx:
            if has_dx:
                sum_dx += dx
            adx = sum_dx / n
            adx_out[i] = adx
        else:
            if has_dx:
                adx = (adx * (n - 1) + dx) / n
            adx_out[i] = adx


@njit(nogil=True, cache=True)
def dmi_nb(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    n: int,
    starts: IndexArray,
    ends: IndexArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    plus = np.full(high.size, np.nan)
    minus = np.full(high.size, np.nan)
    adx = np.full(high.size, np.nan)
    for seg in range(starts.size):
        s, e = starts[seg], ends[seg]
        _dmi_segment(high[s:e], low[s:e], close[s:e], n, plus[s:e], minus[s:e], adx[s:e])
    return plus, minus, adx
