"""The ``morningstar`` CLI end to end, in-process through ``main()`` (exit codes, one-line errors)
and as the installed console script for the main job."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from morningstar.cli import main
from morningstar.data.parquet_store import OHLCVStore
from morningstar.store import open_database
from morningstar.store.repositories import DataImportRepository, RunRepository
from tests.fakes.exchange_server import FakeBinance, make_bars

SECRET = "sk-live-CLI-SECRET-NEVER-SHOWN"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: data dir in tmp, no config file, no MORNINGSTAR_* leftovers."""
    for key in list(os.environ):
        if key.startswith("MORNINGSTAR_"):
            monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MORNINGSTAR_DATA__DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    return data_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_help_and_version(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "data" in out and "config" in out and "demo" in out
    for group in ("data", "config"):
        code, out, _ = run(capsys, group, "--help")
        assert code == 0 and "Usage" in out
    for command in ("import", "check", "list", "resample", "download"):
        code, out, _ = run(capsys, "data", command, "--help")
        assert code == 0 and "Usage" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("morningstar ")


def test_config_check_good_and_bad(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo_config = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    code, out, _ = run(capsys, "--config", str(repo_config), "config", "check")
    assert code == 0 and "config OK" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk:\n  max_position_pct: 150\n  max_positon: 3\n")
    code, _, err = run(capsys, "--config", str(bad), "config", "check")
    assert code == 1
    assert error_lines(err) == [
        f"error: risk.max_position_pct: 150 is not <= 100 ({bad})",
        f"error: risk.max_positon: unknown key; did you mean 'max_position_pct'? ({bad})",
    ]
    unknown_exchange = tmp_path / "ex.yaml"
    unknown_exchange.write_text("exchanges:\n  binanse:\n    pairs: [BTC/USDT]\n")
    code, _, err = run(capsys, "--config", str(unknown_exchange), "config", "check")
    assert code == 1 and "exchanges.binanse: unknown exchange id — did you mean 'binance'?" in err


def test_bad_config_fails_every_command_with_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm:\n  provider: gpt\n")
    code, _, err = run(capsys, "--config", str(bad), "data", "list")
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: llm.provider: 'gpt' is not one of 'offline', 'openai' or 'ollama' ({bad})"
    ]


def test_config_show_masks_secrets(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MORNINGSTAR_LLM__API_KEY", SECRET)
    code, out, err = run(capsys, "config", "show", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["llm"]["api_key"] == "**********"
    assert SECRET not in out + err


def test_import_list_check_resample(
    env: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        shared_data / "genetrader" / "BINANCE_BTC_USDT-1h.csv",
        shared_data / "nacho_b" / "BINANCE_BTC_USDT-1h.csv",  # merges into the same dataset
        shared_data / "lean" / "OANDA_EURUSD-1D.csv",
    ]
    code, out, err = run(capsys, "data", "import", *map(str, files))
    assert code == 0, err
    assert "binance BTC/USDT 1h" in out and "oanda EUR/USD 1d" in out
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "BTC/USDT" in out and "EUR/USD" in out
    code, out, _ = run(capsys, "data", "check", str(files[1]))
    assert code == 0  # warnings are not errors
    assert "gap" in out and "zero_volume" in out and "warnings" in out
    code, out, _ = run(
        capsys, "data", "check", "--venue", "binance", "--pair", "BTC/USDT", "-t", "1h"
    )
    assert code == 0 and "BTC_USDT-1h.parquet" in out
    code, out, err = run(
        capsys,
        "data",
        "resample",
        "--venue",
        "binance",
        "--pair",
        "BTC/USDT",
        "--from",
        "1h",
        "--to",
        "4h",
    )
    assert code == 0, err
    assert "BTC_USDT-4h.parquet" in out
    db = open_database(f"sqlite:///{env / 'morningstar.sqlite'}")
    with db.session() as s:
        imports = DataImportRepository(s).recent(limit=50)
        runs = RunRepository(s).recent(limit=50)
    db.dispose()
    assert sorted(i.kind for i in imports) == ["csv", "csv", "csv", "resample"]
    assert {r.command for r in runs} >= {"data import", "data check", "data resample"}
    assert all(r.status == "ok" for r in runs)


def test_bad_csv_is_one_line_and_stores_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "BINANCE_BTC_USDT-1h.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n"
                   "2024-01-01T01:00:00Z,1,x,0.5,1.5,3\n")  # fmt: skip
    code, _, err = run(capsys, "data", "import", str(bad))
    assert code == 1
    assert f"error: {bad}, line 3: column 'high' has a non-numeric value 'x'" in err
    assert not (env / "ohlcv").exists() or not list((env / "ohlcv").rglob("*.parquet"))
    unknown = tmp_path / "prices.csv"
    unknown.write_text("when,price\n2024-01-01,1\n")
    code, _, err = run(capsys, "data", "check", str(unknown))
    assert code == 1 and "unknown CSV layout" in err


def test_error_policy_refuses_and_keeps_store_untouched(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "BINANCE_BTC_USDT-1h.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n"
        "2024-01-01T02:00:00Z,1,2,0.5,1.5,3\n"
    )
    code, _, err = run(capsys, "data", "import", str(path), "--policy", "gap=error")
    assert code == 1 and "gap" in err and len(error_lines(err)) == 1
    assert not list(env.rglob("*.parquet"))
    code, _, err = run(capsys, "data", "import", str(path), "--policy", "gap=ffill")
    assert code == 0, err
    code, _, err = run(capsys, "data", "import", str(path), "--policy", "gap=explode")
    assert code == 1 and "gap" in err and "use one of" in err
    code, _, err = run(capsys, "data", "import", str(path), "--policy", "gapp=warn")
    assert code == 1 and "did you mean 'gap'?" in err


def test_unknown_dataset_and_timeframe(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "data", "check", "--venue", "binance", "--pair", "BTC/USDT", "-t", "5m"
    )
    assert code == 1 and "no stored data for binance BTC/USDT 5m" in err
    code, _, err = run(
        capsys, "data", "check", "--venue", "binance", "--pair", "BTC/USDT", "-t", "5x"
    )
    assert code == 1 and "unknown timeframe '5x'" in err
    assert len(err.strip().splitlines()) == 1


def test_download_against_local_exchange(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = make_bars(2500, "1h", start="2024-01-01")
    with FakeBinance({("BTC/USDT", "1h"): bars}, extra_symbols=["ETH/USDT"]) as fake:
        monkeypatch.setenv("MORNINGSTAR_EXCHANGES__BINANCE__API_BASE_URL", fake.base_url)
        args = [
            "data",
            "download",
            "-e",
            "binance",
            "--pair",
            "BTC/USDT",
            "-t",
            "1h",
            "--since",
            "2024-01-01",
        ]
        code, out, err = run(capsys, *args)
        assert code == 0, err
        assert "2500" in out
        code, out, err = run(capsys, *args)  # incremental: nothing new
        assert code == 0, err
        code, _, err = run(
            capsys, "data", "download", "-e", "binance", "--pair", "BTC/USDX", "-t", "1h"
        )
        assert code == 1 and "did you mean" in err and "BTC/USDT" in err
    # the exchange is down now (server stopped): one clear line after retries
    monkeypatch.setenv("MORNINGSTAR_EXCHANGES__BINANCE__API_BASE_URL", "http://127.0.0.1:9")
    code, _, err = run(
        capsys, "data", "download", "-e", "binance", "--pair", "BTC/USDT", "-t", "1h"
    )
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "unreachable at http://127.0.0.1:9" in lines[0]


def test_debug_shows_traceback(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "--debug", "data", "check", "--venue", "x", "--pair", "A/B", "-t", "1h"
    )
    assert code == 1 and "Traceback" in err


def test_secret_on_command_line_is_not_recorded(
    env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(
        capsys, "data", "check", "--venue", f"api_key={SECRET}", "--pair", "A/B", "-t", "1h"
    )
    assert code == 1
    with sqlite3.connect(env / "morningstar.sqlite") as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump
    logs = (env / "logs" / "morningstar.jsonl").read_text()
    assert SECRET not in logs


@pytest.mark.slow
def test_main_job_console_script(tmp_path: Path) -> None:
    """The README's main job: `morningstar demo`, as a user runs it (installed console script)."""
    exe = shutil.which("morningstar", path=str(Path(sys.executable).parent))
    assert exe is not None, "the morningstar console script is not installed in this venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MORNINGSTAR_")}
    env["MORNINGSTAR_DATA__DIR"] = str(tmp_path / "data")
    proc = subprocess.run(
        [exe, "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6,225 bars of demo EUR/USD 1h" in proc.stdout
    assert ": clean — 6225 bars in, 6225 out, 1h, forex calendar" in proc.stdout
    models = tmp_path / "data" / "models" / "demo_eurusd_1h-v1"
    assert f"model saved: {models}" in proc.stdout and (models / "weights.pt").is_file()
    assert "supervisor (rule-based analyst, not an LLM)" in proc.stdout
    assert "workflow backtest on demo EUR/USD 1h, from 2017-08-07" in proc.stdout
    assert "supervisor consulted" in proc.stdout
    reports = list((tmp_path / "data" / "reports").glob("report-*.html"))
    assert len(reports) == 1 and f"report: {reports[0]}" in proc.stdout
    page = reports[0].read_text()
    assert "Run summary" in page and "demo_eurusd_1h-v1" in page
    with sqlite3.connect(tmp_path / "data" / "morningstar.sqlite") as conn:
        status, mode, strategy = conn.execute(
            "SELECT status, mode, strategy FROM workflow_runs"
        ).fetchone()
        cycles = conn.execute("SELECT sum(bars) FROM cycles").fetchone()[0]
        verdicts = conn.execute(
            "SELECT count(*) FROM cycles WHERE llm_verdict IS NOT NULL"
        ).fetchone()[0]
    assert (status, mode) == ("finished", "backtest") and strategy.startswith("model:")
    assert cycles == 2_490 and verdicts > 0
    # a second run reuses the trained model
    again = subprocess.run([exe, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"model: {models} (trained earlier)" in again.stdout
    assert (tmp_path / "data" / "ohlcv" / "demo" / "EUR_USD-1h.parquet").is_file()
    assert (tmp_path / "data" / "morningstar.sqlite").is_file()


def _hourly_csv(path: Path, start: str, hours: int) -> Path:
    idx = pd.date_range(start, periods=hours, freq="1h", tz="UTC")
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},100,101,99,100.5,1" for t in idx]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replace_applies_once_per_dataset_and_resample_merges(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    _hourly_csv(parts / "a.csv", "2023-01-01", 100)
    _hourly_csv(parts / "b.csv", "2023-01-05 04:00", 100)
    args = ["--venue", "x", "--pair", "A/B", "-t", "1h"]
    code, _, err = run(capsys, "data", "import", str(parts), *args, "--replace")
    assert code == 0, err
    store = OHLCVStore(env)
    assert len(store.load("x", "A/B", "1h")) == 200  # both files, not only the last one
    five = tmp_path / "X_A_B-5m.csv"
    idx = pd.date_range("2024-01-01", periods=24 * 12, freq="5min", tz="UTC")
    five.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},1,2,0.5,1.5,1\n" for t in idx))  # fmt: skip
    code, _, err = run(capsys, "data", "import", str(five), "--venue", "x", "--pair", "A/B")
    assert code == 0, err
    code, _, err = run(
        capsys, "data", "resample", "--venue", "x", "--pair", "A/B", "--from", "5m", "--to", "1h"
    )
    assert code == 0, err
    assert len(store.load("x", "A/B", "1h")) == 200 + 24  # merged into the 2023 bars, none lost


@pytest.mark.parametrize("name", ["nope[/].csv", "[bold]x.csv"])
def test_markup_in_user_text_is_printed_verbatim(
    env: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, _, err = run(capsys, "data", "import", name)
    assert code == 1
    assert err.strip() == f"error: {name}: no such file or folder"


def test_bad_calendar_and_unwritable_data_dir(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _hourly_csv(tmp_path / "X_A_B-1h.csv", "2023-01-01", 10)
    code, _, err = run(capsys, "data", "check", str(path), "--calendar", "forx")
    assert code == 1 and "unknown calendar 'forx' — did you mean 'forex'?" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MORNINGSTAR_DATA__DIR", str(blocker / "sub"))
    code, _, err = run(capsys, "data", "list")
    assert code == 1 and err.startswith("error: data.dir / logging.file: cannot create")
    assert len(err.strip().splitlines()) == 1


def test_backtest_command(env: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "data", "import", str(shared_data / "genetrader" / "BINANCE_BTC_USDT-1h.csv")
    )
    assert code == 0, err
    out_dir = env / "bt"
    args = ["backtest", "--venue", "binance", "--pair", "BTC/USDT", "-t", "1h", "-s", "ema_cross"]
    code, out, err = run(capsys, *args, "-P", "fast=12", "-P", "slow=48", "--out", str(out_dir))
    assert code == 0, err
    assert "ema_cross(fast=12, slow=48, allow_short=False)" in out and "sharpe" in out
    saved = json.loads((out_dir / "result.json").read_text())
    assert saved["params"]["fast"] == 12 and saved["settings"]["costs"]["fee_bps"] == 10.0
    trades = pd.read_csv(out_dir / "trades.csv")
    assert len(trades) >= saved["metrics"]["trade_count"] > 0
    assert (out_dir / "report.html").stat().st_size > 100_000
    code, _, err = run(capsys, *args, "-P", "fsat=12")
    assert code == 1 and err.strip() == (
        "error: ema_cross: unknown parameter 'fsat' — did you mean 'fast'?"
    )
    code, _, err = run(capsys, *args, "--start", "2030-01-01")
    assert code == 1 and "only 0 stored bar(s)" in err


def test_sweep_and_walkforward_commands(
    env: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = shared_data / "genetrader" / "BINANCE_BTC_USDT-1h.csv"
    code, _, err = run(capsys, "data", "import", str(csv))
    assert code == 0, err
    base = ["--venue", "binance", "--pair", "BTC/USDT", "-t", "1h", "-s", "ema_cross"]
    ranges = ["-r", "fast=5:20:5", "-r", "slow=30,60"]
    code, out, err = run(capsys, "sweep", *base, *ranges, "--out", str(env / "sw"))
    assert code == 0, err
    assert "top 10 of 8 combinations by sharpe" in out
    table = pd.read_csv(env / "sw" / "results.csv")
    assert len(table) == 8 and list(table["sharpe"]) == sorted(table["sharpe"], reverse=True)
    summary = json.loads((env / "sw" / "summary.json").read_text())
    assert summary["n_trials"] == 8 and (env / "sw" / "best" / "report.html").is_file()
    code, out, err = run(
        capsys, "walkforward", *base, *ranges, "--train", "2000", "--test", "1000",
        "--out", str(env / "wf"),
    )  # fmt: skip
    assert code == 0, err
    folds = pd.read_csv(env / "wf" / "results.csv")
    assert len(folds) == 3  # (5980 - 2000) // 1000
    data = json.loads((env / "wf" / "summary.json").read_text())
    assert data["summary"]["n_trials"] == 24  # 8 combinations x 3 folds
    assert [f["n_trials"] for f in data["folds"]] == [8, 8, 8]
    assert 0.0 <= float(data["summary"]["dsr"]) <= 1.0
    assert len(pd.read_csv(env / "wf" / "oos_equity.csv")) == 3000
    code, _, err = run(capsys, "sweep", *base, "-r", "fast=5:1:5")
    assert code == 1 and "bad range 'fast=5:1:5'" in err


def test_backtest_command_portfolio(
    env: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("BTC", "ETH"):
        csv = shared_data / "genetrader" / f"BINANCE_{name}_USDT-1h.csv"
        code, _, err = run(capsys, "data", "import", str(csv))
        assert code == 0, err
    out_dir = env / "pf"
    base = ["backtest", "--venue", "binance", "-t", "1h", "-s", "ema_cross"]
    pairs = ["--pair", "BTC/USDT", "--pair", "ETH/USDT"]
    code, out, err = run(capsys, *base, *pairs, "-P", "fast=12", "--out", str(out_dir))
    assert code == 0, err
    assert "ema_cross(fast=12, slow=50, allow_short=False) portfolio of 2 pairs" in out
    assert "per asset" in out and "BTC/USDT" in out and "ETH/USDT" in out
    saved = json.loads((out_dir / "result.json").read_text())
    assert saved["assets"] == ["BTC/USDT", "ETH/USDT"]
    assert saved["settings"]["sizing"] == {"type": "FractionSizing", "fraction": 0.5}
    assert saved["params"]["ETH/USDT"]["fast"] == 12
    trades = pd.read_csv(out_dir / "trades.csv")
    assert set(trades["asset"]) == {"BTC/USDT", "ETH/USDT"}
    per_asset = pd.read_csv(out_dir / "per_asset.csv", index_col="asset")
    assert per_asset["trade_count"].sum() == saved["metrics"]["trade_count"] > 0
    assert per_asset["pnl"].sum() == pytest.approx(saved["metrics"]["final_equity"] - 10_000)
    equity = pd.read_csv(out_dir / "equity.csv")
    assert list(equity.columns) == [
        "timestamp", "equity", "cash", "position:BTC/USDT", "position:ETH/USDT",
        "value:BTC/USDT", "value:ETH/USDT",
    ]  # fmt: skip
    assert len(equity) == 5980
    # bad input: one line saying what, where and how to fix
    code, _, err = run(capsys, *base, *pairs, "--pair", "btc/usdt")
    assert code == 1 and err.strip() == (
        "error: --pair: pair BTC/USDT is given twice — give each pair once"
    )
    code, _, err = run(capsys, *base, *pairs, "--pair", "SOL/USDT")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no stored data for binance SOL/USDT 1h" in err
    code, _, err = run(capsys, *base, *pairs, "--fraction", "1.5")
    assert code == 1 and err.strip() == (
        "error: FractionSizing.fraction: fraction=1.5 is invalid — allowed: a finite number in "
        "(0, 1]"
    )
