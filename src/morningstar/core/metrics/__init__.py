"""Performance metrics: pure functions over numpy arrays, plain floats and dataclasses out.

Inputs
    * per-bar simple returns ``r[i] = equity[i+1] / equity[i] - 1`` (:func:`simple_returns`);
      every time-series metric takes returns, as empyrical does;
    * per-trade P&L (or per-trade returns) for :func:`trade_stats`;
    * the position held during each bar for :func:`exposure`;
    * ``periods_per_year``, the annualisation factor, from :func:`periods_per_year`.

Annualisation (:data:`TRADING_YEARS`): bars per year = trading time in a year / bar length.

    ========  ======  ===========  =====  =====  ======  =====
    calendar  days    hours/day    1h     1d     5m      1w
    ========  ======  ===========  =====  =====  ======  =====
    crypto    365     24           8760   365    105120  52.14
    forex     260     24           6240   260    74880   52.14
    cme       252     23           5796   252    69552   52.14
    equity    252     6.5          1638   252    19656   52.14
    ========  ======  ===========  =====  =====  ======  =====

Conventions (empyrical-reloaded's, which the integration tests check to 1e-9):
    * volatility is the sample standard deviation (ddof=1) x sqrt(periods_per_year);
    * Sharpe = mean(r - rf) / std(r - rf, ddof=1) x sqrt(ppy), ``rf`` per bar;
    * Sortino = mean(r - req) x ppy / (sqrt(mean(min(r - req, 0)^2)) x sqrt(ppy)), mean over all
      bars, ``req`` = 0 per bar by default;
    * CAGR = (1 + total return) ** (ppy / n) - 1 over ``n`` returns; Calmar = CAGR / |max DD|;
    * drawdowns are measured on the equity compounded from 1.0 with an anchor bar in front.

Edge cases:
    * NaN or inf anywhere in an input raises ValueError (never skipped: a gap in an equity curve
      is a bug upstream), as does a return below -1 where returns are compounded;
    * empty returns: total return 0.0 and no drawdown (empyrical: NaN); CAGR NaN;
    * fewer than two returns: volatility, Sharpe and Sortino NaN;
    * zero volatility: Sharpe ``±inf`` by the sign of the mean excess return, NaN when it is 0;
      Sortino ``inf`` without downside (empyrical-reloaded >= 0.5.12);
    * no drawdown: Calmar NaN; no trades: count 0 and every other trade statistic NaN; no
      losses: profit factor ``inf``; all losses: profit factor 0.0, win rate 0.0.
"""

from __future__ import annotations

from morningstar.core.metrics._annual import TRADING_YEARS, TradingYear, periods_per_year
from morningstar.core.metrics._drawdown import (
    Drawdown,
    calmar,
    drawdown_series,
    longest_drawdown,
    max_drawdown,
)
from morningstar.core.metrics._returns import (
    annual_volatility,
    cagr,
    downside_risk,
    equity_curve,
    sharpe,
    simple_returns,
    sortino,
    total_return,
)
from morningstar.core.metrics._rolling import (
    rolling_max_drawdown,
    rolling_sharpe,
    rolling_sortino,
    rolling_volatility,
)
from morningstar.core.metrics._summary import SUMMARY_KEYS, summary
from morningstar.core.metrics._trades import TradeStats, exposure, trade_stats

__all__ = [
    "SUMMARY_KEYS",
    "TRADING_YEARS",
    "Drawdown",
    "TradeStats",
    "TradingYear",
    "annual_volatility",
    "cagr",
    "calmar",
    "downside_risk",
    "drawdown_series",
    "equity_curve",
    "exposure",
    "longest_drawdown",
    "max_drawdown",
    "periods_per_year",
    "rolling_max_drawdown",
    "rolling_sharpe",
    "rolling_sortino",
    "rolling_volatility",
    "sharpe",
    "simple_returns",
    "sortino",
    "summary",
    "total_return",
    "trade_stats",
]
