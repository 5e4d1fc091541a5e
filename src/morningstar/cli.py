"""The ``morningstar`` command line (typer + rich).

Every error Morningstar raises on purpose prints ONE line on stderr (what, where, how to fix) and
exits with status 1; ``--debug`` prints the traceback too. Usage errors exit with 2, Ctrl-C with 130.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from morningstar import __version__
from morningstar.errors import ConfigError, MorningstarError, UserInputError

__all__ = ["app", "main"]

log = logging.getLogger(__name__)
_ARGV: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("argv", default=None)
# markup off: file names, values and messages are printed as they are, never read as rich markup
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)


def _error(message: object) -> None:
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
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
data_app = typer.Typer(
    help="Market data: import, download, check, list, resample.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")


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


def _state(ctx: typer.Context) -> CliState:
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
    ctx.obj = CliState(config=config, debug=debug, argv=_ARGV.get())


@contextmanager
def recorded_run(ctx: typer.Context, command: str) -> Iterator[tuple[Any, str]]:
    """Build the app and record this CLI run (secrets masked) in the database around the block."""
    from morningstar.logs import bind
    from morningstar.store.repositories import record_cli_run

    state = _state(ctx)
    application = state.app()
    argv = state.argv if state.argv is not None else sys.argv[1:]
    with (
        record_cli_run(application.db, command, argv, __version__) as run_id,
        bind(run_id=run_id, command=command),
    ):
        yield application, run_id


# ============================================================================ config
@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration file, the environment overrides and the secrets file."""
    from morningstar.config import default_config_path, load_settings

    state = _state(ctx)
    path = state.config or default_config_path()
    try:
        settings = load_settings(state.config)
    except ConfigError as exc:
        for line in getattr(exc, "errors", None) or [str(exc)]:
            _error(line)
        raise typer.Exit(1) from None
    problems = _deep_checks(settings)
    for line in problems:
        _error(line)
    if problems:
        raise typer.Exit(1)
    where = str(path) if path else "defaults (no config file)"
    console.print(Text.assemble(("config OK", "green"), f": {where}"))


def _deep_checks(settings: Any) -> list[str]:
    """Checks that need more than the schema: exchange ids, data dir."""
    import difflib
    import os

    import ccxt

    problems = []
    for name in settings.exchanges:
        if name not in ccxt.exchanges:
            close = difflib.get_close_matches(name, ccxt.exchanges, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see ccxt's list of exchange ids"
            problems.append(f"exchanges.{name}: unknown exchange id — {hint}")
    data_dir = settings.data.dir
    parent = next((p for p in [data_dir, *data_dir.parents] if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK):
        problems.append(f"data.dir: {data_dir} is not writable — choose another folder")
    return problems


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the effective configuration (secrets masked)."""
    from morningstar.config import load_settings, settings_as_dict

    data = settings_as_dict(load_settings(_state(ctx).config))
    if as_json:
        console.print_json(json.dumps(data))
    else:
        console.print(yaml.safe_dump(data, sort_keys=False), highlight=False, markup=False)


# ============================================================================ data
PolicyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--policy",
        "-p",
        help="Validation policy CHECK=POLICY (error|warn|drop|ffill), repeatable, e.g. gap=warn.",
    ),
]
CalendarOpt = Annotated[
    str | None,
    typer.Option(
        help="Trading calendar: auto, crypto, forex, cme or equity (default: data.calendar)."
    ),
]


def _service(application: Any, run_id: str | None) -> Any:
    from morningstar.services.data import DataService

    settings = application.settings
    return DataService(
        application.market_data,
        application.db,
        default_policies=settings.data.policies,
        default_calendar=settings.data.calendar,
        run_id=run_id,
    )


def _status_style(status: str) -> str:
    return {"clean": "green", "warnings": "yellow", "errors": "red"}.get(status, "white")


def _print_report(report: Any, *, verbose: bool = False) -> None:
    """Print a validation report: a status line, then one line per issue with examples."""
    from rich.text import Text

    lines = report.lines(max_examples=10 if verbose else 3)
    style = _status_style(report.status)
    console.print(Text(lines[0], style=f"bold {style}"))
    for line in lines[1:]:
        stripped = line.lstrip()
        if stripped.startswith(("ERROR", "WARNING", "INFO")):
            level = stripped.split(" ", 1)[0]
            color = {"ERROR": "red", "WARNING": "yellow", "INFO": "cyan"}[level]
            console.print(Text(line, style=color))
        else:
            console.print(Text(line, style="dim"))


def _not_ohlcv(exc: Exception, path: Path, explicit: bool) -> bool:
    """A file that is not OHLCV: an error when named explicitly (True), else skipped (False)."""
    if explicit:
        _error(exc)
    else:
        err_console.print(Text.assemble(("skipped ", "yellow"), f"{path}: not an OHLCV file"))
    return explicit


@data_app.command("import")
def data_import(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="CSV files or folders (searched recursively).")
    ],
    venue: Annotated[str | None, typer.Option(help="Venue (default: from the file name).")] = None,
    pair: Annotated[
        str | None, typer.Option(help="Pair BASE/QUOTE (default: from the file name).")
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", "-t", help="Timeframe (default: file name or data)."),
    ] = None,
    calendar: CalendarOpt = None,
    policy: PolicyOpt = None,
    replace: Annotated[bool, typer.Option(help="Replace stored data instead of merging.")] = False,
) -> None:
    """Import CSV files: read, validate, store as Parquet, record the import."""
    from morningstar.data.csv_import import UnknownLayoutError
    from morningstar.services.data import DataService, parse_policy_items

    policies = parse_policy_items(policy or [])
    files = DataService.csv_files(paths)
    failures = skipped = 0
    with recorded_run(ctx, "data import") as (application, run_id):
        service = _service(application, run_id)
        table = Table(title=f"Imported into {application.market_data.base}", header_style="bold")
        for col in ("file", "dataset", "bars", "new", "status", "notes"):
            table.add_column(col)
        from rich.progress import track

        for path, explicit in track(
            files, description="importing", console=err_console, transient=True
        ):
            try:
                out = service.import_file(
                    path,
                    venue=venue,
                    pair=pair,
                    timeframe=timeframe,
                    calendar=calendar,
                    policies=policies,
                    replace=replace,
                )
            except UnknownLayoutError as exc:
                failed = _not_ohlcv(exc, path, explicit)
                failures += failed
                skipped += not failed
                continue
            except MorningstarError as exc:
                failures += 1
                _error(exc)
                continue
            style = _status_style(out.report.status)
            table.add_row(
                path.name,
                f"{out.venue} {out.pair} {out.timeframe}",
                str(out.write.rows_after),
                str(out.write.rows_added),
                Text(out.report.status, style=style),
                "; ".join(out.imported.notes) if out.imported else "",
            )
        if table.row_count:
            console.print(table)
    if skipped:
        err_console.print(f"{skipped} non-OHLCV file(s) skipped", highlight=False)
    if failures:
        err_console.print(f"{failures} of {len(files)} file(s) failed", style="red", markup=False)
        raise typer.Exit(1)


@data_app.command("check")
def data_check(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="CSV files or folders to check.")
    ] = None,
    venue: Annotated[
        str | None, typer.Option(help="Venue of a stored dataset / of the files.")
    ] = None,
    pair: Annotated[
        str | None, typer.Option(help="Pair of a stored dataset / of the files.")
    ] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Timeframe.")] = None,
    calendar: CalendarOpt = None,
    policy: PolicyOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every example.")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the reports as JSON to this file.")
    ] = None,
) -> None:
    """Validate CSV files or a stored dataset and print the report (nothing is changed).

    Exit status: 0 when no check reports an error, 1 otherwise.
    """
    from morningstar.data.csv_import import UnknownLayoutError
    from morningstar.errors import DataValidationError
    from morningstar.services.data import DataService, parse_policy_items

    policies = parse_policy_items(policy or [])
    reports = []
    failures = 0
    with recorded_run(ctx, "data check") as (application, run_id):
        service = _service(application, run_id)
        if paths:
            for path, explicit in DataService.csv_files(paths):
                try:
                    out = service.check_file(
                        path, venue=venue, pair=pair, timeframe=timeframe, calendar=calendar,
                        policies=policies,
                    )  # fmt: skip
                except UnknownLayoutError as exc:
                    failures += _not_ohlcv(exc, path, explicit)
                    continue
                except DataValidationError as exc:
                    failures += 1
                    report = getattr(exc, "report", None)
                    if report is not None:  # show everything the checks found, then the refusal
                        reports.append(report)
                        _print_report(report, verbose=verbose)
                    _error(exc)
                    continue
                except MorningstarError as exc:
                    failures += 1
                    _error(exc)
                    continue
                reports.append(out.report)
                _print_report(out.report, verbose=verbose)
        else:
            if not (venue and pair and timeframe):
                raise _usage(
                    "give CSV paths, or --venue, --pair and --timeframe of a stored dataset"
                )
            out = service.check_stored(venue, pair, timeframe, calendar=calendar, policies=policies)
            reports.append(out.report)
            _print_report(out.report, verbose=verbose)
    if json_out is not None:
        try:
            json_out.write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
        except OSError as exc:
            raise UserInputError(
                f"cannot write the JSON report ({exc.strerror or exc})", where=str(json_out)
            ) from exc
    counts = {s: sum(r.status == s for r in reports) for s in ("clean", "warnings", "errors")}
    console.print(
        f"{len(reports)} report(s): {counts['clean']} clean, {counts['warnings']} with warnings, "
        f"{counts['errors']} with errors",
        highlight=False,
    )
    if failures or counts["errors"]:
        raise typer.Exit(1)


@data_app.command("list")
def data_list(ctx: typer.Context) -> None:
    """List stored datasets: venue, pair, timeframe, bars, first and last bar, size."""
    application = _state(ctx).app()
    infos = application.market_data.list()
    if not infos:
        console.print(
            f"no data stored in {application.market_data.base} — run `morningstar data import` "
            "or `morningstar data download`",
            highlight=False,
        )
        return
    table = Table(title=str(application.market_data.base), header_style="bold")
    for col in ("venue", "pair", "timeframe", "bars", "first", "last", "size"):
        table.add_column(col, justify="right" if col in ("bars", "size") else "left")
    for i in infos:
        table.add_row(
            i.venue,
            str(i.pair),
            str(i.timeframe),
            f"{i.rows:,}",
            str(i.first),
            str(i.last),
            f"{i.size_bytes / 1e6:.1f} MB",
        )
    console.print(table)


@data_app.command("resample")
def data_resample(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option(help="Venue of the stored dataset.")],
    pair: Annotated[str, typer.Option(help="Pair BASE/QUOTE.")],
    source: Annotated[str, typer.Option("--from", help="Stored timeframe, e.g. 5m.")],
    target: Annotated[str, typer.Option("--to", help="Target timeframe, e.g. 1h.")],
    policy: PolicyOpt = None,
    replace: Annotated[
        bool, typer.Option(help="Replace the stored target dataset instead of merging.")
    ] = False,
) -> None:
    """Aggregate a stored dataset to a higher timeframe and merge it into the target dataset.

    Daily bars of forex and CME data follow the 17:00 New York trading day.
    """
    from morningstar.services.data import parse_policy_items

    policies = parse_policy_items(policy or [])
    with recorded_run(ctx, "data resample") as (application, run_id):
        result, outcome = _service(application, run_id).resample(
            venue, pair, source, target, policies=policies, replace=replace
        )
    console.print(
        f"{outcome.venue} {outcome.pair} {source} → {outcome.timeframe}: {result.bins} bars "
        f"({result.partial_bins} from incomplete bins"
        f"{', unfinished last bin dropped' if result.dropped_unfinished else ''}), "
        f"{outcome.write.rows_added} new → {outcome.write.path}",
        highlight=False,
    )


@data_app.command("download")
def data_download(
    ctx: typer.Context,
    exchange: Annotated[
        str, typer.Option("--exchange", "-e", help="ccxt exchange id.")
    ] = "binance",
    pair: Annotated[
        list[str] | None, typer.Option("--pair", help="Pair(s); default: exchanges.<id>.pairs.")
    ] = None,
    timeframe: Annotated[
        list[str] | None,
        typer.Option("--timeframe", "-t", help="Timeframe(s); default: exchanges.<id>.timeframes."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Start (ISO date). Nothing stored: start there. Stored data starting later: "
            "the missing head is downloaded first (backfill)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End (ISO date, exclusive); default now.")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Download again from --since (or the first stored bar), replacing bars."
        ),
    ] = False,
    policy: PolicyOpt = None,
) -> None:
    """Download bars through ccxt: paginated, incremental, resumable, rate-limited, retried."""
    from morningstar.services.data import parse_policy_items
    from morningstar.services.download import download_pairs

    policies = parse_policy_items(policy or [])
    with recorded_run(ctx, "data download") as (application, run_id):
        results = download_pairs(
            application,
            _service(application, run_id),
            exchange=exchange,
            pairs=pair,
            timeframes=timeframe,
            since=since,
            until=until,
            full=full,
            policies=policies,
            console=err_console,
        )
    table = Table(title=f"Downloaded from {exchange}", header_style="bold")
    for col in ("pair", "timeframe", "pages", "fetched", "new", "first", "last"):
        table.add_column(col)
    for r in results:
        table.add_row(
            str(r.pair), str(r.timeframe), str(r.pages), str(r.bars_fetched), str(r.bars_added),
            str(r.first or ""), str(r.last or ""),
        )  # fmt: skip
    console.print(table)


# ============================================================================ backtest
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
    _print_metrics(saved, title=f"{res.strategy}({params_text}) on {venue} {pair[0]} {timeframe}")


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


# ============================================================================ demo (main job)
@app.command("demo")
def demo(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="Demo dataset name.")] = "eurusd-1h-2017",
) -> None:
    """The main job, offline: load the demo data, validate it, store it, backtest it, report."""
    from morningstar.data.demo import demo_dataset

    ds = demo_dataset(dataset)
    with recorded_run(ctx, "demo") as (application, run_id):
        service = _service(application, run_id)
        console.rule("Morningstar demo — offline, embedded defaults")
        console.print(f"data: {ds.description}; licence {ds.licence}", highlight=False)
        outcome = service.import_demo(ds.name)
        _print_report(outcome.report)
        console.print(
            f"stored {outcome.write.rows_after:,} bars of {outcome.venue} {outcome.pair} "
            f"{outcome.timeframe} → {outcome.write.path}",
            highlight=False,
        )
        console.print(
            f"recorded import #{outcome.import_id} and its validation report in "
            f"{_hide_password(application.settings.database_url)}",
            highlight=False,
        )
        if ds.timeframe.seconds < 86_400:
            result, daily = service.resample(ds.venue, str(ds.pair), str(ds.timeframe), "1d")
            console.print(
                f"resampled to 1d: {result.bins} bars → {daily.write.path}", highlight=False
            )
        _demo_backtest(application, outcome)


def _demo_backtest(application: Any, outcome: Any) -> None:
    """The main job's backtest: EMA 10/50 cross on the demo bars, report written to data.dir."""
    from morningstar.services.research import run_stored_backtest

    saved = run_stored_backtest(
        application.market_data,
        venue=outcome.venue,
        pair=str(outcome.pair),
        timeframe=str(outcome.timeframe),
        strategy="ema_cross",
        fee_bps=1.0,  # about the EUR/USD spread of a retail FX account
        calendar="forex",
    )
    _print_metrics(saved, title="backtest: ema_cross 10/50 on demo EUR/USD 1h, 1 bp fees")


def _print_metrics(saved: Any, title: str) -> None:
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


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _usage(message: str) -> typer.BadParameter:
    return typer.BadParameter(message)


# ============================================================================ entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also used by ``python -m morningstar``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _ARGV.set(args)
    try:
        app(args=args, prog_name="morningstar")
    except SystemExit as exc:  # typer/click standalone mode: --help, usage errors, typer.Exit
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except MorningstarError as exc:
        if debug:
            traceback.print_exc()
        _error(exc)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted", style="yellow")
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        err_console.print(
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (run with --debug for the "
            "traceback, and please report it)",
            highlight=False,
        )
        return 70
    return 0
