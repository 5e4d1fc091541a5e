"""Checks, policies and the validation report (see :mod:`morningstar.data.validation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from morningstar.core.timeframe import Timeframe
from morningstar.data.validation._common import _iso_ts
from morningstar.errors import DataValidationError

__all__ = [
    "ALLOWED_POLICIES",
    "DEFAULT_POLICIES",
    "Check",
    "Example",
    "Issue",
    "Policy",
    "PolicyMap",
    "Severity",
    "ValidationFailedError",
    "ValidationReport",
]


class Check(StrEnum):
    """The problems :func:`validate` looks for, in the order it looks."""

    NON_MONOTONIC = "non_monotonic"
    DUPLICATE = "duplicate"
    MISALIGNED = "misaligned"
    NAN = "nan"
    NON_POSITIVE = "non_positive"
    OHLC_INCONSISTENT = "ohlc_inconsistent"
    OUTLIER = "outlier"
    ZERO_VOLUME = "zero_volume"
    NO_VOLUME = "no_volume"
    OFF_SESSION = "off_session"
    GAP = "gap"


class Policy(StrEnum):
    """What to do when a check finds something."""

    ERROR = "error"
    WARN = "warn"
    DROP = "drop"
    FFILL = "ffill"
    SORT = "sort"


class Severity(StrEnum):
    """How bad an issue is: ``error`` (raised), ``warning`` (a problem) or ``info``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_E, _W, _D, _F, _S = Policy.ERROR, Policy.WARN, Policy.DROP, Policy.FFILL, Policy.SORT
#: The policies each check accepts.
ALLOWED_POLICIES: Mapping[Check, frozenset[Policy]] = {
    Check.NON_MONOTONIC: frozenset({_E, _W, _S, _D}),
    Check.DUPLICATE: frozenset({_E, _W, _D}),
    Check.MISALIGNED: frozenset({_E, _W, _D}),
    Check.NAN: frozenset({_E, _W, _D, _F}),
    Check.NON_POSITIVE: frozenset({_E, _W, _D, _F}),
    Check.OHLC_INCONSISTENT: frozenset({_E, _W, _D, _F}),
    Check.OUTLIER: frozenset({_E, _W, _D, _F}),
    Check.ZERO_VOLUME: frozenset({_E, _W, _D}),
    Check.NO_VOLUME: frozenset({_E, _W}),
    Check.OFF_SESSION: frozenset({_E, _W, _D}),
    Check.GAP: frozenset({_E, _W, _F}),
}
#: Defaults: structural problems (order, duplicates, impossible values) stop; market realities warn.
DEFAULT_POLICIES: Mapping[Check, Policy] = {
    Check.NON_MONOTONIC: _E,
    Check.DUPLICATE: _E,
    Check.MISALIGNED: _W,
    Check.NAN: _E,
    Check.NON_POSITIVE: _E,
    Check.OHLC_INCONSISTENT: _E,
    Check.OUTLIER: _W,
    Check.ZERO_VOLUME: _W,
    Check.NO_VOLUME: _W,
    Check.OFF_SESSION: _W,
    Check.GAP: _W,
}
#: Policies by check, written with enums or plain strings.
PolicyMap = Mapping[Check, Policy] | Mapping[str, Policy] | Mapping[Check, str] | Mapping[str, str]


@dataclass(frozen=True)
class Example:
    """One offending bar: its source row (1-based, None for bars not in the input), time, detail."""

    row: int | None
    timestamp: pd.Timestamp | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"row": self.row, "timestamp": _iso_ts(self.timestamp), "detail": self.detail}

    def describe(self) -> str:
        """One line: ``row 12 (2024-01-01T00:05:00Z): detail``."""
        where = f"row {self.row}" if self.row is not None else "new bar"
        when = f" ({_iso_ts(self.timestamp)})" if self.timestamp is not None else ""
        return f"{where}{when}: {self.detail}"


@dataclass(frozen=True)
class Issue:
    """What one check found, what policy applied and what was done."""

    check: Check
    severity: Severity
    policy: Policy
    action: str
    count: int
    summary: str
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    examples: tuple[Example, ...] = ()

    @property
    def first_ts(self) -> pd.Timestamp | None:
        """Alias of ``first``: the earliest bar (or first missing bar) concerned."""
        return self.first

    @property
    def last_ts(self) -> pd.Timestamp | None:
        """Alias of ``last``."""
        return self.last

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "check": str(self.check),
            "severity": str(self.severity),
            "policy": str(self.policy),
            "action": self.action,
            "count": self.count,
            "summary": self.summary,
            "first": _iso_ts(self.first),
            "last": _iso_ts(self.last),
            "examples": [e.to_dict() for e in self.examples],
        }

    def line(self) -> str:
        """One line: severity, check, count summary, policy and action."""
        return (
            f"{self.severity.upper():7s} {self.check}: {self.summary} "
            f"[policy {self.policy}; action: {self.action}]"
        )


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`validate`: what was checked, what was found and what was done."""

    where: str
    timeframe: Timeframe
    calendar: str
    bars_in: int
    bars_out: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    issues: tuple[Issue, ...]
    policies: Mapping[Check, Policy]
    notes: tuple[str, ...] = field(default=())

    @property
    def source(self) -> str:
        """Alias of ``where``: the file or dataset validated."""
        return self.where

    @property
    def status(self) -> str:
        """``'errors'``, ``'warnings'`` or ``'clean'`` (info issues leave a report clean)."""
        severities = {i.severity for i in self.issues}
        if Severity.ERROR in severities:
            return "errors"
        if Severity.WARNING in severities:
            return "warnings"
        return "clean"

    def issue(self, check: Check | str) -> Issue | None:
        """The issue of ``check``, or None when that check found nothing."""
        wanted = Check(check)
        return next((i for i in self.issues if i.check is wanted), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "where": self.where,
            "timeframe": str(self.timeframe),
            "calendar": str(self.calendar),
            "status": self.status,
            "bars_in": self.bars_in,
            "bars_out": self.bars_out,
            "start": _iso_ts(self.start),
            "end": _iso_ts(self.end),
            "issues": [i.to_dict() for i in self.issues],
            "policies": {str(k): str(v) for k, v in self.policies.items()},
            "notes": list(self.notes),
        }

    def lines(self, max_examples: int = 3) -> list[str]:
        """A compact text rendering, one string per line."""
        out = [
            f"{self.where}: {self.status} — {self.bars_in} bars in, {self.bars_out} out, "
            f"{self.timeframe}, {self.calendar} calendar, "
            f"{_iso_ts(self.start)} .. {_iso_ts(self.end)}"
        ]
        for issue in self.issues:
            out.append("  " + issue.line())
            for ex in issue.examples[:max_examples]:
                row = f"row {ex.row}" if ex.row is not None else "new bar"
                out.append(f"      {row:>11s}  {_iso_ts(ex.timestamp) or '':20s}  {ex.detail}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


class ValidationFailedError(DataValidationError):
    """A check under the ``error`` policy found a problem; ``report`` holds the full report."""

    def __init__(self, message: str, *, report: ValidationReport, hint: str) -> None:
        self.report = report
        super().__init__(message, where=report.where, hint=hint)
