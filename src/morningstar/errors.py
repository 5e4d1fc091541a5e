"""The one exception tree of Morningstar, split by what the caller should do.

::

    MorningstarError                     base; ``str(err)`` is one clear line: what, where, how to fix
    ├── ConfigError                      fatal: the configuration is wrong, fix the file / env var
    ├── UserInputError                   fatal: a command-line argument or user file is wrong
    │   ├── DataFormatError              a CSV/Parquet file has an unknown or broken layout
    │   └── DataNotFoundError            no stored data for this venue / pair / timeframe
    ├── DataValidationError              data breaks the OHLCV contract under an ``error`` policy
    ├── StorageError                     the database or the data directory failed
    ├── TemporaryError                   retry with backoff (see ``morningstar.retry``)
    │   ├── NetworkError                 timeout, connection refused / reset
    │   ├── RateLimitedError             HTTP 429 / exchange rate limit
    │   └── ExchangeUnavailableError     HTTP 5xx, maintenance
    ├── ExchangeError                    the exchange said no and retrying will not help
    │   ├── AuthenticationError          bad or missing API key
    │   └── BadSymbolError               unknown market / timeframe on that exchange
    ├── BusinessRejection                a risk rule or the exchange rejected an order
    ├── StrategyError                    a strategy failed or was misconfigured
    └── LLMError                         base of the LLM gateway's errors; ``status`` names the outcome
        ├── LLMTimeoutError              the call ran past its timeout (also a TemporaryError: retried)
        ├── LLMRateLimitedError          HTTP 429 from the provider (also a RateLimitedError: retried)
        ├── LLMTransportError            connection refused / reset, HTTP 5xx (also TemporaryError)
        ├── LLMProviderError             the provider refused the request (4xx, unknown model)
        ├── LLMInvalidOutput             the answer is not valid JSON of the schema, or truncated;
        │                                carries the raw text
        ├── LLMBudgetExceeded            a token or money budget is spent: no call was made
        └── LLMCacheMiss                 replay mode and the request was never recorded

Adapters translate third-party exceptions (ccxt, sqlalchemy, httpx, openai) into this tree at their
boundary with ``raise X(...) from exc``; nothing above the adapters sees a third-party exception.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadSymbolError",
    "BusinessRejection",
    "ConfigError",
    "DataFormatError",
    "DataNotFoundError",
    "DataValidationError",
    "ExchangeError",
    "ExchangeUnavailableError",
    "LLMBudgetExceeded",
    "LLMCacheMiss",
    "LLMError",
    "LLMInvalidOutput",
    "LLMProviderError",
    "LLMRateLimitedError",
    "LLMTimeoutError",
    "LLMTransportError",
    "MorningstarError",
    "NetworkError",
    "RateLimitedError",
    "StorageError",
    "StrategyError",
    "TemporaryError",
    "UserInputError",
]


class MorningstarError(Exception):
    """Base of every error Morningstar raises on purpose.

    Args:
        message: what is wrong, in a few words.
        where: the place it is wrong: a file, a key path, a row, a symbol.
        hint: how to fix it.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the error as one line: ``where: message (hint)``."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} — {self.hint}"
        return " ".join(text.split())


class ConfigError(MorningstarError):
    """The configuration is invalid. Fatal: fix the file or environment variable named."""


class UserInputError(MorningstarError):
    """A command-line argument or a user-provided file is invalid."""


class DataFormatError(UserInputError):
    """A market-data file has a layout Morningstar does not understand."""


class DataNotFoundError(UserInputError):
    """No stored market data for the requested venue / pair / timeframe / range."""


class DataValidationError(MorningstarError):
    """Market data breaks the OHLCV contract and the policy for that problem is ``error``."""


class StorageError(MorningstarError):
    """The database or the data directory could not be read or written."""


class TemporaryError(MorningstarError):
    """A failure that may pass: retry with exponential backoff and jitter."""


class NetworkError(TemporaryError):
    """Timeout, refused or reset connection."""


class RateLimitedError(TemporaryError):
    """The remote side asked us to slow down (HTTP 429 or an exchange rate-limit code).

    Args:
        retry_after_s: the wait the server asked for (``Retry-After``), when it said one; the
            retry policy never waits less (up to its cap).
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, where=where, hint=hint)


class ExchangeUnavailableError(TemporaryError):
    """The exchange answered with a server error (5xx) or is in maintenance."""


class ExchangeError(MorningstarError):
    """The exchange refused the request and retrying will not change that."""


class AuthenticationError(ExchangeError):
    """The API key is missing, wrong or lacks a permission."""


class BadSymbolError(ExchangeError):
    """The market or timeframe does not exist on that exchange."""


class BusinessRejection(MorningstarError):
    """An order was rejected by a risk rule or by the exchange (insufficient funds, min size)."""


class StrategyError(MorningstarError):
    """A strategy failed or has invalid parameters."""


class LLMError(MorningstarError):
    """Base of LLM gateway errors (timeouts, invalid output, budget exceeded).

    ``status`` is the outcome the LLM monitor records for the call (see
    ``morningstar.store.models.LLM_CALL_STATUSES``).
    """

    status: str = "provider_error"


class LLMTimeoutError(LLMError, TemporaryError):
    """The LLM call ran past its timeout. Retried with backoff."""

    status = "timeout"


class LLMRateLimitedError(LLMError, RateLimitedError):
    """The provider answered HTTP 429. Retried with backoff."""

    status = "rate_limited"


class LLMTransportError(LLMError, TemporaryError):
    """The connection failed, or the provider answered a server error (5xx). Retried."""

    status = "transport_error"


class LLMProviderError(LLMError):
    """The provider refused the request (bad request, authentication, unknown model)."""

    status = "provider_error"


class LLMInvalidOutput(LLMError):
    """The answer does not validate against the request's schema, or was cut off.

    Args:
        raw_text: the answer exactly as the provider sent it.
        reason: ``not_json``, ``schema`` or ``truncated``.
    """

    status = "invalid_output"

    def __init__(
        self,
        message: str,
        *,
        raw_text: str,
        reason: str = "schema",
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.raw_text = raw_text
        self.reason = reason
        super().__init__(message, where=where, hint=hint)


class LLMBudgetExceeded(LLMError):
    """A per-session or per-agent budget (tokens or money) is spent; the call was not made."""

    status = "budget"


class LLMCacheMiss(LLMError):
    """Replay mode and the request is not in the replay cache (it was never recorded)."""

    status = "cache_miss"
