"""Research service: backtests on stored data, with results saved as JSON, CSV and HTML."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from morningstar.core.engine import Costs, EngineOptions, Stops
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import StorageError, UserInputError
from morningstar.research import Result, backtest
from morningstar.services.data import pair_arg, resolve_calendar, timeframe_arg

__all__ = ["SavedBacktest", "parse_params", "run_stored_backtest", "save_result"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedBacktest:
    """A backtest and where its files went."""

    result: Result
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
    calendar: str = "auto",
    out: Path | None = None,
    reports_dir: Path | None = None,
) -> SavedBacktest:
    """Backtest ``strategy`` on a stored dataset and save the results.

    Results go to ``out``, or ``<reports_dir>/<strategy>-<venue>-<pair>-<tf>``.

    Raises:
        DataNotFoundError: no stored data for that dataset or range.
        StrategyError / UserInputError: bad strategy, parameters or settings (one line).
    """
    p, tf = pair_arg(pair), timeframe_arg(timeframe)
    bars = store.load(venue, p, tf, start, end)
    if len(bars) < 2:
        raise UserInputError(
            f"only {len(bars)} stored bar(s) of {venue} {p} {tf} in that range",
            hint="widen --start/--end or download/import more data",
        )
    if fill_timing not in ("next_open", "close"):
        raise UserInputError(f"unknown fill timing {fill_timing!r}", hint="use next_open or close")
    cal = resolve_calendar(calendar, venue, p)
    result = backtest(
        bars,
        strategy,
        params,
        costs=Costs(fee_bps=fee_bps, slippage_bps=slippage_bps),
        stops=Stops(stop_loss=stop_loss, take_profit=take_profit, trailing_stop=trailing_stop),
        options=EngineOptions(fill_timing="close" if fill_timing == "close" else "next_open"),
        init_cash=init_cash,
        timeframe=tf,
        calendar=cal,
    )
    if out is None:
        base = reports_dir if reports_dir is not None else store.root / "reports"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{result.strategy}-{venue}-{p.file_stem}-{tf}")
        out = base / slug
    files = save_result(result, out)
    log.info("backtest %s on %s %s %s saved to %s", result.strategy, venue, p, tf, out)
    return SavedBacktest(result, out, files)
