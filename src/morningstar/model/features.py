"""Point-in-time model inputs: named features, alternative data, scaling and sequences.

One code path turns bars into model inputs for training, backtest and live trading:

``bars`` → :func:`clean_bars` (live: validation with point-in-time-safe policies only) →
:func:`compute_features` (one float64 row per bar, NaN during the warm-up) →
:class:`FeatureScaler` (fitted on the training window, stored with the model) →
:func:`make_sequences` (the last ``seq_len`` rows ending at each bar). :func:`prepare_inputs`
chains the last three; training, backtest and live all call it, so the same bars give the same
numbers whoever asks.

Point in time: feature row ``t`` depends only on bars ``<= t`` and on alternative-data rows stamped
at or before the CLOSE of bar ``t`` (its open time plus the timeframe). Changing, adding or removing
later bars never changes it. A sample of :func:`prepare_inputs` is known at the close of the bar it
ends at.

Features are scale-free (log returns, ratios to the price, bounded oscillators, z-scores and
time-of-day / day-of-week angles) so that one model serves any instrument and price level; see
:data:`FEATURES` for the list (``FEATURES[name].description``) and :data:`DEFAULT_FEATURES`.

Recursive indicators (EMA, Wilder's RSI/ATR/ADX, MACD) depend, very weakly, on where the series
starts. Live trading therefore feeds at least :attr:`FeatureSpec.min_history` bars: then the
numbers agree with those computed on the full history to ~1e-10 (they cannot agree to the last
bit: rolling sums and recursive smoothers round differently from another starting bar).

Alternative data (sentiment, funding rates, on-chain metrics...) comes in through
:func:`align_alt_data`: any frame with a DatetimeIndex of the times its values became KNOWN, joined
as of each bar's close, so a value published after the close never reaches that bar.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.timeframe import Timeframe
from morningstar.data.calendars import Calendar
from morningstar.data.validation import (
    ALLOWED_POLICIES,
    Check,
    Policy,
    PolicyMap,
    resolve_policies,
    validate,
)
from morningstar.errors import DataFormatError, UserInputError
from morningstar.model._bars import check_bars, read_bars, resolve_timeframe, utc_ns
from morningstar.model._feature_registry import (
    DEFAULT_FEATURES,
    FEATURES,
    BarArrays,
    FeatureDef,
)
from morningstar.model._scaler import FeatureScaler
from morningstar.model.specs import FeatureSpec, ScalerKind, close_matches

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "PIT_SAFE_POLICIES",
    "FeatureDef",
    "FeatureScaler",
    "FeatureSpec",
    "PreparedInputs",
    "ScalerKind",
    "align_alt_data",
    "clean_bars",
    "compute_features",
    "make_sequences",
    "prepare_inputs",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------- inputs


def align_alt_data(
    index: pd.Index,
    alt: pd.DataFrame,
    columns: tuple[str, ...] | list[str],
    timeframe: Timeframe | str | None = None,
) -> FloatArray:
    """Join alternative data to bars as of each bar's close (never later).

    The alt frame's index is the time each row became KNOWN (publication time, UTC; naive times
    are taken as UTC), not the period it describes. Bar ``t`` (open time ``o``) gets, per column,
    the last finite value stamped ``<= o + timeframe``: a row stamped exactly at the close is
    used, one stamped 1 ns later is not. Rows are sorted by time first (stable: of two rows with
    the same stamp, the later one in the frame wins); NaN/inf values are skipped (the previous
    known value is carried).

    Args:
        index: bar open times (UTC DatetimeIndex).
        alt: the alternative data: DatetimeIndex, numeric ``columns``.
        columns: the columns to take, in this order.
        timeframe: the bar duration; None infers it (most common step of ``index``).

    Returns:
        float64 array ``(len(index), len(columns))``, NaN before a column's first known value.

    Raises:
        DataFormatError: ``alt`` has no DatetimeIndex, lacks a column, or a column is not numeric.
        UserInputError: the timeframe is invalid or cannot be inferred.
    """
    where = "alt data"
    if not isinstance(alt, pd.DataFrame) or not isinstance(alt.index, pd.DatetimeIndex):
        raise DataFormatError(
            "alternative data needs a DatetimeIndex of publication times",
            where=where,
            hint="set_index on the timestamp column (UTC) before passing it",
        )
    if not isinstance(index, pd.DatetimeIndex):
        raise DataFormatError(
            "bar index is not a DatetimeIndex", where="bars", hint="pass bars.index of OHLCV bars"
        )
    missing = [c for c in columns if c not in alt.columns]
    if missing:
        have = [str(c) for c in alt.columns]
        raise DataFormatError(
            f"missing column {missing[0]!r}",
            where=where,
            hint=close_matches(missing[0], have) if have else "the frame has no column",
        )
    tf = resolve_timeframe(index, timeframe)
    closes = utc_ns(index) + tf.ns
    stamps = utc_ns(alt.index)
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    out = np.full((len(index), len(columns)), np.nan)
    for j, name in enumerate(columns):  # one pass per column
        try:
            values = pd.to_numeric(alt[name], errors="raise").to_numpy(dtype=np.float64)[order]
        except (TypeError, ValueError) as exc:
            raise DataFormatError(
                f"column {name!r} is not numeric ({exc})",
                where=where,
                hint="alternative data must be numbers",
            ) from exc
        known = np.isfinite(values)
        ts, vals = stamps[known], values[known]
        pos = np.searchsorted(ts, closes, side="right") - 1
        out[:, j] = np.where(pos >= 0, vals[np.maximum(pos, 0)] if vals.size else np.nan, np.nan)
    return out


def _bar_arrays(data: pd.DataFrame) -> BarArrays:
    return BarArrays(
        open=data["open"].to_numpy(dtype=np.float64),
        high=data["high"].to_numpy(dtype=np.float64),
        low=data["low"].to_numpy(dtype=np.float64),
        close=data["close"].to_numpy(dtype=np.float64),
        volume=data["volume"].to_numpy(dtype=np.float64),
        times_ns=utc_ns(cast(pd.DatetimeIndex, data.index)),
    )


def compute_features(
    bars: pd.DataFrame,
    spec: FeatureSpec,
    *,
    timeframe: Timeframe | str | None = None,
    alt: pd.DataFrame | None = None,
) -> FloatArray:
    """Compute the feature matrix of ``spec`` over the bars, one row per bar.

    Row ``t`` depends only on bars ``<= t`` and alt rows stamped ``<=`` the close of bar ``t``.

    Args:
        bars: OHLCV contract frame (UTC open times, strictly increasing; NaN bars allowed: the
            indicators restart after them).
        spec: the features to compute.
        timeframe: bar duration, used to place the bar close for alt data; None infers it from
            the whole index (pass it explicitly when bars may be irregular: an inferred
            timeframe depends on every bar, later ones included).
        alt: alternative data holding ``spec.alt_columns`` (see :func:`align_alt_data`).

    Returns:
        float64 array ``(len(bars), len(spec.names))`` in ``spec.names`` order; NaN where a value
        cannot be computed (warm-up, around missing bars, before the first alt value).

    Raises:
        DataFormatError: the bars break the OHLCV contract, or the alt data is malformed.
        UserInputError: no bars, or ``spec.alt_columns`` without ``alt``.
    """
    data = check_bars(bars)
    arrays = _bar_arrays(data)
    out = np.empty((len(data), len(spec.names)))
    for j, name in enumerate(spec.features):  # one vectorised pass per feature
        out[:, j] = FEATURES[name].compute(arrays)
    if spec.alt_columns:
        if alt is None:
            raise UserInputError(
                f"the spec needs alternative data columns {', '.join(spec.alt_columns)}",
                where="compute_features",
                hint="pass alt=<frame with those columns>",
            )
        out[:, len(spec.features) :] = align_alt_data(data.index, alt, spec.alt_columns, timeframe)
    elif alt is not None:
        logger.debug("alternative data ignored: the feature spec has no alt_columns")
    out[~np.isfinite(out)] = np.nan
    return out


def make_sequences(x: npt.NDArray[np.generic], seq_len: int) -> npt.NDArray[np.generic]:
    """Windows of ``seq_len`` consecutive rows: window ``i`` holds rows ``i .. i + seq_len - 1``.

    Args:
        x: rows, shape ``(n, features)``.
        seq_len: rows per window, >= 1.

    Returns:
        A read-only view (no copy) of shape ``(n - seq_len + 1, seq_len, features)``; window ``i``
        ends at row ``i + seq_len - 1``. Empty (0 windows) when ``n < seq_len``.

    Raises:
        UserInputError: ``x`` is not 2-D or ``seq_len < 1``.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise UserInputError(
            f"expected a 2-D array (rows, features), got shape {arr.shape}",
            where="make_sequences",
            hint="pass the feature matrix (one row per bar)",
        )
    if isinstance(seq_len, bool) or not isinstance(seq_len, int | np.integer) or seq_len < 1:
        raise UserInputError(f"seq_len must be an integer >= 1, got {seq_len!r}", where="seq_len")
    if arr.shape[0] < seq_len:
        return np.empty((0, int(seq_len), arr.shape[1]), dtype=arr.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(arr, int(seq_len), axis=0)
    return windows.transpose(0, 2, 1)


@dataclass(frozen=True)
class PreparedInputs:
    """Model inputs, one sample per bar from the ``seq_len``-th on.

    Attributes:
        index: open time of the bar each sample ENDS at (decision at that bar's close).
        positions: row of that bar in the input bars (int64); labels align as
            ``labels.signal[positions]``.
        inputs: ``"sequence"``: float32 ``(n, seq_len, features)``, scaled and clipped, a read-only
            view (index it, e.g. ``seq[batch]``, to get a writeable copy).
        valid: True where the window has no NaN (warm-up and missing bars excluded).
        names: feature names, the last axis of ``"sequence"``.
    """

    index: pd.DatetimeIndex
    positions: npt.NDArray[np.int64]
    inputs: Mapping[str, npt.NDArray[np.float32]]
    valid: npt.NDArray[np.bool_]
    names: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.positions.size)

    @property
    def sequence(self) -> npt.NDArray[np.float32]:
        """The ``"sequence"`` input."""
        return self.inputs["sequence"]

    def select(self, rows: npt.ArrayLike) -> PreparedInputs:
        """Samples chosen by a boolean mask or integer positions (arrays are copied)."""
        sel = np.asarray(rows)
        return PreparedInputs(
            index=self.index[sel],
            positions=self.positions[sel],
            inputs={k: v[sel] for k, v in self.inputs.items()},
            valid=self.valid[sel],
            names=self.names,
        )


def prepare_inputs(
    bars: pd.DataFrame,
    spec: FeatureSpec,
    scaler: FeatureScaler,
    *,
    timeframe: Timeframe | str | None = None,
    alt: pd.DataFrame | None = None,
) -> PreparedInputs:
    """Turn bars into scaled model input sequences: THE code path of training, backtest and live.

    Args:
        bars: OHLCV contract frame; live trading passes at least ``spec.min_history`` bars.
        spec: the features and the window length.
        scaler: the training scaler (``scaler.n_features == len(spec.names)``).
        timeframe: bar duration (for alt data); None infers it.
        alt: alternative data holding ``spec.alt_columns``.

    Returns:
        One sample per bar from row ``seq_len - 1`` on (see :class:`PreparedInputs`).

    Raises:
        UserInputError: fewer bars than ``spec.warmup + spec.seq_len`` or a scaler of another
            width (plus the errors of :func:`compute_features`).
    """
    data = check_bars(bars)
    need = spec.warmup + spec.seq_len
    if len(data) < need:
        raise UserInputError(
            f"{len(data)} bars are too few: the warm-up ({spec.warmup}) plus one window "
            f"({spec.seq_len}) needs {need}",
            where="prepare_inputs",
            hint=f"pass more history (live: at least {spec.min_history} bars)",
        )
    if scaler.n_features != len(spec.names):
        raise UserInputError(
            f"the scaler has {scaler.n_features} columns but the spec has {len(spec.names)}",
            where="prepare_inputs",
            hint="use the scaler saved with this feature spec",
        )
    raw = compute_features(data, spec, timeframe=timeframe, alt=alt)
    scaled = scaler.transform(raw)
    seq_len = spec.seq_len
    sequence = cast(npt.NDArray[np.float32], make_sequences(scaled, seq_len))
    bad = np.concatenate(([0], np.cumsum(np.isnan(scaled).any(axis=1))))
    valid = (bad[seq_len:] - bad[:-seq_len]) == 0
    positions = np.arange(seq_len - 1, len(data), dtype=np.int64)
    index = cast(pd.DatetimeIndex, data.index[seq_len - 1 :])
    return PreparedInputs(
        index=index,
        positions=positions,
        inputs={"sequence": sequence},
        valid=valid,
        names=spec.names,
    )


# ------------------------------------------------------------------------------------ cleaning

#: Validation policies that only look at the bar itself and earlier bars (see :func:`clean_bars`).
PIT_SAFE_POLICIES: Mapping[Check, Policy] = {
    Check.NON_MONOTONIC: Policy.SORT,
    Check.DUPLICATE: Policy.DROP,
    Check.MISALIGNED: Policy.WARN,
    Check.NAN: Policy.FFILL,
    Check.NON_POSITIVE: Policy.FFILL,
    Check.OHLC_INCONSISTENT: Policy.FFILL,
    Check.OUTLIER: Policy.WARN,
    Check.ZERO_VOLUME: Policy.WARN,
    Check.NO_VOLUME: Policy.WARN,
    Check.OFF_SESSION: Policy.WARN,
    Check.GAP: Policy.WARN,
}
# the outlier rule looks at the 3 closes AFTER a bar; the grid phase at the whole series
_ALL = {"all", "*"}
_FORBIDDEN: Mapping[Check, frozenset[Policy]] = {
    Check.OUTLIER: frozenset({Policy.DROP, Policy.FFILL, Policy.ERROR}),
    Check.MISALIGNED: frozenset({Policy.DROP, Policy.ERROR}),
}


def clean_bars(
    bars: pd.DataFrame,
    *,
    timeframe: Timeframe | str | None = None,
    calendar: Calendar | str | None = "crypto",
    policies: PolicyMap | None = None,
    where: str = "bars",
) -> pd.DataFrame:
    """Validate and repair new bars with point-in-time-safe policies only.

    Runs :func:`morningstar.data.validation.validate` with :data:`PIT_SAFE_POLICIES` (sort,
    drop duplicates keeping the exchange's last version, forward-fill broken bars from the
    previous good close, warn about the rest) merged with ``policies``. Policies whose outcome
    for a bar depends on LATER bars are refused: the outlier rule compares a bar with the closes
    after it, and the misaligned check judges the grid on the whole series.

    Args:
        bars: the bars (anything :func:`~morningstar.data.ohlcv.to_contract` accepts).
        timeframe: bar duration; None infers it from the index.
        calendar: market schedule (crypto, forex, cme, equity), used to judge gaps.
        policies: overrides of :data:`PIT_SAFE_POLICIES` by check name.
        where: name of the data in messages.

    Returns:
        The cleaned contract frame (warnings are logged).

    Raises:
        UserInputError: a policy that looks ahead, or an unknown check / policy.
        DataValidationError: a check under the ``error`` policy found a problem.
        DataFormatError: the frame cannot be read as OHLCV bars.
    """
    chosen = dict(PIT_SAFE_POLICIES)
    if policies:
        specific = {
            str(k): str(v) for k, v in policies.items() if str(k).strip().lower() not in _ALL
        }
        for key, value in policies.items():
            if str(key).strip().lower() in _ALL:
                try:
                    pol = Policy(str(value).strip().lower())
                except ValueError:
                    allowed = ", ".join(p.value for p in Policy)
                    raise UserInputError(
                        f"unknown policy {value!r}", where=where, hint=f"use one of {allowed}"
                    ) from None
                chosen.update({c: pol for c in Check if pol in ALLOWED_POLICIES[c]})
        resolved = resolve_policies(specific)
        chosen.update(
            {Check(k.strip().lower()): resolved[Check(k.strip().lower())] for k in specific}
        )
    for check, forbidden in _FORBIDDEN.items():
        if chosen[check] in forbidden:
            raise UserInputError(
                f"policy {check}={chosen[check]} looks at later bars",
                where=where,
                hint=f"use {check}=warn for point-in-time cleaning",
            )
    data = read_bars(bars, where)
    tf = resolve_timeframe(cast(pd.DatetimeIndex, data.index), timeframe)
    out, report = validate(data, tf, calendar=calendar, policies=chosen, where=where)
    if report.status != "clean":
        for line in report.lines(max_examples=1)[1:]:
            logger.warning("%s: %s", where, line.strip())
    return out
