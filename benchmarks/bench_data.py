"""Data-layer benchmark: import all of ../shared/data, then reload a 1-year 5m range.

Run:  .venv/bin/python benchmarks/bench_data.py [--repeats 5] [--shared ../shared/data]

Measures, each repeated and reported as the median (the machine is noisy):

1. import of every CSV under ``../shared/data`` through the application service (read + validate
   + Parquet write + SQLite records): total seconds and bars per second;
2. reload of a 1-year range of real 5m bars (``genetrader`` BTC/USDT 5m: the whole 2024 range,
   about 72,000 bars) from the Parquet store, in ms and ms per million bars, side by side with
   ``pandas.read_csv`` of the same file (the baseline a user would otherwise have);
3. the same reload on a 1,000,000-bar store (SYNTHETIC random-walk bars, labelled as such) to show
   how the per-million-bar figure scales.

Results are printed as a table and written to ``benchmarks/results/data.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from morningstar.data.ohlcv import from_arrays
from morningstar.data.parquet_store import OHLCVStore
from morningstar.services.data import DataService
from morningstar.store import open_database

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median seconds of ``repeats`` calls (and every sample)."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), samples


def bench_import(shared: Path, repeats: int) -> dict[str, object]:
    files = [p for p, _ in DataService.csv_files([shared]) if p.name != "MANIFEST.csv"]
    totals: list[float] = []
    bars = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{tmp}/bench.sqlite")
            service = DataService(OHLCVStore(tmp), db)
            t0 = time.perf_counter()
            bars = 0
            for path in files:
                out = service.import_file(path)
                bars += out.imported.rows_read if out.imported else 0
            totals.append(time.perf_counter() - t0)
            db.dispose()
    med = statistics.median(totals)
    return {
        "files": len(files),
        "bars": bars,
        "median_s": med,
        "samples_s": totals,
        "bars_per_s": bars / med,
    }


def bench_reload(shared: Path, repeats: int) -> dict[str, object]:
    csv = shared / "genetrader" / "BINANCE_BTC_USDT-5m.csv"
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/bench.sqlite")
        service = DataService(OHLCVStore(tmp), db)
        service.import_file(csv)
        store = service.store
        frame = store.load("binance", "BTC/USDT", "5m", "2024-01-01", "2025-01-01")
        n = len(frame)
        med, samples = timed(
            lambda: store.load("binance", "BTC/USDT", "5m", "2024-01-01", "2025-01-01"), repeats
        )
        csv_med, csv_samples = timed(
            lambda: pd.read_csv(csv, index_col=0, parse_dates=[0], date_format="ISO8601"), repeats
        )
        db.dispose()
    return {
        "dataset": "genetrader BINANCE_BTC_USDT-5m, range 2024-01-01..2025-01-01",
        "bars": n,
        "parquet_median_ms": med * 1e3,
        "parquet_ms_per_million_bars": med * 1e3 * 1e6 / n,
        "parquet_samples_ms": [s * 1e3 for s in samples],
        "pandas_read_csv_median_ms": csv_med * 1e3,
        "pandas_read_csv_samples_ms": [s * 1e3 for s in csv_samples],
        "ratio_csv_over_parquet": csv_med / med,
    }


def bench_million(repeats: int) -> dict[str, object]:
    n = 1_000_000
    rng = np.random.default_rng(42)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    ts = 1_577_836_800_000 + np.arange(n, dtype=np.int64) * 300_000  # 2020-01-01, 5m
    frame = from_arrays(ts, open_, high, low, close, rng.uniform(1, 10, n))
    with tempfile.TemporaryDirectory() as tmp:
        store = OHLCVStore(tmp)
        write_med, _ = timed(
            lambda: store.write("synthetic", "SYN/USD", "5m", frame, replace=True), repeats
        )
        full_med, full_samples = timed(lambda: store.load("synthetic", "SYN/USD", "5m"), repeats)
        year_med, _ = timed(
            lambda: store.load("synthetic", "SYN/USD", "5m", "2021-01-01", "2022-01-01"), repeats
        )
        year_bars = len(store.load("synthetic", "SYN/USD", "5m", "2021-01-01", "2022-01-01"))
    return {
        "dataset": "SYNTHETIC random walk, 1,000,000 bars of 5m",
        "write_median_ms": write_med * 1e3,
        "full_load_median_ms": full_med * 1e3,
        "full_load_samples_ms": [s * 1e3 for s in full_samples],
        "year_range_bars": year_bars,
        "year_range_median_ms": year_med * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--import-repeats", type=int, default=3)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if not args.shared.is_dir():
        raise SystemExit(f"real data folder {args.shared} not found: pass --shared")
    results = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "import_all_shared_data": bench_import(args.shared, args.import_repeats),
        "reload_1y_5m_real": bench_reload(args.shared, args.repeats),
        "reload_1m_bars_synthetic": bench_million(args.repeats),
    }
    out = ROOT / "benchmarks" / "results" / "data.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    imp = results["import_all_shared_data"]
    rel = results["reload_1y_5m_real"]
    mil = results["reload_1m_bars_synthetic"]
    print(
        f"import {imp['files']} files, {imp['bars']:,} bars: median {imp['median_s']:.2f} s "
        f"({imp['bars_per_s']:,.0f} bars/s)"
    )
    print(
        f"reload 1y 5m real ({rel['bars']:,} bars): parquet {rel['parquet_median_ms']:.1f} ms "
        f"({rel['parquet_ms_per_million_bars']:.0f} ms per million bars); pandas.read_csv "
        f"{rel['pandas_read_csv_median_ms']:.1f} ms; ratio {rel['ratio_csv_over_parquet']:.1f}x"
    )
    print(
        f"1M synthetic bars: full load {mil['full_load_median_ms']:.1f} ms, 1-year range "
        f"({mil['year_range_bars']:,} bars) {mil['year_range_median_ms']:.1f} ms, "
        f"write {mil['write_median_ms']:.0f} ms"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
