"""Find strategies by name: the built-ins, and users' own strategies in files of their own.

A user strategy is a ``Strategy`` subclass in any ``.py`` file. Load it with
``load_strategy("path/to/my_strategy.py:MyStrategy")`` or ``load_strategy("path/to/file.py")``
(the file's only Strategy subclass), or put the file in a strategies folder and call
``load_strategy("my_name", search_paths=[folder])`` to find it by its ``name`` attribute.
See ``docs/strategies.md``.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from morningstar.errors import StrategyError
from morningstar.strategies.base import Strategy
from morningstar.strategies.builtin import (
    BollingerAtr,
    DonchianBreakout,
    EmaCross,
    MacdTrend,
    RsiReversion,
    SmaCross,
)

__all__ = ["BUILTIN_STRATEGIES", "available_strategies", "load_strategy", "resolve_strategy"]

BUILTIN_STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (EmaCross, SmaCross, BollingerAtr, RsiReversion, MacdTrend, DonchianBreakout)
}


def _load_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise StrategyError("strategy file not found", where=str(path))
    spec = importlib.util.spec_from_file_location(f"morningstar_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise StrategyError("cannot load this file as Python", where=str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise StrategyError(
            f"the strategy file failed to import: {type(exc).__name__}: {exc}", where=str(path)
        ) from exc
    return module


def _strategies_in(module: ModuleType) -> list[type[Strategy]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module.__name__
    ]


def _user_strategies(search_paths: Iterable[str | Path]) -> dict[str, type[Strategy]]:
    found: dict[str, type[Strategy]] = {}
    for folder in search_paths:
        for path in sorted(Path(folder).expanduser().glob("*.py")):
            for cls in _strategies_in(_load_module(path)):
                found[cls.name or cls.__name__] = cls
    return found


def available_strategies(search_paths: Iterable[str | Path] = ()) -> dict[str, type[Strategy]]:
    """Built-in strategies plus those found in ``search_paths`` folders, by name."""
    return {**BUILTIN_STRATEGIES, **_user_strategies(search_paths)}


def load_strategy(spec: str, search_paths: Iterable[str | Path] = ()) -> type[Strategy]:
    """The strategy class named by ``spec``.

    ``spec`` is a built-in name (``ema_cross``), the ``name`` of a strategy in a ``search_paths``
    folder, ``path/to/file.py:ClassName``, or ``path/to/file.py`` holding exactly one strategy.

    Raises:
        StrategyError: not found (with a close-match hint), or the file does not load.
    """
    if spec.endswith(".py") or ".py:" in spec:
        file_part, _, class_name = spec.partition(".py")
        path = Path(file_part + ".py").expanduser()
        class_name = class_name.lstrip(":")
        classes = _strategies_in(_load_module(path))
        if class_name:
            match = [c for c in classes if c.__name__ == class_name]
            if not match:
                names = [c.__name__ for c in classes]
                raise StrategyError(
                    f"no Strategy subclass {class_name!r}",
                    where=str(path),
                    hint=f"found: {', '.join(names) or 'none'}",
                )
            return match[0]
        if len(classes) != 1:
            raise StrategyError(
                f"{len(classes)} Strategy subclasses found",
                where=str(path),
                hint="name one: file.py:ClassName",
            )
        return classes[0]
    known = available_strategies(search_paths)
    if spec in known:
        return known[spec]
    close = difflib.get_close_matches(spec, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"available: {', '.join(sorted(known))}"
    raise StrategyError(f"unknown strategy {spec!r}", hint=hint)


def resolve_strategy(strategy: str | type[Strategy] | Strategy) -> Strategy:
    """A strategy instance from a name, a file spec, a class or an instance.

    Raises:
        StrategyError: unknown name, or not a strategy.
    """
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy()
    if isinstance(strategy, str):
        return load_strategy(strategy)()
    raise StrategyError(f"not a strategy: {strategy!r}", hint="pass a name such as 'ema_cross'")
