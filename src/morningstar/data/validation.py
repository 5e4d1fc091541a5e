"""Market-data validation: find what is wrong with bars, report it, fix only what you ask for.

:func:`validate` runs every check on a bar frame and returns the (possibly repaired) frame with a
:class:`ValidationReport`. Nothing is fixed silently: each check has a :class:`Policy` — ``error``
(raise :class:`ValidationFailedError`, a :class:`~morningstar.errors.DataValidationError`, with the
report attached), ``warn`` (keep the rows, report them), ``drop`` (remove the rows), ``ffill``
(forward-fill) or, for ordering only, ``sort`` — and the report records the policy and the action.

Checks, in the order they run (order matters: a later check sees the rows the earlier ones kept):

==================  =========  ===============================================================
check               default    what it finds / what the policies do
==================  =========  ===============================================================
non_monotonic       error      a row earlier than a row above it. ``sort``: stable sort by time;
                               ``drop``: remove the rows that go back in time.
duplicate           error      a timestamp seen more than once. ``drop`` keeps the LAST row of
                               each group (an exchange's final version of a bar).
misaligned          warn       a bar off the timeframe grid (grid = the most common phase).
nan                 error      NaN/inf in a price or the volume.
non_positive        error      a price <= 0 or a negative volume.
ohlc_inconsistent   error      high/low not bounding open/close (or high < low).
outlier             warn       an isolated price spike far from the neighbouring closes (below).
zero_volume         warn       bars with volume 0 in a series that otherwise has volume.
no_volume           warn       the whole series has volume 0 (reported once, as info).
off_session         warn       a bar when the calendar's market is closed.
gap                 warn       missing bars the calendar expected (weekends, nights, holidays are
                               not gaps). ``ffill`` inserts bars at the previous close, volume 0.
==================  =========  ===============================================================

The value checks (nan .. outlier) are all judged on the same rows, so one bar may be reported by
several of them; then ``drop`` wins over ``ffill``. ``ffill`` on a value check replaces the bar by
a flat bar at the previous good close (a NaN-only volume becomes 0; a bad first bar, having no
previous bar, is dropped). Gaps are measured after the drops, so a dropped bar shows up as a gap.

Outlier rule (vectorised, robust): for each bar and each of open/high/low/close, compare the price
with the median of the 3 closes before and the median of the 3 closes after (one side at the edges).
The deviation counts only if the price is beyond BOTH medians on the same side (a spike that
reverts; a crash that stays down does not qualify) and is the smaller of the two log distances.
A bar is flagged when that deviation is at least 12 local sigmas (1.4826 x the median absolute
1-bar log return around the bar) and at least 3 %, unless the bar trades at least 2x its local
median volume (a real market event) and the deviation is under 50 %. See :class:`OutlierRule`.

Row numbers in the report are 1-based positions among the input rows (the data row of a CSV file,
header excluded), so they point into the source file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import numpy as np
import pandas as pd

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.data.calendars import (
    Calendar,
    CalendarKind,
    SessionGrid,
    get_calendar,
    guess_calendar,
)
from morningstar.data.ohlcv import INDEX_NAME, OHLCV_COLUMNS, to_contract
from morningstar.errors import DataValidationError, UserInputError

__all__ = [
    "ALLOWED_POLICIES",
    "DEFAULT_POLICIES",
    "Check",
    "Example",
    "Issue",
    "OutlierRule",
    "Policy",
    "Severity",
    "ValidationFailedError",
    "ValidationReport",
    "parse_policies",
    "resolve_policies",
    "validate",
]

_PRICES = ("open", "high", "low", "close")


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
_MAX_FILL_FACTOR = 10  # gap ffill refuses to insert more than max(1M, 10 x bars) bars


@dataclass(frozen=True)
class OutlierRule:
    """Thresholds of the outlier check (see the module docstring).

    Args:
        sigmas: minimum deviation in local robust sigmas of 1-bar log returns.
        min_ratio: minimum deviation as a price ratio (1.03 = 3 %).
        event_volume: a bar with at least this multiple of its local median volume is a market
            event...
        event_max_ratio: ...and is flagged only when its deviation reaches this ratio.
        block: bars per block for the local sigma and volume medians.
    """

    sigmas: float = 12.0
    min_ratio: float = 1.03
    event_volume: float = 2.0
    event_max_ratio: float = 1.5
    block: int = 256


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


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def _parse_check(name: str | Check) -> Check:
    try:
        return Check(str(name).strip().lower())
    except ValueError:
        names = [c.value for c in Check]
        close = difflib.get_close_matches(str(name).strip().lower(), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"checks: {', '.join(names)}"
        raise UserInputError(f"unknown validation check {name!r}", hint=hint) from None


def _parse_policy(check: Check, value: str | Policy) -> Policy:
    allowed = sorted(p.value for p in ALLOWED_POLICIES[check])
    try:
        policy = Policy(str(value).strip().lower())
    except ValueError:
        policy = None
    if policy is None or policy not in ALLOWED_POLICIES[check]:
        raise UserInputError(
            f"policy {value!r} is not available for check {check}",
            hint=f"use one of {', '.join(allowed)}",
        )
    return policy


def resolve_policies(policies: PolicyMap | None = None) -> dict[Check, Policy]:
    """Merge ``policies`` into :data:`DEFAULT_POLICIES`; the key ``"all"`` sets every check that
    accepts that policy.

    Raises:
        UserInputError: unknown check or a policy the check does not accept.
    """
    merged = dict(DEFAULT_POLICIES)
    for key, value in (policies or {}).items():
        if str(key).strip().lower() in {"all", "*"}:
            pol = Policy(str(value).strip().lower())
            for check in Check:
                if pol in ALLOWED_POLICIES[check]:
                    merged[check] = pol
    for key, value in (policies or {}).items():
        if str(key).strip().lower() in {"all", "*"}:
            continue
        check = _parse_check(key)
        merged[check] = _parse_policy(check, value)
    return merged


def parse_policies(items: Iterable[str]) -> dict[Check, Policy]:
    """Parse ``["gap=ffill", "duplicate=drop"]`` (command-line form) into a full policy mapping.

    Raises:
        UserInputError: an item is not ``check=policy`` or names an unknown check or policy.
    """
    raw: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserInputError(
                f"bad policy {item!r}", hint="write CHECK=POLICY, e.g. gap=ffill or all=warn"
            )
        raw[key.strip()] = value.strip()
    return resolve_policies(raw)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _ts(ns: int | np.integer) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def _iso(ns: int | np.integer) -> str:
    return str(_ts(ns).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _iso_ts(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else str(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _n(count: int, noun: str) -> str:
    """``"1 bar"``, ``"3 bars"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.nonzero(edges == 1)[0]
    ends = np.nonzero(edges == -1)[0]
    return starts, ends - starts


def _med3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c)))


def _side_medians(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of the 3 values before and the 3 after each element (NaN where a side is empty)."""
    n = len(x)
    pad = np.concatenate([np.full(3, np.nan), x, np.full(3, np.nan)])
    before = _med3(pad[0:n], pad[1 : n + 1], pad[2 : n + 2])
    after = _med3(pad[4 : n + 4], pad[5 : n + 5], pad[6 : n + 6])
    for i in [*range(min(3, n)), *range(max(n - 3, 0), n)]:  # edges: fewer neighbours
        b, a = pad[i : i + 3], pad[i + 4 : i + 7]
        before[i] = np.median(b[~np.isnan(b)]) if (~np.isnan(b)).any() else np.nan
        after[i] = np.median(a[~np.isnan(a)]) if (~np.isnan(a)).any() else np.nan
    return before, after


def _block_median(x: np.ndarray, block: int) -> np.ndarray:
    """Per-element local median: median of the element's block and its two neighbour blocks."""
    n = len(x)
    if n == 0:
        return np.empty(0)
    nb = -(-n // block)
    full = (n // block) * block
    meds = np.empty(nb)
    if full:
        meds[: n // block] = np.median(x[:full].reshape(-1, block), axis=1)
    if full < n:
        meds[-1] = np.median(x[full:])
    if nb >= 3:
        smooth = meds.copy()
        smooth[1:-1] = _med3(meds[:-2], meds[1:-1], meds[2:])
        meds = smooth
    return np.repeat(meds, block)[:n]


@dataclass
class _Found:
    """A check's raw finding: positions in the working arrays and how to describe one of them.

    ``detail(k)`` describes ``idx[k]``; it is called only for the examples kept (lazy, so that a
    million flagged bars cost no string formatting).
    """

    idx: np.ndarray
    detail: Callable[[int], str]
    summary: str
    order: np.ndarray | None = None  # example order (default: time order)


class _Work:
    """Working arrays, always in time order once the non_monotonic step is done."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.t = np.asarray(cast(pd.DatetimeIndex, frame.index).asi8, dtype=np.int64).copy()
        self.cols = {c: frame[c].to_numpy(dtype=np.float64, copy=True) for c in OHLCV_COLUMNS}
        self.pos = np.arange(len(frame), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: np.ndarray) -> None:
        self.t = self.t[index]
        self.pos = self.pos[index]
        self.cols = {c: v[index] for c, v in self.cols.items()}


# --------------------------------------------------------------------------------------------
# Checks (pure detection; they never change the working arrays)
# --------------------------------------------------------------------------------------------


def _find_nan(w: _Work) -> _Found:
    bad = {c: ~np.isfinite(v) for c, v in w.cols.items()}
    rows = np.nonzero(np.logical_or.reduce(list(bad.values())))[0]

    def detail(k: int) -> str:
        i = rows[k]
        return ", ".join(f"{c} is {w.cols[c][i]}" for c in OHLCV_COLUMNS if bad[c][i])

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} with NaN or infinite values")


def _find_non_positive(w: _Work) -> _Found:
    bad = {c: w.cols[c] <= 0 for c in _PRICES}
    bad["volume"] = w.cols["volume"] < 0
    rows = np.nonzero(np.logical_or.reduce(list(bad.values())))[0]

    def detail(k: int) -> str:
        i = rows[k]
        return ", ".join(
            f"{c} {_fmt(w.cols[c][i])} {'< 0' if c == 'volume' else '<= 0'}"
            for c in OHLCV_COLUMNS
            if bad[c][i]
        )

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} with a price <= 0 or a negative volume")


def _find_ohlc(w: _Work) -> _Found:
    o, h, lo, c = (w.cols[k] for k in _PRICES)
    eps = 1e-9
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    bad_high = h < top * (1 - eps)
    bad_low = lo > bottom * (1 + eps)
    bad_range = h < lo * (1 - eps)
    rows = np.nonzero(bad_high | bad_low | bad_range)[0]

    def detail(k: int) -> str:
        i = rows[k]
        parts = []
        if bad_high[i]:
            which = "open" if o[i] >= c[i] else "close"
            parts.append(f"high {_fmt(h[i])} < {which} {_fmt(top[i])}")
        if bad_low[i]:
            which = "open" if o[i] <= c[i] else "close"
            parts.append(f"low {_fmt(lo[i])} > {which} {_fmt(bottom[i])}")
        if bad_range[i] and not parts:
            parts.append(f"high {_fmt(h[i])} < low {_fmt(lo[i])}")
        return ", ".join(parts)

    return _Found(rows, detail, f"{_n(len(rows), 'bar')} whose high/low do not bound open/close")


def _find_outliers(w: _Work, usable: np.ndarray, rule: OutlierRule) -> _Found:
    """Isolated price spikes that revert (see the module docstring)."""
    sel = np.nonzero(usable)[0]
    empty = _Found(np.empty(0, dtype=np.int64), str, "")
    if len(sel) < 3:
        return empty
    logs = {c: np.log(w.cols[c][sel]) for c in _PRICES}
    before, after = _side_medians(logs["close"])
    best = np.zeros(len(sel))
    field_of = np.zeros(len(sel), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for k, name in enumerate(_PRICES):
            db, da = logs[name] - before, logs[name] - after
            same = ((db > 0) & (da > 0)) | ((db < 0) & (da < 0))
            dev = np.where(
                np.isnan(db),
                np.abs(da),
                np.where(np.isnan(da), np.abs(db), np.where(same, np.minimum(abs(db), abs(da)), 0)),
            )
            dev = np.nan_to_num(dev, nan=0.0)
            better = dev > best
            best = np.where(better, dev, best)
            field_of = np.where(better, k, field_of)
    returns = np.abs(np.diff(logs["close"]))
    sigma = 1.4826 * _block_median(np.concatenate([returns[:1], returns]), rule.block)
    threshold = np.maximum(rule.sigmas * sigma, np.log(rule.min_ratio))
    flagged = best >= threshold
    volume = w.cols["volume"][sel]
    ref_volume = _block_median(volume, max(rule.block // 4, 8))
    with np.errstate(divide="ignore", invalid="ignore"):
        event = (ref_volume > 0) & (volume >= rule.event_volume * ref_volume)
    flagged &= ~(event & (best < np.log(rule.event_max_ratio)))
    hits = np.nonzero(flagged)[0]
    closes = w.cols["close"][sel]

    def detail(k: int) -> str:
        j = hits[k]
        name = _PRICES[field_of[j]]
        neighbours = np.concatenate([closes[max(j - 3, 0) : j], closes[j + 1 : j + 4]])
        ref = float(np.median(neighbours))
        price = float(w.cols[name][sel[j]])
        return (
            f"{name} {_fmt(price)} is {price / ref:.3g}x the median of neighbouring closes "
            f"{_fmt(ref)} ({best[j] / max(sigma[j], 1e-300):.0f} sigma)"
        )

    order = np.argsort(-best[hits], kind="stable")
    return _Found(
        sel[hits],
        detail,
        f"{_n(len(hits), 'bar')} with a price far from the neighbouring closes (isolated spikes)",
        order=order,
    )


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------


class _Run:
    """One validation run: working arrays, policies, issues."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        timeframe: Timeframe,
        calendar: Calendar,
        policies: dict[Check, Policy],
        where: str,
        max_examples: int,
        rule: OutlierRule,
        first_row: int,
    ) -> None:
        self.first_row = first_row
        self.w = _Work(frame)
        self.tf = timeframe
        self.calendar = calendar
        self.policies = policies
        self.where = where
        self.max_examples = max_examples
        self.rule = rule
        self.issues: list[Issue] = []
        self.notes: list[str] = []
        self.first_error: tuple[Issue, Example | None] | None = None
        self.keep_input_order = False

    # -- issue bookkeeping ------------------------------------------------------------------

    def row(self, pos: int | np.integer) -> int | None:
        """Source row number of working position ``pos`` (None for inserted bars)."""
        return int(pos) + self.first_row if pos >= 0 else None

    def add(
        self,
        check: Check,
        found: _Found,
        action: str,
        *,
        times: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        severity: Severity | None = None,
        count: int | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        policy = self.policies[check]
        if severity is None:
            severity = Severity.ERROR if policy is Policy.ERROR else Severity.WARNING
        times = self.w.t[found.idx] if times is None else times
        rows = self.w.pos[found.idx] if rows is None else rows
        order = found.order if found.order is not None else np.arange(len(found.idx))
        examples = tuple(
            Example(self.row(rows[k]), _ts(times[k]), found.detail(int(k)))
            for k in order[: self.max_examples]
        )
        issue = Issue(
            check=check,
            severity=severity,
            policy=policy,
            action=action,
            count=len(found.idx) if count is None else count,
            summary=found.summary,
            first=_ts(span[0]) if span else (_ts(times.min()) if len(times) else None),
            last=_ts(span[1]) if span else (_ts(times.max()) if len(times) else None),
            examples=examples,
        )
        self.issues.append(issue)
        if policy is Policy.ERROR and self.first_error is None:
            self.first_error = (issue, examples[0] if examples else None)

    # -- steps ------------------------------------------------------------------------------

    def order_step(self) -> None:
        w = self.w
        if len(w) < 2:
            return
        running = np.maximum.accumulate(w.t)
        back = np.concatenate([[False], w.t[1:] < running[:-1]])
        idx = np.nonzero(back)[0]
        if len(idx):
            policy = self.policies[Check.NON_MONOTONIC]
            descending = bool(np.all(np.diff(w.t) <= 0))
            summary = (
                "rows are in descending time order"
                if descending
                else f"{_n(len(idx), 'row')} earlier than a row above (timestamps not ascending)"
            )

            def detail(k: int) -> str:
                return f"after {_iso(running[idx[k] - 1])}"

            action = "none"
            if policy is Policy.SORT:
                action = f"sorted {_n(len(w), 'row')} by timestamp"
            elif policy is Policy.DROP:
                action = f"dropped {_n(len(idx), 'row')}"
            self.add(Check.NON_MONOTONIC, _Found(idx, detail, summary), action)
            if policy is Policy.DROP:
                w.take(np.nonzero(~back)[0])
            elif policy is not Policy.SORT:
                self.keep_input_order = True
        w.take(np.argsort(w.t, kind="stable"))

    def duplicate_step(self) -> None:
        w = self.w
        if len(w) < 2:
            return
        same_next = np.concatenate([w.t[1:] == w.t[:-1], [False]])
        idx = np.nonzero(same_next)[0]
        if not len(idx):
            return
        cols = w.cols
        same = np.logical_and.reduce(
            [
                (cols[c][idx] == cols[c][idx + 1])
                | (np.isnan(cols[c][idx]) & np.isnan(cols[c][idx + 1]))
                for c in OHLCV_COLUMNS
            ]
        )
        identical = int(same.sum())
        pos = w.pos.copy()

        def detail(k: int) -> str:
            i = idx[k]
            diffs = [
                f"{c} {_fmt(cols[c][i])} vs {_fmt(cols[c][i + 1])}"
                for c in OHLCV_COLUMNS
                if not (
                    cols[c][i] == cols[c][i + 1] or np.isnan([cols[c][i], cols[c][i + 1]]).all()
                )
            ]
            text = "identical" if not diffs else ", ".join(diffs)
            return f"same time as row {self.row(pos[i + 1])}: {text}"

        summary = (
            f"{_n(len(idx), 'repeated timestamp')} ({identical} identical, "
            f"{len(idx) - identical} conflicting)"
        )
        policy = self.policies[Check.DUPLICATE]
        action = f"dropped {_n(len(idx), 'row')} (kept the last of each time)"
        self.add(Check.DUPLICATE, _Found(idx, detail, summary), action if policy is _D else "none")
        if policy is Policy.DROP:
            w.take(np.nonzero(~same_next)[0])

    def grid_phase(self) -> int:
        if not len(self.w):
            return 0
        phases = self.w.t % self.tf.ns
        values, counts = np.unique(phases, return_counts=True)
        return int(values[counts.argmax()])

    def misaligned_step(self, phase: int) -> None:
        w = self.w
        off = (w.t % self.tf.ns) != phase
        idx = np.nonzero(off)[0]
        if phase:
            self.notes.append(
                f"bars open {pd.Timedelta(phase, unit='ns')} past the {self.tf} grid of UTC"
            )
        if not len(idx):
            return
        t, tf_ns = w.t, self.tf.ns

        def detail(k: int) -> str:
            return f"{pd.Timedelta(int(t[idx[k]] % tf_ns), unit='ns')} past the grid"

        summary = f"{_n(len(idx), 'bar')} off the {self.tf} grid"
        if len(idx) * 4 >= len(w):
            summary += f" — is {self.tf} the right timeframe?"
        policy = self.policies[Check.MISALIGNED]
        action = f"dropped {_n(len(idx), 'row')}" if policy is Policy.DROP else "none"
        self.add(Check.MISALIGNED, _Found(idx, detail, summary), action)
        if policy is Policy.DROP:
            w.take(np.nonzero(~off)[0])

    def value_steps(self) -> None:
        w = self.w
        if not len(w):
            return
        found: dict[Check, _Found] = {Check.NAN: _find_nan(w)}
        with np.errstate(invalid="ignore"):
            found[Check.NON_POSITIVE] = _find_non_positive(w)
            finite = np.ones(len(w), dtype=bool)
            finite[found[Check.NAN].idx] = False
            positive = finite.copy()
            positive[found[Check.NON_POSITIVE].idx] = False
            found[Check.OHLC_INCONSISTENT] = _find_ohlc(w)
            found[Check.OUTLIER] = _find_outliers(w, positive, self.rule)
        drop = np.zeros(len(w), dtype=bool)
        fill = np.zeros(len(w), dtype=bool)
        for check, f in found.items():
            if self.policies[check] is Policy.DROP:
                drop[f.idx] = True
            elif self.policies[check] is Policy.FFILL:
                fill[f.idx] = True
        fill &= ~drop
        # a bar whose only problem is a NaN volume keeps its prices, volume -> 0
        vol_only = np.zeros(len(w), dtype=bool)
        if self.policies[Check.NAN] is Policy.FFILL:
            prices_ok = np.logical_and.reduce([np.isfinite(w.cols[c]) for c in _PRICES])
            vol_only[found[Check.NAN].idx] = True
            vol_only &= prices_ok & fill
            for check in (Check.NON_POSITIVE, Check.OHLC_INCONSISTENT, Check.OUTLIER):
                vol_only[found[check].idx] = False
        flat = fill & ~vol_only
        idx = np.arange(len(w))
        with np.errstate(invalid="ignore"):
            source = ~(flat | drop) & np.isfinite(w.cols["close"]) & (w.cols["close"] > 0)
        last_good = np.maximum.accumulate(np.where(source, idx, -1))
        orphan = flat & (last_good < 0)
        for check, f in found.items():
            if not len(f.idx):
                continue
            policy = self.policies[check]
            action = "none"
            if policy is Policy.DROP:
                action = f"dropped {_n(len(f.idx), 'row')}"
            elif policy is Policy.FFILL:
                n_fill = int((fill[f.idx] & ~orphan[f.idx]).sum())
                n_orphan = int(orphan[f.idx].sum())
                n_other = int(drop[f.idx].sum())
                action = f"filled {_n(n_fill, 'bar')} from the previous bar"
                if n_orphan:
                    action += f"; dropped {n_orphan} with no previous bar"
                if n_other:
                    action += f"; {n_other} dropped by another check"
            self.add(check, f, action)
        if flat.any():
            src = last_good[flat & ~orphan]
            targets = np.nonzero(flat & ~orphan)[0]
            prev_close = w.cols["close"][src]
            for c in _PRICES:
                w.cols[c][targets] = prev_close
            vol = w.cols["volume"][targets]
            w.cols["volume"][targets] = np.where(np.isfinite(vol) & (vol >= 0), vol, 0.0)
        if vol_only.any():
            w.cols["volume"][vol_only] = 0.0
        remove = drop | orphan
        if remove.any():
            w.take(np.nonzero(~remove)[0])

    def volume_steps(self) -> None:
        w = self.w
        if not len(w):
            return
        vol = w.cols["volume"]
        zero = vol == 0
        if zero.all():
            found = _Found(
                np.empty(0, dtype=np.int64),
                str,
                f"volume is 0 on all {len(w)} bars: the source has no volume data",
            )
            policy = self.policies[Check.NO_VOLUME]
            severity = Severity.ERROR if policy is Policy.ERROR else Severity.INFO
            span = (int(w.t[0]), int(w.t[-1]))
            self.add(Check.NO_VOLUME, found, "none", severity=severity, count=len(w), span=span)
            return
        idx = np.nonzero(zero)[0]
        if not len(idx):
            return
        c = w.cols["close"]
        prev_close = np.concatenate([[np.nan], c[:-1]])
        flat = (
            (w.cols["open"] == c) & (w.cols["high"] == c) & (w.cols["low"] == c) & (prev_close == c)
        )
        starts, lengths = _runs(zero)
        n_flat = int((flat & zero).sum())
        summary = (
            f"{_n(len(idx), 'bar')} with zero volume in {_n(len(starts), 'run')} "
            f"(longest {_n(int(lengths.max()), 'bar')})"
        )
        if n_flat:
            summary += f"; {n_flat} are flat at the previous close (a filled outage?)"
        order = np.argsort(-lengths, kind="stable")
        run_idx = starts[order]
        run_len = lengths[order]
        t = w.t

        def detail(k: int) -> str:
            first, n = run_idx[k], int(run_len[k])
            text = f"run of {_n(n, 'zero-volume bar')} to {_iso(t[first + n - 1])}"
            return text + (f", flat at {_fmt(c[first])}" if flat[first : first + n].all() else "")

        policy = self.policies[Check.ZERO_VOLUME]
        action = f"dropped {_n(len(idx), 'row')}" if policy is Policy.DROP else "none"
        # examples are the longest runs; count/first/last cover every zero-volume bar
        found = _Found(run_idx, detail, summary)
        span = (int(w.t[idx[0]]), int(w.t[idx[-1]]))
        self.add(Check.ZERO_VOLUME, found, action, count=len(idx), span=span)
        if policy is Policy.DROP:
            w.take(np.nonzero(~zero)[0])

    def session_steps(self, phase: int) -> None:
        w = self.w
        if not len(w):
            return
        grid = SessionGrid(self.calendar, self.tf, int(w.t.min()), int(w.t.max()), phase)
        allowed = grid.allowed(w.t)
        off = np.nonzero(~allowed)[0]
        if len(off):
            t = w.t

            def detail(k: int) -> str:
                local = _ts(t[off[k]]).tz_convert("America/New_York")
                return f"{local:%a %H:%M} New York, when the market is closed"

            summary = f"{_n(len(off), 'bar')} outside {self.calendar} trading hours"
            policy = self.policies[Check.OFF_SESSION]
            action = f"dropped {_n(len(off), 'row')}" if policy is Policy.DROP else "none"
            self.add(Check.OFF_SESSION, _Found(off, detail, summary), action)
            if policy is Policy.DROP:
                w.take(np.nonzero(allowed)[0])
        self.gap_step(grid)

    def gap_step(self, grid: SessionGrid) -> None:
        w = self.w
        if len(w) < 2:
            return
        prev_t, next_t = w.t[:-1], w.t[1:]
        missing = grid.required_missing(prev_t, next_t)
        slots = grid.slot(next_t) - grid.slot(prev_t) - 1
        expected = int(((slots > 0) & (missing == 0)).sum())
        if expected and self.calendar.kind is not CalendarKind.CRYPTO:
            self.notes.append(
                f"{_n(expected, 'gap')} expected by the {self.calendar} calendar (closed market) "
                "are not reported"
            )
        gaps = np.nonzero(missing > 0)[0]
        if not len(gaps):
            return
        steps = np.diff(w.t)
        values, counts = np.unique(steps[steps > 0], return_counts=True)
        total = int(missing[gaps].sum())
        summary = (
            f"{_n(len(gaps), 'unexpected gap')}, {_n(total, 'missing bar')} "
            f"(largest {_n(int(missing[gaps].max()), 'bar')})"
        )
        if len(values) and counts.max() * 2 > len(steps) and values[counts.argmax()] > self.tf.ns:
            common = pd.Timedelta(int(values[counts.argmax()]), unit="ns")
            summary += f" — most bars are {common} apart: is {self.tf} the right timeframe?"

        def detail(k: int) -> str:
            g = gaps[k]
            return (
                f"{_n(int(missing[g]), 'missing bar')} between {_iso(prev_t[g])} "
                f"and {_iso(next_t[g])}"
            )

        order = np.argsort(-missing[gaps], kind="stable")
        found = _Found(gaps + 1, detail, summary, order=order)
        policy = self.policies[Check.GAP]
        action = "none"
        new_t = np.empty(0, dtype=np.int64)
        if policy is Policy.FFILL:
            limit = max(1_000_000, _MAX_FILL_FACTOR * len(w))
            if self.keep_input_order:
                action = "not filled: rows keep their unsorted input order"
            elif total > limit:
                action = f"not filled: {total} bars exceed the fill limit of {limit}"
            else:
                new_t = grid.required_slots(prev_t[gaps], next_t[gaps])
                action = f"inserted {_n(len(new_t), 'bar')} at the previous close, volume 0"
        self.add(
            Check.GAP,
            found,
            action,
            times=prev_t[gaps] + self.tf.ns,
            rows=w.pos[gaps + 1],
        )
        if len(new_t):
            src = np.searchsorted(w.t, new_t, side="right") - 1
            close = w.cols["close"][src]
            w.t = np.concatenate([w.t, new_t])
            w.pos = np.concatenate([w.pos, np.full(len(new_t), -1, dtype=np.int64)])
            for c in OHLCV_COLUMNS:
                extra = np.zeros(len(new_t)) if c == "volume" else close
                w.cols[c] = np.concatenate([w.cols[c], extra])
            w.take(np.argsort(w.t, kind="stable"))

    # -- result -----------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        w = self.w
        if self.keep_input_order:
            w.take(np.argsort(w.pos, kind="stable"))
        index = pd.DatetimeIndex(w.t.astype("datetime64[ns]"), name=INDEX_NAME).tz_localize("UTC")
        return pd.DataFrame({c: w.cols[c] for c in OHLCV_COLUMNS}, index=index)


def validate(
    frame: pd.DataFrame,
    timeframe: Timeframe | str,
    *,
    calendar: Calendar | str | None = None,
    policies: PolicyMap | None = None,
    where: str = "data",
    first_row: int = 1,
    max_examples: int = 5,
    outlier_rule: OutlierRule | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a bar frame and apply the chosen policies.

    Args:
        frame: bars (anything :func:`~morningstar.data.ohlcv.to_contract` accepts); never modified.
        timeframe: bar duration (``"5m"``, ``"1h"``, ``"1d"``...).
        calendar: market schedule (crypto, forex, cme, equity); None guesses it from ``where``.
        policies: per-check policies merged into :data:`DEFAULT_POLICIES` (key ``"all"`` sets every
            check that accepts the policy).
        where: name of the data (file path, ``venue/pair/timeframe``) used in messages.
        first_row: the number reported for the first input row (1: data rows counted from 1; pass
            a CSV's first data line, e.g. 2 after a header, to report file line numbers).
        max_examples: examples kept per issue.
        outlier_rule: outlier thresholds (default :class:`OutlierRule`).

    Returns:
        The output frame (a new frame, contract-shaped, rows as the policies left them) and the
        report.

    Raises:
        ValidationFailedError: a check with the ``error`` policy found something; ``.report``
            holds the full report (every check ran).
        UserInputError: unknown check/policy or a policy the check does not accept.
        DataFormatError: the frame cannot be read as OHLCV bars.
    """
    tf = parse_timeframe(timeframe) if isinstance(timeframe, str) else timeframe
    cal = get_calendar(guess_calendar(where) if calendar is None else calendar)
    resolved = resolve_policies(policies)
    data = to_contract(frame, where=where)
    times = cast(pd.DatetimeIndex, data.index).asi8
    run = _Run(
        data,
        timeframe=tf,
        calendar=cal,
        policies=resolved,
        where=where,
        max_examples=max_examples,
        rule=outlier_rule or OutlierRule(),
        first_row=first_row,
    )
    run.order_step()
    run.duplicate_step()
    phase = run.grid_phase()
    run.misaligned_step(phase)
    run.value_steps()
    run.volume_steps()
    run.session_steps(phase)
    out = run.frame()
    report = ValidationReport(
        where=where,
        timeframe=tf,
        calendar=str(cal),
        bars_in=len(data),
        bars_out=len(out),
        start=_ts(times.min()) if len(data) else None,
        end=_ts(times.max()) if len(data) else None,
        issues=tuple(run.issues),
        policies=resolved,
        notes=tuple(run.notes),
    )
    if run.first_error is not None:
        issue, example = run.first_error
        alternatives = sorted(p.value for p in ALLOWED_POLICIES[issue.check] if p is not _E)
        at = ""
        if example is not None:
            at = f", first at row {example.row} ({_iso_ts(example.timestamp)})"
        raise ValidationFailedError(
            f"{issue.check}: {issue.summary}{at}",
            report=report,
            hint=f"set --policy {issue.check}={' or '.join(alternatives)} to continue",
        )
    return out, report
