"""LLM commands: ask (a manual prompt, traced like any call), status, history; and serve."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from morningstar.cli._base import app, console, recorded_run

__all__ = ["llm_app", "llm_ask", "llm_history", "llm_status", "serve_cmd"]

llm_app = typer.Typer(help="LLM gateway and monitor: ask, status, history.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


def _tokens(value: int | None) -> str:
    return "absent" if value is None else f"{value:,}"


def _cost(value: float | None) -> str:
    return "price unknown" if value is None else f"${value:.6f}"


@llm_app.command("ask")
def llm_ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    pair: Annotated[
        str | None, typer.Option(help="Attach a point-in-time snapshot of this stored pair.")
    ] = None,
    venue: Annotated[str | None, typer.Option(help="Venue (when the pair has several).")] = None,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", "-t", help="Timeframe (default: the finest stored)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Snapshot time (default: the last stored bar).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model (default: llm.model).")] = None,
    stream: Annotated[bool, typer.Option(help="Stream the answer.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Ask the configured LLM (or the offline rule-based analyst) a question."""
    from morningstar.services.llm import ask_once, stored_snapshot

    if pair is None and (venue is not None or timeframe is not None or as_of is not None):
        raise typer.BadParameter("--venue, --timeframe and --as-of need --pair (market snapshot)")
    with recorded_run(ctx, "llm ask") as (application, _run_id):
        market = None
        if pair is not None:
            market = stored_snapshot(
                application.market_data,
                pair=pair,
                venue=venue,
                timeframe=timeframe,
                as_of=as_of,
                calendar=application.settings.data.calendar,
            )
        result = ask_once(
            application.settings, application.db, question,
            market=market, model=model, stream=stream,
        )  # fmt: skip
    if as_json:
        payload: dict[str, Any] = {
            "answer": result.text,
            "provider": result.provider,
            "model": result.model,
            "rule_based": result.rule_based,
            "usage": result.usage.to_dict(),
            "cost_usd": result.cost_usd,
            "cache_hit": result.cache_hit,
            "retries": result.retries,
            "latency_s": result.latency_s,
            "call_id": result.call_id,
            "market": market,
        }
        console.print_json(json.dumps(payload))
        return
    console.print(result.text, highlight=False)
    label = "rule-based analyst, not an LLM" if result.rule_based else "LLM"
    footer = (
        f"{result.provider} {result.model} ({label}) · tokens in {_tokens(result.usage.input_tokens)}"
        f" out {_tokens(result.usage.output_tokens)} · {_cost(result.cost_usd)} · "
        f"{result.latency_s * 1000:.0f} ms"
        + (" · cache hit" if result.cache_hit else "")
        + (f" · {result.retries} retries" if result.retries else "")
    )
    console.print(Text(footer, style="dim"))


@llm_app.command("status")
def llm_status(ctx: typer.Context) -> None:
    """Per-model aggregates of every recorded LLM call (count, success, latency, tokens, cost)."""
    from morningstar.services.llm import call_summary

    with recorded_run(ctx, "llm status") as (application, _run_id):
        rows = call_summary(application.db)
    if not rows:
        console.print('no LLM call recorded yet (try: morningstar llm ask "...")')
        return
    table = Table(title="LLM calls (all recorded)", header_style="bold")
    for col in ("model", "calls", "ok", "p50 ms", "p95 ms", "tokens in/out", "cost", "cached"):
        table.add_column(col, justify="left" if col == "model" else "right", overflow="fold")
    for r in rows:
        absent = f" ({r.usage_absent} absent)" if r.usage_absent else ""
        unknown = f" +{r.price_unknown} unknown" if r.price_unknown else ""
        table.add_row(
            f"{r.provider}/{r.model}", f"{r.count:,}", f"{r.success_rate:.0%}",
            f"{r.p50_latency_s * 1000:.0f}", f"{r.p95_latency_s * 1000:.0f}",
            f"{r.input_tokens:,}/{r.output_tokens:,}{absent}", f"${r.cost_usd:.4f}{unknown}",
            f"{r.cache_hits:,}",
        )  # fmt: skip
    console.print(table)


@llm_app.command("history")
def llm_history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Calls to show.")] = 20,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    caller: Annotated[str | None, typer.Option(help="Only this caller.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (ok, timeout...).")] = None,
) -> None:
    """The most recent LLM calls, newest first."""
    from morningstar.llm.monitor import LLMMonitor

    with recorded_run(ctx, "llm history") as (application, _run_id):
        monitor = LLMMonitor(db=application.db)
        try:
            calls = monitor.history(limit=limit, model=model, caller=caller, status=status)
        finally:
            monitor.close()
    table = Table(title=f"last {len(calls)} LLM calls, newest first", header_style="bold")
    for col in ("started (UTC)", "caller", "model", "status", "ms", "tokens", "cost", "retry"):
        right = col in ("ms", "tokens", "retry")
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for c in calls:
        tokens = f"{_tokens(c.input_tokens)}/{_tokens(c.output_tokens)}"
        cost = "free" if c.price_status in ("free", "cached") else _cost(c.cost_usd)
        status = c.status + (" (cache)" if c.cache_hit else "")
        table.add_row(
            c.started_at.strftime("%m-%d %H:%M:%S"), c.caller, c.model, status,
            f"{c.latency_s * 1000:.0f}", tokens, cost, str(c.retries),
        )  # fmt: skip
    console.print(table)


@app.command("serve")
def serve_cmd(ctx: typer.Context) -> None:
    """Run the REST API (api.host:api.port; a token is required off loopback)."""
    from morningstar.api.server import serve

    with recorded_run(ctx, "serve") as (application, _run_id):
        serve(application.settings, db=application.db)
