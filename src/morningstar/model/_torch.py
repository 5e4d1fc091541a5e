"""Lazy access to PyTorch: a one-line install hint when it is missing, device and determinism.

Nothing here imports torch at module import time, so ``import morningstar.model`` (and the
config) work without it; :func:`require_torch` is called by the code paths that need it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from morningstar.errors import ConfigError

__all__ = ["INSTALL_HINT", "deterministic", "require_torch", "resolve_device", "torch_available"]

#: How to install the optional ML dependency (CPU-only wheels).
INSTALL_HINT = (
    "install the ml extra: pip install 'morningstar[ml]' — CPU-only: "
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
)


def torch_available() -> bool:
    """True when ``import torch`` works."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def require_torch() -> ModuleType:
    """The ``torch`` module.

    Raises:
        ConfigError: torch is not installed (one line saying how to install it).
    """
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ConfigError(
            "PyTorch is not installed (needed by the ML model)", hint=INSTALL_HINT
        ) from (exc)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error.

    Raises:
        ConfigError: ``cuda`` requested and no CUDA device is available.
    """
    torch = require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device cuda requested but no CUDA device is available",
            where="model.training.device",
            hint="use auto or cpu",
        )
    return device


@contextlib.contextmanager
def deterministic(seed: int, threads: int | None = None) -> Iterator[Any]:
    """Seed torch, switch on deterministic algorithms (and set the CPU thread count) inside.

    The previous settings are restored on exit. On CPU, the same seed, data and thread count
    give bit-identical weights.
    """
    torch = require_torch()
    previous = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch
    finally:
        torch.use_deterministic_algorithms(previous)
        if threads is not None:
            torch.set_num_threads(previous_threads)
