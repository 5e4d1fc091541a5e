"""Walk-forward analysis and purged cross-validation: out-of-sample metrics that show overfitting.

``walk_forward()`` repeats, for each fold of :func:`morningstar.core.splits.walk_forward_splits`:

1. **in-sample**: :func:`~morningstar.research.sweep.sweep` on the train window's bars only, and
   the best parameters by ``metric``;
2. **out-of-sample**: a backtest of those parameters on the test window's bars.

Out-of-sample convention (no look-ahead, no leak): the strategy's signals are computed on the
``warmup`` bars *before* the test window followed by the test bars, so indicators are warmed up,
then cut to the test bars; the engine runs on the test bars only. Each fold starts flat with
``init_cash`` (a signal before the window is ignored) and, unless ``options`` says otherwise,
closes what is still open at the window's last close (``close_at_end=True``, fees paid). Nothing
of the test window reaches the choice of parameters: the sweep only ever sees the train window.

The stitched out-of-sample equity chains the folds: fold ``k+1``'s curve is scaled to start
where fold ``k`` ended, so it has exactly one value per test bar. Its returns give the OOS
metrics and the deflated Sharpe ratio (:mod:`morningstar.core.overfitting`), deflated by the
number of trials evaluated across all folds and the variance of their in-sample per-bar
Sharpe ratios. See ``docs/walkforward.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from morningstar.core.engine import Costs, EngineOptions, OrderLimits, Sizing, Stops
from morningstar.core.metrics import periods_per_year, simple_returns, summary
from morningstar.core.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
)
from morningstar.core.splits import Split, purged_kfold, walk_forward_splits
from morningstar.core.timeframe import Timeframe
from morningstar.data.ohlcv import to_contract
from morningstar.errors import UserInputError
from morningstar.research.backtest import Result, backtest, resolve_strategy, resolve_timeframe
from morningstar.research.sweep import sweep
from morningstar.strategies import Bars, ParamValue, Signals, Strategy

__all__ = [
    "CVFold",
    "CVResult",
    "WalkForwardFold",
    "WalkForwardResult",
    "purged_cv",
    "walk_forward",
]

#: Metrics shown per fold in the tables (plus the ranking metric).
FOLD_METRICS = ("sharpe", "total_return", "max_drawdown", "trade_count")
_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class WalkForwardFold:
    """One walk-forward fold.

    Attributes:
        index: fold number (0 = earliest).
        split: bar positions of the train and test windows.
        params: parameters chosen on the train window (the sweep's best).
        n_trials: combinations evaluated on the train window.
        in_sample: metrics of ``params`` on the train window.
        sweep_table: the train window's sweep table (best first).
        oos: the out-of-sample backtest on the test window.
    """

    index: int
    split: Split
    params: dict[str, ParamValue]
    n_trials: int
    in_sample: dict[str, float]
    sweep_table: pd.DataFrame = field(repr=False)
    oos: Result = field(repr=False)


@dataclass(frozen=True)
class WalkForwardResult:
    """A finished walk-forward analysis.

    Attributes:
        strategy: strategy name.
        metric: the metric parameters were chosen by.
        folds: the folds, in time order.
        table: one row per fold: windows (first/last bar times), bars, trials, chosen parameters,
            ``is_*`` (in-sample) and ``oos_*`` metrics.
        oos_equity: stitched out-of-sample equity, one value per test bar.
        oos_metrics: :func:`~morningstar.core.metrics.summary` of ``oos_equity``.
        n_trials: combinations evaluated over all folds.
        sr_variance: variance of the in-sample per-bar Sharpe ratios of all trials.
        expected_max_sharpe: ``SR0``, per bar: the best Sharpe ``n_trials`` skill-less trials
            show by luck.
        psr: probabilistic Sharpe ratio of the OOS returns against 0.
        dsr: deflated Sharpe ratio of the OOS returns (PSR against ``expected_max_sharpe``).
        periods_per_year: annualisation factor of the metrics.
        settings: the walk-forward settings, as plain values.
    """

    strategy: str
    metric: str
    folds: tuple[WalkForwardFold, ...] = field(repr=False)
    table: pd.DataFrame = field(repr=False)
    oos_equity: pd.Series = field(repr=False)
    oos_metrics: dict[str, float]
    n_trials: int
    sr_variance: float
    expected_max_sharpe: float
    psr: float
    dsr: float
    periods_per_year: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def oos_returns(self) -> pd.Series:
        """Per-bar returns of the stitched OOS equity (one fewer than its bars)."""
        return self.oos_equity.pct_change().iloc[1:].rename("return")

    def summary(self) -> dict[str, float | int | str]:
        """Headline numbers: folds, trials, mean in-sample vs OOS metric, OOS results, DSR.

        Sharpe ratios here are annualised (``expected_max_sharpe_annualised`` is ``SR0`` scaled
        by ``sqrt(periods_per_year)`` to compare with ``oos_sharpe``); ``psr`` and ``dsr`` are
        probabilities.
        """
        m = self.metric
        is_mean = float(self.table[f"is_{m}"].mean()) if len(self.table) else math.nan
        oos_mean = float(self.table[f"oos_{m}"].mean()) if len(self.table) else math.nan
        root = math.sqrt(self.periods_per_year)
        return {
            "strategy": self.strategy,
            "metric": m,
            "folds": len(self.folds),
            "n_trials": self.n_trials,
            "oos_bars": len(self.oos_equity),
            f"is_{m}_mean": is_mean,
            f"oos_{m}_mean": oos_mean,
            "oos_sharpe": self.oos_metrics["sharpe"],
            "oos_total_return": self.oos_metrics["total_return"],
            "oos_max_drawdown": self.oos_metrics["max_drawdown"],
            "oos_trade_count": self.oos_metrics["trade_count"],
            "expected_max_sharpe_annualised": self.expected_max_sharpe * root,
            "psr": self.psr,
            "dsr": self.dsr,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly result: settings, summary and each fold (NaN/inf as strings)."""
        folds = []
        for f in self.folds:
            row = self.table.loc[f.index]
            folds.append(
                {
                    "fold": f.index,
                    "train": [str(row["train_first"]), str(row["train_last"])],
                    "test": [str(row["test_first"]), str(row["test_last"])],
                    "n_trials": f.n_trials,
                    "params": f.params,
                    "in_sample": _clean_dict(f.in_sample),
                    "oos": _clean_dict(f.oos.metrics),
                }
            )
        return {
            "strategy": self.strategy,
            "settings": self.settings,
            "summary": _clean_dict(self.summary()),
            "oos_metrics": _clean_dict(self.oos_metrics),
            "folds": folds,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=str)


def _clean(v: object) -> object:
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else str(float(v))
    return v


def _clean_dict(d: Mapping[str, object]) -> dict[str, object]:
    return {k: _clean(v) for k, v in d.items()}


class _WarmStart(Strategy):
    """``inner``'s signals computed on ``prefix`` bars + the given bars, cut to the given bars.

    Entries are those ``inner`` would give at each bar with the prefix as history (point-in-time
    strategies only look back, so nothing after a bar reaches it).
    """

    def __init__(self, inner: Strategy, prefix: Bars) -> None:
        self.inner = inner
        self.prefix = prefix

    def resolve(self, params: Mapping[str, object] | None = None) -> dict[str, ParamValue]:  # type: ignore[override]
        return self.inner.resolve(params)

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        cut = len(self.prefix)
        if cut == 0:
            return self.inner.signals(bars, params)
        pre = self.prefix
        full = Bars(
            np.concatenate([pre.open, bars.open]),
            np.concatenate([pre.high, bars.high]),
            np.concatenate([pre.low, bars.low]),
            np.concatenate([pre.close, bars.close]),
            np.concatenate([pre.volume, bars.volume]),
        )
        sig = self.inner.signals(full, params)

        def tail(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[cut:]

        return Signals(
            long_entries=sig.long_entries[cut:],
            long_exits=sig.long_exits[cut:],
            short_entries=tail(sig.short_entries),
            short_exits=tail(sig.short_exits),
            stop_distance=tail(sig.stop_distance),
            target_distance=tail(sig.target_distance),
            indicators={k: v[cut:] for k, v in sig.indicators.items()},
        )


def _bars(df: pd.DataFrame) -> Bars:
    o, h, lo, c, v = (df[name].to_numpy(dtype=np.float64) for name in _COLUMNS)
    return Bars(o, h, lo, c, v)


def _check_warmup(warmup: int | None) -> None:
    if warmup is not None and (
        isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0
    ):
        raise UserInputError(f"warmup must be a whole number of bars >= 0 or None, got {warmup!r}")


def _oos_backtest(
    bars_df: pd.DataFrame,
    strat: Strategy,
    params: Mapping[str, object],
    test: np.ndarray,
    warmup: int | None,
    **kwargs: Any,
) -> Result:
    """Backtest ``params`` on the bars ``test`` (contiguous), warmed up on the bars before."""
    start, end = int(test[0]), int(test[-1]) + 1
    first = 0 if warmup is None else max(0, start - warmup)
    warm = _WarmStart(strat, _bars(bars_df.iloc[first:start]))
    result = backtest(bars_df.iloc[start:end], warm, params, **kwargs)
    return replace(result, strategy=strat.name or type(strat).__name__)


def walk_forward(
    data: pd.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    space: Mapping[str, Sequence[object]] | None = None,
    *,
    train: int,
    test: int,
    step: int | None = None,
    anchored: bool = False,
    embargo: int = 0,
    warmup: int | None = None,
    method: str = "grid",
    n_iter: int = 100,
    seed: int = 0,
    metric: str = "sharpe",
    costs: Costs | None = None,
    stops: Stops | None = None,
    sizing: Sizing | None = None,
    limits: OrderLimits | None = None,
    options: EngineOptions | None = None,
    init_cash: float = 10_000.0,
    timeframe: str | Timeframe | None = None,
    calendar: str = "crypto",
    n_jobs: int | None = None,
) -> WalkForwardResult:
    """Walk-forward analysis: optimise on each train window, test the winner on the next window.

    Args:
        data: OHLCV bars (one asset, strictly increasing).
        strategy: a built-in name, ``"file.py:Class"``, a class or an instance.
        space: values per parameter for the sweep (None = the declared grids).
        train: bars per train window (of the first window when ``anchored``).
        test: bars per test window (>= 2).
        step: bars between test-window starts (default ``test``: test windows tile the data).
        anchored: every train window starts at the first bar (expanding window).
        embargo: bars skipped between each train window and its test window.
        warmup: bars before each test window used to warm up the indicators (None = all of them).
        method, n_iter, seed, metric: the sweep's search (``grid`` or ``random``) and the metric
            maximised in-sample.
        costs, stops, sizing, limits, init_cash, timeframe, calendar: as in
            :func:`~morningstar.research.backtest`.
        options: engine options; the OOS folds default to ``EngineOptions(close_at_end=True)``.
        n_jobs: sweep worker threads.

    Returns:
        A :class:`WalkForwardResult`.

    Raises:
        UserInputError: bad windows (too few bars, ``step < test``...) or data.
        StrategyError: unknown strategy, parameter or no valid combination.
    """
    strat = resolve_strategy(strategy)
    bars_df = to_contract(data, where="walk-forward data")
    index = pd.DatetimeIndex(bars_df.index)
    tf = resolve_timeframe(timeframe, index)
    _check_warmup(warmup)
    if isinstance(test, int) and not isinstance(test, bool) and test < 2:
        raise UserInputError(f"test must be >= 2 bars, got {test}", where="walk_forward")
    try:
        splits = walk_forward_splits(
            len(bars_df), train=train, test=test, step=step, anchored=anchored, embargo=embargo
        )
    except ValueError as exc:
        raise UserInputError(str(exc), where="walk_forward") from None
    if any(s.train.size < 2 for s in splits):
        raise UserInputError(f"train must be >= 2 bars, got {train}", where="walk_forward")

    run_kwargs: dict[str, Any] = {
        "costs": costs, "stops": stops, "sizing": sizing, "limits": limits,
        "init_cash": init_cash, "calendar": calendar,
    }  # fmt: skip
    oos_options = options if options is not None else EngineOptions(close_at_end=True)
    folds: list[WalkForwardFold] = []
    for i, split in enumerate(splits):
        train_df = bars_df.iloc[int(split.train[0]) : int(split.train[-1]) + 1]
        found = sweep(
            train_df, strat, space, method=method, n_iter=n_iter, seed=seed, metric=metric,
            options=options, timeframe=str(tf), n_jobs=n_jobs, **run_kwargs,
        )  # fmt: skip
        oos = _oos_backtest(
            bars_df, strat, found.best_params, split.test, warmup,
            options=oos_options, timeframe=tf, **run_kwargs,
        )  # fmt: skip
        folds.append(
            WalkForwardFold(
                index=i,
                split=split,
                params=dict(found.best_params),
                n_trials=int(found.n_trials),
                in_sample=dict(found.best.metrics),
                sweep_table=found.table,
                oos=oos,
            )
        )

    ppy = periods_per_year(tf, calendar)
    equity, position, pnl = _stitch(folds, init_cash)
    oos_metrics = summary(equity.to_numpy(), pnl, position.to_numpy(), ppy)
    oos_metrics["final_equity"] = float(equity.iloc[-1])
    n_trials = sum(f.n_trials for f in folds)
    sr_var = _sharpe_variance(folds, ppy)
    returns = simple_returns(equity.to_numpy())
    sr0, psr, dsr = _deflate(returns, n_trials, sr_var)
    name = strat.name or type(strat).__name__
    oos_settings = folds[0].oos.settings
    settings = {
        "train": train, "test": test, "step": step if step is not None else test,
        "anchored": anchored, "embargo": embargo, "warmup": warmup, "method": method,
        "n_iter": n_iter, "seed": seed, "metric": metric, "timeframe": str(tf),
        "calendar": calendar, "init_cash": init_cash, "costs": oos_settings.get("costs"),
        "sizing": oos_settings.get("sizing"), "stops": oos_settings.get("stops"),
        "oos_options": oos_settings.get("options"),
    }  # fmt: skip
    return WalkForwardResult(
        strategy=name,
        metric=metric,
        folds=tuple(folds),
        table=_fold_table(folds, bars_df.index, metric),
        oos_equity=equity,
        oos_metrics=oos_metrics,
        n_trials=n_trials,
        sr_variance=sr_var,
        expected_max_sharpe=sr0,
        psr=psr,
        dsr=dsr,
        periods_per_year=ppy,
        settings=settings,
    )


def _stitch(
    folds: Sequence[WalkForwardFold], init_cash: float
) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Chain the folds' equity: each fold starts (from ``init_cash``) where the previous ended."""
    level = init_cash
    equities: list[pd.Series] = []
    positions: list[pd.Series] = []
    pnls: list[np.ndarray] = []
    for f in folds:
        scale = level / init_cash
        eq = f.oos.equity * scale
        equities.append(eq)
        positions.append(f.oos.position)
        closed = f.oos.trades[~f.oos.trades["is_open"]] if len(f.oos.trades) else f.oos.trades
        pnls.append(
            closed["pnl"].to_numpy(dtype=np.float64) * scale if len(closed) else np.empty(0)
        )
        level = float(eq.iloc[-1])
    equity = pd.concat(equities).rename("equity")
    position = pd.concat(positions).rename("position")
    return equity, position, np.concatenate(pnls)


def _sharpe_variance(folds: Sequence[WalkForwardFold], ppy: float) -> float:
    """Variance of the trials' per-bar in-sample Sharpe ratios: within each fold (ddof=1, the
    trials of one fold ran on the same bars), averaged over the folds weighted by trial count."""
    total = weight = 0.0
    for f in folds:
        if "sharpe" not in f.sweep_table.columns:
            continue
        sr = f.sweep_table["sharpe"].to_numpy(dtype=np.float64) / math.sqrt(ppy)
        sr = sr[np.isfinite(sr)]
        if sr.size >= 2:
            total += float(np.var(sr, ddof=1)) * sr.size
            weight += sr.size
    return total / weight if weight else math.nan


def _deflate(returns: np.ndarray, n_trials: int, sr_var: float) -> tuple[float, float, float]:
    """(SR0 per bar, PSR against 0, DSR) of ``returns``; NaN where undefined.

    One trial has no selection to deflate: SR0 = 0 and the DSR is the PSR.
    """
    if n_trials == 1:
        sr0, var = 0.0, 0.0
    elif math.isfinite(sr_var):
        sr0, var = expected_max_sharpe(n_trials, sr_var), sr_var
    else:
        sr0 = var = math.nan
    if returns.size < 2:
        return sr0, math.nan, math.nan
    m = return_moments(returns)
    if math.isnan(m.sharpe):
        return sr0, math.nan, math.nan
    psr = probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis)
    dsr = math.nan if math.isnan(var) else deflated_sharpe_ratio(returns, n_trials, var)
    return sr0, psr, dsr


def _fold_table(folds: Sequence[WalkForwardFold], index: pd.Index, metric: str) -> pd.DataFrame:
    keys = list(dict.fromkeys((*FOLD_METRICS, metric)))
    rows = []
    for f in folds:
        train, test = f.split.train, f.split.test
        row: dict[str, object] = {
            "fold": f.index,
            "train_first": index[int(train[0])],
            "train_last": index[int(train[-1])],
            "test_first": index[int(test[0])],
            "test_last": index[int(test[-1])],
            "train_bars": int(train.size),
            "test_bars": int(test.size),
            "n_trials": f.n_trials,
        }
        row.update({k: v for k, v in f.params.items() if k not in row})
        row.update({f"is_{k}": f.in_sample.get(k, math.nan) for k in keys})
        row.update({f"oos_{k}": f.oos.metrics.get(k, math.nan) for k in keys})
        rows.append(row)
    return pd.DataFrame(rows).set_index("fold")


@dataclass(frozen=True)
class CVFold:
    """One purged k-fold test fold evaluated with fixed parameters.

    Attributes:
        index: fold number.
        split: the purged train positions and the test positions.
        result: the backtest on the test fold (warmed up on the bars before it).
    """

    index: int
    split: Split
    result: Result = field(repr=False)


@dataclass(frozen=True)
class CVResult:
    """Fixed parameters evaluated on each test fold of a purged k-fold split.

    Attributes:
        strategy: strategy name.
        params: the parameters evaluated.
        folds: the folds in time order.
        table: one row per fold: test window, bars, purged train bars and metrics.
    """

    strategy: str
    params: dict[str, ParamValue]
    folds: tuple[CVFold, ...] = field(repr=False)
    table: pd.DataFrame = field(repr=False)

    def summary(self, metric: str = "sharpe") -> dict[str, float | int | str]:
        """Mean, standard deviation, minimum and maximum of ``metric`` across the folds."""
        values = self.table[metric].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        some = finite.size > 0
        return {
            "strategy": self.strategy,
            "metric": metric,
            "folds": len(self.folds),
            "mean": float(finite.mean()) if some else math.nan,
            "std": float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan,
            "min": float(finite.min()) if some else math.nan,
            "max": float(finite.max()) if some else math.nan,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly result (NaN/inf as strings)."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "summary": _clean_dict(self.summary()),
            "folds": [
                {
                    "fold": f.index,
                    "test": [str(f.result.bars.index[0]), str(f.result.bars.index[-1])],
                    "train_bars": int(f.split.train.size),
                    "metrics": _clean_dict(f.result.metrics),
                }
                for f in self.folds
            ],
        }


def purged_cv(
    data: pd.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    params: Mapping[str, object] | None = None,
    *,
    k: int = 5,
    embargo: int = 0,
    label_horizon: int = 0,
    warmup: int | None = None,
    costs: Costs | None = None,
    stops: Stops | None = None,
    sizing: Sizing | None = None,
    limits: OrderLimits | None = None,
    options: EngineOptions | None = None,
    init_cash: float = 10_000.0,
    timeframe: str | Timeframe | None = None,
    calendar: str = "crypto",
) -> CVResult:
    """Evaluate fixed ``params`` on each test fold of a purged k-fold split.

    Each test fold is backtested like a walk-forward OOS window (indicators warmed up on the
    ``warmup`` bars before it, None = all; starts flat; open positions closed at its end unless
    ``options`` says otherwise). The purged training positions (``split.train``) are for a
    caller that fits something (a model, a parameter choice) on them; this function fits nothing.

    Args:
        data: OHLCV bars.
        strategy: name, file spec, class or instance.
        params: the parameters (None = defaults).
        k: number of folds.
        embargo: bars after each test fold removed from its training set.
        label_horizon: bars before each test fold purged from its training set.
        warmup, costs, stops, sizing, limits, options, init_cash, timeframe, calendar: as in
            :func:`walk_forward`.

    Raises:
        UserInputError: bad ``k``/``embargo``/``label_horizon`` or a fold under 2 bars.
        StrategyError: unknown strategy or bad parameters.
    """
    strat = resolve_strategy(strategy)
    resolved = strat.resolve(params)
    bars_df = to_contract(data, where="purged_cv data")
    tf = resolve_timeframe(timeframe, pd.DatetimeIndex(bars_df.index))
    _check_warmup(warmup)
    try:
        splits = purged_kfold(len(bars_df), k, embargo=embargo, label_horizon=label_horizon)
    except ValueError as exc:
        raise UserInputError(str(exc), where="purged_cv") from None
    if any(s.test.size < 2 for s in splits):
        raise UserInputError(
            f"{len(bars_df)} bars in {k} folds leave a fold under 2 bars", where="purged_cv"
        )
    folds = []
    for i, split in enumerate(splits):
        res = _oos_backtest(
            bars_df, strat, resolved, split.test, warmup,
            costs=costs, stops=stops, sizing=sizing, limits=limits,
            options=options if options is not None else EngineOptions(close_at_end=True),
            init_cash=init_cash, timeframe=tf, calendar=calendar,
        )  # fmt: skip
        folds.append(CVFold(i, split, res))
    index = bars_df.index
    table = pd.DataFrame(
        [
            {
                "fold": f.index,
                "test_first": index[f.split.test_start],
                "test_last": index[f.split.test_end - 1],
                "test_bars": int(f.split.test.size),
                "train_bars": int(f.split.train.size),
                **f.result.metrics,
            }
            for f in folds
        ]
    ).set_index("fold")
    return CVResult(
        strategy=strat.name or type(strat).__name__,
        params=resolved,
        folds=tuple(folds),
        table=table,
    )
