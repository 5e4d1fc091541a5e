"""``morningstar run``: the trading workflow in backtest or paper mode (``docs/workflow.md``)."""

from __future__ import annotations

import math
import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from morningstar.cli._base import CalendarOpt, app, console, recorded_run

__all__ = ["print_run", "run_cmd"]


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    mode: Annotated[
        str | None, typer.Option(help="backtest or paper (default: workflow.mode).")
    ] = None,
    venue: Annotated[
        str | None, typer.Option(help="Venue of the data / exchange (default: workflow.venue).")
    ] = None,
    pair: Annotated[
        list[str] | None, typer.Option(help="Pair BASE/QUOTE; repeat it (default: workflow.pairs).")
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Bar timeframe (workflow.timeframe).")
    ] = None,
    predictor: Annotated[
        str | None,
        typer.Option(help="strategy:NAME or model:ARTIFACT_DIR (default: workflow.predictor)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="Backtest: first bar (ISO, inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Backtest: end (ISO, exclusive).")] = None,
    supervisor: Annotated[
        str | None, typer.Option(help="on or off: consult the LLM supervisor (default: config).")
    ] = None,
    llm_cache: Annotated[
        str | None, typer.Option(help="record, replay or off (default: llm.cache_mode).")
    ] = None,
    ablation: Annotated[
        bool, typer.Option(help="Backtest twice, supervisor on and off, and compare.")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option(help="Paper: resume this run (32 hex characters).")
    ] = None,
    calendar: CalendarOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the HTML report (default: <data.dir>/reports).")
    ] = None,
) -> None:
    """Run the trading workflow: data → features → prediction → LLM supervision → risk → orders
    → persistence, in backtest mode (stored bars) or paper mode (live bars, simulated fills)."""
    from morningstar.services.data import pair_arg, resolve_calendar
    from morningstar.services.workflow import (
        load_frames,
        run_ablation,
        run_backtest,
        run_paper,
        with_overrides,
    )

    with recorded_run(ctx, "run") as (application, _cli_run):
        base = application.settings
        switch = _on_off(supervisor)
        if llm_cache is not None and llm_cache not in ("record", "replay", "off"):
            raise typer.BadParameter(f"--llm-cache {llm_cache!r}: use record, replay or off")
        settings = with_overrides(base, supervisor=switch, llm_cache=llm_cache,
                                  predictor=predictor, venue=venue, pairs=pair,
                                  timeframe=timeframe)  # fmt: skip
        wf = settings.workflow
        chosen_mode = mode or wf.mode
        if chosen_mode not in ("backtest", "paper"):
            raise typer.BadParameter(f"--mode {chosen_mode!r}: use backtest or paper")
        if chosen_mode == "backtest" and run_id is not None:
            raise typer.BadParameter("--run-id resumes paper runs; a backtest's id comes from "
                                     "its settings and data")  # fmt: skip
        if chosen_mode == "paper" and (start is not None or end is not None):
            raise typer.BadParameter("--start/--end are for backtests; a paper run trades the "
                                     "bars that close from now on")  # fmt: skip
        if run_id is not None and not re.fullmatch(r"[0-9a-f]{32}", run_id):
            raise typer.BadParameter(f"--run-id {run_id!r}: 32 lower-case hex characters, as "
                                     "printed by the run you resume")  # fmt: skip
        the_venue = wf.venue
        pairs = list(wf.pairs)
        first = pair_arg(pairs[0]) if pairs else None
        cal = resolve_calendar(calendar or base.data.calendar, the_venue, first)
        folder = out or (base.data.dir / "reports")
        if chosen_mode == "paper":
            if ablation:
                raise typer.BadParameter("--ablation is for backtests")
            outcome = run_paper(settings, application.db, run_id=run_id, calendar=cal,
                                on_built=_stop_on_signals)  # fmt: skip
            print_run(outcome, title=f"paper run {outcome.run_id}")
            return
        frames = load_frames(application.market_data, the_venue, pairs, wf.timeframe)
        if ablation:
            result = run_ablation(settings, application.db, frames, calendar=cal, start=start,
                                  end=end, out=folder)  # fmt: skip
            print_run(result.on, title="supervisor ON")
            print_run(result.off, title="supervisor OFF")
            _print_comparison(result.comparison)
            console.print(f"report: {result.report}", highlight=False)
            return
        outcome = run_backtest(settings, application.db, frames, calendar=cal, start=start,
                               end=end, out=folder)  # fmt: skip
        print_run(outcome, title=f"backtest {wf.predictor} on {', '.join(frames)} {wf.timeframe}")
        console.print(f"report: {outcome.report}", highlight=False)


def _on_off(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise typer.BadParameter(f"--supervisor {value!r}: use on or off")


def _stop_on_signals(built: Any) -> None:
    """SIGINT / SIGTERM: finish the current cycle, persist, exit."""

    def handler(signum: int, _frame: object) -> None:
        console.print(f"{signal.Signals(signum).name}: finishing the current cycle, then stopping")
        built.workflow.request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _money(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{number:,.2f}"


def _pct(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{number * 100:.2f} %"


def print_run(outcome: Any, title: str) -> None:
    """The run's summary table: P&L, metrics, what the supervisor and the risk engine did."""
    s = outcome.summary
    total = outcome.pnl.get("total", {})
    m = outcome.metrics
    table = Table(title=title, header_style="bold", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("run id", outcome.run_id),
        ("bars (pair-bars)", f"{s.bars:,}"),
        ("bars per second", f"{s.bars_per_s:,.0f}"),
        ("final equity", _money(s.final_equity)),
        ("total P&L (realised + unrealised)", _money(total.get("total_pnl"))),
        ("realised P&L", _money(total.get("realized_pnl"))),
        ("fees", _money(s.fees)),
        ("trades", f"{m.get('trades', 0):,.0f}" if m.get("trades") is not None else "-"),
        ("win rate", _pct(m.get("win_rate"))),
        ("profit factor", "-" if m.get("profit_factor") is None
         else f"{float(m['profit_factor']):.3g}"),
        ("Sharpe", "-" if m.get("sharpe") is None else f"{float(m['sharpe']):.3g}"),
        ("Sortino", "-" if m.get("sortino") is None else f"{float(m['sortino']):.3g}"),
        ("max drawdown", _pct(m.get("max_drawdown"))),
        ("supervisor consulted", f"{s.supervised:,}"),
        ("  vetoed / reduced / abstained", f"{s.vetoed} / {s.reduced} / {s.abstained}"),
        ("risk engine cuts or refusals", f"{s.risk_rejections:,}"),
        ("orders / fills", f"{s.orders:,} / {s.fills:,}"),
        ("step errors", f"{s.errors:,}"),
    ]  # fmt: skip
    if s.halted:
        rows.append(("HALTED", s.halted))
    if s.stopped:
        rows.append(("stopped", "on request (resumable with --run-id)"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _print_comparison(comparison: dict[str, Any]) -> None:
    table = Table(title="ablation: supervisor on vs off", header_style="bold", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    for key, value in comparison.items():
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        table.add_row(key, shown)
    console.print(table)
