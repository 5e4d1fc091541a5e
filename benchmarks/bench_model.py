"""ML model benchmark: training on real series (per-head test results vs baselines), batched
inference throughput and single-bar latency on CPU.

Run:  .venv/bin/python benchmarks/bench_model.py [--train] [--infer] [--repeats 5]
          [--max-bars 50000] [--epochs 10] [--threads 1]

``--train`` trains the default network (conv 32, GRU 64, seq_len 64, four heads) on three real
series of ../shared/data, through the same service as ``morningstar train --csv FILE --max-bars N
--epochs E`` (the last N bars, the default chronological split with embargo), and records the
training time and every head's test-window metrics next to its baseline, as they come. Results go
to ``benchmarks/results/model_training.json``.

``--infer`` measures, with the BTC/USDT 5m model (trained first when absent):

* batched inference: ``predict_batch`` over all 71,769 bars (features, scaling, network in
  batches of 1024 under ``torch.inference_mode()``, decoding), bars per second, median of
  ``--repeats`` runs after a warm-up; also the network alone;
* single-bar latency: ``predict`` on the last ``min_history`` bars (what live trading passes),
  median and p95 of 200 calls after a warm-up.

Both with torch's default thread count and with 1 thread. Results go to
``benchmarks/results/model.json``. Nothing here is asserted: figures are reported in
docs/model.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
ARTIFACTS = Path(tempfile.gettempdir()) / "morningstar_bench_models"  # outside the repository
SERIES = {
    "BTC/USDT 5m (Binance)": SHARED / "genetrader" / "BINANCE_BTC_USDT-5m.csv",
    "ETH/USDT 5m (Binance)": SHARED / "genetrader" / "BINANCE_ETH_USDT-5m.csv",
    "EUR/USD 1h (Oanda)": SHARED / "lean" / "OANDA_EURUSD-1h.csv",
}


def _machine() -> dict[str, Any]:
    import numpy as np
    import torch

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads_default": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0],
        "processor": platform.processor() or platform.machine(),
    }


def _settings(max_bars: int, epochs: int, threads: int | None) -> Any:
    from morningstar.config import ModelSettings, TrainSpec

    return ModelSettings(
        training=TrainSpec(
            epochs=epochs, max_bars=max_bars, patience=3, torch_threads=threads, device="cpu"
        )
    )


def train_series(name: str, path: Path, settings: Any) -> dict[str, Any]:
    """Train one series through the CLI's service; return its figures."""
    from morningstar.data.parquet_store import OHLCVStore
    from morningstar.services.model import load_training_bars, train_and_save

    bars, source = load_training_bars(OHLCVStore(ARTIFACTS / "store"), csv=path)
    limit = settings.training.max_bars
    bars = bars.iloc[-limit:] if limit else bars
    started = time.perf_counter()
    trained = train_and_save(
        bars, settings, models_dir=ARTIFACTS, source=source, name=path.stem.lower()
    )
    wall = time.perf_counter() - started
    result = trained.result
    epochs = len(result.history)
    return {
        "series": name,
        "file": str(path.relative_to(SHARED.parent.parent)),
        "bars_used": len(bars),
        "first_bar": str(bars.index[0]),
        "last_bar": str(bars.index[-1]),
        "windows": result.windows,
        "epochs_run": epochs,
        "best_epoch": max((h.epoch for h in result.history if h.best), default=0),
        "train_seconds": round(result.train_seconds, 1),
        "wall_seconds_incl_save": round(wall, 1),
        "seconds_per_epoch": round(result.train_seconds / max(epochs, 1), 2),
        "calibration": result.calibration,
        "test": result.metrics["test"],
        "artifact": str(trained.path),
    }


def _version(path: Path) -> int:
    """N of an artifact directory ``<name>-v<N>`` (numeric: v10 sorts after v2)."""
    match = re.search(r"-v(\d+)$", path.name)
    return int(match.group(1)) if match else -1


def _dumps(report: Any) -> str:
    """JSON with numpy scalars as numbers (never strings), NaN as null."""
    from morningstar.model.artifact import jsonable

    return json.dumps(jsonable(report), indent=2, allow_nan=False)


def _median_time(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def infer(model_path: Path, repeats: int) -> dict[str, Any]:
    """Batched throughput and single-bar latency of the model at ``model_path``."""
    import numpy as np
    import torch

    from morningstar.data.csv_import import read_ohlcv_csv
    from morningstar.model.wrapper import MorningstarModel

    bars = read_ohlcv_csv(SERIES["BTC/USDT 5m (Binance)"]).frame
    model = MorningstarModel.load(model_path)
    live = bars.iloc[-model.min_history :]
    out: dict[str, Any] = {"bars": len(bars), "live_window_bars": len(live), "runs": {}}
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        batch_s = _median_time(lambda: model.predict_batch(bars), repeats)
        prepared = model.prepare(bars)
        seqs = np.asarray(prepared.sequence[np.flatnonzero(prepared.valid)])
        net_s = _median_time(lambda seqs=seqs: model._run(seqs, 1024), repeats)
        features_s = _median_time(lambda: model.prepare(bars), repeats)
        for _ in range(20):
            model.predict(live)
        latencies = []
        for _ in range(200):
            t0 = time.perf_counter()
            model.predict(live)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        out["runs"][f"threads_{threads}"] = {
            "batched_bars_per_s": round(len(bars) / batch_s),
            "batched_seconds": round(batch_s, 3),
            "network_only_windows_per_s": round(len(seqs) / net_s),
            "features_and_scaling_seconds": round(features_s, 3),
            "single_bar_latency_ms_median": round(1e3 * statistics.median(latencies), 3),
            "single_bar_latency_ms_p95": round(1e3 * latencies[int(0.95 * len(latencies))], 3),
        }
    torch.set_num_threads(default_threads)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the three series")
    parser.add_argument("--infer", action="store_true", help="inference speed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-bars", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    args = parser.parse_args()
    if not (args.train or args.infer):
        args.train = args.infer = True
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = _settings(args.max_bars, args.epochs, args.threads)
    btc_model: Path | None = None
    if args.train:
        runs = []
        for name, path in SERIES.items():
            print(f"training {name} ...", flush=True)
            run = train_series(name, path, settings)
            print(json.dumps({k: run[k] for k in ("series", "train_seconds", "epochs_run")}))
            runs.append(run)
        btc_model = Path(runs[0]["artifact"])
        report = {
            "machine": _machine(),
            "settings": settings.model_dump(mode="json"),
            "command_equivalent": f"morningstar train --csv FILE --max-bars {args.max_bars} "
            f"--epochs {args.epochs}  (model.training: patience 3, torch_threads "
            f"{args.threads}, device cpu)",
            "runs": runs,
        }
        (RESULTS / "model_training.json").write_text(_dumps(report))
    if args.infer:
        if btc_model is None:
            existing = sorted(ARTIFACTS.glob("binance_btc_usdt-5m-v*"), key=_version)
            btc_model = existing[-1] if existing else None
        if btc_model is None:
            quick = _settings(20_000, 1, args.threads)
            btc_model = Path(
                train_series("BTC", SERIES["BTC/USDT 5m (Binance)"], quick)["artifact"]
            )
        speed = {"machine": _machine(), "model": str(btc_model), **infer(btc_model, args.repeats)}
        print(_dumps(speed))
        (RESULTS / "model.json").write_text(_dumps(speed))


if __name__ == "__main__":
    main()
