"""One logging set-up for the whole application.

* console: human-readable lines on stderr (rich), at the configured level;
* file: JSON lines (one object per record: ``ts``, ``level``, ``logger``, ``msg`` and every bound
  field such as ``run_id``, ``strategy``, ``order_id``), rotated;
* :func:`bind` attaches fields to every record logged inside a ``with`` block (contextvars, so it is
  safe across threads and asyncio tasks);
* a redaction filter on every handler masks secret values (registered from the settings) and
  anything that looks like a key, token, bearer header or URL password.

Library code only does ``logging.getLogger(__name__)``; :func:`setup_logging` is called once by each
entry point.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["JsonLinesFormatter", "RedactionFilter", "bind", "redact", "setup_logging"]

ROOT_LOGGER = "morningstar"
MASK = "***"
_fields: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("morningstar_log_fields")
_secrets: set[str] = set()

#: (pattern, replacement, literals): a pattern runs only when one of its literals occurs in the
#: lower-cased text (it cannot match otherwise), which keeps redaction of long texts cheap.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (
        re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1 {MASK}",
        ("bearer", "basic"),
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), f"sk-{MASK}", ("sk-",)),
    # scheme://user:password@host
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)([^@/\s]+)(@)", re.IGNORECASE),
        rf"\1{MASK}\3",
        ("://",),
    ),
    # key=value / key: value / "key": "value" for secret-looking names
    (
        re.compile(
            r"""(?ix)
            (["']?\b[\w.-]*(?:api[_-]?key|secret|token|password|passwd|passphrase)
            ["']?\s*[:=]\s*["']?)
            ([^\s"',;}&]+)"""
        ),
        rf"\1{MASK}",
        ("key", "secret", "token", "passw", "passphrase"),
    ),
)
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def register_secrets(values: Iterable[str]) -> None:
    """Add exact values that must never appear in any log output (ignores values < 4 chars)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """Mask registered secrets and secret-looking patterns in ``text``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    lower = text.lower()
    for pattern, repl, literals in _PATTERNS:
        for word in literals:
            if word in lower:
                text = pattern.sub(repl, text)
                break
    return text


class RedactionFilter(logging.Filter):
    """Rewrite each record's message, bound fields and exception text with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class ContextFilter(logging.Filter):
    """Copy the fields bound with :func:`bind` onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach bound fields; never drops a record."""
        for key, value in _fields.get({}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO-8601), level, logger, msg, bound fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one JSON line."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                if isinstance(value, str):
                    out[key] = redact(value)
                elif isinstance(value, int | float | bool | None):
                    out[key] = value
                else:  # dicts, objects: their text may hold a secret
                    out[key] = redact(str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = redact(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (e.g. ``run_id=..., strategy=...``) to every record logged in the block."""
    token = _fields.set({**_fields.get({}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def setup_logging(
    *,
    level: str = "INFO",
    file: Path | None = None,
    file_level: str = "DEBUG",
    secrets: Iterable[str] = (),
    console: bool = True,
) -> logging.Logger:
    """Configure the ``morningstar`` logger: rich console + JSON-lines file, redacted, with context.

    Calling it again replaces the handlers (idempotent).

    Args:
        level: console level.
        file: JSON-lines file (parent directories are created); None = no file.
        file_level: file level.
        secrets: exact values to mask everywhere.
        console: log to stderr.
    """
    register_secrets(secrets)
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    filters: list[logging.Filter] = [ContextFilter(), RedactionFilter()]
    if console:
        from rich.console import Console
        from rich.logging import RichHandler

        rich_handler: logging.Handler = RichHandler(
            console=Console(stderr=True, soft_wrap=True),
            show_path=False,
            rich_tracebacks=False,
            markup=False,
            log_time_format="[%X]",
        )
        rich_handler.setLevel(level.upper())
        for flt in filters:
            rich_handler.addFilter(flt)
        logger.addHandler(rich_handler)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            file, maxBytes=20_000_000, backupCount=5, encoding="utf-8"
        )
        fh.setLevel(file_level.upper())
        fh.setFormatter(JsonLinesFormatter())
        for flt in filters:
            fh.addFilter(flt)
        logger.addHandler(fh)
    return logger
