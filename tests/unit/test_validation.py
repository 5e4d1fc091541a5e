"""Market-data validation: every check under every policy, on small hand-built frames."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from morningstar.data.ohlcv import OHLCV_COLUMNS, to_contract
from morningstar.data.validation import (
    ALLOWED_POLICIES,
    DEFAULT_POLICIES,
    Check,
    Policy,
    Severity,
    ValidationFailedError,
    ValidationReport,
    parse_policies,
    resolve_policies,
    validate,
)
from morningstar.errors import DataValidationError, UserInputError

START = pd.Timestamp("2024-01-01T00:00:00Z")
HOUR = pd.Timedelta(hours=1)


def bars(n: int = 10, start: pd.Timestamp = START, step: pd.Timedelta = HOUR) -> pd.DataFrame:
    """A clean contract frame: a gentle up-trend, consistent OHLC, volume > 0."""
    close = 100.0 + 0.1 * np.arange(n)
    open_ = np.concatenate([[close[0] - 0.1], close[:-1]])
    index = pd.DatetimeIndex([start + i * step for i in range(n)], name="timestamp")
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.05,
            "low": np.minimum(open_, close) - 0.05,
            "close": close,
            "volume": 1.0 + np.arange(n),
        },
        index=index,
    )
    return to_contract(frame)


def edit(frame: pd.DataFrame, row: int, **values: float) -> pd.DataFrame:
    """A copy of ``frame`` with cells of positional ``row`` changed."""
    out = frame.copy()
    for col, value in values.items():
        out.loc[out.index[row], col] = value
    return out


def with_times(frame: pd.DataFrame, times: list[pd.Timestamp]) -> pd.DataFrame:
    out = frame.copy()
    out.index = pd.DatetimeIndex(times, name="timestamp")
    return to_contract(out)


def swapped() -> pd.DataFrame:
    """Rows 4 and 5 (1-based) in the wrong order."""
    return bars().iloc[[0, 1, 2, 4, 3, 5, 6, 7, 8, 9]]


def duplicated() -> pd.DataFrame:
    base = bars()
    extra = base.iloc[[3]].copy()
    extra["close"] = 200.0  # a later, conflicting version of bar 4 (and a price spike)
    extra["high"] = 200.0
    return pd.concat([base.iloc[:4], extra, base.iloc[4:]])


def misaligned() -> pd.DataFrame:
    base = bars()
    times = list(base.index)
    times[5] = times[5] + pd.Timedelta(minutes=30)
    return with_times(base, times)


def gapped() -> pd.DataFrame:
    base = bars(13)
    return base.drop(base.index[[4, 5, 6]])


def zero_volume() -> pd.DataFrame:
    return edit(edit(bars(), 4, volume=0.0), 5, volume=0.0)


@dataclass
class Case:
    """One check under one policy: what the report and the output must say."""

    name: str
    frame: Callable[[], pd.DataFrame]
    check: Check
    policy: Policy
    count: int
    action: str
    rows_out: int
    more: Callable[[pd.DataFrame, ValidationReport], None] | None = None
    extra_policies: dict[str, str] = field(default_factory=dict)


def _sorted_out(out: pd.DataFrame, report: ValidationReport) -> None:
    assert out.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(out, bars())


def _kept_order(out: pd.DataFrame, report: ValidationReport) -> None:
    pd.testing.assert_frame_equal(out, swapped())


def _dropped_back(out: pd.DataFrame, report: ValidationReport) -> None:
    assert out.index.is_monotonic_increasing
    gap = report.issue(Check.GAP)
    assert gap is not None and gap.count == 1  # the dropped bar is now missing


def _kept_last(out: pd.DataFrame, report: ValidationReport) -> None:
    assert out.index.is_unique
    assert out["close"].iloc[3] == 200.0
    issue = report.issue(Check.DUPLICATE)
    assert issue is not None and "1 conflicting" in issue.summary
    assert issue.examples[0].row == 4 and "same time as row 5" in issue.examples[0].detail


def _flat_from_previous(row: int, volume: float | None = None) -> Callable[..., None]:
    def check(out: pd.DataFrame, report: ValidationReport) -> None:
        prev_close = bars()["close"].iloc[row - 1]
        assert out.iloc[row][["open", "high", "low", "close"]].tolist() == [prev_close] * 4
        if volume is not None:
            assert out["volume"].iloc[row] == volume

    return check


def _gap_filled(out: pd.DataFrame, report: ValidationReport) -> None:
    assert (out.index[1:] - out.index[:-1] == HOUR).all()
    inserted = out.iloc[4:7]
    assert (inserted["volume"] == 0).all()
    assert (inserted[["open", "high", "low", "close"]] == bars(13)["close"].iloc[3]).all().all()
    issue = report.issue(Check.GAP)
    assert issue is not None and "3 missing bars" in issue.summary
    assert issue.first == START + 4 * HOUR
    assert issue.examples[0].row == 5  # the first bar after the gap, in the input


def _zero_runs(out: pd.DataFrame, report: ValidationReport) -> None:
    issue = report.issue(Check.ZERO_VOLUME)
    assert issue is not None and "1 run" in issue.summary
    assert issue.examples[0].row == 5


def _volume_zeroed(out: pd.DataFrame, report: ValidationReport) -> None:
    assert out.iloc[4].tolist() == [*bars().iloc[4].tolist()[:4], 0.0]  # prices kept


C, P = Check, Policy
FILLED = "filled 1 bar from the previous bar"
DROPPED = "dropped 1 row"
NO_PREVIOUS = "filled 0 bars from the previous bar; dropped 1 with no previous bar"
INSERTED = "inserted 3 bars at the previous close, volume 0"
NO_SPIKE_CHECK = {"outlier": "warn"}


def nan_close() -> pd.DataFrame:
    return edit(bars(), 4, close=np.nan)


def zero_low() -> pd.DataFrame:
    return edit(bars(), 4, low=0.0)


def low_high() -> pd.DataFrame:
    return edit(bars(), 4, high=100.0)


def spike() -> pd.DataFrame:
    return edit(bars(), 5, high=1000.0)


CASES = [
    Case("sorted", swapped, C.NON_MONOTONIC, P.SORT, 1, "sorted 10 rows by timestamp", 10, _sorted_out),
    Case("kept", swapped, C.NON_MONOTONIC, P.WARN, 1, "none", 10, _kept_order),
    Case("dropped", swapped, C.NON_MONOTONIC, P.DROP, 1, DROPPED, 9, _dropped_back),
    Case("dup warn", duplicated, C.DUPLICATE, P.WARN, 1, "none", 11, None, NO_SPIKE_CHECK),
    Case("dup drop", duplicated, C.DUPLICATE, P.DROP, 1, DROPPED + " (kept the last of each time)",
         10, _kept_last, NO_SPIKE_CHECK),
    Case("mis warn", misaligned, C.MISALIGNED, P.WARN, 1, "none", 10),
    Case("mis drop", misaligned, C.MISALIGNED, P.DROP, 1, DROPPED, 9),
    Case("nan warn", nan_close, C.NAN, P.WARN, 1, "none", 10),
    Case("nan drop", nan_close, C.NAN, P.DROP, 1, DROPPED, 9),
    Case("nan ffill", nan_close, C.NAN, P.FFILL, 1, FILLED, 10, _flat_from_previous(4, 5.0)),
    Case("nan volume", lambda: edit(bars(), 4, volume=np.nan), C.NAN, P.FFILL, 1, FILLED, 10,
         _volume_zeroed),
    Case("nonpos warn", zero_low, C.NON_POSITIVE, P.WARN, 1, "none", 10),
    Case("nonpos drop", zero_low, C.NON_POSITIVE, P.DROP, 1, DROPPED, 9),
    Case("nonpos ffill", zero_low, C.NON_POSITIVE, P.FFILL, 1, FILLED, 10, _flat_from_previous(4)),
    Case("neg volume", lambda: edit(bars(), 4, volume=-3.0), C.NON_POSITIVE, P.FFILL, 1, FILLED, 10,
         _flat_from_previous(4, 0.0)),
    Case("ohlc warn", low_high, C.OHLC_INCONSISTENT, P.WARN, 1, "none", 10),
    Case("ohlc drop", low_high, C.OHLC_INCONSISTENT, P.DROP, 1, DROPPED, 9),
    Case("ohlc ffill", low_high, C.OHLC_INCONSISTENT, P.FFILL, 1, FILLED, 10, _flat_from_previous(4)),
    Case("outlier warn", spike, C.OUTLIER, P.WARN, 1, "none", 10),
    Case("outlier drop", spike, C.OUTLIER, P.DROP, 1, DROPPED, 9),
    Case("outlier ffill", spike, C.OUTLIER, P.FFILL, 1, FILLED, 10, _flat_from_previous(5)),
    Case("first bar ffill", lambda: edit(bars(), 0, open=400.0, high=400.0), C.OUTLIER, P.FFILL, 1,
         NO_PREVIOUS, 9),
    Case("zero warn", zero_volume, C.ZERO_VOLUME, P.WARN, 2, "none", 10, _zero_runs),
    Case("zero drop", zero_volume, C.ZERO_VOLUME, P.DROP, 2, "dropped 2 rows", 8),
    Case("gap warn", gapped, C.GAP, P.WARN, 1, "none", 10),
    Case("gap ffill", gapped, C.GAP, P.FFILL, 1, INSERTED, 13, _gap_filled),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_under_policy(case: Case) -> None:
    frame = case.frame()
    before = frame.copy(deep=True)
    policies = {str(case.check): str(case.policy), **case.extra_policies}
    out, report = validate(frame, "1h", calendar="crypto", policies=policies, where="case")
    pd.testing.assert_frame_equal(frame, before)  # the input is never modified
    issue = report.issue(case.check)
    assert issue is not None, report.lines()
    assert (issue.count, issue.action, issue.policy) == (case.count, case.action, case.policy)
    assert issue.severity is Severity.WARNING
    assert report.bars_in == len(frame)
    assert report.bars_out == len(out) == case.rows_out
    assert report.status == "warnings"
    assert report.policies[case.check] is case.policy
    assert list(out.columns) == list(OHLCV_COLUMNS)
    assert str(out.index.dtype) == "datetime64[ns, UTC]"
    if case.more is not None:
        case.more(out, report)


ERROR_FRAMES = {
    Check.NON_MONOTONIC: swapped,
    Check.DUPLICATE: duplicated,
    Check.MISALIGNED: misaligned,
    Check.NAN: nan_close,
    Check.NON_POSITIVE: zero_low,
    Check.OHLC_INCONSISTENT: low_high,
    Check.OUTLIER: spike,
    Check.ZERO_VOLUME: zero_volume,
    Check.NO_VOLUME: lambda: bars().assign(volume=0.0),
    Check.OFF_SESSION: bars,  # Monday 00:00-09:00 UTC is outside US equity hours
    Check.GAP: gapped,
}


@pytest.mark.parametrize("check", list(Check))
def test_error_policy_raises_one_line(check: Check) -> None:
    frame = ERROR_FRAMES[check]()
    before = frame.copy(deep=True)
    calendar = "equity" if check is Check.OFF_SESSION else "crypto"
    policies = {"all": "warn", str(check): "error"}
    with pytest.raises(ValidationFailedError) as info:
        validate(frame, "1h", calendar=calendar, policies=policies, where="data/X-1h.csv")
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert text.startswith(f"data/X-1h.csv: {check}:")
    assert f"--policy {check}=" in text
    if check is not Check.NO_VOLUME:
        assert "first at row" in text
    assert isinstance(err, DataValidationError)
    assert err.report.status == "errors"
    issue = err.report.issue(check)
    assert issue is not None and issue.severity is Severity.ERROR
    pd.testing.assert_frame_equal(frame, before)


def test_defaults_stop_on_structural_problems() -> None:
    assert DEFAULT_POLICIES[Check.DUPLICATE] is Policy.ERROR
    assert DEFAULT_POLICIES[Check.GAP] is Policy.WARN
    with pytest.raises(ValidationFailedError, match="duplicate"):
        validate(duplicated(), "1h", calendar="crypto")
    # every check ran: the report also has the spike the conflicting duplicate brought
    try:
        validate(duplicated(), "1h", calendar="crypto")
    except ValidationFailedError as err:
        checks = [i.check for i in err.report.issues]
        assert checks == [Check.DUPLICATE, Check.OUTLIER]


def test_first_row_numbers_file_lines() -> None:
    frame = edit(bars(), 4, close=np.nan)
    _, report = validate(frame, "1h", calendar="crypto", policies={"nan": "warn"}, first_row=2)
    issue = report.issue("nan")
    assert issue is not None and issue.examples[0].row == 6
    assert issue.examples[0].detail == "close is nan"


def test_no_volume_is_info_and_clean() -> None:
    out, report = validate(bars().assign(volume=0.0), "1h", calendar="crypto")
    issue = report.issue(Check.NO_VOLUME)
    assert issue is not None and issue.severity is Severity.INFO and issue.count == 10
    assert report.issue(Check.ZERO_VOLUME) is None
    assert report.status == "clean"
    assert len(out) == 10


def test_off_session_and_weekend_on_forex() -> None:
    fri = bars(3, start=pd.Timestamp("2024-01-12T19:00:00Z"))
    sat = bars(1, start=pd.Timestamp("2024-01-13T12:00:00Z"))
    sun = bars(3, start=pd.Timestamp("2024-01-14T22:00:00Z"))
    frame = pd.concat([fri, sat, sun])
    _, report = validate(frame, "1h", calendar="forex")
    issue = report.issue(Check.OFF_SESSION)
    assert issue is not None and issue.count == 1 and issue.examples[0].row == 4
    assert "Sat 07:00 New York" in issue.examples[0].detail
    assert report.issue(Check.GAP) is None  # the weekend is not a gap
    assert any("expected by the forex calendar" in n for n in report.notes)
    out, report = validate(frame, "1h", calendar="forex", policies={"off_session": "drop"})
    assert len(out) == 6 and report.issue(Check.GAP) is None


def test_gap_ffill_follows_the_calendar() -> None:
    fri = bars(2, start=pd.Timestamp("2024-01-12T18:00:00Z"))  # ends Friday 19:00 UTC
    sun = bars(2, start=pd.Timestamp("2024-01-14T22:00:00Z"))
    out, report = validate(pd.concat([fri, sun]), "1h", calendar="forex", policies={"gap": "ffill"})
    issue = report.issue(Check.GAP)
    assert issue is not None and issue.count == 1 and "1 missing bar" in issue.summary
    got = pd.DatetimeIndex(out.index).strftime("%a %H").tolist()
    assert got == ["Fri 18", "Fri 19", "Fri 20", "Sun 22", "Sun 23"]


def test_nacho_b_style_bad_first_bar() -> None:
    """The first bar of the CryptoDataDownload Binance BTC/USDT export: open 16199.91 at ~4300."""
    frame = bars(30, start=pd.Timestamp("2017-08-17T04:00:00Z")) * 43
    frame = edit(frame, 0, open=16199.91)
    _, report = validate(frame, "1h", calendar="crypto", policies={"ohlc_inconsistent": "warn"})
    outlier = report.issue(Check.OUTLIER)
    assert outlier is not None and outlier.count == 1
    assert outlier.examples[0].row == 1
    assert outlier.examples[0].detail.startswith("open 16199.91 is 3.7")
    assert report.issue(Check.OHLC_INCONSISTENT) is not None


def test_crash_that_stays_is_not_an_outlier() -> None:
    frame = bars(40)
    crash = frame.copy()
    crash.iloc[20:, :4] *= 0.6  # a 40 % drop that does not come back
    crash.iloc[20, [0, 1]] = frame["close"].iloc[19]  # open and high of the crash bar
    _, report = validate(crash, "1h", calendar="crypto")
    assert report.issue(Check.OUTLIER) is None
    spike = edit(frame, 20, low=60.0)  # a wick that reverts at once
    _, report = validate(spike, "1h", calendar="crypto")
    assert report.issue(Check.OUTLIER) is not None


def test_timeframe_mismatch_is_hinted() -> None:
    frame = bars(20, step=pd.Timedelta(minutes=5))
    _, report = validate(frame, "1h", calendar="crypto")
    issue = report.issue(Check.MISALIGNED)
    assert issue is not None and "right timeframe" in issue.summary
    _, report = validate(bars(20, step=pd.Timedelta(hours=4)), "1h", calendar="crypto")
    gap = report.issue(Check.GAP)
    assert gap is not None and "4:00:00 apart" in gap.summary


def test_descending_file_is_named() -> None:
    frame = bars().iloc[::-1]
    out, report = validate(frame, "1h", calendar="crypto", policies={"non_monotonic": "sort"})
    issue = report.issue(Check.NON_MONOTONIC)
    assert issue is not None and issue.summary == "rows are in descending time order"
    pd.testing.assert_frame_equal(out, bars())


def test_clean_report_and_renderings() -> None:
    out, report = validate(bars(), "1h", calendar="crypto", where="x.csv")
    assert report.status == "clean" and report.issues == ()
    pd.testing.assert_frame_equal(out, bars())
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["start"] == "2024-01-01T00:00:00Z" and data["calendar"] == "crypto"
    assert report.lines()[0].startswith("x.csv: clean — 10 bars in, 10 out, 1h, crypto")
    assert report.source == "x.csv"


def test_report_to_dict_with_issues_is_json() -> None:
    _, report = validate(gapped(), "1h", calendar="crypto")
    data = json.loads(json.dumps(report.to_dict()))
    gap = data["issues"][0]
    assert gap["check"] == "gap" and gap["severity"] == "warning" and gap["count"] == 1
    assert gap["examples"][0]["row"] == 5
    issue = report.issue(Check.GAP)
    assert issue is not None
    assert issue.examples[0].describe() == (
        "row 5 (2024-01-01T04:00:00Z): 3 missing bars between 2024-01-01T03:00:00Z "
        "and 2024-01-01T07:00:00Z"
    )
    assert gap["first"] == "2024-01-01T04:00:00Z"
    assert any(line.strip().startswith("WARNING gap:") for line in report.lines())


def test_calendar_guessed_from_where() -> None:
    _, report = validate(bars(), "1h", where="lean/OANDA_EURUSD-1h.csv")
    assert report.calendar == "forex"


def test_empty_frame() -> None:
    out, report = validate(bars().iloc[:0], "1h", calendar="crypto")
    assert len(out) == 0 and report.status == "clean" and report.start is None


def test_policy_validation() -> None:
    with pytest.raises(UserInputError, match="not available for check duplicate"):
        validate(bars(), "1h", policies={"duplicate": "ffill"})
    with pytest.raises(UserInputError, match="did you mean 'gap'"):
        validate(bars(), "1h", policies={"gaps": "warn"})
    assert parse_policies(["gap=ffill", "outlier=drop"])[Check.GAP] is Policy.FFILL
    everything = parse_policies(["all=drop", "gap=ffill"])
    assert everything[Check.DUPLICATE] is Policy.DROP
    assert everything[Check.NO_VOLUME] is DEFAULT_POLICIES[Check.NO_VOLUME]  # drop not allowed
    assert everything[Check.GAP] is Policy.FFILL
    with pytest.raises(UserInputError, match="CHECK=POLICY"):
        parse_policies(["gap"])
    assert resolve_policies(None) == dict(DEFAULT_POLICIES)
    for check, allowed in ALLOWED_POLICIES.items():
        assert DEFAULT_POLICIES[check] in allowed


# --- properties -------------------------------------------------------------------------------


@st.composite
def clean_series(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=120))
    steps = draw(st.lists(st.floats(-0.002, 0.002), min_size=n, max_size=n))
    close = 50.0 * np.exp(np.cumsum(steps)) if n else np.empty(0)
    open_ = np.concatenate([[50.0], close[:-1]])[:n]
    wick = draw(st.floats(0.0, 0.001))
    volume = draw(st.lists(st.floats(0.5, 1e6), min_size=n, max_size=n))
    start = START + draw(st.integers(0, 10_000)) * HOUR
    return to_contract(
        pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * (1 + wick),
                "low": np.minimum(open_, close) * (1 - wick),
                "close": close,
                "volume": np.asarray(volume, dtype=float),
            },
            index=pd.DatetimeIndex([start + i * HOUR for i in range(n)], name="timestamp"),
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_series())
def test_clean_series_passes_unchanged(frame: pd.DataFrame) -> None:
    out, report = validate(frame, "1h", calendar="crypto")
    assert report.status == "clean", report.lines()
    pd.testing.assert_frame_equal(out, frame)
    assert out is not frame


@st.composite
def messy_series(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=60))
    hours = draw(st.lists(st.integers(0, 80), min_size=n, max_size=n))
    minutes = draw(st.lists(st.sampled_from([0, 0, 0, 0, 30]), min_size=n, max_size=n))
    values = st.one_of(
        st.floats(90, 110), st.just(np.nan), st.just(0.0), st.just(-5.0), st.just(np.inf)
    )
    cols = {c: draw(st.lists(values, min_size=n, max_size=n)) for c in OHLCV_COLUMNS}
    index = pd.DatetimeIndex(
        [START + h * HOUR + pd.Timedelta(minutes=m) for h, m in zip(hours, minutes, strict=True)],
        name="timestamp",
    )
    return to_contract(pd.DataFrame(cols, index=index))


@settings(max_examples=150, deadline=None)
@given(messy_series(), st.sampled_from(["crypto", "forex", "equity"]))
def test_drop_output_is_strictly_increasing_and_finite(frame: pd.DataFrame, cal: str) -> None:
    before = frame.copy(deep=True)
    out, report = validate(frame, "1h", calendar=cal, policies={"all": "drop"})
    pd.testing.assert_frame_equal(frame, before)
    assert out.index.is_unique and out.index.is_monotonic_increasing
    assert np.isfinite(out.to_numpy()).all()
    assert (out[["open", "high", "low", "close"]] > 0).all().all()
    assert (out["high"] >= out[["open", "close", "low"]].max(axis=1)).all()
    assert report.bars_in == len(frame) and report.bars_out == len(out)
    assert report.status in {"clean", "warnings"}


@settings(max_examples=80, deadline=None)
@given(messy_series())
def test_ffill_output_is_complete_and_finite(frame: pd.DataFrame) -> None:
    policies = {"all": "ffill", "non_monotonic": "sort", "duplicate": "drop", "misaligned": "drop"}
    out, _ = validate(frame, "1h", calendar="crypto", policies=policies)
    assert out.index.is_unique and out.index.is_monotonic_increasing
    assert np.isfinite(out.to_numpy()).all()
    if len(out) > 1:
        assert (out.index[1:] - out.index[:-1] == HOUR).all()
