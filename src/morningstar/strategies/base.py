"""The strategy contract: typed, bounded parameters and a vectorised signal function.

A strategy is a class with a ``name``, a tuple of :class:`Param` declarations and a pure
``signals(bars, params)`` method that returns boolean arrays computed on each bar's CLOSE (the
engine fills them at the next bar's open by default). Strategies never see future bars: every
array value at index ``t`` may depend only on bars ``0..t`` (tested for each built-in strategy).

The optimiser and the strategist agent read the declarations (type, default, bounds, step) to
build search spaces; :meth:`Strategy.resolve` checks user parameters with one-line errors and a
close-match hint for typos.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import ClassVar, Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from morningstar.errors import StrategyError

__all__ = [
    "Bars",
    "IndicatorCache",
    "Param",
    "ParamValue",
    "Signals",
    "Strategy",
    "cross_above",
    "cross_below",
]

ParamValue = int | float | bool
T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Default memory budget of a :class:`Bars` indicator memo.
DEFAULT_CACHE_BYTES: Final = 512 * 2**20


class IndicatorCache:
    """A memo of indicator results, least recently used first out, bounded in bytes.

    Keys are ``(function, *args)`` with array arguments keyed by identity; each entry holds a
    reference to those arrays, so an identity can never be reused by another array while its
    entry lives (a temporary array passed in is kept alive, and counted, until evicted).

    Safe for the threads of a sweep without a lock (core code holds no threads or locks): every
    change of the memo is one C-level ``OrderedDict`` operation, which the interpreter runs
    atomically, and the byte total is recounted from a snapshot of the entries rather than kept
    in a counter. A race costs at most an indicator computed twice or evicted early.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[object, ...], tuple[object, tuple[object, ...], int]]
        self._entries = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached results and the arrays they were computed from."""
        return sum(entry[2] for entry in list(self._entries.values()))

    def get(self, fn: Callable[..., T], args: tuple[object, ...], own: tuple[object, ...]) -> T:
        """``fn(*args)``, from the cache when this call was made before.

        ``own`` lists the arrays that live as long as the cache (the bars' columns): they are
        neither counted nor held.
        """
        key = (fn, *(("array", id(a)) if isinstance(a, np.ndarray) else a for a in args))
        hit = self._entries.get(key)
        if hit is not None:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                self._entries.move_to_end(key)
            return hit[0]  # type: ignore[return-value]
        value = fn(*args)
        held = tuple(a for a in args if isinstance(a, np.ndarray) and not _is_in(a, own))
        size = _nbytes(value) + sum(_nbytes(a) for a in held)
        if size > self.max_bytes:
            return value  # larger than the whole budget: computed, not kept
        self._entries.setdefault(key, (value, held, size))
        while self.nbytes > self.max_bytes:
            try:
                self._entries.popitem(last=False)
            except KeyError:  # emptied by another thread
                break
        return value


def _is_in(array: object, arrays: tuple[object, ...]) -> bool:
    return any(array is a for a in arrays)


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 0


@dataclass(frozen=True)
class Bars:
    """Bar arrays of one asset (float64, equal length, oldest first).

    :meth:`ind` computes an indicator once per distinct call: a sweep shares one ``Bars`` across
    all parameter combinations, so EMA(10) is computed once however many combinations use it.
    The memo is bounded (``cache_bytes``, 512 MiB by default, least recently used out).
    """

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    cache_bytes: InitVar[int] = DEFAULT_CACHE_BYTES
    _cache: IndicatorCache = field(init=False, repr=False, compare=False)

    def ind(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)``, memoised on (function, args); array arguments are keyed by identity.

        Pass the bars' own arrays (``bars.close``) or arrays kept for the whole run: another
        array is held by the memo until evicted, which is correct but costs memory.
        """
        own = (self.open, self.high, self.low, self.close, self.volume)
        return self._cache.get(fn, args, own)

    def __post_init__(self, cache_bytes: int) -> None:
        object.__setattr__(self, "_cache", IndicatorCache(cache_bytes))
        n = len(self.close)
        for name in ("open", "high", "low", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"bars.{name} has {len(getattr(self, name))} values, close has {n}"
                )

    def __len__(self) -> int:
        return len(self.close)


@dataclass(frozen=True)
class Param:
    """A declared strategy parameter.

    Args:
        name: parameter name.
        kind: ``int``, ``float`` or ``bool``.
        default: value used when the user gives none.
        low: inclusive lower bound (numbers).
        high: inclusive upper bound (numbers).
        step: grid step for sweeps (numbers; None = continuous for floats, 1 for ints).
        doc: one-line description.
    """

    name: str
    kind: Literal["int", "float", "bool"]
    default: ParamValue
    low: float | None = None
    high: float | None = None
    step: float | None = None
    doc: str = ""

    def check(self, value: object, strategy: str) -> ParamValue:
        """Return ``value`` converted to this parameter's type, or raise a one-line StrategyError."""
        where = f"{strategy}.{self.name}"
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
                return value.lower() in {"true", "1", "yes"}
            raise StrategyError(
                f"{value!r} is not a boolean", where=where, hint="use true or false"
            )
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float range, e.g. 10**400
            number = math.inf
        except (TypeError, ValueError):
            raise StrategyError(
                f"{value!r} is not a number",
                where=where,
                hint=f"use a {self.kind} such as {self.default}",
            ) from None
        if not math.isfinite(number):
            raise StrategyError(
                f"{value!r} is not a finite number",
                where=where,
                hint=f"use a {self.kind} such as {self.default}",
            )
        if self.kind == "int":
            if not number.is_integer():
                raise StrategyError(f"{value!r} is not a whole number", where=where)
            number = int(number)
        if self.low is not None and number < self.low:
            raise StrategyError(f"{_fmt(number)} is not >= {_fmt(self.low)}", where=where)
        if self.high is not None and number > self.high:
            raise StrategyError(f"{_fmt(number)} is not <= {_fmt(self.high)}", where=where)
        return number

    def grid(self) -> list[ParamValue]:
        """Every value of the declared grid (bounds inclusive)."""
        if self.kind == "bool":
            return [False, True]
        if self.low is None or self.high is None:
            return [self.default]
        step = self.step if self.step is not None else (1.0 if self.kind == "int" else None)
        if step is None:
            raise StrategyError(f"{self.name} is continuous: give a step to build a grid")
        values = np.arange(self.low, self.high + step / 2, step)
        return [round(float(v)) if self.kind == "int" else float(v) for v in values]


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Signals:
    """Signals computed on each bar's close (boolean arrays of the bars' length).

    ``stop_distance`` / ``target_distance`` are optional per-bar price distances (e.g. an ATR
    multiple) read at the signal bar, for the engine's stop-loss and take-profit.
    """

    long_entries: BoolArray
    long_exits: BoolArray
    short_entries: BoolArray | None = None
    short_exits: BoolArray | None = None
    stop_distance: FloatArray | None = None
    target_distance: FloatArray | None = None
    indicators: dict[str, FloatArray] = field(default_factory=dict)


class Strategy:
    """Base class of strategies. Subclasses set ``name``, ``params`` and implement ``signals``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def param_names(cls) -> list[str]:
        """Declared parameter names, in order."""
        return [p.name for p in cls.params]

    @classmethod
    def defaults(cls) -> dict[str, ParamValue]:
        """Default value of every parameter."""
        return {p.name: p.default for p in cls.params}

    @classmethod
    def resolve(cls, params: Mapping[str, object] | None = None) -> dict[str, ParamValue]:
        """Defaults overridden by ``params``, type-checked and bound-checked.

        Raises:
            StrategyError: an unknown name (with a close match), a bad type, a value out of bounds,
                or a violated relation between parameters (see :meth:`check_relations`).
        """
        declared = {p.name: p for p in cls.params}
        out = cls.defaults()
        for key, value in (params or {}).items():
            spec = declared.get(key)
            if spec is None:
                close = difflib.get_close_matches(key, list(declared), n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"parameters: {', '.join(declared) or 'none'}"
                )  # fmt: skip
                raise StrategyError(f"unknown parameter {key!r}", where=cls.name, hint=hint)
            out[key] = spec.check(value, cls.name)
        cls.check_relations(out)
        return out

    @classmethod
    def check_relations(cls, params: Mapping[str, ParamValue]) -> None:
        """Check constraints between parameters (e.g. fast < slow); raise StrategyError."""

    def signals(self, bars: Bars, params: Mapping[str, ParamValue]) -> Signals:
        """Compute the signals on each bar's close. Must be point-in-time."""
        raise NotImplementedError


def cross_above(a: FloatArray, b: FloatArray) -> BoolArray:
    """True at ``t`` when ``a`` crosses above ``b``: ``a[t] > b[t]`` and ``a[t-1] <= b[t-1]``.

    NaN on either side at ``t`` or ``t-1`` gives False.
    """
    return crossings(a, b)[0]


def cross_below(a: FloatArray, b: FloatArray) -> BoolArray:
    """True at ``t`` when ``a`` crosses below ``b``: ``a[t] < b[t]`` and ``a[t-1] >= b[t-1]``."""
    return crossings(a, b)[1]


def crossings(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    """``(cross_above(a, b), cross_below(a, b))`` in one compiled pass over both series.

    Raises:
        ValueError: the series are not 1-D or differ in length.
    """
    x = np.ascontiguousarray(a, dtype=np.float64)
    y = np.ascontiguousarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"crossings need two 1-D series of one length, got {x.shape}, {y.shape}")
    above = np.empty(x.shape[0], dtype=np.bool_)
    below = np.empty(x.shape[0], dtype=np.bool_)
    _crossings_nb(x, y, above, below)
    return above, below


@njit(nogil=True, cache=True)
def _crossings_nb(a: FloatArray, b: FloatArray, above: BoolArray, below: BoolArray) -> None:
    n = a.shape[0]
    if n == 0:
        return
    above[0] = False
    below[0] = False
    for t in range(1, n):
        # comparisons with NaN are False, as in the vectorised definition
        above[t] = a[t] > b[t] and a[t - 1] <= b[t - 1]
        below[t] = a[t] < b[t] and a[t - 1] >= b[t - 1]
