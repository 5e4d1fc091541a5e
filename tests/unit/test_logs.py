from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from morningstar.logs import bind, redact, setup_logging

SECRET = "sk-live-THIS-MUST-NEVER-BE-LOGGED"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("api_key=abcdef123456", "abcdef123456"),
        ('{"secret": "qwertyuiop"}', "qwertyuiop"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("postgresql://user:hunter2pw@host/db", "hunter2pw"),
        ("using key sk-abcdefghijklmnop", "abcdefghijklmnop"),
        ("password: p4ssw0rd!", "p4ssw0rd!"),
    ],
)
def test_redact_patterns(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_redact_keeps_ordinary_text() -> None:
    text = "downloaded 1000 bars of BTC/USDT 5m from binance"
    assert redact(text) == text


def test_file_is_json_lines_with_bound_fields_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "logs" / "ms.jsonl"
    setup_logging(level="INFO", file=log_file, secrets=[SECRET])
    log = logging.getLogger("morningstar.test")
    with bind(run_id="run-1", strategy="ema_cross"):
        log.info("placing order with key %s", SECRET)
        with bind(order_id="o-7"):
            log.warning("retrying")
        try:
            raise RuntimeError(f"exchange said no to {SECRET}")
        except RuntimeError:
            log.exception("order failed")
    log.debug("after the block")
    for handler in logging.getLogger("morningstar").handlers:
        handler.flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["msg"] for r in lines] == [
        "placing order with key ***",
        "retrying",
        "order failed",
        "after the block",
    ]
    assert lines[0]["run_id"] == "run-1" and lines[0]["strategy"] == "ema_cross"
    assert lines[1]["order_id"] == "o-7"
    assert "order_id" not in lines[2]
    assert "run_id" not in lines[3]
    assert lines[2]["level"] == "ERROR" and "RuntimeError" in lines[2]["exc"]
    assert lines[0]["ts"].endswith("+00:00")
    assert SECRET not in log_file.read_text()
    err = capsys.readouterr().err
    assert "placing order" in err
    assert SECRET not in err
    assert "after the block" not in err  # console level INFO


def test_setup_is_idempotent(tmp_path: Path) -> None:
    setup_logging(file=tmp_path / "a.jsonl")
    setup_logging(file=tmp_path / "a.jsonl")
    assert len(logging.getLogger("morningstar").handlers) == 2


def test_structured_fields_are_redacted(tmp_path: Path) -> None:
    log_file = tmp_path / "ms.jsonl"
    setup_logging(file=log_file, secrets=[SECRET], console=False)
    log = logging.getLogger("morningstar.test")
    with bind(request={"api_key": "TOPSECRETVALUE", "key": SECRET}):
        log.info("sent", extra={"headers": {"Authorization": "Bearer abcdefghijklmnop"}})
    for handler in logging.getLogger("morningstar").handlers:
        handler.flush()
    text = log_file.read_text()
    assert "sent" in text
    for leak in ("TOPSECRETVALUE", SECRET, "abcdefghijklmnop"):
        assert leak not in text
