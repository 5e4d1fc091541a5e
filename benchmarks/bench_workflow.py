"""Trading workflow throughput, backtest mode (issue 6): bars per second end to end.

Run:  .venv/bin/python benchmarks/bench_workflow.py [--repeats 3] [--max-bars N] [--threads 1]
          [--cache-mode off] [--no-strategy] [--out benchmarks/results/workflow.json]

Three Binance 5-minute series of ../shared/data/genetrader (BTC/USDT, ETH/USDT, SOL/USDT:
~215,000 bars in all) are replayed by :func:`morningstar.workflow.build.build_backtest` with:

* the model predictor (``workflow.predictor: model:<artifact>``), batched: ``predict_batch`` over
  every bar of each pair at build time (each row point in time). The model is a deliberately
  small network (conv 8, GRU 16, 32-bar windows, every head on) trained ONCE by this script on the
  first ``--train-bars`` bars of BTC/USDT (3 epochs, 1 torch thread) through the same service as
  ``morningstar train``; the artifact is cached in the temporary directory (never in the
  repository) and reused while its settings are unchanged;
* ``risk`` sizing, the default rules and the default risk limits;
* the LLM supervisor ON, answered by the offline rule-based provider (``llm.provider: offline``)
  through the gateway (traced; its replay cache ``off`` by default, ``--cache-mode record`` to
  include cache writes), consulted on the proposed entries only;
* the simulated broker (brackets: each entry with its stop and target) and the ledger;
* SQLite persistence (a fresh file per repeat, WAL): every cycle of every bar, in batches.

Timed per repeat: the build (``build_backtest``: the replay's columns, ``predict_batch`` of each
pair — also timed on its own — and the run's row) and the run (``TradingWorkflow.run``: every
cycle and every flush to SQLite, the last one included). Reported: medians over ``--repeats``
of bars/s for build + run (end to end) and for the run alone, with the per-step split (the run's
``step_seconds`` and the build's ``predict_batch`` seconds). The same is then run with the
strategy predictor ``strategy:ema_cross`` for comparison (supervisor and risk engine the same).
Results go to ``benchmarks/results/workflow.json``. Nothing is asserted here; the figures are in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "genetrader"
SERIES = {
    "BTC/USDT": DATA / "BINANCE_BTC_USDT-5m.csv",
    "ETH/USDT": DATA / "BINANCE_ETH_USDT-5m.csv",
    "SOL/USDT": DATA / "BINANCE_SOL_USDT-5m.csv",
}
CACHE = Path(tempfile.gettempdir()) / "morningstar_bench_workflow"  # outside the repository
RESULTS = ROOT / "benchmarks" / "results"
TARGET_BARS_PER_S = 50_000
FREQTRADE_CANDLES_PER_S = 21_000  # quoted by the issue (freqtrade 2026.9, sample strategy)


def _model_settings(train_bars: int, threads: int) -> Any:
    from morningstar.config import FeatureSpec, LabelSpec, ModelSettings, NetworkSpec, TrainSpec

    return ModelSettings(
        features=FeatureSpec(seq_len=32),
        labels=LabelSpec(horizon=12, barrier_mult=0.5),
        network=NetworkSpec(conv_channels=8, hidden=16, attention=False, dropout=0.0),
        training=TrainSpec(epochs=3, patience=2, batch_size=512, torch_threads=threads,
                           device="cpu", max_bars=train_bars, seed=0),
    )  # fmt: skip


def _load(max_bars: int | None) -> dict[str, Any]:
    from morningstar.data.csv_import import read_ohlcv_csv

    frames = {}
    for pair, path in SERIES.items():
        frame = read_ohlcv_csv(path).frame
        frames[pair] = frame if max_bars is None else frame.iloc[:max_bars]
    return frames


def train_once(frames: dict[str, Any], train_bars: int, threads: int) -> Path:
    """The small model, trained on the first ``train_bars`` bars of BTC/USDT (cached)."""
    from morningstar.services.model import train_and_save

    settings = _model_settings(train_bars, threads)
    key = hashlib.sha256(
        json.dumps(
            [settings.model_dump(mode="json"), str(SERIES["BTC/USDT"])], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:12]
    out = CACHE / f"model-{key}"
    if (out / "model.json").exists() or any(out.glob("*")):
        return out
    bars = frames["BTC/USDT"].iloc[:train_bars]
    t = time.perf_counter()
    train_and_save(bars, settings, models_dir=CACHE, out=out,
                   source={"venue": "binance", "pair": "BTC/USDT", "timeframe": "5m",
                           "csv": str(SERIES["BTC/USDT"])})  # fmt: skip
    print(f"trained the benchmark model in {time.perf_counter() - t:.1f}s -> {out}", flush=True)
    return out


def _settings(predictor: str, cache_mode: str, min_confidence: float) -> Any:
    from morningstar.config import Settings

    return Settings(
        workflow={"timeframe": "5m", "predictor": predictor, "fee_bps": 10, "slippage_bps": 5,
                  "sizing": {"mode": "risk"}, "supervisor": {"enabled": True},
                  "decision": {"min_confidence": min_confidence}},
        llm={"provider": "offline", "cache_mode": cache_mode},
    )  # fmt: skip


class _PredictTimer:
    """Times every ``predict_batch`` of the predictor classes (the build calls them)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved: list[tuple[type, Any]] = []

    def __enter__(self) -> _PredictTimer:
        from morningstar.model.predictors import ModelPredictor, StrategySignalPredictor

        for cls in (ModelPredictor, StrategySignalPredictor):
            original = cls.predict_batch
            self._saved.append((cls, original))

            def timed(obj: Any, bars: Any, _original: Any = original) -> Any:
                t = time.perf_counter()
                try:
                    return _original(obj, bars)
                finally:
                    self.seconds += time.perf_counter() - t

            cls.predict_batch = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, original in self._saved:
            cls.predict_batch = original  # type: ignore[method-assign]


def one_run(frames: dict[str, Any], predictor: str, cache_mode: str, min_confidence: float,
            tmp: Path, k: int) -> dict[str, Any]:  # fmt: skip
    """Build and run one backtest on a fresh SQLite file; the timings and the run's counts."""
    import sqlalchemy as sa

    from morningstar.store import open_database
    from morningstar.workflow.build import build_backtest

    kind = predictor.partition(":")[0]
    db = open_database(f"sqlite:///{tmp / f'wf-{kind}-{k}.sqlite'}")
    settings = _settings(predictor, cache_mode, min_confidence)
    try:
        with _PredictTimer() as timer:
            t0 = time.perf_counter()
            built = build_backtest(settings, frames, db=db)
            t1 = time.perf_counter()
        summary = built.workflow.run()
        t2 = time.perf_counter()
        built.close()
        with db.engine.connect() as conn:
            rows, stored = conn.execute(sa.text("SELECT count(*), sum(bars) FROM cycles")).one()
            marked = conn.execute(
                sa.text("SELECT sum(bars) FROM cycles WHERE equity IS NOT NULL")
            ).scalar_one()
    finally:
        db.dispose()
    bars = summary.bars
    if stored != bars or marked != bars:
        raise SystemExit(f"{stored} cycles stored ({marked} with equity) for {bars} bars")
    build_s, run_s = t1 - t0, t2 - t1
    return {
        "bars": bars, "build_s": build_s, "predict_batch_s": timer.seconds, "run_s": run_s,
        "bars_per_s_end_to_end": bars / (build_s + run_s), "bars_per_s_run": bars / run_s,
        "step_seconds": dict(summary.step_seconds), "orders": summary.orders,
        "fills": summary.fills, "supervised": summary.supervised, "vetoed": summary.vetoed,
        "reduced": summary.reduced, "abstained": summary.abstained,
        "risk_rejections": summary.risk_rejections, "errors": summary.errors,
        "halted": summary.halted, "final_equity": summary.final_equity, "cycle_rows": rows,
    }  # fmt: skip


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    steps = sorted({s for r in runs for s in r["step_seconds"]})
    med = {key: statistics.median(r[key] for r in runs)
           for key in ("build_s", "predict_batch_s", "run_s", "bars_per_s_end_to_end",
                       "bars_per_s_run")}  # fmt: skip
    split = {"predict_batch (build)": med["predict_batch_s"],
             "build (other)": statistics.median(r["build_s"] - r["predict_batch_s"]
                                                for r in runs)}  # fmt: skip
    for step in steps:
        split[step] = statistics.median(r["step_seconds"].get(step, 0.0) for r in runs)
    split["run (loop, records, untimed)"] = statistics.median(
        r["run_s"] - sum(v for k, v in r["step_seconds"].items() if k != "persist_background")
        for r in runs
    )
    first = runs[0]
    return {
        "bars": first["bars"],
        "bars_per_s_end_to_end": round(med["bars_per_s_end_to_end"]),
        "bars_per_s_run": round(med["bars_per_s_run"]),
        "build_s": round(med["build_s"], 3), "predict_batch_s": round(med["predict_batch_s"], 3),
        "run_s": round(med["run_s"], 3),
        "split_seconds": {k: round(v, 3) for k, v in split.items()},
        "split_us_per_bar": {k: round(1e6 * v / first["bars"], 2) for k, v in split.items()},
        "counts": {k: first[k] for k in ("orders", "fills", "supervised", "vetoed", "reduced",
                                         "abstained", "risk_rejections", "errors", "halted",
                                         "final_equity", "cycle_rows")},
        "repeats": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                     if k != "step_seconds"} for r in runs],
    }  # fmt: skip


def _print(name: str, res: dict[str, Any]) -> None:
    print(f"\n== {name}: {res['bars']:,} bars, median of {len(res['repeats'])} repeats")
    print(f"   end to end (build + run): {res['bars_per_s_end_to_end']:>9,} bars/s "
          f"(build {res['build_s']:.2f}s incl. predict_batch {res['predict_batch_s']:.2f}s, "
          f"run {res['run_s']:.2f}s)")  # fmt: skip
    print(f"   run only:                 {res['bars_per_s_run']:>9,} bars/s")
    for step, seconds in res["split_seconds"].items():
        print(f"   {step:<24} {seconds:8.3f}s  {res['split_us_per_bar'][step]:7.2f} µs/bar")
    print(f"   counts: {res['counts']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-bars", type=int, default=None, help="first N bars of each pair")
    parser.add_argument("--train-bars", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (train + infer)")
    parser.add_argument("--cache-mode", default="off", choices=("off", "record"))
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.55,
        help="workflow.decision.min_confidence (the rules' entry threshold)",
    )
    parser.add_argument("--no-strategy", action="store_true", help="skip the ema_cross run")
    parser.add_argument("--out", type=Path, default=RESULTS / "workflow.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    frames = _load(args.max_bars)
    artifact = train_once(_load(None), args.train_bars, args.threads)
    variants = {"model": f"model:{artifact}"}
    if not args.no_strategy:
        variants["strategy_ema_cross"] = "strategy:ema_cross"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, predictor in variants.items():
            one_run(
                frames, predictor, args.cache_mode, args.min_confidence, Path(tmp), -1
            )  # warm-up (imports)
            runs = []
            for k in range(args.repeats):
                runs.append(
                    one_run(frames, predictor, args.cache_mode, args.min_confidence, Path(tmp), k)
                )
                r = runs[-1]
                print(f"{name} repeat {k + 1}: {r['bars_per_s_end_to_end']:,.0f} bars/s end to "
                      f"end, {r['bars_per_s_run']:,.0f} run only (build {r['build_s']:.2f}s, "
                      f"run {r['run_s']:.2f}s)", flush=True)  # fmt: skip
            results[name] = _median(runs)
            _print(name, results[name])
    out = {
        "benchmark": "workflow_backtest",
        "command": "python " + " ".join(sys.argv),
        "pairs": list(SERIES),
        "bars": {p: len(f) for p, f in frames.items()},
        "model": {"artifact": artifact.name, "trained_on": f"first {args.train_bars} bars of "
                  "BTC/USDT", **_model_settings(args.train_bars, args.threads).model_dump(
                      mode="json", include={"features", "network", "training"})},
        "settings": {"sizing": "risk", "supervisor": "on, offline rule-based provider",
                     "llm_cache_mode": args.cache_mode, "persistence": "SQLite file (WAL)",
                     "torch_threads": args.threads},
        "results": results,
        "target_bars_per_s": TARGET_BARS_PER_S,
        "freqtrade_candles_per_s_quoted": FREQTRADE_CANDLES_PER_S,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_average_1m": os.getloadavg()[0],
                    "processor": platform.processor() or platform.machine()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
