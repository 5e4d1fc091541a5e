"""The numba kernel of the single-asset backtest: one pass over the bars, no Python objects.

This module is the hot loop only. It trusts its inputs: :func:`morningstar.core.engine.simulate`
validates and converts them, then calls :func:`run_kernel`. The semantics are written down in
``docs/engine.md``; the short version, for bar ``t``:

``next_open`` timing
    1. open of ``t``: act on the signals of bar ``t-1`` (close the position, then open the new one);
    2. inside ``t``: stops and targets of the open position (gap at the open first, then high/low);
    3. close of ``t``: mark to market.

``close`` timing
    1. inside ``t``: stops and targets of the position carried into ``t``;
    2. close of ``t``: act on the signals of bar ``t`` at the close price, then mark to market.

Every fill pays ``fee_rate`` on its notional and gets a price made worse by the slippage fraction
``slip_fixed + slip_k * volatility[v]``, where ``v`` is the last bar whose close is known at the fill:
``t - 1`` for fills at the open of or inside bar ``t``, ``t`` for fills at its close.

Scalar settings travel in one float64 array (``P_*`` indices), the running state in another
(``S_*``) and the trades in a 2-D float64 array (``T_*`` columns): few arguments, so that the
helpers inline and no reference counting happens per call.

The per-position helpers (``_on_signals``, ``_open_position``, ``_check_stops``,
``_close_position``, ``_mark_open_trade``, ``_entry_quantity``, ``_slippage``) are shared with the
portfolio kernel (:mod:`morningstar.core.engine.portfolio_kernel`), which keeps one state row per
asset. The helpers that return a float return the change of cash of what they did; only
``_on_signals`` works on an account cash kept in ``state[_S_CASH]`` (the portfolio loads its
shared cash there for the call).
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
    "P_CLOSE_AT_END",
    "P_COUNT",
    "P_FEE_RATE",
    "P_FILL_AT_CLOSE",
    "P_INIT_CASH",
    "P_MIN_NOTIONAL",
    "P_MIN_SIZE",
    "P_QTY_STEP",
    "P_SIZE_CAP",
    "P_SIZE_MODE",
    "P_SIZE_VALUE",
    "P_SLIP_FIXED",
    "P_SLIP_K",
    "P_SL_FRAC",
    "P_SL_MODE",
    "P_TARGET_FIRST",
    "P_TP_FRAC",
    "P_TP_MODE",
    "P_TRAIL_FRAC",
    "P_TRAIL_MODE",
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
    "T_COLUMNS",
    "T_COUNT",
    "check_prices",
    "run_kernel",
]

F64 = npt.NDArray[np.float64]
F64_2D = npt.NDArray[np.float64]
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

# settings (params array)
P_INIT_CASH = 0
P_FEE_RATE = 1  # fee per fill, fraction of the notional
P_SLIP_FIXED = 2  # fixed slippage, fraction of the price
P_SLIP_K = 3  # volatility-scaled slippage factor
P_SIZE_MODE = 4  # SIZE_*
P_SIZE_VALUE = 5  # fraction of equity / notional / target volatility per bar
P_SIZE_CAP = 6  # maximum fraction of equity (vol target)
P_MIN_SIZE = 7
P_MIN_NOTIONAL = 8
P_QTY_STEP = 9
P_SL_MODE = 10  # STOP_*
P_SL_FRAC = 11
P_TP_MODE = 12
P_TP_FRAC = 13
P_TRAIL_MODE = 14
P_TRAIL_FRAC = 15
P_TARGET_FIRST = 16  # 1.0: when stop and target are both inside one bar, the target first
P_FILL_AT_CLOSE = 17  # 1.0: "close" timing, 0.0: "next_open"
P_CLOSE_AT_END = 18  # 1.0: close an open position at the last close
P_COUNT = 19

# running state (state array)
_S_CASH = 0
_S_SIDE = 1  # +1 long, -1 short, 0 flat
_S_QTY = 2  # absolute quantity of the open position
_S_K = 3  # row of the open (or last) trade
_S_N_TRADES = 4
_S_N_SKIPPED = 5
_S_SL = 6  # stop-loss level (±inf when none)
_S_TP = 7  # take-profit level (±inf when none)
_S_TRAIL = 8  # trailing distance: a fraction or a price distance
_S_EXTREME = 9  # best price since entry: highest high (long) / lowest low (short)
_S_COUNT = 10

# trade columns (trades array)
T_ENTRY_BAR = 0
T_EXIT_BAR = 1
T_SIDE = 2
T_SIZE = 3
T_ENTRY_PRICE = 4
T_EXIT_PRICE = 5
T_ENTRY_FEE = 6
T_EXIT_FEE = 7
T_PNL = 8
T_RETURN = 9
T_REASON = 10
T_COUNT = 11
#: Record field of each trade column, in column order.
T_COLUMNS = ("entry_bar", "exit_bar", "side", "size", "entry_price", "exit_price", "entry_fee",
             "exit_fee", "pnl", "return", "exit_reason")  # fmt: skip

_ROUND_EPS = 1e-9  # tolerance, in quantity steps, against 0.3 / 0.1 = 2.9999999999999996


@njit(nogil=True, cache=True, inline="always")
def _bad_bar(o: float, h: float, lo: float, c: float) -> int:
    """``OK`` or the ``ERR_*`` code of one bar's prices."""
    if not (math.isfinite(o) and math.isfinite(h) and math.isfinite(lo) and math.isfinite(c)):
        return ERR_NON_FINITE
    if not lo > 0.0:
        return ERR_NON_POSITIVE
    if lo > o or lo > c or h < o or h < c:
        return ERR_BAD_RANGE
    return OK


@njit(nogil=True, cache=True)
def check_prices(open_: F64, high: F64, low: F64, close: F64) -> tuple[int, int]:
    """``(OK, -1)``, or the ``ERR_*`` code and index of the first bar with invalid prices.

    Prices must be finite and > 0 with ``low <= open, close <= high``. The first pass has no
    early exit so that it vectorises; the second one runs only when something is wrong.
    """
    bad = False
    for t in range(close.shape[0]):
        o = open_[t]
        h = high[t]
        lo = low[t]
        c = close[t]
        # NaN fails every comparison, so the negation catches it too
        bad |= not (lo > 0.0 and lo <= o and lo <= c and o <= h and c <= h < np.inf)
    if not bad:
        return OK, -1
    for t in range(close.shape[0]):
        err = _bad_bar(open_[t], high[t], low[t], close[t])
        if err != OK:
            return err, t
    return OK, -1


@njit(nogil=True, cache=True, inline="always")
def _slippage(volatility: F64, bar: int, params: F64) -> float:
    """Slippage fraction of a fill whose latest known close is ``bar`` (NaN volatility adds 0)."""
    slip = float(params[P_SLIP_FIXED])
    slip_k = params[P_SLIP_K]
    if slip_k != 0.0:
        vol = volatility[bar]
        if not math.isnan(vol):
            slip += slip_k * vol
    return slip


@njit(nogil=True, cache=True, inline="always")
def _entry_quantity(price: float, base: float, cash: float, vol: float, params: F64) -> float:
    """Quantity to open at fill ``price``, or 0.0 when the order must be skipped.

    The size mode gives a wanted quantity; the fraction modes (fraction of equity, vol target)
    apply to ``base``: the cash of a flat single-asset account, the total equity of a portfolio.
    It is capped so that notional plus fee fit in ``cash``, rounded down to the quantity step,
    and dropped when below the minimums.
    """
    if not cash > 0.0:
        return 0.0
    mode = int(params[P_SIZE_MODE])
    value = params[P_SIZE_VALUE]
    if mode == SIZE_FRACTION:
        qty = value * base / price
    elif mode == SIZE_NOTIONAL:
        qty = value / price
    else:
        if not vol > 0.0:  # NaN, zero or negative volatility estimate: no sizing possible
            return 0.0
        fraction = min(value / vol, params[P_SIZE_CAP])
        qty = fraction * base / price
    fee_rate = params[P_FEE_RATE]
    unit_cost = price * (1.0 + fee_rate)
    max_qty = cash / unit_cost
    qty = min(qty, max_qty)
    step = params[P_QTY_STEP]
    if step > 0.0:
        steps = math.floor(qty / step + _ROUND_EPS)
        qty = steps * step
        while steps > 0 and qty * unit_cost > cash:
            steps -= 1
            qty = steps * step
    if not qty > 0.0 or qty < params[P_MIN_SIZE] or qty * price < params[P_MIN_NOTIONAL]:
        return 0.0
    return float(qty)


@njit(nogil=True, cache=True, inline="always")
def _close_position(
    bar: int, price: float, reason: int, state: F64, params: F64, trades: F64_2D
) -> float:
    """Close the open position at fill ``price`` in ``bar``: trade row and state.

    Returns:
        The change of cash: the sale's proceeds net of the fee for a long, minus the cost of
        buying back (fee included) for a short.
    """
    k = int(state[_S_K])
    side = state[_S_SIDE]
    size = state[_S_QTY]
    notional = size * price
    fee = notional * params[P_FEE_RATE]
    entry_value = size * trades[k, T_ENTRY_PRICE]
    cash_change: float
    if side > 0:
        cash_change = notional - fee
        pnl = (notional - entry_value) - trades[k, T_ENTRY_FEE] - fee
    else:
        cash_change = -(notional + fee)
        pnl = (entry_value - notional) - trades[k, T_ENTRY_FEE] - fee
    trades[k, T_EXIT_BAR] = bar
    trades[k, T_EXIT_PRICE] = price
    trades[k, T_EXIT_FEE] = fee
    trades[k, T_PNL] = pnl
    trades[k, T_RETURN] = pnl / entry_value
    trades[k, T_REASON] = reason
    state[_S_SIDE] = 0.0
    state[_S_QTY] = 0.0
    return cash_change


@njit(nogil=True, cache=True, inline="always")
def _clean_signals(le: bool, lx: bool, se: bool, sx: bool) -> tuple[bool, bool, bool, bool]:
    """The four signals of one bar with conflicts removed.

    Entry and exit of one side on one bar cancel each other; so do long and short entries.
    """
    if le and lx:
        le = False
        lx = False
    if se and sx:
        se = False
        sx = False
    if le and se:
        le = False
        se = False
    return le, lx, se, sx


@njit(nogil=True, cache=True, inline="always")
def _open_position(
    t: int,
    s: int,
    ref: float,
    sign: float,
    base: float,
    cash: float,
    k: int,
    volatility: F64,
    stop_dist: F64_2D,
    params: F64,
    state: F64,
    trades: F64_2D,
) -> float:
    """Open a position of side ``sign`` in bar ``t`` at price ``ref`` on the signal of bar ``s``.

    The position (flat before) is sized from ``base`` and capped by ``cash`` (see
    :func:`_entry_quantity`), written to trade row ``k`` and protected by the stop levels of the
    settings or of the signal bar's distances. An order that cannot be filled is counted in
    ``state[_S_N_SKIPPED]``.

    Returns:
        The change of cash: minus the notional and the fee for a long; the short sale's proceeds
        net of the fee for a short. 0.0 when the entry is skipped.
    """
    fill = ref * (1.0 + sign * _slippage(volatility, s, params))
    vol = volatility[s] if volatility.shape[0] > 0 else np.nan
    qty = _entry_quantity(fill, base, cash, vol, params)
    if qty == 0.0:
        state[_S_N_SKIPPED] += 1.0
        return 0.0
    notional = qty * fill
    fee: float = notional * params[P_FEE_RATE]
    state[_S_N_TRADES] += 1.0
    state[_S_K] = k
    state[_S_SIDE] = sign
    state[_S_QTY] = qty
    trades[k, T_ENTRY_BAR] = t
    trades[k, T_SIDE] = sign
    trades[k, T_SIZE] = qty
    trades[k, T_ENTRY_PRICE] = fill
    trades[k, T_ENTRY_FEE] = fee
    # stop levels: from the entry fill price, or from the signal bar's distances (NaN: none)
    sl_level = -np.inf * sign
    tp_level = np.inf * sign
    trail = 0.0
    sl_mode = int(params[P_SL_MODE])
    if sl_mode == STOP_FRACTION:
        sl_level = fill * (1.0 - sign * params[P_SL_FRAC])
    elif sl_mode == STOP_DISTANCE and not math.isnan(stop_dist[s, 0]):
        sl_level = fill - sign * stop_dist[s, 0]
    tp_mode = int(params[P_TP_MODE])
    if tp_mode == STOP_FRACTION:
        tp_level = fill * (1.0 + sign * params[P_TP_FRAC])
    elif tp_mode == STOP_DISTANCE and not math.isnan(stop_dist[s, 1]):
        tp_level = fill + sign * stop_dist[s, 1]
    trail_mode = int(params[P_TRAIL_MODE])
    if trail_mode == STOP_FRACTION:
        trail = params[P_TRAIL_FRAC]
    elif trail_mode == STOP_DISTANCE:
        d = stop_dist[s, 2]
        trail = np.inf if math.isnan(d) else d  # NaN: a trailing level that is never reached
    state[_S_SL] = sl_level
    state[_S_TP] = tp_level
    state[_S_TRAIL] = trail
    state[_S_EXTREME] = fill
    return -(sign * notional + fee)


@njit(nogil=True, cache=True, inline="always")
def _on_signals(
    t: int,
    s: int,
    ref: float,
    allow_entry: bool,
    long_entries: B,
    long_exits: B,
    short_entries: B,
    short_exits: B,
    volatility: F64,
    stop_dist: F64_2D,
    params: F64,
    state: F64,
    trades: F64_2D,
) -> None:
    """Act in bar ``t`` at price ``ref`` on the signals of bar ``s``: exit first, then entry.

    The account's cash is ``state[_S_CASH]``: an exit credits it, an entry is sized on it and
    capped by it (a flat single-asset account: equity = cash).
    """
    le, lx, se, sx = _clean_signals(
        long_entries[s], long_exits[s], short_entries[s], short_exits[s]
    )
    # 1) close the position on an exit signal or an opposite entry
    side = state[_S_SIDE]
    if (side > 0 and (lx or se)) or (side < 0 and (sx or le)):
        slip = _slippage(volatility, s, params)
        state[_S_CASH] += _close_position(t, ref * (1.0 - side * slip), REASON_SIGNAL, state,
                                          params, trades)  # fmt: skip
    # 2) then open the new position (one at a time: an entry while in position is ignored)
    if state[_S_SIDE] != 0.0 or not (le or se) or not allow_entry:
        return
    cash = state[_S_CASH]
    state[_S_CASH] += _open_position(t, s, ref, 1.0 if le else -1.0, cash, cash,
                                     int(state[_S_N_TRADES]), volatility, stop_dist, params,
                                     state, trades)  # fmt: skip


@njit(nogil=True, cache=True, inline="always")
def _check_stops(
    t: int,
    v: int,
    o: float,
    h: float,
    lo: float,
    gap_only: bool,
    volatility: F64,
    params: F64,
    state: F64,
    trades: F64_2D,
) -> float:
    """Stops and target of the open position inside bar ``t``; returns the change of cash.

    Order: a gap through the stop (or the trailing stop) or the target at the open fills at the
    open; then the bar's range: the stop level (the tighter of stop-loss and the trailing level
    of the previous bars) and the target, the adverse one first unless ``P_TARGET_FIRST``;
    then, if still open, the trailing extreme ratchets with this bar's high (long) / low (short).
    ``gap_only`` stops after the gap test (the portfolio's exits at the open). ``v`` is the
    last bar whose close is known (its volatility sets the slippage).
    """
    sign = state[_S_SIDE]
    stop_level = state[_S_SL]
    tp_level = state[_S_TP]
    stop_reason = REASON_STOP_LOSS
    trail_mode = int(params[P_TRAIL_MODE])
    if trail_mode != STOP_NONE:
        if trail_mode == STOP_FRACTION:
            trail_level = state[_S_EXTREME] * (1.0 - sign * state[_S_TRAIL])
        else:
            trail_level = state[_S_EXTREME] - sign * state[_S_TRAIL]
        if sign * (trail_level - stop_level) > 0.0:
            stop_level = trail_level
            stop_reason = REASON_TRAILING_STOP
    # prices times sign: "higher" is "better for the trade" for both sides
    fs = sign * stop_level
    ft = sign * tp_level
    fo = sign * o
    worst = lo if sign > 0 else -h
    best = h if sign > 0 else -lo
    exit_ref = 0.0
    reason = -1
    if fo <= fs:  # gap through the stop: filled at the open
        exit_ref = o
        reason = stop_reason
    elif fo >= ft:  # gap through the target: filled at the open
        exit_ref = o
        reason = REASON_TAKE_PROFIT
    elif gap_only:
        return 0.0
    else:
        stop_hit = worst <= fs
        target_hit = best >= ft
        if stop_hit and not (target_hit and params[P_TARGET_FIRST] != 0.0):
            exit_ref = stop_level
            reason = stop_reason
        elif target_hit:
            exit_ref = tp_level
            reason = REASON_TAKE_PROFIT
    if reason >= 0:
        slip = _slippage(volatility, v, params)
        return _close_position(t, exit_ref * (1.0 - sign * slip), reason, state, params, trades)
    if trail_mode != STOP_NONE:
        if sign > 0:
            state[_S_EXTREME] = max(state[_S_EXTREME], h)
        else:
            state[_S_EXTREME] = min(state[_S_EXTREME], lo)
    return 0.0


@njit(nogil=True, cache=True, inline="always")
def _mark_open_trade(bar: int, price: float, state: F64, trades: F64_2D) -> None:
    """Report the position still open after the data as a trade marked at ``price`` (the last
    close, bar ``bar``): no exit fee, unrealised P&L, reason ``REASON_OPEN``."""
    k = int(state[_S_K])
    size = state[_S_QTY]
    entry_value = size * trades[k, T_ENTRY_PRICE]
    value = size * price
    pnl = (value - entry_value) if state[_S_SIDE] > 0 else (entry_value - value)
    pnl -= trades[k, T_ENTRY_FEE]
    trades[k, T_EXIT_BAR] = bar
    trades[k, T_EXIT_PRICE] = price
    trades[k, T_EXIT_FEE] = 0.0
    trades[k, T_PNL] = pnl
    trades[k, T_RETURN] = pnl / entry_value
    trades[k, T_REASON] = REASON_OPEN


@njit(nogil=True, cache=True)
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
    stop_dist: F64_2D,
    params: F64,
    equity: F64,
    position: F64,
    trades: F64_2D,
) -> tuple[int, int, int, int]:
    """Simulate one asset bar by bar, writing into preallocated outputs.

    Args:
        open_, high, low, close: prices per bar (float64, length ``n``).
        long_entries, long_exits, short_entries, short_exits: signals known at each bar's close.
        volatility: per-bar volatility estimate (fraction of price) known at the bar's close, or
            an empty array when neither vol-scaled slippage nor vol-target sizing is used.
        stop_dist: ``(n, 3)`` price distances of stop-loss, take-profit and trailing stop for
            the ``STOP_DISTANCE`` modes (read at the entry's signal bar), else ``(0, 3)``.
        params: the settings, ``P_COUNT`` values at the ``P_*`` indices.
        equity, position: outputs, one value per bar.
        trades: output, ``(capacity, T_COUNT)``; capacity at least the number of entry signals.

    Returns:
        ``(status, bad_bar, n_trades, n_skipped)``: ``status`` is ``OK`` or the ``ERR_*`` code of
        the prices of bar ``bad_bar``; the first ``n_trades`` rows of ``trades`` are valid.
    """
    n = close.shape[0]
    status, bad_bar = check_prices(open_, high, low, close)
    if status != OK:
        return status, bad_bar, 0, 0

    has_stops = (
        params[P_SL_MODE] != STOP_NONE
        or params[P_TP_MODE] != STOP_NONE
        or params[P_TRAIL_MODE] != STOP_NONE
    )
    fill_at_close = params[P_FILL_AT_CLOSE] != 0.0
    close_at_end = params[P_CLOSE_AT_END] != 0.0
    lag = 0 if fill_at_close else 1  # bar t acts on the signals of bar t - lag
    state = np.zeros(_S_COUNT, dtype=np.float64)
    state[_S_CASH] = params[P_INIT_CASH]
    state[_S_K] = -1.0

    trail_mode = int(params[P_TRAIL_MODE])
    t = 0
    while t < n:
        # fast paths: skip to the next bar where something may happen (a signal to act on, a
        # level touched, the last bar with close_at_end), only marking to market on the way
        cash = state[_S_CASH]
        sign = state[_S_SIDE]
        signed = sign * state[_S_QTY]
        if sign == 0.0 or not has_stops:
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
        else:
            # in position with stops: prices times sign, so that higher is better for the
            # trade; a gap (open beyond a level) implies the low/high is beyond it too
            fs_sl = sign * state[_S_SL]
            ft = sign * state[_S_TP]
            trail = state[_S_TRAIL]
            extreme = state[_S_EXTREME]
            while t < n:
                s = t - lag
                if s >= 0 and (
                    long_entries[s] or long_exits[s] or short_entries[s] or short_exits[s]
                ):
                    break
                if close_at_end and t == n - 1:
                    break
                fs = fs_sl
                if trail_mode == STOP_FRACTION:
                    fs = max(fs, sign * extreme * (1.0 - sign * trail))
                elif trail_mode == STOP_DISTANCE:
                    fs = max(fs, sign * (extreme - sign * trail))
                if sign > 0.0:
                    worst = low[t]
                    best = high[t]
                else:
                    worst = -high[t]
                    best = -low[t]
                if worst <= fs or best >= ft:
                    break  # a level is touched: the full step below decides what happens
                if trail_mode != STOP_NONE:
                    extreme = max(extreme, high[t]) if sign > 0.0 else min(extreme, low[t])
                position[t] = signed
                equity[t] = cash + signed * close[t]
                t += 1
            state[_S_EXTREME] = extreme
        if t == n:
            break

        # full step for bar t
        c = close[t]
        # 1) next_open timing: act at the open of t on the signals of t-1
        if not fill_at_close and t > 0:
            _on_signals(t, t - 1, open_[t], True, long_entries, long_exits, short_entries,
                        short_exits, volatility, stop_dist, params, state, trades)  # fmt: skip
        # 2) stops and target inside bar t (also on the entry bar of a next_open fill)
        if state[_S_SIDE] != 0.0 and has_stops:
            state[_S_CASH] += _check_stops(t, t - 1, open_[t], high[t], low[t], False,
                                           volatility, params, state, trades)  # fmt: skip
        # 3) close timing: act at the close of t on the signals of t; with close_at_end no
        #    position is opened at the last close (it would be closed at once)
        if fill_at_close:
            allow_entry = not (close_at_end and t == n - 1)
            _on_signals(t, t, c, allow_entry, long_entries, long_exits, short_entries,
                        short_exits, volatility, stop_dist, params, state, trades)  # fmt: skip
        # 4) end of data: optionally close at the last close
        if close_at_end and t == n - 1 and state[_S_SIDE] != 0.0:
            slip = _slippage(volatility, t, params)
            state[_S_CASH] += _close_position(t, c * (1.0 - state[_S_SIDE] * slip),
                                              REASON_END_OF_DATA, state, params, trades)  # fmt: skip
        signed = state[_S_SIDE] * state[_S_QTY]
        position[t] = signed
        equity[t] = state[_S_CASH] + signed * c
        t += 1

    if state[_S_SIDE] != 0.0:  # still open: marked to market at the last close, no exit fee
        _mark_open_trade(n - 1, close[n - 1], state, trades)
    return OK, -1, int(state[_S_N_TRADES]), int(state[_S_N_SKIPPED])
