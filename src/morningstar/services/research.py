"""Research service: backtests on stored data, with results saved as JSON, CSV and HTML."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from morningstar.core.engine import Costs, EngineOptions, FractionSizing, Stops
from morningstar.core.timeframe import Timeframe
from morningstar.core.types import Pair
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import StorageError, UserInputError
from morningstar.research import (
    PortfolioResult,
    Result,
    SweepResult,
    WalkForwardResult,
    backtest,
    backtest_portfolio,
    sweep,
    walk_forward,
)
from morningstar.services.data import pair_arg, resolve_calendar, timeframe_arg

__all__ = [
    "SavedBacktest",
    "SavedPortfolioBacktest",
    "parse_params",
    "parse_space",
    "run_stored_backtest",
    "run_stored_portfolio_backtest",
    "run_stored_sweep",
    "run_stored_walk_forward",
    "save_portfolio_result",
    "save_result",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedBacktest:
    """A backtest and where its files went."""

    result: Result
    folder: Path
    files: dict[str, Path]


@dataclass(frozen=True)
class SavedPortfolioBacktest:
    """A portfolio backtest and where its files went."""

    result: PortfolioResult
    folder: Path
    files: dict[str, Path]


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``["fast=10", "slow=50"]`` → ``{"fast": "10", "slow": "50"}`` (types checked by the strategy).

    Raises:
        UserInputError: an item is not NAME=VALUE.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(
                f"bad parameter {item!r}", hint="write NAME=VALUE, e.g. --param fast=10"
            )
        out[key.strip()] = value.strip()
    return out


def parse_space(items: Sequence[str]) -> dict[str, list[str]] | None:
    """``["fast=5:50:5", "slow=20,50,100"]`` → values per parameter (None when empty).

    ``a:b:s`` is an inclusive range with step ``s``; ``a,b,c`` a list. Values stay text: the
    strategy converts and checks each one.

    Raises:
        UserInputError: malformed item.
    """
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserInputError(
                f"bad range {item!r}", hint="write NAME=START:STOP:STEP or NAME=A,B,C"
            )
        if ":" in value:
            try:
                lo, hi, step = (float(x) for x in value.split(":"))
            except ValueError:
                raise UserInputError(
                    f"bad range {item!r}", hint="write NAME=START:STOP:STEP, e.g. fast=5:50:5"
                ) from None
            if step <= 0 or hi < lo:
                raise UserInputError(f"bad range {item!r}", hint="need STOP >= START and STEP > 0")
            count = int((hi - lo) / step + 1e-9) + 1
            out[key.strip()] = [f"{lo + i * step:g}" for i in range(count)]
        else:
            out[key.strip()] = [v.strip() for v in value.split(",") if v.strip()]
    return out or None


def _save_table(table: object, summary: dict[str, object], folder: Path) -> dict[str, Path]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {"table": folder / "results.csv", "json": folder / "summary.json"}
        table.to_csv(files["table"], index=False)  # type: ignore[attr-defined]
        files["json"].write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    except OSError as exc:
        raise StorageError(
            f"cannot write the results ({exc.strerror or exc})", where=str(folder),
            hint="choose a writable --out folder",
        ) from exc  # fmt: skip
    return files


def _load(
    store: OHLCVStore, venue: str, pair: str, timeframe: str, start: str | None, end: str | None
) -> tuple[Pair, Timeframe, pd.DataFrame]:
    p, tf = pair_arg(pair), timeframe_arg(timeframe)
    bars = store.load(venue, p, tf, start, end)
    if len(bars) < 2:
        raise UserInputError(
            f"only {len(bars)} stored bar(s) of {venue} {p} {tf} in that range",
            hint="widen --start/--end or download/import more data",
        )
    return p, tf, bars


def run_stored_sweep(
    store: OHLCVStore,
    *,
    venue: str,
    pair: str,
    timeframe: str,
    strategy: str,
    space: Mapping[str, Sequence[object]] | None = None,
    method: str = "grid",
    n_iter: int = 100,
    metric: str = "sharpe",
    min_trades: int = 0,
    start: str | None = None,
    end: str | None = None,
    fee_bps: float = 10.0,
    calendar: str = "auto",
    out: Path | None = None,
) -> tuple[SweepResult, dict[str, Path]]:
    """Sweep ``strategy`` on a stored dataset; save ``results.csv`` (every combination),
    ``summary.json`` and the best combination's report."""
    p, tf, bars = _load(store, venue, pair, timeframe, start, end)
    cal = resolve_calendar(calendar, venue, p)
    result = sweep(
        bars, strategy, space, method=method, n_iter=n_iter, metric=metric,
        min_trades=min_trades, costs=Costs(fee_bps=fee_bps), timeframe=tf, calendar=cal,
    )  # fmt: skip
    folder = out or store.root / "reports" / _slug("sweep", result.best.strategy, venue, p, tf)
    summary = {
        "strategy": result.best.strategy, "metric": metric, "method": method,
        "min_trades": min_trades, "n_trials": result.n_trials, "n_skipped": result.n_skipped,
        "best_params": result.best_params, "best_metrics": result.best.to_dict()["metrics"],
    }  # fmt: skip
    files = _save_table(result.table, summary, folder)
    files.update({f"best_{k}": v for k, v in save_result(result.best, folder / "best").items()})
    return result, files


def run_stored_walk_forward(
    store: OHLCVStore,
    *,
    venue: str,
    pair: str,
    timeframe: str,
    strategy: str,
    train: int,
    test: int,
    space: Mapping[str, Sequence[object]] | None = None,
    anchored: bool = False,
    embargo: int = 0,
    method: str = "grid",
    n_iter: int = 100,
    metric: str = "sharpe",
    start: str | None = None,
    end: str | None = None,
    fee_bps: float = 10.0,
    calendar: str = "auto",
    out: Path | None = None,
) -> tuple[WalkForwardResult, dict[str, Path]]:
    """Walk-forward analysis on a stored dataset; save the per-fold table and the summary."""
    p, tf, bars = _load(store, venue, pair, timeframe, start, end)
    cal = resolve_calendar(calendar, venue, p)
    result = walk_forward(
        bars, strategy, space, train=train, test=test, anchored=anchored, embargo=embargo,
        method=method, n_iter=n_iter, metric=metric, costs=Costs(fee_bps=fee_bps),
        timeframe=tf, calendar=cal,
    )  # fmt: skip
    name = strategy if "/" not in strategy else Path(strategy.split(":", maxsplit=1)[0]).stem
    folder = out or store.root / "reports" / _slug("walkforward", name, venue, p, tf)
    files = _save_table(result.table, result.to_dict(), folder)
    try:
        result.oos_equity.to_csv(folder / "oos_equity.csv")
    except OSError as exc:
        raise StorageError(f"cannot write the results ({exc.strerror})", where=str(folder)) from exc
    files["oos_equity"] = folder / "oos_equity.csv"
    return result, files


def _slug(*parts: object) -> str:
    text = "-".join(p.file_stem if hasattr(p, "file_stem") else str(p) for p in parts)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def save_result(result: Result, folder: Path) -> dict[str, Path]:
    """Write ``result.json``, ``trades.csv``, ``equity.csv`` and ``report.html`` into ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "json": folder / "result.json",
            "trades": folder / "trades.csv",
            "equity": folder / "equity.csv",
            "report": folder / "report.html",
        }
        files["json"].write_text(result.to_json(), encoding="utf-8")
        result.trades.to_csv(files["trades"])
        result.equity.to_frame().join(result.position).to_csv(files["equity"])
        files["report"].write_text(result.to_html(), encoding="utf-8")
    except OSError as exc:
        raise StorageError(
            f"cannot write the backtest results ({exc.strerror or exc})",
            where=str(folder),
            hint="choose a writable --out folder",
        ) from exc
    return files


def run_stored_backtest(
    store: OHLCVStore,
    *,
    venue: str,
    pair: str,
    timeframe: str,
    strategy: str,
    params: Mapping[str, object] | None = None,
    start: str | None = None,
    end: str | None = None,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    trailing_stop: float | None = None,
    fill_timing: str = "next_open",
    init_cash: float = 10_000.0,
    fraction: float | None = None,
    calendar: str = "auto",
    out: Path | None = None,
    reports_dir: Path | None = None,
) -> SavedBacktest:
    """Backtest ``strategy`` on a stored dataset and save the results.

    Results go to ``out``, or ``<reports_dir>/<strategy>-<venue>-<pair>-<tf>``. ``fraction``
    is the fraction of the equity invested per entry (default: all of it).

    Raises:
        DataNotFoundError: no stored data for that dataset or range.
        StrategyError / UserInputError: bad strategy, parameters or settings (one line).
    """
    p, tf, bars = _load(store, venue, pair, timeframe, start, end)
    if fill_timing not in ("next_open", "close"):
        raise UserInputError(f"unknown fill timing {fill_timing!r}", hint="use next_open or close")
    cal = resolve_calendar(calendar, venue, p)
    result = backtest(
        bars,
        strategy,
        params,
        costs=Costs(fee_bps=fee_bps, slippage_bps=slippage_bps),
        sizing=FractionSizing(fraction) if fraction is not None else None,
        stops=Stops(stop_loss=stop_loss, take_profit=take_profit, trailing_stop=trailing_stop),
        options=EngineOptions(fill_timing="close" if fill_timing == "close" else "next_open"),
        init_cash=init_cash,
        timeframe=tf,
        calendar=cal,
    )
    if out is None:
        base = reports_dir if reports_dir is not None else store.root / "reports"
        out = base / _slug(result.strategy, venue, p, tf)
    files = save_result(result, out)
    log.info("backtest %s on %s %s %s saved to %s", result.strategy, venue, p, tf, out)
    return SavedBacktest(result, out, files)


def save_portfolio_result(result: PortfolioResult, folder: Path) -> dict[str, Path]:
    """Write ``result.json``, ``trades.csv``, ``equity.csv`` and ``per_asset.csv`` into ``folder``.

    ``equity.csv`` holds, per bar, the total equity, the cash, and each asset's position
    (``position:<asset>``) and value at its last close (``value:<asset>``).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "json": folder / "result.json",
            "trades": folder / "trades.csv",
            "equity": folder / "equity.csv",
            "per_asset": folder / "per_asset.csv",
        }
        files["json"].write_text(result.to_json(), encoding="utf-8")
        result.trades.to_csv(files["trades"])
        pd.concat(
            [result.equity, result.cash, result.positions.add_prefix("position:"),
             result.values.add_prefix("value:")],
            axis=1,
        ).to_csv(files["equity"])  # fmt: skip
        result.per_asset.to_csv(files["per_asset"])
    except OSError as exc:
        raise StorageError(
            f"cannot write the backtest results ({exc.strerror or exc})",
            where=str(folder),
            hint="choose a writable --out folder",
        ) from exc
    return files


def run_stored_portfolio_backtest(
    store: OHLCVStore,
    *,
    venue: str,
    pairs: Sequence[str],
    timeframe: str,
    strategy: str,
    params: Mapping[str, object] | None = None,
    start: str | None = None,
    end: str | None = None,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    trailing_stop: float | None = None,
    fill_timing: str = "next_open",
    init_cash: float = 10_000.0,
    fraction: float | None = None,
    calendar: str = "auto",
    out: Path | None = None,
    reports_dir: Path | None = None,
) -> SavedPortfolioBacktest:
    """Backtest ``strategy`` on several stored pairs sharing one cash balance; save the results.

    Every pair is loaded from ``venue`` and ``timeframe``; the strategy and its ``params`` apply
    to each. ``fraction`` is the fraction of the total equity invested per entry (default:
    ``1 / len(pairs)``, equal weights); entries within a bar are filled in the order of
    ``pairs``. Results go to ``out``, or ``<reports_dir>/portfolio-<strategy>-<venue>-<pairs>-<tf>``.

    Raises:
        DataNotFoundError: no stored data for one of the pairs or in that range.
        StrategyError / UserInputError: a pair given twice, calendars that differ under
            ``auto``, bad strategy, parameters or settings (one line).
    """
    if len(pairs) < 2:
        raise UserInputError(
            f"a portfolio needs at least 2 pairs, got {len(pairs)}", where="--pair",
            hint="repeat --pair, e.g. --pair BTC/USDT --pair ETH/USDT",
        )  # fmt: skip
    if fill_timing not in ("next_open", "close"):
        raise UserInputError(f"unknown fill timing {fill_timing!r}", hint="use next_open or close")
    parsed = [pair_arg(text) for text in pairs]
    for i, p in enumerate(parsed):
        if p in parsed[:i]:
            raise UserInputError(
                f"pair {p} is given twice", where="--pair", hint="give each pair once"
            )
    data: dict[str, pd.DataFrame] = {}
    for text in pairs:
        p, tf, bars = _load(store, venue, text, timeframe, start, end)
        data[str(p)] = bars
    calendars = {str(p): resolve_calendar(calendar, venue, p) for p in parsed}
    if len(set(calendars.values())) > 1:
        found = ", ".join(f"{p}: {c}" for p, c in calendars.items())
        raise UserInputError(
            f"the pairs trade on different calendars ({found})", where="--calendar",
            hint="choose the one to annualise with, e.g. --calendar crypto",
        )  # fmt: skip
    result = backtest_portfolio(
        data,
        strategy,
        params,
        costs=Costs(fee_bps=fee_bps, slippage_bps=slippage_bps),
        sizing=FractionSizing(fraction if fraction is not None else 1.0 / len(pairs)),
        stops=Stops(stop_loss=stop_loss, take_profit=take_profit, trailing_stop=trailing_stop),
        options=EngineOptions(fill_timing="close" if fill_timing == "close" else "next_open"),
        init_cash=init_cash,
        timeframe=tf,
        calendar=next(iter(calendars.values())),
    )
    if out is None:
        base = reports_dir if reports_dir is not None else store.root / "reports"
        out = base / _slug("portfolio", result.strategy, venue, *parsed, tf)
    files = save_portfolio_result(result, out)
    log.info("portfolio backtest %s on %s %s %s saved to %s", result.strategy, venue,
             ", ".join(map(str, parsed)), tf, out)  # fmt: skip
    return SavedPortfolioBacktest(result, out, files)
