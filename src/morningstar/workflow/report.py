"""Self-contained HTML report of a workflow run (Plotly, JavaScript inlined: opens offline).

Per pair: the closes with each trade's entry (coloured by the LLM supervisor's verdict: approve /
reduce / veto / abstain / not consulted; the hover text gives side, size and price) and exit (its
reason and P&L); then the account's equity and drawdown; then the run's summary (what the
supervisor did, risk rejections, errors), the performance metrics since inception and the last
trades as tables. With an ablation (the same backtest with the supervisor off) both equity
curves are drawn and the differences tabulated.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["render_report"]

#: Closes drawn per pair at most (longer series are thinned evenly; trades are all drawn).
MAX_POINTS = 5_000
_VERDICT_COLOURS = {"approve": "#2ca02c", "reduce": "#ff7f0e", "veto": "#d62728",
                    "abstain": "#7f7f7f", None: "#1f77b4"}  # fmt: skip


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    step = max(1, math.ceil(len(frame) / MAX_POINTS))
    return frame.iloc[::step]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.2f}"
    return str(value)


def _kv_table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in rows)  # fmt: skip
    return f"<div><h2>{html.escape(title)}</h2><table class='kv'>{body}</table></div>"


def _trades_table(trades: Sequence[Mapping[str, Any]], limit: int = 50) -> str:
    cols = ("pair", "side", "entry_time", "exit_time", "entry_price", "exit_price", "pnl",
            "exit_reason", "llm_verdict")  # fmt: skip
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(t.get(c)))}</td>" for c in cols) + "</tr>"
        for t in list(trades)[-limit:]
    )
    return (f"<div><h2>Last {min(limit, len(trades))} of {len(trades)} trades</h2>"
            f"<table class='grid'><tr>{head}</tr>{rows}</table></div>")  # fmt: skip


def render_report(
    *,
    title: str,
    frames: Mapping[str, pd.DataFrame],
    equity: pd.Series,
    trades: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    metrics: Mapping[str, Any],
    ablation: Mapping[str, Any] | None = None,
    ablation_equity: pd.Series | None = None,
) -> str:
    """The report's HTML.

    Args:
        title: the page title.
        frames: the bars per pair (the replayed range).
        equity: the account's equity per bar (index: bar open times).
        trades: round trips (``MonitoringService.get_recent_trades`` rows, oldest first).
        summary: ``RunSummary.as_dict()``.
        metrics: performance metrics since inception (name → value).
        ablation: the supervisor-on vs supervisor-off comparison, when there is one.
        ablation_equity: the equity of the run with the supervisor off.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pairs = list(frames)
    rows = len(pairs) + 2
    heights = [0.5 / max(len(pairs), 1)] * len(pairs) + [0.3, 0.2]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=heights,
                        subplot_titles=[*pairs, "equity", "drawdown"])  # fmt: skip
    for k, pair in enumerate(pairs, start=1):
        bars = _thin(frames[pair])
        fig.add_trace(go.Scattergl(x=bars.index, y=bars["close"], name=f"{pair} close",
                                   line={"width": 1, "color": "#444"}), row=k, col=1)  # fmt: skip
        mine = [t for t in trades if t.get("pair") == pair]
        for verdict, colour in _VERDICT_COLOURS.items():
            chosen = [t for t in mine if t.get("llm_verdict") == verdict]
            if not chosen:
                continue
            text = [
                f"{'long' if t['side'] > 0 else 'short'} {t['quantity']:.6g} @ "
                f"{t['entry_price']:.6g}<br>LLM: {verdict or 'not consulted'}"
                for t in chosen
            ]
            fig.add_trace(go.Scatter(
                x=[t["entry_time"] for t in chosen], y=[t["entry_price"] for t in chosen],
                mode="markers", name=f"entry (LLM {verdict or 'off'})", text=text,
                hoverinfo="text+x",
                marker={"symbol": "triangle-up", "size": 9, "color": colour},
            ), row=k, col=1)  # fmt: skip
        closed = [t for t in mine if t.get("exit_time") is not None]
        if closed:
            fig.add_trace(go.Scatter(
                x=[t["exit_time"] for t in closed], y=[t["exit_price"] for t in closed],
                mode="markers", name="exit", hoverinfo="text+x",
                text=[f"exit ({t['exit_reason']})<br>P&L {t['pnl']:,.2f}" for t in closed],
                marker={"symbol": "x", "size": 8, "color": "#000"},
            ), row=k, col=1)  # fmt: skip
    eq = equity.iloc[:: max(1, math.ceil(len(equity) / MAX_POINTS))]
    fig.add_trace(go.Scattergl(x=eq.index, y=eq.to_numpy(), name="equity (supervisor on)"
                               if ablation is not None else "equity"),
                  row=rows - 1, col=1)  # fmt: skip
    if ablation_equity is not None and len(ablation_equity):
        off = ablation_equity.iloc[:: max(1, math.ceil(len(ablation_equity) / MAX_POINTS))]
        fig.add_trace(go.Scattergl(x=off.index, y=off.to_numpy(), name="equity (supervisor off)",
                                   line={"dash": "dot"}), row=rows - 1, col=1)  # fmt: skip
    values = equity.to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(values) if len(values) else values
    drawdown = values / peak - 1.0 if len(values) else values
    fig.add_trace(go.Scattergl(x=equity.index, y=drawdown, name="drawdown", fill="tozeroy"),
                  row=rows, col=1)  # fmt: skip
    fig.update_layout(height=320 * len(pairs) + 520, title=title, hovermode="closest",
                      legend={"orientation": "h"})  # fmt: skip
    plot = fig.to_html(full_html=False, include_plotlyjs=True)
    parts = [
        _kv_table(
            [(k, v) for k, v in summary.items() if k not in ("step_seconds",)], "Run summary"
        ),
        _kv_table(list(metrics.items()), "Performance since inception"),
        _kv_table(
            list(dict(summary.get("step_seconds") or {}).items()), "Seconds per step (whole run)"
        ),
    ]
    if ablation is not None:
        parts.insert(0, _kv_table(list(ablation.items()), "Ablation: supervisor on vs off"))
    parts.append(_trades_table(trades))
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;"
             "margin:.5em 1.5em 1em 0}th,td{border:1px solid #ddd;padding:3px 8px;"
             "font-size:13px}th{text-align:left;background:#f6f6f6}"
             ".tables{display:flex;flex-wrap:wrap}")  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{plot}<div class='tables'>"
            f"{''.join(parts)}</div></body></html>")  # fmt: skip
