"""``morningstar run`` end to end: backtest with the rule-based supervisor, the ablation report,
replay of a recorded run, and one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from morningstar.cli import main
from morningstar.monitoring import MonitoringService
from morningstar.store import open_database
from morningstar.store.workflow import WorkflowStore

pytestmark = pytest.mark.shared_data

FILE = "genetrader/BINANCE_BTC_USDT-5m.csv"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> Path:
    """A data dir in tmp holding 4,000 stored 5m bars of BTC/USDT (imported through the CLI)."""
    for key in list(os.environ):
        if key.startswith("MORNINGSTAR_"):
            monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MORNINGSTAR_DATA__DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(shared_data / FILE, nrows=4_000)
    csv = tmp_path / "BINANCE_BTC_USDT-5m.csv"
    frame.to_csv(csv, index=False)
    assert main(["data", "import", str(csv)]) == 0
    return data_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


ARGS = ("run", "--venue", "binance", "--pair", "BTC/USDT", "-t", "5m")


def test_backtest_with_the_rule_based_supervisor(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *ARGS, "--start", "2024-01-02")
    assert code == 0, err
    assert "supervisor consulted" in out and "report:" in out
    report = Path(out.split("report:")[1].split()[0])
    page = report.read_text()
    assert report.parent == env / "reports" and "plotly" in page.lower()
    assert "LLM" in page and "Run summary" in page
    db = open_database(f"sqlite:///{env / 'morningstar.sqlite'}")
    try:
        service = MonitoringService(db)
        run_row = WorkflowStore(db).latest_run()
        assert run_row is not None and run_row.status == "finished"
        assert run_row.mode == "backtest" and run_row.strategy == "strategy:ema_cross"
        trades = service.get_recent_trades(1_000)["trades"]
        assert trades and all(t["llm_verdict"] in ("approve", "reduce", "veto") for t in trades)
        analysis = service.get_last_llm_analysis()
        assert analysis["run_id"] == run_row.run_id
    finally:
        db.dispose()


def test_ablation_and_replay(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *ARGS, "--ablation", "--llm-cache", "record")
    assert code == 0, err
    assert "ablation: supervisor on vs off" in out and "P&L difference" in out
    assert "supervisor ON" in out and "supervisor OFF" in out
    # replay: the recorded supervisor answers are reused, no question is new
    code, out2, err = run(capsys, *ARGS, "--supervisor", "on", "--llm-cache", "replay")
    assert code == 0, err
    assert "HALTED" not in out2 and "supervisor consulted" in out2


def test_a_replay_miss_halts_the_run(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *ARGS, "--supervisor", "on", "--llm-cache", "replay")
    assert code == 0, err
    assert "HALTED" in out
    db = open_database(f"sqlite:///{env / 'morningstar.sqlite'}")
    try:
        stored = WorkflowStore(db).latest_run()
        assert stored is not None and stored.status == "failed"
        assert stored.error is not None and stored.error.startswith("LLMCacheMiss: ")
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mode", "live"), "--mode 'live': use backtest or paper"),
        (("--supervisor", "maybe"), "--supervisor 'maybe': use on or off"),
        (("--llm-cache", "sometimes"), "--llm-cache 'sometimes': use record, replay or off"),
        (("--predictor", "magic"), "is not strategy:<name> or model:<artifact dir>"),
        (("--run-id", "0" * 32), "--run-id resumes paper runs"),
        (("--mode", "paper", "--start", "2024-01-02"), "--start/--end are for backtests"),
        (("--mode", "paper", "--run-id", "xyz"), "--run-id 'xyz': 32 lower-case hex"),
        (("--start", "2030-01-01"), "no bar to replay between 2030-01-01 and the end"),
    ],
)
def test_bad_options_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _out, err = run(capsys, *ARGS, *args)
    assert code in (1, 2) and message in err
