"""Lazy access to PyTorch: a one-line install hint when it is missing, device and determinism.

Nothing here imports torch at module import time, so ``import morningstar.model`` (and the
config) work without it; :func:`require_torch` is called by the code paths that need it.
"""

from __future__ import annotations

import contextlib
import importlib
import re
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


def resolve_device(device: str, *, where: str = "model.training.device") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        where: the setting or argument named in the error message.

    Raises:
        ConfigError: ``cuda`` requested and no CUDA device is available, or an unknown device
            (one line each).
    """
    torch = require_torch()
    name = str(device).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or re.fullmatch(r"cuda:\d+", name):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name} requested but CUDA is not available (no GPU visible to this "
                "torch build)",
                where=where,
                hint="use auto or cpu",
            )
        return name
    raise ConfigError(f"unknown device {device!r}", where=where, hint="use auto, cpu or cuda")


@contextlib.contextmanager
def deterministic(seed: int, threads: int | None = None) -> Iterator[Any]:
    """Seed torch, switch on deterministic algorithms (and set the CPU thread count) inside.

    The caller's settings are restored on exit: deterministic algorithms on/off and their
    ``warn_only`` flag, the thread count, and the global random number generators of torch
    (CPU and every visible CUDA device, via ``torch.random.fork_rng``), so seeding here never
    changes the random numbers the caller draws afterwards. On CPU, the same seed, data and
    thread count give bit-identical weights.
    """
    torch = require_torch()
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield torch
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
            if threads is not None:
                torch.set_num_threads(previous_threads)
