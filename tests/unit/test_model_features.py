"""Model inputs (``morningstar.model.features``): the spec, point in time (hypothesis), the one code
path of training and live, alternative data, the scaler, sequences, cleaning and errors.

Real-data checks are in ``tests/integration/test_model_prep_shared_data.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from morningstar.errors import DataFormatError, MorningstarError, UserInputError
from morningstar.model.features import (
    DEFAULT_FEATURES,
    FEATURES,
    FeatureScaler,
    FeatureSpec,
    align_alt_data,
    clean_bars,
    compute_features,
    make_sequences,
    prepare_inputs,
)

PROPERTY = settings(max_examples=25, deadline=None)
FIVE_MIN = pd.Timedelta(minutes=5)
# a small spec for the property tests: one feature of each kind (returns, window, recursive, time)
SMALL = FeatureSpec(
    seq_len=8,
    features=("ret_1", "vol_20", "rsi_14", "macd_hist", "adx_14", "volume_z_20", "hour_sin"),
)


def make_bars(
    n: int, seed: int = 0, price: float = 100.0, start: str = "2024-01-01"
) -> pd.DataFrame:
    """A random walk of ``n`` consistent 5-minute bars (open = previous close)."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.001, (2, n)))
    index = pd.date_range(start, periods=n, freq="5min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(3.0, 1.0, n),
        },
        index=index,
    )


def perturb_after(bars: pd.DataFrame, t: int, seed: int, mode: str) -> pd.DataFrame:
    """Change every bar after row ``t``: new prices, a NaN bar, or cut them off."""
    if mode == "truncate":
        return bars.iloc[: t + 1]
    out = bars.copy()
    rng = np.random.default_rng(seed)
    k = len(out) - t - 1
    if k <= 0:
        return out
    if mode == "nan":
        out.iloc[t + 1 + int(rng.integers(k))] = np.nan
        return out
    factor = np.exp(rng.normal(0.0, 0.05, k))
    later = out.index[t + 1 :]
    for col in ("open", "high", "low", "close"):
        out.loc[later, col] = out.loc[later, col].to_numpy() * factor
    out.loc[later, "volume"] = out.loc[later, "volume"].to_numpy() * rng.uniform(0.1, 10.0, k)
    return out


def one_line(err: pytest.ExceptionInfo[MorningstarError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.strip() == text
    return text


# --- the spec ------------------------------------------------------------------------------------


def test_default_spec_has_named_scale_free_features() -> None:
    spec = FeatureSpec()
    assert spec.features == DEFAULT_FEATURES
    assert 12 <= len(spec.features) <= 16
    assert set(spec.features) <= set(FEATURES)
    assert spec.names == spec.features
    assert spec.warmup == max(FEATURES[n].warmup for n in spec.features) == 49
    assert spec.min_history > spec.warmup + spec.seq_len
    assert all(FEATURES[n].description for n in FEATURES)


def test_spec_names_put_alt_columns_last_and_warmup_follows_the_features() -> None:
    spec = FeatureSpec(features=("ret_1", "range_pct"), alt_columns=("funding",), seq_len=4)
    assert spec.names == ("ret_1", "range_pct", "funding")
    assert spec.warmup == 1
    assert spec.min_history == 1 + 4


def test_unknown_feature_names_its_close_matches() -> None:
    with pytest.raises(ValidationError, match=r"unknown feature 'rsi_41'.*did you mean.*rsi_14"):
        FeatureSpec(features=("ret_1", "rsi_41"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"features": ()}, "at least one feature"),
        ({"features": ("ret_1", "ret_1")}, "listed twice"),
        ({"alt_columns": ("x", "x")}, "listed twice"),
        ({"alt_columns": ("ret_1",)}, "named like a feature"),
        ({"seq_len": 1}, "greater than or equal to 2"),
        ({"seq_len": 2000}, "less than or equal to 1024"),
        ({"clip": 0.0}, "greater than 0"),
        ({"scaler": "minmax"}, "robust"),
        ({"window": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        FeatureSpec(**kwargs)


def test_spec_round_trips_through_json() -> None:
    spec = FeatureSpec(seq_len=32, features=("ret_1", "adx_14"), alt_columns=("f",), clip=3.0)
    again = FeatureSpec.model_validate(json.loads(spec.model_dump_json()))
    assert again == spec and again.names == ("ret_1", "adx_14", "f")


def test_spec_is_frozen() -> None:
    spec = FeatureSpec()
    with pytest.raises(ValidationError):
        spec.seq_len = 3  # type: ignore[misc]


# --- feature values ------------------------------------------------------------------------------


def test_every_feature_has_its_documented_warmup_then_values() -> None:
    bars = make_bars(300)
    spec = FeatureSpec(features=tuple(FEATURES))
    x = compute_features(bars, spec)
    assert x.shape == (300, len(FEATURES)) and x.dtype == np.float64
    for j, name in enumerate(spec.names):
        w = FEATURES[name].warmup
        assert np.isnan(x[:w, j]).all(), name
        assert np.isfinite(x[w:, j]).all(), name


def test_features_are_scale_free() -> None:
    bars = make_bars(300, seed=3)
    scaled = bars.copy()
    scaled[["open", "high", "low", "close"]] *= 1234.5
    spec = FeatureSpec(features=tuple(FEATURES))
    np.testing.assert_allclose(
        compute_features(scaled, spec), compute_features(bars, spec), rtol=1e-7, atol=1e-9
    )


def test_simple_features_by_hand() -> None:
    bars = make_bars(30)
    spec = FeatureSpec(features=("ret_1", "ret_5", "range_pct", "body", "close_loc"))
    x = compute_features(bars, spec)
    c, o, h, lo = (bars[k].to_numpy() for k in ("close", "open", "high", "low"))
    np.testing.assert_allclose(x[1:, 0], np.log(c[1:] / c[:-1]), rtol=1e-14)
    np.testing.assert_allclose(x[5:, 1], np.log(c[5:] / c[:-5]), rtol=1e-14)
    np.testing.assert_allclose(x[:, 2], (h - lo) / c, rtol=1e-14)
    np.testing.assert_allclose(x[:, 3], np.log(c / o), rtol=1e-14)
    np.testing.assert_allclose(x[:, 4], (c - lo) / (h - lo) - 0.5, rtol=1e-12, atol=1e-15)


def test_time_features_use_the_bar_open_time_in_utc() -> None:
    # 2024-01-01 was a Monday (day 0); 06:00 is a quarter of the day
    index = pd.DatetimeIndex(
        ["2024-01-01T00:00Z", "2024-01-01T06:00Z", "2024-01-03T12:00Z", "2024-01-07T18:00Z"],
        name="timestamp",
    )
    bars = pd.DataFrame(
        {c: [1.0, 1.0, 1.0, 1.0] for c in ("open", "high", "low", "close", "volume")}, index=index
    )
    spec = FeatureSpec(features=("hour_sin", "hour_cos", "dow_sin", "dow_cos"))
    x = compute_features(bars, spec)
    hours = np.array([0.0, 6.0, 12.0, 18.0]) / 24 * 2 * np.pi
    days = np.array([0.0, 0.0, 2.0, 6.0]) / 7 * 2 * np.pi
    expected = np.column_stack([np.sin(hours), np.cos(hours), np.sin(days), np.cos(days)])
    np.testing.assert_allclose(x, expected, atol=1e-12)


def test_a_missing_bar_gives_nan_and_the_indicators_restart() -> None:
    bars = make_bars(200)
    bars.iloc[120] = np.nan
    spec = FeatureSpec(features=("ret_1", "rsi_14"))
    x = compute_features(bars, spec)
    assert np.isnan(x[120]).all()
    assert np.isnan(x[121, 0]) and np.isfinite(x[122, 0])  # no return across the hole
    assert np.isnan(x[121 : 121 + 14, 1]).all() and np.isfinite(x[121 + 14, 1])


# --- point in time -------------------------------------------------------------------------------

MODES = st.sampled_from(["perturb", "truncate", "nan"])


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(60, 220),
    cut=st.floats(0.0, 1.0),
    mode=MODES,
)
def test_changing_bars_after_t_never_changes_feature_rows_up_to_t(
    seed: int, n: int, cut: float, mode: str
) -> None:
    bars = make_bars(n, seed=seed)
    t = int(cut * (n - 1))
    spec = FeatureSpec(features=tuple(FEATURES))
    before = compute_features(bars, spec)
    after = compute_features(perturb_after(bars, t, seed + 1, mode), spec)
    assert np.array_equal(before[: t + 1], after[: t + 1], equal_nan=True)


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(90, 200), cut=st.floats(0.0, 1.0), mode=MODES)
def test_changing_bars_after_t_never_changes_samples_ending_up_to_t(
    seed: int, n: int, cut: float, mode: str
) -> None:
    bars = make_bars(n, seed=seed)
    need = SMALL.warmup + SMALL.seq_len
    t = need - 1 + int(cut * (n - need))
    scaler = FeatureScaler.fit(compute_features(bars.iloc[:need], SMALL))
    full = prepare_inputs(bars, SMALL, scaler)
    other = prepare_inputs(perturb_after(bars, t, seed + 1, mode), SMALL, scaler)
    k = int(np.searchsorted(full.positions, t, side="right"))  # samples ending at rows <= t
    assert k == t - SMALL.seq_len + 2
    assert np.array_equal(full.positions[:k], other.positions[:k])
    assert full.index[:k].equals(other.index[:k])
    assert np.array_equal(full.sequence[:k], other.sequence[:k], equal_nan=True)
    assert np.array_equal(full.valid[:k], other.valid[:k])


@PROPERTY
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 59))
def test_alt_rows_stamped_after_a_bar_close_never_reach_it(seed: int, cut: int) -> None:
    bars = make_bars(60, seed=seed)
    rng = np.random.default_rng(seed)
    stamps = bars.index[0] + pd.to_timedelta(np.sort(rng.integers(0, 60 * 300, 80)), unit="s")
    alt = pd.DataFrame({"sentiment": rng.normal(size=80)}, index=stamps)
    spec = FeatureSpec(features=("ret_1",), alt_columns=("sentiment",))
    before = compute_features(bars, spec, timeframe="5m", alt=alt)
    close_t = bars.index[cut] + FIVE_MIN
    later = alt.index > close_t
    changed = alt.copy()
    changed.loc[later, "sentiment"] = rng.normal(size=int(later.sum())) + 100.0
    after = compute_features(bars, spec, timeframe="5m", alt=changed)
    assert np.array_equal(before[: cut + 1], after[: cut + 1], equal_nan=True)


def test_alt_row_stamped_exactly_at_the_close_is_used_one_ns_later_is_not() -> None:
    bars = make_bars(3)
    close_0 = bars.index[0] + FIVE_MIN
    alt = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0]},
        index=pd.DatetimeIndex(
            [close_0, close_0 + pd.Timedelta(1, "ns"), bars.index[2] + FIVE_MIN]
        ),
    )
    got = align_alt_data(bars.index, alt, ["x"], "5m")
    # bar 0 closes at close_0: row 1 stamped 1 ns later waits for bar 1 (closing 5 min later)
    assert got[:, 0].tolist() == [1.0, 2.0, 3.0]
    late = alt.set_axis(alt.index + pd.Timedelta(1, "ns"))
    got_late = align_alt_data(bars.index, late, ["x"], "5m")
    # everything 1 ns late: bar 0 sees nothing, bar 2 still sees row 1, not row 2
    assert np.isnan(got_late[0, 0]) and got_late[1:, 0].tolist() == [2.0, 2.0]


def test_alt_data_is_carried_per_column_sorted_and_naive_times_are_utc() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC", name="timestamp")
    alt = pd.DataFrame(
        {"a": [5.0, np.nan, 7.0, 6.0], "b": [1.0, 2.0, np.inf, 9.0]},
        index=pd.DatetimeIndex(
            ["2024-01-01 02:30", "2024-01-01 01:00", "2024-01-01 01:00", "2024-01-01 00:10"]
        ),  # naive, unsorted, a duplicate stamp
    )
    got = align_alt_data(index, alt, ("b", "a"), "1h")
    # closes 01:00, 02:00, 03:00, 04:00; b: 9 (00:10), 2 at 01:00 (inf skipped), 1 at 02:30
    assert got[:, 0].tolist() == [2.0, 2.0, 1.0, 1.0]
    # a: 6 (00:10), then 7 at 01:00 (the NaN row is skipped), then 5 at 02:30
    assert got[:, 1].tolist() == [7.0, 7.0, 5.0, 5.0]


def test_timeframe_is_inferred_from_the_bars_for_alt_data() -> None:
    bars = make_bars(5)
    alt = pd.DataFrame({"x": [1.0]}, index=[bars.index[1] + FIVE_MIN])
    spec = FeatureSpec(features=("ret_1",), alt_columns=("x",))
    x = compute_features(bars, spec, alt=alt)
    assert np.isnan(x[0, 1]) and x[1:, 1].tolist() == [1.0] * 4


# --- one code path -------------------------------------------------------------------------------


def test_live_trailing_slice_gives_the_numbers_of_the_full_history() -> None:
    bars = make_bars(2500, seed=7)
    spec = FeatureSpec(seq_len=16)
    full_x = compute_features(bars, spec)
    scaler = FeatureScaler.fit(full_x[:1200], kind=spec.scaler, clip=spec.clip)
    full = prepare_inputs(bars, spec, scaler)
    for end in (spec.min_history, 1500, 2500):
        live_bars = bars.iloc[end - spec.min_history : end]
        live = prepare_inputs(live_bars, spec, scaler)
        last = live.positions[-1] + end - spec.min_history
        assert live.index[-1] == bars.index[end - 1] == full.index[last - spec.seq_len + 1]
        assert live.valid[-1]
        live_x = compute_features(live_bars, spec)
        np.testing.assert_allclose(live_x[-spec.seq_len :], full_x[end - spec.seq_len : end],
                                   rtol=0, atol=1e-10)  # fmt: skip
        np.testing.assert_allclose(
            live.sequence[-1], full.sequence[last - spec.seq_len + 1], rtol=0, atol=1e-6
        )


# --- scaler --------------------------------------------------------------------------------------


def test_robust_and_standard_statistics_by_hand() -> None:
    x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, np.nan], [4.0, 5.0], [100.0, 5.0]])
    robust = FeatureScaler.fit(x, kind="robust")
    assert robust.center.tolist() == [3.0, 5.0]
    assert robust.scale[0] == pytest.approx((4.0 - 2.0) / 1.3489795003921634)
    assert robust.scale[1] == 1.0  # constant column
    standard = FeatureScaler.fit(x[:4, :1], kind="standard")
    assert standard.center[0] == 2.5 and standard.scale[0] == pytest.approx(np.std([1, 2, 3, 4]))
    empty = FeatureScaler.fit(np.array([[np.nan, 1.0], [np.nan, 2.0]]))
    assert empty.center[0] == 0.0 and empty.scale[0] == 1.0


def test_scaler_is_fitted_on_the_training_window_only() -> None:
    bars = make_bars(400, seed=11)
    spec = FeatureSpec(seq_len=8)
    train_end = 250
    a = FeatureScaler.fit(compute_features(bars, spec)[:train_end], kind=spec.scaler)
    changed = perturb_after(bars, train_end - 1, 5, "perturb")
    b = FeatureScaler.fit(compute_features(changed, spec)[:train_end], kind=spec.scaler)
    assert a == b
    c = FeatureScaler.fit(compute_features(changed, spec)[: train_end + 50], kind=spec.scaler)
    assert a != c


def test_transform_scales_clips_and_keeps_nan() -> None:
    scaler = FeatureScaler(
        kind="standard", clip=2.0, center=np.array([1.0, 0.0]), scale=np.array([2.0, 1.0])
    )
    got = scaler.transform([[3.0, 0.5], [101.0, -9.0], [np.nan, 1.0]])
    assert got.dtype == np.float32
    assert got[:2].tolist() == [[1.0, 0.5], [2.0, -2.0]]
    assert np.isnan(got[2, 0]) and got[2, 1] == 1.0
    seq = scaler.transform(np.zeros((2, 3, 2)))
    assert seq.shape == (2, 3, 2) and np.all(seq[..., 0] == -0.5)


def test_scaler_dict_round_trip_is_identical() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)) * [1e-4, 1.0, 3e3, 0.5]
    scaler = FeatureScaler.fit(x, kind="robust", clip=3.5)
    data = json.loads(json.dumps(scaler.to_dict()))
    again = FeatureScaler.from_dict(data)
    assert again == scaler and again.to_dict() == scaler.to_dict()
    assert np.array_equal(again.transform(x), scaler.transform(x))
    assert not scaler.center.flags.writeable


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.transform(np.zeros(2)), r"expected a 2-D or 3-D array"),
        (lambda s: s.transform(np.zeros((3, 5))), r"expected 2 feature columns, got 5"),
        (lambda s: s.transform([[np.inf, 0.0]]), "infinite feature value"),
        (lambda s: s.transform([[np.nan, 0.0]], allow_nan=False), r"1 row\(s\) contain NaN"),
        (lambda s: FeatureScaler.fit([[1.0, np.inf]]), "infinite value in column 1"),
        (lambda s: FeatureScaler.fit(np.zeros((0, 2))), "no rows to fit on"),
        (lambda s: FeatureScaler.fit([1.0, 2.0]), "expected a 2-D array"),
        (lambda s: FeatureScaler.fit([[1.0]], clip=-1), "clip must be a finite number > 0"),
        (lambda s: FeatureScaler.from_dict({"kind": "robust"}), "missing key.*clip"),
        (lambda s: FeatureScaler.from_dict({**s.to_dict(), "kind": "x"}), "unknown scaler kind"),
        (lambda s: FeatureScaler.from_dict({**s.to_dict(), "version": 9}), "unknown scaler"),
        (lambda s: FeatureScaler.from_dict({**s.to_dict(), "scale": [0.0, 1.0]}), "scale finite"),
    ],
)
def test_scaler_errors_are_one_line(call, match: str) -> None:  # type: ignore[no-untyped-def]
    scaler = FeatureScaler.fit([[0.0, 1.0], [1.0, 3.0]])
    with pytest.raises(UserInputError, match=match) as err:
        call(scaler)
    one_line(err)


# --- sequences and prepared inputs ---------------------------------------------------------------


def test_make_sequences_windows_end_at_row_i_plus_seq_len_minus_1() -> None:
    x = np.arange(12.0).reshape(6, 2)
    seq = make_sequences(x, 3)
    assert seq.shape == (4, 3, 2)
    assert seq[0].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert seq[3].tolist() == [[6.0, 7.0], [8.0, 9.0], [10.0, 11.0]]
    for i in range(4):
        assert np.array_equal(seq[i], x[i : i + 3])
    assert np.shares_memory(seq, x)  # a view, no copy
    assert make_sequences(x, 7).shape == (0, 7, 2)
    assert make_sequences(x, 1).shape == (6, 1, 2)


@pytest.mark.parametrize(
    ("x", "seq_len"), [(np.zeros(5), 2), (np.zeros((2, 2, 2)), 2), (np.zeros((5, 2)), 0)]
)
def test_make_sequences_refuses_bad_input(x: np.ndarray, seq_len: int) -> None:
    with pytest.raises(UserInputError) as err:
        make_sequences(x, seq_len)
    one_line(err)


def test_prepare_inputs_aligns_samples_with_bars() -> None:
    bars = make_bars(200, seed=2)
    bars.iloc[150] = np.nan
    spec = FeatureSpec(seq_len=10)
    scaler = FeatureScaler.fit(compute_features(bars, spec)[:120])
    prepared = prepare_inputs(bars, spec, scaler)
    assert len(prepared) == 200 - 10 + 1
    assert prepared.sequence.dtype == np.float32 and prepared.sequence.shape == (191, 10, 16)
    assert prepared.positions.tolist() == list(range(9, 200))
    assert prepared.index.equals(bars.index[9:])
    assert prepared.names == spec.names
    scaled = scaler.transform(compute_features(bars, spec))
    for i in (0, 50, 190):
        assert np.array_equal(prepared.sequence[i], scaled[i : i + 10], equal_nan=True)
    first_valid = spec.warmup + spec.seq_len - 1
    expected = np.array([not np.isnan(scaled[p - 9 : p + 1]).any() for p in prepared.positions])
    assert np.array_equal(prepared.valid, expected)
    assert prepared.positions[prepared.valid][0] == first_valid
    assert not prepared.valid[
        (prepared.positions >= 150) & (prepared.positions < 150 + 10 + 49)
    ].any()
    picked = prepared.select(prepared.valid)
    assert len(picked) == int(prepared.valid.sum()) and picked.valid.all()
    assert not np.isnan(picked.sequence).any()


def test_prepare_inputs_refuses_too_few_bars_and_a_scaler_of_another_width() -> None:
    spec = FeatureSpec(seq_len=10)
    bars = make_bars(spec.warmup + spec.seq_len - 1)
    scaler = FeatureScaler.fit(np.zeros((3, len(spec.names))))
    with pytest.raises(UserInputError, match=r"58 bars are too few.*needs 59") as err:
        prepare_inputs(bars, spec, scaler)
    assert "at least" in one_line(err)
    more = make_bars(100)
    assert len(prepare_inputs(more, spec, scaler)) == 91
    with pytest.raises(UserInputError, match="the scaler has 2 columns but the spec has 16"):
        prepare_inputs(more, spec, FeatureScaler.fit(np.zeros((3, 2))))


# --- bad input -----------------------------------------------------------------------------------


def test_bad_bars_give_one_line_errors() -> None:
    spec = FeatureSpec()
    good = make_bars(10)
    with pytest.raises(UserInputError, match="no bars") as err:
        compute_features(good.iloc[:0], spec)
    one_line(err)
    with pytest.raises(DataFormatError, match=r"missing column.*volume") as err2:
        compute_features(good.drop(columns="volume"), spec)
    one_line(err2)
    with pytest.raises(DataFormatError, match="not strictly increasing"):
        compute_features(good.iloc[::-1], spec)
    bad = good.copy()
    bad.iloc[4, 3] = -1.0
    with pytest.raises(DataFormatError, match=r"price <= 0 at row 4"):
        compute_features(bad, spec)
    with pytest.raises(DataFormatError, match="expected a pandas DataFrame"):
        compute_features(good.to_numpy(), spec)  # type: ignore[arg-type]


def test_bad_alt_data_gives_one_line_errors() -> None:
    bars = make_bars(10)
    spec = FeatureSpec(features=("ret_1",), alt_columns=("funding",))
    with pytest.raises(UserInputError, match="needs alternative data columns funding"):
        compute_features(bars, spec)
    no_index = pd.DataFrame({"funding": [1.0]})
    with pytest.raises(DataFormatError, match="needs a DatetimeIndex") as err:
        compute_features(bars, spec, alt=no_index)
    one_line(err)
    typo = pd.DataFrame({"fundng": [1.0]}, index=bars.index[:1])
    with pytest.raises(DataFormatError, match=r"missing column 'funding'.*did you mean fundng"):
        compute_features(bars, spec, alt=typo)
    text = pd.DataFrame({"funding": ["high"]}, index=bars.index[:1])
    with pytest.raises(DataFormatError, match="'funding' is not numeric"):
        compute_features(bars, spec, alt=text)
    with pytest.raises(UserInputError, match="cannot infer the timeframe"):
        compute_features(bars.iloc[:1], spec, alt=typo.rename(columns={"fundng": "funding"}))
    with pytest.raises(UserInputError, match="unknown timeframe"):
        compute_features(bars, spec, timeframe="5x", alt=typo.rename(columns={"fundng": "funding"}))


# --- cleaning ------------------------------------------------------------------------------------


def test_clean_bars_repairs_with_past_only_policies() -> None:
    bars = make_bars(40)
    dirty = pd.concat([bars.iloc[:20], bars.iloc[[19]] * 1.01, bars.iloc[20:]])  # duplicate
    dirty.iloc[30, 3] = np.nan  # NaN close
    out = clean_bars(dirty, timeframe="5m")
    assert out.index.equals(bars.index)
    assert out.iloc[19]["close"] == pytest.approx(bars.iloc[19]["close"] * 1.01)  # last kept
    row = 29  # the NaN bar (row 30 of dirty) is flat at the previous close
    assert (
        out.iloc[row][["open", "high", "low", "close"]].tolist() == [out.iloc[row - 1]["close"]] * 4
    )
    # point in time: cleaning a prefix gives the same rows
    assert clean_bars(dirty.iloc[:32], timeframe="5m").equals(out.iloc[:31])


@pytest.mark.parametrize(
    "policy", [{"outlier": "drop"}, {"outlier": "ffill"}, {"misaligned": "drop"}, {"all": "drop"}]
)
def test_clean_bars_refuses_policies_that_look_ahead(policy: dict[str, str]) -> None:
    with pytest.raises(UserInputError, match="looks at later bars") as err:
        clean_bars(make_bars(10), timeframe="5m", policies=policy)
    assert "=warn" in one_line(err)


def test_clean_bars_keeps_an_error_policy_and_accepts_safe_overrides() -> None:
    from morningstar.errors import DataValidationError

    bars = make_bars(10)
    bars.iloc[3, 0] = np.nan
    with pytest.raises(DataValidationError, match="nan"):
        clean_bars(bars, timeframe="5m", policies={"nan": "error"})
    assert len(clean_bars(bars, timeframe="5m", policies={"nan": "drop"})) == 9
    with pytest.raises(UserInputError, match="unknown policy"):
        clean_bars(bars, policies={"all": "zap"})
