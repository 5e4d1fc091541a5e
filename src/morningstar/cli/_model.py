"""ML model command: train (the EnhancedHybridModel; PyTorch is an optional extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from morningstar.cli._base import CalendarOpt, app, console, err_console, recorded_run

__all__ = ["train_cmd"]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_SHOWN = {
    "signal": ("log_loss", "brier", "macro_f1", "accuracy", "ece"),
    "volatility": ("qlike", "mae"),
    "regime": ("macro_f1", "accuracy", "log_loss"),
    "sltp": ("mae", "mae_sl", "mae_tp"),
}


def print_test_metrics(metrics: dict[str, Any], title: str) -> None:
    """One row per head and metric: model, baseline, and whether the model beats it."""
    table = Table(title=title, header_style="bold")
    for col in ("head", "metric", "model", "baseline", "verdict"):
        table.add_column(col, justify="right" if col in ("model", "baseline") else "left")
    for head, keys in _SHOWN.items():
        scores = metrics.get(head)
        if not scores:
            continue
        for key in keys:
            main = key == scores["main_metric"]
            verdict = ""
            if main:
                verdict = "beats baseline" if scores["beats_baseline"] else "does NOT beat baseline"
            table.add_row(
                head if main else "",
                key + (" *" if main else ""),
                _fmt(scores["model"].get(key)),
                _fmt(scores["baseline"].get(key)),
                Text(verdict, style="green" if scores["beats_baseline"] else "yellow"),
            )
    console.print(table)
    console.print("* main metric of the head (lower is better, except macro-F1)", style="dim")


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    venue: Annotated[str | None, typer.Option(help="Venue of a stored dataset.")] = None,
    pair: Annotated[str | None, typer.Option(help="Pair BASE/QUOTE of a stored dataset.")] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Timeframe, e.g. 5m.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="Train on a CSV file instead (venue/pair/timeframe from its name)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First bar (ISO date, inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO date, exclusive).")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Maximum epochs (default model.training.epochs).")
    ] = None,
    max_bars: Annotated[
        int | None, typer.Option(help="Train on the last N bars only (model.training.max_bars).")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(help="Walk-forward folds: retrain on an expanding window (default 1)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (model.training.seed).")] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu or cuda (model.training.device).")
    ] = None,
    calendar: CalendarOpt = None,
    name: Annotated[
        str | None, typer.Option(help="Artifact name (default venue_pair_timeframe).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Artifact directory (default <models dir>/<name>-v<N>, next version)."),
    ] = None,
) -> None:
    """Train the ML model (signal, volatility, regime, SL/TP heads), evaluate every head against
    its naive baseline on the held-out test window, and save a versioned artifact.

    Needs PyTorch: pip install 'morningstar[ml]' (CPU-only: pip install torch==2.13.0
    --index-url https://download.pytorch.org/whl/cpu).
    """
    from morningstar.model._torch import require_torch

    require_torch()  # one line with the install command when missing
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from morningstar.services.model import load_training_bars, train_and_save

    overrides = {
        "epochs": epochs, "max_bars": max_bars, "walk_forward_folds": folds, "seed": seed,
        "device": device,
    }  # fmt: skip
    with recorded_run(ctx, "train") as (application, _run_id):
        settings = application.settings
        model_settings = _with_overrides(settings.model, overrides)
        bars, source = load_training_bars(
            application.market_data, venue=venue, pair=pair, timeframe=timeframe, csv=csv,
            start=start, end=end, calendar=calendar or settings.data.calendar,
        )  # fmt: skip
        limit = model_settings.training.max_bars
        if limit is not None and len(bars) > limit:
            bars = bars.iloc[-limit:]
        console.print(
            f"training on {len(bars):,} bars of {source.get('venue')} {source.get('pair')} "
            f"{source.get('timeframe')} ({bars.index[0]} → {bars.index[-1]})",
            highlight=False,
        )
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        tasks: dict[int, Any] = {}

        def on_epoch(entry: Any) -> None:
            if entry.fold not in tasks:
                tasks[entry.fold] = progress.add_task(
                    f"fold {entry.fold}/{entry.folds}", total=entry.epochs, stats=""
                )
            acc = "" if entry.val_signal_accuracy is None else (
                f" val acc {entry.val_signal_accuracy:.3f}"
            )  # fmt: skip
            progress.update(
                tasks[entry.fold],
                completed=entry.epoch,
                stats=f"epoch {entry.epoch} train {entry.train_loss:.4f} val {entry.val_loss:.4f}"
                f"{acc}{' *' if entry.best else ''}",
            )

        with progress:
            trained = train_and_save(
                bars, model_settings, models_dir=settings.models_dir, source=source, out=out,
                name=name, on_epoch=on_epoch,
            )  # fmt: skip
    result = trained.result
    test = result.windows[-1]["test"]
    print_test_metrics(
        result.metrics["test"],
        title=f"test window {test['first']} → {test['last']} "
        f"({len(result.windows)} fold(s)), vs naive baselines",
    )
    console.print(
        f"trained in {result.train_seconds:.1f} s on {result.device}; "
        f"{sum(h.epoch == 1 for h in result.history)} fold(s), {len(result.history)} epochs",
        highlight=False,
    )
    console.print(f"model saved: {trained.path}", highlight=False)


def _with_overrides(model_settings: Any, overrides: dict[str, Any]) -> Any:
    """``model_settings`` with the command-line values that were given (validated)."""
    from pydantic import ValidationError

    from morningstar.config import TrainSpec
    from morningstar.errors import UserInputError

    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return model_settings
    try:
        training = TrainSpec.model_validate({**model_settings.training.model_dump(), **given})
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-").replace("walk-forward-", "")
        raise UserInputError(f"{err['input']!r}: {err['msg'].lower()}", where=option) from None
    return model_settings.model_copy(update={"training": training})
