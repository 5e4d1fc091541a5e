"""Engine benchmark, side by side with vectorbt and backtesting.py in the same run.

Run:  .venv/bin/python benchmarks/bench_engine.py [--repeats 5] [--skip-backtesting]

Reference work (the issue's): EMA 10/50 cross, long-only, signal at the close, fill at the next
open, 0.1 % fee, all-in sizing.

1. single backtest on 1,000,000 bars (SYNTHETIC random walk, labelled as such) through each
   library's public API: indicators + signals + simulation + headline metrics;
2. the 174-combination sweep (fast 5..50 step 5 × slow 20..200 step 10, fast < slow) on 100,000
   bars (SYNTHETIC), time and peak RSS of the process doing it;
3. time per million bars on real data: genetrader BTC/USDT 5m and the 1m BTC perpetual;
4. numba compile / first call (fresh process) versus a warm call (on-disk cache).

Every measurement runs in a fresh subprocess (so peak RSS is that of the work alone); inside it,
one warm-up call on the same data, then the median of repeated calls (the first call on fresh
data of this size pays page faults for every library alike). The subprocesses are repeated and
the median reported. Results go to ``benchmarks/results/engine.json``.
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
SHARED = ROOT.parent / "shared" / "data"
FAST = list(range(5, 55, 5))
SLOW = list(range(20, 210, 10))

_PRELUDE = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd

def synthetic(n, seed=42):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 2e-4, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 5e-4, n))
    idx = pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC", name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": np.ones(n)}, index=idx.as_unit("ns"))

def real(path):
    from morningstar.data.csv_import import read_ohlcv_csv
    return read_ohlcv_csv(path).frame

def timed(fn, repeats=5):
    # median of warm in-process calls (the first call on fresh data pays page faults)
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
    "ours_single": """
from morningstar.core.engine import Costs
from morningstar.research import backtest
df = {data}
sec, r = timed(lambda: backtest(df, "ema_cross", {{"fast": 10, "slow": 50}}, costs=Costs(fee_bps=10)))
emit(seconds=sec, trades=len(r.trades), final=r.metrics["final_equity"], bars=len(df))
""",
    "ours_first_call": """
t = time.perf_counter()
from morningstar.core.engine import Costs
from morningstar.research import backtest
df = synthetic(10_000)
r = backtest(df, "ema_cross", {{"fast": 10, "slow": 50}}, costs=Costs(fee_bps=10))
emit(seconds=time.perf_counter() - t)
""",
    "vbt_single": """
import vectorbt as vbt
vbt.settings["engine"] = {engine!r}  # pinned: numba, or rust with vectorbt-rust installed
df = {data}
df.index = df.index.tz_localize(None)
def run(d):
    fast = vbt.MA.run(d["close"], 10, ewm=True)
    slow = vbt.MA.run(d["close"], 50, ewm=True)
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(d["close"], entries, exits, price=d["open"], fees=0.001,
                                    init_cash=10_000, freq="5min")
    return pf, (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown())
sec, (pf, _) = timed(lambda: run(df))
emit(seconds=sec, trades=int(pf.trades.count()), final=float(pf.final_value()), bars=len(df))
""",
    "bt_single": """
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover
df = {data}
d = df.rename(columns=str.capitalize)
d.index = d.index.tz_localize(None)
def ema(x, n):
    return pd.Series(x).ewm(span=n, adjust=False).mean().to_numpy()
class Cross(Strategy):
    def init(self):
        self.f = self.I(ema, self.data.Close, 10)
        self.s = self.I(ema, self.data.Close, 50)
    def next(self):
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.position.close()
t = time.perf_counter()
stats = FractionalBacktest(d, Cross, cash=10_000, commission=0.001, finalize_trades=True).run()
emit(seconds=time.perf_counter() - t, trades=int(stats["# Trades"]), bars=len(df))
""",
    "ours_sweep": """
from morningstar.core.engine import Costs
from morningstar.research import sweep
df = {data}
space = {{"fast": {fast}, "slow": {slow}}}
sec, r = timed(lambda: sweep(df, "ema_cross", space, costs=Costs(fee_bps=10)), repeats=3)
emit(seconds=sec, combos=r.n_trials, bars=len(df))
""",
    "vbt_sweep": """
import vectorbt as vbt
vbt.settings["engine"] = {engine!r}
df = {data}
df.index = df.index.tz_localize(None)
pairs = [(f, s) for f in {fast} for s in {slow} if f < s]
def run(d):
    fast = vbt.MA.run(d["close"], [f for f, _ in pairs], ewm=True)
    slow = vbt.MA.run(d["close"], [s for _, s in pairs], ewm=True)
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    entries = entries.shift(1, fill_value=False)
    exits = exits.shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(d["close"], entries, exits, price=d["open"], fees=0.001,
                                    init_cash=10_000, freq="5min")
    return pf, pf.sharpe_ratio()
sec, (pf, sr) = timed(lambda: run(df), repeats=1)
emit(seconds=sec, combos=len(sr), bars=len(df))
""",
}


def run_job(name: str, data: str, timeout: int = 900, engine: str = "numba") -> dict[str, float]:
    code = _PRELUDE + JOBS[name].format(data=data, fast=FAST, slow=SLOW, engine=engine)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")


def measured(name: str, data: str, repeats: int, engine: str = "numba") -> dict[str, Any]:
    runs = [run_job(name, data, engine=engine) for _ in range(repeats)]
    return _combined(runs)


def _combined(runs: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    out["samples_s"] = [r["seconds"] for r in runs]
    return out


def side_by_side(jobs: dict[str, tuple[str, str]], data: str, repeats: int) -> dict[str, Any]:
    """Run each labelled ``(job, vectorbt engine)`` once per round, ``repeats`` rounds, so that the
    machine's noise falls on every library alike; the median per library."""
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in jobs}
    for _ in range(repeats):
        for label, (job, engine) in jobs.items():
            runs[label].append(run_job(job, data, engine=engine))
    return {label: _combined(samples) for label, samples in runs.items()}


def vectorbt_engines() -> list[str]:
    """vectorbt's engines present here: numba always, rust with the vectorbt-rust package."""
    import importlib.util

    return ["numba"] + (["rust"] if importlib.util.find_spec("vectorbt_rust") else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--skip-backtesting", action="store_true", help="skip backtesting.py (slow)"
    )
    args = parser.parse_args()
    million = "synthetic(1_000_000)"
    hundred_k = "synthetic(100_000)"
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "reference": "EMA 10/50 cross, long-only, next-open fills, 0.1% fee",
    }
    engines = vectorbt_engines()
    single = side_by_side(
        {"ours": ("ours_single", "")} | {f"vectorbt ({e})": ("vbt_single", e) for e in engines},
        million,
        args.repeats,
    )
    if not args.skip_backtesting:
        single["backtesting.py (100k bars)"] = measured("bt_single", hundred_k, 1)
    results["single_1M_synthetic"] = single
    results["sweep_174_on_100k_synthetic"] = side_by_side(
        {"ours": ("ours_sweep", "")} | {f"vectorbt ({e})": ("vbt_sweep", e) for e in engines},
        hundred_k,
        max(1, args.repeats // 2),
    )
    real_files = {
        "genetrader BTC/USDT 5m": SHARED / "genetrader" / "BINANCE_BTC_USDT-5m.csv",
        "nautilus BTC perpetual 1m": SHARED / "nautilus" / "UNKNOWN_BTC_PERP-1m.csv",
    }
    per_million = {}
    for label, path in real_files.items():
        if path.is_file():
            r = measured("ours_single", f"real({str(path)!r})", args.repeats)
            r["ms_per_million_bars"] = float(r["seconds"]) * 1e3 * 1e6 / float(r["bars"])
            per_million[label] = r
    results["real_data_ours"] = per_million
    results["first_call_fresh_process_10k_bars"] = measured("ours_first_call", "None", 3)
    out = ROOT / "benchmarks" / "results" / "engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    sweeps = results["sweep_174_on_100k_synthetic"]
    assert isinstance(sweeps, dict)
    for engine in engines:
        s, w = single["ours"], single[f"vectorbt ({engine})"]
        o, v = sweeps["ours"], sweeps[f"vectorbt ({engine})"]
        print(f"vectorbt engine {engine}:")
        print(f"  single 1M bars: ours {float(s['seconds']) * 1e3:.1f} ms, vectorbt "
              f"{float(w['seconds']) * 1e3:.1f} ms → {float(w['seconds']) / float(s['seconds']):.1f}x;"
              f" trades {s['trades']} vs {w['trades']}")  # fmt: skip
        print(f"  sweep 174 × 100k: ours {o['seconds']:.3f} s ({o['peak_rss_mb']:.0f} MB), "
              f"vectorbt {v['seconds']:.3f} s ({v['peak_rss_mb']:.0f} MB) → "
              f"{v['seconds'] / o['seconds']:.1f}x, "
              f"RSS ratio {o['peak_rss_mb'] / v['peak_rss_mb']:.2f}")  # fmt: skip
    for label, r in per_million.items():
        print(f"{label}: {r['bars']:,} bars in {float(r['seconds']) * 1e3:.1f} ms "
              f"= {r['ms_per_million_bars']:.0f} ms per million bars")  # fmt: skip
    print(f"written to {out}")


if __name__ == "__main__":
    main()
