"""The ``morningstar`` command line (typer + rich).

Every error Morningstar raises on purpose prints ONE line on stderr (what, where, how to fix) and
exits with status 1; ``--debug`` prints the traceback too. Usage errors exit with 2, Ctrl-C with 130.

Modules: ``_base`` (the typer app, consoles, state, run recording), this one (config, data, demo,
the entry point), ``_research`` (backtest, sweep, walkforward), ``_llm`` (llm, serve).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table
from rich.text import Text

# the command modules register their commands on ``app`` when imported
from morningstar.cli import (
    _llm,  # noqa: F401  (llm ask|status|history, serve)
    _model,  # noqa: F401  (train)
    _research,  # noqa: F401  (backtest, sweep, walkforward)
    _run,  # noqa: F401  (run: the trading workflow)
)
from morningstar.cli._base import ARGV as _ARGV
from morningstar.cli._base import (
    CalendarOpt,
    app,
    console,
    err_console,
    recorded_run,
)
from morningstar.cli._base import print_error as _error
from morningstar.cli._base import state as _state
from morningstar.errors import ConfigError, MorningstarError, UserInputError

__all__ = ["app", "main"]

config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
data_app = typer.Typer(
    help="Market data: import, download, check, list, resample.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")


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
        _demo_workflow(application, outcome)


#: The demo's model: small and quick to train on 6,000 bars (a few seconds on one CPU thread).
DEMO_MODEL = "demo_eurusd_1h"


def _demo_model(application: Any, outcome: Any) -> Path:
    """The demo's trained model: the newest ``<data.dir>/models/demo_eurusd_1h-v<N>``, trained
    on the demo bars first when none exists (PyTorch, CPU)."""
    from morningstar.model.artifact import next_version_dir
    from morningstar.services.model import train_and_save

    models = application.settings.models_dir
    existing = sorted(models.glob(f"{DEMO_MODEL}-v*/model.json")) if models.is_dir() else []
    if existing:
        newest = max(existing, key=lambda p: int(p.parent.name.rsplit("-v", 1)[1]))
        console.print(f"model: {newest.parent} (trained earlier)", highlight=False)
        return Path(newest.parent)
    bars = application.market_data.load(outcome.venue, outcome.pair, outcome.timeframe)
    cut = bars.index[int(len(bars) * 0.6)]  # train on the first 60 %, trade the rest
    settings = application.settings.model
    data = settings.model_dump()
    data["training"].update({"epochs": 4, "patience": 2, "torch_threads": 1})
    data["network"].update({"hidden": 32, "conv_channels": 16})
    small = type(settings).model_validate(data)
    console.print(f"training a small model on {int((bars.index < cut).sum()):,} demo bars "
                  f"(until {cut:%Y-%m-%d}) ...", highlight=False)  # fmt: skip
    trained = train_and_save(
        bars[bars.index < cut], small, models_dir=models,
        source={"kind": "demo", "venue": outcome.venue, "pair": str(outcome.pair),
                "timeframe": str(outcome.timeframe)},
        out=next_version_dir(models, DEMO_MODEL),
    )  # fmt: skip
    console.print(f"model saved: {trained.path}", highlight=False)
    return Path(trained.path)


def _demo_workflow(application: Any, outcome: Any) -> None:
    """The main job's trading workflow: the demo model predicts, the rule-based analyst
    supervises (offline, labelled as such), the risk engine decides, the simulated broker fills,
    every cycle is persisted; the summary and the HTML report path end the run."""
    from morningstar.cli._run import print_run
    from morningstar.services.workflow import run_backtest, with_overrides

    model_dir = _demo_model(application, outcome)
    settings = with_overrides(
        application.settings, supervisor=True, predictor=f"model:{model_dir}",
        venue=outcome.venue, pairs=[str(outcome.pair)], timeframe=str(outcome.timeframe),
        workflow={"fee_bps": 1.0, "decision": {"allow_shorts": True}},  # ~ a retail FX spread
    )  # fmt: skip
    bars = application.market_data.load(outcome.venue, outcome.pair, outcome.timeframe)
    start = bars.index[int(len(bars) * 0.6)]
    label = "rule-based analyst, not an LLM" if settings.llm.provider == "offline" else "LLM"
    console.rule(f"trading workflow: model + supervisor ({label}) + risk engine, backtest")
    result = run_backtest(
        settings, application.db, {str(outcome.pair): bars}, calendar="forex",
        start=start.isoformat(), out=application.settings.data.dir / "reports",
    )  # fmt: skip
    print_run(result, title=f"workflow backtest on demo {outcome.pair} {outcome.timeframe}, "
                            f"from {start:%Y-%m-%d}")  # fmt: skip
    console.print(f"report: {result.report}", highlight=False)


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
