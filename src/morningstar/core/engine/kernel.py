"""The numba kernel of the single-asset backtest: one pass over the bars, no Python objects.

This module is the hot loop only. It trusts its inputs: :func:`morningstar.core.engine.simulate`
validates and converts them, then calls :func:`run_kernel`. The semantics are written down in
``docs/engine.md``; the short version, for bar ``t``:

``next_open`` timing (``fill_at_close=False``)
    1. open of ``t``: act on the signals of bar ``t-1`` (close the position, then open the new one);
    2. inside ``t``: stops and targets of the open position (gap at the open first, then high/low);
    3. close of ``t``: mark to market.

``close`` timing (``fill_at_close=True``)
    1. inside ``t``: stops and targets of the position carried into ``t``;
    2. close of ``t``: act on the signals of bar ``t`` at the close price, then mark to market.

Every fill pays ``fee_rate`` on its notional and gets a price made worse by the slippage fraction
``slip_fixed + slip_k * volatility[v]``, where ``v`` is the last bar whose close is known at the fill:
``t - 1`` for fills at the open of or inside bar ``t``, ``t`` for fills at its close.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "ERR_BAD_RANGE",
    "ERR_NON_FINITE",
    "ERR_NON_POSITIVE",
    "OK",
    "REASON_END_OF_DATA",
    "REASON_OPEN",
    "REASON_SIGNAL",
    "REASON_STOP_LOSS",
    "REASON_TAKE_PROFIT",
    "REASON_TRAILING_STOP",
    "SIZE_FRACTION",
    "SIZE_NOTIONAL",
    "SIZE_VOL_TARGET",
    "STOP_DISTANCE",
    "STOP_FRACTION",
    "STOP_NONE",
    "run_kernel",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

# exit reasons (mirrored by ExitReason in types.py)
REASON_OPEN = 0
REASON_SIGNAL = 1
REASON_STOP_LOSS = 2
REASON_TAKE_PROFIT = 3
REASON_TRAILING_STOP = 4
REASON_END_OF_DATA = 5

# sizing modes
SIZE_FRACTION = 0
SIZE_NOTIONAL = 1
SIZE_VOL_TARGET = 2

# stop modes
STOP_NONE = 0
STOP_FRACTION = 1
STOP_DISTANCE = 2

# status codes
OK = 0
ERR_NON_FINITE = 1
ERR_NON_POSITIVE = 2
ERR_BAD_RANGE = 3

_ROUND_EPS = 1e-9  # absolute tolerance, in quantity steps, against 0.3 / 0.1 = 2.9999999999999996


@njit(cache=True)
def _bad_bar(o: float, h: float, lo: float, c: float) -> int:
    """``OK`` or the ``ERR_*`` code of a bar's prices (nearly free inside the main pass)."""
    if not (math.isfinite(o) and math.isfinite(h) and math.isfinite(lo) and math.isfinite(c)):
        return ERR_NON_FINITE
    if not lo > 0.0:
        return ERR_NON_POSITIVE
    if lo > o or lo > c or h < o or h < c:
        return ERR_BAD_RANGE
    return OK


@njit(cache=True)
def check_prices(open_: F64, high: F64, low: F64, close: F64) -> tuple[int, int]:
    """``(OK, -1)``, or the ``ERR_*`` code and index of the first bar with invalid prices.

    The first pass has no early exit so that it vectorises; the second one runs only on error.
    """
    bad = False
    for t in range(close.shape[0]):
        o = open_[t]
        h = high[t]
        lo = low[t]
        c = close[t]
        # NaN makes every comparison False, so "not (a <= b)" also catches NaN
        bad |= not (lo > 0.0 and lo <= o and lo <= c and o <= h and c <= h and h < np.inf)
    if not bad:
        return OK, -1
    for t in range(close.shape[0]):
        err = _bad_bar(open_[t], high[t], low[t], close[t])
        if err != OK:
            return err, t
    return OK, -1


@njit(cache=True)
def _slippage(volatility: F64, bar: int, slip_fixed: float, slip_k: float) -> float:
    """Slippage fraction for a fill whose latest known close is ``bar`` (NaN volatility adds 0)."""
    slip = slip_fixed
    if slip_k != 0.0:
        vol = volatility[bar]
        if vol == vol:
            slip += slip_k * vol
    return slip


@njit(cache=True)
def _entry_quantity(
    price: float,
    cash: float,
    fee_rate: float,
    size_mode: int,
    size_value: float,
    size_cap: float,
    vol: float,
    min_size: float,
    min_notional: float,
    qty_step: float,
) -> float:
    """Quantity to open at ``price`` (fill price), or 0.0 when the order must be skipped."""
    if not cash > 0.0:
        return 0.0
    if size_mode == SIZE_FRACTION:
        qty = size_value * cash / price
    elif size_mode == SIZE_NOTIONAL:
        qty = size_value / price
    else:
        if not vol > 0.0:  # NaN, zero or negative volatility estimate: no sizing possible
            return 0.0
        fraction = size_value / vol
        if fraction > size_cap:
            fraction = size_cap
        qty = fraction * cash / price
    unit_cost = price * (1.0 + fee_rate)
    max_qty = cash / unit_cost
    if qty > max_qty:
        qty = max_qty
    if qty_step > 0.0:
        steps = math.floor(qty / qty_step + _ROUND_EPS)
        qty = steps * qty_step
        while steps > 0 and qty * unit_cost > cash:
            steps -= 1
            qty = steps * qty_step
    if not qty > 0.0 or qty < min_size or qty * price < min_notional:
        return 0.0
    return qty


@njit(cache=True)
def _close_trade(
    k: int,
    bar: int,
    price: float,
    fee_rate: float,
    reason: int,
    side: int,
    size: float,
    cash: float,
    t_exit_bar: I64,
    t_entry_price: F64,
    t_exit_price: F64,
    t_entry_fee: F64,
    t_exit_fee: F64,
    t_pnl: F64,
    t_ret: F64,
    t_reason: I8,
) -> float:
    """Write the exit of trade ``k`` at fill ``price`` and return the new cash balance."""
    notional = size * price
    fee = notional * fee_rate
    entry_price = t_entry_price[k]
    entry_value = size * entry_price
    if side > 0:
        cash += notional - fee
        pnl = (notional - entry_value) - t_entry_fee[k] - fee
    else:
        cash -= notional + fee
        pnl = (entry_value - notional) - t_entry_fee[k] - fee
    t_exit_bar[k] = bar
    t_exit_price[k] = price
    t_exit_fee[k] = fee
    t_pnl[k] = pnl
    t_ret[k] = pnl / entry_value
    t_reason[k] = reason
    return cash


@njit(cache=True)
def _on_signals(
    t: int,
    s: int,
    ref: float,
    le: bool,
    lx: bool,
    se: bool,
    sx: bool,
    allow_entry: bool,
    cash: float,
    side: int,
    qty: float,
    k: int,
    n_trades: int,
    n_skipped: int,
    volatility: F64,
    sl_dist: F64,
    tp_dist: F64,
    trail_dist: F64,
    fee_rate: float,
    slip_fixed: float,
    slip_k: float,
    size_mode: int,
    size_value: float,
    size_cap: float,
    min_size: float,
    min_notional: float,
    qty_step: float,
    sl_mode: int,
    sl_frac: float,
    tp_mode: int,
    tp_frac: float,
    trail_mode: int,
    trail_frac: float,
    t_entry_bar: I64,
    t_exit_bar: I64,
    t_side: I8,
    t_size: F64,
    t_entry_price: F64,
    t_exit_price: F64,
    t_entry_fee: F64,
    t_exit_fee: F64,
    t_pnl: F64,
    t_ret: F64,
    t_reason: I8,
) -> tuple[float, int, float, int, int, int, float, float, float, float]:
    """Act on the signals of bar ``s`` at price ``ref`` in bar ``t``: exit, then entry.

    Returns the new ``(cash, side, qty, k, n_trades, n_skipped, sl_level, tp_level, trail_d,
    extreme)``; the last four are meaningful only when a position is open.
    """
    if le and lx:  # entry and exit of one side on one bar: both ignored
        le = False
        lx = False
    if se and sx:
        se = False
        sx = False
    if le and se:  # long and short entries on one bar: both ignored
        le = False
        se = False
    sl_level = 0.0
    tp_level = 0.0
    trail_d = 0.0
    extreme = 0.0
    # 1) close the position on an exit signal or an opposite entry
    if (side > 0 and (lx or se)) or (side < 0 and (sx or le)):
        slip = _slippage(volatility, s, slip_fixed, slip_k)
        fill = ref * (1.0 - slip) if side > 0 else ref * (1.0 + slip)
        cash = _close_trade(k, t, fill, fee_rate, REASON_SIGNAL, side, qty, cash, t_exit_bar,
                            t_entry_price, t_exit_price, t_entry_fee, t_exit_fee, t_pnl, t_ret,
                            t_reason)  # fmt: skip
        side = 0
        qty = 0.0
    # 2) then open the new position (one at a time: an entry while in position is ignored)
    if side != 0 or not (le or se) or not allow_entry:
        return cash, side, qty, k, n_trades, n_skipped, sl_level, tp_level, trail_d, extreme
    new_side = 1 if le else -1
    slip = _slippage(volatility, s, slip_fixed, slip_k)
    fill = ref * (1.0 + slip) if new_side > 0 else ref * (1.0 - slip)
    vol_s = volatility[s] if volatility.shape[0] > 0 else np.nan
    q = _entry_quantity(fill, cash, fee_rate, size_mode, size_value, size_cap, vol_s, min_size,
                        min_notional, qty_step)  # fmt: skip
    if q == 0.0:
        return cash, side, qty, k, n_trades, n_skipped + 1, sl_level, tp_level, trail_d, extreme
    notional = q * fill
    fee = notional * fee_rate
    if new_side > 0:
        cash -= notional + fee
    else:
        cash += notional - fee
    k = n_trades
    t_entry_bar[k] = t
    t_side[k] = new_side
    t_size[k] = q
    t_entry_price[k] = fill
    t_entry_fee[k] = fee
    # stop levels: from the entry fill price, or from the signal bar's distances
    sign = float(new_side)
    sl_level = -np.inf * sign
    tp_level = np.inf * sign
    if sl_mode == STOP_FRACTION:
        sl_level = fill * (1.0 - sign * sl_frac)
    elif sl_mode == STOP_DISTANCE:
        d = sl_dist[s]
        if d == d:
            sl_level = fill - sign * d
    if tp_mode == STOP_FRACTION:
        tp_level = fill * (1.0 + sign * tp_frac)
    elif tp_mode == STOP_DISTANCE:
        d = tp_dist[s]
        if d == d:
            tp_level = fill + sign * d
    if trail_mode == STOP_FRACTION:
        trail_d = trail_frac
    elif trail_mode == STOP_DISTANCE:
        d = trail_dist[s]
        trail_d = d if d == d else np.inf  # NaN: a trailing level that is never reached
    return cash, new_side, q, k, n_trades + 1, n_skipped, sl_level, tp_level, trail_d, fill


@njit(cache=True)
def run_kernel(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    long_entries: B,
    long_exits: B,
    short_entries: B,
    short_exits: B,
    volatility: F64,
    sl_dist: F64,
    tp_dist: F64,
    trail_dist: F64,
    init_cash: float,
    fee_rate: float,
    slip_fixed: float,
    slip_k: float,
    size_mode: int,
    size_value: float,
    size_cap: float,
    min_size: float,
    min_notional: float,
    qty_step: float,
    sl_mode: int,
    sl_frac: float,
    tp_mode: int,
    tp_frac: float,
    trail_mode: int,
    trail_frac: float,
    target_first: bool,
    fill_at_close: bool,
    close_at_end: bool,
    equity: F64,
    position: F64,
    t_entry_bar: I64,
    t_exit_bar: I64,
    t_side: I8,
    t_size: F64,
    t_entry_price: F64,
    t_exit_price: F64,
    t_entry_fee: F64,
    t_exit_fee: F64,
    t_pnl: F64,
    t_ret: F64,
    t_reason: I8,
) -> tuple[int, int, int, int]:
    """Simulate one asset bar by bar, writing into preallocated outputs.

    Args:
        open_, high, low, close: prices per bar (float64, same length ``n``).
        long_entries, long_exits, short_entries, short_exits: signals known at each bar's close.
        volatility: per-bar volatility estimate (fraction of price) known at the bar's close, or an
            empty array when neither vol-scaled slippage nor vol-target sizing is used.
        sl_dist, tp_dist, trail_dist: per-bar price distances for stops in ``STOP_DISTANCE`` mode
            (read at the signal bar of the entry), else empty arrays.
        init_cash: starting cash. fee_rate: fee per fill, fraction of notional.
        slip_fixed, slip_k: slippage fraction ``slip_fixed + slip_k * volatility``.
        size_mode, size_value, size_cap: sizing (fraction of equity / notional in cash / target
            volatility per bar, capped at ``size_cap`` of equity).
        min_size, min_notional, qty_step: order limits (0 disables each one).
        sl_mode, sl_frac, tp_mode, tp_frac, trail_mode, trail_frac: stop rules.
        target_first: when a stop and the target are both inside one bar, assume the target first.
        fill_at_close: ``close`` timing instead of ``next_open``.
        close_at_end: close an open position at the last close (reason end_of_data).
        equity, position: outputs, one value per bar.
        t_*: trade outputs, at least as long as the number of entries that can happen.

    Returns:
        ``(status, bad_bar, n_trades, n_skipped)``: ``status`` is ``OK`` or an ``ERR_*`` code for
        the prices of bar ``bad_bar``; the first ``n_trades`` rows of the trade arrays are valid.
    """
    n = close.shape[0]
    has_stops = sl_mode != STOP_NONE or tp_mode != STOP_NONE or trail_mode != STOP_NONE
    cash = init_cash
    side = 0  # +1 long, -1 short, 0 flat
    qty = 0.0  # absolute quantity of the open position
    k = -1  # index of the open (or last) trade
    n_trades = 0
    n_skipped = 0
    sl_level = 0.0
    tp_level = 0.0
    trail_d = 0.0  # trailing distance: a fraction (fraction mode) or a price distance
    extreme = 0.0  # best price since entry: highest high (long) / lowest low (short)

    status, bad_bar = check_prices(open_, high, low, close)
    if status != OK:
        return status, bad_bar, 0, 0

    lag = 0 if fill_at_close else 1  # signals of bar t - lag are acted on in bar t
    t = 0
    while t < n:
        # fast path: no signal to act on in bar t and no stop to watch: only mark to market
        if side == 0 or not has_stops:
            signed = -qty if side < 0 else qty
            while t < n:
                s = t - lag
                if s >= 0 and (
                    long_entries[s] or long_exits[s] or short_entries[s] or short_exits[s]
                ):
                    break
                if close_at_end and t == n - 1:
                    break
                position[t] = signed
                equity[t] = cash + signed * close[t]
                t += 1
            if t == n:
                break

        o = open_[t]
        h = high[t]
        lo = low[t]
        c = close[t]

        # 1) next_open timing: act at the open of t on the signals of t-1
        if not fill_at_close and t > 0:
            s = t - 1
            if long_entries[s] or long_exits[s] or short_entries[s] or short_exits[s]:
                # fmt: off
                (cash, side, qty, k, n_trades, n_skipped, sl_level, tp_level, trail_d,
                 extreme) = _on_signals(
                    t, s, o, long_entries[s], long_exits[s], short_entries[s], short_exits[s],
                    True, cash, side, qty, k, n_trades, n_skipped, volatility, sl_dist, tp_dist,
                    trail_dist, fee_rate, slip_fixed, slip_k, size_mode, size_value, size_cap,
                    min_size, min_notional, qty_step, sl_mode, sl_frac, tp_mode, tp_frac,
                    trail_mode, trail_frac, t_entry_bar, t_exit_bar, t_side, t_size,
                    t_entry_price, t_exit_price, t_entry_fee, t_exit_fee, t_pnl, t_ret, t_reason)
                # fmt: on

        # 2) stops and targets inside bar t: gap at the open first, then the high/low range;
        #    the trailing level comes from the previous bars, then ratchets with this bar
        if side != 0 and has_stops:
            sign = float(side)
            stop_level = sl_level
            stop_reason = REASON_STOP_LOSS
            if trail_mode != STOP_NONE:
                if trail_mode == STOP_FRACTION:
                    trail_level = extreme * (1.0 - sign * trail_d)
                else:
                    trail_level = extreme - sign * trail_d
                if sign * (trail_level - stop_level) > 0.0:
                    stop_level = trail_level
                    stop_reason = REASON_TRAILING_STOP
            # in the trade's favourable direction, "price" below is sign * price
            fo = sign * o
            fs = sign * stop_level
            ft = sign * tp_level
            worst = sign * lo if side > 0 else sign * h  # most adverse price of the bar
            best = sign * h if side > 0 else sign * lo  # most favourable price of the bar
            exit_ref = 0.0
            reason = -1
            if fo <= fs:  # gap through the stop: filled at the open
                exit_ref = o
                reason = stop_reason
            elif fo >= ft:  # gap through the target: filled at the open
                exit_ref = o
                reason = REASON_TAKE_PROFIT
            else:
                stop_hit = worst <= fs
                target_hit = best >= ft
                if stop_hit and not (target_hit and target_first):
                    exit_ref = stop_level
                    reason = stop_reason
                elif target_hit:
                    exit_ref = tp_level
                    reason = REASON_TAKE_PROFIT
            if reason >= 0:
                slip = _slippage(volatility, t - 1, slip_fixed, slip_k)
                cash = _close_trade(k, t, exit_ref * (1.0 - sign * slip), fee_rate, reason, side,
                                    qty, cash, t_exit_bar, t_entry_price, t_exit_price,
                                    t_entry_fee, t_exit_fee, t_pnl, t_ret, t_reason)  # fmt: skip
                side = 0
                qty = 0.0
            elif trail_mode != STOP_NONE:
                if side > 0:
                    extreme = max(extreme, h)
                else:
                    extreme = min(extreme, lo)

        # 3) close timing: act at the close of t on the signals of t; with close_at_end no
        #    position is opened at the last close (it would be closed at once)
        if fill_at_close:
            if long_entries[t] or long_exits[t] or short_entries[t] or short_exits[t]:
                allow_entry = not (close_at_end and t == n - 1)
                # fmt: off
                (cash, side, qty, k, n_trades, n_skipped, sl_level, tp_level, trail_d,
                 extreme) = _on_signals(
                    t, t, c, long_entries[t], long_exits[t], short_entries[t], short_exits[t],
                    allow_entry, cash, side, qty, k, n_trades, n_skipped,
                    volatility, sl_dist, tp_dist, trail_dist, fee_rate, slip_fixed, slip_k,
                    size_mode, size_value, size_cap, min_size, min_notional, qty_step, sl_mode,
                    sl_frac, tp_mode, tp_frac, trail_mode, trail_frac, t_entry_bar, t_exit_bar,
                    t_side, t_size, t_entry_price, t_exit_price, t_entry_fee, t_exit_fee, t_pnl,
                    t_ret, t_reason)
                # fmt: on

        # 4) end of data: optionally close at the last close
        if close_at_end and t == n - 1 and side != 0:
            slip = _slippage(volatility, t, slip_fixed, slip_k)
            cash = _close_trade(k, t, c * (1.0 - side * slip), fee_rate, REASON_END_OF_DATA, side,
                                qty, cash, t_exit_bar, t_entry_price, t_exit_price, t_entry_fee,
                                t_exit_fee, t_pnl, t_ret, t_reason)  # fmt: skip
            side = 0
            qty = 0.0

        signed = -qty if side < 0 else qty
        position[t] = signed
        equity[t] = cash + signed * c
        t += 1

    if side != 0:  # still open: marked to market at the last close, no exit fee
        last = n - 1
        c = close[last]
        entry_value = qty * t_entry_price[k]
        value = qty * c
        pnl = (value - entry_value) if side > 0 else (entry_value - value)
        pnl -= t_entry_fee[k]
        t_exit_bar[k] = last
        t_exit_price[k] = c
        t_exit_fee[k] = 0.0
        t_pnl[k] = pnl
        t_ret[k] = pnl / entry_value
        t_reason[k] = REASON_OPEN
    return OK, -1, n_trades, n_skipped
