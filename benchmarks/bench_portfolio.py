"""Portfolio-mode benchmark, side by side with vectorbt's cash-sharing portfolio in the same run.

Run:  .venv/bin/python benchmarks/bench_portfolio.py [--repeats 5] [--assets 10] [--bars 100000]

Reference work: 10 assets × 100,000 bars (SYNTHETIC random walks, one seed per asset, labelled
as such), EMA 10/50 cross per asset, long-only, signal at the close, fill at the next open,
0.1 % fee, 1,000 of notional per entry out of one shared cash balance of 10,000 (so the cash
binds: partial fills and skipped entries happen), the same semantics in both libraries
(``docs/engine.md``, "Portfolio mode": vectorbt ``from_signals(..., size_type="value",
cash_sharing=True, group_by=True, call_seq="auto")``).

1. the public API: indicators + signals + portfolio simulation + headline metrics
   (ours: ``backtest_portfolio``; vectorbt: ``MA.run`` + crossings + ``from_signals`` +
   total return, Sharpe ratio and max drawdown of the group);
2. the engine alone on precomputed signals (ours: ``simulate_portfolio``; vectorbt:
   ``from_signals(...).value()``), where both must agree on the trades and the final equity.

Every measurement runs in a fresh subprocess; inside it, one warm-up call on the same data, then
the median of repeated calls. Rounds interleave the libraries (so the machine's noise falls on
both alike) and the median over rounds is reported. Results go to
``benchmarks/results/portfolio.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd

N_ASSETS, N_BARS = {assets}, {bars}
NOTIONAL, CASH, FEE = 1_000.0, 10_000.0, 0.001

def synthetic(n, seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 2e-4, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 5e-4, n))
    idx = pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC", name="timestamp")
    return pd.DataFrame({{"open": open_, "high": high, "low": low, "close": close,
                         "volume": np.ones(n)}}, index=idx.as_unit("ns"))

DATA = {{f"A{{j:02d}}": synthetic(N_BARS, 100 + j) for j in range(N_ASSETS)}}

def matrix(column):
    return np.column_stack([df[column].to_numpy() for df in DATA.values()])

def crosses():
    close = pd.DataFrame(matrix("close"))
    fast = close.ewm(span=10, adjust=False).mean()
    slow = close.ewm(span=50, adjust=False).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    return up.to_numpy(), down.to_numpy()

def timed(fn, repeats={inner}):
    fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t)
    return sorted(samples)[len(samples) // 2], out

def emit(**kw):
    kw["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(kw))
"""

JOBS = {
    "ours_api": """
from morningstar.core.engine import Costs, NotionalSizing
from morningstar.research import backtest_portfolio
def run():
    return backtest_portfolio(DATA, "ema_cross", {{"fast": 10, "slow": 50}}, init_cash=CASH,
                              costs=Costs(fee_bps=FEE * 1e4), sizing=NotionalSizing(NOTIONAL))
sec, r = timed(run)
emit(seconds=sec, trades=len(r.trades), final=r.metrics["final_equity"],
     skipped=r.metrics["skipped_entries"])
""",
    "vbt_api": """
import vectorbt as vbt
vbt.settings["engine"] = {engine!r}  # pinned: numba, or rust with vectorbt-rust installed
index = next(iter(DATA.values())).index.tz_localize(None)
frame = lambda col: pd.DataFrame(matrix(col), index=index, columns=list(DATA))
close, open_ = frame("close"), frame("open")
def run():
    fast = vbt.MA.run(close, 10, ewm=True)
    slow = vbt.MA.run(close, 50, ewm=True)
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries.values, exits.values, price=open_, size=NOTIONAL, size_type="value",
        fees=FEE, init_cash=CASH, cash_sharing=True, group_by=True, call_seq="auto",
        freq="5min")
    return pf, (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown())
sec, (pf, _) = timed(run)
emit(seconds=sec, trades=int(pf.trades.count()), final=float(pf.final_value()))
""",
    "ours_engine": """
from morningstar.core.engine import Costs, NotionalSizing, simulate_portfolio
up, down = crosses()
prices = [matrix(c) for c in ("open", "high", "low", "close")]
def run():
    return simulate_portfolio(*prices, long_entries=up, long_exits=down, init_cash=CASH,
                              costs=Costs(fee_bps=FEE * 1e4), sizing=NotionalSizing(NOTIONAL))
sec, r = timed(run)
emit(seconds=sec, trades=r.n_trades, final=r.final_equity, skipped=int(r.n_skipped.sum()))
""",
    "vbt_engine": """
import vectorbt as vbt
vbt.settings["engine"] = {engine!r}
up, down = crosses()
index = next(iter(DATA.values())).index.tz_localize(None)
frame = lambda values: pd.DataFrame(values, index=index, columns=list(DATA))
close, open_ = frame(matrix("close")), frame(matrix("open"))
entries, exits = frame(up).shift(1, fill_value=False), frame(down).shift(1, fill_value=False)
def run():
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=open_, size=NOTIONAL, size_type="value", fees=FEE,
        init_cash=CASH, cash_sharing=True, group_by=True, call_seq="auto")
    return pf, pf.value()
sec, (pf, value) = timed(run)
emit(seconds=sec, trades=int(pf.trades.count()), final=float(value.iloc[-1]))
""",
}


def run_job(name: str, assets: int, bars: int, inner: int, engine: str = "numba") -> dict[str, Any]:
    code = _PRELUDE.format(assets=assets, bars=bars, inner=inner) + JOBS[name].format(engine=engine)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    out["samples_s"] = [r["seconds"] for r in runs]
    return out


def side_by_side(
    jobs: dict[str, tuple[str, str]], repeats: int, assets: int, bars: int, inner: int
) -> dict[str, Any]:
    """Each labelled ``(job, vectorbt engine)`` once per round, ``repeats`` rounds; medians."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in jobs}
    for _ in range(repeats):
        for label, (job, engine) in jobs.items():
            runs[label].append(run_job(job, assets, bars, inner, engine))
    return {label: _combined(samples) for label, samples in runs.items()}


def vectorbt_engines() -> list[str]:
    """vectorbt's engines present here: numba always, rust with the vectorbt-rust package."""
    import importlib.util

    return ["numba"] + (["rust"] if importlib.util.find_spec("vectorbt_rust") else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of fresh processes")
    parser.add_argument("--inner", type=int, default=5, help="timed calls per process")
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--bars", type=int, default=100_000)
    args = parser.parse_args()
    engines = vectorbt_engines()
    sizes = (args.assets, args.bars, args.inner)
    api = side_by_side(
        {"ours": ("ours_api", "")} | {f"vectorbt ({e})": ("vbt_api", e) for e in engines},
        args.repeats,
        *sizes,
    )
    engine = side_by_side(
        {"ours": ("ours_engine", "")} | {f"vectorbt ({e})": ("vbt_engine", e) for e in engines},
        args.repeats,
        *sizes,
    )
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "reference": (
            f"{args.assets} assets x {args.bars:,} bars (SYNTHETIC), EMA 10/50 cross, long-only, "
            "next-open fills, 0.1% fee, 1,000 notional per entry, 10,000 shared cash"
        ),
        "api": api,
        "engine_on_precomputed_signals": engine,
    }
    out = ROOT / "benchmarks" / "results" / "portfolio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(results["reference"])
    for title, table in (("public API", api), ("engine alone", engine)):
        ours = table["ours"]
        for label, theirs in table.items():
            if label == "ours":
                continue
            print(
                f"{title}: ours {ours['seconds'] * 1e3:.1f} ms, {label} "
                f"{theirs['seconds'] * 1e3:.1f} ms → {theirs['seconds'] / ours['seconds']:.1f}x; "
                f"trades {ours['trades']} vs {theirs['trades']}, final equity "
                f"{ours['final']:.6f} vs {theirs['final']:.6f}"
            )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
