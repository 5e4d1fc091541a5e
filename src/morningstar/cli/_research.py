"""Research commands: backtest (one pair or a portfolio), sweep, walkforward."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from morningstar.cli._base import CalendarOpt, app, console, print_metrics, recorded_run

__all__ = ["backtest_cmd", "sweep_cmd", "walkforward_cmd"]


@app.command("backtest")
def backtest_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option(help="Venue of the stored dataset.")],
    pair: Annotated[
        list[str],
        typer.Option(
            help="Pair BASE/QUOTE. Repeat it (--pair BTC/USDT --pair ETH/USDT) for a portfolio "
            "backtest: one shared cash balance, entries filled in the order given."
        ),
    ],
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Timeframe, e.g. 1h.")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Strategy name or path/to/file.py[:Class].")
    ] = "ema_cross",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-P", help="Strategy parameter NAME=VALUE (every pair)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First bar (ISO date, inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO date, exclusive).")] = None,
    fee_bps: Annotated[
        float, typer.Option(help="Fee per fill in basis points (10 = 0.1 %).")
    ] = 10.0,
    slippage_bps: Annotated[float, typer.Option(help="Slippage per fill in basis points.")] = 0.0,
    stop_loss: Annotated[
        float | None, typer.Option(help="Stop-loss as a fraction of the entry (0.02 = 2 %).")
    ] = None,
    take_profit: Annotated[float | None, typer.Option(help="Take-profit fraction.")] = None,
    trailing_stop: Annotated[float | None, typer.Option(help="Trailing-stop fraction.")] = None,
    fill: Annotated[
        str, typer.Option(help="next_open (default: signal at close t, fill at open t+1) or close.")
    ] = "next_open",
    cash: Annotated[float, typer.Option(help="Initial cash.")] = 10_000.0,
    fraction: Annotated[
        float | None,
        typer.Option(
            help="Fraction of the (total) equity per entry, in (0, 1] (default: 1 for one pair, "
            "1 / number of pairs for a portfolio)."
        ),
    ] = None,
    calendar: CalendarOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for result.json, trades.csv, equity.csv and report.html (one pair) or "
            "per_asset.csv (a portfolio)."
        ),
    ] = None,
) -> None:
    """Backtest a strategy on stored data (one pair, or a portfolio of several); save JSON + CSV
    results (and an HTML report for one pair)."""
    from morningstar.services.research import (
        parse_params,
        run_stored_backtest,
        run_stored_portfolio_backtest,
    )

    params = parse_params(param or [])
    settings: dict[str, Any] = {
        "venue": venue, "timeframe": timeframe, "strategy": strategy, "params": params,
        "start": start, "end": end, "fee_bps": fee_bps, "slippage_bps": slippage_bps,
        "stop_loss": stop_loss, "take_profit": take_profit, "trailing_stop": trailing_stop,
        "fill_timing": fill, "init_cash": cash, "fraction": fraction, "out": out,
    }  # fmt: skip
    with recorded_run(ctx, "backtest") as (application, _run_id):
        settings["calendar"] = calendar or application.settings.data.calendar
        if len(pair) > 1:
            folio = run_stored_portfolio_backtest(application.market_data, pairs=pair, **settings)
        else:
            saved = run_stored_backtest(application.market_data, pair=pair[0], **settings)
    if len(pair) > 1:
        _print_portfolio(folio, venue, timeframe)
        return
    res = saved.result
    params_text = ", ".join(f"{k}={v}" for k, v in res.params.items())
    print_metrics(saved, title=f"{res.strategy}({params_text}) on {venue} {pair[0]} {timeframe}")


def _print_portfolio(saved: Any, venue: str, timeframe: str) -> None:
    """Print a portfolio backtest: the headline metrics, then the per-asset breakdown."""
    import math

    from morningstar.research.report import format_metric

    res = saved.result
    first = res.params[res.assets[0]]
    params_text = ", ".join(f"{k}={v}" for k, v in first.items())
    table = Table(
        title=f"{res.strategy}({params_text}) portfolio of {len(res.assets)} pairs on {venue} "
        f"{timeframe}, one shared cash balance",
        header_style="bold",
        show_header=False,
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate",
                "profit_factor", "trade_count", "exposure", "skipped_entries",
                "final_equity"):  # fmt: skip
        table.add_row(key, format_metric(key, float(res.metrics[key])))
    console.print(table)
    per_asset = Table(title="per asset (all columns in per_asset.csv)", header_style="bold")
    per_asset.add_column("asset", no_wrap=True)
    for label in ("trades", "open", "P&L", "contrib.", "win", "exposure", "skipped"):
        per_asset.add_column(label, justify="right", no_wrap=True)
    for asset, row in res.per_asset.iterrows():
        per_asset.add_row(
            str(asset), f"{row['trade_count']:,.0f}", f"{row['open_trades']:,.0f}",
            f"{row['pnl']:,.2f}", f"{row['contribution'] * 100:.2f}%",
            "-" if math.isnan(row["win_rate"]) else f"{row['win_rate'] * 100:.1f}%",
            f"{row['exposure'] * 100:.1f}%",
            f"{row['skipped']:,.0f}",
        )  # fmt: skip
    console.print(per_asset)
    files = saved.files
    console.print(
        f"results: {files['json']}, {files['trades']}, {files['equity']}, {files['per_asset']}",
        highlight=False,
    )


RangeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--range",
        "-r",
        help="Values to try: NAME=START:STOP:STEP or NAME=A,B,C (default: declared grid).",
    ),
]


@app.command("sweep")
def sweep_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option(help="Venue of the stored dataset.")],
    pair: Annotated[str, typer.Option(help="Pair BASE/QUOTE.")],
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Timeframe, e.g. 1h.")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Strategy name or file.")
    ] = "ema_cross",
    value_range: RangeOpt = None,
    method: Annotated[str, typer.Option(help="grid or random.")] = "grid",
    n_iter: Annotated[int, typer.Option(help="Draws for --method random.")] = 100,
    metric: Annotated[
        str,
        typer.Option(
            help="Ranking metric (higher is better; lower for annual_volatility and the "
            "drawdown durations)."
        ),
    ] = "sharpe",
    min_trades: Annotated[
        int, typer.Option(help="Combinations with fewer closed trades rank last.")
    ] = 0,
    top: Annotated[int, typer.Option(help="Rows to show.")] = 10,
    start: Annotated[str | None, typer.Option(help="First bar (ISO date).")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO date, exclusive).")] = None,
    fee_bps: Annotated[float, typer.Option(help="Fee per fill in basis points.")] = 10.0,
    calendar: CalendarOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for results.csv and summary.json.")
    ] = None,
) -> None:
    """Evaluate many parameter combinations; save every result (CSV) and the best one's report."""
    from morningstar.services.research import parse_space, run_stored_sweep

    space = parse_space(value_range or [])
    with recorded_run(ctx, "sweep") as (application, _run_id):
        result, files = run_stored_sweep(
            application.market_data, venue=venue, pair=pair, timeframe=timeframe,
            strategy=strategy, space=space, method=method, n_iter=n_iter, metric=metric,
            min_trades=min_trades,
            start=start, end=end, fee_bps=fee_bps,
            calendar=calendar or application.settings.data.calendar, out=out,
        )  # fmt: skip
    keys = [*result.best_params, metric, "total_return", "max_drawdown", "trade_count", "win_rate"]
    _print_table(
        result.top(top)[list(dict.fromkeys(k for k in keys if k in result.table.columns))],
        title=f"{result.best.strategy}: top {top} of {result.n_trials} combinations by {metric} "
        f"({result.n_skipped} invalid skipped)",
    )
    console.print(
        f"results: {files['table']}; best report: {files['best_report']}", highlight=False
    )


@app.command("walkforward")
def walkforward_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option(help="Venue of the stored dataset.")],
    pair: Annotated[str, typer.Option(help="Pair BASE/QUOTE.")],
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Timeframe, e.g. 1h.")],
    train: Annotated[int, typer.Option(help="Bars per in-sample (training) window.")],
    test: Annotated[int, typer.Option(help="Bars per out-of-sample window.")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Strategy name or file.")
    ] = "ema_cross",
    value_range: RangeOpt = None,
    anchored: Annotated[
        bool, typer.Option(help="Training windows all start at the first bar.")
    ] = False,
    embargo: Annotated[int, typer.Option(help="Bars skipped between train and test.")] = 0,
    method: Annotated[str, typer.Option(help="grid or random.")] = "grid",
    n_iter: Annotated[int, typer.Option(help="Draws per fold for --method random.")] = 100,
    metric: Annotated[
        str, typer.Option(help="Metric that picks each fold's parameters.")
    ] = "sharpe",
    start: Annotated[str | None, typer.Option(help="First bar (ISO date).")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO date, exclusive).")] = None,
    fee_bps: Annotated[float, typer.Option(help="Fee per fill in basis points.")] = 10.0,
    calendar: CalendarOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the fold table and summary.")] = None,
) -> None:
    """Walk-forward: optimise on each train window, test on the next; deflated Sharpe reported."""
    from morningstar.services.research import parse_space, run_stored_walk_forward

    space = parse_space(value_range or [])
    with recorded_run(ctx, "walkforward") as (application, _run_id):
        result, files = run_stored_walk_forward(
            application.market_data, venue=venue, pair=pair, timeframe=timeframe,
            strategy=strategy, train=train, test=test, space=space, anchored=anchored,
            embargo=embargo, method=method, n_iter=n_iter, metric=metric, start=start, end=end,
            fee_bps=fee_bps, calendar=calendar or application.settings.data.calendar, out=out,
        )  # fmt: skip
    _print_table(result.table, title=f"walk-forward: {len(result.table)} folds")
    summary = result.summary()
    table = Table(title="out-of-sample summary", show_header=False, header_style="bold")
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"results: {files['table']}, {files['json']}", highlight=False)


def _print_table(frame: Any, title: str, max_columns: int = 12) -> None:
    """Print a DataFrame as a rich table (the first ``max_columns`` columns; files have all)."""
    frame = frame.iloc[:, :max_columns]
    table = Table(title=title, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
