"""The versioned model artifact: one directory with the weights and a JSON manifest.

::

    <models dir>/<name>-v<N>/        (or any directory the user names)
      weights.pt     the network's state_dict only (loaded with ``weights_only=True``: no pickle
                     code runs)
      model.json     format and version, morningstar / torch / numpy / pandas / python versions,
                     bar timeframe (alt data is joined as of each bar's close with it),
                     feature spec, label spec, network spec, training settings, the fitted
                     feature scaler, the signal calibration (temperature and bias), the class
                     names, the training data (source, first / last bar, bar count, SHA-256 of the
                     bar arrays), the train / validation / test windows, per-head test metrics vs
                     baselines, the epoch history and the training time

:func:`read_manifest` checks the directory and the format version with one-line errors; the
wrapper (:class:`~morningstar.model.wrapper.MorningstarModel`) checks the feature spec and the
weight shapes.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from morningstar import __version__
from morningstar.errors import StorageError, UserInputError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "WEIGHTS_FILE",
    "jsonable",
    "next_version_dir",
    "read_manifest",
    "write_artifact",
]

FORMAT = "morningstar.model"
#: Bumped when the layout of model.json or weights.pt changes incompatibly.
FORMAT_VERSION = 1
MANIFEST_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
_VERSION_DIR = re.compile(r"^(?P<name>.+)-v(?P<n>\d+)$")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values and NaN / inf as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path | pd.Timestamp):
        return str(value)
    return value


def next_version_dir(root: str | Path, name: str) -> Path:
    """``<root>/<name>-v<N>`` with ``N`` one more than the highest existing version (from 1)."""
    base = Path(root)
    highest = 0
    if base.is_dir():
        for child in base.iterdir():
            match = _VERSION_DIR.match(child.name)
            if match and match["name"] == name:
                highest = max(highest, int(match["n"]))
    return base / f"{name}-v{highest + 1}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model depends on."""
    import torch

    return {
        "morningstar": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def write_artifact(
    path: str | Path, state_dict: Mapping[str, Any], manifest: Mapping[str, Any]
) -> Path:
    """Write ``weights.pt`` and ``model.json`` into ``path`` (created; must not hold a model).

    ``format``, ``format_version``, ``created`` and ``libraries`` are always written fresh (a
    manifest read from another artifact keeps everything else).

    Raises:
        UserInputError: ``path`` already holds a model (never overwritten).
        StorageError: the directory or a file cannot be written.
    """
    import torch

    folder = Path(path)
    if (folder / MANIFEST_FILE).exists() or (folder / WEIGHTS_FILE).exists():
        raise UserInputError(
            "a model is already saved there", where=str(folder), hint="choose another --out"
        )
    fresh = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "libraries": library_versions(),
    }
    # written now, by these libraries: a re-saved (loaded) manifest's old values are replaced
    full = {**fresh, **{k: v for k, v in manifest.items() if k not in fresh}}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(dict(state_dict), folder / WEIGHTS_FILE)
        (folder / MANIFEST_FILE).write_text(
            json.dumps(jsonable(full), indent=2, allow_nan=False), encoding="utf-8"
        )
    except OSError as exc:
        raise StorageError(
            f"cannot write the model ({exc.strerror or exc})", where=str(folder)
        ) from exc
    return folder


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the artifact in ``path``, after checking the files and format version.

    Raises:
        UserInputError: no such directory, a missing file, unreadable JSON, another format, or a
            format version this Morningstar cannot read.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise UserInputError(
            "model directory not found",
            where=str(folder),
            hint="train one with `morningstar train`",
        )
    for name in (MANIFEST_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise UserInputError(
                f"incomplete model: {name} is missing",
                where=str(folder),
                hint="retrain it with `morningstar train` or restore the file",
            )
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(
            f"unreadable {MANIFEST_FILE} ({exc})", where=str(folder), hint="retrain the model"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserInputError(
            f"{MANIFEST_FILE} is not a Morningstar model manifest", where=str(folder)
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        made_by = manifest.get("libraries", {}).get("morningstar", "?")
        raise UserInputError(
            f"model format version {version!r} (made by morningstar {made_by}) is not supported: "
            f"this morningstar {__version__} reads version {FORMAT_VERSION}",
            where=str(folder),
            hint="retrain the model with this version or install the version that made it",
        )
    return manifest


def load_weights(path: str | Path) -> dict[str, Any]:
    """The state_dict in ``path/weights.pt`` (``weights_only=True``, on CPU).

    Raises:
        UserInputError: the file is not a readable state_dict.
    """
    import torch

    file = Path(path) / WEIGHTS_FILE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise UserInputError(
            f"unreadable weights ({type(exc).__name__}: {exc})",
            where=str(file),
            hint="retrain the model",
        ) from exc
    if not isinstance(state, dict):
        raise UserInputError("weights.pt does not hold a state_dict", where=str(file))
    return state
