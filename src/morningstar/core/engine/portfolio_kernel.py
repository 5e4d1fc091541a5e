"""The numba kernel of the portfolio backtest: several assets, one shared cash balance.

This module is the hot loop only; :func:`morningstar.core.engine.simulate_portfolio` validates
the inputs. Arrays are ``(n_bars, n_assets)`` on the union of the assets' bar times; an asset
with no bar at a time has NaN prices there. Each asset keeps the single-asset kernel's state row
(side, quantity, trade row, stop levels) and every per-position step is the single-asset
kernel's own helper (:mod:`morningstar.core.engine.kernel`), so one asset behaves exactly as in
:func:`~morningstar.core.engine.kernel.run_kernel`. The semantics are in ``docs/engine.md``
("Portfolio mode"); the short version, for bar ``t`` (an asset takes part only where it has a
bar; ``s`` is its previous bar):

``next_open`` timing
    1. open: exits on each asset's signals of ``s``, in asset order;
    2. open: stops and targets that the open gaps through (positions carried into ``t``);
    3. open: entries, in asset order, sized on the total equity marked at the opens and capped
       by the free cash;
    4. inside ``t``: stops and targets of every position (those opened at this open included);
    5. close: optional end-of-data exits, then mark to market.

``close`` timing
    1. inside ``t``: stops and targets of the positions carried into ``t``;
    2. close: exits on the signals of ``t``; 3. close: entries; 4. end of data, mark to market.

Free cash = cash − 2 × Σ (size × entry price) over the open shorts: a short sale's proceeds stay
in the cash but are locked with a collateral of the same amount (vectorbt's ``free_cash``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from morningstar.core.engine.kernel import (
    _S_CASH,
    _S_COUNT,
    _S_K,
    _S_N_SKIPPED,
    _S_QTY,
    _S_SIDE,
    OK,
    P_CLOSE_AT_END,
    P_FILL_AT_CLOSE,
    P_INIT_CASH,
    P_SL_MODE,
    P_TP_MODE,
    P_TRAIL_MODE,
    REASON_END_OF_DATA,
    STOP_NONE,
    T_ENTRY_PRICE,
    _bad_bar,
    _check_stops,
    _clean_signals,
    _close_position,
    _mark_open_trade,
    _on_signals,
    _open_position,
    _slippage,
)

__all__ = ["DUST", "ERR_NO_BARS", "check_portfolio_prices", "run_portfolio_kernel"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B2 = npt.NDArray[np.bool_]

#: Status code: an asset has no bar at all (every price NaN).
ERR_NO_BARS = 9
#: Free cash at or below this fraction of the equity counts as none: it is the rounding dust a
#: cash-capped entry leaves behind, not money to open a position with.
DUST = 1e-9


@njit(nogil=True, cache=True)
def check_portfolio_prices(open_: F64, high: F64, low: F64, close: F64) -> tuple[int, int, int]:
    """``(OK, -1, -1)``, or the ``ERR_*`` code, bar and asset of the first invalid price.

    A bar whose four prices are all NaN is a missing bar (the asset does not trade then); any
    other bar must be valid as in the single-asset engine. ``ERR_NO_BARS`` (bar -1) marks an asset
    without a single bar. Bars are scanned in time order, assets in their order within a bar.
    """
    n, m = close.shape
    seen = np.zeros(m, dtype=np.bool_)
    for t in range(n):
        for j in range(m):
            o = open_[t, j]
            h = high[t, j]
            lo = low[t, j]
            c = close[t, j]
            if math.isnan(o) and math.isnan(h) and math.isnan(lo) and math.isnan(c):
                continue
            err = _bad_bar(o, h, lo, c)
            if err != OK:
                return err, t, j
            seen[j] = True
    for j in range(m):
        if not seen[j]:
            return ERR_NO_BARS, -1, j
    return OK, -1, -1


@njit(nogil=True, cache=True)
def _free_cash(cash: float, state: F64, trades: F64) -> float:
    """The cash minus twice the entry notional of every open short (proceeds + collateral)."""
    locked = 0.0
    for j in range(state.shape[0]):
        if state[j, _S_SIDE] < 0.0:
            locked += 2.0 * state[j, _S_QTY] * trades[int(state[j, _S_K]), T_ENTRY_PRICE]
    return cash - locked


@njit(nogil=True, cache=True)
def _enter(
    t: int,
    ref: F64,
    signal_bar: I64,
    pending: F64,
    last_close: F64,
    cash: float,
    n_trades: int,
    volatility: F64,
    stop_dist: F64,
    params: F64,
    state: F64,
    trades: F64,
    trade_asset: I64,
) -> tuple[float, int]:
    """Open the pending entries of bar ``t`` in asset order; returns ``(cash, n_trades)``.

    ``ref[j]`` is asset ``j``'s fill reference (its open or close of ``t``; NaN where it has no
    bar), ``signal_bar[j]`` the bar of its signal and ``pending[j]`` the side to open (+1, -1, 0).
    Every entry is sized on the same total equity, marked at the references (the last close for
    an asset without a bar), and capped by the free cash left by the entries before it.
    """
    m = ref.shape[0]
    base = cash
    for j in range(m):
        signed = state[j, _S_SIDE] * state[j, _S_QTY]
        if signed != 0.0:
            price = ref[j] if not math.isnan(ref[j]) else last_close[j]
            base += signed * price
    for j in range(m):
        sign = pending[j]
        if sign == 0.0:
            continue
        free = _free_cash(cash, state, trades)
        if not free > DUST * base:  # nothing left but rounding dust: the entry is skipped
            free = 0.0
        s = signal_bar[j]
        k = n_trades
        cash += _open_position(t, s, ref[j], sign, base, free, k, volatility[:, j],
                               stop_dist[:, j], params, state[j], trades)  # fmt: skip
        if state[j, _S_SIDE] != 0.0:
            trade_asset[k] = j
            n_trades += 1
    return cash, n_trades


@njit(nogil=True, cache=True)
def run_portfolio_kernel(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    long_entries: B2,
    long_exits: B2,
    short_entries: B2,
    short_exits: B2,
    volatility: F64,
    stop_dist: F64,
    params: F64,
    equity: F64,
    cash_out: F64,
    position: F64,
    value: F64,
    trades: F64,
    trade_asset: I64,
    n_skipped: I64,
) -> tuple[int, int, int, int]:
    """Simulate several assets sharing one cash balance, writing into preallocated outputs.

    Args:
        open_, high, low, close: ``(n, m)`` prices; a bar with four NaN prices is missing.
        long_entries, long_exits, short_entries, short_exits: ``(n, m)`` signals known at each
            bar's close (False where the asset has no bar).
        volatility: ``(n, m)`` per-bar volatility estimates, or ``(0, m)`` when unused.
        stop_dist: ``(n, m, 3)`` stop-loss, take-profit and trailing distances for the
            ``STOP_DISTANCE`` modes, else ``(0, m, 3)``.
        params: the settings, ``P_COUNT`` values at the ``P_*`` indices (shared by the assets).
        equity, cash_out: outputs per bar: total equity and cash after the bar.
        position, value: ``(n, m)`` outputs: signed quantity and its value at the last close.
        trades: ``(capacity, T_COUNT)`` output; capacity at least the number of entry signals.
        trade_asset: ``(capacity,)`` output: the asset of each trade row.
        n_skipped: ``(m,)`` output: entries skipped per asset.

    Returns:
        ``(status, bad_bar, bad_asset, n_trades)``: ``status`` is ``OK`` or the error code of
        the prices of ``bad_asset`` at ``bad_bar``; the first ``n_trades`` trade rows are valid.
    """
    n, m = close.shape
    status, bad_bar, bad_asset = check_portfolio_prices(open_, high, low, close)
    if status != OK:
        return status, bad_bar, bad_asset, 0
    has_stops = (
        params[P_SL_MODE] != STOP_NONE
        or params[P_TP_MODE] != STOP_NONE
        or params[P_TRAIL_MODE] != STOP_NONE
    )
    fill_at_close = params[P_FILL_AT_CLOSE] != 0.0
    close_at_end = params[P_CLOSE_AT_END] != 0.0
    state = np.zeros((m, _S_COUNT), dtype=np.float64)
    state[:, _S_K] = -1.0
    prev = np.full(m, -1, dtype=np.int64)  # each asset's last bar before t (-1: none yet)
    last = np.full(m, -1, dtype=np.int64)  # each asset's last bar
    for j in range(m):
        for t in range(n - 1, -1, -1):
            if not math.isnan(close[t, j]):
                last[j] = t
                break
    last_close = np.full(m, np.nan)
    pending = np.zeros(m, dtype=np.float64)
    signal_bar = np.zeros(m, dtype=np.int64)
    cash = float(params[P_INIT_CASH])
    n_trades = 0

    for t in range(n):
        ref = close[t] if fill_at_close else open_[t]
        any_entry = False
        # inside the bar first with close timing: stops of the positions carried into t
        if fill_at_close and has_stops:
            for j in range(m):
                if state[j, _S_SIDE] != 0.0 and not math.isnan(close[t, j]):
                    cash += _check_stops(t, prev[j], open_[t, j], high[t, j], low[t, j], False,
                                         volatility[:, j], params, state[j], trades)  # fmt: skip
        # exits on the signals (of the previous bar at the open, of t at the close)
        for j in range(m):
            pending[j] = 0.0
            if math.isnan(close[t, j]):
                continue
            s = t if fill_at_close else prev[j]
            if s < 0 or not (
                long_entries[s, j] or long_exits[s, j] or short_entries[s, j] or short_exits[s, j]
            ):
                continue
            row = state[j]
            row[_S_CASH] = cash
            _on_signals(t, s, ref[j], False, long_entries[:, j], long_exits[:, j],
                        short_entries[:, j], short_exits[:, j], volatility[:, j], stop_dist[:, j],
                        params, row, trades)  # fmt: skip
            cash = row[_S_CASH]
            if row[_S_SIDE] != 0.0 or (fill_at_close and close_at_end and t == last[j]):
                continue  # in position (no pyramiding), or no entry at the asset's last close
            le, _, se, _ = _clean_signals(
                long_entries[s, j], long_exits[s, j], short_entries[s, j], short_exits[s, j]
            )
            if le or se:
                pending[j] = 1.0 if le else -1.0
                signal_bar[j] = s
                any_entry = True
        # at the open: stops and targets the open gaps through free their cash before entries
        # (without entries, the full check below finds the same gaps)
        if any_entry and not fill_at_close and has_stops:
            for j in range(m):
                if state[j, _S_SIDE] != 0.0 and not math.isnan(close[t, j]):
                    cash += _check_stops(t, prev[j], open_[t, j], high[t, j], low[t, j], True,
                                         volatility[:, j], params, state[j], trades)  # fmt: skip
        if any_entry:
            cash, n_trades = _enter(t, ref, signal_bar, pending, last_close, cash, n_trades,
                                    volatility, stop_dist, params, state, trades,
                                    trade_asset)  # fmt: skip
        # inside the bar with next_open timing: every position, those opened at this open too
        if not fill_at_close and has_stops:
            for j in range(m):
                if state[j, _S_SIDE] != 0.0 and not math.isnan(close[t, j]):
                    cash += _check_stops(t, prev[j], open_[t, j], high[t, j], low[t, j], False,
                                         volatility[:, j], params, state[j], trades)  # fmt: skip
        # end of data: close each asset at its own last close when asked
        if close_at_end:
            for j in range(m):
                side = state[j, _S_SIDE]
                if t == last[j] and side != 0.0:
                    slip = _slippage(volatility[:, j], t, params)
                    cash += _close_position(t, close[t, j] * (1.0 - side * slip),
                                            REASON_END_OF_DATA, state[j], params,
                                            trades)  # fmt: skip
        # mark to market: an asset without a bar keeps its last close
        total = cash
        for j in range(m):
            c = close[t, j]
            if not math.isnan(c):
                prev[j] = t
                last_close[j] = c
            signed = state[j, _S_SIDE] * state[j, _S_QTY]
            position[t, j] = signed
            if signed != 0.0:
                held = signed * last_close[j]
                value[t, j] = held
                total += held
            else:
                value[t, j] = 0.0
        equity[t] = total
        cash_out[t] = cash

    for j in range(m):
        if state[j, _S_SIDE] != 0.0:  # still open: marked at the asset's last close
            _mark_open_trade(last[j], close[last[j], j], state[j], trades)
        n_skipped[j] = int(state[j, _S_N_SKIPPED])
    return OK, -1, -1, n_trades
