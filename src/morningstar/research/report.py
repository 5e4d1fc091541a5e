"""Self-contained HTML backtest report (Plotly, JavaScript inlined: opens offline).

Panels: price with entries/exits (hover: side, price, P&L, exit reason), equity, drawdown, and a
monthly-returns heatmap; then the metrics and the run settings as tables.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from morningstar.research.backtest import Result

__all__ = ["format_metric", "monthly_returns", "render_html"]

_PCT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "exposure", "win_rate"}
_MAX_CANDLES = 5_000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month (rows: years, columns: 1..12), as fractions."""
    if len(equity) < 2 or not isinstance(equity.index, pd.DatetimeIndex):
        return pd.DataFrame()
    idx = equity.index.tz_convert("UTC").tz_localize(None)
    month_end = pd.Series(equity.to_numpy(), index=idx).groupby(idx.to_period("M")).last()
    start = float(equity.iloc[0])
    rets = month_end.pct_change()
    rets.iloc[0] = month_end.iloc[0] / start - 1.0
    periods = pd.PeriodIndex(rets.index)
    table = pd.DataFrame(
        {"year": periods.year, "month": periods.month, "ret": rets.to_numpy()}
    ).pivot(index="year", columns="month", values="ret")
    return table.reindex(columns=range(1, 13))


def format_metric(key: str, value: float) -> str:
    """A metric as text: percentages for fractions, thousands separators for counts."""
    if not math.isfinite(value):
        return str(value)
    if key in _PCT:
        return f"{value * 100:.2f} %"
    if key in {"bars", "trade_count", "open_trades", "max_drawdown_duration", "longest_drawdown"}:
        return f"{value:,.0f}"
    if key in {"final_equity", "expectancy", "avg_win", "avg_loss", "best_trade", "worst_trade"}:
        return f"{value:,.2f}"
    return f"{value:,.4g}"


def _table(rows: list[tuple[str, str]], title: str) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<div><h2>{html.escape(title)}</h2><table class='kv'>{body}</table></div>"


def render_html(result: Result, title: str | None = None) -> str:
    """Render ``result`` as one HTML page (Plotly JS inlined)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bars = result.bars
    equity = result.equity
    trades = result.trades
    heading = title or f"{result.strategy} backtest"
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.55, 0.25, 0.20],
        vertical_spacing=0.03,
        subplot_titles=("Price and trades", "Equity", "Drawdown"),
    )
    if len(bars) <= _MAX_CANDLES:
        fig.add_trace(
            go.Candlestick(
                x=bars.index, open=bars["open"], high=bars["high"], low=bars["low"],
                close=bars["close"], name="price", showlegend=False,
            ),
            row=1, col=1,
        )  # fmt: skip
    else:
        fig.add_trace(
            go.Scattergl(x=bars.index, y=bars["close"], name="close", line={"width": 1}),
            row=1, col=1,
        )  # fmt: skip
    for name, values in result.signals.indicators.items():
        if len(values) == len(bars) and np.isfinite(values).any() and "stop" not in name:
            fig.add_trace(
                go.Scattergl(x=bars.index, y=values, name=name, line={"width": 1}, opacity=0.7),
                row=1, col=1,
            )  # fmt: skip
    if len(trades):
        hover = [
            f"{s} {sz:.6g} @ {p:.6g}" for s, sz, p in zip(
                trades["side"], trades["size"], trades["entry_price"], strict=True
            )
        ]  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=trades["entry_time"], y=trades["entry_price"], mode="markers", name="entry",
                marker={"symbol": "triangle-up", "size": 10, "color": "#1a9850"}, text=hover,
                hovertemplate="entry %{text}<extra></extra>",
            ),
            row=1, col=1,
        )  # fmt: skip
        closed = trades[~trades["is_open"]]
        exit_hover = [
            f"{r} · P&L {pnl:,.2f} ({ret * 100:.2f} %)" for r, pnl, ret in zip(
                closed["exit_reason"], closed["pnl"], closed["return"], strict=True
            )
        ]  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=closed["exit_time"], y=closed["exit_price"], mode="markers", name="exit",
                marker={"symbol": "triangle-down", "size": 10, "color": "#d73027"},
                text=exit_hover, hovertemplate="exit %{text}<extra></extra>",
            ),
            row=1, col=1,
        )  # fmt: skip
    fig.add_trace(
        go.Scattergl(x=equity.index, y=equity, name="equity", line={"color": "#4575b4"}),
        row=2, col=1,
    )  # fmt: skip
    peak = np.maximum.accumulate(equity.to_numpy())
    drawdown = equity.to_numpy() / peak - 1.0
    fig.add_trace(
        go.Scattergl(
            x=equity.index, y=drawdown * 100, name="drawdown %", fill="tozeroy",
            line={"color": "#d73027", "width": 1},
        ),
        row=3, col=1,
    )  # fmt: skip
    fig.update_layout(
        height=900, xaxis_rangeslider_visible=False, template="plotly_white",
        legend={"orientation": "h", "y": 1.08, "x": 0}, margin={"t": 90},
    )  # fmt: skip
    parts = [fig.to_html(full_html=False, include_plotlyjs=True, div_id="main-chart")]

    monthly = monthly_returns(equity)
    if not monthly.empty:
        z = monthly.to_numpy() * 100
        heat = go.Figure(
            go.Heatmap(
                z=z, x=[_MONTHS[int(m) - 1] for m in monthly.columns],
                y=[str(y) for y in monthly.index], colorscale="RdYlGn", zmid=0,
                text=[[f"{v:.1f}" if np.isfinite(v) else "" for v in row] for row in z],
                texttemplate="%{text}", hovertemplate="%{y} %{x}: %{z:.2f} %<extra></extra>",
            )
        )  # fmt: skip
        heat.update_layout(
            title="Monthly returns (%)",
            height=max(260, 140 + 32 * len(monthly)),
            template="plotly_white",
        )
        parts.append(heat.to_html(full_html=False, include_plotlyjs=False, div_id="monthly"))

    metric_rows = [(k, format_metric(k, float(v))) for k, v in result.metrics.items()]
    param_rows = [(k, str(v)) for k, v in result.params.items()]
    setting_rows = [
        (k, ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
        for k, v in result.settings.items()
    ]
    period = f"{bars.index[0]} → {bars.index[-1]}, {len(bars):,} bars" if len(bars) else ""
    style = (
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table.kv{border-collapse:collapse;margin-bottom:16px}"
        "table.kv th{text-align:left;padding:2px 16px 2px 0;font-weight:500;color:#555}"
        "table.kv td{padding:2px 0;font-variant-numeric:tabular-nums}"
        ".tables{display:flex;gap:48px;flex-wrap:wrap;align-items:flex-start}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(heading)}</h1><p>{html.escape(period)}</p>"
        + "".join(parts)
        + "<div class='tables'>"
        + _table(metric_rows, "Metrics")
        + _table(param_rows, "Parameters")
        + _table(setting_rows, "Settings")
        + "</div></body></html>"
    )
