"""``morningstar train`` end to end: a tiny model from a CSV file, versioned artifacts, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from morningstar.cli import main
from morningstar.model._torch import torch_available
from tests.conftest import need
from tests.fakes.exchange_server import make_bars

TINY = """
model:
  features: {seq_len: 16}
  labels: {horizon: 8, vol_window: 24}
  network: {conv_channels: 8, hidden: 8}
  training: {epochs: 2, batch_size: 128, torch_threads: 1, device: cpu}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: data dir in tmp, a tiny model config, no MORNINGSTAR_* leftovers."""
    for key in list(os.environ):
        if key.startswith("MORNINGSTAR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MORNINGSTAR_DATA__DIR", str(tmp_path / "data"))
    (tmp_path / "tiny.yaml").write_text(TINY)
    monkeypatch.setenv("MORNINGSTAR_CONFIG", str(tmp_path / "tiny.yaml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def csv_file(env: Path) -> Path:
    path = env / "BINANCE_BTC_USDT-1h.csv"
    bars = make_bars(1800, "1h", seed=4)
    bars.reset_index().assign(
        timestamp=lambda f: f["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ).to_csv(path, index=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_help(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--csv" in out and "--folds" in out and "torch" in out


def test_train_from_csv_saves_versioned_artifacts(
    env: Path, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need(torch_available(), "PyTorch is not installed: pip install 'morningstar[ml]'")
    code, out, err = run(capsys, "train", "--csv", str(csv_file))
    assert code == 0, err
    for head in ("signal", "volatility", "regime", "sltp"):
        assert head in out
    assert "baseline" in out and "model saved:" in out
    first = env / "data" / "models" / "binance_btc_usdt_1h-v1"
    manifest = json.loads((first / "model.json").read_text())
    assert (first / "weights.pt").is_file()
    assert manifest["source"]["kind"] == "csv" and manifest["source"]["pair"] == "BTC/USDT"
    assert manifest["training"]["epochs"] == 2 and manifest["features"]["seq_len"] == 16
    assert manifest["data"]["n_bars"] == 1800
    code, out, err = run(capsys, "train", "--csv", str(csv_file), "--epochs", "1", "--seed", "3")
    assert code == 0, err
    second = json.loads(
        (env / "data" / "models" / "binance_btc_usdt_1h-v2" / "model.json").read_text()
    )
    assert second["training"]["epochs"] == 1 and second["training"]["seed"] == 3
    code, _, err = run(capsys, "train", "--csv", str(csv_file), "--out", str(first))
    assert code == 1 and "a model is already saved there" in err


def test_train_usage_errors_are_one_line(
    env: Path, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need(torch_available(), "PyTorch is not installed: pip install 'morningstar[ml]'")
    code, _, err = run(capsys, "train")
    assert code == 1 and err.strip().count("\n") == 0 and "--csv" in err
    code, _, err = run(capsys, "train", "--csv", str(csv_file), "--folds", "0")
    assert code == 1 and err.strip().count("\n") == 0 and "--folds" in err
    code, _, err = run(capsys, "train", "--venue", "binance", "--pair", "BTC/USDT", "-t", "1h")
    assert code == 1 and "error:" in err  # nothing stored


def test_train_without_torch_says_how_to_install(csv_file: Path, env: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from morningstar.cli import main\n"
        f"raise SystemExit(main(['train', '--csv', {str(csv_file)!r}]))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    environ = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-c", code]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=env, env=environ,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: PyTorch is not installed")
    assert (
        "pip install 'morningstar[ml]'" in lines[0] and "download.pytorch.org/whl/cpu" in lines[0]
    )
