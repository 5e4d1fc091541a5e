"""Paper = backtest: paper mode fed by a replay of real bars through the local exchange stand-in
makes the same decisions as backtest mode on those bars.

The stand-in (:class:`~tests.fakes.exchange_server.FakeBinance`, ccxt pointed at 127.0.0.1)
serves 3,500 real 5-minute bars of BTC/USDT, its clock at the open of bar 2,000: the paper run
starts there (bars 0-1,999 are history), and its ``sleep`` moves the stand-in's clock to the
next bar's close instead of waiting, so each of the 1,500 following bars is polled when it
closes (the still-open candle is served partial, as Binance does) — the real polling path, with
no real waiting, until the clock reaches the last bar's close.

The backtest replays the same 3,500 bars from bar 2,000 (same settings, same run id, its own
database). Both runs must write the same cycles (decisions, predictions, supervision), the same
orders (client id, pair, side, role, bar, quantity, status), the same fills (price, quantity,
fee, reason) and the same equity per bar, to 1e-9. The paper predictor sees only the last
``paper_history`` bars of each decision (1,549 for ema_cross(10, 50)), the backtest every bar
since bar 0: the windows differ from bar 1,549 on, which is what the test checks (with the
200-bar window paper mode had before, the EMAs had not forgotten their seed: entries came at
other bars and the final equity differed by about $9).

Variants: supervisor off; the offline rule-based supervisor on (``llm.provider offline``);
brackets (faster EMAs, risk sizing, a stop and a target with each entry, stops tightened:
protective fills, OCO cancellations and adjustments ride on the same bars).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from morningstar.data.feeds import CcxtPollingFeed
from morningstar.exchange import make_exchange
from morningstar.store import open_database
from morningstar.workflow.build import build_backtest, make_predictor, paper_history
from tests.fakes.exchange_server import KLINES, FakeBinance, make_bars
from tests.fakes.paper_driver import (
    BRACKETS,
    ExchangeClock,
    differences,
    paper_settings,
    read_run,
    run_paper,
)

FILE = "genetrader/BINANCE_BTC_USDT-5m.csv"
PAIR = "BTC/USDT"
TF_MS = 300_000
WARM = 2_000  # bars before the first decision (history)
N = 1_500  # decision bars
TOL = 1e-9
RUN_ID = "9a9e4".ljust(32, "0")


@cache
def _bars(root: str, n: int) -> pd.DataFrame:
    df = pd.read_csv(Path(root) / FILE, index_col="timestamp", nrows=n)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
    return df.astype("float64")


def open_ms(df: pd.DataFrame, i: int) -> int:
    return int(df.index[0].value // 1_000_000) + i * TF_MS


VARIANTS: dict[str, dict[str, Any]] = {
    "supervisor-off": {},
    "offline-supervisor": {"supervisor": True},
    "brackets": BRACKETS,
}


def _settings(variant: str) -> Any:
    kw = dict(VARIANTS[variant])
    return paper_settings([PAIR], supervisor=bool(kw.pop("supervisor", False)), **kw)


def _paper(df: pd.DataFrame, db_path: Path, variant: str) -> tuple[Any, ExchangeClock]:
    settings = _settings(variant)
    end_ms = open_ms(df, len(df))  # the close of the last bar
    with FakeBinance({(PAIR, "5m"): df}, now_ms=open_ms(df, WARM) + 1_000, max_requests=20_000,
                     max_lifetime_s=240) as fake:  # fmt: skip
        # the workflow sleeps 60 s at most: five sleeps per 5-minute bar
        clock = ExchangeClock(fake.clock_ms, fake.advance_to, end_ms, max_sleeps=6 * N + 100)
        run = run_paper(settings, base_url=fake.base_url, db_path=db_path, run_id=RUN_ID,
                        clock=clock)  # fmt: skip
        try:
            summary = run.built.workflow.run()
        finally:
            run.close()
    return summary, clock


def _backtest(df: pd.DataFrame, db_path: Path, variant: str) -> Any:
    settings = _settings(variant)
    db = open_database(f"sqlite:///{db_path}")
    try:
        run = build_backtest(settings, {PAIR: df}, db=db, start=df.index[WARM], run_id=RUN_ID)
        try:
            return run.workflow.run()
        finally:
            run.close()
    finally:
        db.dispose()


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_paper_makes_the_backtests_decisions(
    shared_data: Path, tmp_path: Path, variant: str
) -> None:
    df = _bars(str(shared_data), WARM + N)
    wf = _settings(variant).workflow
    slow = 20 if variant == "brackets" else 50
    history = paper_history(wf, make_predictor(wf))
    assert history == 30 * slow + 48 + 1 < WARM  # the paper window slides; the backtest's grows

    paper, clock = _paper(df, tmp_path / "paper.sqlite", variant)
    assert clock.ended and not clock.runaway
    assert paper.bars == N and paper.cycles_persisted == N and paper.stopped
    back = _backtest(df, tmp_path / "backtest.sqlite", variant)
    assert back.bars == N and back.cycles_persisted == N

    got = read_run(tmp_path / "paper.sqlite", RUN_ID)
    want = read_run(tmp_path / "backtest.sqlite", RUN_ID)
    first = got["cycles"][0]["bar_ts"]
    assert first == df.index[WARM].to_pydatetime() == want["cycles"][0]["bar_ts"]
    assert len(got["cycles"]) == len(want["cycles"]) == len(got["equity"]) == N
    assert len(want["orders"]) >= 30 and len(want["fills"]) >= 30  # many round trips decided
    if variant == "brackets":  # protective orders placed, filled, cancelled (OCO), adjusted
        roles = {(o["role"], o["status"]) for o in want["orders"]}
        assert {("stop_loss", "filled"), ("take_profit", "filled"), ("stop_loss", "cancelled"),
                ("take_profit", "cancelled")} <= roles  # fmt: skip
    if variant == "offline-supervisor":
        assert paper.supervised == back.supervised >= 15
        verdicts = [c["llm_verdict"] for c in got["cycles"] if c["llm_verdict"] is not None]
        assert len(verdicts) == paper.supervised
        assert {"approve", "reduce"} <= set(verdicts)  # it changed some decisions
    # a backtest stores no prediction where it evaluated none (a flat pair whose batch row
    # cannot open); paper mode evaluates every bar: its decisions are compared there
    for cycle, twin in zip(got["cycles"], want["cycles"], strict=True):
        if twin["prediction"] is None:
            cycle["prediction"] = None
    for table in ("cycles", "orders", "fills", "equity"):
        assert differences(got[table], want[table], tol=TOL, where=table) == []
    assert abs(paper.final_equity - back.final_equity) <= TOL


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_paper_run_resumed_after_an_outage_decides_as_the_backtest(
    shared_data: Path, tmp_path: Path
) -> None:
    """Stopped at bar 2,300, down while 400 bars close, started again: the first poll fetches
    the 400 missed bars at once; they are decided one time step at a time, each from the bars
    up to it only (point in time), and the run ends equal to the backtest."""
    df = _bars(str(shared_data), WARM + N)
    settings = _settings("brackets")
    db = tmp_path / "paper.sqlite"
    stop_at, back_at = WARM + 300, WARM + 700
    summaries: list[Any] = []
    with FakeBinance({(PAIR, "5m"): df}, now_ms=open_ms(df, WARM) + 1_000, max_requests=20_000,
                     max_lifetime_s=240) as fake:  # fmt: skip
        for end in (open_ms(df, stop_at), open_ms(df, len(df))):
            if summaries:  # the outage: 400 bars close while the run is down
                fake.advance_to(open_ms(df, back_at) + 1_000)
            clock = ExchangeClock(fake.clock_ms, fake.advance_to, end, max_sleeps=6 * N + 100)
            run = run_paper(settings, base_url=fake.base_url, db_path=db, run_id=RUN_ID,
                            clock=clock)  # fmt: skip
            try:
                summaries.append(run.built.workflow.run())
            finally:
                run.close()
            assert clock.ended
    first, second = summaries
    assert first.cycles_persisted == stop_at - WARM
    assert second.cycles_persisted == len(df) - stop_at  # resumed: nothing twice, none skipped
    # the resumed session's summary starts from the run's initial equity, not where it resumed
    initial = _settings("brackets").workflow.initial_cash
    assert first.initial_equity == second.initial_equity == initial
    assert first.final_equity != first.initial_equity
    back = _backtest(df, tmp_path / "backtest.sqlite", "brackets")
    got = read_run(db, RUN_ID)
    want = read_run(tmp_path / "backtest.sqlite", RUN_ID)
    caught_up = [o for o in want["orders"]
                 if df.index[stop_at] <= o["bar_ts"] < df.index[back_at]]  # fmt: skip
    assert len(caught_up) >= 10  # decisions taken while catching up
    for cycle, twin in zip(got["cycles"], want["cycles"], strict=True):
        if twin["prediction"] is None:
            cycle["prediction"] = None
    for table in ("cycles", "orders", "fills", "equity"):
        assert differences(got[table], want[table], tol=TOL, where=table) == []
    assert abs(second.final_equity - back.final_equity) <= TOL


def test_a_step_by_step_feed_delivers_a_catch_up_one_time_step_at_a_time() -> None:
    """What paper mode's catch-up rests on: ten bars fetched by one poll come out one time step
    per call, and the warm-up window never holds a bar not delivered yet."""
    pairs = ["BTC/USDT", "ETH/USDT"]
    src = {p: make_bars(400, "5m", seed=k, price=100.0 * (k + 1)) for k, p in enumerate(pairs)}
    start = int(src[pairs[0]].index[0].value // 1_000_000)
    with FakeBinance({(p, "5m"): f for p, f in src.items()}, now_ms=start + 300 * TF_MS + 1_000,
                     max_lifetime_s=60) as fake:  # fmt: skip
        exchange = make_exchange("binance", api_base_url=fake.base_url, timeout_ms=3_000)
        try:
            feed = CcxtPollingFeed(
                exchange, pairs, "5m", history=50, step_by_step=True,
                clock=lambda: datetime.fromtimestamp(fake.clock_ms() / 1000, tz=UTC),
            )  # fmt: skip
            assert feed.next_bars() == []  # bar 299 closed: the starting point (history)
            fake.now_ms = start + 310 * TF_MS + 1  # ten bars closed while it was away
            requests = fake.requests[KLINES]
            for i in range(300, 310):
                got = feed.next_bars()
                assert [(p, b.ts) for p, b in got] == [(p, src[p].index[i]) for p in pairs]
                assert feed.pending == 2 * (309 - i)
                assert feed.seconds_until_next_poll() == (0.0 if i < 309 else 300.0 - 0.001)
                for pair in pairs:  # point in time: up to the bar delivered, not beyond
                    pd.testing.assert_frame_equal(
                        feed.warmup(pair, 50), src[pair].iloc[i - 49 : i + 1], check_freq=False
                    )
                    assert feed.last_bar(pair) == src[pair].index[i]
            assert fake.requests[KLINES] == requests + 2  # one poll: a request per pair
            assert feed.next_bars() == [] and feed.pending == 0
        finally:
            exchange.close()
