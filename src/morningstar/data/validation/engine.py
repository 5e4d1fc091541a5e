"""One validation run: the steps in order, the policies applied, and :func:`validate`."""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt
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
from morningstar.data.validation._common import (
    _PRICES,
    _fmt,
    _Found,
    _iso,
    _iso_ts,
    _n,
    _runs,
    _ts,
    _Work,
)
from morningstar.data.validation.checks import _find_nan, _find_non_positive, _find_ohlc
from morningstar.data.validation.outliers import OutlierRule, _find_outliers
from morningstar.data.validation.policies import resolve_policies
from morningstar.data.validation.report import (
    ALLOWED_POLICIES,
    Check,
    Example,
    Issue,
    Policy,
    PolicyMap,
    Severity,
    ValidationFailedError,
    ValidationReport,
)

__all__ = ["validate"]

_MAX_FILL_FACTOR = 10  # gap ffill refuses to insert more than max(1M, 10 x bars) bars


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
        row_numbers: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.first_row = first_row
        self.row_numbers = row_numbers
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
        if pos < 0:
            return None
        if self.row_numbers is not None:
            return int(self.row_numbers[pos])
        return int(pos) + self.first_row

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
        self.add(
            Check.DUPLICATE,
            _Found(idx, detail, summary),
            action if policy is Policy.DROP else "none",
        )
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
    row_numbers: npt.NDArray[np.int64] | None = None,
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
        row_numbers: the source row number of every input row (overrides ``first_row``; e.g.
            the file lines of a newest-first file read in reverse).

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
        row_numbers=None if row_numbers is None else np.asarray(row_numbers, dtype=np.int64),
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
        # bars with duplicate timestamps cannot be stored: only suggest what leads to storable data
        excluded = {Policy.ERROR, Policy.WARN} if issue.check is Check.DUPLICATE else {Policy.ERROR}
        alternatives = sorted(p.value for p in ALLOWED_POLICIES[issue.check] if p not in excluded)
        at = ""
        if example is not None:
            at = f", first at row {example.row} ({_iso_ts(example.timestamp)})"
        raise ValidationFailedError(
            f"{issue.check}: {issue.summary}{at}",
            report=report,
            hint=f"set --policy {issue.check}={' or '.join(alternatives)} to continue",
        )
    return out, report
