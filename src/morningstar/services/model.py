"""Model service: load bars (stored dataset or CSV file), train, save the versioned artifact."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from morningstar.config import ModelSettings
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import UserInputError

__all__ = ["TrainedArtifact", "load_training_bars", "train_and_save"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedArtifact:
    """A trained model, where it was saved and what it was trained on."""

    model: Any  # MorningstarModel
    result: Any  # TrainResult
    path: Path
    source: dict[str, Any]


def _slug(*parts: object) -> str:
    text = "_".join(str(p) for p in parts if p)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "model"


def load_training_bars(
    store: OHLCVStore,
    *,
    venue: str | None = None,
    pair: str | None = None,
    timeframe: str | None = None,
    csv: Path | None = None,
    start: str | None = None,
    end: str | None = None,
    calendar: str = "auto",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Bars to train on and a description of their source.

    Either a stored dataset (``venue``, ``pair``, ``timeframe``) or a CSV file (``csv``; venue,
    pair and timeframe from its name when not given), cut to ``[start, end)``. CSV bars are
    cleaned with the point-in-time-safe policies of ``clean_bars``.

    Raises:
        UserInputError: neither or both sources, or no bars left.
        DataNotFoundError / DataFormatError: nothing stored, unreadable file.
    """
    from morningstar.data.parquet_store import to_utc_timestamp
    from morningstar.services.data import pair_arg, resolve_calendar, timeframe_arg

    if (csv is None) == (venue is None or pair is None or timeframe is None):
        raise UserInputError(
            "give either --csv FILE or --venue, --pair and --timeframe of a stored dataset",
            where="morningstar train",
        )
    if csv is not None:
        from morningstar.data.csv_import import parse_file_name, read_ohlcv_csv
        from morningstar.model.features import clean_bars

        name_venue, name_pair, name_tf = parse_file_name(csv)
        venue = venue or name_venue
        p = pair_arg(pair) if pair else name_pair
        tf = timeframe_arg(timeframe) if timeframe else name_tf
        imported = read_ohlcv_csv(csv)
        cal = resolve_calendar(calendar, venue, p)
        bars = clean_bars(imported.frame, timeframe=tf, calendar=cal, where=str(csv))
        source: dict[str, Any] = {
            "kind": "csv",
            "path": str(Path(csv).resolve()),
            "file_sha256": imported.sha256,
        }
    else:
        assert venue is not None and pair is not None and timeframe is not None
        p, tf = pair_arg(pair), timeframe_arg(timeframe)
        bars = store.load(venue, p, tf, start, end)  # the range is read, not filtered after
        source = {"kind": "stored", "path": str(store.path(venue, p, tf))}
    if csv is not None:
        t0, t1 = to_utc_timestamp(start, "start"), to_utc_timestamp(end, "end")
        if t0 is not None:
            bars = bars[bars.index >= t0]
        if t1 is not None:
            bars = bars[bars.index < t1]
    if len(bars) == 0:
        raise UserInputError("no bars in that range", hint="widen --start / --end")
    source["venue"] = venue
    source["pair"] = str(p) if p else None
    source["timeframe"] = str(tf) if tf else None
    return bars, source


def train_and_save(
    bars: pd.DataFrame,
    settings: ModelSettings,
    *,
    models_dir: Path,
    source: dict[str, Any],
    out: Path | None = None,
    name: str | None = None,
    on_epoch: Callable[[Any], None] | None = None,
) -> TrainedArtifact:
    """Train on ``bars`` with ``settings`` and save the artifact.

    The artifact goes to ``out`` when given, else to ``<models_dir>/<name>-v<N>`` (``name``
    defaults to venue_pair_timeframe; ``N`` the next free version).
    """
    from morningstar.model.artifact import next_version_dir
    from morningstar.model.training import train_model
    from morningstar.model.wrapper import MorningstarModel

    result = train_model(
        bars,
        features=settings.features,
        labels=settings.labels,
        network=settings.network,
        training=settings.training,
        timeframe=source.get("timeframe"),
        on_epoch=on_epoch,
    )
    model = MorningstarModel.from_training(result)
    label = name or _slug(source.get("venue"), source.get("pair"), source.get("timeframe"))
    folder = out if out is not None else next_version_dir(models_dir, label)
    path = model.save(folder, source=source)
    log.info("model saved to %s", path)
    return TrainedArtifact(model=model, result=result, path=path, source=source)
