"""Micro-benchmark of the pure decision core: propose + supervise + RiskEngine.check per call.

Run:  .venv/bin/python benchmarks/bench_decision.py [--bars 200000] [--repeats 5]

Workload: 200,000 SYNTHETIC bars of one pair (a random walk, seed 7), one prediction per bar
drawn from a seeded script (40 % up, 20 % down, 40 % neutral; confidence uniform in [0.34, 1];
volatility ~0.002), the position tracked by a minimal fake ledger (an ``open`` fills at the
reference price; the stop and the target are checked on the next bar's close). The LLM is
"consulted" only when :func:`needs_supervision` says so, and answers from a fixed assessment
(a plain dataclass, no I/O). Predictions, views and assessments are built before the clock
starts where they do not depend on the decisions; the per-bar ``PortfolioView`` and
``Position`` the workflow would build are built inside the timed loop (they are part of the
cost the workflow pays per bar).

Reports the median over repeats of µs per bar (one propose + supervise + check, plus the fake
ledger and the per-bar view), the share of each action, and two paths in isolation (the same
call repeated 200,000 times, median of repeats): ``hold`` (in a position, nothing to do: the
common bar) and ``entry`` (flat, an up signal, the LLM reduces, the risk engine accepts).
Results go to ``benchmarks/results/decision.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from morningstar.core.decision import (
    DecisionParams,
    Position,
    needs_supervision,
    propose,
    supervise,
)
from morningstar.core.prediction import Prediction
from morningstar.core.risk import PortfolioView, PositionView, RiskEngine, RiskLimits
from morningstar.core.sizing import SizingParams

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC/USDT"


@dataclass(frozen=True, slots=True)
class FixedAssessment:
    """A stand-in for the LLM's answer (reduce by half, stop a bit tighter)."""

    verdict: str = "reduce"
    size_multiplier: float = 0.5
    stop_multiplier: float = 0.8
    take_profit_multiplier: float = 1.0
    coherence: float = 0.7
    risk: str = "medium"
    reasons: tuple[str, ...] = ("benchmark",)


def make_inputs(n: int, seed: int = 7) -> tuple[np.ndarray, list[Prediction]]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    signals = rng.choice([1, -1, 0], size=n, p=[0.4, 0.2, 0.4])
    conf = rng.uniform(0.34, 1.0, n)
    vol = np.abs(rng.normal(0.002, 0.0003, n)) + 1e-4
    names = {1: "up", -1: "down", 0: "neutral"}
    preds = [
        Prediction(signal=names[int(s)], confidence=float(c), volatility=float(v))
        for s, c, v in zip(signals, conf, vol, strict=True)
    ]
    return close, preds


def run_once(close: np.ndarray, preds: list[Prediction]) -> tuple[float, dict[str, int]]:
    params = DecisionParams(allow_shorts=True)
    sizing = SizingParams()
    engine = RiskEngine(RiskLimits(cooldown_bars_after_stop=5))
    assessment = FixedAssessment()
    counts = {"open": 0, "close": 0, "adjust": 0, "none": 0}
    equity = peak = day_start = 10_000.0
    cash = equity
    position: Position | None = None
    closes = close.tolist()
    bars_per_day = 288
    t0 = time.perf_counter()
    for i, price in enumerate(closes):
        # minimal fake ledger: stops / targets hit on the close, equity marked to market
        if position is not None:
            sl, tp = position.sl, position.tp
            hit_sl = sl is not None and (price - sl) * position.side <= 0.0
            hit_tp = tp is not None and (tp - price) * position.side <= 0.0
            if hit_sl or hit_tp:
                cash += position.side * position.quantity * (price - position.entry)
                position = None
                if hit_sl:
                    engine.record_stop(PAIR, i)
        unreal = 0.0 if position is None else (
            position.side * position.quantity * (price - position.entry))  # fmt: skip
        equity = cash + unreal
        peak = max(peak, equity)
        if i % bars_per_day == 0:
            day_start = equity
        positions = {} if position is None else {
            PAIR: PositionView(position.side, position.quantity, position.entry, price,
                               position.sl)}  # fmt: skip
        view = PortfolioView(equity, peak, day_start, i // bars_per_day, i, positions)
        intent = propose(preds[i], position, price, 0.002, equity, params, sizing, pair=PAIR)
        answer = assessment if needs_supervision(intent, params) else None
        supervised = supervise(intent, answer, abstain="keep")
        final = engine.check(supervised.intent, view).intent
        action = final.action
        counts[action] += 1
        if action == "open":
            position = Position(final.side, final.quantity, price, final.stop_loss,
                                final.take_profit)  # fmt: skip
        elif action == "close" and position is not None:
            cash += position.side * position.quantity * (price - position.entry)
            position = None
        elif action == "adjust" and position is not None:
            position = Position(position.side, position.quantity, position.entry,
                                final.stop_loss, position.tp)  # fmt: skip
    elapsed = time.perf_counter() - t0
    return elapsed, counts


def time_paths(n: int, repeats: int) -> dict[str, float]:
    """µs per call of propose + supervise + check on the hold path and on the entry path."""
    params, sizing = DecisionParams(), SizingParams()
    engine = RiskEngine(RiskLimits())
    answer = FixedAssessment()
    hold_pred = Prediction(signal="neutral", confidence=0.6, volatility=0.002)
    held = Position(1, 3.0, 99.0, 99.7, 101.0)
    held_view = PortfolioView(10_000.0, 10_000.0, 10_000.0, 0, 0,
                              {PAIR: PositionView(1, 3.0, 99.0, 100.0, 99.7)})  # fmt: skip
    entry_pred = Prediction(signal="up", confidence=0.8, volatility=0.002)
    flat_view = PortfolioView(10_000.0, 10_000.0, 10_000.0, 0, 0, {})

    def hold() -> str:
        intent = propose(hold_pred, held, 100.0, 0.002, 10_000.0, params, sizing, pair=PAIR)
        supervised = supervise(intent, None, abstain="keep")
        return engine.check(supervised.intent, held_view).intent.action

    def entry() -> str:
        intent = propose(entry_pred, None, 100.0, 0.002, 10_000.0, params, sizing, pair=PAIR)
        supervised = supervise(intent, answer, abstain="keep")
        return engine.check(supervised.intent, flat_view).intent.action

    assert hold() == "none" and entry() == "open"
    out = {}
    for name, fn in (("hold", hold), ("entry", entry)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times.append(time.perf_counter() - t0)
        out[f"{name}_us_per_call"] = round(statistics.median(times) / n * 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    close, preds = make_inputs(args.bars)
    run_once(close[:2000], preds[:2000])  # warm-up
    times = []
    counts: dict[str, int] = {}
    for _ in range(args.repeats):
        elapsed, counts = run_once(close, preds)
        times.append(elapsed)
    median = statistics.median(times)
    result = {
        "bars": args.bars,
        "repeats": args.repeats,
        "median_s": round(median, 4),
        "us_per_bar": round(median / args.bars * 1e6, 3),
        "bars_per_s": round(args.bars / median),
        "actions": counts,
        **time_paths(args.bars, args.repeats),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "data": "synthetic random walk, seeded",
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "decision.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
