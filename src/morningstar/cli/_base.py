"""Shared parts of the command line: the typer app, consoles, state and run recording."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from morningstar import __version__

__all__ = [
    "ARGV",
    "CalendarOpt",
    "CliState",
    "app",
    "console",
    "err_console",
    "print_error",
    "print_metrics",
    "recorded_run",
    "state",
]

log = logging.getLogger(__name__)
ARGV: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("argv", default=None)
# markup off: file names, values and messages are printed as they are, never read as rich markup
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)


def print_error(message: object) -> None:
    """Print one ``error: ...`` line on stderr (the text is never read as rich markup)."""
    err_console.print(Text.assemble(("error: ", "red"), " ".join(str(message).split())))


app = typer.Typer(
    name="morningstar",
    help="Morningstar: LLM-supervised algorithmic trading — data, research, paper and live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class CliState:
    """Options of the top-level command, shared by sub-commands."""

    config: Path | None = None
    debug: bool = False
    argv: list[str] | None = None
    _app: Any = field(default=None, repr=False)

    def app(self) -> Any:
        """The composition root's AppContext (built once)."""
        if self._app is None:
            from morningstar.bootstrap import build_app

            self._app = build_app(self.config, console_level="DEBUG" if self.debug else None)
        return self._app


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def _version(value: bool) -> None:
    if value:
        console.print(f"morningstar {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="MORNINGSTAR_CONFIG",
            help="Config file (default config/config.yaml).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Morningstar command line."""
    ctx.obj = CliState(config=config, debug=debug, argv=ARGV.get())


@contextmanager
def recorded_run(ctx: typer.Context, command: str) -> Iterator[tuple[Any, str]]:
    """Build the app and record this CLI run (secrets masked) in the database around the block."""
    from morningstar.logs import bind
    from morningstar.store.repositories import record_cli_run

    cli = state(ctx)
    application = cli.app()
    argv = cli.argv if cli.argv is not None else sys.argv[1:]
    with (
        record_cli_run(application.db, command, argv, __version__) as run_id,
        bind(run_id=run_id, command=command),
    ):
        yield application, run_id


CalendarOpt = Annotated[
    str | None,
    typer.Option(
        help="Trading calendar: auto, crypto, forex, cme or equity (default: data.calendar)."
    ),
]


def print_metrics(saved: Any, title: str) -> None:
    """Print a saved backtest's headline metrics and where its files are."""
    from morningstar.research.report import format_metric

    result = saved.result
    table = Table(title=title, header_style="bold", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate",
                "profit_factor", "trade_count", "exposure", "final_equity"):  # fmt: skip
        table.add_row(key, format_metric(key, float(result.metrics[key])))
    console.print(table)
    console.print(f"report: {saved.files['report']}", highlight=False)
    console.print(f"results: {saved.files['json']}, {saved.files['trades']}", highlight=False)
