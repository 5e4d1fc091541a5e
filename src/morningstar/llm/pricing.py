"""The versioned LLM price table (``llm/prices.yaml``) and the cost of one call.

Prices are USD per 1 million tokens, with dated entries per model: the entry in force at the
call time is used, so a price change is a new entry and past costs can be recomputed. A model
missing from the table has an *unknown* price: its cost is ``None``, never 0 (an unknown cost
must not pass a money budget as free; :mod:`morningstar.llm.budget` refuses such calls when a
USD budget applies). Local providers (Ollama, the offline analyst) are ``free``: cost 0.0.

``at`` is the wall-clock time of the call (money is spent now), not the simulated time of a
backtest bar.

Model names: exact match first; otherwise a dated snapshot ``<model>-YYYY-MM-DD`` takes the
price of the listed ``<model>`` (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``), unless that
snapshot is itself listed. Other aliases (``gpt-4o-latest``, fine-tunes) are unknown until
listed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from morningstar.errors import ConfigError
from morningstar.llm.types import Usage

__all__ = ["DEFAULT_PRICES", "Price", "PriceStatus", "PriceTable"]

#: The price table shipped with Morningstar.
DEFAULT_PRICES = Path(__file__).resolve().parent / "prices.yaml"

PriceStatus = Literal["priced", "free", "unknown"]

_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")
_ENTRY_KEYS = ("effective_from", "input", "cached_input", "output")
_PER_TOKENS = 1_000_000
_FREE = "free"


@dataclass(frozen=True)
class Price:
    """One dated price of a model, USD per 1 million tokens.

    Args:
        effective_from: the first (UTC) day it applies.
        input: rate of input tokens not served from the prompt cache.
        cached_input: rate of cached input tokens; None = the input rate.
        output: rate of output tokens (reasoning tokens included, as providers bill them).
    """

    effective_from: date
    input: float
    cached_input: float | None
    output: float

    def cost(self, usage: Usage) -> float:
        """USD of ``usage`` at this price (absent counts are not allowed: check first).

        ``usage.cached_input_tokens`` is the part of ``input_tokens`` billed at the cached
        rate (clamped to ``input_tokens``).
        """
        if usage.input_tokens is None or usage.output_tokens is None:
            raise ValueError("usage must report input and output tokens")
        cached = min(usage.cached_input_tokens or 0, usage.input_tokens)
        uncached = usage.input_tokens - cached
        cached_rate = self.input if self.cached_input is None else self.cached_input
        total = uncached * self.input + cached * cached_rate + usage.output_tokens * self.output
        return total / _PER_TOKENS


_FREE_PRICE = Price(effective_from=date.min, input=0.0, cached_input=0.0, output=0.0)


def _utc_day(at: datetime) -> date:
    offset = at.utcoffset()
    if offset is None:
        raise ValueError("price lookups need an aware datetime (UTC)")
    return (at - offset).date()


@dataclass(frozen=True)
class PriceTable:
    """The parsed price table.

    Args:
        version: the table's format version.
        updated: when the figures were last checked.
        models: provider → model → dated prices, oldest first.
        free: providers that cost nothing.
        source: the file it was read from.
    """

    version: int
    updated: date
    models: Mapping[str, Mapping[str, tuple[Price, ...]]]
    free: frozenset[str]
    source: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Read and check a price table (default: the shipped :data:`DEFAULT_PRICES`).

        Raises:
            ConfigError: the file cannot be read or is invalid; one line naming the file and the
                key path (e.g. ``providers.openai.gpt-4o[0].input``).
        """
        path = path or DEFAULT_PRICES
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the price table: {exc.strerror or type(exc).__name__}",
                where=str(path),
            ) from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "<prices>") -> PriceTable:
        """Parse the YAML text of a price table (see :meth:`load`)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _error(source, "", f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
        if not isinstance(data, dict):
            raise _error(source, "", "must be a mapping with version, updated and providers")
        for key in data:
            if key not in {"version", "updated", "providers"}:
                raise _error(source, str(key), "unknown key (allowed: version, updated, providers)")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _error(source, "version", f"must be an integer >= 1, got {version!r}")
        updated = _date(source, "updated", data.get("updated"))
        providers = data.get("providers")
        if not isinstance(providers, dict):
            raise _error(source, "providers", "must be a mapping of provider to models or 'free'")
        models: dict[str, dict[str, tuple[Price, ...]]] = {}
        free: set[str] = set()
        for provider, body in providers.items():
            path = f"providers.{provider}"
            if body == _FREE:
                free.add(str(provider))
                continue
            if not isinstance(body, dict) or not body:
                raise _error(source, path, "must be 'free' or a mapping of model to price entries")
            models[str(provider)] = {
                str(model): _entries(source, f"{path}.{model}", entries)
                for model, entries in body.items()
            }
        return cls(
            version=version, updated=updated, models=models, free=frozenset(free), source=source
        )

    def resolve_model(self, provider: str, model: str) -> str | None:
        """The listed model name ``model`` is priced as, or None (see the module docstring)."""
        listed = self.models.get(provider, {})
        if model in listed:
            return model
        match = _SNAPSHOT.match(model)
        if match and match["base"] in listed:
            return match["base"]
        return None

    def price(self, provider: str, model: str, at: datetime) -> Price | None:
        """The price of ``model`` in force at ``at`` (aware), or None when unknown.

        A ``free`` provider gives a zero price. None: the provider or model is not listed, or
        ``at`` is before the model's first entry.
        """
        if provider in self.free:
            return _FREE_PRICE
        name = self.resolve_model(provider, model)
        if name is None:
            return None
        day = _utc_day(at)
        current: Price | None = None
        for entry in self.models[provider][name]:
            if entry.effective_from <= day:
                current = entry
        return current

    def cost(
        self, provider: str, model: str, usage: Usage, at: datetime, *, local: bool
    ) -> tuple[float | None, PriceStatus]:
        """The USD cost of one call and how it was priced.

        Args:
            provider, model: who answered (the model name the provider reported is best).
            usage: the tokens of the call.
            at: the call's wall-clock time (aware).
            local: the provider runs locally (``LLMProvider.local``): free.

        Returns:
            ``(usd, "priced")``; ``(0.0, "free")`` for a local or ``free`` provider;
            ``(None, "unknown")`` when the model has no price at ``at`` or the usage is absent
            (input or output tokens not reported). Never 0 for an unknown price.
        """
        if local or provider in self.free:
            return 0.0, "free"
        if usage.input_tokens is None or usage.output_tokens is None:
            return None, "unknown"
        found = self.price(provider, model, at)
        if found is None:
            return None, "unknown"
        return found.cost(usage), "priced"


def _error(source: str, key: str, problem: str) -> ConfigError:
    where = f"{source}: {key}" if key else source
    return ConfigError(problem, where=where, hint="see the comments at the top of llm/prices.yaml")


def _date(source: str, key: str, raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise _error(source, key, f"must be a date YYYY-MM-DD, got {raw!r}")


def _rate(source: str, key: str, raw: Any) -> float:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not math.isfinite(raw)
        or raw < 0
    ):
        raise _error(source, key, f"must be a number of USD per 1M tokens >= 0, got {raw!r}")
    return float(raw)


def _entries(source: str, path: str, raw: Any) -> tuple[Price, ...]:
    if not isinstance(raw, list) or not raw:
        raise _error(source, path, "must be a non-empty list of {effective_from, input, output}")
    prices: list[Price] = []
    for i, entry in enumerate(raw):
        at = f"{path}[{i}]"
        if not isinstance(entry, dict):
            raise _error(
                source, at, "must be a mapping {effective_from, input, cached_input, output}"
            )
        for key in entry:
            if key not in _ENTRY_KEYS:
                raise _error(
                    source, f"{at}.{key}", f"unknown key (allowed: {', '.join(_ENTRY_KEYS)})"
                )
        for key in ("effective_from", "input", "output"):
            if key not in entry:
                raise _error(source, f"{at}.{key}", "is missing")
        cached = entry.get("cached_input")
        prices.append(
            Price(
                effective_from=_date(source, f"{at}.effective_from", entry["effective_from"]),
                input=_rate(source, f"{at}.input", entry["input"]),
                cached_input=None
                if cached is None
                else _rate(source, f"{at}.cached_input", cached),
                output=_rate(source, f"{at}.output", entry["output"]),
            )
        )
    prices.sort(key=lambda p: p.effective_from)
    for before, after in itertools.pairwise(prices):
        if before.effective_from == after.effective_from:
            raise _error(source, path, f"two entries take effect on {after.effective_from}")
    return tuple(prices)
